"""A run's texts as files: ``mltrail runs console`` and ``mltrail runs show --patch``.

No Typer here (the commands in :mod:`mltrail.cli.runs` call these); the store is read
through :class:`~mltrail.api.Api`.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from mltrail.cli._light import CommandError, open_api, print_json

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.api import Api
    from mltrail.store.base import ConsoleLine

__all__ = ["FOLLOW_POLL_S", "patch_text", "print_console", "print_patch"]

#: how often ``runs console --follow`` looks for new lines
FOLLOW_POLL_S = 1.0
_STREAMS = ("stdout", "stderr")


def print_console(
    run: str,
    store: str | None,
    stream: str | None = None,
    follow: bool = False,
    as_json: bool = False,
) -> None:
    """Print the run's whole console (stdout lines to stdout, stderr lines to stderr).

    Args:
        run: a run id or unambiguous prefix.
        stream: only ``stdout`` or only ``stderr`` lines.
        follow: keep printing new lines while the run is running (and its last ones once it
            has ended).
        as_json: a JSON list of ``{timestamp_ms, stream, text}`` (not with ``follow``).

    Raises:
        CommandError: a bad ``stream``, or ``follow`` with ``as_json``.
    """
    if stream is not None and stream not in _STREAMS:
        raise CommandError(f"--stream must be stdout or stderr, got {stream!r}")
    if follow and as_json:
        raise CommandError("--follow prints lines as they come; it does not go with --json")
    api = open_api(store)
    run_id = api.run(run).run_id
    lines = _lines(api, run_id, stream)
    if as_json:
        from mltrail.cli.state_view import console_tail_dicts

        print_json(console_tail_dicts(lines))
        return
    _emit(lines)
    printed = len(lines)
    while follow:
        from mltrail.entities import RunStatus

        ended = api.run(run_id).status is not RunStatus.RUNNING
        lines = _lines(api, run_id, stream)
        _emit(lines[printed:])
        printed = len(lines)
        if ended:
            return
        time.sleep(FOLLOW_POLL_S)


def _lines(api: Api, run_id: str, stream: str | None) -> list[ConsoleLine]:
    lines = api.console(run_id)
    return lines if stream is None else [ln for ln in lines if ln.stream == stream]


def _emit(lines: Sequence[ConsoleLine]) -> None:
    for ln in lines:
        out = sys.stderr if ln.stream == "stderr" else sys.stdout
        out.write(ln.text + "\n")
    sys.stdout.flush()
    sys.stderr.flush()


def print_patch(run: str, store: str | None) -> None:
    """Print the run's uncommitted code as one patch (``git apply`` takes it); what it
    leaves out is said on stderr.

    Raises:
        CommandError: the run recorded no code state.
    """
    api = open_api(store)
    run_id = api.run(run).run_id
    code = api.state(run_id).get("code")
    if not isinstance(code, dict):
        raise CommandError(f"run {run_id} recorded no code state (capture was off)")
    text, notes = patch_text(api, code)
    sys.stdout.write(text)
    sys.stdout.flush()
    for note in notes:
        print(f"mltrail: {note}", file=sys.stderr)


def patch_text(api: Api, code: dict[str, Any]) -> tuple[str, list[str]]:
    """The diff of tracked files and the untracked source files (as new files) of every
    repository of a run's code state, and notes on what could not be included."""
    repos = [r for r in code.get("repos") or [] if isinstance(r, dict)]
    parts: list[str] = []
    notes: list[str] = []
    for repo in repos:
        path = repo.get("path", "")
        body: list[str] = []
        if repo.get("diff"):
            body.append(api.blob(repo["diff"]).decode("utf-8", "replace"))
        if repo.get("diff_error"):
            notes.append(f"{path}: the diff of tracked files was not kept: {repo['diff_error']}")
        for item in repo.get("untracked_sources") or []:
            digest, name = item.get("digest"), item.get("path")
            if item.get("skipped"):
                notes.append(f"{path}: {name} was not saved with the run ({item['skipped']})")
                continue
            if not digest or not name:
                continue
            try:
                content = api.blob(digest).decode("utf-8")
            except UnicodeDecodeError:
                notes.append(f"{path}: {name} is not UTF-8 text; left out of the patch")
                continue
            body.append(_new_file_diff(name, content))
        if not body:
            continue
        if len(repos) > 1:  # git apply skips text before the first "diff --git"
            parts.append(f"# repository: {path}\n")
        parts.extend(b if b.endswith("\n") else b + "\n" for b in body)
    if not parts:
        notes.append("the run's code was committed: no uncommitted changes were recorded")
    return "".join(parts), notes


def _new_file_diff(name: str, content: str) -> str:
    """``content`` as a git diff that creates the file ``name``."""
    lines = content.split("\n")
    last_newline = content.endswith("\n")
    if last_newline:
        lines = lines[:-1]
    head = f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n"
    if not lines:
        return head.replace("--- /dev/null\n+++ b/" + name + "\n", "")
    body = [f"@@ -0,0 +1,{len(lines)} @@\n", *(f"+{ln}\n" for ln in lines)]
    if not last_newline:
        body.append("\\ No newline at end of file\n")
    return head + "".join(body)
