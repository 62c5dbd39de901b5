"""Replay (docs/protocol.md §8 level 3): re-run a delivered job here and compare its frames.

The replay runs the job's signed spec (the bytes of `JobSubmitted`) with the catalog
entry's verified weights through this node's configured runtime (process or Docker),
exactly as the agent runs a job, in a fresh runner. Its frames digest is compared with
the delivered one: equal is an ``exact`` match. When they differ, both videos are decoded
and compared frame by frame (`python -m framecast.runner.compare` in a subprocess: the node
never imports the runner) and the verdict depends on whether the environments differ:

- same image digest, device, GPU, driver and library versions → only an exact
  match passes (docs/protocol.md §8, level 3: same environment, identical frames);
- otherwise → ``perceptual`` if every frame is within `PERCEPTUAL_THRESHOLD`, else
  ``mismatch``.

The receipt's signature is not checked here: that is level 2, which `framecast verify`
runs before it asks for a replay. The receipt is read for the frames digest and the
environment it attests to.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from framecast.node.gpus import GpuDetector, detect_gpus
from framecast.node.result import receipt_environment
from framecast.node.runtime.base import ContainerRuntime
from framecast.shared.catalog import CatalogEntry, check_spec, weights_manifest_hash
from framecast.shared.catalog.entry import MemoryProfile
from framecast.shared.catalog.fit import GpuCard, choose_with_numerics
from framecast.shared.catalog.verify import verify_entry_weights
from framecast.shared.chain.bindings import Market
from framecast.shared.chain.history import read_job
from framecast.shared.errors import (
    ContentNotFound,
    PipelineError,
    RunnerFailed,
    VerificationFailed,
    WeightsInvalid,
)
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.dag import is_directory, write_tree
from framecast.shared.ipfs.retrieve import RetrievalSettings, Retriever
from framecast.shared.ipfs.store import ContentStore, StoreSettings
from framecast.shared.receipt import Receipt, ReceiptEnvironment
from framecast.shared.replay_report import EXACT_FIELDS, ReplayCheck, ReplayReport
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from framecast.shared.similarity import PERCEPTUAL_THRESHOLD, SimilarityReport
from framecast.shared.spec import GenerationSpec, decode_spec

log = logging.getLogger(__name__)

COMPARE_TIMEOUT_S = 600.0

#: Writes the content of a CID to a path (inputs of image-to-video and control jobs).
FetchInput = Callable[[str, Path], None]


@dataclass(frozen=True)
class ChainDelivery:
    """What the chain says about a job: the signed spec and what was delivered."""

    job_id: int
    spec: bytes
    result_cid: str | None
    video_sha256: str | None
    frames_digest: str | None
    provider: str | None = None


def read_chain_job(
    market: Market, job_id: int, *, from_block: int, replica: int | None = None
) -> ChainDelivery:
    """The job's `JobSubmitted` spec and what was delivered: its `JobDelivered` digests, or
    with `replica` (a replicated job) that replica's `ResultRevealed` digests."""
    history = read_job(market, job_id, from_block=from_block)
    if history.submitted is None:
        raise VerificationFailed(
            f"job {job_id} was never submitted to the market at {market.address}",
            fix="check the job id and the network (--network / --rpc-url)",
        )
    replicas = history.submitted.request.replicas
    if replica is None and replicas > 1:
        raise VerificationFailed(
            f"job {job_id} is replicated ({replicas} replicas): say which result to replay",
            fix=f"pass --replica 0..{replicas - 1} (`framecast status {job_id}` lists them)",
        )
    if replica is not None and not 0 <= replica < max(replicas, 1):
        raise VerificationFailed(
            f"job {job_id} has {replicas} replica{'s' if replicas > 1 else ''}; "
            f"there is no replica {replica}",
            fix="leave --replica out for a single-provider job"
            if replicas == 1
            else f"pass --replica 0..{replicas - 1}",
        )
    result = history.reveal(replica or 0) if replicas > 1 else history.delivery
    return ChainDelivery(
        job_id=job_id,
        spec=history.submitted.spec_bytes(),
        result_cid=result.result_cid if result else None,
        video_sha256=result.video_sha256 if result else None,
        frames_digest=result.frames_digest if result else None,
        provider=result.provider if result else None,
    )


