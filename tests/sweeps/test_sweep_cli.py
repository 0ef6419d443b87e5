"""The CLI: sweep create (and --smoke), agent, show (--json, --best), stop, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sweep_helpers import spec

pytestmark = pytest.mark.slow  # each command is a process: ~1 s of imports under load

MLTRAIL = str(Path(sys.executable).with_name("mltrail"))


def _cli(*args, cwd, check=True):
    out = subprocess.run([MLTRAIL, *args], cwd=cwd, capture_output=True, text=True, timeout=240)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_create_agent_show_stop_resume(workdir, tmp_path):
    """create prints the id; agent --count runs that many; show --json/--best agree."""
    store = str(tmp_path / "store")
    (workdir / "sweep.yaml").write_text(yaml.safe_dump(spec(method="random", run_cap=2)))
    sweep_id = _cli("sweep", "create", "sweep.yaml", "--store", store, cwd=workdir).stdout.strip()
    assert sweep_id.startswith("sw-")
    assert "stopped" in _cli("sweep", "stop", sweep_id, "--store", store, cwd=workdir).stdout
    ran = _cli("agent", sweep_id, "--store", store, cwd=workdir)
    assert "agent ran 0 trials" in ran.stderr
    _cli("sweep", "resume", sweep_id, "--store", store, cwd=workdir)
    ran = _cli("agent", sweep_id, "--count", "2", "--store", store, cwd=workdir)
    assert "agent ran 2 trials" in ran.stderr
    shown = json.loads(
        _cli("sweep", "show", sweep_id, "--json", "--store", store, cwd=workdir).stdout
    )
    assert shown["counts"] == {"finished": 2} and shown["sweep"]["seed"] == 7
    best = _cli("sweep", "show", sweep_id, "--best", "--store", store, cwd=workdir).stdout
    assert f"mltrail reproduce {shown['best'][0]['run_id']}" in best
    table = _cli("sweep", "show", sweep_id, "--store", store, cwd=workdir).stdout
    assert sweep_id in table and "finished" in table


def test_smoke_passes_and_fails(workdir, tmp_path):
    """--smoke runs a tiny budget: exit 0 when trials pass, 1 when the metric is NaN, and
    an invalid spec exits 1 naming the field."""
    store = str(tmp_path / "store")
    (workdir / "ok.yaml").write_text(yaml.safe_dump(spec(method="random", run_cap=50)))
    out = _cli("sweep", "create", "ok.yaml", "--smoke", "--store", store, cwd=workdir)
    assert "smoke sweep" in out.stderr and "2 trials passed" in out.stderr
    shown = json.loads(
        _cli("sweep", "show", out.stdout.strip(), "--json", "--store", store, cwd=workdir).stdout
    )
    assert [t["steps"] for t in shown["trials"]] == [0, 0]  # no pruner: nothing reported
    params = {"x": {"values": ["nan"]}, "depth": {"values": [1]}}
    (workdir / "nan.yaml").write_text(yaml.safe_dump(spec(method="grid", parameters=params)))
    bad = _cli("sweep", "create", "nan.yaml", "--smoke", "--store", store, cwd=workdir, check=False)
    assert bad.returncode == 1 and "loss is NaN" in bad.stderr
    (workdir / "bad.yaml").write_text(yaml.safe_dump(spec(run_cap=0)))
    bad = _cli("sweep", "create", "bad.yaml", "--store", store, cwd=workdir, check=False)
    assert bad.returncode == 1 and "run_cap: 0 is outside [1, 1000000]" in bad.stderr
