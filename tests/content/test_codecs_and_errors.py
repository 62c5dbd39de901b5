"""CID / multibase / CAR codecs (property tests) and bad input that must fail clearly."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.shared.errors import ContentNotFound, InvalidCid, StorageError
from framecast.shared.ipfs import cid_of_path
from framecast.shared.ipfs.car import CarReader, encode_header, encode_section
from framecast.shared.ipfs.cid import (
    CID,
    DAG_PB,
    RAW,
    b32decode,
    b32encode,
    b58decode,
    b58encode,
    decode_varint,
    encode_varint,
)
from framecast.shared.ipfs.local import LocalStore


@given(st.integers(min_value=0, max_value=2**63))
def test_varint_round_trip(value: int) -> None:
    assert decode_varint(encode_varint(value)) == (value, len(encode_varint(value)))


@given(st.binary(max_size=80))
def test_multibase_round_trip(data: bytes) -> None:
    assert b32decode(b32encode(data)) == data
    assert b58decode(b58encode(data)) == data


@given(st.binary(max_size=300), st.sampled_from([RAW, DAG_PB]))
def test_cid_string_round_trip(data: bytes, codec: int) -> None:
    cid = CID.from_block(data, codec)
    assert CID.parse(str(cid)) == cid
    assert CID.from_bytes(bytes(cid)) == cid
    if codec == DAG_PB:
        v0 = CID(0, DAG_PB, cid.hash_code, cid.digest)
        assert str(v0).startswith("Qm")
        assert CID.parse(str(v0)) == v0
        assert v0.to_v1() == cid


@given(st.text(max_size=60))
def test_cid_parse_never_crashes(text: str) -> None:
    try:
        CID.parse(text)
    except InvalidCid as exc:
        assert "CID" in str(exc)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bafy",
        "Bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk",  # truncated digest
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku0",
        "QmNotBase58Il0OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO",
        "u" + "A" * 40,
    ],
)
def test_malformed_cids_are_rejected(text: str) -> None:
    with pytest.raises(InvalidCid):
        CID.parse(text)


@given(st.lists(st.binary(max_size=200), max_size=5))
def test_car_round_trip(blocks: list[bytes]) -> None:
    pairs = [(CID.from_block(b), b) for b in blocks]
    roots = [pairs[0][0]] if pairs else []
    car = encode_header(roots) + b"".join(encode_section(c, b) + b for c, b in pairs)
    reader = CarReader(io.BytesIO(car))
    assert reader.roots == roots
    assert list(reader.blocks()) == pairs


def test_truncated_car_is_rejected_and_leaves_no_pin(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(os.urandom(70_000))
    store = LocalStore(tmp_path / "a")
    cid = store.add_path(source)
    out = io.BytesIO()
    store.export_car(cid, out)
    target = LocalStore(tmp_path / "b")
    for cut in (3, 20, len(out.getvalue()) - 1):
        with pytest.raises(StorageError, match=r"truncated CAR|not a CAR"):
            target.import_car(io.BytesIO(out.getvalue()[:cut]))
    assert target.pins() == []
    with pytest.raises(StorageError):
        target.import_car(io.BytesIO(b"\x05hello"))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        cid_of_path(tmp_path / "nope")


def test_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "self").symlink_to(tmp_path / "self")
    with pytest.raises(StorageError, match="symlink loop"):
        cid_of_path(tmp_path / "self")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "up").symlink_to(tree)
    with pytest.raises(StorageError, match="symlink loop"):
        cid_of_path(tree)


def test_dangling_symlink_and_unreadable(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "gone").symlink_to(tmp_path / "missing")
    with pytest.raises(StorageError, match="dangling"):
        cid_of_path(tmp_path / "d")
    secret = tmp_path / "secret"
    secret.write_bytes(b"x")
    secret.chmod(0)
    if os.access(secret, os.R_OK):  # root reads anything
        pytest.skip("running as root")
    with pytest.raises(StorageError, match="not readable"):
        cid_of_path(secret)


def test_disk_full_leaves_no_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "s")
    source = tmp_path / "big"
    source.write_bytes(os.urandom(3 << 20))
    real_replace = Path.replace
    calls = {"n": 0}

    def full(self: Path, target: Path) -> Path:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", full)
    with pytest.raises(StorageError, match="disk full"):
        store.add_path(source)
    monkeypatch.undo()
    assert list((tmp_path / "s" / "tmp").iterdir()) == []
    # every block that is visible is whole (its bytes hash to its name)
    for path in (tmp_path / "s" / "blocks").rglob("b*"):
        if path.is_file():
            CID.parse(path.name).verify(path.read_bytes())
    assert store.pins() == []


def test_cli_prints_cid(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from framecast.client.cli import root

    (tmp_path / "f").write_bytes(b"hello")
    result = CliRunner().invoke(root, ["cid", str(tmp_path / "f")])
    assert result.exit_code == 0
    assert result.output.strip() == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


def test_a_store_is_made_on_its_first_write_not_when_opened(tmp_path: Path) -> None:
    """Opening a store to read it (or for a command that then refuses its input) leaves
    nothing on disk; the first write makes it; a root that cannot be made is named then."""
    root = tmp_path / "never-written"
    store = LocalStore(root)
    some = CID.parse(str(cid_of_path(_one_file(tmp_path))))
    assert not store.has(some) and store.pins() == [] and store.gc() == 0
    with pytest.raises(ContentNotFound):
        store.get_block(some)
    assert not root.exists(), "reading created the store"
    cid = store.add_path(tmp_path / "one.txt")
    assert cid == some and store.pins() == [cid] and store.has(cid)
    assert sorted(p.name for p in root.iterdir()) == ["blocks", "pins", "tmp"]

    (tmp_path / "a-file").write_text("x")
    blocked = LocalStore(tmp_path / "a-file" / "store")  # opening a bad root is fine…
    with pytest.raises(StorageError, match="create the store"):
        blocked.add_path(tmp_path / "one.txt")  # …its first write names it


def _one_file(tmp_path: Path) -> Path:
    path = tmp_path / "one.txt"
    path.write_bytes(b"one small file\n")
    return path
