"""Helpers to build signed requests against the test chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from framecast.shared.deployment import Deployment
from framecast.shared.request import Domain, JobRequest, sign_request
from framecast.shared.spec import GenerationSpec, parse_spec
from tests.conftest import Chain

FCC = 10**18

BASE_SPEC: dict[str, Any] = {
    "model": "cogvideox-2b",
    "prompt": "a red fox running through snow, cinematic",
    "seed": 42,
    "num_frames": 49,
    "fps": 8,
    "width": 720,
    "height": 480,
    "steps": 50,
    "guidance_milli": 6000,
}


@dataclass
class SignedJob:
    spec: GenerationSpec
    request: JobRequest
    signature: bytes

    @property
    def spec_bytes(self) -> bytes:
        return self.spec.canonical_json()


def domain_of(deployment: Deployment) -> Domain:
    return Domain(chain_id=deployment.chain_id, market=deployment.market)


def signed_job(
    chain: Chain,
    client: str = "alice",
    *,
    max_price: int = 10 * FCC,
    nonce: int = 0,
    deadline_in: int = 3600,
    delivery_window: int = 600,
    domain: Domain | None = None,
    signer: str | None = None,
    replicas: int = 1,
    perceptual: bool = False,
    **spec_overrides: Any,
) -> SignedJob:
    spec = parse_spec({**BASE_SPEC, **spec_overrides})
    request = JobRequest.for_spec(
        spec,
        client=chain.account(client).address,
        max_price=max_price,
        claim_deadline=chain.now() + deadline_in,
        delivery_window=delivery_window,
        nonce=nonce,
        replicas=replicas,
        perceptual=perceptual,
    )
    key_owner = chain.account(signer or client)
    if signer is not None and signer != client:
        # Sign the same digest with another key (sign_request refuses that on purpose).
        from eth_account.messages import encode_typed_data

        message = encode_typed_data(
            full_message=request.typed_data(domain or domain_of(chain.deployment))
        )
        signature = bytes(key_owner.sign_message(message).signature)
    else:
        signature = sign_request(request, domain or domain_of(chain.deployment), key_owner.key)
    return SignedJob(spec, request, signature)


def fund_market(chain: Chain, client: str = "alice", amount: int = 100 * FCC) -> None:
    chain.market(client).deposit_with_permit(chain.credits(client), amount)


def register(chain: Chain, provider: str = "provider-1", bond: int = 200 * FCC) -> None:
    chain.credits(provider).approve(chain.deployment.market, bond)
    chain.market(provider).register_provider(bond, f"ipfs://meta-{provider}")
