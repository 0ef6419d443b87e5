"""Ed25519 keys that sign audit checkpoints (and attestations): create, load, sign, verify.

The private key lives outside any store (``MLTRAIL_AUDIT_KEY``, default under the user's
config directory): whoever holds the database must not hold the key. The public key sits next
to it as ``<path>.pub`` (PEM, SubjectPublicKeyInfo) and is what an auditor is given.
``cryptography`` is imported inside the functions (the ``audit`` extra), so importing this
module stays cheap.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    MissingExtraError,
    NotFoundError,
)
from mltrail.settings import settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "default_key_path",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "public_key_id",
    "public_key_path",
    "public_key_pem",
    "sign",
    "verify",
]


def _ed25519() -> object:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - the extra is installed in CI
        raise MissingExtraError(
            "audit keys need the 'cryptography' package: pip install 'mltrail[audit]'"
        ) from None
    return ed25519


def default_key_path() -> Path:
    """Where the signing key is kept: ``MLTRAIL_AUDIT_KEY``, else
    ``$XDG_CONFIG_HOME/mltrail/audit/ed25519.pem`` (``~/.config/...``)."""
    path = settings().audit_key
    assert path is not None  # settings() always resolves it
    return path.expanduser()


def public_key_path(path: Path) -> Path:
    """The public key that goes with the private key at ``path``: ``<path>.pub``."""
    return path.with_name(path.name + ".pub")


def generate_key(path: Path, *, overwrite: bool = False) -> Path:
    """Create an Ed25519 key pair: the private key (PEM, PKCS#8, mode 0600) at ``path`` and
    the public key at ``<path>.pub``; returns the public key's path.

    Raises:
        AlreadyExistsError: a key is already there (``overwrite`` replaces it).
    """
    _ed25519()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path).expanduser()
    if path.exists() and not overwrite:
        raise AlreadyExistsError(f"an audit key already exists at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, private_pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    pub = public_key_path(path)
    pub_tmp = pub.with_name(f".{pub.name}.{os.getpid()}.tmp")
    pub_tmp.write_bytes(public_key_pem(key.public_key()))
    os.replace(tmp, path)
    os.replace(pub_tmp, pub)
    return pub


def load_private_key(path: Path | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key at ``path`` (default :func:`default_key_path`).

    Raises:
        NotFoundError: no key there (``mltrail audit init`` creates one).
        InvalidArgumentError: the file is not an unencrypted Ed25519 PEM private key.
    """
    _ed25519()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path).expanduser() if path is not None else default_key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            f"no audit key at {path} (create one with `mltrail audit init`)"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgumentError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key at ``path``: a PEM public key, or a private key's PEM (its
    public half is used).

    Raises:
        NotFoundError: no file there.
        InvalidArgumentError: not an Ed25519 PEM key.
    """
    _ed25519()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no public key at {path}") from None
    if b"PRIVATE KEY" in data:
        priv = load_private_key(path)
        return priv.public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"{path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidArgumentError(f"{path} is not an Ed25519 public key")
    assert not isinstance(key, Ed25519PrivateKey)
    return key


def public_key_pem(pub: Ed25519PublicKey) -> bytes:
    """``pub`` as PEM (SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization

    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_id(pub: Ed25519PublicKey) -> str:
    """The key's id: SHA-256 of its 32 raw public bytes, hex."""
    from cryptography.hazmat.primitives import serialization

    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(priv: Ed25519PrivateKey, data: bytes) -> bytes:
    """The Ed25519 signature (64 bytes) of ``data``."""
    return priv.sign(data)


def verify(pub: Ed25519PublicKey, sig: bytes, data: bytes) -> bool:
    """Whether ``sig`` is ``pub``'s signature of ``data`` (never raises on a bad one)."""
    from cryptography.exceptions import InvalidSignature

    try:
        pub.verify(sig, data)
    except InvalidSignature:
        return False
    return True
