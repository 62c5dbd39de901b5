"""The one retrieval path against real gateways on 127.0.0.1: a lying one, a hanging one,
one that 404s and an honest one; refused URLs from the chain; deadlines; nothing partial."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from framecast.shared.errors import ContentNotFound, StoreUnavailable
from framecast.shared.ipfs.car import CONTENT_TYPE as CAR_TYPE
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.gateway import serve_gateway
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.ipfs.retrieve import RetrievalSettings, Retriever
from framecast.shared.ipfs.store import StoreSettings

PROVIDER = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"


@pytest.fixture
def result(tmp_path: Path) -> Path:
    root = tmp_path / "result"
    root.mkdir()
    (root / "video.mp4").write_bytes(os.urandom((1 << 20) + 77))
    (root / "receipt.json").write_text('{"ok": true}')
    return root


@pytest.fixture
def honest(tmp_path: Path, result: Path) -> tuple[LocalStore, CID]:
    store = LocalStore(tmp_path / "honest")
    return store, store.add_path(result)


class _Lying(BaseHTTPRequestHandler):
    """Answers every CAR request with the honest CAR, one byte of a block flipped."""

    car: bytes = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = bytearray(self.car)
        body[-1] ^= 0xFF  # the last block's data: its hash no longer matches its CID
        self.send_response(200)
        self.send_header("Content-Type", f"{CAR_TYPE}; version=1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(bytes(body))


@pytest.fixture
def lying(honest: tuple[LocalStore, CID]) -> Iterator[str]:
    store, cid = honest
    out = io.BytesIO()
    store.export_car(cid, out)
    handler = type("Lying", (_Lying,), {"car": out.getvalue()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hanging() -> Iterator[str]:
    """Accepts connections (the kernel completes the handshake) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def not_found(tmp_path: Path) -> Iterator[str]:
    with serve_gateway(LocalStore(tmp_path / "empty")) as gateway:
        yield gateway.url


def _tree(path: Path) -> dict[str, bytes]:
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path)): p.read_bytes() for p in files}


def test_the_honest_gateway_is_used_after_the_others_fail(
    tmp_path: Path, result: Path, honest: tuple[LocalStore, CID], lying: str, hanging: str,
    not_found: str,
) -> None:  # fmt: skip
    store, cid = honest
    with serve_gateway(store) as good:
        retriever = Retriever(
            store=StoreSettings(store_path=tmp_path / "no-store-here"),
            settings=RetrievalSettings(
                gateway_url=lying,
                public_gateways=(hanging, not_found, good.url),
                source_timeout_s=1.0,
            ),
        )
        dest = tmp_path / "out"
        assert retriever.retrieve(cid, dest) == good.url
    assert _tree(dest) == _tree(result)
    assert not (tmp_path / "no-store-here").exists()  # looking did not create a store


def test_every_failed_source_is_named(
    tmp_path: Path, honest: tuple[LocalStore, CID], lying: str, hanging: str, not_found: str
) -> None:
    _, cid = honest
    retriever = Retriever(
        store=StoreSettings(store_path=tmp_path / "none"),
        settings=RetrievalSettings(
            gateway_url=lying, public_gateways=(hanging, not_found), source_timeout_s=1.0
        ),
        provider_gateways={PROVIDER: "http://169.254.10.1:9464"},  # link-local: refused
    )
    dest = tmp_path / "out"
    started = time.monotonic()
    # The hanging gateway did not answer: no proof the content is gone.
    with pytest.raises(StoreUnavailable) as raised:
        retriever.retrieve(cid, dest, provider=PROVIDER)
    assert time.monotonic() - started < 10
    message = raised.value.message
    assert f"{cid} is not retrievable" in message
    assert f"local store {tmp_path / 'none'}: not found" in message
    assert f"{lying}: sent bytes that do not match the CID" in message
    assert f"{hanging}: timed out after 1 s" in message
    assert f"{not_found}: not found (404)" in message
    # A URL from the chain that fails the check is named and never fetched.
    assert "http://169.254.10.1:9464 (provider 0xAbCd…Ef01): refused" in message
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".framecast")) == []


def test_definite_failures_are_content_not_found(
    tmp_path: Path, honest: tuple[LocalStore, CID], lying: str, not_found: str
) -> None:
    _, cid = honest
    retriever = Retriever(
        store=None, settings=RetrievalSettings(gateway_url=lying, public_gateways=(not_found,))
    )
    with pytest.raises(ContentNotFound, match="not retrievable"):
        retriever.retrieve(cid, tmp_path / "out", provider=PROVIDER)


def test_the_provider_gateway_comes_before_public_gateways(
    tmp_path: Path, result: Path, honest: tuple[LocalStore, CID], hanging: str
) -> None:
    store, cid = honest
    with serve_gateway(store) as provider_gateway:
        retriever = Retriever(
            store=None,
            settings=RetrievalSettings(public_gateways=(hanging,), source_timeout_s=30),
            provider_gateways=lambda: {PROVIDER.lower(): provider_gateway.url},
            allow_loopback=True,  # the devnet: the chain is on this machine
        )
        started = time.monotonic()
        source = retriever.retrieve(cid, tmp_path / "out", provider=PROVIDER)
        assert time.monotonic() - started < 5  # the hanging public gateway was never asked
    assert source == f"{provider_gateway.url} (provider 0xAbCd…Ef01)"
    assert _tree(tmp_path / "out") == _tree(result)


def test_a_loopback_gateway_from_the_chain_is_refused_off_the_devnet(
    tmp_path: Path, honest: tuple[LocalStore, CID]
) -> None:
    store, cid = honest
    with serve_gateway(store) as gateway:
        retriever = Retriever(
            store=None,
            settings=RetrievalSettings(),
            provider_gateways={PROVIDER: gateway.url},
            allow_loopback=False,
        )
        with pytest.raises(ContentNotFound, match="points at loopback"):
            retriever.retrieve(cid, tmp_path / "out", provider=PROVIDER)


def test_timeouts_are_cut_from_the_time_left(
    tmp_path: Path, honest: tuple[LocalStore, CID], hanging: str
) -> None:
    _, cid = honest
    retriever = Retriever(
        store=None,
        settings=RetrievalSettings(
            gateway_url=hanging, public_gateways=(hanging, hanging), source_timeout_s=60
        ),
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="timed out after 1 s"):
        retriever.retrieve(cid, tmp_path / "out", deadline=time.monotonic() + 3)
    # Three sources share 3 s; none waits its 60 s cap.
    assert time.monotonic() - started < 8


def test_the_local_store_is_tried_first(
    tmp_path: Path, result: Path, honest: tuple[LocalStore, CID], hanging: str
) -> None:
    store, cid = honest
    retriever = Retriever(
        store=StoreSettings(store_path=store.root),
        settings=RetrievalSettings(gateway_url=hanging, source_timeout_s=30),
    )
    assert retriever.retrieve(cid, tmp_path / "out") == f"local store {store.root}"
    assert _tree(tmp_path / "out") == _tree(result)
