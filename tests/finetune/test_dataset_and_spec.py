"""`framecast dataset pack` refuses bad datasets before anything is signed; the fine-tune
spec and the LoRA-by-CID style keep old generation specs' signed bytes unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framecast.client.datasets import pack_dataset
from framecast.client.jobs.spec import build_spec, fine_tune_fields, learning_rate_micro
from framecast.node.inputs import input_shape_problem
from framecast.shared.catalog import TINY_PROMPT, check_spec, default_spec, get_entry
from framecast.shared.errors import SpecError
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.receipt import FineTuneRecord, ReceiptBody
from framecast.shared.spec import decode_spec, parse_spec
from tests.client_jobs.conftest import write_tiny_video
from tests.finetune.conftest import FINE_TUNE, fine_tune_spec

CID = "bafybeifyu5yq7waaleofvcp2q4aaruangkbm7mvji4wp56t7q7wsa5n5bi"


def clips(folder: Path, count: int = 2, **video: int) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        write_tiny_video(folder / f"c{index}.mp4", **video)
    return folder


def captions(folder: Path, names: list[str]) -> None:
    lines = [json.dumps({"file": n, "caption": f"a cat {i}"}) for i, n in enumerate(names)]
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n")


def test_pack_is_canonical_pinned_and_a_directory(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "blocks")
    jsonl = clips(tmp_path / "a")
    captions(jsonl, ["c0.mp4", "c1.mp4"])
    txt = clips(tmp_path / "b")
    for index in range(2):
        (txt / f"c{index}.txt").write_text(f"a cat {index}\n")
    one = pack_dataset(store, jsonl, model="tiny-cogvideox")
    two = pack_dataset(store, txt, model="tiny-cogvideox")
    # Same clips and captions, either caption form: one canonical directory, one CID.
    assert one.cid == two.cid and one.clips == 2
    assert any(str(p) == one.cid for p in store.pins())
    spec = fine_tune_spec(one.cid)
    assert input_shape_problem(store, spec) is None
    # The node refuses (before claiming) a dataset CID that is a file.
    file_cid = str(store.add_path(jsonl / "c0.mp4"))
    problem = input_shape_problem(store, fine_tune_spec(file_cid))
    assert problem == f"inputs.dataset {file_cid} is not a directory (`framecast dataset pack`)"
    lora_dir = default_spec("tiny-cogvideox", TINY_PROMPT, style={"lora": one.cid})
    assert input_shape_problem(store, lora_dir) == f"style.lora {one.cid} is not a file"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unreadable", "clip {d}/c0.mp4 is unreadable"),
        ("size", "clip {d}/c0.mp4 is 9 frames of 16x16; the job trains on 9 frames of 32x32"),
        ("frames", "clip {d}/c0.mp4 is 5 frames of 32x32; the job trains on 9 frames of 32x32"),
        ("caption", "clip {d}/c1.mp4 has no caption"),
        ("stray", "{d}/notes.md is neither a clip (.mp4) nor a caption file"),
        ("too-many", "{d} holds 65 clips; tiny-cogvideox trains on at most 64"),
        ("too-big", "{d} is "),
        ("unknown-clip", "captions ghost.mp4, which is not a clip"),
    ],
)
def test_bad_datasets_are_refused_naming_the_file(tmp_path: Path, case: str, message: str) -> None:
    folder = clips(tmp_path / "d", count=65 if case == "too-many" else 2)
    names = sorted(p.name for p in folder.iterdir())
    captions(folder, names)
    if case == "unreadable":
        (folder / "c0.mp4").write_bytes(b"not an mp4")
    elif case == "size":
        write_tiny_video(folder / "c0.mp4", size=16)
    elif case == "frames":
        write_tiny_video(folder / "c0.mp4", frames=5)
    elif case == "caption":
        captions(folder, ["c0.mp4"])
    elif case == "stray":
        (folder / "notes.md").write_text("x")
    elif case == "too-big":
        with (folder / "c0.mp4").open("ab") as handle:
            handle.write(b"\0" * (16 * 1024 * 1024))
    elif case == "unknown-clip":
        captions(folder, ["c0.mp4", "ghost.mp4"])
    store = LocalStore(tmp_path / "blocks")
    with pytest.raises(SpecError) as raised:
        pack_dataset(store, folder, model="tiny-cogvideox")
    assert message.format(d=folder) in raised.value.message
    assert raised.value.fix
    assert store.pins() == [], "nothing is packed from a bad dataset"


def test_pack_refuses_a_model_that_cannot_be_fine_tuned(tmp_path: Path) -> None:
    folder = clips(tmp_path / "d")
    with pytest.raises(SpecError, match="cannot be fine-tuned"):
        pack_dataset(LocalStore(tmp_path / "blocks"), folder, model="tiny-ltx-video")


def test_old_generation_specs_keep_their_signed_bytes() -> None:
    # Bytes signed before fine-tuning existed: they still decode and re-encode identically.
    old = (
        b'{"fps":8,"guidance_milli":6000,"height":32,"inputs":{},"model":"tiny-cogvideox",'
        b'"negative_prompt":"","num_frames":9,"prompt":"a red cat walks in the city",'
        b'"seed":0,"steps":2,"style":"tiny-lora","task":"text-to-video","version":1,"width":32}'
    )
    spec = decode_spec(old)
    assert spec.canonical_json() == old and spec.fine_tune is None
    assert spec.style_id == "tiny-lora" and spec.lora_style is None
    check_spec(spec)


def test_fine_tune_specs_are_bounded_by_the_catalog_entry() -> None:
    spec = fine_tune_spec(CID)
    assert spec.work_units == 9 * 32 * 32 * 6  # steps × frames × pixels: quotes unchanged
    assert decode_spec(spec.canonical_json()) == spec
    assert spec.input_cids() == [CID]
    for changes, field in (
        ({"fine_tune": {**FINE_TUNE, "rank": 17}}, "fine_tune.rank"),
        ({"steps": 201}, "steps"),
        ({"fine_tune": {**FINE_TUNE, "modules": ["proj_out"]}}, "fine_tune.modules"),
        ({"fine_tune": {**FINE_TUNE, "modules": ["to_v", "to_q"]}}, "fine_tune.modules"),
        ({"width": 40}, "width"),
    ):
        with pytest.raises(SpecError) as raised:
            fine_tune_spec(CID, **changes)
        assert raised.value.field == field or field in raised.value.message, raised.value
    # A fine-tune job needs its dataset and takes no style; a generation job no fine_tune.
    with pytest.raises(SpecError, match=r"inputs\.dataset"):
        fine_tune_spec(CID, inputs={})
    with pytest.raises(SpecError, match="takes no style"):
        fine_tune_spec(CID, style="cinematic")
    with pytest.raises(SpecError, match="fine-tune only"):
        default_spec("tiny-cogvideox", TINY_PROMPT, fine_tune=FINE_TUNE)
    # A model without fine-tune bounds refuses the task.
    ltx = get_entry("tiny-ltx-video")
    with pytest.raises(SpecError, match="cannot be fine-tuned"):
        fine_tune_fields(ltx, dataset_cid=CID)
    # Floats never reach a signed spec: the learning rate is an integer of micro-units.
    assert learning_rate_micro("1e-4") == 100 and learning_rate_micro("0.001") == 1000
    with pytest.raises(SpecError, match="multiple of 1e-6"):
        learning_rate_micro("1e-7")
    with pytest.raises(SpecError, match="float"):
        decode_spec(
            spec.canonical_json().replace(
                b'"learning_rate_micro":1000', b'"learning_rate_micro":1e3'
            )
        )


def test_the_client_builds_fine_tune_and_lora_specs() -> None:
    entry = get_entry("tiny-cogvideox")
    fields = fine_tune_fields(
        entry, dataset_cid=CID, learning_rate="2e-4", modules=["to_v", "to_q"]
    )
    spec, _ = build_spec(model=entry.id, prompt=TINY_PROMPT, seed=3, fine_tune=fields)
    assert spec.task == "fine-tune" and spec.fine_tune is not None
    assert spec.fine_tune.learning_rate_micro == 200 and spec.fine_tune.modules == ["to_q", "to_v"]
    assert spec.steps == entry.fine_tune.defaults.steps  # type: ignore[union-attr]
    styled, _ = build_spec(model=entry.id, prompt=TINY_PROMPT, seed=3, lora_cid=CID,
                           lora_scale_milli=500)  # fmt: skip
    assert styled.lora_style is not None and styled.lora_style.scale_milli == 500
    assert styled.input_cids() == [CID]
    with pytest.raises(SpecError, match="two styles"):
        build_spec(model=entry.id, prompt=TINY_PROMPT, lora_cid=CID, style="cinematic")
    with pytest.raises(SpecError, match="cannot load a LoRA"):
        build_spec(model="tiny-ltx-video", prompt=TINY_PROMPT, lora_cid=CID)
    parse_spec(styled.model_dump(mode="json", exclude_none=True))


def test_receipts_without_fine_tune_hash_as_before() -> None:
    fields = {
        "chain_id": 1, "market": "0x" + "22" * 20, "job_id": 1, "provider": "0x" + "11" * 20,
        "request_digest": "0x" + "00" * 32, "spec_hash": "0x" + "00" * 32, "model": "m",
        "model_id": "0x" + "00" * 32, "weights_manifest_hash": "0x" + "00" * 32, "seed": 0,
        "video_cid": "b", "video_sha256": "0x" + "00" * 32, "frames_digest": "0x" + "00" * 32,
        "num_frames": 1, "width": 1, "height": 1, "fps": 1,
        "environment": {"device": "cpu", "python": "3", "torch": "2", "diffusers": "0",
                        "transformers": "5", "runtime": "process", "encoder": "x"},
    }  # fmt: skip
    from eth_utils.crypto import keccak

    from framecast.shared.spec import canonical_json

    plain = ReceiptBody.model_validate(fields)
    record = FineTuneRecord(
        dataset_cid=CID, lora_cid="bafk", lora_sha256="0x" + "00" * 32,
        sample_frames_digest="0x" + "11" * 32, rank=4, alpha=8, steps=6,
        learning_rate_micro=1000, modules=["to_q"], clips=3, final_loss_micro=1,
    )  # fmt: skip
    tuned = ReceiptBody.model_validate({**fields, "fine_tune": record})
    assert tuned.body_hash() != plain.body_hash()
    data = plain.model_dump(mode="json")
    assert "fine_tune" in data
    del data["fine_tune"]
    for key in ("context_parallel", "memory_profile", "numerics"):  # other later fields
        data["environment"].pop(key)
    data["timings"] = {}
    # The hash of a body without a fine-tune record is over the fields it had before.
    assert plain.body_hash() == keccak(canonical_json(data))
