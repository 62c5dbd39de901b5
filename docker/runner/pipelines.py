"""Loading catalog pipelines once and running them: the registry of family call adapters.

Each family module in `framecast.runner.families` translates a validated spec into the
keyword arguments of its real diffusers pipelines; the adapter is selected by the entry's
`pipeline` name (data), not by family branches. Inputs and LoRAs: `inputs.py`, `lora.py`.
"""

from __future__ import annotations

import gc
import json
import logging
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import torch
from PIL import Image

from framecast.runner.families import (
    cogvideox,
    controlnet,
    instruct_pix2pix,
    ltx,
    ltx2,
    text2video_zero,
    wan,
    wan_edit,
    wan_vace,
)
from framecast.runner.families.call import Call, CallAdapter, StepCallback
from framecast.runner.inputs import check_prompt_tokens, load_input_image, load_input_video
from framecast.runner.lora import Adapter, adapter_applied, style_adapter
from framecast.runner.memory import apply_profile
from framecast.runner.video import to_uint8
from framecast.shared.catalog import CatalogEntry, Style
from framecast.shared.catalog.entry import MemoryProfile
from framecast.shared.catalog.verify import verify_entry_weights
from framecast.shared.errors import PipelineError, UnknownModel
from framecast.shared.spec import GenerationSpec

log = logging.getLogger(__name__)

#: The families this runner serves, one module each.
FAMILIES = (
    cogvideox,
    ltx,
    ltx2,
    wan,
    wan_vace,
    wan_edit,
    text2video_zero,
    controlnet,
    instruct_pix2pix,
)

#: The call adapter of each diffusers pipeline class this runner serves.
_CALLS: dict[str, CallAdapter] = {
    name: family.run for family in FAMILIES for name in family.PIPELINES
}


@dataclass
class LoadedModel:
    """A pipeline (two for long video) in memory, with the entry it was verified against."""

    entry_id: str
    model_dir: str
    device: str
    profile: MemoryProfile
    pipelines: dict[str, Any] = field(default_factory=dict)

    @property
    def main(self) -> Any:
        """The first-segment / only pipeline."""
        return self.pipelines["main"]


def _pipeline_class(name: str) -> Any:
    cls = getattr(diffusers, name, None)
    if cls is None or name not in _CALLS:
        raise UnknownModel(
            f"pipeline {name} is not served by this runner (it serves {', '.join(_CALLS)})",
            fix="run this model with its own runner image (see the catalog entry's image)",
        )
    return cls


def _null_components(model_dir: Path) -> dict[str, None]:
    # Components saved as [null, null] (a removed safety checker) must be passed as None.
    index = json.loads((model_dir / "model_index.json").read_text(encoding="utf-8"))
    return {k: None for k, v in index.items() if isinstance(v, list) and v == [None, None]}


#: The diffusers class of each component role (`CatalogEntry.components`).
_COMPONENT_CLASSES = {"controlnet": "ControlNetModel"}


def _load_components(entry: CatalogEntry, root: Path, dtype: torch.dtype) -> dict[str, Any]:
    """The entry's components, each from its folder in the model directory (where a pull
    put it), as keyword arguments for the pipeline's `from_pretrained`."""
    loaded: dict[str, Any] = {}
    for role in entry.components:
        cls = getattr(diffusers, _COMPONENT_CLASSES[role])
        path = root / entry.component_dir(role)
        loaded[role] = cls.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    return loaded


def load_model(
    entry: CatalogEntry, model_dir: str, device: str, profile: str | None = None
) -> LoadedModel:
    """Verify the weights against the entry's manifest (components included), then
    `from_pretrained` (offline) and place it by memory `profile` (None: the entry's first)."""
    chosen = entry.profile(profile) if profile is not None else entry.memory_profiles()[0]
    if entry.requires_gpu and device != "cuda":
        raise PipelineError(
            f"model {entry.id} needs a GPU ({entry.vram_gb} GiB VRAM) and this runner has "
            "none (FRAMECAST_DEVICE=cpu or no CUDA device)",
            fix="run it on a GPU node, or pick a model that runs on CPU (tiny-*)",
        )
    if not entry.manifest:
        raise UnknownModel(
            f"model {entry.id} has no pinned weights manifest",
            fix="pin the entry before serving it",
        )
    verify_entry_weights(entry, model_dir)
    dtype = torch.float32 if device == "cpu" else getattr(torch, entry.dtype)
    root = Path(model_dir)
    components = _load_components(entry, root, dtype)
    parts = {"main": (entry.pipeline, root)}
    if entry.mode == "long":
        assert entry.continuation_pipeline is not None
        parts = {
            "main": (entry.pipeline, root / "t2v"),
            "continuation": (entry.continuation_pipeline, root / "i2v"),
        }
    loaded = LoadedModel(entry_id=entry.id, model_dir=model_dir, device=device, profile=chosen)
    for role, (class_name, path) in parts.items():
        cls = _pipeline_class(class_name)
        pipeline = cls.from_pretrained(
            str(path), dtype=dtype, local_files_only=True, **_null_components(path), **components
        )
        apply_profile(pipeline, chosen, device, entry_id=entry.id)
        pipeline.set_progress_bar_config(disable=True)
        loaded.pipelines[role] = pipeline
    return loaded


