"""Client inputs to the providers that could claim the job, before one of them does.

A job's input files (the init image of image-to-video...) travel by CID; the client holds
them in its own store. Right after `submitJob` it posts a CAR of each input to the node
HTTP API of every registered provider whose offer serves the model (bounded in count and
time): a node claims a job with inputs only once it holds them, so the provider that
claims has them, and one that never got them skips the job instead of losing collateral.
Each node accepts the CAR only for an input named in this open job's spec.
"""

from __future__ import annotations

import io
import time

import httpx
from pydantic import BaseModel, ConfigDict, Field

from framecast.client.quote import ProviderListing
from framecast.shared.endpoints import check_remote_url
from framecast.shared.errors import FramecastError
from framecast.shared.ipfs.car import CONTENT_TYPE as CAR_TYPE
from framecast.shared.ipfs.store import ContentStore

INPUTS_PATH = "/framecast/v1/inputs"
#: Most providers one submit uploads to (the first ones in registration order).
MAX_PROVIDERS = 8
#: All uploads of one submit together stop after this many seconds.
UPLOAD_BUDGET_S = 60.0


class UploadOutcome(BaseModel):
    """What one provider answered for one input."""

    model_config = ConfigDict(frozen=True)

    provider: str
    url: str | None = Field(None, description="The provider's advertised API; None: none.")
    cid: str
    ok: bool
    detail: str = Field(description="'uploaded', 'already held', or why not.")


def input_targets(listings: list[ProviderListing], model: str) -> list[ProviderListing]:
    """Providers that could claim a job for ``model`` and advertise an HTTP API."""
    return [
        p
        for p in listings
        if p.offer is not None and model in p.offer.models and (p.offer.endpoint or p.offer.gateway)
    ][:MAX_PROVIDERS]


def upload_inputs(
    store: ContentStore,
    cids: list[str],
    *,
    job_id: int,
    targets: list[ProviderListing],
    allow_loopback: bool,
    timeout_s: float = 20.0,
    budget_s: float = UPLOAD_BUDGET_S,
) -> list[UploadOutcome]:
    """POST a CAR of each input to each target; one outcome per (provider, input)."""
    cars: dict[str, bytes] = {}
    for cid in cids:
        buffer = io.BytesIO()
        store.export_car(cid, buffer)
        cars[cid] = buffer.getvalue()
    outcomes: list[UploadOutcome] = []
    deadline = time.monotonic() + budget_s
    with httpx.Client(timeout=timeout_s) as http:
        for provider in targets:
            assert provider.offer is not None
            raw_url = provider.offer.endpoint or provider.offer.gateway or ""
            try:
                base = check_remote_url(
                    raw_url, field=f"API URL of provider {provider.address}",
                    allow_loopback=allow_loopback,
                )  # fmt: skip
            except FramecastError as exc:
                outcomes += [
                    UploadOutcome(provider=provider.address, url=raw_url, cid=c, ok=False,
                                  detail=f"not contacted: {exc.message}")
                    for c in cids
                ]  # fmt: skip
                continue
            for cid, car in cars.items():
                if time.monotonic() > deadline:
                    detail, ok = f"not tried: the {budget_s:.0f} s upload budget is spent", False
                else:
                    detail, ok = _post(http, base, job_id, car)
                outcomes.append(
                    UploadOutcome(
                        provider=provider.address, url=base, cid=cid, ok=ok, detail=detail
                    )
                )
    return outcomes


def _post(http: httpx.Client, base: str, job_id: int, car: bytes) -> tuple[str, bool]:
    try:
        response = http.post(
            f"{base}{INPUTS_PATH}",
            params={"job": job_id},
            content=car,
            headers={"Content-Type": CAR_TYPE},
        )
    except httpx.HTTPError as exc:
        return f"unreachable ({exc.__class__.__name__})", False
    if response.status_code == 201:
        return "uploaded", True
    if response.status_code == 200:
        return "already held", True
    try:
        why = str(response.json().get("error", ""))
    except ValueError:
        why = response.text[:200]
    return f"refused (HTTP {response.status_code}: {why})", False
