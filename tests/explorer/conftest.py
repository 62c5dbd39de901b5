"""Fixtures for the explorer: real delivered jobs on anvil (real MP4, poster and signed
receipt in a real LocalStore behind a real trustless gateway), a real PostgreSQL server
from Debian's packages, and the explorer itself on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from framecast.client.explorer import ExplorerApp, open_explorer
from framecast.shared.ipfs import parse_cid
from framecast.shared.ipfs.gateway import Gateway, serve_gateway
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.provider_metadata import ProviderOffer
from framecast.shared.request import JobRequest, sign_request
from framecast.shared.spec import GenerationSpec
from tests.chain.conftest import FCC, domain_of, fund_market, register
from tests.client_jobs.conftest import PRICE_PER_UNIT, TINY_UNITS, build_result
from tests.conftest import Chain, free_port
from tests.runtime.conformance import tiny_spec

#: A prompt an attacker would submit: markup, script, event handlers, a closing tag.
HOSTILE_PROMPT = (
    '</title><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    "<b id=injected>bold</b>\"'><svg onload=window.__pwned=3>"
)
#: A metadata URI an attacker would publish (not an offer: shown raw, escaped).
HOSTILE_URI = 'javascript:alert(1)//<script>window.__pwned=4</script><a id=injected2 href="x">'


@dataclass
class Market:
    """A devnet market with a provider whose results a real gateway serves."""

    chain: Chain
    store: LocalStore
    gateway: Gateway
    tmp: Path
    nonces: Iterator[int] = field(default_factory=lambda: iter(range(10_000)))

    def submit(self, prompt: str = "a red fox running through snow") -> int:
        spec = GenerationSpec.model_validate(tiny_spec().model_dump() | {"prompt": prompt})
        alice = self.chain.account("alice")
        request = JobRequest.for_spec(
            spec, client=alice.address, max_price=FCC,
            claim_deadline=self.chain.now() + 3600, delivery_window=3600,
            nonce=next(self.nonces),
        )  # fmt: skip
        signature = sign_request(request, domain_of(self.chain.deployment), alice.key)
        job_id, _ = self.chain.market("alice").submit_job(request, spec.canonical_json(), signature)
        return int(job_id)

    def deliver(self, job_id: int, prompt: str = "a red fox running through snow") -> str:
        """Claim ``job_id`` as provider-1 and deliver a real result; returns its CID."""
        spec = GenerationSpec.model_validate(tiny_spec().model_dump() | {"prompt": prompt})
        self.chain.market("provider-1").claim_job(job_id, TINY_UNITS * PRICE_PER_UNIT)
        history_request = _request_of(self.chain, job_id)
        out = self.tmp / f"result-{job_id}"
        video_sha, frames = build_result(
            out, self.chain, job_id=job_id,
            request_digest="0x" + history_request.digest(domain_of(self.chain.deployment)).hex(),
            spec=spec, sign_as="provider-1",
        )  # fmt: skip
        cid = str(self.store.add_path(out))
        self.chain.market("provider-1").deliver(
            job_id, bytes(parse_cid(cid)), bytes.fromhex(video_sha[2:]), bytes.fromhex(frames[2:])
        )
        return cid


def _request_of(chain: Chain, job_id: int) -> JobRequest:
    from framecast.shared.chain.history import read_job

    history = read_job(chain.market(), job_id, from_block=chain.deployment.deployed_block)
    assert history.submitted is not None
    return history.submitted.request


@pytest.fixture
def market(chain: Chain, tmp_path: Path) -> Iterator[Market]:
    fund_market(chain, "alice", 50 * FCC)
    register(chain, "provider-1")
    store = LocalStore(tmp_path / "provider-blocks")
    gateway = serve_gateway(store)
    offer = ProviderOffer(
        models=["tiny-cogvideox"], price_per_unit=PRICE_PER_UNIT, gateway=gateway.url
    )
    chain.market("provider-1").update_metadata(offer.to_uri())
    yield Market(chain, store, gateway, tmp_path)
    gateway.close()


@pytest.fixture
def explorer(market: Market, tmp_path: Path) -> Iterator[ExplorerApp]:
    app = open_explorer(
        market.chain.w3, market.chain.deployment, db=str(tmp_path / "index.sqlite3"),
        poll_s=0.2,
    )  # fmt: skip
    yield app
    app.close()


# --------------------------------------------------------------------------- PostgreSQL
def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server (Debian's `postgresql`, installed by .ci/run) on a free
    loopback port, in a throwaway cluster; skipped only when the package is absent."""
    pytest.importorskip("psycopg", reason="psycopg (the explorer-postgres extra) is missing")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="framecast-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: the cluster belongs to Debian's postgres user.
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "framecast", "-A", "trust",
         "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
         "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    url = f"postgresql://framecast@127.0.0.1:{port}/postgres"
    try:
        yield url
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_url: str) -> str:
    """A fresh database on the session's server for one test."""
    import psycopg

    name = f"t{time.monotonic_ns()}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


# --------------------------------------------------------------------------- an RPC to cut
class RpcProxy:
    """A real HTTP JSON-RPC forwarder to anvil that a test can take down (503s)."""

    def __init__(self, upstream: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        proxy = self
        self.down = False

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if proxy.down:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = httpx.post(
                    upstream, content=body, headers={"Content-Type": "application/json"}
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rpc_proxy(anvil_url: str) -> Iterator[RpcProxy]:
    proxy = RpcProxy(anvil_url)
    yield proxy
    proxy.close()
