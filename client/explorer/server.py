"""`framecast explorer`'s web server: read-only pages over the index, live updates by
server-sent events, static files under a strict Content-Security-Policy.

The stdlib's ``ThreadingHTTPServer``: the client's base install gains no web framework
(and no ASGI server) for a read-only app of a dozen routes; one thread per connection
suits server-sent events, whose connections stay open, and the page threads only read
small indexed rows. Routes:

====================  ==================================================================
``/``                 the live job feed (``static/app.js`` follows ``/api/stream``)
``/jobs/{id}``        one job: spec, timeline, replicas, dispute, outcome; its video
                      fetched from the gateways and verified in the browser (verify.js)
``/gallery``          delivered videos (posters verified in the browser)
``/credits[/{a}]``    an account's balances and history (as ``credits balance|history``)
``/providers``        bond, jobs served, median delivery, disputes lost, slashes, offer
``/node``             the local node's slots and jobs (``--node-url``)
``/api/jobs[/{id}]``  the same as JSON; ``/api/status``; ``/api/stream`` (SSE)
``/static/{file}``    the package's JS and CSS
====================  ==================================================================

Every answer carries the CSP below: no inline script or style, scripts and styles from
this origin only, media and images from ``blob:`` (what verify.js made of verified bytes),
and ``connect-src`` limited to this origin plus the gateway origins of that page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import statistics
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from web3 import Web3

from framecast.client.explorer import pages
from framecast.client.explorer.indexer import ArgTypes, Indexer, job_events, provider_uris
from framecast.client.explorer.store import Store
from framecast.shared.chain.bindings import Credits, DisputeReason, Market
from framecast.shared.chain.history import job_history
from framecast.shared.endpoints import check_remote_url
from framecast.shared.errors import ConfigError, FramecastError
from framecast.shared.ipfs.cid import CID
from framecast.shared.provider_metadata import parse_offer

log = logging.getLogger(__name__)

#: Largest video (whole result DAG) a page will fetch and hash in the browser.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Jobs on the feed and the gallery.
FEED_JOBS = 50
GALLERY_JOBS = 60
_STATIC = {"app.js": "text/javascript", "verify.js": "text/javascript", "style.css": "text/css"}
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$"
)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a gateway URL, or None when it is not a plain origin
    (what goes into the CSP header must not carry spaces, quotes or semicolons)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if _ORIGIN.match(origin) else None


def csp(gateway_origins: list[str] | tuple[str, ...] = ()) -> str:
    connect = " ".join(["'self'", *gateway_origins])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        f"media-src blob:; connect-src {connect}; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


class Hub:
    """Changed job ids for the SSE streams: a sequence number and the latest changes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._recent: deque[tuple[int, int]] = deque(maxlen=10_000)

    def publish(self, job_ids: list[int]) -> None:
        with self._cond:
            for job_id in job_ids:
                self._seq += 1
                self._recent.append((self._seq, job_id))
            self._cond.notify_all()

    @property
    def seq(self) -> int:
        return self._seq

    def wait(self, after: int, timeout: float) -> tuple[int, list[int]]:
        """(new sequence, job ids changed since ``after``), waiting up to ``timeout``."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after, timeout=timeout)
            ids = list(dict.fromkeys(j for s, j in self._recent if s > after))
            return self._seq, ids


@dataclass
class Explorer:
    """Everything the pages read: the index, the indexer's status, the chain (live
    balances and bonds), the configured gateways and the local node."""

    store: Store
    indexer: Indexer
    w3: Web3
    market: Market
    credits: Credits
    deployed_block: int
    gateways: list[str] = field(default_factory=list)
    node_url: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    allow_loopback: bool = True
    hub: Hub = field(default_factory=Hub)

    def __post_init__(self) -> None:
        self.types = ArgTypes(self.market)
        self.indexer.on_change(self.hub.publish)

    def status(self) -> dict[str, Any]:
        s = self.indexer.status
        return {"head": s.head, "cursor": s.cursor, "stale_since": s.stale_since,
                "error": s.error, "reorgs": s.reorgs}  # fmt: skip

    # -- reads
    def job(self, job_id: int) -> dict[str, Any] | None:
        rows = self.store.job_rows("job_id = ?", (job_id,))
        return rows[0] if rows else None

    def feed(self, limit: int = FEED_JOBS) -> list[dict[str, Any]]:
        return self.store.job_rows(order="updated_block DESC, job_id DESC", limit=limit)

    def offers(self) -> dict[str, str]:
        return provider_uris(self.store)

    def gateways_for(self, provider: str | None, uris: dict[str, str] | None = None) -> list[str]:
        """The provider's advertised gateway first, then the configured ones."""
        found: list[str] = []
        if provider:
            uris = self.offers() if uris is None else uris
            offer = parse_offer(uris.get(provider.lower(), ""))
            if offer is not None and offer.gateway and origin_of(offer.gateway):
                # The provider's URL is its own word: loopback only when the chain is on
                # this machine too, never link-local (shared/endpoints.py).
                with contextlib.suppress(ConfigError):
                    found.append(
                        check_remote_url(
                            offer.gateway, field="gateway", allow_loopback=self.allow_loopback
                        )
                    )
        for url in self.gateways:
            if url.rstrip("/") not in found:
                found.append(url.rstrip("/"))
        return found

    def job_view(self, job_id: int) -> dict[str, Any] | None:
        """What the job page shows, from the index alone."""
        job = self.job(job_id)
        if job is None:
            return None
        events = job_events(self.store, self.types, job_id)
        history = job_history(job_id, events)
        spec_text, spec = "", None
        if history.submitted is not None:
            raw = history.submitted.spec_bytes()
            spec_text = raw.decode("utf-8", errors="replace")
            try:
                loaded = json.loads(spec_text)
                spec = loaded if isinstance(loaded, dict) else None
            except ValueError:
                spec = None
        uris = self.offers()
        results = [
            {
                "index": r.index,
                "provider": r.provider,
                "cid": r.result_cid,
                "cid_hex": bytes(CID.parse(r.result_cid)).hex(),
                "sha256": r.video_sha256,
                "frames": r.frames_digest,
                "gateways": self.gateways_for(r.provider, uris),
            }
            for r in history.results()
        ]
        agreed = history.agreement.frames_digest if history.agreement else None
        replicas = []
        if history.replicated:
            claims = history.claims
            for index, claim in enumerate(claims):
                reveal = history.reveal(index)
                replicas.append({
                    "index": index, "provider": claim.provider,
                    "committed": any(c.index == index for c in history.commits),
                    "cid": reveal.result_cid if reveal else None,
                    "frames": reveal.frames_digest if reveal else None,
                    "agrees": "—" if reveal is None or agreed is None
                    else ("yes" if reveal.frames_digest == agreed else "no"),
                })  # fmt: skip
        disputes = [
            {"block": d.block_number, "client": d.client, "reason": d.reason.name.lower(),
             "resolve_by": d.resolve_by}
            for d in history.disputes
        ]  # fmt: skip
        timeline = [
            {"event": e["event"], "block": e["blockNumber"], "time": e["time"],
             "tx": e["transactionHash"], "details": _details(e["event"], e["args"])}
            for e in events
        ]  # fmt: skip
        outcome = _outcome(job["state"], history, events)
        return {"job": job, "spec": spec, "spec_text": spec_text, "timeline": timeline,
                "results": results, "replicas": replicas, "disputes": disputes,
                "outcome": outcome}  # fmt: skip

    def providers(self) -> list[dict[str, Any]]:
        out = []
        times = dict(
            (int(n), int(t)) for n, t in self.store.query("SELECT number, time FROM blocks")
        )
        for address, uri in self.offers().items():
            jobs = self.store.job_rows("LOWER(provider) = ?", (address,))
            served = [j for j in jobs if j["delivered_block"] is not None]
            spans = [
                times[j["delivered_block"]] - times[j["claimed_block"]]
                for j in served
                if j["claimed_block"] in times and j["delivered_block"] in times
            ]
            lost = 0
            for (args,) in self.store.query(
                "SELECT e.args FROM events e JOIN jobs j ON j.job_id = e.job_id "
                "WHERE e.name = 'JobResolved' AND LOWER(j.provider) = ?",
                (address,),
            ):
                lost += bool(json.loads(args)["providerAtFault"])
            slashes = 0
            for (args,) in self.store.query(
                "SELECT e.args FROM events e LEFT JOIN jobs j ON j.job_id = e.job_id "
                "WHERE (e.name = 'JobRefunded' AND LOWER(j.provider) = ?) OR "
                "(e.name IN ('JobReleased', 'ReplicaDefaulted') AND e.address = ?)",
                (address, address),
            ):
                data = json.loads(args)
                slashes += int(data.get("slashed", data.get("penalty", 0))) > 0
            try:
                bond = pages.fcc(self.market.get_provider(Web3.to_checksum_address(address)).bond)
            except FramecastError:
                bond = "unknown (RPC unreachable)"
            out.append({
                "address": Web3.to_checksum_address(address), "uri": uri, "offer": parse_offer(uri),
                "bond": bond, "served": len(served),
                "median_delivery_s": statistics.median(spans) if spans else None,
                "disputes_lost": lost, "slashes": slashes,
            })  # fmt: skip
        return out

    def gallery(self) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
        jobs = self.store.job_rows(
            "delivered_block IS NOT NULL AND result_cid IS NOT NULL",
            order="delivered_block DESC, job_id DESC",
            limit=GALLERY_JOBS,
        )
        uris = self.offers()
        for job in jobs:
            job["cid_hex"] = bytes(CID.parse(job["result_cid"])).hex()
        return jobs, {int(j["job_id"]): self.gateways_for(j["provider"], uris) for j in jobs}

    def node(self) -> dict[str, Any] | None:
        """The local node's health and slots, read from its HTTP port (``--node-url``)."""
        if not self.node_url:
            return None
        import httpx

        try:
            health = httpx.get(f"{self.node_url}/healthz", timeout=2.0)
            metrics = httpx.get(f"{self.node_url}/metrics", timeout=2.0)
            report: dict[str, Any] = dict(health.json()) if health.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            return {"error": f"the node at {self.node_url} does not answer ({exc})"}
        report["url"] = self.node_url
        for line in metrics.text.splitlines():
            name, _, value = line.partition(" ")
            if name == "framecast_node_gpu_slots":
                report["slots"] = int(float(value))
            elif name == "framecast_node_gpu_slots_busy":
                report["slots_busy"] = int(float(value))
        return report


