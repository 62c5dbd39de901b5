"""`/metrics` (Prometheus text format), `/healthz` and `/jobs/{id}` for the node.

`/jobs/{id}` is read-only: the job's local state and run progress (0..1), which clients
poll to show per-step progress the chain cannot show.

Served by a small stdlib HTTP server on its own thread so scraping never waits on the
agent loop; the agent refreshes the gauges after every step.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from framecast.node.state import STATES, StateStore
from framecast.shared.errors import ConfigError

_JOB_PATH = re.compile(r"/jobs/([0-9]{1,78})")
#: The node is unhealthy when no chain poll succeeded for this long.
STALE_AFTER_S = 30.0


class NodeMetrics:
    """The node's Prometheus metrics in their own registry."""

    def __init__(self, slots: int) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge(
            "framecast_node_jobs", "Jobs by local state.", ["state"], registry=self.registry
        )
        self.run_seconds = Histogram(
            "framecast_node_run_seconds",
            "Wall time of a job's run step (runner start to terminal event).",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.pickup = Histogram(
            "framecast_node_pickup_seconds",
            "From seeing JobSubmitted to starting the runner.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=self.registry,
        )
        self.slots = Gauge("framecast_node_gpu_slots", "GPU slots.", registry=self.registry)
        self.slots_busy = Gauge(
            "framecast_node_gpu_slots_busy", "GPU slots running a job.", registry=self.registry
        )
        self.earned = Gauge(
            "framecast_node_credits_earned_wei",
            "Credits earned by settled jobs (wei of FCC).",
            registry=self.registry,
        )
        self.rpc_errors = Counter(
            "framecast_node_rpc_errors", "Failed chain steps (retried).", registry=self.registry
        )
        self.slots.set(slots)

    def refresh(self, state: StateStore, *, busy: int) -> None:
        for name, count in state.counts().items():
            self.jobs.labels(state=name).set(count)
        self.slots_busy.set(busy)
        self.earned.set(state.total_earned())

    def render(self) -> bytes:
        return generate_latest(self.registry)


JobLookup = Callable[[int], dict[str, object] | None]


def job_progress(state: StateStore, job_id: int) -> dict[str, object] | None:
    """What `/jobs/{id}` answers: local state and progress, nothing secret."""
    record = state.get(job_id)
    if record is None:
        return None
    return {"job_id": record.job_id, "state": record.state, "progress": record.progress}


def serve_metrics(
    metrics: NodeMetrics,
    health: Callable[[], dict[str, object]],
    host: str,
    port: int,
    jobs: JobLookup | None = None,
) -> ThreadingHTTPServer:
    """Start `/metrics`, `/healthz` and (given ``jobs``) `/jobs/{id}` on ``host:port``
    (port 0: any free port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            job_match = _JOB_PATH.fullmatch(self.path)
            if self.path == "/metrics":
                body, status, kind = metrics.render(), 200, CONTENT_TYPE_LATEST
            elif self.path == "/healthz":
                report = health()
                status = 200 if report.get("ok") else 503
                body, kind = json.dumps(report).encode(), "application/json"
            elif job_match and jobs is not None:
                found = jobs(int(job_match.group(1)))
                status = 200 if found is not None else 404
                body = json.dumps(found or {"error": "unknown job"}).encode()
                kind = "application/json"
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # scrapes are not news

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        # Most often a second node on the same host with the default port.
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
            fix="set another metrics_port in the node config (or FRAMECAST_NODE_METRICS_PORT; "
            "0 picks a free port)",
        ) from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def waiting_report(rpc_url: str, reason: str | None, since: float) -> dict[str, object]:
    """`/healthz` of a node still starting: not ready, and what it waits for."""
    return {
        "ok": False,
        "ready": False,
        "waiting_for": "rpc",
        "rpc": rpc_url,
        "reason": reason,
        "waiting_s": round(time.time() - since, 3),
    }


def health_report(last_poll_ok: float | None, counts: dict[str, int]) -> dict[str, object]:
    """Healthy while chain polls succeed; includes job counts for a quick look."""
    age = None if last_poll_ok is None else time.time() - last_poll_ok
    return {
        "ok": age is not None and age < STALE_AFTER_S,
        "last_poll_age_s": None if age is None else round(age, 3),
        "jobs": {s: counts.get(s, 0) for s in STATES if counts.get(s, 0)},
    }
