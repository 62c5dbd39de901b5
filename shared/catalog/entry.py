"""Catalog entry, style and bound models, and the validation of a spec against an entry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from framecast.shared.catalog.weights import COMPONENT_DIRS, LORA_DIR
from framecast.shared.errors import ConfigError, SpecError
from framecast.shared.spec import FINE_TUNE, LORA_MODULES, TASKS, GenerationSpec, LoraModule, Task

Revision = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
InputName = Literal["image", "video", "control"]
Family = Literal["cogvideox", "text2video-zero", "ltx", "wan", "opensora"]
#: A component's role is the pipeline argument it is passed as; its folder inside the model
#: directory is `weights.COMPONENT_DIRS[role]` (shared by the puller and the runner).
ComponentRole = Literal["controlnet"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bound(_Data):
    """Allowed integers: `min <= v <= max` and `(v - offset) % multiple == 0`."""

    min: int = Field(ge=0, description="Smallest allowed value.")
    max: int = Field(ge=0, description="Largest allowed value.")
    multiple: int = Field(1, ge=1, description="Step between allowed values.")
    offset: int = Field(0, ge=0, description="Allowed values are offset + k * multiple.")

    def allows(self, value: int) -> bool:
        """Whether `value` lies in the range and on the grid."""
        return self.min <= value <= self.max and (value - self.offset) % self.multiple == 0

    def describe(self) -> str:
        """Human form of the bound, e.g. `9..49, 4k+1`."""
        grid = ""
        if self.multiple > 1:
            grid = (
                f", {self.multiple}k+{self.offset}"
                if self.offset
                else (f", a multiple of {self.multiple}")
            )
        return f"{self.min}..{self.max}{grid}"


class Defaults(_Data):
    """What a client fills in when the user leaves a field out."""

    num_frames: int = Field(ge=1, description="Default frame count.")
    width: int = Field(ge=16, description="Default width.")
    height: int = Field(ge=16, description="Default height.")
    steps: int = Field(ge=1, description="Default denoising steps.")
    fps: int = Field(ge=1, description="Default frames per second.")
    guidance_milli: int = Field(ge=0, description="Default guidance × 1000.")


class LoraAdapter(_Data):
    """A LoRA adapter pinned by hub revision or by CID, with the sha256 of its file."""

    repo: str | None = Field(None, description="Hugging Face repo of the adapter.")
    revision: Revision | None = Field(None, description="Pinned commit of `repo`.")
    cid: str | None = Field(None, description="CID of the adapter file (alternative to repo).")
    file: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.safetensors$",
        description="Adapter file name; the runner reads it from `MODEL_DIR/loras/`.",
    )
    base_model: str = Field(
        description="Catalog id of the model the adapter was trained on (its layer shapes)."
    )
    sha256: Sha256Hex = Field(description="sha256 of the adapter file.")
    scale_milli: int = Field(1000, ge=0, le=10_000, description="LoRA scale × 1000.")

    @model_validator(mode="after")
    def _pinned(self) -> LoraAdapter:
        if (self.repo is None or self.revision is None) and self.cid is None:
            raise ValueError("a LoRA needs repo + revision or a cid")
        return self


class FineTuneDefaults(_Data):
    """What a client fills in for a fine-tune job's fields left out."""

    rank: int = Field(ge=1, description="Default LoRA rank.")
    alpha: int = Field(ge=1, description="Default LoRA alpha.")
    steps: int = Field(ge=1, description="Default optimiser steps.")
    learning_rate_micro: int = Field(ge=1, description="Default learning rate × 10^6.")
    modules: list[LoraModule] = Field(min_length=1, description="Default adapted modules.")


class FineTune(_Data):
    """``[model.fine_tune]``: how an entry may be fine-tuned (a LoRA on its denoiser).

    Clip size and frame count use the entry's own `frames`/`width`/`height` bounds; the
    sample video after training is generated with `sample_steps` denoising steps.
    """

    rank: Bound = Field(description="Allowed LoRA rank.")
    alpha: Bound = Field(description="Allowed LoRA alpha.")
    steps: Bound = Field(description="Allowed optimiser steps.")
    learning_rate_micro: Bound = Field(description="Allowed learning rate × 10^6.")
    modules: list[LoraModule] = Field(
        min_length=1, description="Denoiser modules a job may adapt (a subset of LORA_MODULES)."
    )
    max_clips: int = Field(ge=1, le=100_000, description="Most clips in a dataset.")
    max_dataset_bytes: int = Field(ge=1, description="Largest dataset directory, bytes.")
    sample_steps: int = Field(ge=1, le=500, description="Denoising steps of the sample video.")
    defaults: FineTuneDefaults = Field(description="Defaults for omitted fields.")

    @model_validator(mode="after")
    def _known_modules(self) -> FineTune:
        unknown = set(self.modules) - set(LORA_MODULES)
        if unknown:
            raise ValueError(f"fine_tune.modules names unknown modules {sorted(unknown)}")
        return self


