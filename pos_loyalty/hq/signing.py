"""Ed25519 keys of head office: bundles are signed with its private key; each store pins the
public key in `[hq] public_key` and uses nothing a signature does not cover.

The private key is a PEM file written with mode 0600; the public key travels as one line of text,
`ed25519:<base64 of the 32 raw bytes>`, easy to paste into a store's config.toml.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pos_loyalty.hq.bundle import BundleRefused, canonical_bytes

PUBLIC_PREFIX = "ed25519:"


class SigningKeyError(Exception):
    """The head-office key file cannot be used; the message says which file and why."""


def create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Write a new private key (0600, never overwriting one) and return it."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path} already exists; it is not replaced") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The private key in `path`; a missing, unreadable or foreign file is refused by name."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(
            f"{path} not found; create it with `pos-loyalty hq keys create`"
        ) from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 key")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """`ed25519:<base64>` as printed by `hq keys create`; ValueError says what is wrong."""
    if not text.startswith(PUBLIC_PREFIX):
        raise ValueError(f"expected '{PUBLIC_PREFIX}<base64>' as printed by `hq keys create`")
    try:
        raw = base64.b64decode(text[len(PUBLIC_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the public key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign_bundle(body: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The signed envelope as sent to stores: `{"bundle": …, "signature": base64}`."""
    signature = key.sign(canonical_bytes(body))
    envelope = {"bundle": body, "signature": base64.b64encode(signature).decode("ascii")}
    return canonical_bytes(envelope)


def verify_envelope(raw: bytes, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The bundle body of a signed envelope, or `BundleRefused` (malformed, truncated, forged)."""
    try:
        envelope = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleRefused(
            "malformed", f"the download is not a complete bundle ({len(raw)} bytes)"
        ) from None
    if not isinstance(envelope, dict) or set(envelope) != {"bundle", "signature"}:
        raise BundleRefused("malformed", "the download is not a signed bundle envelope")
    body, signature = envelope["bundle"], envelope["signature"]
    if not isinstance(body, dict) or not isinstance(signature, str):
        raise BundleRefused("malformed", "the download is not a signed bundle envelope")
    try:
        public_key.verify(base64.b64decode(signature, validate=True), canonical_bytes(body))
    except (InvalidSignature, binascii.Error, ValueError):
        raise BundleRefused(
            "bad_signature",
            "the signature does not match head office's public key (tampered, or signed "
            "with another key)",
        ) from None
    return body
