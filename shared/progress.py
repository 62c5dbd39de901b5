"""The signed answer of a node's `/jobs/{id}`: progress and skip reasons bound to a provider.

Anyone can serve HTTP at any URL, so what a client reads from a provider's endpoint means
something only when it is signed by that provider's key. The node signs, with EIP-191
(``personal_sign``), the canonical JSON of a :class:`ProgressReport`: chain id and market
(the answer cannot be replayed on another deployment), job id, the node's local state,
progress in millionths (signed numbers are integers), the reason it gives (why it skipped
a job, why a run failed) and the time it answered. The client checks that the signer is
the provider it expects (the claimer, or for a skip reason the provider whose offer it
asked) and that the report is about this chain, market and job, and fresh.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from eth_account import Account
from eth_account.messages import encode_defunct
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framecast.shared.spec import canonical_json

#: How old (or how far ahead, for skewed clocks) a report may be when the client reads it.
MAX_AGE_S = 300
PPM = 1_000_000


class ProgressReport(BaseModel):
    """What the provider signs about one job (every field is covered by the signature)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = Field(1, description="Format version.")
    chain_id: int = Field(ge=1, description="Chain id of the market.")
    market: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="JobMarket address.")
    job_id: int = Field(ge=1, description="The job.")
    state: str = Field(max_length=32, description="The node's local state of the job.")
    progress_ppm: int = Field(ge=0, le=PPM, description="Run progress in millionths.")
    reason: str | None = Field(None, max_length=500, description="Why (skipped, failed...).")
    timestamp: int = Field(ge=0, description="Unix time the node answered.")

    @property
    def progress(self) -> float:
        return self.progress_ppm / PPM

    def message(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


def sign_report(report: ProgressReport, key: Any) -> dict[str, object]:
    """The JSON answer: the report's fields, plus ``progress`` (a float for humans, not
    signed) and the hex ``signature``."""
    signed = Account.sign_message(encode_defunct(primitive=report.message()), private_key=key)
    return {
        **report.model_dump(mode="json"),
        "progress": report.progress,
        "signature": "0x" + bytes(signed.signature).hex(),
    }


def verify_report(
    data: object,
    *,
    signer: str,
    chain_id: int,
    market: str,
    job_id: int,
    now: float | None = None,
) -> ProgressReport | str:
    """The report when ``data`` is a fresh answer about this job signed by ``signer``;
    otherwise a short reason why it is not (the caller ignores the answer and says so)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    body = {k: v for k, v in data.items() if k not in ("signature", "progress")}
    signature = data.get("signature")
    if not isinstance(signature, str):
        return "unsigned"
    try:
        report = ProgressReport.model_validate(body)
        recovered = Account.recover_message(
            encode_defunct(primitive=report.message()), signature=signature
        )
    except (ValidationError, ValueError, TypeError) as exc:
        return f"malformed or badly signed ({exc.__class__.__name__})"
    if recovered.lower() != signer.lower():
        return f"signed by {recovered}, not by {signer}"
    if report.chain_id != chain_id or report.market.lower() != market.lower():
        return "about another chain or market"
    if report.job_id != job_id:
        return f"about job {report.job_id}, not {job_id}"
    age = (time.time() if now is None else now) - report.timestamp
    if abs(age) > MAX_AGE_S:
        return f"stale ({age:.0f} s old)"
    return report
