"""Settings: every MLTRAIL_* variable is read in settings.py, at call time."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from mltrail.settings import settings

SRC = Path(__file__).resolve().parents[1] / "src" / "mltrail"
#: Files still allowed to read MLTRAIL_* variables themselves (none: settings.py reads them).
# The hook `mltrail run` puts on a Python child's path runs inside the child's interpreter,
# which need not have mltrail installed: it imports nothing from mltrail, settings included.
ALLOWED: frozenset[str] = frozenset({"repro/_hook/sitecustomize.py"})


def _env_constants(trees: dict[Path, ast.Module]) -> set[str]:
    """Names bound at module level to a string starting with ``MLTRAIL_``."""
    names: set[str] = set()
    for tree in trees.values():
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and str(node.value.value).startswith("MLTRAIL_")
            ):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _names_mltrail_var(node: ast.AST, constants: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value.startswith("MLTRAIL_")
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.Attribute):
        return node.attr in constants
    return False


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ``."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _env_reads(tree: ast.Module, constants: set[str]) -> list[int]:
    """Lines reading an MLTRAIL_* variable: ``os.environ.get/pop/setdefault(X)``,
    ``os.getenv(X)``, ``os.environ[X]`` (not as an assignment target) and ``X in os.environ``."""
    lines = []
    for node in ast.walk(tree):
        key: ast.AST | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr in ("get", "pop", "setdefault")
                and _is_environ(func.value)
            ) or (isinstance(func, ast.Attribute | ast.Name) and _name(func) == "getenv"):
                key = node.args[0]
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and _is_environ(node.value)
        ):
            key = node.slice
        elif (
            isinstance(node, ast.Compare)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any(_is_environ(c) for c in node.comparators)
        ):
            key = node.left
        if key is not None and _names_mltrail_var(key, constants):
            lines.append(node.lineno)
    return lines


def _name(node: ast.AST) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def test_mltrail_variables_are_read_only_in_settings():
    """No module but settings.py reads an MLTRAIL_* environment variable (the offenders
    are listed)."""
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(SRC.rglob("*.py"))}
    constants = _env_constants(trees)
    offenders = []
    for path, tree in trees.items():
        rel = path.relative_to(SRC).as_posix()
        if rel == "settings.py" or rel in ALLOWED:
            continue
        offenders += [f"src/mltrail/{rel}:{line}" for line in _env_reads(tree, constants)]
    assert not offenders, "read MLTRAIL_* through mltrail.settings.settings():\n" + "\n".join(
        offenders
    )


def test_the_scanner_finds_each_form_of_read():
    """The check above sees literal names, named constants, subscripts and `in` tests."""
    code = (
        "import os\nV = 'MLTRAIL_X'\n"
        "a = os.environ.get('MLTRAIL_A')\nb = os.getenv(V)\nc = os.environ[V]\n"
        "d = 'MLTRAIL_D' in os.environ\nos.environ[V] = '1'\ne = os.environ.get('HOME')\n"
    )
    tree = ast.parse(code)
    assert _env_reads(tree, _env_constants({Path("x.py"): tree})) == [3, 4, 5, 6]


def test_new_settings_read_at_call_time(monkeypatch: pytest.MonkeyPatch):
    """token, CA bundle (MLTRAIL_CA_BUNDLE over REQUESTS_CA_BUNDLE), seed, image digest and
    the server worker config come from the environment as it is when settings() runs."""
    for name in ("MLTRAIL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "MLTRAIL_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert settings().ca_bundle == "" and settings().token == ""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/req.pem")
    assert settings().ca_bundle == "/etc/req.pem"
    monkeypatch.setenv("MLTRAIL_CA_BUNDLE", "/etc/ours.pem")
    assert settings().ca_bundle == "/etc/ours.pem"
    monkeypatch.setenv("MLTRAIL_TOKEN", "t")
    monkeypatch.setenv("MLTRAIL_SEED", " 7 ")
    monkeypatch.setenv("MLTRAIL_IMAGE_DIGEST", "sha256:abc")
    monkeypatch.setenv("MLTRAIL_SERVER_CONFIG", "{}")
    monkeypatch.setenv("MLTRAIL_CODE_REPOS", f" /a {os.pathsep} {os.pathsep}/b")
    s = settings()
    assert (s.token, s.seed, s.image_digest, s.server_config) == ("t", "7", "sha256:abc", "{}")
    assert s.code_repos == ("/a", "/b")
