"""Data capture: the digests of the data a run's repository points at.

One ``git ls-files`` finds the pointer files (``*.mltrail``), DVC's ``*.dvc`` files and
``dvc.lock`` files, tracked or untracked-but-not-ignored; each is a small read. mltrail's
pointers and ``.dvc`` files as DVC writes them parse without YAML; ``dvc.lock`` (and anything
hand-edited) goes through PyYAML. Nothing is hashed: the digests are what the files record
(``mltrail data status`` says whether the workspace still matches them).

The document (kind ``data``)::

    {"repo": "/abs/root",
     "pointers": [{"path": "data/train", "pointer": "data/train.mltrail", "source": "mltrail",
                   "kind": "tree", "digest": "blake3:....tree", "algorithm": "blake3",
                   "size": 123, "files": 10}, ...],
     "errors": ["data/bad.mltrail: ..."]}

``source`` is ``mltrail``, ``dvc`` (a ``.dvc`` file) or ``dvc.lock`` (with ``stage``); DVC's
digests are ``md5:<hex>`` and ``md5:<hex>.dir`` for directories.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mltrail.capture.base import Captured

if TYPE_CHECKING:
    from mltrail.data.dvc import DvcOut

__all__ = ["DataCapturer", "capture_data", "data_pointers"]

_TIMEOUT_S = 20.0
_MAX_POINTERS = 10_000
_ITEM_RE = re.compile(r"^(- |  )([a-z0-9_]+):[ \t]*(.*?)[ \t]*$")


_listed: dict[Path, tuple[tuple[Any, ...], list[str]]] = {}


def _ls_files(root: Path) -> list[str]:
    """The pointer files of ``root`` (tracked or not, not ignored); a run from an unchanged
    working tree (:func:`mltrail.capture.git.tree_stamp`) reuses the last listing."""
    from mltrail.capture.git import tree_stamp

    stamp = tree_stamp(root)
    hit = _listed.get(root)
    if stamp is not None and hit is not None and hit[0] == stamp:
        return list(hit[1])
    names = _list_pointers(root)
    if stamp is not None:
        _listed[root] = (stamp, names)
    return list(names)


def _list_pointers(root: Path) -> list[str]:
    from mltrail._git import run_git
    from mltrail.errors import GitError

    args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    try:
        out = run_git(root, *args, "--", "*.mltrail", "*.dvc", "*dvc.lock", timeout_s=_TIMEOUT_S)
    except GitError as exc:
        raise RuntimeError(exc.message) from None
    names = dict.fromkeys(os.fsdecode(p) for p in out.split(b"\0") if p)
    return sorted(names)


def _scalar(raw: str) -> Any:
    if raw.isdigit():
        return int(raw)
    if raw[:1] in "\"'":
        return None  # quoted: let YAML unquote it
    if raw in ("true", "false", "null", "~") or raw[:1] in "&*!|>[{%@`#":
        return None
    return raw


def _fast_dvc_outs(text: str) -> list[dict[str, Any]] | None:
    """The ``outs`` of a ``.dvc`` file in DVC's own layout; None when YAML is needed."""
    outs: list[dict[str, Any]] = []
    section = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith((" ", "-")):
            key, sep, rest = line.partition(":")
            if not sep or rest.strip():
                if sep and key in ("md5", "frozen", "wdir", "desc"):  # old top-level fields
                    section = None
                    continue
                return None
            section = key
            continue
        match = _ITEM_RE.match(line)
        if match is None:
            return None
        if section != "outs":
            continue
        start, key, raw = match.groups()
        value = _scalar(raw)
        if value is None:
            return None
        if start == "- ":
            outs.append({})
        elif not outs:
            return None
        outs[-1][key] = value
    return outs


def _dvc_outs(root: Path, rel: str) -> list[DvcOut]:
    from mltrail.data import dvc

    raw = (root / rel).read_bytes()
    if PurePosixPath(rel).name == "dvc.lock":
        return dvc.parse_dvc_lock(raw, rel)
    if len(raw) <= 64 * 1024:
        fast = _fast_dvc_outs(raw.decode("utf-8", "replace"))
        if fast is not None:
            base = PurePosixPath(rel).parent
            outs = [dvc.out_from_dict(o, base, rel, None) for o in fast]
            return [o for o in outs if o is not None]
    return dvc.parse_dvc_file(raw, rel)


def data_pointers(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every pointer digest in the work tree at ``root`` and the problems met.

    Returns:
        ``(pointers, errors)``: one dict per pointer or DVC output (see the module doc), and
        one message per file that could not be read.
    """
    from mltrail.data.pointer import POINTER_SUFFIX, parse_bytes

    pointers: list[dict[str, Any]] = []
    errors: list[str] = []
    for rel in _ls_files(root)[:_MAX_POINTERS]:
        name = PurePosixPath(rel).name
        try:
            if name.endswith(POINTER_SUFFIX):
                raw = (root / rel).read_bytes()
                p = parse_bytes(raw, rel, name)
                path = str(PurePosixPath(rel).parent / p.path)
                pointers.append({"path": path, "pointer": rel, "source": "mltrail", **_fields(p)})
            elif name.endswith(".dvc") or name == "dvc.lock":
                for out in _dvc_outs(root, rel):
                    entry: dict[str, Any] = {
                        "path": out.path,
                        "pointer": rel,
                        "source": "dvc.lock" if out.stage is not None else "dvc",
                        "kind": "tree" if out.is_dir else "file",
                        "digest": out.digest,
                        "algorithm": "md5",
                        "size": out.size,
                        "files": out.files,
                    }
                    if out.stage is not None:
                        entry["stage"] = out.stage
                    pointers.append(entry)
        except FileNotFoundError:
            continue  # tracked but deleted in the work tree
        except Exception as exc:  # a bad file is recorded, never raised
            errors.append(str(exc) if rel in str(exc) else f"{rel}: {exc}")
    return pointers, errors


def _fields(p: Any) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "digest": p.digest,
        "algorithm": p.algorithm,
        "size": p.size,
        "files": p.files,
    }


def capture_data(root: Path | None) -> Captured:
    """The ``data`` state of a run whose code lives in the work tree at ``root``.

    Args:
        root: The git work-tree root (None outside git: nothing to record).

    Returns:
        ``Captured("data", {"repo", "pointers", "errors"})``; never raises.
    """
    if root is None:
        return Captured("data", {"repo": None, "pointers": [], "errors": []})
    try:
        pointers, errors = data_pointers(root)
    except Exception as exc:
        return Captured("data", {"repo": str(root), "pointers": [], "errors": [str(exc)]})
    return Captured("data", {"repo": str(root), "pointers": pointers, "errors": errors})


class DataCapturer:
    """:class:`~mltrail.capture.base.Capturer` for the data of one repository."""

    kind = "data"

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def available(self) -> bool:
        """Whether there is a repository to look in."""
        return self.root is not None

    def capture(self) -> Captured:
        """Capture now; see :func:`capture_data`."""
        return capture_data(self.root)