def node_retriever(
    store: StoreSettings,
    *,
    gateway_url: str | None = None,
    public_gateways: tuple[str, ...] | list[str] = (),
    source_timeout_s: float | None = None,
    provider_gateways: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    allow_loopback: bool = False,
) -> Retriever:
    """The node's one retrieval path: its own store (where it pins its deliveries), the
    gateway given (else the store's configured one), the provider's advertised gateway,
    the public gateways."""
    return Retriever(
        store=store,
        settings=RetrievalSettings(
            gateway_url=gateway_url or store.gateway_url,
            public_gateways=tuple(public_gateways),
            source_timeout_s=source_timeout_s or store.timeout_s,
        ),
        provider_gateways=provider_gateways,
        allow_loopback=allow_loopback,
    )


def fetch_result(
    cid: str,
    dest: Path,
    *,
    store: StoreSettings,
    gateway_url: str | None = None,
    retriever: Retriever | None = None,
    provider: str | None = None,
) -> str:
    """Download a result directory into `dest`, every block verified; returns the source
    (`framecast.shared.ipfs.retrieve`, with the node's sources unless `retriever` is given)."""
    retriever = retriever or node_retriever(store, gateway_url=gateway_url)
    return retriever.retrieve(cid, dest, provider=provider)


def retrieval_fetcher(retriever: Retriever) -> FetchInput:
    """Input files through the one retrieval path (store, gateways, kubo), verified."""

    def fetch_input(cid: str, path: Path) -> None:
        # A file left by an earlier, interrupted run is replaced by a verified one.
        path.unlink(missing_ok=True)
        retriever.retrieve(cid, path)

    return fetch_input


def store_fetcher(store: ContentStore) -> FetchInput:
    """Input files from a content store (the way the agent fetches them)."""

    def fetch_input(cid: str, path: Path) -> None:
        root = CID.parse(cid)
        if is_directory(store.get_block, root):
            # A fine-tune dataset: the whole UnixFS directory, every block verified.
            shutil.rmtree(path, ignore_errors=True)
            write_tree(store.get_block, root, path)
            return
        with path.open("wb") as handle:
            for chunk in store.cat(cid):
                handle.write(chunk)

    return fetch_input


