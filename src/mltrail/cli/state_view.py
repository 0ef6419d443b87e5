"""Rich sections for a run's captured state, printed by ``mltrail runs show``.

Each section reads its state document defensively: a kind that was never recorded (an older
run, capture turned off) or whose capture failed prints a short line instead of an error.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mltrail.formatting import KEY_PACKAGES, fmt_time

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from mltrail.store.base import ConsoleLine

__all__ = ["CONSOLE_TAIL", "KEY_PACKAGES", "console_tail_dicts", "print_state"]

CONSOLE_TAIL = 20
_LISTED = 10


def print_state(
    console: Console, state: dict[str, dict[str, Any]], lines: Sequence[ConsoleLine]
) -> None:
    """Print the sections code, data, environment, hardware, seeds, invocation and console.

    Args:
        console: Where to print.
        state: ``Api.state(run_id)``: one document per kind.
        lines: The console tail to show (at most :data:`CONSOLE_TAIL` lines are printed).
    """
    sections: list[tuple[str, str, Callable[[dict[str, Any]], Table]]] = [
        ("code", "code", _code),
        ("data", "data", _data),
        ("environment", "environment", _environment),
        ("hardware", "hardware", _hardware),
        ("seeds", "seeds", _seeds),
        ("invocation", "config", _invocation),
    ]
    for title, kind, render in sections:
        _section(console, title)
        doc = state.get(kind)
        if doc is None:
            console.print("[dim](not recorded)[/dim]")
        elif isinstance(doc.get("error"), str) and len(doc) == 1:
            console.print(_text(f"capture failed: {doc['error']}", "red"))
        else:
            console.print(render(doc))
    verdict = state.get("verdict")
    if isinstance(verdict, dict):
        _section(console, "reproduction verdict")
        console.print(_verdict(verdict))
    _section(console, f"console (last {CONSOLE_TAIL} lines)")
    if not lines:
        console.print("[dim](none)[/dim]")
    for line in list(lines)[-CONSOLE_TAIL:]:
        out = _text(fmt_time(line.timestamp_ms)[11:] + " ", "dim")
        out.append(f"{line.stream:<6} ", "red" if line.stream == "stderr" else "dim")
        console.print(out.append(line.text))


def _section(console: Console, title: str) -> None:
    console.print()
    console.print(_text(title, "bold magenta"))


def _text(text: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(text, style=style)


def _grid(rows: list[tuple[str, str | Text]]) -> Table:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value if not isinstance(value, str) else _text(value))
    return grid


def _listed(items: Sequence[str], limit: int = _LISTED) -> str:
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _gib(n: Any) -> str:
    return f"{n / 2**30:.1f} GiB" if isinstance(n, (int, float)) else "unknown"


def _pairs(d: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (d or {}).items())


# -- sections -----------------------------------------------------------------------------


def _code(doc: dict[str, Any]) -> Table:
    rows: list[tuple[str, str | Text]] = []
    if not doc.get("versioned", True):
        reason = f" ({doc['reason']})" if doc.get("reason") else ""
        rows.append(("version", _text(f"{doc.get('note', 'no code version')}{reason}", "yellow")))
    for repo in doc.get("repos") or []:
        entry = " (entry point)" if repo.get("root") == doc.get("entry_repo") else ""
        rows.append(("repository", _text(f"{repo.get('root')}{entry}", "cyan")))
        rows += _repo_rows(repo)
    for err in doc.get("errors") or []:
        rows.append(("not a repo", _text(f"{err.get('path')}: {err.get('reason')}", "yellow")))
    return _grid(rows)


def _repo_rows(repo: dict[str, Any]) -> list[tuple[str, str | Text]]:
    if repo.get("error"):
        return [("error", _text(str(repo["error"]), "red"))]
    changed: list[str] = repo.get("changed_files") or []
    untracked: list[str] = repo.get("untracked") or []
    dirty = _text("yes", "yellow") if repo.get("dirty") else _text("no", "green")
    rows: list[tuple[str, str | Text]] = [
        ("sha", repo.get("sha") or "(no commit yet)"),
        ("branch", repo.get("branch") or "(detached)"),
        ("dirty", dirty),
    ]
    if changed:
        rows.append(("changed", f"{len(changed)}: {_listed(changed)}"))
    more = "+" if repo.get("untracked_truncated") else ""
    rows.append(("untracked", f"{len(untracked)}{more} file{'' if len(untracked) == 1 else 's'}"))
    stats = repo.get("diff_stats") or {}
    if repo.get("diff"):
        files, ins, dels = (stats.get(k, 0) for k in ("files", "insertions", "deletions"))
        diff = f"{files} files, +{ins} -{dels} (blob {str(repo['diff'])[:19]})"
        rows.append(("uncommitted", diff))
    if repo.get("diff_error"):
        rows.append(("uncommitted", _text(str(repo["diff_error"]), "yellow")))
    remotes = repo.get("remotes") or {}
    rows.append(("remotes", _pairs(remotes) or "(none)"))
    return rows


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "?"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _data(doc: dict[str, Any]) -> Table:
    rows: list[tuple[str, str | Text]] = []
    pointers = [p for p in doc.get("pointers") or [] if isinstance(p, dict)]
    for p in pointers[: _LISTED * 5]:
        files = p.get("files")
        what = f"{files} files, " if p.get("kind") == "tree" and files is not None else ""
        source = "" if p.get("source") == "mltrail" else f" [{p.get('source')}]"
        detail = _text(f"{p.get('digest')}  ({what}{_size(p.get('size'))}){source}")
        rows.append((str(p.get("path")), detail))
    if len(pointers) > _LISTED * 5:
        rows.append(("...", f"and {len(pointers) - _LISTED * 5} more"))
    if not pointers:
        rows.append(("pointers", _text("(no data pointers in the repository)", "dim")))
    for err in doc.get("errors") or []:
        rows.append(("unreadable", _text(str(err), "yellow")))
    return _grid(rows)


def _environment(doc: dict[str, Any]) -> Table:
    py = doc.get("python") or {}
    packages: dict[str, str] = doc.get("packages") or {}
    keys = [f"{name} {packages[name]}" for name in KEY_PACKAGES if name in packages]
    count = f"{len(packages)} installed" + (f"; {', '.join(keys)}" if keys else "")
    locks = [f"{e.get('path')} {str(e.get('digest'))[:19]}" for e in doc.get("lock_files") or []]
    rows: list[tuple[str, str | Text]] = [
        ("python", f"{py.get('version')} {py.get('implementation')} ({py.get('executable')})"),
        ("packages", count),
        ("lock files", ", ".join(locks) or "(none found)"),
        ("container", _pairs(doc.get("container")) or "(none)"),
        ("nix", _pairs(doc.get("nix")) or "(none)"),
        ("env vars", _pairs(doc.get("env")) or "(none of the allow-listed set)"),
    ]
    for probe, err in (doc.get("errors") or {}).items():
        rows.append((f"error ({probe})", _text(str(err), "red")))
    return _grid(rows)


def _hardware(doc: dict[str, Any]) -> Table:
    os_ = doc.get("os") or {}
    cpu = doc.get("cpu") or {}
    counts = f"{cpu.get('physical')} physical / {cpu.get('logical')} logical"
    rows: list[tuple[str, str | Text]] = [
        ("os", f"{os_.get('system')} {os_.get('release')} {os_.get('machine')}"),
        ("host", str(doc.get("hostname"))),
        ("cpu", f"{cpu.get('model') or 'unknown'}, {counts}, {cpu.get('usable')} usable"),
        ("memory", _gib(doc.get("memory_bytes"))),
    ]
    gpus = doc.get("gpus") or []
    if not gpus:
        reason = (doc.get("nvml") or {}).get("reason") or "none found"
        rows.append(("gpus", _text(f"no GPU ({reason})", "dim")))
    for gpu in gpus:
        mig = gpu.get("mig_mode") or {}
        desc = (
            f"{gpu.get('name')}, {_gib(gpu.get('memory_total_bytes'))}, "
            f"driver {gpu.get('driver_version')}, CUDA {gpu.get('cuda_driver_version')}, "
            f"sm {gpu.get('compute_capability')}, MIG {'on' if mig.get('current') else 'off'}"
        )
        rows.append((f"gpu {gpu.get('index')}", desc))
    for name, info in (doc.get("frameworks") or {}).items():
        if info:
            extra = {k: v for k, v in info.items() if k not in ("version", "errors")}
            rows.append((name, f"{info.get('version')} {_pairs(extra)}".strip()))
    return _grid(rows)


def _seeds(doc: dict[str, Any]) -> Table:
    seeding = doc.get("seeding")
    state = doc.get("state") or {}
    rows: list[tuple[str, str | Text]] = []
    if seeding:
        seeded = ", ".join(seeding.get("seeded") or [])
        rows.append(("seed", f"{seeding.get('seed')} ({seeding.get('source')}); {seeded}"))
        rows.append(("deterministic", "yes" if seeding.get("deterministic") else "no"))
        rows.append(("switches set", _pairs(seeding.get("switches")) or "(none)"))
    else:
        rows.append(("seed", _text("not seeded with mltrail.seed_everything", "dim")))
    env = {k: "unset" if v is None else v for k, v in (state.get("env") or {}).items()}
    rows.append(("env", _pairs(env)))
    rows.append(("hash random", str(state.get("python_hash_randomization"))))
    torch = state.get("torch")
    if torch:
        rows.append(("torch", _pairs({k: v for k, v in torch.items() if k != "errors"})))
    return _grid(rows)


def _invocation(doc: dict[str, Any]) -> Table:
    rows: list[tuple[str, str | Text]] = [
        ("source", str(doc.get("source") or "(no config)")),
        ("argv", " ".join(doc.get("argv") or [])),
    ]
    hydra = doc.get("hydra")
    if hydra:
        if hydra.get("error"):
            rows.append(("hydra", _text(str(hydra["error"]), "red")))
        else:
            rows.append(("hydra config", str(hydra.get("config_name"))))
            rows.append(("overrides", " ".join(hydra.get("overrides") or []) or "(none)"))
            sources = [
                f"{s.get('provider')}: {s.get('path')}" for s in hydra.get("config_sources") or []
            ]
            rows.append(("config sources", _listed(sources)))
    return _grid(rows)


_VERDICT_STYLES = {"identical": "bold green", "within-tolerance": "bold yellow"}


def _verdict(doc: dict[str, Any]) -> Table:
    """The ``verdict`` kind (``mltrail reproduce``/``verify-determinism``)."""
    verdict = str(doc.get("verdict"))
    rows: list[tuple[str, str | Text]] = [
        ("verdict", _text(verdict, _VERDICT_STYLES.get(verdict, "bold red"))),
        ("of run", str(doc.get("of"))),
        ("summary", str(doc.get("summary"))),
        ("tolerance", f"rtol={doc.get('rtol')}, atol={doc.get('atol')}"),
    ]
    if doc.get("env_mode"):
        rows.append(("environment", str(doc["env_mode"])))
    for cause in doc.get("causes") or []:
        rows.append(("cause", _text(str(cause), "yellow")))
    for item in doc.get("not_restored") or []:
        if isinstance(item, dict):
            text = f"{item.get('subject')}: {item.get('detail')}"
            rows.append(("not restored", _text(text, "red")))
    return _grid(rows)


def console_tail_dicts(lines: Sequence[ConsoleLine]) -> list[dict[str, Any]]:
    """Console lines as JSON-ready dicts (``timestamp_ms``, ``stream``, ``text``)."""
    return [dataclasses.asdict(line) for line in lines]
