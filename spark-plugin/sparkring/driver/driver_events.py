"""Best-effort run events from the driver: entries on the run's Redis stream (see src/events/redis.ts)."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from typing import Any, Optional

from sparkring.driver.spec import RedisEndpoint


def connect(endpoint: RedisEndpoint, timeout_s: float = 10) -> Any:
    """A redis-py client for the run's Redis (TLS with the run's CA where it names one)."""
    import redis

    kwargs: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": 10}
    if endpoint.url.startswith("rediss://") and endpoint.ca:
        kwargs["ssl_ca_certs"] = endpoint.ca
    return redis.Redis.from_url(endpoint.url, **kwargs)


class EventSender:
    def __init__(self, endpoint: Optional[RedisEndpoint], source: str) -> None:
        self._redis: Any = None
        self._stream = ""
        self._source = source
        if endpoint is None:
            return
        self._redis = connect(endpoint)
        self._stream = endpoint.stream

    def send(self, kind: str, **fields: Any) -> None:
        if self._redis is None:
            return
        event = json.dumps({"type": kind, "source": self._source, "at": int(time.time() * 1000), **fields})
        for attempt in range(3):  # rides out a Redis restart
            try:
                self._redis.xadd(self._stream, {"e": event}, maxlen=1_000_000, approximate=True)
                return
            except Exception as e:  # redis.exceptions.ConnectionError and friends
                if attempt == 2:
                    print(f"sparkring: could not send a run event to Redis ({e})", file=sys.stderr)
                time.sleep(0.5)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None


def signed_result(secret: str, result: Any) -> dict[str, str]:
    """The driver's result as it rides on its last event: the JSON and its HMAC with the run's
    secret, so a client accepts only a result that the run's own driver sent."""
    text = json.dumps(result)
    return {"resultJson": text, "proof": hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()}
