"""The explorer's pages over real HTTP: content, the strict CSP, hostile data kept inert,
404s, stale marking, the JSON API and the event stream."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from framecast.client.explorer import ExplorerApp, open_explorer
from framecast.shared.chain.connection import connect
from tests.explorer.conftest import HOSTILE_PROMPT, HOSTILE_URI, Market, RpcProxy


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def _indexed(app: ExplorerApp, job_id: int, state: str | None = None) -> Callable[[], bool]:
    def check() -> bool:
        job = app.explorer.job(job_id)
        return job is not None and (state is None or job["state"] == state)

    return check


def test_every_page_sends_a_strict_csp_and_no_inline_script(
    market: Market, explorer: ExplorerApp
) -> None:
    job_id = market.submit()
    market.deliver(job_id)
    wait_for(_indexed(explorer, job_id, "delivered"))
    for path in ("/", f"/jobs/{job_id}", "/gallery", "/providers", "/credits", "/node", "/nope"):
        answer = httpx.get(explorer.url + path)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
        assert "default-src 'none'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        # No inline script or style: every <script> has a src, no style= or on*= attribute.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", answer.text), path
        assert not re.search(r"<[^>]+\s(style|on[a-z]+)=", answer.text), path
        assert "<style" not in answer.text
    # The job page lets the browser reach the provider's gateway, and nothing else.
    page = httpx.get(f"{explorer.url}/jobs/{job_id}")
    assert market.gateway.url in page.headers["content-security-policy"]


def test_a_job_page_shows_the_job_and_its_timeline(market: Market, explorer: ExplorerApp) -> None:
    job_id = market.submit("a lighthouse at dusk")
    cid = market.deliver(job_id, "a lighthouse at dusk")
    wait_for(_indexed(explorer, job_id, "delivered"))
    page = httpx.get(f"{explorer.url}/jobs/{job_id}").text
    assert "a lighthouse at dusk" in page
    assert "tiny-cogvideox" in page
    assert cid in page
    for event in ("JobSubmitted", "JobClaimed", "JobDelivered"):
        assert event in page
    assert "UTC" in page  # block times on the timeline
    assert f'data-gateways="[&quot;{market.gateway.url}&quot;]"' in page
    api = httpx.get(f"{explorer.url}/api/jobs/{job_id}").json()
    assert api["result_cid"] == cid and api["state"] == "delivered"


def test_hostile_prompt_and_metadata_uri_are_escaped(market: Market, explorer: ExplorerApp) -> None:
    job_id = market.submit(HOSTILE_PROMPT)
    market.chain.market("provider-1").update_metadata(HOSTILE_URI)
    wait_for(_indexed(explorer, job_id))
    wait_for(lambda: HOSTILE_URI in explorer.explorer.offers().values())
    for path in ("/", f"/jobs/{job_id}", "/providers"):
        page = httpx.get(explorer.url + path).text
        assert "<script>window.__pwned" not in page, path
        # No tag of the payload opens: its "<" arrives as "&lt;" everywhere.
        assert "<img src=x" not in page and "<svg" not in page, path
        assert "<b id=injected>" not in page and "<a id=injected2" not in page
    job_page = httpx.get(f"{explorer.url}/jobs/{job_id}").text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in job_page
    providers = httpx.get(f"{explorer.url}/providers").text
    assert "javascript:alert(1)//&lt;script&gt;" in providers
    # A provider that advertises no offer has no gateway the page would reach.
    assert (
        "javascript"
        not in httpx.get(f"{explorer.url}/jobs/{job_id}").headers["content-security-policy"]
    )


def test_unknown_job_and_path_are_404_pages(explorer: ExplorerApp) -> None:
    for path in ("/jobs/999999", "/jobs/abc", "/jobs/-1", "/whatever"):
        answer = httpx.get(explorer.url + path)
        assert answer.status_code == 404, path
        assert "Not found" in answer.text
    assert httpx.get(explorer.url + "/api/jobs/999999").status_code == 404


def test_credits_page_splits_balances_like_the_cli(market: Market, explorer: ExplorerApp) -> None:
    job_id = market.submit()
    market.deliver(job_id)
    alice = market.chain.account("alice").address
    page = httpx.get(f"{explorer.url}/credits/{alice}").text
    for label in ("wallet", "free (in the market)", "escrowed", "in challenge", "History"):
        assert label in page
    assert f"#{job_id}" in page
    bad = httpx.get(f"{explorer.url}/credits?address=not-an-address")
    assert bad.status_code == 400 and "not a 0x" in bad.text


def test_providers_page_counts_served_jobs(market: Market, explorer: ExplorerApp) -> None:
    for _ in range(2):
        market.deliver(market.submit())
    provider = market.chain.account("provider-1").address
    wait_for(lambda: len(explorer.explorer.store.job_rows("state = 'delivered'")) == 2)
    page = httpx.get(f"{explorer.url}/providers").text
    row = page[page.index(f'id="p-{provider}"') :].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[1] == "200 FCC"  # bond
    assert cells[2] == "2"  # jobs served
    assert cells[3].endswith(" s")  # median time to deliver
    assert "tiny-cogvideox" in cells[6]


def test_a_down_rpc_shows_stale_since_not_wrong_data(
    market: Market, rpc_proxy: RpcProxy, tmp_path: Path
) -> None:
    job_id = market.submit("kept while the RPC is down")
    chain = market.chain
    w3 = connect(rpc_proxy.url, expected_chain_id=chain.deployment.chain_id, attempts=1)
    app = open_explorer(w3, chain.deployment, db=str(tmp_path / "i.sqlite3"), poll_s=0.2)
    try:
        assert "indexed to block" in httpx.get(app.url).text
        rpc_proxy.down = True
        wait_for(lambda: app.indexer.status.stale_since is not None)
        page = httpx.get(app.url).text
        assert "stale since" in page
        assert "kept while the RPC is down" in page  # what it knew, marked stale
        credits = httpx.get(f"{app.url}/credits/{chain.account('alice').address}").text
        assert "balances unavailable" in credits
        rpc_proxy.down = False
        wait_for(lambda: app.indexer.status.stale_since is None)
        assert "stale since" not in httpx.get(app.url).text
        assert app.explorer.job(job_id) is not None
    finally:
        app.close()


def test_the_stream_pushes_a_submitted_job(market: Market, explorer: ExplorerApp) -> None:
    with httpx.stream("GET", f"{explorer.url}/api/stream", timeout=20) as stream:
        assert stream.headers["content-type"] == "text/event-stream"
        job_id = market.submit("pushed to the feed")
        event = None
        for line in stream.iter_lines():
            if line.startswith("data: ") and '"job_id"' in line:
                event = json.loads(line.removeprefix("data: "))
                if event["job_id"] == job_id:
                    break
        assert event is not None and event["prompt"] == "pushed to the feed"


def _first_job_event(url: str, headers: dict[str, str] | None = None) -> tuple[dict, str]:
    """The first ``job`` event of a stream and the ``id`` of its batch; fails after the
    first batch without one (the stream then sent only the status)."""
    last_id = ""
    with httpx.stream("GET", url, headers=headers, timeout=20) as stream:
        job, in_status = None, False
        for line in stream.iter_lines():
            if line == "event: status":
                in_status = True  # the last event of a batch
            elif line.startswith("id: "):
                last_id = line.removeprefix("id: ")
            elif line.startswith("data: ") and in_status:
                break  # the end of the first batch
            elif line.startswith("data: ") and '"job_id"' in line and job is None:
                job = json.loads(line.removeprefix("data: "))
        assert job is not None, "the first batch held no job: a change was missed"
        return job, last_id


def test_a_change_between_render_and_stream_is_not_missed(
    market: Market, explorer: ExplorerApp
) -> None:
    """The feed is rendered at change N (data-seq); a job indexed before the browser opens
    the stream is sent first by `?after=N`, and a reconnect resumes after Last-Event-ID."""
    page = httpx.get(explorer.url + "/", timeout=10).text
    seq = re.search(r'id=live data-seq="(\d+)"', page)
    assert seq is not None, page[:300]
    job_id = market.submit("indexed while the page loaded")
    wait_for(_indexed(explorer, job_id))  # published before any stream is open
    job, last_id = _first_job_event(f"{explorer.url}/api/stream?after={seq[1]}")
    assert job["job_id"] == job_id and job["prompt"] == "indexed while the page loaded"
    assert int(last_id) > int(seq[1])

    # A reconnect after the last id it saw: a job that changed meanwhile comes first.
    second = market.submit("changed while the stream was down")
    wait_for(_indexed(explorer, second))
    job, _ = _first_job_event(f"{explorer.url}/api/stream", {"Last-Event-ID": last_id})
    assert job["job_id"] == second
    # A number the server never issued (a restarted explorer) starts from now: no replay
    # of the whole memory, no error.
    with httpx.stream("GET", f"{explorer.url}/api/stream?after=99999999", timeout=20) as stream:
        for line in stream.iter_lines():
            assert '"job_id"' not in line, "a job was replayed for an unknown number"
            if line.startswith("data: "):
                break  # the first batch: the status alone


def test_the_node_page_shows_a_real_nodes_slots_and_jobs(market: Market, tmp_path: Path) -> None:
    from framecast.node.http import NodeRoutes, serve_node_http
    from framecast.node.metrics import NodeMetrics, health_report
    from framecast.shared.ipfs.local import LocalStore

    metrics = NodeMetrics(slots=2)
    metrics.slots_busy.set(1)
    node = serve_node_http(
        NodeRoutes(
            store=LocalStore(tmp_path / "node-blocks"), metrics=metrics,
            health=lambda: health_report(time.time(), {"delivered": 3, "running": 1}),
        ),
        "127.0.0.1", 0, legacy=False,
    )  # fmt: skip
    node_url = f"http://127.0.0.1:{node.server_address[1]}"
    chain = market.chain
    app = open_explorer(chain.w3, chain.deployment, db=str(tmp_path / "i.sqlite3"),
                        node_url=node_url)  # fmt: skip
    try:
        page = httpx.get(f"{app.url}/node").text
        cells = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page))
        assert cells["GPU slots"] == "2" and cells["slots busy"] == "1"
        assert cells["healthy"] == "yes"
        assert "<td>delivered</td><td>3</td>" in page and "<td>running</td><td>1</td>" in page
        node.shutdown()
        node.server_close()
        assert "does not answer" in httpx.get(f"{app.url}/node").text
    finally:
        app.close()
