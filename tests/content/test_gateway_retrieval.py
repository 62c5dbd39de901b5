"""The trustless gateway on a real 127.0.0.1 server, and the verified retrieval client."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from framecast.shared.errors import (
    ContentNotFound,
    StorageError,
    StoreUnavailable,
    VerificationFailed,
)
from framecast.shared.ipfs import cid_of_path
from framecast.shared.ipfs.car import CarReader, encode_header, encode_section
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.gateway import Gateway, serve_gateway
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.ipfs.retrieval import fetch


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def gateway(store: LocalStore) -> Iterator[Gateway]:
    with serve_gateway(store) as running:
        yield running


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "job-7"
    (root / "frames").mkdir(parents=True)
    (root / "video.mp4").write_bytes(os.urandom(2 * (1 << 20) + 5))
    (root / "receipt.json").write_text('{"ok": true}')
    (root / "frames" / "0001.png").write_bytes(b"png" * 50)
    return root


def test_raw_block_with_headers(store: LocalStore, gateway: Gateway) -> None:
    data = b"one block"
    cid = CID.from_block(data)
    store.put_block(cid, data)
    response = httpx.get(f"{gateway.url}/ipfs/{cid}?format=raw")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "application/vnd.ipld.raw"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["etag"] == f'"{cid}.raw"'
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["x-ipfs-path"] == f"/ipfs/{cid}"
    by_accept = httpx.get(
        f"{gateway.url}/ipfs/{cid}", headers={"Accept": "application/vnd.ipld.raw"}
    )
    assert by_accept.content == data
    again = httpx.get(
        f"{gateway.url}/ipfs/{cid}?format=raw", headers={"If-None-Match": f'"{cid}.raw"'}
    )
    assert again.status_code == 304
    head = httpx.head(f"{gateway.url}/ipfs/{cid}?format=raw")
    assert head.status_code == 200 and head.content == b""


def test_car_streams_the_whole_dag(store: LocalStore, gateway: Gateway, tree: Path) -> None:
    cid = store.add_path(tree)
    response = httpx.get(
        f"{gateway.url}/ipfs/{cid}", headers={"Accept": "application/vnd.ipld.car"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.ipld.car; version=1")
    reader = CarReader(io.BytesIO(response.content))
    assert reader.roots == [cid]
    blocks = list(reader.blocks())
    for block_cid, block in blocks:
        block_cid.verify(block)
    assert len(blocks) == 8  # 3 video leaves + video node + dir + frames dir + 2 small files
    only_root = httpx.get(f"{gateway.url}/ipfs/{cid}?format=car&dag-scope=block")
    assert len(list(CarReader(io.BytesIO(only_root.content)).blocks())) == 1


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/ipfs/not-a-cid?format=raw", {}, 400),
        ("/ipfs/{missing}?format=raw", {}, 404),
        ("/ipfs/{missing}?format=car", {}, 404),
        ("/ipfs/{present}", {}, 406),
        ("/ipfs/{present}", {"Accept": "text/html"}, 406),
        ("/ipfs/{present}?format=tar", {}, 400),
        ("/ipfs/{present}/sub/path?format=raw", {}, 400),
        ("/ipfs/{present}?format=car&dag-scope=nope", {}, 400),
        ("/ipns/example.com", {}, 404),
    ],
)
def test_status_codes(
    store: LocalStore, gateway: Gateway, path: str, headers: dict[str, str], status: int
) -> None:
    present = CID.from_block(b"here")
    store.put_block(present, b"here")
    missing = CID.from_block(b"absent")
    url = gateway.url + path.format(present=present, missing=missing)
    assert httpx.get(url, headers=headers).status_code == status


def test_fetch_directory_verified(store: LocalStore, gateway: Gateway, tree: Path) -> None:
    cid = store.add_path(tree)
    dest = tree.parent / "fetched"
    fetch(cid, dest, gateway.url)
    assert cid_of_path(dest) == str(cid)
    assert (dest / "video.mp4").read_bytes() == (tree / "video.mp4").read_bytes()
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.startswith(".framecast")]
    assert leftovers == []


def test_fetch_single_file(store: LocalStore, gateway: Gateway, tree: Path) -> None:
    cid = store.add_path(tree / "video.mp4")
    dest = tree.parent / "video-copy.mp4"
    fetch(str(cid), dest, gateway.url)
    assert dest.read_bytes() == (tree / "video.mp4").read_bytes()


def test_fetch_missing_and_unreachable(gateway: Gateway, tmp_path: Path) -> None:
    with pytest.raises(ContentNotFound):
        fetch(CID.from_block(b"nope"), tmp_path / "x", gateway.url)
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:9"):
        fetch(CID.from_block(b"nope"), tmp_path / "x", "http://127.0.0.1:9")
    assert not (tmp_path / "x").exists()


class _Lying(BaseHTTPRequestHandler):
    payload = b""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.ipld.car; version=1")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)


def _serve(payload: bytes) -> tuple[ThreadingHTTPServer, str]:
    handler = type("Handler", (_Lying,), {"payload": payload})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _car_of(store: LocalStore, cid: CID) -> bytes:
    out = io.BytesIO()
    store.export_car(cid, out)
    return out.getvalue()


def test_lying_gateway_is_caught_and_nothing_is_written(store: LocalStore, tree: Path) -> None:
    cid = store.add_path(tree)
    car = bytearray(_car_of(store, cid))
    car[-1] ^= 0xFF  # flip one bit of the last block's bytes
    server, url = _serve(bytes(car))
    dest = tree.parent / "dest"
    try:
        with pytest.raises(VerificationFailed, match=r"bafk\w+ does not match its CID"):
            fetch(cid, dest, url)
    finally:
        server.shutdown()
        server.server_close()
    assert not dest.exists()
    assert [p for p in dest.parent.iterdir() if p.name.startswith(".framecast")] == []


def test_incomplete_and_truncated_car_from_gateway(store: LocalStore, tree: Path) -> None:
    cid = store.add_path(tree / "video.mp4")
    car = _car_of(store, cid)
    sections = list(CarReader(io.BytesIO(car)).blocks())
    without_last = encode_header([cid]) + b"".join(
        encode_section(c, b) + b for c, b in sections[:-1]
    )
    dest = tree.parent / "dest"
    cases: list[tuple[bytes, type[Exception], str]] = [
        (car[:-100], StorageError, "truncated CAR"),
        (without_last, ContentNotFound, "incomplete DAG"),
    ]
    for payload, error, message in cases:
        server, url = _serve(payload)
        try:
            with pytest.raises(error, match=message):
                fetch(cid, dest, url)
        finally:
            server.shutdown()
            server.server_close()
        assert not dest.exists()
