"""The generation spec's canonical encoding: unique, integer-only, bounded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.shared.errors import SpecError
from framecast.shared.spec import MAX_SEED, canonical_json, decode_spec, parse_spec

BASE: dict[str, Any] = {
    "model": "cogvideox-2b",
    "prompt": "a lighthouse in a storm",
    "num_frames": 49,
    "fps": 8,
    "width": 720,
    "height": 480,
    "steps": 50,
    "guidance_milli": 6000,
}

specs = st.fixed_dictionaries(
    {
        **{k: st.just(v) for k, v in BASE.items()},
        "prompt": st.text(min_size=1, max_size=200),
        "negative_prompt": st.text(max_size=50),
        "seed": st.integers(0, MAX_SEED),
        "num_frames": st.integers(1, 1024),
        "guidance_milli": st.integers(0, 100_000),
    }
)


@given(specs)
def test_canonical_bytes_round_trip(data: dict[str, Any]) -> None:
    spec = parse_spec(data)
    raw = spec.canonical_json()
    assert decode_spec(raw) == spec
    # Sorted keys, no whitespace: json with the same rules gives the same bytes.
    assert (
        raw
        == json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )


@given(specs)
def test_any_other_encoding_is_refused(data: dict[str, Any]) -> None:
    raw = parse_spec(data).canonical_json()
    spaced = json.dumps(json.loads(raw), sort_keys=True, ensure_ascii=False).encode()
    with pytest.raises(SpecError, match="canonical"):
        decode_spec(spaced)


def test_floats_are_refused_everywhere() -> None:
    with pytest.raises(SpecError, match="integers"):
        canonical_json({"guidance": 6.5})
    raw = (
        parse_spec(BASE).canonical_json().replace(b'"guidance_milli":6000', b'"guidance_milli":6.0')
    )
    with pytest.raises(SpecError, match="float"):
        decode_spec(raw)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("num_frames", 0, "greater than or equal to 1"),
        ("width", 5000, "less than or equal to 4096"),
        ("seed", MAX_SEED + 1, "less than or equal to"),
        ("model", "Bad Model!", "pattern"),
        ("guidance_milli", "6", "valid integer"),
    ],
)
def test_bad_values_name_field_and_bound(field: str, value: Any, needle: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, field: value})
    assert info.value.field == field
    assert f"`{field}`" in str(info.value)
    assert needle in str(info.value)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(SpecError, match="guidance_scale"):
        parse_spec({**BASE, "guidance_scale": 6})


def test_spec_over_4kib_is_refused_before_signing() -> None:
    with pytest.raises(SpecError, match="4096") as info:
        parse_spec({**BASE, "prompt": "ü" * 1999, "negative_prompt": "ö" * 1999})
    assert info.value.field == "prompt"
