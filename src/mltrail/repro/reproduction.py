"""Reproduce a recorded run: follow its plan, run the recorded command as a new run, judge it.

The steps of :func:`reproduce`, in order: **plan** (:func:`~mltrail.repro.plan.make_plan`,
read-only), **code** (a git worktree at the recorded commit with the recorded diff, in a
scratch folder or ``workdir``), **data** (by digest, verified), **environment** (this
interpreter, or a rebuilt virtual environment), **run** (the recorded command moved into the
checkout, with the recorded numerics variables and seed, through
:mod:`~mltrail.repro.launcher` as a new run tagged ``reproduction-of``) and **verdict**
(:func:`~mltrail.repro.judge.judge`). The scratch checkout is removed afterwards.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from mltrail.errors import NotFoundError, NotReproducibleError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mltrail.api import Api
    from mltrail.repro.code import RestoredCode
    from mltrail.repro.environment import RebuiltEnv
    from mltrail.repro.plan import Plan
    from mltrail.repro.progress import Progress
    from mltrail.repro.verdict import Verdict
    from mltrail.sdk.run import Run

__all__ = ["NotReproducibleError", "reproduce"]


def reproduce(
    run_id: str,
    *,
    store: str | os.PathLike[str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    env_mode: str = "current",
    rtol: float = 1e-5,
    atol: float = 1e-8,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
) -> Verdict:
    """Re-run a recorded run from its record and say whether the result came out the same.

    Args:
        run_id: The run to reproduce (id or unambiguous prefix).
        store: Where it lives (default ``MLTRAIL_STORE`` of ``env``, else ``.mltrail/`` at
            the git root of ``cwd``); the new run goes there too.
        workdir: Where to check out the code (and build the environment), kept afterwards;
            None: a scratch folder, removed afterwards.
        env_mode: ``current`` (this interpreter, package differences reported) or
            ``rebuild`` (a fresh virtual environment from the recorded frozen requirements).
        rtol: Relative tolerance, of the original's value (``np.isclose``'s default).
        atol: Absolute tolerance.
        dry_run: Make the plan only (the verdict is None).
        env: The environment the command starts from (None: this process's); the recorded
            numerics variables and seed are applied to it. ``os.environ`` is never changed.
        cwd: The folder relative paths (``store``, ``workdir``) are taken from, and where
            the command runs when its recorded folder is not there (None: the current one).
        progress: Told the plan and each step (default: nothing is said).
        stdout: Where the command's standard output is echoed (None: ours).
        stderr: Where its standard error is echoed (None: ours).

    Returns:
        The :class:`~mltrail.repro.verdict.Verdict`: ``identical`` / ``within-tolerance``
        (exit status 0) or ``diverged`` / ``failed`` (1), with the plan, the new run's id,
        the comparison, its causes and the diff of the two runs.

    Raises:
        NotFoundError: No such run, or no store there.
        InvalidArgumentError: A bad ``env_mode`` or tolerance.
        NotReproducibleError: The plan has no command to run.
        CodeRestoreError: The code could not be checked out.
        LaunchError: The command could not be started.

    Example:
        >>> from mltrail.repro import reproduce
        >>> verdict = reproduce("3f2a9c1e", store="repo/.mltrail")  # doctest: +SKIP
        >>> verdict.verdict, verdict.exit_code  # doctest: +SKIP
        ('identical', 0)
    """
    from mltrail.repro.compare import check_tolerances
    from mltrail.repro.plan import make_plan
    from mltrail.repro.progress import QUIET
    from mltrail.repro.verdict import Verdict

    report = progress or QUIET
    here = Path.cwd() if cwd is None else Path(cwd).resolve()
    check_tolerances(rtol, atol)
    api = _open_api(store, env, here)
    plan = make_plan(api, run_id, env_mode)
    report.planned(plan)
    if dry_run:
        return Verdict(None, original=plan.run.run_id, plan=plan)
    if not plan.runnable:
        reasons = "; ".join(i.detail for i in plan.missing if i.kind == "command")
        raise NotReproducibleError(
            f"cannot reproduce run {plan.run.run_id}: {reasons or 'no command recorded'}"
        )
    keep = workdir is not None
    base = _base_folder(workdir, here)
    made: list[RestoredCode] = []
    try:
        run = _Reproduction(api, plan, base, here, env, report, made)
        return run.execute(rtol, atol, stdout, stderr, kept=base if keep else None)
    finally:
        if not keep:
            _remove(base, made)


def _open_api(
    store: str | os.PathLike[str] | None, env: Mapping[str, str] | None, cwd: Path
) -> Api:
    """Open the store for reading; naming a folder or file that holds none is an error."""
    from mltrail.api import Api
    from mltrail.events.spool import SPOOL_SUFFIX
    from mltrail.repro.launcher import resolve_store
    from mltrail.store.registry import resolve_location

    name = resolve_store(store, env, cwd)
    location = resolve_location(name)
    db = location.uri[len("sqlite:///") :] if location.uri.startswith("sqlite:///") else None
    absent = location.scheme == "sqlite" and db is not None and not Path(db).exists()
    folder = location.spool_dir
    if absent and not (folder.is_dir() and any(folder.glob(f"*{SPOOL_SUFFIX}"))):
        raise NotFoundError(f"no mltrail store at {location.display} (nothing logged there yet)")
    return Api(name)


def _base_folder(workdir: str | os.PathLike[str] | None, cwd: Path) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="mltrail-repro-"))
    path = Path(workdir).expanduser()
    return (path if path.is_absolute() else cwd / path).resolve()


def _remove(base: Path, made: list[RestoredCode]) -> None:
    """Remove the scratch checkouts (and their worktree registrations) and the folder."""
    import shutil

    from mltrail.repro.code import remove_checkout

    for restored in made:
        remove_checkout(restored.path, restored.source_root)
    shutil.rmtree(base, ignore_errors=True)


class _Reproduction:
    """One reproduction's steps, sharing the plan, the folders and the environment."""

    def __init__(
        self,
        api: Api,
        plan: Plan,
        base: Path,
        cwd: Path,
        env: Mapping[str, str] | None,
        report: Progress,
        made: list[RestoredCode],
    ) -> None:
        self.api = api
        self.plan = plan
        self.base = base
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        self.report = report
        self.made = made
        self.python = sys.executable
        self.env_set = dict(plan.env_set)
        self.environment: dict[str, Any] = {"mode": plan.env_mode}

    def execute(
        self,
        rtol: float,
        atol: float,
        stdout: BinaryIO | None,
        stderr: BinaryIO | None,
        kept: Path | None,
    ) -> Verdict:
        """Restore, run and judge; the verdict."""
        from mltrail.repro.judge import judge
        from mltrail.repro.launcher import finish_observer, run_attached
        from mltrail.repro.plan_command import command_in_checkout
        from mltrail.repro.verdict import REPRODUCTION_TAG, Verdict
        from mltrail.repro.wrap import Observer

        self.base.mkdir(parents=True, exist_ok=True)
        checkout = self._restore_code()
        self._prepare_environment()
        argv, cwd = command_in_checkout(self.plan, checkout, self.python, self.cwd)
        cwd.mkdir(parents=True, exist_ok=True)
        env = self._command_env()
        original = self.plan.run
        tags = {REPRODUCTION_TAG: original.run_id}
        new = self._start(argv, cwd, env, tags)
        patterns = (self.api.state(original.run_id).get("console_metrics") or {}).get("patterns")
        observer = Observer(new, argv, cwd, [str(p) for p in patterns or []], env)
        code = run_attached(
            new,
            argv,
            env=env,
            extra_env=observer.env,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            on_output=observer.on_output,
        )
        finish_observer(observer)
        extra = {
            "env_mode": self.plan.env_mode,
            "environment": self.environment,
            "not_restored": [i.to_dict() for i in self.plan.missing],
            "command": argv,
            "exit_code": code,
        }
        comparison = judge(
            self.api, new, code, original.run_id, rtol=rtol, atol=atol, extra=extra, tags=tags
        )
        return Verdict(
            comparison.outcome.verdict,
            comparisons=(comparison,),
            run_ids=(new.run_id,),
            original=original.run_id,
            plan=self.plan,
            environment=self.environment,
            workdir=kept,
        )

    def _start(self, argv: list[str], cwd: Path, env: dict[str, str], tags: dict[str, str]) -> Run:
        """The new run, in the original's project with its config, recording the checkout."""
        from mltrail.repro.launcher import location_name, start_wrapped

        original = self.plan.run
        new = start_wrapped(
            argv,
            project=original.project,
            name=f"{original.name}-repro"[:250],
            tags=tags,
            config=original.config or None,
            store=location_name(self.api.location),
            allow_dirty=True,
            env=env,
            cwd=cwd,
        )
        self.report.note(f"running {' '.join(argv)} in {cwd} as run {new.run_id}")
        return new

    def _restore_code(self) -> Path | None:
        """The code at the recorded commit with the recorded diff, and the data; the checkout."""
        from mltrail.repro.code import restore_code
        from mltrail.repro.data import restore_data

        plan = self.plan
        if plan.sha is None:
            return None
        diff = self.api.blob(plan.diff_digest) if plan.diff_digest else None
        root = Path(plan.repo_root) if plan.repo_root else None
        restored = restore_code(
            self.base / "code", plan.sha, root=root, remotes=plan.remotes, diff=diff
        )
        self.made.append(restored)
        checkout = restored.path
        applied = " + the recorded diff" if restored.diff_applied else ""
        self.report.note(f"code: {restored.how} at {plan.sha[:12]}{applied} → {checkout}")
        self._restore_untracked(checkout)
        if plan.repo_root and os.path.isdir(plan.repo_root):
            done = restore_data(plan.data, Path(plan.repo_root), checkout)
            if done:
                self.report.note(f"data: restored and verified {', '.join(done)}")
        return checkout

    def _restore_untracked(self, checkout: Path) -> None:
        """Write the recorded untracked source files into the checkout."""
        written: list[str] = []
        for rel, digest in self.plan.untracked_sources:
            target = (checkout / rel).resolve()
            if not target.is_relative_to(checkout.resolve()) or target.exists():
                continue  # a path out of the checkout, or one the commit already holds
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.api.blob(digest))
            written.append(rel)
        if written:
            self.report.note(f"code: wrote back {len(written)} untracked source file(s)")

    def _prepare_environment(self) -> None:
        """This interpreter (its differences reported), or a rebuilt virtual environment."""
        if self.plan.env_mode != "rebuild":
            changes = [c.to_dict() for c in self.plan.package_changes]
            self.environment["package_changes"] = changes
            return
        built = self._rebuild()
        self.python = str(built.python)
        self.environment["rebuilt"] = built.to_dict()
        self.env_set["VIRTUAL_ENV"] = str(built.path)
        self.env_set["PATH"] = f"{built.path / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"

    def _rebuild(self) -> RebuiltEnv:
        from mltrail.repro.environment import rebuild_environment

        plan = self.plan
        assert plan.requirements_digest is not None
        requirements = self.api.blob(plan.requirements_digest).decode("utf-8", "replace")
        with self.report.busy(f"rebuilding the environment ({len(plan.packages)} packages)"):
            built = rebuild_environment(
                requirements, self.base / "venv", python_version=plan.python_version
            )
        self.report.note(
            f"environment: {built.tool} installed {len(built.installed)} packages into "
            f"{built.path} in {built.seconds:.1f} s (Python {built.python_version})"
        )
        if built.unavailable:
            self.report.note(
                "not available at their recorded versions (left out): "
                f"{', '.join(built.unavailable)}",
                warning=True,
            )
        return built

    def _command_env(self) -> dict[str, str]:
        """The starting environment with the plan applied: allow-listed numerics variables
        the original lacked and ``env_unset`` removed, ``env_set`` set."""
        from mltrail.capture.environment import allowed_env

        env = dict(self.env)
        for name in [*self.plan.env_unset, *allowed_env(env)]:
            env.pop(name, None)
        env.update(self.env_set)
        return env
