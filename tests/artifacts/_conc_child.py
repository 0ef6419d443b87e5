"""Child process for the artifact concurrency tests: log one version when the gate opens.

Usage: python _conc_child.py STORE_URI GATE_FILE CONTENT_KEY
Creates ``GATE_FILE.<pid>.ready`` once the store is open, waits for ``GATE_FILE``, logs, and
prints the version number it got.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mltrail.artifacts.records import NewVersion
from mltrail.store.registry import open_store
from mltrail.testing.artifacts import fake_digest


def main() -> None:
    uri, gate, key = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    store = open_store(uri, shared=False)
    arts = store.artifacts()  # type: ignore[attr-defined]
    arts.list_artifacts()  # connected and schema checked before the race starts
    Path(f"{gate}.{os.getpid()}.ready").touch()
    deadline = time.monotonic() + 30
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    got = arts.log_version(
        NewVersion(
            project="proj",
            name="shared",
            type="dataset",
            digest=fake_digest(key),
            kind="file",
            size=1,
            file_count=1,
        )
    )
    print(got.version, flush=True)
    store.close()


if __name__ == "__main__":
    main()
