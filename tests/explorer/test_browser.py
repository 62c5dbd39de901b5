"""The explorer in a real browser: Debian's Chromium driven by Playwright against the
explorer over anvil with real delivered jobs. The feed updates when a job is submitted,
the video plays once verified in the page, a tampering gateway shows "not verified", a
dead one "not retrievable", hostile data stays inert. Screenshots of each page are saved
under the test's tmp dir (``screenshots/``)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from framecast.client.explorer import ExplorerApp
from framecast.shared.provider_metadata import ProviderOffer
from tests.client_jobs.conftest import PRICE_PER_UNIT
from tests.conftest import free_port
from tests.explorer.conftest import HOSTILE_PROMPT, HOSTILE_URI, Market

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    (tmp_path / "screenshots").mkdir()
    yield page
    context.close()


def shot(page: Any, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / "screenshots" / f"{name}.png"), full_page=True)


def _use_gateway(market: Market, url: str) -> None:
    offer = ProviderOffer(models=["tiny-cogvideox"], price_per_unit=PRICE_PER_UNIT, gateway=url)
    market.chain.market("provider-1").update_metadata(offer.to_uri())


class TamperingGateway:
    """A gateway that answers with the real gateway's CAR with one byte flipped near its
    end (inside a block of the video): what a lying or broken gateway sends."""

    def __init__(self, upstream: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                answer = httpx.get(upstream + self.path)
                body = bytearray(answer.content)
                if body:
                    body[-5] ^= 0xFF
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", ""))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(bytes(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait_indexed(explorer: ExplorerApp, job_id: int, state: str) -> None:
    from tests.explorer.test_pages import wait_for

    wait_for(lambda: (j := explorer.explorer.job(job_id)) is not None and j["state"] == state)


def test_feed_updates_when_a_job_is_submitted(
    market: Market, explorer: ExplorerApp, page: Any, tmp_path: Path
) -> None:
    page.goto(explorer.url + "/")
    page.wait_for_selector("#status")
    job_id = market.submit("a paper boat on a river")
    row = page.wait_for_selector(f'#feed tr[data-job="{job_id}"]', timeout=15_000)
    assert "a paper boat on a river" in row.inner_text()
    assert "open" in row.inner_text()
    market.deliver(job_id, "a paper boat on a river")
    # Functions, not expression strings: the page's CSP forbids eval, Playwright's too.
    page.wait_for_function(
        "id => document.querySelector(`#feed tr[data-job='${id}']`)"
        ".innerText.includes('delivered')",
        arg=job_id,
        timeout=15_000,
    )
    assert "indexed to block" in page.inner_text("#status")
    shot(page, tmp_path, "feed")
    assert page.errors == []


def test_the_video_is_verified_in_the_browser_and_plays(
    market: Market, explorer: ExplorerApp, page: Any, tmp_path: Path
) -> None:
    job_id = market.submit("a lighthouse at dusk")
    market.deliver(job_id, "a lighthouse at dusk")
    _wait_indexed(explorer, job_id, "delivered")
    page.goto(f"{explorer.url}/jobs/{job_id}")
    page.wait_for_selector("[data-verdict=verified]", timeout=20_000)
    verdict = page.inner_text("[data-role=verdict]")
    assert verdict.startswith("verified")
    # The video element plays the verified bytes: its clock advances.
    page.wait_for_function(
        "() => document.querySelector('[data-role=player]').currentTime > 0.2", timeout=15_000
    )
    assert page.eval_on_selector("[data-role=player]", "v => v.src.startsWith('blob:')")
    receipt = page.inner_text("[data-role=receipt]")
    assert "video_sha256" in receipt and "tiny-cogvideox" in receipt
    assert "blocks verified" in page.inner_text("[data-role=attempts]")
    shot(page, tmp_path, "job")
    page.goto(explorer.url + "/gallery")
    page.wait_for_selector("figure[data-verdict=verified] img:not([hidden])", timeout=20_000)
    shot(page, tmp_path, "gallery")
    for name in ("providers", "node"):
        page.goto(f"{explorer.url}/{name}")
        shot(page, tmp_path, name)
    page.goto(f"{explorer.url}/credits/{market.chain.account('alice').address}")
    shot(page, tmp_path, "credits")
    page.goto(f"{explorer.url}/jobs/424242")
    shot(page, tmp_path, "not-found")
    assert page.errors == []


def test_a_tampering_gateway_is_not_verified_and_its_video_not_shown(
    market: Market, explorer: ExplorerApp, page: Any, tmp_path: Path
) -> None:
    liar = TamperingGateway(market.gateway.url)
    try:
        _use_gateway(market, liar.url)
        job_id = market.submit("a tampered result")
        market.deliver(job_id, "a tampered result")
        _wait_indexed(explorer, job_id, "delivered")
        page.goto(f"{explorer.url}/jobs/{job_id}")
        page.wait_for_selector("[data-verdict=mismatch]", timeout=20_000)
        assert "not verified" in page.inner_text("[data-role=verdict]")
        assert page.eval_on_selector("[data-role=player]", "v => v.hidden && !v.src")
        shot(page, tmp_path, "tampered")
    finally:
        liar.close()


def test_a_dead_gateway_shows_not_retrievable(
    market: Market, explorer: ExplorerApp, page: Any, tmp_path: Path
) -> None:
    _use_gateway(market, f"http://127.0.0.1:{free_port()}")
    job_id = market.submit("nobody serves this")
    market.deliver(job_id, "nobody serves this")
    _wait_indexed(explorer, job_id, "delivered")
    answer = page.goto(f"{explorer.url}/jobs/{job_id}")
    assert answer.status == 200  # a page, not an error page
    page.wait_for_selector("[data-verdict=unretrievable]", timeout=20_000)
    assert "not retrievable" in page.inner_text("[data-role=verdict]")
    shot(page, tmp_path, "unretrievable")


def test_hostile_prompt_and_offer_are_inert_in_the_browser(
    market: Market, explorer: ExplorerApp, page: Any, tmp_path: Path
) -> None:
    job_id = market.submit(HOSTILE_PROMPT)
    page.goto(explorer.url + "/")
    market.chain.market("provider-1").update_metadata(HOSTILE_URI)
    page.wait_for_selector(f'#feed tr[data-job="{job_id}"]', timeout=15_000)
    for path in ("/", f"/jobs/{job_id}", "/providers"):
        page.goto(explorer.url + path)
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.__pwned") is None, path
        assert page.query_selector("#injected") is None, path
        assert page.query_selector("#injected2") is None, path
        assert page.query_selector("main svg") is None, path
    page.goto(f"{explorer.url}/jobs/{job_id}")
    assert page.inner_text("#prompt") == HOSTILE_PROMPT  # shown as the text it is
    shot(page, tmp_path, "hostile")
    assert page.dialogs == []
