"""An argparse script that only prints: no mltrail import."""

import argparse
import random
import time

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--token", default="tok-123")
parser.add_argument("--fail", action="store_true")
args = parser.parse_args()
rng = random.Random(7)
start = time.time()
for epoch in range(args.epochs):
    print(f"epoch {epoch}: accuracy {rng.random():.6f} ({time.time() - start:.3f}s)")
if args.fail:
    raise ValueError("the data ran out")
