"""The runner's job loop: requests in on stdin, events out on stdout (JSON lines).

`serve` is long-lived (warm): the last loaded model stays in memory keyed by its weights
directory, so the next job on the same model skips loading. Every job ends with exactly
one terminal event; a failed job (bad input, bad weights, OOM, a pipeline exception)
leaves the runner usable for the next one. Only a `shutdown` message or EOF ends it.

EOF on stdin means the node is gone (killed, crashed; a node that stops in order sends
`shutdown`). Between jobs the runner just exits; mid-job it stops at once (`lifeline.abandon`;
`lifeline` watches for the same from the runner's first instant): nobody reads the job's
events any more, and a restarted node runs the job again with a runner of its own, which
must not share the GPU or the output folder with this one.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import ValidationError

from framecast.runner import finetune
from framecast.runner.environment import describe_environment, pick_device
from framecast.runner.lifeline import abandon
from framecast.runner.lora import Adapter, cid_adapter
from framecast.runner.pipelines import (
    LoadedModel,
    expected_steps,
    generate,
    is_out_of_memory,
    load_model,
    release_memory,
)
from framecast.runner.video import encoder_description, frames_digest, write_poster, write_video
from framecast.shared.catalog import CatalogEntry, check_spec, get_entry, get_style
from framecast.shared.errors import FramecastError, JobCanceled, SpecError, WeightsInvalid
from framecast.shared.runner_protocol import (
    CancelMessage,
    FineTuneOutput,
    RunEnvironment,
    RunnerEvent,
    RunOutput,
    RunRequest,
    ShutdownMessage,
    decode_inbound,
    failed_event,
)
from framecast.shared.spec import FINE_TUNE, SpecInputs

log = logging.getLogger("framecast.runner")

Emit = Callable[[RunnerEvent], None]


class JobRunner:
    """Runs one job at a time on a cached model; turns every failure into a terminal event."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device or pick_device()
        self._model: LoadedModel | None = None
        self.canceled: set[str] = set()

    def _model_for(self, request: RunRequest) -> tuple[LoadedModel, bool]:
        entry_id = request.spec.model
        if (
            self._model is not None
            and self._model.model_dir == request.model_dir
            and self._model.entry_id == entry_id
            and self._model.profile.name == self._profile_name(request)
        ):
            return self._model, True
        # One model in memory at a time: a GPU rarely fits two, so drop the old one first.
        self._model = None
        release_memory(self.device)
        self._model = load_model(
            get_entry(entry_id), request.model_dir, self.device, request.memory_profile
        )
        return self._model, False

    @staticmethod
    def _profile_name(request: RunRequest) -> str:
        entry = get_entry(request.spec.model)
        return request.memory_profile or entry.memory_profiles()[0].name

    def execute(self, request: RunRequest, emit: Emit) -> RunnerEvent:
        """Run `request`, emitting progress; return (and emit) its one terminal event."""
        job = request.job_id
        started = time.perf_counter()
        metrics: dict[str, float] = {}
        emit(RunnerEvent(job_id=job, status="starting"))
        try:
            terminal = self._run(request, emit, metrics, started)
        except JobCanceled:
            terminal = failed_event(
                job,
                "canceled",
                f"job {job} was canceled between steps",
                fix="submit it again if it is still wanted",
                **metrics,
            )
        except SpecError as exc:
            terminal = failed_event(job, "invalid_input", exc.message, exc.fix, **metrics)
        except WeightsInvalid as exc:
            terminal = failed_event(job, "weights", exc.message, exc.fix, **metrics)
        except FramecastError as exc:
            terminal = failed_event(job, "invalid_input", exc.message, exc.fix, **metrics)
        except Exception as exc:
            log.error("job %s failed:\n%s", job, traceback.format_exc())
            if is_out_of_memory(exc):
                terminal = failed_event(
                    job,
                    "oom",
                    f"out of memory on {self.device} running job {job}: {exc}",
                    "lower frames, size or steps; the runner freed its memory for the next job",
                    **metrics,
                )
            else:
                terminal = failed_event(
                    job,
                    "crash",
                    f"{type(exc).__name__}: {exc}",
                    "read the runner log (stderr)",
                    **metrics,
                )
        finally:
            self.canceled.discard(job)
        if terminal.status != "succeeded":
            release_memory(self.device)
        emit(terminal)
        return terminal

    def _run(
        self, request: RunRequest, emit: Emit, metrics: dict[str, float], started: float
    ) -> RunnerEvent:
        job, spec = request.job_id, request.spec
        # Validation first: nothing is loaded or computed for a spec the entry rejects.
        entry = check_spec(spec)
        style = get_style(spec.style_id) if spec.style_id is not None else None
        if entry.runner != "diffusers":
            raise SpecError(
                f"model {entry.id} is served by the {entry.runner} image",
                field="model",
                fix=f"run it with image {entry.image}",
            )
        if entry.context_parallel is not None:
            _check_context_parallel(entry.id, entry.context_parallel.degree, self.device)
        output_dir = Path(request.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        model, warm = self._model_for(request)
        metrics["load_s"] = time.perf_counter() - t0
        metrics["warm"] = 1.0 if warm else 0.0
        total = expected_steps(entry, spec)
        done = 0

        def on_step() -> None:
            nonlocal done
            if job in self.canceled:
                raise JobCanceled(f"job {job} was canceled between steps", job_id=job)
            done += 1
            emit(
                RunnerEvent(
                    job_id=job,
                    status="processing",
                    progress=min(done / total, 0.99),
                    metrics={"step": float(done)},
                )
            )

        if spec.task == FINE_TUNE:
            return self._fine_tune(request, entry, model, emit, metrics, started)
        adapter = None
        if spec.lora_style is not None:
            adapter = cid_adapter(request.inputs_dir, spec.lora_style, model.main.transformer)
        t1 = time.perf_counter()
        frames = generate(
            model,
            entry=entry,
            spec=spec,
            style=style,
            inputs_dir=request.inputs_dir,
            on_step=on_step,
            adapter=adapter,
        )
        metrics["inference_s"] = time.perf_counter() - t1
        if job in self.canceled:
            raise JobCanceled(f"job {job} was canceled between steps", job_id=job)
        t2 = time.perf_counter()
        video_sha = write_video(frames, output_dir / "video.mp4", spec.fps)
        write_poster(frames, output_dir / "poster.jpg")
        metrics["encode_s"] = time.perf_counter() - t2
        metrics["total_s"] = time.perf_counter() - started
        metrics["steps"] = float(done)
        output = RunOutput(
            video_sha256=video_sha,
            frames_digest=frames_digest(frames),
            num_frames=int(frames.shape[0]),
            width=int(frames.shape[2]),
            height=int(frames.shape[1]),
            fps=spec.fps,
            style=adapter.receipt_id
            if adapter is not None
            else (style.receipt_id() if style is not None else None),
            environment=self._environment(model),
        )
        return RunnerEvent(
            job_id=job, status="succeeded", progress=1.0, output=output, metrics=metrics
        )

    def _environment(self, model: LoadedModel) -> RunEnvironment:
        # The memory profile is part of the environment: replay and replicas compare like
        # with like (a tiled or quantized run is its own numerics class).
        return describe_environment(self.device, encoder_description()).model_copy(
            update={"memory_profile": model.profile.name, "numerics": model.profile.numerics}
        )

    def _fine_tune(
        self,
        request: RunRequest,
        entry: CatalogEntry,
        model: LoadedModel,
        emit: Emit,
        metrics: dict[str, float],
        started: float,
    ) -> RunnerEvent:
        """Train the LoRA, then sample with it: `lora.safetensors`, `train_log.jsonl`,
        `video.mp4` and `poster.jpg` in the output directory."""
        job, spec = request.job_id, request.spec
        assert entry.fine_tune is not None
        output_dir = Path(request.output_dir)
        sample_steps = entry.fine_tune.sample_steps
        total = spec.steps + sample_steps

        def check_cancel() -> None:
            if job in self.canceled:
                raise JobCanceled(f"job {job} was canceled between steps", job_id=job)

        def on_train_step(step: int, loss: float) -> None:
            check_cancel()
            emit(
                RunnerEvent(
                    job_id=job,
                    status="processing",
                    progress=min(step / total, 0.99),
                    metrics={"step": float(step), "loss": loss},
                )
            )

        sampled = 0

        def on_sample_step() -> None:
            nonlocal sampled
            check_cancel()
            sampled += 1
            emit(
                RunnerEvent(
                    job_id=job,
                    status="processing",
                    progress=min((spec.steps + sampled) / total, 0.99),
                    metrics={"step": float(spec.steps + sampled)},
                )
            )

        t0 = time.perf_counter()
        clips = finetune.load_dataset(finetune.dataset_dir(request.inputs_dir, spec), spec, entry)
        trained = finetune.train_lora(
            model.main,
            entry=entry,
            spec=spec,
            clips=clips,
            out_dir=output_dir,
            device=self.device,
            on_step=on_train_step,
        )
        metrics["train_s"] = time.perf_counter() - t0
        metrics["steps_per_s"] = spec.steps / max(metrics["train_s"], 1e-9)
        # The sample is exactly what a text-to-video job naming this LoRA by CID (scale 1)
        # with the spec's prompt, seed, guidance and the entry's sample_steps produces.
        sample_spec = spec.model_copy(
            update={
                "task": "text-to-video",
                "steps": sample_steps,
                "fine_tune": None,
                "inputs": SpecInputs(),
            }
        )
        adapter = Adapter(path=trained.lora, scale=1.0, label="the trained LoRA", receipt_id="")
        t1 = time.perf_counter()
        frames = generate(
            model,
            entry=entry,
            spec=sample_spec,
            style=None,
            inputs_dir=None,
            on_step=on_sample_step,
            adapter=adapter,
        )
        metrics["inference_s"] = time.perf_counter() - t1
        check_cancel()
        t2 = time.perf_counter()
        video_sha = write_video(frames, output_dir / "video.mp4", spec.fps)
        write_poster(frames, output_dir / "poster.jpg")
        metrics["encode_s"] = time.perf_counter() - t2
        metrics["total_s"] = time.perf_counter() - started
        metrics["steps"] = float(spec.steps)
        output = RunOutput(
            video_sha256=video_sha,
            # The chain's and the replicas' digest slot carries the trained artifact.
            frames_digest=trained.lora_sha256,
            num_frames=int(frames.shape[0]),
            width=int(frames.shape[2]),
            height=int(frames.shape[1]),
            fps=spec.fps,
            environment=self._environment(model),
            fine_tune=FineTuneOutput(
                lora_sha256=trained.lora_sha256,
                sample_frames_digest=frames_digest(frames),
                steps=spec.steps,
                clips=trained.clips,
                final_loss=trained.losses[-1],
            ),
        )
        return RunnerEvent(
            job_id=job, status="succeeded", progress=1.0, output=output, metrics=metrics
        )


def serve(
    lines: Iterable[bytes],
    emit: Emit,
    runner: JobRunner | None = None,
    *,
    on_eof_mid_job: Callable[[str], None] = abandon,
) -> int:
    """Serve requests from `lines` until `shutdown` or EOF; cancels arrive mid-job.

    EOF while a job runs or waits calls `on_eof_mid_job` (default: `abandon`, which does
    not return); `shutdown` lets the current job finish first.
    """
    runner = runner or JobRunner()
    jobs: queue.Queue[RunRequest | None] = queue.Queue()
    # Jobs received and not yet answered; a lock, not the queue's size: a job taken off
    # the queue is still running.
    unfinished = [0]
    lock = threading.Lock()

    def read() -> None:
        # Reading on its own thread lets a `cancel` reach the job loop between two steps.
        for raw in lines:
            if not raw.strip():
                continue
            try:
                message = decode_inbound(raw)
            except ValidationError as exc:
                log.error("ignoring a malformed message: %s", exc)
                _answer_malformed(raw, exc, emit)
                continue
            if isinstance(message, ShutdownMessage):
                jobs.put(None)
                return
            if isinstance(message, CancelMessage):
                runner.canceled.add(message.job_id)
            else:
                with lock:
                    unfinished[0] += 1
                jobs.put(message)
        with lock:
            mid_job = unfinished[0] > 0
        if mid_job:
            on_eof_mid_job("stdin closed: the node that sent the job is gone")
        jobs.put(None)

    threading.Thread(target=read, name="runner-stdin", daemon=True).start()
    log.info("runner ready on %s", runner.device)
    while (request := jobs.get()) is not None:
        if request.job_id in runner.canceled:
            runner.canceled.discard(request.job_id)
            emit(failed_event(request.job_id, "canceled", "canceled before it started"))
        else:
            runner.execute(request, emit)
        with lock:
            unfinished[0] -= 1
    return 0


def _check_context_parallel(model: str, degree: int, device: str) -> None:
    """A context-parallel model needs `degree` CUDA devices in this runner's view (the Ray
    runtime places such a job on that many GPUs of one host); refuse clearly otherwise.

    The multi-rank launch itself (one torch.distributed rank per GPU, diffusers'
    `ContextParallelConfig` on the transformer) is measured by bench/pipeline_gpu.py on
    GPU hosts; this single-process runner does not run it yet, so it refuses even with
    enough devices rather than run the model on one card and mislabel the receipt.
    """
    visible = 0
    if device == "cuda":
        import torch

        visible = torch.cuda.device_count()
    raise SpecError(
        f"model {model} runs over {degree} GPUs (context parallelism); this runner sees "
        f"{visible} CUDA device(s) and runs one rank",
        field="model",
        fix=f"serve {model} with runtime = ray on hosts with {degree} GPUs and the "
        "multi-GPU runner, or pick a single-GPU model",
    )


def _answer_malformed(raw: bytes, exc: ValidationError, emit: Emit) -> None:
    """A request that does not parse still gets a terminal event when it names its job."""
    try:
        job_id = json.loads(raw).get("job_id")
        emit(
            failed_event(
                str(job_id),
                "invalid_input",
                f"malformed request: {exc}",
                "send a RunRequest matching runner_protocol.schema.json",
            )
        )
    except (ValueError, AttributeError, ValidationError):
        return
