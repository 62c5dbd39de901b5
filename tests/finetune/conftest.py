"""Fixtures of the fine-tune tests: a dataset of clips the tiny model generated, packed
by CID into a store and fetched back the way the node fetches inputs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from framecast.client.datasets import pack_dataset
from framecast.node.replay import store_fetcher
from framecast.runner.serve import JobRunner
from framecast.shared.catalog import TINY_PROMPT, default_spec
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from framecast.shared.spec import GenerationSpec
from tests.runtime.conformance import tiny_cogvideox_dir

__all__ = ["tiny_cogvideox_dir"]

MODEL = "tiny-cogvideox"
#: Prompts inside the tiny tokenizer's vocabulary, one clip each.
CLIP_PROMPTS = ("a red cat walks in the city", "a blue dog runs in the forest", "a bird flies")
FINE_TUNE = {"rank": 4, "alpha": 8, "learning_rate_micro": 1000, "modules": ["to_q", "to_v"]}


@dataclass(frozen=True)
class Dataset:
    folder: Path
    cid: str
    store: LocalStore
    inputs_dir: Path


def make_clips(runner: JobRunner, model_dir: Path, folder: Path) -> Path:
    """Generate one clip per prompt with the tiny model, captioned by NAME.txt."""
    folder.mkdir(parents=True)
    for index, prompt in enumerate(CLIP_PROMPTS):
        out = folder.parent / f"gen-{index}"
        spec = default_spec(MODEL, prompt, seed=100 + index)
        request = RunRequest(job_id=f"clip-{index}", spec=spec, model_dir=str(model_dir),
                             output_dir=str(out))  # fmt: skip
        terminal = runner.execute(request, lambda _e: None)
        assert terminal.status == "succeeded", terminal.error
        shutil.copyfile(out / "video.mp4", folder / f"clip{index}.mp4")
        (folder / f"clip{index}.txt").write_text(prompt, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def runner() -> JobRunner:
    return JobRunner(device="cpu")


@pytest.fixture(scope="session")
def dataset(
    runner: JobRunner, tiny_cogvideox_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Dataset:
    root = tmp_path_factory.mktemp("dataset")
    folder = make_clips(runner, tiny_cogvideox_dir, root / "clips")
    store = LocalStore(root / "blocks")
    packed = pack_dataset(store, folder, model=MODEL)
    inputs = root / "inputs"
    inputs.mkdir()
    # What the agent and replay do: fetch each input CID from the store under its name.
    store_fetcher(store)(packed.cid, inputs / packed.cid)
    return Dataset(folder=folder, cid=packed.cid, store=store, inputs_dir=inputs)


def fine_tune_spec(dataset_cid: str, **changes: Any) -> GenerationSpec:
    fields: dict[str, Any] = {
        "task": "fine-tune",
        "seed": 7,
        "steps": 6,
        "inputs": {"dataset": dataset_cid},
        "fine_tune": FINE_TUNE,
        **changes,
    }
    return default_spec(MODEL, TINY_PROMPT, **fields)


def execute(
    runner: JobRunner, model_dir: Path, spec: GenerationSpec, out: Path, inputs: Path | None
) -> tuple[RunnerEvent, list[RunnerEvent]]:
    events: list[RunnerEvent] = []
    request = RunRequest(
        job_id=out.name, spec=spec, model_dir=str(model_dir), output_dir=str(out),
        inputs_dir=str(inputs) if inputs else None,
    )  # fmt: skip
    return runner.execute(request, events.append), events
