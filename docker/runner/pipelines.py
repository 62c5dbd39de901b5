"""Loading catalog pipelines once and running them: one call adapter per pipeline class.

The adapters translate a validated spec into the keyword arguments of the real diffusers
pipeline; they are selected by the entry's `pipeline` name (data), not by family branches.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import torch
from PIL import Image

from framecast.runner.video import read_video, to_uint8
from framecast.shared.catalog import CatalogEntry, Style
from framecast.shared.catalog.weights import LORA_DIR, verify_file, verify_weights
from framecast.shared.errors import PipelineError, SpecError, UnknownModel
from framecast.shared.spec import GenerationSpec

log = logging.getLogger(__name__)

StepCallback = Callable[[], None]


def _on_step_end(on_step: StepCallback) -> Callable[..., dict[str, Any]]:
    """diffusers' `callback_on_step_end`: report the step, change no tensors (empty dict)."""

    def callback(*_args: Any) -> dict[str, Any]:
        on_step()
        return {}

    return callback


@dataclass
class LoadedModel:
    """A pipeline (two for long video) in memory, with the entry it was verified against."""

    entry_id: str
    model_dir: str
    device: str
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


def load_model(entry: CatalogEntry, model_dir: str, device: str) -> LoadedModel:
    """Verify the weights against the entry's manifest (components included), then
    `from_pretrained` (offline)."""
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
    verify_weights(model_dir, entry.full_manifest())
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
    loaded = LoadedModel(entry_id=entry.id, model_dir=model_dir, device=device)
    for role, (class_name, path) in parts.items():
        cls = _pipeline_class(class_name)
        pipeline = cls.from_pretrained(
            str(path), dtype=dtype, local_files_only=True, **_null_components(path), **components
        )
        pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        loaded.pipelines[role] = pipeline
    return loaded


def check_prompt_tokens(pipeline: Any, entry: CatalogEntry, field_name: str, text: str) -> None:
    """Refuse prompts longer than the text encoder takes: no silent truncation."""
    if not text:
        return
    count = len(pipeline.tokenizer(text, add_special_tokens=True)["input_ids"])
    if count > entry.max_prompt_tokens:
        raise SpecError(
            f"{field_name} is {count} tokens; the text encoder of {entry.id} takes at most "
            f"{entry.max_prompt_tokens} (it would be truncated)",
            field=field_name,
            fix=f"shorten the {field_name.replace('_', ' ')}",
            tokens=count,
            max_tokens=entry.max_prompt_tokens,
        )


def load_input_image(inputs_dir: str | None, cid: str, width: int, height: int) -> Image.Image:
    """The init image fetched under its CID, as RGB at the spec's size."""
    if inputs_dir is None or not (Path(inputs_dir) / cid).is_file():
        raise SpecError(
            f"input {cid} is not in the job's inputs directory",
            field="inputs",
            fix="the node must fetch every input CID before running the job",
        )
    with Image.open(Path(inputs_dir) / cid) as image:
        rgb = image.convert("RGB")
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.LANCZOS)
    return rgb


def lora_path(model_dir: str, style: Style) -> Path:
    """The style's LoRA file, checked against its pinned sha256 (before any compute)."""
    assert style.lora is not None
    path = Path(model_dir) / LORA_DIR / style.lora.file
    pin = style.lora.cid or f"{style.lora.repo}@{style.lora.revision}"
    verify_file(
        path,
        style.lora.sha256,
        label=f"LoRA {style.lora.file} of style {style.id}",
        fix=f"fetch {pin} to {path}: `framecast node models pull {style.lora.base_model}` "
        "pulls the LoRAs of every style made for the model",
    )
    return path