def expected_steps(entry: CatalogEntry, spec: GenerationSpec) -> int:
    """Denoising steps over all segments, for progress."""
    return spec.steps * segment_count(entry, spec)


def segment_count(entry: CatalogEntry, spec: GenerationSpec) -> int:
    """1, or for long video: first segment + one per further (segment - 1) frames."""
    if entry.mode != "long" or entry.segment_frames is None:
        return 1
    return 1 + (spec.num_frames - entry.segment_frames) // (entry.segment_frames - 1)


def generate(
    model: LoadedModel,
    *,
    entry: CatalogEntry,
    spec: GenerationSpec,
    style: Style | None,
    inputs_dir: str | None,
    on_step: StepCallback,
    adapter: Adapter | None = None,
) -> np.ndarray:
    """Run the spec; return uint8 frames F×H×W×3. Validates prompts before any GPU work.

    `adapter` is a LoRA to apply for this job (a LoRA by CID, or a fine-tune's sample);
    a style's own LoRA is found from `style`.
    """
    prompt, negative = (spec.prompt, spec.negative_prompt)
    if style is not None:
        prompt, negative = style.apply(prompt, negative)
    check_prompt_tokens(model.main, entry, "prompt", prompt)
    check_prompt_tokens(model.main, entry, "negative_prompt", negative)
    if adapter is None and style is not None and style.lora:
        adapter = style_adapter(model.model_dir, style)
    image = None
    if spec.inputs.image is not None:
        image = load_input_image(inputs_dir, spec.inputs.image, spec.width, spec.height)
    video = None
    if spec.inputs.control is not None:
        video = load_input_video(inputs_dir, spec.inputs.control, "inputs.control", spec)
    elif spec.inputs.video is not None:
        video = load_input_video(inputs_dir, spec.inputs.video, "inputs.video", spec)
    # The one source of randomness: a CPU generator seeded from the signed spec.
    generator = torch.Generator(device="cpu").manual_seed(spec.seed)
    call = Call(
        prompt=prompt,
        negative_prompt=negative,
        num_frames=spec.num_frames,
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        steps=spec.steps,
        guidance=spec.guidance_milli / 1000,
        max_tokens=entry.max_prompt_tokens,
        image=image,
        video=video,
    )
    with ExitStack() as stack:
        if adapter is not None:
            for pipeline in model.pipelines.values():
                stack.enter_context(adapter_applied(pipeline, adapter))
        return _run_call(
            model, entry=entry, spec=spec, call=call, generator=generator, on_step=on_step
        )


def _run_call(
    model: LoadedModel,
    *,
    entry: CatalogEntry,
    spec: GenerationSpec,
    call: Call,
    generator: torch.Generator,
    on_step: StepCallback,
) -> np.ndarray:
    with torch.inference_mode():
        if entry.mode != "long":
            run = _CALLS[entry.pipeline]
            return to_uint8(np.asarray(run(model.main, call, generator, on_step)))
        return _long_video(
            model, entry=entry, spec=spec, call=call, generator=generator, on_step=on_step
        )


def _long_video(
    model: LoadedModel,
    *,
    entry: CatalogEntry,
    spec: GenerationSpec,
    call: Call,
    generator: torch.Generator,
    on_step: StepCallback,
) -> np.ndarray:
    """Chain segments: each next one is image-to-video on the previous segment's last frame.

    The continuation's first frame re-renders the conditioning frame, so it is dropped;
    frames are quantised to uint8 per segment so the conditioning image is exactly the
    last frame the viewer sees.
    """
    assert entry.segment_frames is not None and entry.continuation_pipeline is not None
    seg = entry.segment_frames
    first = _CALLS[entry.pipeline](
        model.main, replace(call, num_frames=seg, image=None), generator, on_step
    )
    video = [to_uint8(np.asarray(first))]
    for _ in range(segment_count(entry, spec) - 1):
        last = Image.fromarray(video[-1][-1])
        nxt = _CALLS[entry.continuation_pipeline](
            model.pipelines["continuation"],
            replace(call, num_frames=seg, image=last),
            generator,
            on_step,
        )
        video.append(to_uint8(np.asarray(nxt))[1:])
    return np.ascontiguousarray(np.concatenate(video, axis=0))


def release_memory(device: str) -> None:
    """After a failed (OOM) job: drop garbage and cached CUDA blocks so the next job fits."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM, host allocation failure, or an allocator message saying so."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
