"""What a provider advertises in its on-chain metadata URI: models, price, endpoints.

The URI is set by `registerProvider` / `updateMetadata` and read by clients from the
`ProviderRegistered` / `ProviderMetadataUpdated` events to quote a job before signing it.
Format (version 1), self-contained so a quote needs no extra network round trip::

    data:application/json,{"v":1,"models":["tiny-cogvideox"],"price_per_unit":"1000",
                           "endpoint":"http://127.0.0.1:9464"}

(percent-encoded as RFC 2397 asks; base64 data URIs are read too). The older form
``framecast:model-a,model-b`` (models only, no price) and any other URI still parse: a
client degrades to "price unknown" rather than failing.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError

from framecast.shared.spec import ModelIdStr

DATA_PREFIX = "data:application/json"
LEGACY_PREFIX = "framecast:"

# uint256 prices travel as decimal strings: exact in every JSON reader.
WeiText = Annotated[int, Field(ge=0), PlainSerializer(str, return_type=str, when_used="json")]


class ProviderOffer(BaseModel):
    """A provider's advertised offer. Every field but ``models`` is optional."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = Field(1, description="Format version.")
    models: list[ModelIdStr] = Field(default_factory=list, description="Catalog ids served.")
    price_per_unit: WeiText | None = Field(
        None, description="Least price per work unit (frames × width × height × steps), wei."
    )
    units_per_second: int | None = Field(
        None, ge=1, description="Measured throughput in work units per second, if published."
    )
    endpoint: str | None = Field(
        None,
        pattern=r"^https?://",
        max_length=256,
        description="Base URL of the node's read-only HTTP API (`/jobs/{id}`, `/healthz`).",
    )
    gateway: str | None = Field(
        None,
        pattern=r"^https?://",
        max_length=256,
        description="Trustless IPFS gateway serving this provider's results.",
    )
    profiles: dict[ModelIdStr, str] = Field(
        default_factory=dict,
        description="Memory profile each model runs with here (catalog profile name); a "
        "model left out runs its catalog's first profile.",
    )

    def to_uri(self) -> str:
        body = self.model_dump_json(exclude_none=True)
        return f"{DATA_PREFIX},{quote(body, safe='')}"


def parse_offer(uri: str) -> ProviderOffer | None:
    """The offer in a metadata URI, or None when the URI says nothing we can read."""
    if uri.startswith(LEGACY_PREFIX):
        models = [m for m in uri[len(LEGACY_PREFIX) :].split(",") if m]
        try:
            return ProviderOffer(models=models)
        except ValidationError:
            return None
    if not uri.startswith(DATA_PREFIX):
        return None
    header, sep, payload = uri.partition(",")
    if not sep:
        return None
    try:
        if header.endswith(";base64"):
            text = base64.b64decode(payload, validate=True).decode("utf-8")
        else:
            text = unquote(payload)
        return ProviderOffer.model_validate(json.loads(text))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, ValidationError):
        return None
