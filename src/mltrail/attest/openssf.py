"""Model files signed in the OpenSSF model-signing format (the ``model-signing`` package).

The signature is a Sigstore bundle over a manifest of every file's SHA-256, made with a
local elliptic-curve key: outside verifiers check the files with that project's own tool::

    model_signing verify key MODEL_DIR --signature model.sig --public_key key.pub

The format takes NIST P-256/384/521 keys only (not the Ed25519 key of attestations):
:func:`generate_ec_key` makes a P-256 pair (``mltrail models sign --new-key``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import AlreadyExistsError, IntegrityError, MissingExtraError, NotFoundError

if TYPE_CHECKING:
    from mltrail.attest.target import Target

__all__ = ["generate_ec_key", "model_files", "sign_files", "verify_files"]


def _model_signing() -> tuple[object, object]:
    try:
        from model_signing import signing, verifying
    except ImportError as exc:
        raise MissingExtraError(
            f"OpenSSF model signatures need the model-signing package ({exc.name} is missing): "
            "pip install 'mltrail[attest]'"
        ) from None
    return signing, verifying


def generate_ec_key(path: Path, *, overwrite: bool = False) -> Path:
    """A P-256 private key (PEM, PKCS#8, mode 0600) at ``path`` and its public key at
    ``<path>.pub``; returns the public key's path.

    Raises:
        AlreadyExistsError: a key is there already (``overwrite`` replaces it).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(path).expanduser()
    if path.exists() and not overwrite:
        raise AlreadyExistsError(f"a key already exists at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)
    pub = path.with_name(path.name + ".pub")
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pub


def model_files(target: Target, location: object, dest: Path | None = None) -> Path:
    """The files of a model version, checked out (every object verified) into ``dest``
    (default: the cache's checkout of that digest); the file or folder."""
    from mltrail.artifacts.access import checkout_version
    from mltrail.store.registry import StoreLocation

    assert isinstance(location, StoreLocation)
    if target.model is None or len(target.artifacts) != 1:
        raise NotFoundError(f"{target.label} is not a model version")
    return checkout_version(target.artifacts[0], location, dest)


def sign_files(model: Path, signature: Path, private_key: Path) -> Path:
    """Sign the file or folder ``model`` into ``signature`` (a Sigstore bundle, JSON).

    Raises:
        NotFoundError: no key at ``private_key``.
        MissingExtraError: model-signing is not installed.
    """
    signing, _ = _model_signing()
    if not Path(private_key).is_file():
        raise NotFoundError(f"no private key at {private_key} (create one with --new-key)")
    config = signing.Config().use_elliptic_key_signer(private_key=private_key)  # type: ignore[attr-defined]
    signature.parent.mkdir(parents=True, exist_ok=True)
    config.sign(model, signature)
    return signature


def verify_files(model: Path, signature: Path, public_key: Path) -> None:
    """Verify ``model`` against ``signature`` with model-signing's own verifier.

    Raises:
        IntegrityError: a file differs, is missing or was added, or another key signed.
    """
    _, verifying = _model_signing()
    config = verifying.Config().use_elliptic_key_verifier(public_key=public_key)  # type: ignore[attr-defined]
    try:
        config.verify(model, signature)
    except ValueError as exc:
        raise IntegrityError(f"model signature of {model}: {exc}") from None
