"""A tiny training program for sweep tests: a quadratic bowl in x, noisier with depth.

Logs ``loss`` at steps 0..STEPS-1 (``SWEEP_TEST_STEPS``, default 9), sleeping
``SWEEP_TEST_SLEEP_S`` per step; ``SWEEP_TEST_HANG_AT`` makes it sleep for an hour at that
step (to be killed); ``--x=nan`` logs NaN.
"""

from __future__ import annotations

import argparse
import os
import time

import mltrail

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--depth", type=int, default=2)
args = parser.parse_args()
steps = int(os.environ.get("SWEEP_TEST_STEPS", "9"))
sleep_s = float(os.environ.get("SWEEP_TEST_SLEEP_S", "0.02"))
hang_at = int(os.environ.get("SWEEP_TEST_HANG_AT", "-1"))
with mltrail.init():
    for step in range(steps):
        if step == hang_at:
            flag = os.environ.get("SWEEP_TEST_HANG_FLAG", "")
            if flag and not os.path.exists(flag):  # only the first trial to get here hangs
                with open(flag + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.replace(flag + ".tmp", flag)
                time.sleep(3600)
        loss = (args.x - 2.0) ** 2 + 1.0 / (step + 1) + 0.01 * args.depth
        mltrail.log({"loss": loss}, step=step)
        time.sleep(sleep_s)