def compare_videos(reference: Path, candidate: Path, *, python: str) -> SimilarityReport:
    """Per-frame similarity by the runner's compare tool, in a subprocess.

    Raises `VerificationFailed` when the reference does not decode, `RunnerFailed` when
    the tool itself is missing or fails.
    """
    command = [python, "-m", "framecast.runner.compare", str(reference), str(candidate), "--json"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=COMPARE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunnerFailed(
            f"the frame comparison could not run ({exc})",
            fix="install the pipelines extra: pip install 'framecast[node,pipelines]'",
        ) from None
    if done.returncode in (0, 1):
        return SimilarityReport.model_validate_json(done.stdout)
    message = done.stderr.strip()[-1000:]
    if done.returncode == 2 and str(reference) in message:
        raise VerificationFailed(
            f"the delivered video does not decode: {message}",
            fix="the delivery is broken: dispute the job",
        )
    raise RunnerFailed(
        f"the frame comparison failed (exit {done.returncode}): {message}",
        fix="install the pipelines extra: pip install 'framecast[node,pipelines]'",
    )


def _check(name: str, delivered: object, replay: object, detail: str = "") -> ReplayCheck:
    return ReplayCheck(
        name=name,
        ok=delivered == replay,
        delivered=None if delivered is None else str(delivered)[:256],
        replay=None if replay is None else str(replay)[:256],
        detail=detail,
    )


def replay_job(
    *,
    job_id: int,
    spec_bytes: bytes,
    result_dir: Path,
    runtime: ContainerRuntime,
    runtime_name: str,
    image_digest: str | None,
    weights_root: Path,
    work_dir: Path,
    chain_frames_digest: str | None = None,
    compare_python: str = sys.executable,
    timeout_s: float = 3600.0,
    fetch_input: FetchInput | None = None,
    detect: GpuDetector | None = None,
) -> ReplayReport:
    """Re-run job `job_id` through `runtime` and judge the delivery in `result_dir`.

    `spec_bytes` are the signed spec bytes (from `JobSubmitted`). The replay's files stay
    in `work_dir` (evidence for a dispute). Raises when the replay cannot run (weights
    missing, runner failure); a mismatch is a verdict, not an exception.
    """
    try:
        receipt = Receipt.from_json((result_dir / "receipt.json").read_bytes())
    except OSError as exc:
        raise VerificationFailed(
            f"{result_dir} has no readable receipt.json ({type(exc).__name__})",
            fix="pass the job's verified result directory (`framecast fetch JOB -o DIR`)",
        ) from None
    video = result_dir / "video.mp4"
    if not video.is_file():
        raise VerificationFailed(
            f"{result_dir} has no video.mp4", fix="pass the job's verified result directory"
        )
    spec = decode_spec(spec_bytes)
    entry = check_spec(spec)
    body = receipt.body
    manifest_hash = "0x" + weights_manifest_hash(entry).removeprefix("0x")
    checks = [
        _check("job_id", body.job_id, job_id),
        _check("spec_hash", body.spec_hash, "0x" + spec.spec_hash().hex(), "keccak256(spec)"),
        _check("model", body.model, spec.model),
        _check("seed", body.seed, spec.seed),
        _check("weights_manifest_hash", body.weights_manifest_hash, manifest_hash, "catalog"),
    ]
    if chain_frames_digest is not None:
        checks.append(
            _check("frames_digest", body.frames_digest, chain_frames_digest, "receipt vs chain")
        )
    model_dir = weights_root / entry.id
    try:
        verify_entry_weights(entry, model_dir, entry.manifest)
    except WeightsInvalid as exc:
        raise WeightsInvalid(f"cannot replay {entry.id}: {exc.message}", fix=exc.fix) from None

    profile = replay_profile(entry, body.environment, (detect or detect_gpus)())

    work_dir.mkdir(parents=True, exist_ok=True)
    inputs_dir = fetch_inputs(spec, work_dir, fetch_input)
    out_dir = work_dir / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    request = RunRequest(
        job_id=f"replay-{job_id}",
        spec=spec,
        model_dir=str(model_dir),
        output_dir=str(out_dir),
        inputs_dir=str(inputs_dir) if inputs_dir else None,
        memory_profile=profile.name,
    )
    started = time.perf_counter()
    final = runtime.run(request, job_dir=work_dir, on_event=_log_event, timeout_s=timeout_s)
    seconds = time.perf_counter() - started
    if final.status != "succeeded" or final.output is None:
        error = final.error
        raise RunnerFailed(
            f"the replay of job {job_id} did not finish: "
            + (f"{error.kind}: {error.message}" if error else final.status),
            fix=(error.fix if error and error.fix else "read the runner log in the node state dir"),
        )
    output = final.output
    replay_env = receipt_environment(output.environment, runtime_name, image_digest)
    delivered_env = body.environment
    differences = [
        name for name in EXACT_FIELDS if getattr(delivered_env, name) != getattr(replay_env, name)
    ]
    if body.weights_manifest_hash != manifest_hash:
        differences.append("weights_manifest_hash")
    # Receipts from before memory profiles ran the reference numerics.
    delivered_numerics = delivered_env.numerics or REFERENCE_NUMERICS
    if delivered_numerics != (replay_env.numerics or REFERENCE_NUMERICS):
        differences.append("numerics")
    checks.append(
        _check(
            "environment.numerics",
            delivered_numerics,
            replay_env.numerics or REFERENCE_NUMERICS,
            f"profile {delivered_env.memory_profile or 'full'} vs {replay_env.memory_profile}",
        )
    )
    checks.extend(
        _check(f"environment.{name}", getattr(delivered_env, name), getattr(replay_env, name))
        for name in EXACT_FIELDS
    )
    replay_digest = "0x" + output.frames_digest
    reference = chain_frames_digest or body.frames_digest
    exact_expected = not differences
    similarity: SimilarityReport | None = None
    replay_video_sha = "0x" + output.video_sha256
    checks.append(_check("video_sha256", body.video_sha256, replay_video_sha, "same encoder"))
    if body.fine_tune is not None and output.fine_tune is not None:
        # A fine-tune's digest slot is its LoRA: the replay re-trained it, byte for byte on
        # the same hardware; the sample generated with it is compared as frames.
        made = output.fine_tune
        checks.append(
            _check("lora_sha256", body.fine_tune.lora_sha256, "0x" + made.lora_sha256, "retrained")
        )
        checks.append(
            _check(
                "sample_frames_digest",
                body.fine_tune.sample_frames_digest,
                "0x" + made.sample_frames_digest,
                "sample generated with the retrained LoRA",
            )
        )
    if replay_digest == reference and replay_video_sha == body.video_sha256:
        verdict, reason = "exact", "the replay's frames digest and video bytes equal the delivery"
    elif replay_digest == reference:
        # Equal digests say the provider computed the right frames; the video must still be
        # an encoding of them (another ffmpeg build encodes the same frames to other bytes).
        try:
            similarity = compare_videos(video, out_dir / "video.mp4", python=compare_python)
        except VerificationFailed as exc:
            verdict, reason = "mismatch", exc.message
        else:
            if similarity.passes:
                verdict, reason = (
                    "exact",
                    (
                        "the replay's frames digest equals the delivered one; the videos differ "
                        f"only by encoding: {similarity.summary()}"
                    ),
                )
            else:
                verdict, reason = (
                    "mismatch",
                    (
                        "the frames digest matches but the delivered video is not an encoding of "
                        f"those frames: {similarity.summary()}"
                    ),
                )
    else:
        try:
            similarity = compare_videos(video, out_dir / "video.mp4", python=compare_python)
        except VerificationFailed as exc:
            verdict, reason = "mismatch", exc.message
        else:
            verdict, reason = _judge(similarity, exact_expected, differences)
    return ReplayReport(
        job_id=job_id,
        verdict=verdict,
        reason=reason,
        model=spec.model,
        seed=spec.seed,
        chain_frames_digest=chain_frames_digest,
        receipt_frames_digest=body.frames_digest,
        replay_frames_digest=replay_digest,
        exact_expected=exact_expected,
        environment_differences=differences,
        delivered_environment=delivered_env,
        replay_environment=replay_env,
        checks=checks,
        similarity=similarity,
        threshold=similarity.threshold if similarity else PERCEPTUAL_THRESHOLD,
        replay_seconds=seconds,
        result_dir=str(result_dir),
        replay_dir=str(work_dir),
    )


REFERENCE_NUMERICS = "reference"


def replay_profile(
    entry: CatalogEntry, delivered: ReceiptEnvironment, cards: Sequence[GpuCard]
) -> MemoryProfile:
    """The memory profile a replay runs: the best one on this host with the delivery's
    numerics (offload may differ, tiling and quantization may not). Raises `PipelineError`
    when none fits: a replay in other numerics would judge the hardware, not the provider."""
    numerics = delivered.numerics or REFERENCE_NUMERICS
    hosts: list[GpuCard | None] = list(cards) or [None]
    for card in hosts:
        profile = choose_with_numerics(entry, card, numerics)
        if profile is not None:
            return profile
    same = [p for p in entry.memory_profiles() if p.numerics == numerics]
    need = min((p.vram_gb for p in same), default=None)
    have = ", ".join(f"{c.name} ({c.memory_gib:.1f} GiB)" for c in cards) or "no GPU"
    raise PipelineError(
        f"cannot replay {entry.id} like with like: the delivery ran memory profile "
        f"{delivered.memory_profile or 'full'} (numerics {numerics}), and "
        + (
            f"no profile with those numerics fits this host ({have}; they need {need:g} GiB)"
            if need is not None
            else "the catalog has no profile with those numerics"
        ),
        fix="replay on a node whose GPU fits that profile (`framecast catalog fit`)",
    )


def _judge(
    similarity: SimilarityReport, exact_expected: bool, differences: list[str]
) -> tuple[str, str]:
    summary = similarity.summary()
    if exact_expected:
        # Same image, hardware class and libraries: determinism makes any drift a lie.
        return "mismatch", (
            "the frames digest differs although the replay ran in the delivery's environment, "
            f"where an exact match is required; {summary}"
        )
    if similarity.passes:
        return "perceptual", (
            f"environments differ ({', '.join(differences)}), so an exact match is not "
            f"expected; every frame is within the threshold: {summary}"
        )
    return "mismatch", f"the frames are not the same generation: {summary}"


def _log_event(event: RunnerEvent) -> None:
    log.debug("replay %s: %s %.0f%%", event.job_id, event.status, event.progress * 100)


def fetch_inputs(
    spec: GenerationSpec, work_dir: Path, fetch_input: FetchInput | None
) -> Path | None:
    """Fetch the job's input files into `work_dir/inputs` (None when it has none)."""
    cids = spec.input_cids()
    if not cids:
        return None
    if fetch_input is None:
        raise ContentNotFound(
            "the job has input files but no store to fetch them from",
            fix="configure the node's store (the replay fetches inputs like the agent)",
        )
    target = work_dir / "inputs"
    target.mkdir(parents=True, exist_ok=True)
    for cid in cids:
        fetch_input(cid, target / cid)
    return target


def new_work_dir(state_dir: Path, job_id: int) -> Path:
    """A fresh folder for one replay under the node's state dir (kept as evidence)."""
    root = state_dir / "replays"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{job_id}-", dir=root))
