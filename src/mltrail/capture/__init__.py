"""Capture: what a run depended on, as plain data.

One module per kind of state (``git`` for code, ``environment``, ``hardware``, ``config``,
``seeds``). Each exposes pure functions that return JSON-able data wrapped in
:class:`mltrail.capture.base.Captured`; none of them writes to a store, and none raises when a
probe fails: the reason is recorded as data instead.

Importing this package (or any module in it) is light: heavy libraries (torch, numpy, hydra,
omegaconf, pynvml, psutil) are imported inside the functions that need them, if at all.
"""
