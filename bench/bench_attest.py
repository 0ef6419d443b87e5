"""What an attestation costs: `attest` and `verify --artifact` of a model version of a given
size (one big file plus small ones), on an embedded store.

Usage: ``python bench/bench_attest.py [--mb N]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=256)
    args = parser.parse_args()
    import mltrail
    from mltrail.attest.api import attest, verify
    from mltrail.audit.keys import generate_key

    out: dict[str, object] = {"model_mb": args.mb, "load_1min": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["MLTRAIL_AUDIT_KEY"] = str(root / "key.pem")
        os.environ["MLTRAIL_CACHE_DIR"] = str(root / "cache")
        pub = generate_key(root / "key.pem")
        model = root / "model"
        model.mkdir()
        with (model / "weights.bin").open("wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        for i in range(20):
            (model / f"config_{i}.json").write_text(json.dumps({"i": i}))
        store = str(root / "store")
        with mltrail.init(project="bench", store=store, capture=False, system_metrics_s=0) as run:
            for step in range(100):
                run.log({"loss": 1 / (step + 1), "acc": step / 100}, step=step)
            version = run.log_artifact(model, name="model", type="model")
        mltrail.register_model(
            "m", run=run.run_id, artifact=f"bench/model:v{version.version}", store=store
        )
        t = time.perf_counter()
        signed = attest("m@1", store=store)
        out["attest_s"] = round(time.perf_counter() - t, 3)
        envelope = root / "m.intoto.json"
        envelope.write_text(signed.to_json())
        t = time.perf_counter()
        verify(envelope, pub, model)
        out["verify_with_files_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        verify(envelope, pub)
        out["verify_signature_only_ms"] = round((time.perf_counter() - t) * 1000, 2)
        out["envelope_bytes"] = envelope.stat().st_size
    print(json.dumps(out))


if __name__ == "__main__":
    main()
