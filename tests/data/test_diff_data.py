"""`mltrail data diff`: files between revisions and the workspace; table schema and stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from clihelp_data import run_cli, run_json
from datahelp import commit_all, write_files

from mltrail.data.diff import diff_data
from mltrail.data.ops import add
from mltrail.data.repo import DataRepo
from mltrail.data.tables import table_stats


def _replace(path: Path, content: str) -> None:
    path.unlink()
    path.write_text(content)


def test_files_between_revisions_and_workspace(repo: Path) -> None:
    """added/removed/modified inside a tree, between two commits and against the workspace."""
    write_files(repo, {"d/a.txt": "a", "d/b.txt": "b", "one.bin": "1"})
    add(DataRepo(repo), ["d", "one.bin"])
    first = commit_all(repo, "v1")
    _replace(repo / "d/a.txt", "A")
    (repo / "d/b.txt").unlink()
    write_files(repo, {"d/c.txt": "c"})
    add(DataRepo(repo), ["d"])
    second = commit_all(repo, "v2")
    d = diff_data(DataRepo(repo), first, second)
    assert [(f.path, f.change) for f in d.files] == [
        ("d/a.txt", "modified"),
        ("d/b.txt", "removed"),
        ("d/c.txt", "added"),
    ]
    assert diff_data(DataRepo(repo), second, None).identical
    _replace(repo / "one.bin", "2")
    ws = diff_data(DataRepo(repo))
    assert [(f.path, f.change) for f in ws.files] == [("one.bin", "modified")]
    only = diff_data(DataRepo(repo), first, second, "d/c.txt")
    assert [f.path for f in only.files] == ["d/c.txt"]


def test_table_schema_rows_and_stats(repo: Path) -> None:
    """A CSV and a Parquet file change: schema changes, row counts and column statistics."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    write_files(repo, {"t/x.csv": "id,score,name\n1,0.5,a\n2,,b\n3,1.5,a\n"})
    pq.write_table(pa.table({"k": [1, 2, 3], "v": [1.0, 2.0, None]}), repo / "t/p.parquet")
    add(DataRepo(repo), ["t"])
    first = commit_all(repo)
    _replace(repo / "t/x.csv", "id,score,flag\n1,0.5,true\n2,2.5,false\n3,1.5,true\n4,9,true\n")
    (repo / "t/p.parquet").unlink()
    pq.write_table(pa.table({"k": [1, 2, 3], "v": [1.0, 2.0, 4.0]}), repo / "t/p.parquet")
    add(DataRepo(repo), ["t"])
    second = commit_all(repo)
    d = diff_data(DataRepo(repo), first, second)
    tables = {t.path: t for t in d.tables}
    csv = tables["t/x.csv"].to_dict()
    assert csv["rows"] == {"a": 3, "b": 4, "delta": 1}
    changes = {(c["column"], c["change"]) for c in csv["schema_changes"]}
    assert changes == {("name", "removed"), ("flag", "added")}
    score_a, score_b = csv["a"]["columns"]["score"], csv["b"]["columns"]["score"]
    assert (score_a["nulls"], score_a["min"], score_a["max"], score_a["mean"]) == (1, 0.5, 1.5, 1.0)
    assert (score_b["nulls"], score_b["max"], score_b["distinct"]) == (0, 9.0, 4)
    assert "score" in csv["columns_changed"] and "id" in csv["columns_changed"]
    parquet = tables["t/p.parquet"].to_dict()
    assert parquet["schema_changes"] == []
    assert parquet["a"]["columns"]["v"]["nulls"] == 1 and parquet["b"]["columns"]["v"]["nulls"] == 0
    assert parquet["columns_changed"] == ["v"]


def test_table_stats_direct(tmp_path: Path) -> None:
    """Stats of a TSV by name; a non-table is refused with the file named."""
    pytest.importorskip("pyarrow")
    from mltrail.errors import InvalidArgumentError

    (tmp_path / "blob").write_text("a\tb\n1\tx\n2\ty\n2\tx\n")
    st = table_stats(tmp_path / "blob", "data.tsv")
    assert st.rows == 3 and st.columns["a"].distinct == 2 and st.columns["b"].min == "x"
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InvalidArgumentError, match="bad.parquet"):
        table_stats(tmp_path / "bad.parquet")


def test_missing_pyarrow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pyarrow the message says pip install 'mltrail[tables]'."""
    import builtins

    from mltrail.data.tables import MissingExtraError, require_pyarrow

    real = builtins.__import__

    def fake(name: str, *args: object, **kwargs: object) -> object:
        if name == "pyarrow":
            raise ImportError("no pyarrow")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(MissingExtraError, match=r"pip install 'mltrail\[tables\]'"):
        require_pyarrow()


def test_diff_cli_json_and_text(repo: Path) -> None:
    """The CLI: REV_A REV_B PATH parsing, --json, and the text report with table stats."""
    pytest.importorskip("pyarrow")
    write_files(repo, {"t/x.csv": "a\n1\n"})
    run_cli("data", "add", "t")
    first = commit_all(repo)
    _replace(repo / "t/x.csv", "a\n1\n2\n")
    out = run_json("data", "diff")
    assert out["a"] == "HEAD" and out["b"] == "workspace"
    assert out["files"][0]["path"] == "t/x.csv" and out["files"][0]["change"] == "modified"
    assert out["tables"][0]["rows"] == {"a": 1, "b": 2, "delta": 1}
    run_cli("data", "add", "t")
    commit_all(repo)
    out = run_json("data", "diff", first, "HEAD", "t")
    assert out["summary"] == {"added": 0, "removed": 0, "modified": 1}
    text = run_cli("data", "diff", first, "HEAD")
    assert "M t/x.csv" in text and "rows: 1 -> 2" in text
    assert run_json("data", "diff", "HEAD", "HEAD")["identical"] is True
