"""The node's one HTTP server: what other hosts reach at the offer's ``advertise_url``.

=============================  =========================================================
``GET|HEAD /ipfs/{cid}[/p]``   trustless gateway over the node's store (results, inputs)
``GET /jobs/{id}``             the job's local state, progress and reason, signed by the
                               provider key (:mod:`framecast.shared.progress`)
``GET /healthz``               200 while chain polls succeed, else 503
``GET /metrics``               Prometheus text format
``POST /framecast/v1/inputs``  a CAR of one job input (``?job=ID``): accepted only when
                               its root is an input of that open job's signed spec
=============================  =========================================================

Upload answers: 201 imported (200 when already held), 400 a malformed request or CAR,
404 an unknown job, 409 a job no longer open, 411 no Content-Length, 413 over
``input_max_bytes``, 415 not a CAR, 422 a root the job's spec does not name or blocks
that do not verify / do not make a whole DAG, 503 chain unreachable.

A stdlib server on its own threads: scrapes and downloads never wait on the agent loop.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from framecast.node.inputs import holds_dag, import_dag
from framecast.node.metrics import NodeMetrics
from framecast.shared.errors import ConfigError, FramecastError, RequestRefused
from framecast.shared.ipfs.car import CONTENT_TYPE as CAR_TYPE
from framecast.shared.ipfs.car import CarReader
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.gateway import GatewayHandler, GatewayHTTPServer
from framecast.shared.ipfs.store import ContentStore

INPUTS_PATH = "/framecast/v1/inputs"
_JOB_PATH = re.compile(r"/jobs/([0-9]{1,78})")
_log = logging.getLogger(__name__)


#: Raises RequestRefused unless ``root`` is an input of open job ``job_id`` (None: look
#: through the jobs the node has seen).
UploadPolicy = Callable[[int | None, CID], int]


@dataclass
class NodeRoutes:
    """What the server answers with; each part is optional (tests serve a subset)."""

    store: ContentStore
    metrics: NodeMetrics | None = None
    health: Callable[[], dict[str, object]] | None = None
    jobs: Callable[[int], dict[str, object] | None] | None = None
    upload_policy: UploadPolicy | None = None
    max_upload_bytes: int = 64 * 1024 * 1024


class _NodeHandler(GatewayHandler):
    server: NodeHTTPServer

    def send_json(self, status: HTTPStatus | int, value: object) -> None:
        self.send_body(status, json.dumps(value).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - the stdlib names it
        routes = self.server.routes
        path = urlsplit(self.path).path
        job_match = _JOB_PATH.fullmatch(path)
        if path.startswith("/ipfs/"):
            self.serve_ipfs()
        elif path == "/metrics" and routes.metrics is not None:
            self.send_body(HTTPStatus.OK, routes.metrics.render(), CONTENT_TYPE_LATEST)
        elif path == "/healthz" and routes.health is not None:
            report = routes.health()
            self.send_json(200 if report.get("ok") else 503, report)
        elif job_match and routes.jobs is not None:
            found = routes.jobs(int(job_match.group(1)))
            self.send_json(200 if found is not None else 404, found or {"error": "unknown job"})
        else:
            self.send_text(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib names it
        url = urlsplit(self.path)
        if url.path != INPUTS_PATH or self.server.routes.upload_policy is None:
            self.close_connection = True  # the body, if any, is not read
            self.send_text(HTTPStatus.NOT_FOUND, "not found")
            return
        try:
            answer = self._upload(parse_qs(url.query))
        except RequestRefused as exc:
            self.close_connection = True
            self.send_json(exc.status, {"error": exc.message})
            return
        self.send_json(answer.pop("status"), answer)

    def _upload(self, query: dict[str, list[str]]) -> dict[str, Any]:
        routes = self.server.routes
        assert routes.upload_policy is not None
        job_text = query.get("job", [None])[0]
        if job_text is not None and not (job_text.isdigit() and 0 < int(job_text) < 2**64):
            raise RequestRefused(HTTPStatus.BAD_REQUEST, f"job {job_text!r} is not a job id")
        media = self.headers.get("Content-Type", CAR_TYPE).split(";")[0].strip()
        if media not in (CAR_TYPE, "application/octet-stream"):
            raise RequestRefused(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"send a CAR ({CAR_TYPE}), not {media}"
            )
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            raise RequestRefused(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        length = int(length_text)
        if length > routes.max_upload_bytes:
            raise RequestRefused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the CAR is {length} bytes; this node takes at most {routes.max_upload_bytes}",
            )
        body = self.rfile.read(length)
        if len(body) != length:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "the body ended before Content-Length")
        try:
            reader = CarReader(io.BytesIO(body))
        except FramecastError as exc:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, f"not a CAR v1: {exc}") from None
        if len(reader.roots) != 1:
            raise RequestRefused(
                HTTPStatus.BAD_REQUEST, f"the CAR has {len(reader.roots)} roots; send one input"
            )
        root = reader.roots[0]
        # Who may upload is decided before the blocks are even hashed.
        job_id = routes.upload_policy(int(job_text) if job_text else None, root)
        store = routes.store
        if store.has(root) and holds_dag(store, root):
            return {"status": 200, "root": str(root), "job_id": job_id, "blocks": 0}
        try:
            written = import_dag(store, root, reader.blocks(), max_bytes=routes.max_upload_bytes)
        except FramecastError as exc:
            raise RequestRefused(HTTPStatus.UNPROCESSABLE_ENTITY, exc.message) from None
        _log.info("job %s: input %s uploaded (%d blocks)", job_id, root, written)
        return {"status": 201, "root": str(root), "job_id": job_id, "blocks": written}


class NodeHTTPServer(GatewayHTTPServer):
    """The gateway server plus the node's routes."""

    def __init__(self, address: tuple[str, int], routes: NodeRoutes) -> None:
        self.routes = routes
        super().__init__(address, routes.store, _NodeHandler)


def serve_node_http(routes: NodeRoutes, host: str, port: int, *, legacy: bool) -> NodeHTTPServer:
    """Start the server on ``host:port`` (port 0: any free port) on a background thread.

    ``legacy`` says the address came from metrics_host/metrics_port (named in the fix)."""
    try:
        server = NodeHTTPServer((host, port), routes)
    except OSError as exc:
        # Most often a second node on the same host with the default port.
        field = "metrics_port (or FRAMECAST_NODE_METRICS_PORT)" if legacy else "http_bind"
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
            fix=f"set another port in the node config's {field}; port 0 picks a free port",
        ) from None
    threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name="node-http",
        daemon=True,
    ).start()
    return server
