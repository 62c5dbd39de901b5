"""Inputs reach the provider before it claims (issue 12.3), and progress is signed (12.6).

Real anvil, an in-process agent (tiny models, process runtime, its own embedded store)
behind the node's real HTTP server on 127.0.0.1, and the client with a store of its own:
nothing is shared between the two but the chain and HTTP.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from framecast.client import quote
from framecast.client.jobs import follow as service
from framecast.node.agent import Agent
from framecast.node.http import NodeHTTPServer, serve_node_http
from framecast.node.wiring import node_routes
from framecast.runner.tiny import build_tiny
from framecast.shared.chain.bindings import JobState
from framecast.shared.ipfs.car import encode_header, encode_section
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.gateway import serve_gateway
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.progress import ProgressReport, sign_report, verify_report
from framecast.shared.provider_metadata import ProviderOffer
from tests.client.conftest import Cli
from tests.conftest import Chain
from tests.node.conftest import AgentFactory
from tests.node.test_agent import step_until, submit_tiny

I2V = "tiny-cogvideox-i2v"
CAR = "application/vnd.ipld.car"


@pytest.fixture(scope="session")
def tiny_i2v_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny("cogvideox-i2v", tmp_path_factory.mktemp("weights-i2v") / I2V)


@pytest.fixture
def i2v_weights(weights_dir: Path, tiny_i2v_dir: Path) -> Path:
    (weights_dir / I2V).symlink_to(tiny_i2v_dir, target_is_directory=True)
    return weights_dir


@pytest.fixture
def client_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "client-blocks")


def image_cid(store: LocalStore, tmp_path: Path, color: tuple[int, int, int]) -> str:
    path = tmp_path / f"init-{color[0]}.png"
    Image.new("RGB", (48, 48), color).save(path, format="PNG")
    return str(store.add_path(path))


def car_of(store: LocalStore, cid: str) -> bytes:
    buffer = io.BytesIO()
    store.export_car(cid, buffer)
    return buffer.getvalue()


class Served:
    def __init__(self, agent: Agent, chain: Chain, name: str = "provider-1") -> None:
        self.server: NodeHTTPServer = serve_node_http(
            node_routes(agent), "127.0.0.1", 0, legacy=False
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        offer = ProviderOffer(
            models=agent.settings.models, price_per_unit=1000, endpoint=self.url, gateway=self.url
        )
        chain.market(name).update_metadata(offer.to_uri())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve(market_ready: Chain) -> Iterator[type[Served]]:
    running: list[Served] = []

    class Tracked(Served):
        def __init__(self, agent: Agent, chain: Chain = market_ready, name: str = "provider-1"):
            super().__init__(agent, chain, name)
            running.append(self)

    yield Tracked
    for served in running:
        served.close()


def i2v_agent(make_agent: AgentFactory, weights: Path, **overrides: object) -> Agent:
    agent = make_agent(models=["tiny-cogvideox", I2V], weights_dir=weights, **overrides)
    agent.startup()
    return agent


def upload(url: str, job: int | None, body: bytes) -> httpx.Response:
    params = {"job": job} if job is not None else {}
    return httpx.post(
        f"{url}/framecast/v1/inputs", params=params, content=body, headers={"Content-Type": CAR}
    )


def test_uploads_are_checked_against_the_open_job(
    market_ready: Chain, make_agent: AgentFactory, i2v_weights: Path, serve: type[Served],
    client_store: LocalStore, tmp_path: Path,
) -> None:  # fmt: skip
    chain = market_ready
    agent = i2v_agent(make_agent, i2v_weights, input_max_bytes=8192)
    node = serve(agent)
    cid = image_cid(client_store, tmp_path, (200, 30, 30))
    job_id = submit_tiny(chain, model=I2V, task="image-to-video", inputs={"image": cid})
    # A CAR whose root is in no job's spec: refused with the reason, nothing stored.
    other = image_cid(client_store, tmp_path, (10, 200, 10))
    refused = upload(node.url, job_id, car_of(client_store, other))
    assert refused.status_code == 422 and "not an input" in refused.json()["error"]
    assert upload(node.url, None, car_of(client_store, other)).status_code == 422
    assert upload(node.url, 999, car_of(client_store, cid)).status_code == 404
    assert not agent.d.store.has(other)
    # Over the cap: 413 before anything is read.
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20_000))
    assert (
        upload(node.url, job_id, car_of(client_store, str(client_store.add_path(big)))).status_code
        == 413
    )
    # Blocks that do not hash to their CID: 422, nothing stored.
    forged = (
        encode_header([CID.parse(cid)])
        + encode_section(CID.parse(cid), b"not the image")
        + b"not the image"
    )
    lie = upload(node.url, job_id, forged)
    assert lie.status_code == 422 and "does not match" in lie.json()["error"]
    assert not agent.d.store.has(cid)
    assert upload(node.url, job_id, b"\x00garbage").status_code == 400
    # The real input is taken, once.
    assert upload(node.url, job_id, car_of(client_store, cid)).status_code == 201
    assert upload(node.url, job_id, car_of(client_store, cid)).status_code == 200
    assert agent.d.store.has(cid) and CID.parse(cid) in agent.d.store.pins()
    # Once the job is claimed it is no longer open: 409.
    chain.market("provider-2").claim_job(job_id, 10**15)
    assert upload(node.url, job_id, car_of(client_store, cid)).status_code == 409


def test_image_to_video_with_the_image_only_in_the_clients_store(
    market_ready: Chain, make_agent: AgentFactory, i2v_weights: Path, serve: type[Served],
    on_chain: Chain, cli: Cli, client_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    agent = i2v_agent(make_agent, i2v_weights)
    node = serve(agent)
    image = tmp_path / "init.png"
    Image.new("RGB", (48, 48), (220, 30, 30)).save(image, format="PNG")
    # The result comes back through the provider's own gateway (its node HTTP server).
    monkeypatch.setenv("FRAMECAST_GATEWAY_URL", node.url)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
    runner.start()
    try:
        cli("wallet", "import", "--devnet", "alice")
        out = tmp_path / "video"
        done = cli(
            "submit", "--model", I2V, "--prompt", "a red square", "--seed", "3",
            "--image", str(image), "--wait", "-o", str(out),
        )  # fmt: skip
        provider = on_chain.account("provider-1").address
        assert f"→ {provider}: uploaded" in done.output
        assert "verified: levels 1 (integrity) + 2 (provenance)" in done.output
        assert (out / "video.mp4").stat().st_size > 0
    finally:
        stop.set()
        runner.join(timeout=60)
    record = agent.state.require(1)
    assert record.state == "delivered" and record.reason is None
    # The client's copy was the only one: the node got it by upload, before claiming.
    client_copy = LocalStore(client_env / "blocks")
    (cid,) = [c for c in client_copy.pins()]
    assert agent.d.store.has(cid)


def test_a_missing_input_is_skipped_never_claimed_and_status_says_why(
    market_ready: Chain, make_agent: AgentFactory, i2v_weights: Path, serve: type[Served],
    on_chain: Chain, cli: Cli, client_store: LocalStore, tmp_path: Path,
) -> None:  # fmt: skip
    chain = market_ready
    empty_gateway = serve_gateway(LocalStore(tmp_path / "empty"))
    agent = i2v_agent(
        make_agent, i2v_weights, input_wait_s=1.0, public_gateways=[empty_gateway.url]
    )
    serve(agent)
    provider = chain.account("provider-1").address
    bond = chain.market().get_provider(provider)
    cid = image_cid(client_store, tmp_path, (1, 2, 3))
    try:
        job_id = submit_tiny(chain, model=I2V, task="image-to-video", inputs={"image": cid})
        agent.step()
        waiting = agent.state.require(job_id)
        assert waiting.state == "seen" and f"waiting for input {cid}" in (waiting.reason or "")
        assert step_until(agent, job_id, {"skipped"}, timeout=30) == "skipped"
    finally:
        empty_gateway.close()
    reason = agent.state.require(job_id).reason or ""
    assert reason.startswith(f"input {cid} not retrievable: gateway {empty_gateway.url}")
    assert chain.market().get_job(job_id).state is JobState.OPEN  # never claimed
    assert chain.market().get_provider(provider) == bond  # nothing locked, nothing lost
    status = cli("status", str(job_id))
    assert f"{provider}: skipped: input {cid} not retrievable" in status.output
    notes = cli.json("status", str(job_id))["providers"]
    assert notes[0]["state"] == "skipped" and notes[0]["reason"] == reason


def test_inputs_fetched_from_a_gateway_before_the_claim(
    market_ready: Chain, make_agent: AgentFactory, i2v_weights: Path, client_store: LocalStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    chain = market_ready
    with serve_gateway(client_store) as gateway:
        agent = i2v_agent(make_agent, i2v_weights, public_gateways=[gateway.url])
        cid = image_cid(client_store, tmp_path, (9, 9, 200))
        job_id = submit_tiny(chain, model=I2V, task="image-to-video", inputs={"image": cid})
        assert step_until(agent, job_id, {"delivered"}) == "delivered"
    assert agent.d.store.has(cid)


# --------------------------------------------------------------------------- progress


class _Fake(BaseHTTPRequestHandler):
    answer: bytes = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


def fake_endpoint(answer: dict[str, object]) -> ThreadingHTTPServer:
    handler = type("Fake", (_Fake,), {"answer": json.dumps(answer).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Enough(Exception):
    pass


def follow_a_while(
    chain: Chain, job_id: int, rounds: int = 4
) -> tuple[list[service.Progress], list[str]]:
    seen: list[service.Progress] = []
    notices: list[str] = []
    market = chain.market()

    def on_progress(update: service.Progress) -> None:
        seen.append(update)
        if len(seen) >= rounds:
            raise _Enough

    with pytest.raises(_Enough):
        service.follow(
            market, job_id, listings=lambda: quote.providers(market, from_block=0),
            on_progress=on_progress, poll_s=0.05, on_notice=notices.append,
        )  # fmt: skip
    return seen, notices


@pytest.mark.parametrize("forger", ["unsigned", "provider-2", "other-job"])
def test_spoofed_progress_is_ignored_and_said_once(market_ready: Chain, forger: str) -> None:
    chain = market_ready
    job_id = submit_tiny(chain)
    provider = chain.account("provider-1")
    chain.market("provider-1").claim_job(job_id, 9 * 32 * 32 * 2 * 1000)
    report = ProgressReport(
        chain_id=chain.deployment.chain_id, market=chain.deployment.market,
        job_id=job_id if forger != "other-job" else job_id + 1, state="running",
        progress_ppm=500_000, timestamp=int(__import__("time").time()),
    )  # fmt: skip
    if forger == "unsigned":
        answer: dict[str, object] = {"job_id": job_id, "state": "running", "progress": 0.5}
    else:
        key = chain.account("provider-2" if forger == "provider-2" else "provider-1").key
        answer = sign_report(report, key)
    server = fake_endpoint(answer)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    chain.market("provider-1").update_metadata(
        ProviderOffer(models=["tiny-cogvideox"], endpoint=url).to_uri()
    )
    try:
        seen, notices = follow_a_while(chain, job_id)
    finally:
        server.shutdown()
    assert all(u.fraction is None and u.node_state is None for u in seen)
    assert len(notices) == 1 and url in notices[0]
    expected = {"unsigned": "unsigned", "provider-2": "not by " + provider.address,
                "other-job": f"not {job_id}"}[forger]  # fmt: skip
    assert expected in notices[0]


def test_the_claiming_nodes_signed_progress_is_shown(
    market_ready: Chain, make_agent: AgentFactory, serve: type[Served]
) -> None:
    chain = market_ready
    agent = make_agent()
    agent.startup()
    node = serve(agent)
    job_id = submit_tiny(chain)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
    runner.start()
    seen: list[service.Progress] = []
    notices: list[str] = []
    market = chain.market()
    try:
        state = service.follow(
            market, job_id, listings=lambda: quote.providers(market, from_block=0),
            on_progress=seen.append, poll_s=0.05, on_notice=notices.append,
        )  # fmt: skip
    finally:
        stop.set()
        runner.join(timeout=60)
    assert state is JobState.DELIVERED and notices == []
    shown = [u for u in seen if u.node_state is not None]
    assert shown and all(u.state == "claimed" for u in shown)  # the run was followed
    checked = verify_report(
        httpx.get(f"{node.url}/jobs/{job_id}").json(),
        signer=chain.account("provider-1").address, chain_id=chain.deployment.chain_id,
        market=chain.deployment.market, job_id=job_id,
    )  # fmt: skip
    assert isinstance(checked, ProgressReport) and checked.state == "delivered"
    assert checked.progress == 1.0


VACE = "tiny-wan-vace"


@pytest.fixture(scope="session")
def tiny_vace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny("wan-vace", tmp_path_factory.mktemp("weights-vace") / VACE)


@pytest.mark.slow  # a real agent thread and a VACE run
def test_control_video_travels_like_an_image_to_the_claiming_node(
    market_ready: Chain, make_agent: AgentFactory, weights_dir: Path, tiny_vace_dir: Path,
    serve: type[Served], on_chain: Chain, cli: Cli, client_env: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.client_jobs.conftest import write_tiny_video

    (weights_dir / VACE).symlink_to(tiny_vace_dir, target_is_directory=True)
    agent = make_agent(models=[VACE], weights_dir=weights_dir)
    agent.startup()
    node = serve(agent)
    control = tmp_path / "pose.mp4"
    write_tiny_video(control, frames=9, size=32)
    monkeypatch.setenv("FRAMECAST_GATEWAY_URL", node.url)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
    runner.start()
    try:
        cli("wallet", "import", "--devnet", "alice")
        out = tmp_path / "video"
        done = cli(
            "submit", "--model", VACE, "--prompt", "a red cat walks", "--seed", "3",
            "--control", str(control), "--wait", "-o", str(out),
        )  # fmt: skip
        provider = on_chain.account("provider-1").address
        assert f"→ {provider}: uploaded" in done.output
        assert "verified: levels 1 (integrity) + 2 (provenance)" in done.output
    finally:
        stop.set()
        runner.join(timeout=60)
    record = agent.state.require(1)
    assert record.state == "delivered" and record.reason is None
    # The client's copy was the only one: the node got it by upload, before claiming.
    (cid,) = list(LocalStore(client_env / "blocks").pins())
    assert agent.d.store.has(cid)
