"""The run secret's keys, one per purpose, as src/events/keys.ts derives them: HKDF-SHA256 (RFC
5869) with an empty salt and the info `sparkring <purpose>`. Written by hand: the standard library
has no HKDF, and `cryptography` is not a dependency; one SHA-256 block is all a 32-byte key needs."""

from __future__ import annotations

import hashlib
import hmac


def run_key(secret: str, purpose: str) -> bytes:
    """The 32-byte key for `purpose` ("events", "result") from the run's secret."""
    prk = hmac.new(b"\0" * 32, secret.encode(), hashlib.sha256).digest()  # extract: an empty salt is 32 zeros
    return hmac.new(prk, f"sparkring {purpose}".encode() + b"\x01", hashlib.sha256).digest()  # expand: T(1)


def mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def mac_matches(key: bytes, text: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(mac(key, text), given)
