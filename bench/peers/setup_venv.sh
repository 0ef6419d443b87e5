#!/usr/bin/env bash
# Create bench/.venv-peers with MLflow and W&B, apart from the project's own venv, so the
# peer libraries never touch mltrail's environment. Usage: bash bench/peers/setup_venv.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/../.venv-peers"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet mlflow wandb
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
print({name: md.version(name) for name in ("mlflow", "wandb")})
PY
