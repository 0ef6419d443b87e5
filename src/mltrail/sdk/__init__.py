"""The SDK: the live handle of a run and the functions training code calls.

- :mod:`~mltrail.sdk.init`: ``init()`` as named steps (options, guard, spool, writer, capture).
- :mod:`~mltrail.sdk.run`: :class:`~mltrail.sdk.run.Run`, the user's handle; ``log()`` is the
  hot path.
- :mod:`~mltrail.sdk.recorder`: :class:`~mltrail.sdk.recorder.Recorder`, the one interface
  mltrail's own components (capture, ``mltrail run``, artifacts, reproduce) write through.
- :mod:`~mltrail.sdk.active`: the active run, per thread. :mod:`~mltrail.sdk.fluent`: the
  module-level functions over it. :mod:`~mltrail.sdk.hooks`: how a process ends its runs.
- :mod:`~mltrail.sdk.session`: capture, sampler and console tee around one run.
- :mod:`~mltrail.sdk.artifacts`: ``log_artifact``, ``log_reference``, ``use_artifact``.

The SDK sits on ``events/`` (spool and writer), ``store/``, ``capture/`` and ``artifacts/``;
it never imports the server, the CLI or ``repro/``. ``import mltrail`` loads none of it until
a name is used.
"""
