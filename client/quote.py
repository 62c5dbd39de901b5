"""Quotes before signing: which registered providers serve a model, at what price, how fast.

Providers and their offers come from `ProviderRegistered` / `ProviderMetadataUpdated`
events (the latest URI wins) and the bond record (exiting or unregistered providers are
left out). A provider whose URI carries no readable offer is counted but gives no price:
the quote degrades to what is known instead of failing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from framecast.client.credits import Wei
from framecast.client.events import DEFAULT_CHUNK_BLOCKS
from framecast.shared.catalog import get_entry
from framecast.shared.chain.bindings import Market
from framecast.shared.chain.history import LogReader, provider_uris
from framecast.shared.provider_metadata import ProviderOffer, parse_offer
from framecast.shared.spec import GenerationSpec


class ProviderListing(BaseModel):
    """One registered provider and what it advertises."""

    model_config = ConfigDict(frozen=True)

    address: str
    metadata_uri: str
    offer: ProviderOffer | None = Field(None, description="None: the URI is not readable.")
    unlocked_bond: Wei = Field(description="Bond not backing claimed jobs (collateral room).")


class Quote(BaseModel):
    """What a job would cost and take, from the providers that advertise its model."""

    model_config = ConfigDict(frozen=True)

    model: str
    work_units: int = Field(ge=1, description="frames × width × height × steps.")
    providers: int = Field(ge=0, description="Registered providers advertising the model.")
    unpriced: int = Field(ge=0, description="Of those, how many publish no price.")
    min_price: Wei | None = Field(None, description="Cheapest advertised ask for this job.")
    max_price: Wei | None = Field(None, description="Dearest advertised ask for this job.")
    expected_seconds: int | None = Field(
        None, description="Run-time estimate from published throughput; None: unknown."
    )
    endpoints: list[str] = Field(
        default_factory=list, description="Progress endpoints of those providers."
    )
    profiles: dict[str, int] = Field(
        default_factory=dict,
        description="Memory profile that will run -> how many of those providers run it.",
    )


def providers(
    market: Market, *, from_block: int, chunk_blocks: int = DEFAULT_CHUNK_BLOCKS
) -> list[ProviderListing]:
    """Registered, non-exiting providers with their latest metadata URI."""
    latest = provider_uris(
        market, from_block=from_block, reader=LogReader(market.w3, max_range=chunk_blocks)
    )
    listings = []
    for address, uri in latest.items():
        view = market.get_provider(address)
        if not view.registered or view.exit_available_at:
            continue
        listings.append(
            ProviderListing(
                address=address,
                metadata_uri=uri,
                offer=parse_offer(uri),
                unlocked_bond=view.unlocked,
            )
        )
    return listings


def quote(spec: GenerationSpec, listings: list[ProviderListing]) -> Quote:
    """Price range and time for ``spec`` among providers that advertise its model."""
    units = spec.work_units
    serving = [p for p in listings if p.offer is not None and spec.model in p.offer.models]
    asks = [
        units * p.offer.price_per_unit
        for p in serving
        if p.offer is not None and p.offer.price_per_unit is not None
    ]
    speeds = [
        p.offer.units_per_second
        for p in serving
        if p.offer is not None and p.offer.units_per_second is not None
    ]
    return Quote(
        model=spec.model,
        work_units=units,
        providers=len(serving),
        unpriced=len(serving) - len(asks),
        min_price=min(asks) if asks else None,
        max_price=max(asks) if asks else None,
        # The slowest advertised provider bounds the wait: any of them may claim.
        expected_seconds=-(-units // min(speeds)) if speeds else None,
        endpoints=[p.offer.endpoint for p in serving if p.offer and p.offer.endpoint],
        profiles=_profiles(spec.model, serving),
    )


def _profiles(model: str, serving: list[ProviderListing]) -> dict[str, int]:
    """Which memory profile each serving provider says it runs the model with."""
    default = get_entry(model).memory_profiles()[0].name
    counts: dict[str, int] = {}
    for listing in serving:
        assert listing.offer is not None  # serving
        name = listing.offer.profiles.get(model, default)
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))
