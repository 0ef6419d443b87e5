"""Ed25519 audit keys: created private (0600) with the public key beside, signatures."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mltrail.audit import keys
from mltrail.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError


def test_generate_load_sign_verify(tmp_path: Path) -> None:
    path = tmp_path / "k" / "audit.pem"
    pub_path = keys.generate_key(path)
    assert pub_path == tmp_path / "k" / "audit.pem.pub"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    priv = keys.load_private_key(path)
    pub = keys.load_public_key(pub_path)
    assert keys.public_key_id(pub) == keys.public_key_id(priv.public_key())
    assert len(keys.public_key_id(pub)) == 64
    sig = keys.sign(priv, b"data")
    assert keys.verify(pub, sig, b"data")
    assert not keys.verify(pub, sig, b"date")
    other = tmp_path / "other.pem"
    keys.generate_key(other)
    assert not keys.verify(keys.load_public_key(Path(str(other) + ".pub")), sig, b"data")
    # a private key file also gives its public half
    assert keys.public_key_id(keys.load_public_key(path)) == keys.public_key_id(pub)
    with pytest.raises(AlreadyExistsError):
        keys.generate_key(path)


def test_default_path_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_AUDIT_KEY", str(tmp_path / "mine.pem"))
    assert keys.default_key_path() == tmp_path / "mine.pem"
    with pytest.raises(NotFoundError, match="mltrail audit init"):
        keys.load_private_key()
    monkeypatch.delenv("MLTRAIL_AUDIT_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert keys.default_key_path() == tmp_path / "cfg" / "mltrail" / "audit" / "ed25519.pem"
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(InvalidArgumentError, match="bad.pem"):
        keys.load_public_key(bad)
