"""Fine-tune jobs: a peft LoRA trained on a dataset CID, saved, then sampled with.

The approach is diffusers' own LoRA training of CogVideoX (`train_cogvideox_lora.py`): the
clips are encoded once by the frozen VAE, the captions by the frozen text encoder; each
step draws a clip, a timestep and noise, the transformer (base weights frozen, only the
LoRA matrices train) predicts the velocity, and the loss is the SNR-weighted error of the
resulting clean-latent estimate. Everything random comes from one CPU generator seeded
from the signed spec (adapter initialisation, data order, VAE sampling, timesteps, noise)
and the runner runs with deterministic algorithms, so the same spec, weights and hardware
train the same LoRA bytes: that is what replay and replicas compare.

Dataset layout (what `framecast dataset pack` writes): ``captions.jsonl`` with one
``{"file": NAME, "caption": TEXT}`` line per clip, and the clips beside it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framecast.runner.inputs import check_prompt_tokens
from framecast.runner.video import read_video
from framecast.shared.catalog import CatalogEntry
from framecast.shared.errors import SpecError
from framecast.shared.spec import GenerationSpec

CAPTIONS = "captions.jsonl"
LORA_FILE = "lora.safetensors"
LOG_FILE = "train_log.jsonl"
ADAPTER = "framecast-fine-tune"
#: AdamW settings of diffusers' CogVideoX LoRA script (not signed: fixed per runner version).
WEIGHT_DECAY = 1e-4
MAX_GRAD_NORM = 1.0

#: Called after each optimiser step with (step, loss).
TrainStep = Callable[[int, float], None]


@dataclass(frozen=True)
class Clip:
    """One training example: uint8 frames F×H×W×3 and its caption."""

    name: str
    frames: np.ndarray
    caption: str


@dataclass(frozen=True)
class Trained:
    """What training left in the output directory."""

    lora: Path
    lora_sha256: str
    losses: list[float]
    clips: int


def dataset_dir(inputs_dir: str | None, spec: GenerationSpec) -> Path:
    """The fetched dataset directory (the node writes each input under its CID)."""
    cid = spec.inputs.dataset
    path = Path(inputs_dir or "") / (cid or "")
    if cid is None or inputs_dir is None or not path.is_dir():
        raise SpecError(
            f"dataset {cid} was not fetched as a directory",
            field="inputs.dataset",
            fix="pack the dataset with `framecast dataset pack DIR` and pass that CID",
        )
    return path


def load_dataset(root: Path, spec: GenerationSpec, entry: CatalogEntry) -> list[Clip]:
    """Read and check every clip against the spec (a client may skip `dataset pack`)."""
    assert entry.fine_tune is not None
    index = root / CAPTIONS
    if not index.is_file():
        raise SpecError(
            f"dataset {spec.inputs.dataset} has no {CAPTIONS}",
            field="inputs.dataset",
            fix="pack the dataset with `framecast dataset pack DIR`",
        )
    clips: list[Clip] = []
    for number, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            name, caption = str(row["file"]), str(row["caption"])
        except (ValueError, KeyError, TypeError):
            raise SpecError(
                f'{CAPTIONS} line {number} is not {{"file": ..., "caption": ...}}',
                field="inputs.dataset",
                fix="pack the dataset with `framecast dataset pack DIR`",
            ) from None
        clip = root / name
        if "/" in name or not clip.is_file():
            raise SpecError(
                f"{CAPTIONS} line {number} names {name}, which is not in the dataset",
                field="inputs.dataset",
                fix="pack the dataset with `framecast dataset pack DIR`",
            )
        try:
            frames = read_video(clip)
        except ValueError as exc:
            raise SpecError(
                f"dataset clip {name} does not decode: {exc}", field="inputs.dataset"
            ) from None
        want = (spec.num_frames, spec.height, spec.width)
        if frames.shape[:3] != want:
            raise SpecError(
                f"dataset clip {name} is {frames.shape[0]} frames of "
                f"{frames.shape[2]}x{frames.shape[1]}; the job trains on {spec.num_frames} "
                f"frames of {spec.width}x{spec.height}",
                field="inputs.dataset",
                fix="re-pack the dataset for the job's num_frames, width and height",
            )
        clips.append(Clip(name=name, frames=frames, caption=caption))
    if not clips:
        raise SpecError(
            f"dataset {spec.inputs.dataset} has no clips",
            field="inputs.dataset",
            fix="add clips and their captions, then pack it again",
        )
    if len(clips) > entry.fine_tune.max_clips:
        raise SpecError(
            f"dataset has {len(clips)} clips; {entry.id} trains on at most "
            f"{entry.fine_tune.max_clips}",
            field="inputs.dataset",
            fix="use fewer clips",
        )
    return clips


def _encode(
    pipe: Any, entry: CatalogEntry, clips: list[Clip], gen: torch.Generator, device: str
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Latents (1×F'×C×H'×W', scaled) and prompt embeddings of every clip, frozen parts only."""
    encoded = []
    scaling = float(pipe.vae.config.scaling_factor)
    with torch.no_grad():
        for clip in clips:
            check_prompt_tokens(pipe, entry, "inputs.dataset caption", clip.caption)
            video = torch.from_numpy(clip.frames).float().div(127.5).sub(1.0)
            video = video.permute(3, 0, 1, 2).unsqueeze(0).to(device)  # 1×C×F×H×W
            dist = pipe.vae.encode(video).latent_dist
            noise = torch.randn(dist.mean.shape, generator=gen).to(device)
            latents = (dist.mean + dist.std * noise) * scaling
            embeds, _ = pipe.encode_prompt(
                prompt=clip.caption,
                do_classifier_free_guidance=False,
                num_videos_per_prompt=1,
                max_sequence_length=entry.max_prompt_tokens,
                device=torch.device(device),
            )
            encoded.append((latents.permute(0, 2, 1, 3, 4).contiguous(), embeds))
    return encoded


