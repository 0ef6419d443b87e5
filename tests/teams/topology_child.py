"""A training process of the team topology test: logs through the proxy, then an artifact."""

import random
import sys
from pathlib import Path

import mltrail

url, steps, child = sys.argv[1], int(sys.argv[2]), sys.argv[3]
run = mltrail.init(
    project="team", name=f"client-{child}", store=url, capture=False, system_metrics_s=0
)
run.log_params({"steps": steps, "child": child})
for step in range(steps):
    run.log({"a": float(step), "b": step * 0.5, "c": -float(step)}, step=step)
    if step % 500 == 499:
        run.flush(timeout=120)
blob = Path(f"weights-{child}.bin")
blob.write_bytes(random.Random(int(child)).randbytes(200_000))
version = run.log_artifact(blob, name=f"model-{child}", type="model")
run.finish(timeout=120)
print(run.run_id, version.digest, flush=True)
