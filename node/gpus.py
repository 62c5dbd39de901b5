"""The GPUs of this host (name, memory, driver, CUDA) and the memory profile each model runs.

Detection asks `nvidia-smi` (the driver's own tool, present wherever the NVIDIA driver is,
and cheap: no CUDA context) and falls back to torch.cuda when it is missing but torch sees
devices (a container with a CUDA torch and no nvidia-smi). The node never needs torch
otherwise, so that import happens only in the fallback. Everything downstream takes a list
of `GpuCard`s, so tests and `framecast catalog fit` pass described cards instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from framecast.shared.catalog import CatalogEntry
from framecast.shared.catalog.entry import MemoryProfile
from framecast.shared.catalog.fit import (
    REFERENCE_CARDS,
    REFERENCE_SIZES_GB,
    GpuCard,
    best_card,
    choose_profile,
    fits,
    smallest_need_gb,
)
from framecast.shared.errors import ConfigError, PipelineError

#: The query `detect_gpus` runs; its CSV (no header, no units) is what `parse_query` reads.
QUERY = [
    "nvidia-smi",
    "--query-gpu=index,name,memory.total,driver_version",
    "--format=csv,noheader,nounits",
]
#: Plain `nvidia-smi` prints the highest CUDA version the driver supports in its banner.
BANNER = ["nvidia-smi"]
_CUDA = re.compile(r"CUDA Version:\s*([0-9]+\.[0-9]+)")

#: Runs a command and returns its stdout (raises OSError / CalledProcessError).
CommandRunner = Callable[[Sequence[str]], str]
#: What the node asks for its cards (the real detector, or described cards in tests).
GpuDetector = Callable[[], list[GpuCard]]


def _run(command: Sequence[str]) -> str:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=20, check=True
    ).stdout


def parse_query(csv_text: str, banner: str = "") -> list[GpuCard]:
    """`GpuCard`s from `nvidia-smi --query-gpu=index,name,memory.total,driver_version
    --format=csv,noheader,nounits` output (one line per GPU) and the banner's CUDA version."""
    match = _CUDA.search(banner)
    cuda = match.group(1) if match else None
    cards: list[GpuCard] = []
    for line in csv_text.splitlines():
        if not line.strip():
            continue
        # Names hold no commas in practice, but split from the right to be safe.
        index, rest = line.split(",", 1)
        name, memory, driver = (part.strip() for part in rest.rsplit(",", 2))
        try:
            cards.append(
                GpuCard(
                    index=int(index),
                    name=name,
                    memory_mib=int(float(memory)),
                    driver=driver or None,
                    cuda=cuda,
                )
            )
        except (ValueError, ValidationError) as exc:
            raise PipelineError(
                f"nvidia-smi printed a line this node cannot read: {line!r} ({exc})",
                fix="check the NVIDIA driver with `nvidia-smi`; report the line if it works",
            ) from None
    return cards


def detect_gpus(run: CommandRunner = _run) -> list[GpuCard]:
    """This host's GPUs: nvidia-smi, else torch.cuda, else none (a CPU host)."""
    if run is _run and shutil.which("nvidia-smi") is None:
        return _torch_gpus()
    try:
        csv_text = run(QUERY)
    except (OSError, subprocess.SubprocessError):
        return _torch_gpus()
    try:
        banner = run(BANNER)
    except (OSError, subprocess.SubprocessError):
        banner = ""
    return parse_query(csv_text, banner)


def _torch_gpus() -> list[GpuCard]:
    # No NVIDIA device nodes: no GPU, and no reason to pay for importing torch.
    if not Path("/proc/driver/nvidia").exists() and not Path("/dev/nvidia0").exists():
        return []
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    cards = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        cards.append(
            GpuCard(
                index=index,
                name=props.name,
                memory_mib=props.total_memory // (1024 * 1024),
                driver=None,
                cuda=torch.version.cuda,
            )
        )
    return cards


