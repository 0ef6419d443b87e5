"""registry.py: a URL opens the right object store; a missing library says what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail.errors import InvalidArgumentError, StoreError
from mltrail.objects import registry
from mltrail.objects.fsspec_store import FsspecObjectStore, filesystem
from mltrail.objects.http import HttpObjectStore
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.registry import Backend, open_object_store, scheme_of


def test_factory_picks_the_implementation(tmp_path: Path) -> None:
    """A path or file:// is local, a server URL is HTTP, anything else goes to fsspec."""
    assert isinstance(open_object_store(tmp_path / "a"), LocalObjectStore)
    assert isinstance(open_object_store(str(tmp_path / "b")), LocalObjectStore)
    assert isinstance(open_object_store(f"file://{tmp_path}/c"), LocalObjectStore)
    assert isinstance(open_object_store("memory://odb-factory"), FsspecObjectStore)
    assert isinstance(open_object_store(f"local://{tmp_path}/d"), FsspecObjectStore)
    server = open_object_store("http://127.0.0.1:9", token="t")
    assert isinstance(server, HttpObjectStore)
    server.close()
    with pytest.raises(InvalidArgumentError, match="url"):
        open_object_store("nosuchproto://x/y")


def test_scheme_of() -> None:
    """Schemes are read case-insensitively; a path (even with :// inside) has none."""
    assert scheme_of("S3://bucket") == "s3"
    assert scheme_of("/data/x://y") == ""
    assert scheme_of(Path("s3://not-a-url")) == ""


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose library is not installed is a StoreError with the pip command."""
    missing = Backend(registry._FSSPEC, ("no_such_module_mltrail",), "mltrail[s3]")
    monkeypatch.setitem(registry.BACKENDS, "s3", missing)
    with pytest.raises(StoreError, match=r"no_such_module_mltrail.*pip install 'mltrail\[s3\]'"):
        open_object_store("s3://bucket/prefix")


def test_storage_options_do_not_apply_to_a_local_path(tmp_path: Path) -> None:
    """A local store refuses storage options instead of ignoring them."""
    with pytest.raises(InvalidArgumentError, match="storage options"):
        open_object_store(tmp_path, anon=True)


def test_s3_endpoint_comes_from_settings_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLTRAIL_S3_ENDPOINT is read (through settings()) when a store is opened, not at import."""
    pytest.importorskip("s3fs")
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT", "http://127.0.0.1:1")
    fs, path = filesystem("s3://bucket/prefix", skip_instance_cache=True)
    assert fs.endpoint_url == "http://127.0.0.1:1"
    assert path == "bucket/prefix"
    fs2, _ = filesystem("s3://bucket", endpoint_url="http://127.0.0.1:2", skip_instance_cache=True)
    assert fs2.endpoint_url == "http://127.0.0.1:2"  # an explicit option wins


def test_a_local_store_never_imports_fsspec(tmp_path: Path) -> None:
    """Opening a local store and running the verbs over it leaves fsspec (and s3fs) unloaded."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mltrail.objects.registry import open_object_store\n"
        "import mltrail.objects.build, mltrail.objects.fsck, mltrail.objects.gc\n"
        f"s = open_object_store({str(tmp_path)!r})\n"
        "mltrail.objects.gc.gc(s, {s.add_bytes(b'x')})\n"
        "print(' '.join(m for m in ('fsspec', 's3fs') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