class Component(_Data):
    """A model the entry's pipeline takes from another repo (a ControlNet), pinned on its own.

    Declared in models.toml as ``[model.components.ROLE]``; its manifest (file names
    relative to the component's folder) is committed as ``manifests/ENTRY/ROLE.json``. A
    pull places it under ``MODEL_DIR/COMPONENT_DIRS[ROLE]``, where the runner loads it from.
    """

    repo: str | None = Field(
        None, description="Hugging Face repo; None for tiny entries (built locally)."
    )
    revision: Revision | None = Field(None, description="Pinned commit of `repo`.")
    subdir: str = Field(
        "",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*)?$",
        description="Folder inside `repo` that holds the component (empty: the repo root).",
    )
    manifest: dict[str, Sha256Hex] = Field(
        default_factory=dict,
        description="file (relative to the component folder) -> sha256 (manifests/ENTRY/ROLE.json)",
    )

    def repo_files(self) -> list[str]:
        """The pinned files as paths inside `repo` (what a download asks for), sorted."""
        prefix = f"{self.subdir}/" if self.subdir else ""
        return [prefix + name for name in sorted(self.manifest)]


#: Ways to make a model fit a smaller card (docs/protocol.md §4.1). Offloading moves whole
#: models (``model``), groups of layers (``group``) or single layers (``sequential``) between
#: CPU and GPU: the same kernels run on the same inputs, so the frames do not change.
Offload = Literal["none", "model", "group", "sequential"]
#: torchao weight quantization of the denoiser (transformer / UNet): fewer bytes per weight,
#: other numerics.
Quantization = Literal["none", "int8", "fp8"]


class MemoryProfile(_Data):
    """One way to run an entry and the GPU memory it needs (GiB, peak at the default spec).

    An entry lists its profiles best first (fastest, reference numerics); a node runs the
    first one that fits its card. Profiles that change numerics (VAE tiling blends tiles;
    quantization changes the weights) form their own environment: `numerics` names it, a
    receipt records it and replays compare like with like.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$", description="Profile id.")
    vram_gb: float = Field(ge=0, le=1024, description="Peak GPU memory it needs, GiB.")
    offload: Offload = Field("none", description="CPU offload: none, model, group, sequential.")
    vae_tiling: bool = Field(False, description="Decode the VAE in tiles (changes numerics).")
    vae_slicing: bool = Field(False, description="Decode one batch item at a time (neutral).")
    quantization: Quantization = Field("none", description="torchao weights of the denoiser.")

    @property
    def numerics(self) -> str:
        """The numerics class: `reference`, or what changes the frames (`int8+vae-tiling`)."""
        parts: list[str] = [self.quantization] if self.quantization != "none" else []
        if self.vae_tiling:
            parts.append("vae-tiling")
        return "+".join(parts) or "reference"

    @property
    def needs_gpu(self) -> bool:
        """Offload and quantization only make sense with a CUDA device."""
        return self.offload != "none" or self.quantization != "none"

    def describe(self) -> str:
        """One line: what the profile switches on."""
        parts = []
        if self.offload != "none":
            parts.append(f"{self.offload} offload")
        if self.quantization != "none":
            parts.append(f"{self.quantization} weights")
        if self.vae_tiling:
            parts.append("VAE tiling")
        if self.vae_slicing:
            parts.append("VAE slicing")
        return ", ".join(parts) or "no offload, tiling or quantization"


class Style(_Data):
    """A named preset: prompt template, negative prompt, default guidance, optional LoRA."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="Style id in specs.")
    name: str = Field(description="Display name.")
    prompt_template: str = Field(description="Template with `{prompt}`.")
    negative_prompt: str = Field("", description="Negative prompt, joined with the user's.")
    guidance_milli: int = Field(ge=0, le=100_000, description="Guidance the style suggests.")
    families: list[Family] = Field(description="Model families the style applies to.")
    lora: LoraAdapter | None = Field(None, description="Optional pinned LoRA adapter.")

    @model_validator(mode="after")
    def _template(self) -> Style:
        if self.prompt_template.count("{prompt}") != 1:
            raise ValueError(f"style {self.id}: prompt_template needs exactly one {{prompt}}")
        return self

    def apply(self, prompt: str, negative_prompt: str) -> tuple[str, str]:
        """The prompts the pipeline sees under this style."""
        negative = ", ".join(p for p in (negative_prompt, self.negative_prompt) if p)
        return self.prompt_template.replace("{prompt}", prompt), negative

    def receipt_id(self) -> str:
        """What the receipt records: the id, plus the LoRA's pin and sha256 when there is one."""
        if self.lora is None:
            return self.id
        pin = self.lora.cid or f"{self.lora.repo}@{self.lora.revision}"
        return f"{self.id}+lora:{pin}:{self.lora.sha256}"


