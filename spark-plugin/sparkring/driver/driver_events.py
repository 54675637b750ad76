"""Best-effort run events from the driver: entries on the run's Redis stream (see src/events/redis.ts),
each signed with the run's events key (run_keys.py), and the signed result its last one carries."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Optional

from sparkring.driver.spec import RedisEndpoint
from sparkring.run_keys import mac, mac_matches, run_key


def connect(endpoint: RedisEndpoint, timeout_s: float = 10) -> Any:
    """A redis-py client for the run's Redis (TLS with the run's CA where it names one: a PEM file's
    path, or the PEM itself, as a private Redis's run certificate comes)."""
    import redis

    kwargs: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": 10}
    if endpoint.url.startswith("rediss://") and endpoint.ca:
        kwargs["ssl_ca_data" if endpoint.ca.startswith("-----BEGIN") else "ssl_ca_certs"] = endpoint.ca
    return redis.Redis.from_url(endpoint.url, **kwargs)


def signed_event(key: bytes, fields: dict[bytes, bytes]) -> Optional[dict[str, Any]]:
    """The event of a stream entry (`e`, and `m` its MAC under the events key), or None when it is
    unsigned, forged or not JSON: a Redis shared with others may hold anything under the run's key."""
    text, given = fields.get(b"e"), fields.get(b"m")
    if text is None or given is None or not mac_matches(key, text.decode("utf-8", "replace"), given.decode("ascii", "replace")):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def append_signed(r: Any, stream: str, key: bytes, event: dict[str, Any]) -> None:
    """Appends `event` to the run stream as a signed entry (`e` its JSON, `m` the JSON's MAC)."""
    text = json.dumps(event)
    r.xadd(stream, {"e": text, "m": mac(key, text)}, maxlen=1_000_000, approximate=True)


class EventSender:
    def __init__(self, endpoint: Optional[RedisEndpoint], source: str, secret: str) -> None:
        self._redis: Any = None
        self._stream = ""
        self._source = source
        self._key = run_key(secret, "events")
        if endpoint is None:
            return
        self._redis = connect(endpoint)
        self._stream = endpoint.stream

    def send(self, kind: str, **fields: Any) -> None:
        if self._redis is None:
            return
        event = {"type": kind, "source": self._source, "at": int(time.time() * 1000), **fields}
        for attempt in range(3):  # rides out a Redis restart
            try:
                append_signed(self._redis, self._stream, self._key, event)
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
    """The driver's result as it rides on its last event: the JSON and its HMAC under the run's
    result key, so a client accepts only a result that the run's own driver sent."""
    text = json.dumps(result)
    return {"resultJson": text, "proof": mac(run_key(secret, "result"), text)}
