"""`data add` that cannot finish: a full disk is one clear line; a refused add touches nothing."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from clihelp_data import run_error
from datahelp import write_files

from mltrail.cli._entry import run_fast
from mltrail.data.ops import add
from mltrail.data.repo import DataRepo
from mltrail.errors import StoreError, UnsafePathError
from mltrail.testing.faults import FaultInjector


def _objects(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and p.parent.parent.name == "blake3"]


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob(".tmp-*")]


def test_add_on_full_disk_is_one_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ENOSPC while storing: exit 1, one `error:` line naming the path and "disk full", no
    traceback, no pointer, no temp file, no object under a real name."""
    write_files(repo, {f"d/f{i}.bin": os.urandom(2000) for i in range(20)})
    capsys.readouterr()
    with FaultInjector(repo / ".mltrail", fail_at=5, errno_=errno.ENOSPC, sticky=True) as faults:
        code = run_fast(["data", "add", "-q", "d"])
    out, err = capsys.readouterr()
    assert faults.fired
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "disk full" in err and ".mltrail/cache" in err and "d" in err
    assert "Traceback" not in err
    assert not (repo / "d.mltrail").exists()
    assert _temps(repo) == []
    assert _objects(repo / ".mltrail/cache") == []
    # hardlinked files were given back their mode: the workspace is as it was
    assert all(os.stat(p).st_mode & stat.S_IWUSR for p in (repo / "d").iterdir())
    (res,) = add(DataRepo(repo), ["d"], progress=False)
    assert res.pointer.files == 20


def test_add_full_disk_through_typer(repo: Path) -> None:
    """The Typer command says the same one line (EIO this time)."""
    write_files(repo, {"big.bin": os.urandom(5000)})
    with FaultInjector(repo / ".mltrail", fail_at=1, errno_=errno.EIO, sticky=True):
        err = run_error("data", "add", "big.bin")
    assert err.startswith("error: ") and "I/O error" in err and "Traceback" not in err
    assert not (repo / "big.bin.mltrail").exists()


def test_add_error_is_a_store_error(repo: Path) -> None:
    """The library raises StoreError (an MltrailError) chained to the OSError."""
    write_files(repo, {"x.bin": b"x" * 100})
    with (
        FaultInjector(repo / ".mltrail", fail_at=1, errno_=errno.ENOSPC, sticky=True),
        pytest.raises(StoreError, match="disk full") as info,
    ):
        add(DataRepo(repo), ["x.bin"], progress=False)
    assert isinstance(info.value.__cause__, OSError)


def test_refused_add_touches_nothing(repo: Path, tmp_path: Path) -> None:
    """An escaping symlink refuses the add before any file is hardlinked or made read-only,
    before any object, pointer or .gitignore line is written (for every path given)."""
    write_files(repo, {"ok/a.bin": b"a" * 100, "d/a.bin": b"1" * 100, "d/b.bin": b"2" * 100})
    (tmp_path / "secret").write_text("s")
    os.symlink("../../secret", repo / "d/escape")
    before = {p: os.stat(p) for p in [*(repo / "d").glob("*.bin"), repo / "ok/a.bin"]}
    with pytest.raises(UnsafePathError, match="escape"):
        add(DataRepo(repo), ["ok", "d"], progress=False)
    for p, st in before.items():
        now = os.stat(p)
        assert (now.st_nlink, now.st_mode) == (st.st_nlink, st.st_mode), p
    assert _objects(repo / ".mltrail/cache") == []
    assert not (repo / "ok.mltrail").exists() and not (repo / "d.mltrail").exists()
    assert not (repo / ".gitignore").exists()