def _details(name: str, args: dict[str, Any]) -> str:
    """One line of an event's arguments for the timeline (amounts in FCC, bytes short)."""
    return ", ".join(
        f"{key}={_arg_text(key, value)}"
        for key, value in args.items()
        if key not in ("jobId", "spec")
    )


_AMOUNTS = frozenset(
    ("price", "refund", "payout", "maxPrice", "slashed", "penalty", "fee", "collateral", "bondPaid")
)


def _arg_text(key: str, value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        if key == "resultCid":
            return str(CID.from_bytes(bytes(value)))
        text = "0x" + bytes(value).hex()
        return text if len(text) <= 20 else text[:12] + "…"
    if key in _AMOUNTS:
        return pages.fcc(int(value))
    if key == "reason":
        return DisputeReason(int(value)).name.lower()
    return str(value)


def _outcome(state: str, history: Any, events: list[dict[str, Any]]) -> str:
    names = [e["event"] for e in events]
    if "JobResolved" in names:
        resolved = next(e for e in reversed(events) if e["event"] == "JobResolved")
        verdict = "provider at fault" if resolved["args"]["providerAtFault"] else "upheld"
        return f"{state} (dispute resolved: {verdict})"
    if history.settlements:
        return f"{state}: provider paid {pages.fcc(sum(s.payout for s in history.settlements))}"
    if history.refunds:
        return f"{state}: {pages.fcc(history.refunded)} refunded to the client"
    return state


# --------------------------------------------------------------------------- HTTP
class ExplorerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], explorer: Explorer) -> None:
        self.explorer = explorer
        self.stopping = threading.Event()
        super().__init__(address, ExplorerHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class ExplorerHandler(BaseHTTPRequestHandler):
    server: ExplorerServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY a keep-alive client's
    # delayed ACK holds the second one back ~40 ms on every page.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _send(
        self, status: int, body: bytes, content_type: str, *, origins: list[str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", csp(origins or []))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, status: int, text: str, origins: list[str] | None = None) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8", origins=origins)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, default=str).encode(), "application/json")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if len(self.path) > 2048:
            self._html(414, pages.not_found_page("request path too long", {}))
            return
        explorer = self.server.explorer
        try:
            self._route(explorer, url.path, parse_qs(url.query))
        except FramecastError as exc:
            # The index database failed: say so on a page, not as a dropped connection.
            self._html(503, pages.not_found_page(str(exc), explorer.status()))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, ex: Explorer, path: str, query: dict[str, list[str]]) -> None:
        status = ex.status()
        parts = [p for p in path.split("/") if p]
        if path == "/":
            # The change number first, the rows second: a change committed in between is
            # both in the rows and replayed by the stream (a row replaced), never in neither.
            seq = ex.hub.seq
            self._html(200, pages.feed_page(ex.feed(), status, seq=seq))
        elif parts[:1] == ["jobs"] and len(parts) == 2:
            self._job_page(ex, parts[1], status)
        elif path == "/gallery":
            jobs, gateways = ex.gallery()
            origins = sorted({o for g in gateways.values() for u in g if (o := origin_of(u))})
            self._html(200, pages.gallery_page(jobs, gateways, status), origins)
        elif path == "/providers":
            self._html(200, pages.providers_page(ex.providers(), status))
        elif parts[:1] == ["credits"]:
            address = parts[1] if len(parts) == 2 else (query.get("address") or [""])[0]
            self._credits(ex, address.strip(), status)
        elif path == "/node":
            self._html(200, pages.node_page(ex.node(), status))
        elif path == "/api/status":
            self._json(200, status)
        elif path == "/api/jobs":
            limit = min(500, int((query.get("limit") or ["50"])[0] or 50))
            self._json(200, ex.feed(limit))
        elif parts[:2] == ["api", "jobs"] and len(parts) == 3 and parts[2].isdigit():
            job = ex.job(int(parts[2]))
            self._json(200 if job else 404, job or {"error": f"no job {parts[2]} indexed"})
        elif path == "/api/stream":
            self._stream(ex, query)
        elif parts[:1] == ["static"] and len(parts) == 2 and parts[1] in _STATIC:
            body = resources.files("framecast.client.explorer").joinpath("static", parts[1])
            self._send(200, body.read_bytes(), f"{_STATIC[parts[1]]}; charset=utf-8")
        else:
            self._html(404, pages.not_found_page(f"no page at {path[:200]}", status))

    def _job_page(self, ex: Explorer, raw_id: str, status: dict[str, Any]) -> None:
        if not raw_id.isdigit() or len(raw_id) > 78:
            self._html(404, pages.not_found_page(f"{raw_id[:80]!r} is not a job id", status))
            return
        view = ex.job_view(int(raw_id))
        if view is None:
            self._html(
                404,
                pages.not_found_page(
                    f"no job {raw_id} on this market (indexed to block {status.get('cursor')})",
                    status,
                ),
            )
            return
        gateways = sorted({g for r in view["results"] for g in r["gateways"]})
        origins = sorted({o for g in gateways if (o := origin_of(g))})
        page = pages.job_page(
            view["job"], spec=view["spec"], spec_text=view["spec_text"],
            timeline=view["timeline"], results=[r | {"gateways": r["gateways"]}
                                                for r in view["results"]],
            replicas=view["replicas"], disputes=view["disputes"], outcome=view["outcome"],
            gateways=gateways, max_bytes=ex.max_bytes, status=status,
        )  # fmt: skip
        self._html(200, page, origins)

    def _credits(self, ex: Explorer, address: str, status: dict[str, Any]) -> None:
        if not address:
            self._html(200, pages.credits_form(status))
            return
        if not _ADDRESS.match(address):
            self._html(
                400, pages.credits_form(status, f"{address[:60]!r} is not a 0x… 20-byte address")
            )
            return
        from framecast.client.credits import balances, history

        checksum = Web3.to_checksum_address(address)
        try:
            found = balances(ex.credits, ex.market, checksum, from_block=ex.deployed_block)
            rows = history(ex.credits, ex.market, checksum, from_block=ex.deployed_block)
            error = None
        except FramecastError as exc:
            found, rows = None, []
            error = f"balances unavailable: {exc} (not showing stale numbers)"
        self._html(200, pages.credits_page(found, rows, error, status, checksum))

    def _stream(self, ex: Explorer, query: dict[str, list[str]]) -> None:
        """Server-sent events: ``job`` (a changed job's row) and ``status`` (freshness).

        Each batch carries the change number as its SSE ``id``. A stream starts after
        ``?after=N`` (the number the page was rendered at) or, when the browser reconnects,
        after its ``Last-Event-ID``: the changes in between are sent first, not lost. A
        number from before the server's memory of changes (or a restarted server) starts
        from what it remembers; the pages themselves are always the full truth."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", csp())
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        seq = _resume_point(
            self.headers.get("Last-Event-ID") or (query.get("after") or [""])[0], ex.hub.seq
        )
        try:
            self.wfile.write(b"retry: 2000\n\n")
            while not self.server.stopping.is_set():
                seq, changed = ex.hub.wait(seq, timeout=2.0)
                for job_id in changed[-FEED_JOBS:]:
                    job = ex.job(job_id)
                    if job is not None:
                        self.wfile.write(f"event: job\ndata: {json.dumps(job)}\n\n".encode())
                status = ex.status() | {"line": pages.status_line(ex.status())}
                # The id rides on the last event of the batch: the browser's Last-Event-ID.
                self.wfile.write(
                    f"event: status\nid: {seq}\ndata: {json.dumps(status)}\n\n".encode()
                )
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return


def _resume_point(raw: str, current: int) -> int:
    """The change number a stream resumes after: a client's number when it is one this
    server can have issued, else the current one (only new changes)."""
    try:
        after = int(raw)
    except ValueError:
        return current
    return after if 0 <= after <= current else current


def serve_explorer(explorer: Explorer, host: str = "127.0.0.1", port: int = 0) -> ExplorerServer:
    """Start the web server on its own thread (port 0: a free port; see ``.url``)."""
    try:
        server = ExplorerServer((host, port), explorer)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve the explorer on {host}:{port}: {exc.strerror or exc}",
            fix="pass another --port (0 picks a free one) or --host",
        ) from None
    threading.Thread(target=server.serve_forever, name="explorer-http", daemon=True).start()
    return server


def stop_explorer(server: ExplorerServer) -> None:
    server.stopping.set()
    server.shutdown()
    server.server_close()