@contextmanager
def lora_applied(pipeline: Any, path: Path, style: Style) -> Iterator[None]:
    """Load the style's LoRA into `pipeline` for one job; always unload it afterwards.

    A warm runner serves the next job with the same pipeline, so the adapter must not
    outlive the job (unloading restores the original modules; nothing was fused).
    """
    assert style.lora is not None
    if not hasattr(pipeline, "load_lora_weights"):
        raise SpecError(
            f"style {style.id} has a LoRA but {type(pipeline).__name__} cannot load one",
            field="style",
            fix="choose a style without a LoRA for this model",
        )
    try:
        pipeline.load_lora_weights(str(path), adapter_name="style")
        pipeline.set_adapters(["style"], adapter_weights=[style.lora.scale_milli / 1000])
        yield
    finally:
        pipeline.unload_lora_weights()


def load_input_video(
    inputs_dir: str | None, cid: str, field_name: str, spec: GenerationSpec
) -> np.ndarray:
    """A control / source video fetched under its CID, checked frame for frame vs the spec.

    No resampling in time or space: one input frame per output frame at the output size,
    so what the signed spec asks for is exactly what conditions the generation.
    """
    path = Path(inputs_dir) / cid if inputs_dir is not None else None
    if path is None or not path.is_file():
        raise SpecError(
            f"input {cid} ({field_name}) is not in the job's inputs directory",
            field=field_name,
            fix="the node must fetch every input CID before running the job",
        )
    try:
        frames = read_video(path)
    except ValueError as exc:
        raise SpecError(
            f"{field_name} {cid} is not a readable video ({exc})",
            field=field_name,
            fix="upload an MP4 (H.264) video",
        ) from None
    count, height, width = frames.shape[:3]
    if count != spec.num_frames or (width, height) != (spec.width, spec.height):
        raise SpecError(
            f"{field_name} {cid} has {count} frames of {width}x{height}; the spec asks for "
            f"{spec.num_frames} frames of {spec.width}x{spec.height}",
            field=field_name,
            fix="give one input frame per output frame at the output size, or change the spec",
            frames=count,
            width=width,
            height=height,
        )
    return frames


@dataclass(frozen=True)
class Call:
    """One pipeline invocation: prompts, size, steps and (for I2V) the conditioning image."""

    prompt: str
    negative_prompt: str
    num_frames: int
    width: int
    height: int
    fps: int
    steps: int
    guidance: float
    max_tokens: int
    image: Image.Image | None = None
    #: Control maps or the source video, one uint8 frame per output frame.
    video: np.ndarray | None = None


