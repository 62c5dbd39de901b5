"""A fine-tune delivery and a generation with its LoRA by CID, each verified (levels 1–2)
and replayed in a fresh runner process (level 3): the LoRA is re-trained byte for byte."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.node.replay import fetch_inputs, replay_job, store_fetcher
from framecast.node.result import pin_result, write_receipt
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.catalog import TINY_PROMPT
from framecast.shared.ipfs import cid_of_path
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.receipt import Receipt
from framecast.shared.replay_report import ReplayReport
from framecast.shared.runner_protocol import RunRequest
from framecast.shared.spec import GenerationSpec
from framecast.shared.verification import Delivery, VerifyReport, sha256_file, verify_dir
from tests.finetune.conftest import Dataset, fine_tune_spec
from tests.replay.conftest import DEPLOYMENT, PROVIDER

pytestmark = pytest.mark.slow


class Node:
    """Runs jobs like the agent: inputs fetched from its store, a process runtime, receipts."""

    def __init__(self, root: Path, weights: Path, store: LocalStore) -> None:
        self.root, self.weights, self.store = root, weights, store
        self.runtime = ProcessRuntime(log_dir=root / "runner")
        self.jobs = 0

    def run(self, spec: GenerationSpec) -> tuple[int, Path, Receipt]:
        self.jobs += 1
        job_dir = self.root / f"job-{self.jobs}"
        inputs = fetch_inputs(spec, job_dir, store_fetcher(self.store))
        out = job_dir / "out"
        request = RunRequest(
            job_id=str(self.jobs), spec=spec, model_dir=str(self.weights / spec.model),
            output_dir=str(out), inputs_dir=str(inputs) if inputs else None,
        )  # fmt: skip
        final = self.runtime.run(request, job_dir=job_dir, on_event=lambda _e: None, timeout_s=300)
        assert final.status == "succeeded" and final.output is not None, final.error
        receipt = write_receipt(
            out_dir=out, output=final.output, spec=spec, job_id=self.jobs,
            request_digest="0x" + "00" * 32, deployment=DEPLOYMENT, provider=PROVIDER,
            runtime="process", image_digest=None, timings=final.metrics,
        )  # fmt: skip
        return self.jobs, out, receipt

    def verify(
        self, job_id: int, out: Path, receipt: Receipt, spec: GenerationSpec
    ) -> VerifyReport:
        body = receipt.body
        delivery = Delivery(
            chain_id=DEPLOYMENT.chain_id, market=DEPLOYMENT.market, job_id=job_id,
            provider=PROVIDER.address, result_cid=pin_result(self.store, out,
                                                             fine_tune=spec.fine_tune is not None),
            video_sha256=body.video_sha256, frames_digest=body.frames_digest,
            request_digest=body.request_digest, spec_hex="0x" + spec.canonical_json().hex(),
            spec_hash="0x" + spec.spec_hash().hex(), model_id="0x" + spec.model_id().hex(),
        )  # fmt: skip
        return verify_dir(out, delivery)

    def replay(self, job_id: int, out: Path, spec: GenerationSpec, work: Path) -> ReplayReport:
        fresh = ProcessRuntime(log_dir=work / "runner")
        try:
            return replay_job(
                job_id=job_id, spec_bytes=spec.canonical_json(), result_dir=out, runtime=fresh,
                runtime_name="process", image_digest=None, weights_root=self.weights,
                work_dir=work, timeout_s=300, fetch_input=store_fetcher(self.store),
            )  # fmt: skip
        finally:
            fresh.close()


@pytest.fixture(scope="module")
def node(
    dataset: Dataset, tiny_cogvideox_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("ft-node")
    weights = root / "weights"
    weights.mkdir()
    (weights / "tiny-cogvideox").symlink_to(tiny_cogvideox_dir, target_is_directory=True)
    made = Node(root, weights, dataset.store)
    yield made
    made.runtime.close()


def test_fine_tune_and_lora_generation_verify_and_replay_exactly(
    node: Node, dataset: Dataset, tmp_path: Path
) -> None:
    spec = fine_tune_spec(dataset.cid)
    job, out, receipt = node.run(spec)
    record = receipt.body.fine_tune
    assert record is not None and record.dataset_cid == dataset.cid
    assert (record.rank, record.alpha, record.steps) == (4, 8, 6)
    assert record.lora_sha256 == receipt.body.frames_digest == sha256_file(out / "lora.safetensors")
    assert record.lora_cid == cid_of_path(out / "lora.safetensors")
    report = node.verify(job, out, receipt, spec)
    assert report.ok and report.level_passed == 2, report.first_failure()
    assert report.check("lora_sha256") is not None and report.check("fine_tune.rank") is not None
    replayed = node.replay(job, out, spec, tmp_path / "replay-ft")
    assert replayed.verdict == "exact", replayed.reason
    assert all(c.ok for c in replayed.checks), [c for c in replayed.checks if not c.ok]
    assert {"lora_sha256", "sample_frames_digest"} <= {c.name for c in replayed.checks}

    # Generate with the LoRA by CID: the node fetched it from its store like any input.
    gen = GenerationSpec.model_validate(
        {
            **fine_tune_spec(dataset.cid).model_dump(mode="json", exclude_none=True),
            "task": "text-to-video", "steps": 2, "inputs": {}, "fine_tune": None,
            "style": {"lora": record.lora_cid, "scale_milli": 1000}, "prompt": TINY_PROMPT,
        }
    )  # fmt: skip
    assert gen.input_cids() == [record.lora_cid]
    gen_job, gen_out, gen_receipt = node.run(gen)
    assert gen_receipt.body.frames_digest == record.sample_frames_digest
    assert gen_receipt.body.style == (f"lora:{record.lora_cid}:{record.lora_sha256[2:]}:scale=1000")
    gen_report = node.verify(gen_job, gen_out, gen_receipt, gen)
    assert gen_report.ok, gen_report.first_failure()
    gen_replay = node.replay(gen_job, gen_out, gen, tmp_path / "replay-gen")
    assert gen_replay.verdict == "exact", gen_replay.reason


def test_a_swapped_lora_fails_verification_and_replay(
    node: Node, dataset: Dataset, tmp_path: Path
) -> None:
    spec = fine_tune_spec(dataset.cid, steps=2)
    job, out, receipt = node.run(spec)
    _, other_out, _ = node.run(fine_tune_spec(dataset.cid, steps=2, seed=99))
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    shutil.copyfile(other_out / "lora.safetensors", tampered / "lora.safetensors")
    report = node.verify(job, tampered, receipt, spec)
    assert not report.ok
    failed = report.first_failure()
    assert failed is not None and failed.level == 1
    # A provider claiming the other LoRA (receipt and chain agreeing) is caught by replay.
    body = receipt.body.model_copy(
        update={"frames_digest": sha256_file(tampered / "lora.safetensors")}
    )
    (tampered / "receipt.json").write_bytes(Receipt.sign(body, bytes(PROVIDER.key)).to_json())
    replayed = node.replay(job, tampered, spec, tmp_path / "replay")
    assert replayed.verdict == "mismatch" and not replayed.passed