class ContextParallel(_Data):
    """A model that runs one job over several GPUs of one host (diffusers'
    `ContextParallelConfig`: the sequence split Ulysses-style or passed round a ring)."""

    degree: int = Field(ge=2, le=16, description="GPUs of one host one job runs on.")
    kind: Literal["ulysses", "ring"] = Field(description="How the sequence is split.")


class CatalogEntry(_Data):
    """One runnable model: pipeline, pinned weights, resources, tasks, bounds, defaults."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="Catalog id.")
    name: str = Field(description="Display name.")
    family: Family = Field(description="Model family (styles and tiny builders key on it).")
    runner: Literal["diffusers", "opensora"] = Field(
        "diffusers", description="Which runner implementation serves it."
    )
    mode: Literal["single", "long"] = Field(
        "single", description="`long` chains segments on the previous segment's last frame."
    )
    pipeline: str = Field(description="diffusers pipeline class (first segment for `long`).")
    continuation_pipeline: str | None = Field(
        None, description="Pipeline of segments 2.. of a long video (image-conditioned)."
    )
    segment_frames: int | None = Field(None, ge=2, description="Frames per long-video segment.")
    repo: str | None = Field(None, description="Hugging Face repo of the weights.")
    revision: Revision | None = Field(
        None, description="Pinned commit of `repo`; None until the entry is pinned."
    )
    continuation_repo: str | None = Field(None, description="Repo of the continuation model.")
    components: dict[ComponentRole, Component] = Field(
        default_factory=dict,
        description="Models from other repos the pipeline takes (ControlNet), by role.",
    )
    tiny: str | None = Field(None, description="Tiny builder family (random weights).")
    image: str = Field(description="Runner image (the node pins it by digest).")
    vram_gb: int = Field(ge=0, le=1024, description="GPU memory the model needs, GiB.")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(description="Weights dtype.")
    requires_gpu: bool = Field(description="Refuse to run on CPU.")
    context_parallel: ContextParallel | None = Field(
        None, description="Run each job over several GPUs of one host (big models)."
    )
    tasks: list[Task] = Field(min_length=1, description="Tasks the model serves.")
    task_inputs: dict[Task, list[InputName]] = Field(
        default_factory=dict, description="Inputs each task requires."
    )
    max_prompt_tokens: int = Field(ge=1, description="Text encoder sequence length.")
    frames: Bound = Field(description="Allowed num_frames.")
    width: Bound = Field(description="Allowed width.")
    height: Bound = Field(description="Allowed height.")
    sizes: list[tuple[int, int]] | None = Field(None, description="Only these (w, h) pairs.")
    steps: Bound = Field(description="Allowed denoising steps.")
    fps: Bound = Field(description="Allowed fps.")
    guidance_milli: Bound = Field(description="Allowed guidance × 1000.")
    defaults: Defaults = Field(description="Defaults for omitted fields.")
    manifest: dict[str, Sha256Hex] = Field(
        default_factory=dict, description="Weights manifest: file -> sha256 (manifests/ID.json)."
    )
    fine_tune: FineTune | None = Field(
        None, description="Fine-tune bounds; set when `tasks` lists `fine-tune`."
    )
    profiles: list[MemoryProfile] = Field(
        default_factory=list,
        description="Memory profiles, best first; none declared: one `full` of vram_gb.",
    )
    variant: str | None = Field(
        None,
        pattern=r"^[a-z0-9]{1,16}$",
        description="diffusers weights variant to pin (`fp16`: *.fp16.safetensors); None: plain.",
    )
    weights_bytes: int | None = Field(
        None, ge=0, description="Total size of the pinned files (written by `catalog pin`)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> CatalogEntry:
        if (FINE_TUNE in self.tasks) != (self.fine_tune is not None):
            raise ValueError(f"{self.id}: task fine-tune and [model.fine_tune] go together")
        names = [p.name for p in self.profiles]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id}: profile names repeat: {names}")
        if self.mode == "long" and (self.segment_frames is None or not self.continuation_pipeline):
            raise ValueError(f"{self.id}: a long entry needs segment_frames and a continuation")
        for task in self.task_inputs:
            if task not in self.tasks:
                raise ValueError(f"{self.id}: task_inputs names {task}, not in tasks")
        reserved = [LORA_DIR, *(COMPONENT_DIRS[role] for role in self.components)]
        for name in self.manifest:
            if name.split("/", 1)[0] in reserved:
                raise ValueError(
                    f"{self.id}: manifest file {name} lies in a folder reserved for a "
                    "component or the style LoRAs; pin it in that component's manifest"
                )
        for role, component in self.components.items():
            if self.tiny is None and component.repo is None:
                raise ValueError(f"{self.id}: component {role} needs a repo")
        return self

    @property
    def pinned(self) -> bool:
        """Whether the weights are pinned: manifests present (and revisions for hub models),
        for the entry and each of its components."""
        parts: list[tuple[dict[str, str], str | None]] = [(self.manifest, self.revision)]
        parts += [(c.manifest, c.revision) for c in self.components.values()]
        return all(bool(m) and (self.tiny is not None or r is not None) for m, r in parts)

    def memory_profiles(self) -> list[MemoryProfile]:
        """The declared profiles, or the one implicit `full` profile of `vram_gb`."""
        return list(self.profiles) or [MemoryProfile(name="full", vram_gb=self.vram_gb)]

    def profile(self, name: str) -> MemoryProfile:
        """The profile called `name`; `ConfigError` listing the entry's profiles."""
        for profile in self.memory_profiles():
            if profile.name == name:
                return profile
        known = ", ".join(p.name for p in self.memory_profiles())
        raise ConfigError(
            f"model {self.id} has no memory profile {name!r}; it has {known}",
            fix="use one of the listed profiles",
        )

    def component_dir(self, role: ComponentRole) -> str:
        """The folder of component `role` inside the model directory."""
        return COMPONENT_DIRS[role]

    @property
    def gpus_per_job(self) -> int:
        """GPUs one job of this model holds: its context-parallel degree, else 1."""
        return self.context_parallel.degree if self.context_parallel is not None else 1

    @property
    def vram_per_gpu_gb(self) -> int:
        """GPU memory each of those GPUs must have (the model's need split over them)."""
        return -(-self.vram_gb // self.gpus_per_job)

    def full_manifest(self) -> dict[str, str]:
        """Every file of the model directory the runner loads (components under their folders)
        with its sha256: what is verified before loading and hashed into the receipt."""
        files = dict(self.manifest)
        for role, component in self.components.items():
            folder = self.component_dir(role)
            files.update({f"{folder}/{name}": sha for name, sha in component.manifest.items()})
        return dict(sorted(files.items()))


def validate_spec(spec: GenerationSpec, entry: CatalogEntry, style: Style | None = None) -> None:
    """Raise `SpecError` naming the field and the bound unless `entry` can run `spec`.

    `style` is the catalog style named by `spec.style` (looked up by the caller, so this
    stays a pure function of its arguments); a spec naming a style must pass it.
    """
    if spec.model != entry.id:
        raise SpecError(
            f"spec.model is {spec.model!r} but the entry is {entry.id!r}", field="model"
        )
    if spec.task not in entry.tasks:
        raise SpecError(
            f"model {entry.id} does not do task {spec.task!r}; it does " + ", ".join(entry.tasks),
            field="task",
            fix="pick one of the model's tasks or another model (`framecast models`)",
        )
    steps = entry.fine_tune.steps if spec.task == FINE_TUNE and entry.fine_tune else entry.steps
    for field, bound in (
        ("num_frames", entry.frames),
        ("width", entry.width),
        ("height", entry.height),
        ("steps", steps),
        ("fps", entry.fps),
        ("guidance_milli", entry.guidance_milli),
    ):
        value: int = getattr(spec, field)
        if not bound.allows(value):
            raise SpecError(
                f"spec field `{field}` is {value}; model {entry.id} allows {bound.describe()}",
                field=field,
                fix=f"choose a {field} in {bound.describe()}",
                value=value,
                min=bound.min,
                max=bound.max,
                multiple=bound.multiple,
            )
    if entry.sizes is not None and (spec.width, spec.height) not in entry.sizes:
        allowed = ", ".join(f"{w}x{h}" for w, h in entry.sizes)
        raise SpecError(
            f"size {spec.width}x{spec.height} is not one model {entry.id} supports ({allowed})",
            field="width",
            fix=f"use one of {allowed}",
        )
    required: set[str] = set(entry.task_inputs.get(spec.task, []))
    if spec.task == FINE_TUNE:
        required.add("dataset")
        _validate_fine_tune(spec, entry)
    given = {key for key in ("image", "video", "control", "dataset") if getattr(spec.inputs, key)}
    for missing in sorted(required - given):
        raise SpecError(
            f"task {spec.task} on {entry.id} needs inputs.{missing}",
            field=f"inputs.{missing}",
            fix=f"pass the {missing} (it is uploaded and referenced by CID)",
        )
    for unused in sorted(given - required):
        raise SpecError(
            f"inputs.{unused} is not used by task {spec.task} on {entry.id}",
            field=f"inputs.{unused}",
            fix=f"drop inputs.{unused}; a signed spec must say exactly what runs",
        )
    if spec.lora_style is not None and entry.family not in LORA_FAMILIES:
        raise SpecError(
            f"model {entry.id} ({entry.family}) cannot load a LoRA by CID",
            field="style.lora",
            fix="use a model of the " + ", ".join(LORA_FAMILIES) + " family, or drop the style",
        )
    if spec.style_id is not None:
        if style is None or style.id != spec.style_id:
            raise SpecError(
                f"style {spec.style_id!r} is not in the catalog",
                field="style",
                fix="list styles with `framecast models --styles`",
            )
        if entry.family not in style.families:
            raise SpecError(
                f"style {style.id} does not apply to the {entry.family} family of {entry.id}",
                field="style",
                fix="choose another style or drop it",
            )
        # A LoRA's matrices fit one architecture only, not a whole family.
        if style.lora is not None and style.lora.base_model != entry.id:
            raise SpecError(
                f"style {style.id} carries a LoRA for {style.lora.base_model}, not {entry.id}",
                field="style",
                fix=f"use model {style.lora.base_model} with this style, or another style",
            )


#: Families whose runner pipelines load a LoRA into their denoiser (and can be fine-tuned).
LORA_FAMILIES: tuple[str, ...] = ("cogvideox",)


def _validate_fine_tune(spec: GenerationSpec, entry: CatalogEntry) -> None:
    bounds = entry.fine_tune
    params = spec.fine_tune
    if bounds is None or params is None:  # task not served / field missing: checked before
        raise SpecError(
            f"model {entry.id} cannot be fine-tuned", field="task", fix="pick a fine-tunable model"
        )
    for field, bound in (
        ("rank", bounds.rank),
        ("alpha", bounds.alpha),
        ("learning_rate_micro", bounds.learning_rate_micro),
    ):
        value: int = getattr(params, field)
        if not bound.allows(value):
            raise SpecError(
                f"spec field `fine_tune.{field}` is {value}; model {entry.id} allows "
                f"{bound.describe()}",
                field=f"fine_tune.{field}",
                fix=f"choose a {field} in {bound.describe()}",
                value=value,
                min=bound.min,
                max=bound.max,
            )
    refused = sorted(set(params.modules) - set(bounds.modules))
    if refused:
        raise SpecError(
            f"model {entry.id} does not adapt modules {', '.join(refused)}",
            field="fine_tune.modules",
            fix="choose among " + ", ".join(bounds.modules),
        )


__all__ = [
    "LORA_FAMILIES",
    "TASKS",
    "Bound",
    "CatalogEntry",
    "Defaults",
    "FineTune",
    "FineTuneDefaults",
    "LoraAdapter",
    "MemoryProfile",
    "Style",
    "validate_spec",
]
