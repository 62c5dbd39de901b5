"""Fitting catalog entries onto GPUs: which memory profile each model runs with on a card.

A card is described by what `nvidia-smi` reports (name, total memory in MiB, driver, CUDA);
the node detects its cards (`framecast.node.gpus`), tests and `framecast catalog fit`
describe them. The choice is a pure function of the catalog data and the card: the first
profile of the entry (profiles are listed best first) whose `vram_gb` fits the card's
total memory. A CPU-only host (no card) runs only entries that do not require a GPU, with
their first profile that needs no GPU feature.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from framecast.shared.catalog.entry import CatalogEntry, MemoryProfile

MIB_PER_GIB = 1024


class GpuCard(BaseModel):
    """One GPU as the node sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(0, ge=0, le=255, description="CUDA device index.")
    name: str = Field(min_length=1, max_length=256, description="Marketing name.")
    memory_mib: int = Field(ge=1, le=16 * 1024 * 1024, description="Total memory, MiB.")
    driver: str | None = Field(None, max_length=64, description="NVIDIA driver version.")
    cuda: str | None = Field(
        None, max_length=16, description="Highest CUDA version the driver supports."
    )

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / MIB_PER_GIB


#: Cards of the sizes providers have, with the total memory nvidia-smi reports for them
#: (a "24 GB" RTX 4090 reports 24564 MiB, a little under 24 GiB): what `catalog fit`
#: tabulates. The figures are the cards' reported totals, so the table matches a real node.
REFERENCE_CARDS: tuple[GpuCard, ...] = (
    GpuCard(name="NVIDIA GeForce RTX 4060 (8 GB)", memory_mib=8188),
    GpuCard(name="NVIDIA GeForce RTX 3060 (12 GB)", memory_mib=12288),
    GpuCard(name="NVIDIA GeForce RTX 4080 (16 GB)", memory_mib=16376),
    GpuCard(name="NVIDIA GeForce RTX 4090 (24 GB)", memory_mib=24564),
    GpuCard(name="NVIDIA RTX A6000 (48 GB)", memory_mib=49140),
    GpuCard(name="NVIDIA H100 80GB HBM3 (80 GB)", memory_mib=81559),
)
#: Nominal sizes of `REFERENCE_CARDS`, GB, for table headings.
REFERENCE_SIZES_GB: tuple[int, ...] = (8, 12, 16, 24, 48, 80)


def fits(profile: MemoryProfile, card: GpuCard | None) -> bool:
    """Whether `profile` runs on `card` (None: the CPU, where no GPU feature applies)."""
    if card is None:
        return not profile.needs_gpu
    return profile.vram_gb * MIB_PER_GIB <= card.memory_mib


def choose_profile(entry: CatalogEntry, card: GpuCard | None) -> MemoryProfile | None:
    """The best profile of `entry` on `card` (None: CPU), or None when nothing fits."""
    if card is None and entry.requires_gpu:
        return None
    return next((p for p in entry.memory_profiles() if fits(p, card)), None)


def smallest_need_gb(entry: CatalogEntry) -> float:
    """The least VRAM any profile of `entry` needs, GiB."""
    return min(p.vram_gb for p in entry.memory_profiles())


def choose_with_numerics(
    entry: CatalogEntry, card: GpuCard | None, numerics: str
) -> MemoryProfile | None:
    """The best profile of `entry` on `card` within one numerics class (a replay's choice:
    it must compute what the delivery computed)."""
    if card is None and entry.requires_gpu:
        return None
    candidates = (p for p in entry.memory_profiles() if p.numerics == numerics)
    return next((p for p in candidates if fits(p, card)), None)


def best_card(
    cards: Sequence[GpuCard], entry: CatalogEntry
) -> tuple[GpuCard, MemoryProfile] | None:
    """The card (of a node's) on which `entry` runs its best profile, with that profile.

    Earlier profiles are better; among cards giving the same profile, the first card wins.
    """
    order = {p.name: i for i, p in enumerate(entry.memory_profiles())}
    found = [(card, choose_profile(entry, card)) for card in cards]
    usable = [(c, p) for c, p in found if p is not None]
    if not usable:
        return None
    return min(usable, key=lambda cp: order[cp[1].name])


def fit_table(
    entries: Iterable[CatalogEntry], cards: Sequence[GpuCard] = REFERENCE_CARDS
) -> dict[str, list[str | None]]:
    """`{entry id: [profile name on each card, or None]}` for every entry (tiny ones too)."""
    table: dict[str, list[str | None]] = {}
    for entry in entries:
        row: list[str | None] = []
        for card in cards:
            profile = choose_profile(entry, card)
            row.append(profile.name if profile else None)
        table[entry.id] = row
    return table


__all__ = [
    "REFERENCE_CARDS",
    "REFERENCE_SIZES_GB",
    "GpuCard",
    "best_card",
    "choose_profile",
    "choose_with_numerics",
    "fit_table",
    "fits",
    "smallest_need_gb",
]
