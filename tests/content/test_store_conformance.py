"""One suite every ContentStore passes: the embedded store, and kubo through a fake RPC."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_kubo import FakeKubo

from framecast.shared.errors import (
    ContentNotFound,
    InvalidCid,
    StoreUnavailable,
    VerificationFailed,
)
from framecast.shared.ipfs import cid_of_path
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.kubo import KuboStore
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.ipfs.store import ContentStore, StoreSettings, open_store


@pytest.fixture(params=["local", "kubo"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContentStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        kubo = KuboStore("http://127.0.0.1:5001", transport=FakeKubo(tmp_path).transport())
        yield kubo
        kubo.close()


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "result"
    root.mkdir()
    (root / "video.mp4").write_bytes(os.urandom(3 * (1 << 20) + 17))
    (root / "receipt.json").write_text('{"job": 1}')
    (root / "nested").mkdir()
    (root / "nested" / "poster.jpg").write_bytes(b"\xff\xd8" * 100)
    return root


def test_add_returns_the_local_cid_and_pins(store: ContentStore, content: Path) -> None:
    cid = store.add_path(content)
    assert str(cid) == cid_of_path(content)
    assert cid in store.pins()
    assert store.has(cid)


def test_cat_returns_file_bytes(store: ContentStore, content: Path) -> None:
    video = content / "video.mp4"
    cid = store.add_path(video)
    assert b"".join(store.cat(cid)) == video.read_bytes()
    assert b"".join(store.cat(str(cid))) == video.read_bytes()


def test_blocks_round_trip_and_are_verified(store: ContentStore) -> None:
    data = b"framecast block"
    cid = CID.from_block(data)
    assert not store.has(cid)
    store.put_block(cid, data)
    assert store.has(cid)
    assert store.get_block(cid) == data
    with pytest.raises(VerificationFailed, match=str(cid)):
        store.put_block(cid, b"other bytes")


def test_missing_content_is_content_not_found(store: ContentStore) -> None:
    missing = CID.from_block(b"never stored")
    with pytest.raises(ContentNotFound):
        store.get_block(missing)
    with pytest.raises(ContentNotFound):
        b"".join(store.cat(missing))
    with pytest.raises(ContentNotFound):
        store.unpin(missing)


def test_malformed_cid_is_invalid_cid(store: ContentStore) -> None:
    with pytest.raises(InvalidCid):
        store.get_block("bafy-not-a-cid")


def test_unpin_and_gc_remove_content(store: ContentStore, content: Path) -> None:
    keep = store.add_path(content / "receipt.json")
    drop = store.add_path(content / "nested")
    store.unpin(drop)
    assert drop not in store.pins()
    assert store.gc() >= 1
    assert not store.has(drop)
    assert store.has(keep)


def test_car_export_import_round_trip(store: ContentStore, content: Path, tmp_path: Path) -> None:
    cid = store.add_path(content)
    car = io.BytesIO()
    assert store.export_car(cid, car) > 3
    other = LocalStore(tmp_path / "other")
    assert other.import_car(io.BytesIO(car.getvalue())) == [cid]
    out = tmp_path / "copy"
    other.get(cid, out)
    assert (out / "video.mp4").read_bytes() == (content / "video.mp4").read_bytes()
    assert cid_of_path(out) == str(cid)
    # and back into the store under test
    store.unpin(cid)
    store.gc()
    assert store.import_car(io.BytesIO(car.getvalue())) == [cid]
    assert cid in store.pins()


def test_kubo_cid_mismatch_names_the_setting(tmp_path: Path, content: Path) -> None:
    fake = FakeKubo(tmp_path)
    fake.cid_override = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    kubo = KuboStore(transport=fake.transport())
    with pytest.raises(VerificationFailed, match=r"Import\.UnixFS") as err:
        kubo.add_path(content / "video.mp4")
    assert "unixfs-v1-2025" in str(err.value)
    with pytest.raises(VerificationFailed, match="UnixFSHAMTDirectorySizeThreshold"):
        kubo.add_path(content)


def test_kubo_add_sends_profile_parameters(tmp_path: Path, content: Path) -> None:
    seen: list[httpx.Request] = []
    fake = FakeKubo(tmp_path)

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fake.handle(request)

    KuboStore(transport=httpx.MockTransport(spy)).add_path(content / "video.mp4")
    params = seen[0].url.params
    assert seen[0].method == "POST"
    assert (params["cid-version"], params["raw-leaves"], params["chunker"]) == (
        "1",
        "true",
        "size-1048576",
    )


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("garbage"),
        httpx.ProxyError("proxy"),
    ],
)
def test_kubo_transport_errors_map_to_store_unavailable(exc: Exception) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise exc

    kubo = KuboStore("http://127.0.0.1:1", transport=httpx.MockTransport(boom))
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1"):
        kubo.pins()
    with pytest.raises(StoreUnavailable):
        b"".join(kubo.cat(CID.from_block(b"x")))


def test_kubo_server_error_maps_to_storage_error() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"Message": "repo is locked", "Code": 0, "Type": "error"})

    kubo = KuboStore(transport=httpx.MockTransport(fail))
    with pytest.raises(Exception, match="repo is locked") as err:
        kubo.pins()
    assert type(err.value).__name__ == "StorageError"


def test_factory_picks_the_configured_adapter(tmp_path: Path) -> None:
    assert isinstance(open_store(StoreSettings(store_path=tmp_path / "s")), LocalStore)
    kubo = open_store(StoreSettings(store="kubo", kubo_url="http://127.0.0.1:5001"))
    assert isinstance(kubo, KuboStore)
    with pytest.raises(ValueError):
        StoreSettings(store="s3")  # type: ignore[arg-type]


@pytest.mark.kubo
@pytest.mark.skipif(not os.environ.get("FRAMECAST_TEST_KUBO_URL"), reason="no real kubo")
def test_real_kubo(content: Path) -> None:
    kubo = KuboStore(os.environ["FRAMECAST_TEST_KUBO_URL"])
    cid = kubo.add_path(content)
    assert str(cid) == cid_of_path(content)
    assert (
        b"".join(kubo.cat(kubo.add_path(content / "video.mp4")))
        == (content / "video.mp4").read_bytes()
    )
    car = io.BytesIO()
    assert kubo.export_car(cid, car) > 3
    kubo.unpin(cid)
