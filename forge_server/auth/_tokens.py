"""Token format, hashing and expiry parsing.

A token is ``forge_<id>_<secret>``: the 12-hex-digit id is public (it names the token in
``forge token list`` / ``revoke`` and finds its row), the secret is 256 random bits. Only
SHA-256 of the secret is stored, and it is compared with ``hmac.compare_digest``; a fast hash is
enough because the secret is uniformly random, not a password.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from forge_server.auth._errors import AuthStoreError

TOKEN_PREFIX = "forge_"  # noqa: S105 (a public prefix, not a secret)
SECRET_BYTES = 32  # 256 bits
_TOKEN_RE = re.compile(r"forge_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_DURATION_RE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class ParsedToken:
    token_id: str
    secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"ParsedToken(token_id={self.token_id!r}, secret='***')"


def new_token() -> tuple[str, str, bytes]:
    """A fresh token: (token string, token id, hash of its secret)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{TOKEN_PREFIX}{token_id}_{secret}", token_id, hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def parse_token(token: str) -> ParsedToken | None:
    """Split a token into id and secret; None when it does not have the token format."""
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        return None
    return ParsedToken(token_id=match.group(1), secret=match.group(2))


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` (or combinations like ``1d12h``)."""
    cleaned = text.strip().lower()
    pos = 0
    total = 0
    for match in _DURATION_RE.finditer(cleaned):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not cleaned or pos != len(cleaned) or total <= 0:
        raise AuthStoreError(
            f"invalid duration {text!r}: use a positive number with a unit s, m, h, d or w, "
            "e.g. 30d or 12h"
        )
    return timedelta(seconds=total)
