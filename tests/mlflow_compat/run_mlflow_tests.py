"""Run MLflow's own REST tracking tests against ``mltrail server`` (not collected by pytest).

MLflow's ``tests/tracking/test_rest_tracking.py`` starts an ``mlflow server`` per test through
``tests.tracking.integration_test_utils._init_server``. This runner copies that test module
into a scratch folder next to small stand-ins for the helpers it imports, whose
``_init_server`` starts a fresh ``mltrail server`` instead (its own SQLite store, an API token
in ``MLFLOW_TRACKING_TOKEN``), and runs it with pytest in an interpreter that has the full
``mlflow`` (and pandas, flask, requests: bench/.venv-peers). MLflow's code is read from a
checkout given on the command line and never copied into this repository.

Usage::

    git clone --depth 1 -b v3.17.2 https://github.com/mlflow/mlflow /tmp/mlflow
    bench/.venv-peers/bin/pip install pytest
    .venv/bin/python tests/mlflow_compat/run_mlflow_tests.py /tmp/mlflow [-k EXPR]

Prints one JSON object: passed and failed test ids (with the first line of each failure).
docs/mlflow-compat.md lists the results and why each failure is out of scope.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PEERS_PY = ROOT / "bench" / ".venv-peers" / "bin" / "python"
MLTRAIL = Path(sys.executable).parent / "mltrail"

#: tests/tracking/integration_test_utils.py for the scratch folder: a fresh mltrail server
INTEGRATION_UTILS = '''
import contextlib, os, socket, subprocess, tempfile, time, urllib.request

import requests

MLTRAIL = os.environ["MLFLOW_COMPAT_MLTRAIL_BIN"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _init_server(backend_uri, root_artifact_uri, extra_env=None, app="mlflow.server:app",
                 server_type="uvicorn"):
    """A fresh ``mltrail server`` (the backend URI asked for is ignored: mltrail keeps its own
    SQLite store), with a write token in MLFLOW_TRACKING_TOKEN."""
    store = tempfile.mkdtemp(prefix="mltrail-store-")
    out = subprocess.run([MLTRAIL, "token", "create", "--scope", "admin", "--store", store],
                         capture_output=True, text=True, check=True)
    token = out.stdout.strip().splitlines()[-1].strip()
    port = _free_port()
    proc = subprocess.Popen([MLTRAIL, "server", "--store", store, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("mltrail server did not start")
            time.sleep(0.2)
    old = os.environ.get("MLFLOW_TRACKING_TOKEN")
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        yield url
    finally:
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = old
        proc.terminate()
        proc.wait(30)


def _send_rest_tracking_post_request(tracking_server_uri, api_path, json_payload, auth=None):
    headers = {"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]}
    return requests.post(tracking_server_uri + api_path, json=json_payload, headers=headers)
'''

#: tests/integration/utils.py: the CLI runner some tests use
CLI_UTILS = """
from click.testing import CliRunner


def invoke_cli_runner(*args, **kwargs):
    res = CliRunner().invoke(*args, **kwargs)
    assert res.exit_code == 0, f"Got non-zero exit code {res.exit_code}. Output is: {res.output}"
    return res
"""


def scratch(mlflow_root: Path) -> Path:
    """The scratch folder: MLflow's test module and the stand-ins it imports."""
    src = mlflow_root / "tests" / "tracking" / "test_rest_tracking.py"
    if not src.is_file():
        sys.exit(f"{src} not found: give the root of an MLflow checkout")
    work = Path(tempfile.mkdtemp(prefix="mlflow-own-tests-"))
    (work / "tests" / "tracking").mkdir(parents=True)
    (work / "tests" / "integration").mkdir(parents=True)
    for pkg in ("tests", "tests/tracking", "tests/integration"):
        (work / pkg / "__init__.py").write_text("")
    shutil.copy(src, work / "tests" / "tracking" / "test_rest_tracking.py")
    (work / "tests" / "tracking" / "integration_test_utils.py").write_text(INTEGRATION_UTILS)
    (work / "tests" / "integration" / "utils.py").write_text(CLI_UTILS)
    return work


def results(junit: Path) -> dict[str, object]:
    passed: list[str] = []
    failed: dict[str, str] = {}
    skipped: list[str] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed[name] = (bad.get("message") or "").splitlines()[0][:200]
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    return {
        "passed": sorted(passed),
        "failed": dict(sorted(failed.items())),
        "skipped": sorted(skipped),
        "counts": {"passed": len(passed), "failed": len(failed), "skipped": len(skipped)},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mlflow_root", type=Path, help="an MLflow checkout (its tests/)")
    parser.add_argument("-k", default=None, help="pytest -k expression")
    parser.add_argument("--python", type=Path, default=PEERS_PY, help="has mlflow and pytest")
    args = parser.parse_args()
    work = scratch(args.mlflow_root)
    junit = work / "junit.xml"
    cmd = [str(args.python), "-m", "pytest", "tests/tracking/test_rest_tracking.py", "-q"]
    cmd += ["-p", "no:cacheprovider", f"--junitxml={junit}", "-o", "junit_family=xunit2"]
    if args.k:
        cmd += ["-k", args.k]
    env = {
        **os.environ,
        "MLFLOW_COMPAT_MLTRAIL_BIN": str(MLTRAIL),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    subprocess.run(cmd, cwd=work, env=env, check=False, timeout=3600, stdout=sys.stderr)
    print(json.dumps(results(junit)))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