def _rotary(pipe: Any, latents: torch.Tensor, device: str) -> Any:
    if not pipe.transformer.config.use_rotary_positional_embeddings:
        return None
    frames, height, width = latents.shape[1], latents.shape[3], latents.shape[4]
    scale = pipe.vae_scale_factor_spatial
    return pipe._prepare_rotary_positional_embeddings(
        height * scale, width * scale, frames, torch.device(device)
    )


def train_lora(
    pipe: Any,
    *,
    entry: CatalogEntry,
    spec: GenerationSpec,
    clips: list[Clip],
    out_dir: Path,
    device: str,
    on_step: TrainStep,
) -> Trained:
    """Train the LoRA, write `lora.safetensors` and `train_log.jsonl`; the pipeline is left
    without the adapter (a warm runner serves the next job with it).

    Raises `SpecError` on a non-finite loss (no LoRA is written then).
    """
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    params = spec.fine_tune
    assert params is not None
    gen = torch.Generator(device="cpu").manual_seed(spec.seed)
    for part in ("transformer", "vae", "text_encoder"):
        getattr(pipe, part).requires_grad_(False)
    encoded = _encode(pipe, entry, clips, gen, device)
    transformer = pipe.transformer
    # peft initialises lora_A from the global generator: seed it from the spec too.
    torch.manual_seed(spec.seed)
    transformer.add_adapter(
        LoraConfig(
            r=params.rank,
            lora_alpha=params.alpha,
            init_lora_weights=True,
            target_modules=list(params.modules),
        ),
        adapter_name=ADAPTER,
    )
    try:
        trainable = [p for p in transformer.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable,
            lr=params.learning_rate_micro / 1e6,
            weight_decay=WEIGHT_DECAY,
            foreach=False,
        )
        scheduler = pipe.scheduler
        alphas = scheduler.alphas_cumprod
        train_steps = int(scheduler.config.num_train_timesteps)
        losses: list[float] = []
        order: list[int] = []
        transformer.train()
        for step in range(1, spec.steps + 1):
            if not order:  # a fresh permutation per epoch, from the seeded generator
                order = torch.randperm(len(encoded), generator=gen).tolist()
            latents, embeds = encoded[order.pop(0)]
            t = torch.randint(0, train_steps, (1,), generator=gen)
            noise = torch.randn(latents.shape, generator=gen).to(device)
            noisy = scheduler.add_noise(latents, noise, t)
            output = transformer(
                hidden_states=noisy,
                encoder_hidden_states=embeds,
                timestep=t.to(device),
                image_rotary_emb=_rotary(pipe, latents, device),
                return_dict=False,
            )[0]
            # The model predicts v; get_velocity(v, x_t, t) turns it into the x0 estimate.
            predicted = scheduler.get_velocity(output, noisy, t)
            weight = (1 / (1 - alphas[t])).to(device).reshape(-1, 1, 1, 1, 1)
            loss = (weight * (predicted.float() - latents.float()) ** 2).mean()
            value = float(loss.detach())
            if not math.isfinite(value):
                # A SpecError: training is deterministic, so this spec diverges on every
                # honest provider (and on replay); the hyperparameters are at fault.
                raise SpecError(
                    f"training diverged at step {step}: the loss is {value}",
                    field="fine_tune.learning_rate_micro",
                    fix="lower fine_tune.learning_rate_micro (or alpha/rank) and submit again",
                    step=step,
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(value)
            on_step(step, value)
        transformer.eval()
        state = get_peft_model_state_dict(transformer, adapter_name=ADAPTER)
        # Saved with the alpha/r scale folded into lora_B: a LoRA file without adapter
        # metadata loads with alpha = r, so the update B·A·alpha/r is the same on any loader,
        # and no config dict (whose set ordering varies) goes into the bytes.
        factor = params.alpha / params.rank
        state = {
            k: (v * factor if ".lora_B." in k else v).detach().cpu().contiguous()
            for k, v in sorted(state.items())
        }
        pipe.save_lora_weights(str(out_dir), transformer_lora_layers=state, weight_name=LORA_FILE)
    finally:
        transformer.eval()
        transformer.delete_adapters(ADAPTER)
    lora = out_dir / LORA_FILE
    with (out_dir / LOG_FILE).open("w", encoding="utf-8") as log:
        for step, value in enumerate(losses, 1):
            log.write(json.dumps({"step": step, "loss": value}) + "\n")
    return Trained(
        lora=lora,
        lora_sha256=hashlib.sha256(lora.read_bytes()).hexdigest(),
        losses=losses,
        clips=len(clips),
    )
