"""The store secret and what is derived from it: keyed hashes, MACs, API key hashes.

The secret never leaves this module as text and is never logged. Each use gets its own derived key
(a purpose label), so a MAC of one kind can never be replayed as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

SECRET_BYTES = 32


class SecretFileError(Exception):
    """The secret file exists but cannot be used (wrong size, unreadable, too open)."""


@dataclass(frozen=True)
class StoreSecret:
    """Holds the secret bytes; `repr` never shows them."""

    key: bytes = field(repr=False)

    def derive(self, purpose: str) -> bytes:
        return hmac.new(self.key, b"pos-loyalty/" + purpose.encode(), hashlib.sha256).digest()

    def keyed_hash(self, purpose: str, value: str) -> str:
        """A stable, non-reversible lookup key (e.g. for phone numbers)."""
        return hmac.new(self.derive(purpose), value.encode(), hashlib.sha256).hexdigest()

    def mac_b32(self, purpose: str, message: str, *, length: int = 10) -> str:
        """A truncated HMAC-SHA256 in unpadded base32, short enough for a QR code."""
        digest = hmac.new(self.derive(purpose), message.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:length]).decode().rstrip("=")

    def verify_mac_b32(self, purpose: str, message: str, mac: str, *, length: int = 10) -> bool:
        expected = self.mac_b32(purpose, message, length=length)
        return hmac.compare_digest(expected.encode(), mac.upper().encode())


def load_or_create_secret(path: Path) -> StoreSecret:
    """Read the store secret, creating it (mode 0600) on first run."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(SECRET_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise SecretFileError(f"{path}: cannot read the store secret ({exc.strerror})") from None
    if len(key) != SECRET_BYTES:
        raise SecretFileError(
            f"{path}: the store secret must be {SECRET_BYTES} bytes, found {len(key)}; "
            "restore it from backup (a new secret invalidates every QR and phone lookup)"
        )
    return StoreSecret(key)


def new_api_key(scope: str) -> str:
    """A bearer token that shows its scope, e.g. `plk_till_…`."""
    return f"plk_{scope}_{secrets.token_urlsafe(24)}"


def hash_api_key(token: str) -> str:
    # Tokens are long random strings, so a plain SHA-256 is enough; only the hash is stored.
    return hashlib.sha256(token.encode()).hexdigest()
