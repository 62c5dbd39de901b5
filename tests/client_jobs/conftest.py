"""Fixtures for the client's job commands: the client fixtures (isolated home, CLI runner,
deployment file), the node fixtures (tiny model, agents), and a hand-made delivered job
whose result directory a test may tamper with before delivery."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from framecast.shared.catalog import get_entry, weights_manifest_hash
from framecast.shared.ipfs import cid_of_path, parse_cid
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.provider_metadata import ProviderOffer
from framecast.shared.receipt import Receipt, ReceiptBody, ReceiptEnvironment
from framecast.shared.request import JobRequest, sign_request
from framecast.shared.spec import GenerationSpec
from tests.chain.conftest import FCC, domain_of, fund_market, register
from tests.client.conftest import PASSWORD, Cli, cli, client_env, on_chain
from tests.conftest import Chain
from tests.node.conftest import make_agent, market_ready, weights_dir
from tests.runtime.conformance import tiny_cogvideox_dir, tiny_spec

__all__ = [
    "PASSWORD",
    "Cli",
    "cli",
    "client_env",
    "make_agent",
    "market_ready",
    "on_chain",
    "tiny_cogvideox_dir",
    "weights_dir",
]

PRICE_PER_UNIT = 1000
TINY_UNITS = 9 * 32 * 32 * 2


def offer_provider(chain: Chain, name: str = "provider-1", endpoint: str | None = None) -> None:
    """Advertise the tiny model at PRICE_PER_UNIT (what `node register` writes)."""
    offer = ProviderOffer(
        models=["tiny-cogvideox"], price_per_unit=PRICE_PER_UNIT, endpoint=endpoint
    )
    chain.market(name).update_metadata(offer.to_uri())


def write_tiny_video(path: Path, frames: int = 9, size: int = 32, fps: int = 8) -> None:
    """A real H.264 MP4 (what the runner writes), without running a model."""
    import imageio_ffmpeg
    import numpy as np

    writer = imageio_ffmpeg.write_frames(
        str(path), (size, size), fps=fps, codec="libx264", pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p", macro_block_size=1, ffmpeg_log_level="error",
    )  # fmt: skip
    writer.send(None)
    for index in range(frames):
        writer.send(np.full((size, size, 3), index * 20, dtype=np.uint8))
    writer.close()


def build_result(
    out: Path,
    chain: Chain,
    *,
    job_id: int,
    request_digest: str,
    spec: GenerationSpec,
    sign_as: str,
    frames: str = "0x" + "ab" * 32,
) -> tuple[str, str]:
    """A result directory as a node writes it (real MP4, poster, receipt signed by
    ``sign_as``) for the tiny spec; returns (video sha256, frames digest), 0x hex."""
    out.mkdir()
    write_tiny_video(out / "video.mp4")
    (out / "poster.jpg").write_bytes(b"\xff\xd8poster")
    video_sha = "0x" + hashlib.sha256((out / "video.mp4").read_bytes()).hexdigest()
    body = ReceiptBody(
        chain_id=chain.deployment.chain_id, market=chain.deployment.market, job_id=job_id,
        provider=chain.account(sign_as).address, request_digest=request_digest,
        spec_hash="0x" + spec.spec_hash().hex(), model=spec.model,
        model_id="0x" + spec.model_id().hex(),
        weights_manifest_hash="0x"
        + weights_manifest_hash(get_entry(spec.model)).removeprefix("0x"),
        seed=spec.seed, video_cid=cid_of_path(out / "video.mp4"), video_sha256=video_sha,
        frames_digest=frames, num_frames=spec.num_frames, width=spec.width, height=spec.height,
        fps=spec.fps,
        environment=ReceiptEnvironment(
            device="cpu", python="3.11", torch="2", diffusers="0.42", transformers="5",
            runtime="process", encoder="test",
        ),
    )  # fmt: skip
    receipt = Receipt.sign(body, chain.account(sign_as).key)
    (out / "receipt.json").write_bytes(receipt.to_json())
    return video_sha, frames


@dataclass
class Delivered:
    job_id: int
    result_dir: Path
    cid: str


@pytest.fixture
def deliver_job(on_chain: Chain, tmp_path: Path, client_env: Path):  # type: ignore[no-untyped-def]
    """Submit a tiny job as alice, claim it as provider-1 and deliver a result directory
    built by hand; ``tamper(dir)`` runs on the directory after the digests are taken."""
    chain = on_chain
    fund_market(chain, "alice", 50 * FCC)
    register(chain, "provider-1")
    store = LocalStore(client_env / "blocks")
    counter = iter(range(100))

    def make(tamper=None, sign_as: str = "provider-1") -> Delivered:  # type: ignore[no-untyped-def]
        spec = tiny_spec()
        alice = chain.account("alice")
        request = JobRequest.for_spec(
            spec, client=alice.address, max_price=FCC, claim_deadline=chain.now() + 600,
            delivery_window=600, nonce=next(counter),
        )  # fmt: skip
        domain = domain_of(chain.deployment)
        signature = sign_request(request, domain, alice.key)
        job_id, _ = chain.market("alice").submit_job(request, spec.canonical_json(), signature)
        chain.market("provider-1").claim_job(job_id, TINY_UNITS * PRICE_PER_UNIT)
        out = tmp_path / f"result-{job_id}"
        video_sha, frames = build_result(
            out,
            chain,
            job_id=job_id,
            request_digest="0x" + request.digest(domain).hex(),
            spec=spec,
            sign_as=sign_as,
        )
        if tamper is not None:
            tamper(out)
        cid = str(store.add_path(out))
        chain.market("provider-1").deliver(
            job_id, bytes(parse_cid(cid)), bytes.fromhex(video_sha[2:]), bytes.fromhex(frames[2:])
        )
        return Delivered(job_id, out, cid)

    yield make
    shutil.rmtree(client_env / "blocks", ignore_errors=True)
