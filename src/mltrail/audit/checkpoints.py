"""Signed checkpoints: (tree size, Merkle root, time, key id) signed with Ed25519.

A checkpoint pins the first ``tree_size`` entries of a log: whoever rewrites them cannot
produce the root again, and whoever truncates the log leaves a checkpoint larger than it.
Checkpoints are kept in the store and also written off-box (:func:`write_offbox`: a directory
or an fsspec URL) as one JSON file each, ``checkpoint-<size:012d>.json``, so a database
rolled back or rewritten by its holder still meets the copies it could not reach.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.audit import keys
from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "Checkpoint",
    "read_checkpoints",
    "sign_checkpoint",
    "write_offbox",
]

_DOMAIN = b"mltrail-audit-checkpoint/v1\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head: the root of entries ``1..tree_size``."""

    tree_size: int
    root: str
    timestamp_ms: int
    key_id: str
    signature: str
    #: the hash of entry ``tree_size`` (the chain's head there; "" for an empty log)
    head_hash: str = ""
    #: why it was taken: "every", "alias", "manual"
    reason: str = ""

    def signed_bytes(self) -> bytes:
        """What the signature covers."""
        return signed_bytes(
            self.tree_size, self.root, self.timestamp_ms, self.key_id, self.head_hash
        )

    def verify_signature(self, pub: Ed25519PublicKey) -> bool:
        """Whether the signature is ``pub``'s and the key id names ``pub``."""
        try:
            sig = bytes.fromhex(self.signature)
        except ValueError:
            return False
        return keys.public_key_id(pub) == self.key_id and keys.verify(pub, sig, self.signed_bytes())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        """The checkpoint a :meth:`to_dict` (or an off-box file) holds.

        Raises:
            InvalidArgumentError: a field is missing or of the wrong type.
        """
        try:
            return cls(
                tree_size=int(data["tree_size"]),
                root=str(data["root"]),
                timestamp_ms=int(data["timestamp_ms"]),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
                head_hash=str(data.get("head_hash", "")),
                reason=str(data.get("reason", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"not an audit checkpoint: {exc}") from None


def signed_bytes(tree_size: int, root: str, timestamp_ms: int, key_id: str, head: str) -> bytes:
    """The canonical bytes of a checkpoint's signed fields."""
    return _DOMAIN + f"{tree_size}\n{root}\n{timestamp_ms}\n{key_id}\n{head}\n".encode()


def sign_checkpoint(
    priv: Ed25519PrivateKey,
    tree_size: int,
    root: str,
    timestamp_ms: int,
    head_hash: str,
    reason: str = "",
) -> Checkpoint:
    """A checkpoint of ``tree_size`` entries with Merkle root ``root`` (hex), signed."""
    key_id = keys.public_key_id(priv.public_key())
    sig = keys.sign(priv, signed_bytes(tree_size, root, timestamp_ms, key_id, head_hash))
    return Checkpoint(tree_size, root, timestamp_ms, key_id, sig.hex(), head_hash, reason)


def _name(cp: Checkpoint) -> str:
    return f"checkpoint-{cp.tree_size:012d}-{cp.timestamp_ms}.json"


def write_offbox(cp: Checkpoint, target: str) -> str:
    """Write ``cp`` under ``target`` (a directory, or an fsspec URL such as
    ``s3://bucket/prefix``); returns where it went. Files are never overwritten."""
    text = json.dumps(cp.to_dict(), indent=1, sort_keys=True) + "\n"
    if "://" not in target:
        folder = Path(target).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / _name(cp)
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return str(path)
    import fsspec

    from mltrail.settings import settings

    url = target.rstrip("/") + "/" + _name(cp)
    options: dict[str, Any] = {}
    endpoint = settings().s3_endpoint
    if url.startswith("s3://") and endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    with fsspec.open(url, "w", **options) as fh:
        fh.write(text)
    return url


def read_checkpoints(source: str) -> list[Checkpoint]:
    """Every checkpoint at ``source``: one JSON file, a directory of them, or an fsspec URL
    of either; ordered by tree size, then time.

    Raises:
        InvalidArgumentError: a file that is not a checkpoint.
    """
    texts: list[tuple[str, str]] = []
    if "://" not in source:
        path = Path(source).expanduser()
        files = sorted(path.glob("checkpoint-*.json")) if path.is_dir() else [path]
        texts = [(str(f), f.read_text()) for f in files]
    else:
        import fsspec

        from mltrail.settings import settings

        options: dict[str, Any] = {}
        endpoint = settings().s3_endpoint
        if source.startswith("s3://") and endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
        fs, root = fsspec.core.url_to_fs(source, **options)
        names = (
            [source]
            if source.endswith(".json")
            else sorted(fs.glob(root.rstrip("/") + "/checkpoint-*.json"))
        )
        for name in names:
            with fs.open(name, "r") as fh:
                texts.append((str(name), fh.read()))
    out: list[Checkpoint] = []
    for name, text in texts:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{name} is not JSON: {exc}") from None
        if isinstance(data, list):
            out.extend(Checkpoint.from_dict(d) for d in data)
        elif isinstance(data, dict):
            out.append(Checkpoint.from_dict(data))
        else:
            raise InvalidArgumentError(f"{name} is not an audit checkpoint")
    return sorted(out, key=lambda c: (c.tree_size, c.timestamp_ms))
