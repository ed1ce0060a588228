"""The store secret and what is derived from it: keyed hashes, MACs, API key hashes.

The secret never leaves this module as text and is never logged. Each use gets its own derived key
(a purpose label), so a MAC of one kind can never be replayed as another.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

SECRET_BYTES = 32


class SecretFileError(Exception):
    """The secret file cannot be created or used (no such folder, unreadable, wrong size)."""


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


def _create_secret(path: Path) -> None:
    """Write the new secret beside the final name and link it into place: a crash half-way can
    never leave a short secret behind, and of two processes starting at once one secret wins."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(SECRET_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # the other process's secret is the one
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the new name survives a power cut too
    finally:
        os.close(folder)


def load_or_create_secret(path: Path) -> StoreSecret:
    """Read the store secret, creating it (mode 0600, its folder 0700) on first run."""
    if not path.exists():
        try:
            _create_secret(path)
        except OSError as exc:
            raise SecretFileError(
                f"{path}: cannot create the store secret ({exc.strerror})"
            ) from None
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
