"""A training process logging to a server that may be killed under it (tests/remote)."""

import sys

import mltrail

url, steps = sys.argv[1], int(sys.argv[2])
run = mltrail.init(project="killtest", store=url, capture=False)
run.log_params({"steps": steps, "child": sys.argv[3]})
for step in range(steps):
    run.log({"a": float(step), "b": step * 0.5, "c": -float(step), "d": 1.0}, step=step)
    if step % 500 == 499:
        run.flush(timeout=60)
run.finish(timeout=120)
print(run.run_id, flush=True)
