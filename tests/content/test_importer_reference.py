"""CIDs of files and directories against the IPFS project's own importer (JS reference)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framecast.shared.ipfs import UNIXFS_V1_2025, Profile, cid_of_path
from framecast.shared.ipfs.hamt import murmur3_x64_128

if TYPE_CHECKING:
    from conftest import Reference

MIB = 1 << 20
# A test-only profile: 16-byte chunks, 4 links per node, so multi-level trees are cheap.
SMALL = Profile(chunk_size=16, max_links=4, shard_threshold=400, shard_fanout_bits=8)


def _write(path: Path, size: int, seed: int = 0) -> Path:
    # Deterministic but non-repeating bytes, so every chunk has its own hash.
    block = bytes((i * 131 + seed * 7 + (i >> 8)) % 251 for i in range(min(size, 1 << 16)))
    with path.open("wb") as out:
        left = size
        while left:
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))
    return path


def test_profile_vectors_match_reference(tmp_path: Path, reference: Reference) -> None:
    sizes = [0, 1, MIB, MIB + 1, 3 * MIB - 7]
    paths = [_write(tmp_path / f"f{size}", size, seed=size) for size in sizes]
    assert [cid_of_path(p) for p in paths] == reference.cids(paths)


def test_known_vectors(tmp_path: Path) -> None:
    # Constants any IPFS implementation agrees on: the empty raw leaf and the empty directory.
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    assert cid_of_path(tmp_path / "empty") == (
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    )
    assert cid_of_path(tmp_path / "dir") == (
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    )


def test_width_boundaries_match_reference(tmp_path: Path, reference: Reference) -> None:
    c, w = SMALL.chunk_size, SMALL.max_links
    sizes = [c - 1, c, c + 1, c * w, c * w + 1, c * w * w - 1, c * w * w, c * w * w + 1]
    sizes += [c * w * w * w + 5, c * (w * w + w + 1)]
    paths = [_write(tmp_path / f"s{size}", size, seed=size) for size in sizes]
    assert [cid_of_path(p, profile=SMALL) for p in paths] == reference.cids(paths, SMALL)


def _tree(root: Path) -> Path:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a" / "b" / "empty-too").mkdir()
    _write(root / "top.bin", 3 * 16 + 1)
    _write(root / "a" / "x", 5)
    _write(root / "a" / "b" / "c" / "deep", 100, seed=3)
    _write(root / "Zebra", 0)
    _write(root / "zebra", 1)
    _write(root / "ünïcødé ☃ 文件.txt", 33, seed=9)
    _write(root / "a" / "日本", 17, seed=4)
    _write(root / "ab", 2)  # sorts between "a" and "a/…" children by name bytes
    return root


def test_nested_unicode_directories_match_reference(tmp_path: Path, reference: Reference) -> None:
    root = _tree(tmp_path / "root")
    empty = tmp_path / "only-empty"
    empty.mkdir()
    paths = [root, root / "a", empty]
    assert [cid_of_path(p) for p in paths] == reference.cids(paths)
    assert [cid_of_path(p, profile=SMALL) for p in paths] == reference.cids(paths, SMALL)


def test_symlinks_are_followed_like_the_reference(tmp_path: Path, reference: Reference) -> None:
    root = _tree(tmp_path / "root")
    (root / "link-to-file").symlink_to(root / "top.bin")
    (root / "link-to-dir").symlink_to(root / "a" / "b")
    assert cid_of_path(root) == reference.cids([root])[0]


@pytest.mark.parametrize("fanout_bits", [8, 4, 2])
def test_sharded_directories_match_reference(
    tmp_path: Path, fanout_bits: int, reference: Reference
) -> None:
    profile = Profile(
        chunk_size=64, max_links=4, shard_threshold=700, shard_fanout_bits=fanout_bits
    )
    root = tmp_path / "many"
    root.mkdir()
    for i in range(60):
        _write(root / f"file-{i:03d}-é", i % 7, seed=i)
    (root / "sub").mkdir()
    for i in range(30):
        _write(root / "sub" / f"n{i}", 3, seed=i)
    (root / "sub" / "void").mkdir()
    # Just under the threshold stays flat; just over shards: find both edges in one tree.
    small = tmp_path / "edge"
    small.mkdir()
    for i in range(10):
        _write(small / f"e{i}", 1, seed=i)
    paths = [root, root / "sub", small]
    assert [cid_of_path(p, profile=profile) for p in paths] == reference.cids(paths, profile)


def test_shard_threshold_edge_matches_reference(tmp_path: Path, reference: Reference) -> None:
    # Each link here is 1+1+(2+36)+(2+5)+(1+1) = 49 bytes; base 4: 13 links = 641 bytes.
    dirs = []
    for count in (12, 13, 14):
        d = tmp_path / f"d{count}"
        d.mkdir()
        for i in range(count):
            _write(d / f"f{i:04d}", 1, seed=i)
        dirs.append(d)
    for threshold in (640, 641, 642, 690):
        profile = Profile(chunk_size=64, max_links=4, shard_threshold=threshold)
        assert [cid_of_path(d, profile=profile) for d in dirs] == reference.cids(dirs, profile)


def test_real_profile_sharding(tmp_path: Path, reference: Reference) -> None:
    # ~5000 entries push a directory past the profile's 256 KiB threshold.
    root = tmp_path / "big"
    root.mkdir()
    for i in range(5000):
        (root / f"entry-{i:05d}.json").write_bytes(b"{}")
    assert cid_of_path(root) == reference.cids([root], UNIXFS_V1_2025)[0]


def test_murmur3_matches_reference(reference: Reference) -> None:
    names = ["", "a", "hello", "x" * 15, "y" * 16, "z" * 17, "ünïcødé", "f" * 100]
    expected = reference.murmur(names)
    assert [murmur3_x64_128(n.encode()).hex() for n in names] == expected


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=6),
    chunk=st.sampled_from([1, 7, 16, 64]),
    width=st.integers(min_value=2, max_value=9),
)
def test_random_files_match_reference(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    chunk: int,
    width: int,
    reference: Reference,
) -> None:
    directory = tmp_path_factory.mktemp("rand")
    profile = Profile(chunk_size=chunk, max_links=width)
    paths = [_write(directory / f"r{i}", size, seed=i) for i, size in enumerate(sizes)]
    assert [cid_of_path(p, profile=profile) for p in paths] == reference.cids(paths, profile)
