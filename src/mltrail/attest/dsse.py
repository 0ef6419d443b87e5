"""DSSE (Dead Simple Signing Envelope, v1): sign and open an envelope with an Ed25519 key.

The signature covers the pre-authentication encoding (PAE) of the payload and its type,
exactly as the DSSE protocol writes it::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

(``LEN``: the byte length in ASCII decimal, no leading zeros; ``SP``: one space). The
envelope is JSON: ``payloadType``, ``payload`` (base64) and ``signatures`` (``keyid``,
``sig`` base64). Keys are :mod:`mltrail.audit.keys`'s Ed25519 keys; a key id is SHA-256 of
the raw public key (hex). Other DSSE implementations (securesystemslib, sigstore's) read
and verify these envelopes; a test checks it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from mltrail.errors import IntegrityError, InvalidArgumentError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = ["INTOTO_PAYLOAD_TYPE", "open_envelope", "pae", "parse_envelope", "sign_envelope"]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_MAX_ENVELOPE = 64 << 20


def pae(payload_type: str, payload: bytes) -> bytes:
    """The pre-authentication encoding DSSE signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(
    payload: bytes, private_key: Ed25519PrivateKey, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> dict[str, Any]:
    """A DSSE envelope of ``payload`` with one Ed25519 signature."""
    from mltrail.audit import keys

    sig = keys.sign(private_key, pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {
                "keyid": keys.public_key_id(private_key.public_key()),
                "sig": base64.b64encode(sig).decode(),
            }
        ],
    }


def parse_envelope(data: bytes) -> dict[str, Any]:
    """An envelope read from JSON, its shape checked.

    Raises:
        InvalidArgumentError: not a DSSE envelope (names what is wrong).
    """
    if len(data) > _MAX_ENVELOPE:
        raise InvalidArgumentError(f"envelope: {len(data)} bytes; the limit is {_MAX_ENVELOPE}")
    try:
        env = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"envelope: not JSON ({exc})") from None
    if not isinstance(env, dict):
        raise InvalidArgumentError("envelope: not a JSON object")
    for field in ("payloadType", "payload"):
        if not isinstance(env.get(field), str):
            raise InvalidArgumentError(f"envelope: {field} missing or not a string")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise InvalidArgumentError("envelope: no signatures")
    for i, sig in enumerate(sigs):
        if not isinstance(sig, dict) or not isinstance(sig.get("sig"), str):
            raise InvalidArgumentError(f"envelope: signatures[{i}].sig missing")
    return env


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:  # DSSE allows URL-safe base64 too
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise InvalidArgumentError(f"envelope: {what} is not base64") from None


def open_envelope(env: dict[str, Any], public_key: Ed25519PublicKey) -> tuple[str, bytes]:
    """``(payloadType, payload)`` of ``env`` once a signature by ``public_key`` verifies.

    Raises:
        IntegrityError: no signature of the envelope verifies with the key (the payload or
            its type was changed, or another key signed it).
        InvalidArgumentError: a malformed envelope.
    """
    from mltrail.audit import keys

    payload = _b64(env["payload"], "payload")
    message = pae(env["payloadType"], payload)
    want = keys.public_key_id(public_key)
    ids = []
    for sig in env["signatures"]:
        ids.append(str(sig.get("keyid") or "?"))
        if keys.verify(public_key, _b64(sig["sig"], "signature"), message):
            return env["payloadType"], payload
    raise IntegrityError(
        f"no signature verifies with the public key {want[:16]} (signatures by "
        f"{', '.join(i[:16] for i in ids)}): the statement was changed or signed by another key"
    )
