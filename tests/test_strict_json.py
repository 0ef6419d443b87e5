"""Strict JSON: what json.loads reads misleadingly is refused, valid JSON reads the same."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mltrail._strict_json import JsonValueError, loads

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@given(_JSON)
def test_valid_json_reads_as_json_loads_reads_it(value):
    """Property: strict JSON text (no repeated keys, finite numbers) parses exactly as before."""
    text = json.dumps(value, allow_nan=False)
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('{"a": [1, {"b": 1e400}]}', "body.a.1.b", "1e400"),
        ('{"a": [1, {"b": -1e400}]}', "body.a.1.b", "float64"),
        ("[0, NaN]", "body.1", "NaN"),
        ('{"x": {"k": 1, "j": 2, "k": 3}}', "body.x", "duplicate key 'k'"),
        ('[{"ok": 1}, {"d": 1, "d": 1}]', "body.1", "duplicate key 'd'"),
    ],
)
def test_refusals_name_the_place(text, field, reason):
    """Each refusal names its field (dotted path) and what was wrong."""
    with pytest.raises(JsonValueError) as err:
        loads(text)
    assert err.value.field == field and reason in str(err.value)


def test_first_refusal_in_document_order_and_nonfinite_option():
    """The first refused value in the text is reported; nonfinite=True reads bare NaN."""
    with pytest.raises(JsonValueError) as err:
        loads('{"a": {"x": 1e999}, "b": {"y": 1, "y": 2}}', "header")
    assert err.value.field == "header.a.x"
    got = loads('{"v": [NaN, Infinity, -Infinity]}', nonfinite=True)
    assert [str(x) for x in got["v"]] == ["nan", "inf", "-inf"]
    with pytest.raises(JsonValueError, match="1e999"):
        loads("[1e999]", nonfinite=True)


def test_not_json_raises_as_json_loads_does():
    """Text that is not JSON at all raises json's own error (the caller reports it)."""
    with pytest.raises(json.JSONDecodeError):
        loads('{"a": ')


def test_sdk_batch_header_with_nan_config_still_decodes():
    """The SDK's own wire header (bare NaN from json.dumps in a config) is still accepted."""
    import math

    from mltrail.store.batch import Batch, RunCreate
    from mltrail.store.wire import decode_batch, encode_batch

    create = RunCreate(
        project="p",
        name="n",
        created_ms=1,
        heartbeat_s=5.0,
        user="",
        host="",
        command="",
        config={"x": math.nan, "y": math.inf},
    )
    got = decode_batch(encode_batch(Batch(run_id="r1", create=create)))
    assert got.create is not None and math.isnan(got.create.config["x"])
    assert got.create.config["y"] == math.inf