@dataclass(frozen=True)
class ModelPlan:
    """How this node runs one model: on which card (None: CPU) with which profile."""

    model: str
    profile: MemoryProfile
    card: GpuCard | None

    def as_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "profile": self.profile.name,
            "numerics": self.profile.numerics,
            "vram_gb": self.profile.vram_gb,
            "describe": self.profile.describe(),
            "gpu": self.card.model_dump() if self.card else None,
        }


def plan_model(
    entry: CatalogEntry, cards: Sequence[GpuCard], *, wanted: str | None = None
) -> ModelPlan | None:
    """The best (card, profile) for `entry` on these cards (the CPU when there are none and
    the entry allows it), or the operator's `wanted` profile if it fits; None if nothing fits."""
    if wanted is not None:
        profile = entry.profile(wanted)  # ConfigError for an unknown name
        hosts: list[GpuCard | None] = list(cards) or [None]
        for card in hosts:
            if fits(profile, card) and not (card is None and entry.requires_gpu):
                return ModelPlan(entry.id, profile, card)
        return None
    if not cards:
        cpu = choose_profile(entry, None)
        return ModelPlan(entry.id, cpu, None) if cpu else None
    found = best_card(cards, entry)
    return ModelPlan(entry.id, found[1], found[0]) if found else None


def plan_models(
    entries: Iterable[CatalogEntry],
    cards: Sequence[GpuCard],
    wanted: Mapping[str, str] | None = None,
) -> tuple[dict[str, ModelPlan], dict[str, str]]:
    """(plans of the models that fit, {model: why not} for the others)."""
    plans: dict[str, ModelPlan] = {}
    refused: dict[str, str] = {}
    for entry in entries:
        plan = plan_model(entry, cards, wanted=(wanted or {}).get(entry.id))
        if plan is None:
            refused[entry.id] = why_not(entry, cards, (wanted or {}).get(entry.id))
        else:
            plans[entry.id] = plan
    return plans, refused


def why_not(entry: CatalogEntry, cards: Sequence[GpuCard], wanted: str | None = None) -> str:
    """One sentence: what this host has, what the entry needs, which cards would do."""
    have = ", ".join(f"{c.name} ({c.memory_gib:.1f} GiB)" for c in cards) if cards else "no GPU"
    if wanted is not None:
        profile = entry.profile(wanted)
        return (
            f"{entry.id}'s profile {wanted} needs {profile.vram_gb:g} GiB"
            f"{' and a GPU' if profile.needs_gpu else ''}; this host has {have}"
        )
    need = smallest_need_gb(entry)
    sizes = [
        f"{size} GB: {p.name}"
        for size, card in zip(REFERENCE_SIZES_GB, REFERENCE_CARDS, strict=True)
        if (p := choose_profile(entry, card)) is not None
    ]
    fitting = "; it fits " + ", ".join(sizes) if sizes else ""
    return f"{entry.id} needs at least {need:g} GiB of GPU memory; this host has {have}{fitting}"


def require_plans(
    entries: Sequence[CatalogEntry],
    cards: Sequence[GpuCard],
    wanted: Mapping[str, str] | None = None,
) -> tuple[dict[str, ModelPlan], dict[str, str]]:
    """`plan_models`, raising `ConfigError` when not one of the configured models fits."""
    plans, refused = plan_models(entries, cards, wanted)
    if entries and not plans:
        raise ConfigError(
            "none of the models this node is configured to serve fits its hardware: "
            + "; ".join(refused.values()),
            fix="serve models that fit (`framecast catalog fit` lists them per card size) "
            "in node.toml `models`",
        )
    return plans, refused


__all__ = [
    "BANNER",
    "QUERY",
    "GpuDetector",
    "ModelPlan",
    "detect_gpus",
    "parse_query",
    "plan_model",
    "plan_models",
    "require_plans",
    "why_not",
]