def _cogvideox(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    extra = {"image": call.image} if call.image is not None else {}
    out = pipe(
        prompt=call.prompt,
        negative_prompt=call.negative_prompt or None,
        num_frames=call.num_frames,
        height=call.height,
        width=call.width,
        num_inference_steps=call.steps,
        guidance_scale=call.guidance,
        generator=gen,
        output_type="np",
        max_sequence_length=call.max_tokens,
        callback_on_step_end=_on_step_end(on_step),
        **extra,
    )
    return out.frames[0]


def _flow_kwargs(call: Call, gen: torch.Generator, on_step: StepCallback) -> dict[str, Any]:
    # LTX-Video and Wan share the callback_on_step_end / max_sequence_length interface.
    return {
        "prompt": call.prompt,
        "negative_prompt": call.negative_prompt or None,
        "num_frames": call.num_frames,
        "height": call.height,
        "width": call.width,
        "num_inference_steps": call.steps,
        "guidance_scale": call.guidance,
        "generator": gen,
        "output_type": "np",
        "max_sequence_length": call.max_tokens,
        "callback_on_step_end": _on_step_end(on_step),
    }


def _ltx(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    # LTX scales its rotary position embedding in time by the frame rate, so the signed
    # fps is part of what is generated, not only of the container.
    return pipe(**_flow_kwargs(call, gen, on_step), frame_rate=call.fps).frames[0]


def _wan(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    return pipe(**_flow_kwargs(call, gen, on_step)).frames[0]


def _t2v_zero(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    # t0/t1 are the timestep indices between which motion is injected; they must lie inside
    # the schedule, so they are derived from the step count (the paper's 44/47 of 50).
    t1 = max(1, round(call.steps * 47 / 50) - 1)
    t0 = max(0, min(t1 - 1, round(call.steps * 44 / 50) - 1))
    out = pipe(
        prompt=call.prompt,
        negative_prompt=call.negative_prompt or None,
        video_length=call.num_frames,
        height=call.height,
        width=call.width,
        num_inference_steps=call.steps,
        guidance_scale=call.guidance,
        generator=gen,
        output_type="np",
        t0=t0,
        t1=t1,
        callback=lambda *_args: on_step(),
        callback_steps=1,
    )
    return out.images


def _cross_frame_attention(pipe: Any, batch_size: int) -> None:
    # Text2Video-Zero's cross-frame attention: every frame attends to the first frame's keys
    # and values, which keeps appearance consistent. `batch_size` is how many copies of the
    # frame batch guidance stacks (1 without guidance), so it is set per call.
    from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import (
        CrossFrameAttnProcessor,
    )

    for module in (pipe.unet, getattr(pipe, "controlnet", None)):
        if module is not None:
            module.set_attn_processor(CrossFrameAttnProcessor(batch_size=batch_size))


def _frame_batch(pipe: Any, call: Call, gen: torch.Generator) -> dict[str, Any]:
    """Arguments that turn an image pipeline into a per-frame batch sharing one noise."""
    assert call.video is not None
    count = len(call.video)
    # The same initial noise for every frame (as Text2Video-Zero's ControlNet recipe does):
    # frames then differ only by their conditioning.
    shape = (
        1,
        pipe.vae.config.latent_channels,
        call.height // pipe.vae_scale_factor,
        call.width // pipe.vae_scale_factor,
    )
    latents = torch.randn(shape, generator=gen, dtype=torch.float32).repeat(count, 1, 1, 1)
    return {
        "prompt": [call.prompt] * count,
        "negative_prompt": [call.negative_prompt] * count if call.negative_prompt else None,
        "image": [Image.fromarray(frame) for frame in call.video],
        "num_inference_steps": call.steps,
        "guidance_scale": call.guidance,
        "generator": gen,
        "latents": latents.to(pipe.device, pipe.unet.dtype),
        "output_type": "np",
    }


def _controlnet_video(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    _cross_frame_attention(pipe, 2 if call.guidance > 1 else 1)
    out = pipe(
        **_frame_batch(pipe, call, gen),
        height=call.height,
        width=call.width,
        callback_on_step_end=_on_step_end(on_step),
    )
    return out.images


#: How strongly the edit sticks to the source frame (InstructPix2Pix's default).
IMAGE_GUIDANCE = 1.5


def _instruct_pix2pix_video(
    pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback
) -> Any:
    # Text and image guidance stack three copies of the frames (InstructPix2Pix's rule:
    # guidance_scale > 1 and image_guidance_scale >= 1).
    _cross_frame_attention(pipe, 3 if call.guidance > 1 else 1)
    out = pipe(
        **_frame_batch(pipe, call, gen),
        image_guidance_scale=IMAGE_GUIDANCE,
        callback_on_step_end=_on_step_end(on_step),
    )
    return out.images


_CALLS: dict[str, Callable[[Any, Call, torch.Generator, StepCallback], Any]] = {
    "CogVideoXPipeline": _cogvideox,
    "CogVideoXImageToVideoPipeline": _cogvideox,
    "LTXPipeline": _ltx,
    "WanPipeline": _wan,
    "TextToVideoZeroPipeline": _t2v_zero,
    "StableDiffusionControlNetPipeline": _controlnet_video,
    "StableDiffusionInstructPix2PixPipeline": _instruct_pix2pix_video,
}


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
) -> np.ndarray:
    """Run the spec; return uint8 frames F×H×W×3. Validates prompts before any GPU work."""
    prompt, negative = (spec.prompt, spec.negative_prompt)
    if style is not None:
        prompt, negative = style.apply(prompt, negative)
    check_prompt_tokens(model.main, entry, "prompt", prompt)
    check_prompt_tokens(model.main, entry, "negative_prompt", negative)
    lora = lora_path(model.model_dir, style) if style is not None and style.lora else None
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
        if lora is not None:
            assert style is not None
            for pipeline in model.pipelines.values():
                stack.enter_context(lora_applied(pipeline, lora, style))
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
