"""A quote says which memory profile will run, from the providers' offers."""

from __future__ import annotations

from framecast.client.quote import ProviderListing, quote
from framecast.shared.catalog import default_spec
from framecast.shared.provider_metadata import ProviderOffer, parse_offer


def listing(address: str, offer: ProviderOffer) -> ProviderListing:
    uri = offer.to_uri()
    return ProviderListing(
        address=address, metadata_uri=uri, offer=parse_offer(uri), unlocked_bond=0
    )


def test_the_quote_counts_providers_per_profile_and_defaults_to_the_first() -> None:
    spec = default_spec("tiny-cogvideox", "a red cat walks in the city")
    listings = [
        listing("0x" + "1" * 40, ProviderOffer(models=["tiny-cogvideox"], price_per_unit=1)),
        listing(
            "0x" + "2" * 40,
            ProviderOffer(
                models=["tiny-cogvideox"],
                price_per_unit=2,
                profiles={"tiny-cogvideox": "vae-tiling"},
            ),
        ),
        listing("0x" + "3" * 40, ProviderOffer(models=["tiny-wan"], price_per_unit=1)),
    ]
    assert quote(spec, listings).profiles == {"full": 1, "vae-tiling": 1}


def test_an_offer_with_profiles_survives_the_data_uri() -> None:
    offer = ProviderOffer(models=["ltx-video"], profiles={"ltx-video": "model-offload"})
    parsed = parse_offer(offer.to_uri())
    assert parsed is not None and parsed.profiles == {"ltx-video": "model-offload"}
