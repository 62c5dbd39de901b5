"""The model catalog: entries load, bounds name field and range, the client stays torch-free."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.shared.catalog import (
    Bound,
    check_spec,
    get_entry,
    get_style,
    load_catalog,
    weights_manifest_hash,
)
from framecast.shared.catalog.weights import manifest_hash
from framecast.shared.errors import SpecError, UnknownModel
from framecast.shared.spec import GenerationSpec, parse_spec

REQUIRED_FAMILIES = {"cogvideox", "text2video-zero", "ltx", "wan", "opensora"}
IMAGE_CID = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


def spec_for(model: str, **changes: Any) -> GenerationSpec:
    """A spec made of the entry's defaults (what a client sends when the user says little)."""
    entry = get_entry(model)
    data: dict[str, Any] = {
        "model": model,
        "prompt": "a red cat",
        "task": entry.tasks[0],
        **entry.defaults.model_dump(),
    }
    for name in entry.task_inputs.get(entry.tasks[0], []):
        data.setdefault("inputs", {})[name] = IMAGE_CID
    return parse_spec({**data, **changes})


def test_catalog_covers_the_issue_and_defaults_validate() -> None:
    catalog = load_catalog()
    assert {e.family for e in catalog.models.values()} >= REQUIRED_FAMILIES
    for required in (
        "cogvideox-2b",
        "cogvideox-5b",
        "cogvideox-5b-i2v",
        "text2video-zero",
        "text2video-zero-pose",
        "text2video-zero-edge",
        "text2video-zero-edit",
        "ltx-video",
        "wan2.1-t2v-1.3b",
        "cogvideox-5b-long",
        "open-sora-2.0",
    ):
        assert required in catalog.models
    for entry_id in catalog.models:
        assert check_spec(spec_for(entry_id)).id == entry_id


def test_tiny_entries_are_pinned() -> None:
    for entry in load_catalog().models.values():
        if entry.tiny is not None:
            assert entry.pinned and len(weights_manifest_hash(entry)) == 64


def test_controlnet_entries_declare_their_controlnet_as_a_component() -> None:
    for model, repo in (
        ("text2video-zero-pose", "lllyasviel/sd-controlnet-openpose"),
        ("text2video-zero-edge", "lllyasviel/sd-controlnet-canny"),
    ):
        component = get_entry(model).components["controlnet"]
        assert component.repo == repo
        # Not pinned yet: a pull must refuse it rather than fetch an unpinned ControlNet.
        assert not get_entry(model).pinned
    tiny = get_entry("tiny-t2v-zero-pose")
    controlnet = tiny.components["controlnet"].manifest
    assert controlnet and not any(name.startswith("controlnet/") for name in tiny.manifest)
    full = tiny.full_manifest()
    assert {f"controlnet/{name}" for name in controlnet} <= set(full)
    # The receipt's manifest hash covers the ControlNet: another one is another model.
    assert weights_manifest_hash(tiny) == manifest_hash(full) != manifest_hash(tiny.manifest)


def test_a_manifest_file_in_a_component_folder_is_refused() -> None:
    entry = get_entry("tiny-t2v-zero-pose")
    data = entry.model_dump()
    data["manifest"] = {**entry.manifest, "controlnet/extra.bin": "0" * 64}
    with pytest.raises(ValueError, match="reserved for a component"):
        type(entry).model_validate(data)


def test_unknown_model_lists_known_ids() -> None:
    with pytest.raises(UnknownModel) as info:
        get_entry("cogvideox-9000")
    assert "cogvideox-2b" in str(info.value) and "tiny-cogvideox" in str(info.value)


@pytest.mark.parametrize(
    ("changes", "field", "bound"),
    [
        ({"num_frames": 50}, "num_frames", "9..49, 4k+1"),
        ({"num_frames": 53}, "num_frames", "9..49, 4k+1"),
        ({"steps": 101}, "steps", "1..100"),
        ({"fps": 61}, "fps", "1..60"),
        ({"width": 736}, "width", "720..720, a multiple of 16"),
    ],
)
def test_out_of_bounds_names_field_and_bound(
    changes: dict[str, int], field: str, bound: str
) -> None:
    with pytest.raises(SpecError) as info:
        check_spec(spec_for("cogvideox-5b", **changes))
    assert info.value.field == field
    assert bound in str(info.value)


def test_sizes_tasks_inputs_and_styles() -> None:
    with pytest.raises(SpecError, match=r"ltx-video allows 256\.\.1280, a multiple of 32"):
        check_spec(spec_for("ltx-video", width=720))
    with pytest.raises(SpecError, match="does not do task 'image-to-video'") as info:
        check_spec(spec_for("cogvideox-2b", task="image-to-video"))
    assert info.value.field == "task"
    with pytest.raises(SpecError, match=r"needs inputs\.image"):
        check_spec(spec_for("cogvideox-5b-i2v", inputs={}))
    with pytest.raises(SpecError, match=r"inputs\.image is not used"):
        check_spec(spec_for("cogvideox-2b", inputs={"image": IMAGE_CID}))
    with pytest.raises(SpecError, match="known styles: anime"):
        check_spec(spec_for("cogvideox-2b", style="vaporwave"))
    assert check_spec(spec_for("cogvideox-2b", style="anime")).id == "cogvideox-2b"
    prompt, negative = get_style("anime").apply("a cat", "blurry")
    assert prompt.startswith("anime style, a cat") and negative.startswith("blurry, ")


@given(
    lo=st.integers(0, 100),
    span=st.integers(0, 100),
    multiple=st.integers(1, 9),
    offset=st.integers(0, 8),
    value=st.integers(-10, 300),
)
def test_bound_allows_exactly_the_grid(
    lo: int, span: int, multiple: int, offset: int, value: int
) -> None:
    bound = Bound(min=lo, max=lo + span, multiple=multiple, offset=offset)
    expected = lo <= value <= lo + span and (value - offset) % multiple == 0
    assert bound.allows(value) is expected


def test_importing_the_catalog_does_not_import_torch() -> None:
    code = (
        "import sys, framecast.shared.catalog as c; c.load_catalog(); "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
