"""The node's HTTP server as other hosts see it: trustless gateway conformance (raw, CAR
with each dag-scope, paths, HEAD, base36, 400/404/406), on a real 127.0.0.1 server."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from framecast.node.http import NodeHTTPServer, NodeRoutes, serve_node_http
from framecast.shared.ipfs.car import CarReader
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.dag import walk_blocks
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.ipfs.unixfs import decode_node

CAR = "application/vnd.ipld.car"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "result"
    (root / "frames").mkdir(parents=True)
    (root / "video.mp4").write_bytes(os.urandom(2 * (1 << 20) + 5))  # 3 leaves + a node
    (root / "receipt.json").write_text('{"ok": true}')
    (root / "frames" / "0001.png").write_bytes(b"png" * 50)
    return root


@pytest.fixture
def server(store: LocalStore) -> Iterator[str]:
    running: NodeHTTPServer = serve_node_http(NodeRoutes(store=store), "127.0.0.1", 0, legacy=False)
    try:
        yield f"http://127.0.0.1:{running.server_address[1]}"
    finally:
        running.shutdown()
        running.server_close()


def car_blocks(response: httpx.Response) -> tuple[list[CID], list[CID]]:
    """(roots, block CIDs in order) of a CAR answer, every block verified."""
    reader = CarReader(io.BytesIO(response.content))
    cids = []
    for cid, block in reader.blocks():
        cid.verify(block)
        cids.append(cid)
    return reader.roots, cids


def base36(cid: CID) -> str:
    number = int.from_bytes(bytes(cid), "big")
    digits = ""
    while number:
        number, rem = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rem] + digits
    return "k" + digits


def test_raw_block_and_head(store: LocalStore, server: str, tree: Path) -> None:
    root = store.add_path(tree)
    block = store.get_block(root)
    raw = httpx.get(f"{server}/ipfs/{root}", headers={"Accept": "application/vnd.ipld.raw"})
    assert raw.status_code == 200 and raw.content == block
    assert raw.headers["content-type"] == "application/vnd.ipld.raw"
    assert httpx.get(f"{server}/ipfs/{root}?format=raw").content == block
    head = httpx.head(f"{server}/ipfs/{root}?format=raw")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(block))
    head_car = httpx.head(f"{server}/ipfs/{root}?format=car")
    assert head_car.status_code == 200 and head_car.content == b""
    assert head_car.headers["content-type"].startswith(f"{CAR}; version=1")
    assert httpx.head(f"{server}/ipfs/{CID.from_block(b'gone')}?format=raw").status_code == 404


def test_car_dag_scopes(store: LocalStore, server: str, tree: Path) -> None:
    root = store.add_path(tree)
    everything = [c for c, _ in walk_blocks(store.get_block, root)]
    roots, all_blocks = car_blocks(httpx.get(f"{server}/ipfs/{root}?format=car"))
    assert roots == [root] and all_blocks == everything  # dfs order, no duplicates
    _, scoped_all = car_blocks(httpx.get(f"{server}/ipfs/{root}?format=car&dag-scope=all"))
    assert scoped_all == everything
    _, block = car_blocks(httpx.get(f"{server}/ipfs/{root}?format=car&dag-scope=block"))
    assert block == [root]
    # entity of a directory: its own node, none of the children
    _, entity = car_blocks(
        httpx.get(f"{server}/ipfs/{root}", params={"dag-scope": "entity"}, headers={"Accept": CAR})
    )
    assert entity == [root]


def test_car_with_a_path(store: LocalStore, server: str, tree: Path) -> None:
    root = store.add_path(tree)
    video = next(
        link.cid for link in decode_node(store.get_block(root)).links if link.name == "video.mp4"
    )
    video_blocks = [c for c, _ in walk_blocks(store.get_block, video)]
    assert len(video_blocks) == 4
    roots, got = car_blocks(httpx.get(f"{server}/ipfs/{root}/video.mp4?format=car"))
    # The header names the requested root; the path's blocks come first, then the file.
    assert roots == [root] and got == [root, *video_blocks]
    _, entity = car_blocks(httpx.get(f"{server}/ipfs/{root}/video.mp4?format=car&dag-scope=entity"))
    assert entity == [root, *video_blocks]
    _, block = car_blocks(httpx.get(f"{server}/ipfs/{root}/video.mp4?format=car&dag-scope=block"))
    assert block == [root, video]
    nested = httpx.get(f"{server}/ipfs/{root}/frames/0001.png?format=car")
    assert nested.status_code == 200 and len(car_blocks(nested)[1]) == 3
    ranged = httpx.get(f"{server}/ipfs/{root}/video.mp4?format=car&entity-bytes=0:1023")
    assert ranged.status_code == 200 and set(video_blocks) <= set(car_blocks(ranged)[1])
    assert httpx.get(f"{server}/ipfs/{root}/nope.mp4?format=car").status_code == 404


def test_base36_and_base32_cids(store: LocalStore, server: str, tree: Path) -> None:
    root = store.add_path(tree)
    k_form = base36(root)
    assert CID.parse(k_form) == root
    by_k = httpx.get(f"{server}/ipfs/{k_form}?format=car")
    assert by_k.status_code == 200 and car_blocks(by_k)[0] == [root]
    assert httpx.get(f"{server}/ipfs/{root}?format=raw").status_code == 200


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/ipfs/not-a-cid?format=raw", {}, 400),
        ("/ipfs/kzzzz?format=car", {}, 400),
        ("/ipfs/{missing}?format=raw", {}, 404),
        ("/ipfs/{missing}?format=car", {}, 404),
        ("/ipfs/{present}", {}, 406),
        ("/ipfs/{present}", {"Accept": "text/html"}, 406),
        ("/ipfs/{present}", {"Accept": f"{CAR}; version=2"}, 406),
        ("/ipfs/{present}?format=tar", {}, 400),
        ("/ipfs/{present}/video.mp4?format=raw", {}, 400),
        ("/ipfs/{present}/../x?format=car", {}, 400),
        ("/ipfs/{present}?format=car&dag-scope=nope", {}, 400),
        ("/ipfs/{present}?format=car&entity-bytes=x:y", {}, 400),
        ("/ipfs/{leaf}/below?format=car", {}, 400),
        ("/ipns/example.com", {}, 404),
        ("/jobs/1", {}, 404),
    ],
)
def test_status_codes(
    store: LocalStore, server: str, tree: Path, path: str, headers: dict[str, str], status: int
) -> None:
    present = store.add_path(tree)
    leaf = CID.from_block(b"leaf")
    store.put_block(leaf, b"leaf")
    missing = CID.from_block(b"absent")
    url = server + path.format(present=present, missing=missing, leaf=leaf)
    assert httpx.get(url, headers=headers).status_code == status
