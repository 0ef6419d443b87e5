"""Run a command several times under tracking and check that the runs came out the same.

Every run goes through :mod:`~mltrail.repro.launcher` in the same environment; runs 2..N are
judged against run 1 (:func:`~mltrail.repro.judge.judge`), point by point and artifact by
artifact, and the worst comparison decides the verdict.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, BinaryIO

from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mltrail.api import Api
    from mltrail.repro.progress import Progress
    from mltrail.repro.verdict import Comparison, Verdict
    from mltrail.sdk.run import Run

__all__ = ["MAX_REPEAT", "verify_determinism"]

MAX_REPEAT = 100


def verify_determinism(
    command: Sequence[str],
    *,
    repeat: int = 2,
    seed: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    store: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    project: str = "default",
    allow_dirty: bool | None = None,
    progress: Progress | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    metrics: Sequence[str] = (),
) -> Verdict:
    """Run ``command`` ``repeat`` times as tracked runs and compare runs 2..N with run 1.

    Args:
        command: The program and its arguments.
        repeat: How many runs (2 to 100).
        seed: Exported to the command as ``MLTRAIL_SEED`` (``mltrail.seed_everything()``
            without an argument uses it); None leaves it as ``env`` has it.
        rtol: Relative tolerance, of run 1's value.
        atol: Absolute tolerance.
        store: Where the runs go (see :func:`mltrail.repro.launch.resolve_store`).
        env: The command's environment (None: this process's). ``os.environ`` is never
            changed.
        cwd: Where the command runs; its repository is the runs' code (None: here).
        project: The runs' project.
        allow_dirty: Run uncommitted code, recording the diff (None:
            ``MLTRAIL_ALLOW_DIRTY``).
        progress: Told each run's id as it starts (default: nothing is said).
        stdout: Where the command's standard output is echoed (None: ours).
        stderr: Where its standard error is echoed (None: ours).
        metrics: ``NAME=REGEX`` console metrics (as ``mltrail run --metric``).

    Returns:
        The :class:`~mltrail.repro.verdict.Verdict`: the worst comparison's verdict
        (``identical`` / ``within-tolerance``: exit status 0), every comparison and every
        run's id; ``failed`` with a reason and no comparison when run 1 did not finish.

    Raises:
        InvalidArgumentError: A bad ``repeat`` or tolerance.
        LaunchError: The command could not be started.
        DirtyWorkingTreeError: Uncommitted changes and ``allow_dirty`` is off.

    Example:
        >>> from mltrail.repro import verify_determinism
        >>> v = verify_determinism(["python", "train.py"], seed=3, cwd="repo")  # doctest: +SKIP
        >>> v.verdict, v.first_divergence  # doctest: +SKIP
        ('identical', None)
    """
    import secrets

    from mltrail.repro.compare import check_tolerances
    from mltrail.repro.progress import QUIET

    check_tolerances(rtol, atol)
    if not 2 <= repeat <= MAX_REPEAT:
        raise InvalidArgumentError(f"--repeat must be from 2 to {MAX_REPEAT}, got {repeat}")
    check = _Check(
        list(command),
        group=secrets.token_hex(4),
        env=_with_seed(env, seed),
        cwd=cwd,
        report=progress or QUIET,
        streams=(stdout, stderr),
    )
    check.metrics = list(metrics)
    return check.execute(repeat, seed, rtol, atol, store, project, allow_dirty)


def _with_seed(env: Mapping[str, str] | None, seed: int | None) -> Mapping[str, str] | None:
    if seed is None:
        return env
    return {**(os.environ if env is None else env), "MLTRAIL_SEED": str(seed)}


class _Check:
    """One determinism check's runs, sharing the command, its environment and its folder."""

    def __init__(
        self,
        command: list[str],
        *,
        group: str,
        env: Mapping[str, str] | None,
        cwd: str | os.PathLike[str] | None,
        report: Progress,
        streams: tuple[BinaryIO | None, BinaryIO | None],
    ) -> None:
        self.command = command
        self.group = group
        self.env = env
        self.cwd = cwd
        self.report = report
        self.stdout, self.stderr = streams
        self.run_ids: list[str] = []
        self.metrics: list[str] = []
        self.comparisons: list[Comparison] = []

    def execute(
        self,
        repeat: int,
        seed: int | None,
        rtol: float,
        atol: float,
        store: str | os.PathLike[str] | None,
        project: str,
        allow_dirty: bool | None,
    ) -> Verdict:
        """Run the command ``repeat`` times; the verdict."""
        from mltrail.api import Api
        from mltrail.repro.judge import judge
        from mltrail.repro.launcher import status_for, store_name
        from mltrail.repro.verdict import Verdict

        api: Api | None = None
        for i in range(repeat):
            run = self._start(i, repeat, store, project, allow_dirty)
            api = api or Api(store_name(run))
            code = self._run(run)
            if i == 0:
                run.finish(status_for(code))
                status = api.run(run.run_id).status.value
                if status != "finished":
                    why = f"the first run {run.run_id} ended {status} (exit {code})"
                    return Verdict("failed", run_ids=(run.run_id,), seed=seed, reasons=(why,))
            else:
                extra: dict[str, object] = {
                    "determinism_group": self.group,
                    "repeat": i + 1,
                    "exit_code": code,
                }
                if seed is not None:
                    extra["seed"] = seed
                tags = {"determinism-of": self.run_ids[0]}
                self.comparisons.append(
                    judge(
                        api,
                        run,
                        code,
                        self.run_ids[0],
                        rtol=rtol,
                        atol=atol,
                        extra=extra,
                        tags=tags,
                    )
                )
            self.run_ids.append(run.run_id)
        return self._verdict(seed)

    def _start(
        self,
        i: int,
        repeat: int,
        store: str | os.PathLike[str] | None,
        project: str,
        allow_dirty: bool | None,
    ) -> Run:
        from mltrail.repro.launcher import start_wrapped

        run = start_wrapped(
            self.command,
            project=project,
            name=f"determinism-{self.group}-{i + 1}",
            tags={"mltrail.determinism": self.group, "mltrail.repeat": str(i + 1)},
            store=store,
            allow_dirty=allow_dirty,
            env=self.env,
            cwd=self.cwd,
        )
        self.report.note(f"run {i + 1}/{repeat}: {run.run_id}")
        return run

    def _run(self, run: Run) -> int:
        from mltrail.repro.launcher import finish_observer, run_attached
        from mltrail.repro.wrap import Observer

        observer = Observer(run, self.command, self.cwd, self.metrics, self.env)
        code = run_attached(
            run,
            self.command,
            env=self.env,
            extra_env=observer.env,
            cwd=self.cwd,
            stdout=self.stdout,
            stderr=self.stderr,
            on_output=observer.on_output,
        )
        finish_observer(observer)
        return code

    def _verdict(self, seed: int | None) -> Verdict:
        from mltrail.repro.verdict import Verdict

        partial = Verdict(None, comparisons=tuple(self.comparisons))
        worst = partial.worst
        assert worst is not None
        return Verdict(
            worst.outcome.verdict,
            comparisons=tuple(self.comparisons),
            run_ids=tuple(self.run_ids),
            original=self.run_ids[0],
            seed=seed,
        )
