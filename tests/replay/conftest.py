"""Fixtures for replay tests: the tiny CogVideoX weights, a provider that runs jobs through
the real process runtime and signs real receipts, and re-encoding of delivered videos."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from framecast.node.result import write_receipt
from framecast.node.runtime.process import ProcessRuntime
from framecast.runner.video import read_video
from framecast.shared.deployment import Deployment, MarketParams
from framecast.shared.receipt import Receipt
from framecast.shared.runner_protocol import RunOutput
from framecast.shared.spec import GenerationSpec
from tests.runtime.conformance import make_request, tiny_cogvideox_dir

__all__ = ["tiny_cogvideox_dir"]

PROVIDER: LocalAccount = Account.from_key("0x" + "42" * 32)
#: Receipts are signed under a market domain; no chain is needed to write or read them.
DEPLOYMENT = Deployment(
    network="replay-test",
    chain_id=31337,
    rpc_url="http://127.0.0.1:1",
    credits="0x" + "11" * 20,
    market="0x" + "22" * 20,
    deployed_block=0,
    params=MarketParams(
        min_bond=0, collateral_bps=0, dispute_bond=0, challenge_window=60, resolve_window=60,
        reveal_window=60, exit_cooldown=0, protocol_fee_bps=0,
    ),
)  # fmt: skip


@pytest.fixture(scope="session")
def weights_root(tiny_cogvideox_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replay-weights")
    (root / "tiny-cogvideox").symlink_to(tiny_cogvideox_dir, target_is_directory=True)
    return root


@dataclass
class Delivery:
    """A result directory as the agent builds it, and the spec the job was signed with."""

    job_id: int
    spec: GenerationSpec
    result_dir: Path
    receipt: Receipt
    output: RunOutput


class Provider:
    """Runs jobs like the agent: one warm process runtime, real receipts."""

    def __init__(self, root: Path, weights_root: Path) -> None:
        self.root = root
        self.weights_root = weights_root
        self.runtime = ProcessRuntime(log_dir=root / "runner")
        self._next = 1

    def deliver(
        self, spec: GenerationSpec, *, ran: GenerationSpec | None = None, profile: str | None = None
    ) -> Delivery:
        """Run `ran` (default: `spec`) with memory `profile` (default: the entry's first) and
        sign a receipt that says it ran `spec`."""
        job_id, self._next = self._next, self._next + 1
        job_dir = self.root / f"job-{job_id}"
        request = make_request(
            job_dir, self.weights_root / spec.model, ran or spec, f"provider-{job_id}"
        ).model_copy(update={"memory_profile": profile})
        terminal = self.runtime.run(request, job_dir=job_dir, on_event=lambda _e: None,
                                    timeout_s=120)  # fmt: skip
        assert terminal.status == "succeeded" and terminal.output is not None, terminal
        out = Path(request.output_dir)
        receipt = write_receipt(
            out_dir=out, output=terminal.output, spec=spec, job_id=job_id,
            request_digest="0x" + "00" * 32, deployment=DEPLOYMENT, provider=PROVIDER,
            runtime="process", image_digest=None, timings=terminal.metrics,
        )  # fmt: skip
        return Delivery(job_id, spec, out, receipt, terminal.output)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory, weights_root: Path) -> Iterator[Provider]:
    made = Provider(tmp_path_factory.mktemp("provider"), weights_root)
    yield made
    made.runtime.close()


def reencode(video: Path, crf: int) -> None:
    """Decode `video` and encode its frames again in place at another CRF."""
    frames = read_video(video)
    tmp = video.with_suffix(".tmp.mp4")
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (frames.shape[2], frames.shape[1]), fps=8, codec="libx264",
        pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=None, macro_block_size=1,
        ffmpeg_log_level="error", output_params=["-crf", str(crf)],
    )  # fmt: skip
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    tmp.replace(video)


def resign(delivery: Delivery, **changes: object) -> Receipt:
    """Rewrite the receipt with `changes` (video fields follow the files on disk)."""
    from framecast.shared.ipfs import cid_of_path

    video = delivery.result_dir / "video.mp4"
    body = delivery.receipt.body.model_copy(
        update={
            "video_sha256": "0x" + hashlib.sha256(video.read_bytes()).hexdigest(),
            "video_cid": cid_of_path(video),
            **changes,
        }
    )
    receipt = Receipt.sign(body, bytes(PROVIDER.key))
    (delivery.result_dir / "receipt.json").write_bytes(receipt.to_json())
    delivery.receipt = receipt
    return receipt
