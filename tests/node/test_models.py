"""`framecast node models`: pull verifies every file, list shows what is present and valid.

Downloads cannot run here, so the hub is replaced by a `Downloader` that copies local
directories laid out like the repos; the verification, staging and CLI paths are the real
ones, and the last test runs the real runner on what a pull placed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from framecast.node import models
from framecast.node.cli import node_group
from framecast.node.runtime.process import ProcessRuntime
from framecast.runner.tiny import build_tiny
from framecast.shared.catalog import (
    TINY_PROMPT,
    Catalog,
    CatalogEntry,
    LoraAdapter,
    Style,
    default_spec,
    get_entry,
    load_catalog,
)
from framecast.shared.catalog.weights import (
    CONTROLNET_DIR,
    LORA_DIR,
    compute_manifest,
    file_sha256,
)
from framecast.shared.errors import PipelineError, WeightsInvalid
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from tests.pipelines.test_control import moving_square, put_video

MODEL = "cogvideox-2b"
REVISION = "1" * 40


def with_entry(entry: CatalogEntry, catalog: Catalog | None = None) -> Catalog:
    """The packaged catalog (or `catalog`) with `entry` in place of its namesake."""
    base = catalog or load_catalog()
    return base.model_copy(update={"models": {**base.models, entry.id: entry}})


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """A stand-in for the hub repo: a few files, one of them a multi-block shard."""
    repo = tmp_path / "repo"
    (repo / "transformer").mkdir(parents=True)
    (repo / "model_index.json").write_text('{"_class_name": "CogVideoXPipeline"}')
    (repo / "transformer" / "config.json").write_text("{}")
    (repo / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(
        bytes(range(256)) * 10_000
    )
    return repo


@pytest.fixture
def pinned(repo_dir: Path) -> CatalogEntry:
    """The real catalog entry, pinned to the stand-in repo's manifest and a revision."""
    return get_entry(MODEL).model_copy(
        update={"revision": REVISION, "manifest": compute_manifest(repo_dir)}
    )


@pytest.fixture
def catalog(pinned: CatalogEntry) -> Catalog:
    return with_entry(pinned)


class LocalDownloader:
    """Copies the pinned files like snapshot_download(local_dir=...) would, with progress."""

    def __init__(self, source: Path, corrupt: str | None = None) -> None:
        self.source = source
        self.corrupt = corrupt
        self.calls: list[tuple[str, str]] = []
        self.progress: list[tuple[int, int]] = []

    def repo_dir(self, repo: str) -> Path:
        return self.source

    def __call__(
        self,
        repo: str,
        revision: str,
        files: Sequence[str],
        dest: Path,
        progress: models.ProgressCallback,
    ) -> None:
        self.calls.append((repo, revision))
        (dest / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)  # hub metadata
        for done, name in enumerate(files, start=1):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.repo_dir(repo) / name, target)
            target.chmod(0o600)
            if self.corrupt in (f"{repo}:{name}", name):
                data = bytearray(target.read_bytes())
                data[len(data) // 2] ^= 0x01  # one flipped bit
                target.write_bytes(bytes(data))
            progress(done, len(files))
            self.progress.append((done, len(files)))


class LocalHub(LocalDownloader):
    """Several repos: `root/ORG/NAME/` is laid out like the hub repo ORG/NAME.

    `corrupt` is `ORG/NAME:path/in/repo`.
    """

    def repo_dir(self, repo: str) -> Path:
        return self.source / repo


def test_pull_downloads_the_pinned_revision_and_verifies(
    tmp_path: Path, repo_dir: Path, pinned: CatalogEntry, catalog: Catalog
) -> None:
    download = LocalDownloader(repo_dir)
    path = models.pull(MODEL, tmp_path / "weights", download=download, catalog=catalog)
    assert path == tmp_path / "weights" / MODEL
    assert download.calls == [(pinned.repo, REVISION)]
    assert download.progress[-1] == (3, 3)
    assert compute_manifest(path) == pinned.manifest  # the hub's .cache is not left inside
    assert not (tmp_path / "weights" / ".partial" / MODEL).exists()
    # Runner containers read the weights as an unprivileged user.
    assert all(p.stat().st_mode & 0o004 for p in path.rglob("*"))
    assert models.check(MODEL, tmp_path / "weights", catalog=catalog).state == "verified"


def test_pull_refuses_a_corrupted_file_naming_it_and_both_hashes(
    tmp_path: Path, repo_dir: Path, pinned: CatalogEntry, catalog: Catalog
) -> None:
    name = "transformer/diffusion_pytorch_model.safetensors"
    download = LocalDownloader(repo_dir, corrupt=name)
    with pytest.raises(WeightsInvalid) as info:
        models.pull(MODEL, tmp_path / "weights", download=download, catalog=catalog)
    message = str(info.value)
    assert name in message
    assert pinned.manifest[name] in message  # expected
    staged = tmp_path / "weights" / ".partial" / MODEL / name
    assert hashlib.sha256(staged.read_bytes()).hexdigest() in message  # actual
    assert "framecast node models pull" in message  # the fix
    assert not (tmp_path / "weights" / MODEL).exists(), "unverified weights were put in place"


def test_missing_file_after_download_is_refused(
    tmp_path: Path, repo_dir: Path, catalog: Catalog
) -> None:
    (repo_dir / "transformer" / "config.json").unlink()

    def partial_download(
        repo: str, revision: str, files: Sequence[str], dest: Path, progress: object
    ) -> None:
        for name in files:
            if (repo_dir / name).exists():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(repo_dir / name, dest / name)

    with pytest.raises(WeightsInvalid, match=r"transformer/config\.json is missing"):
        models.pull(MODEL, tmp_path / "weights", download=partial_download, catalog=catalog)


def test_tiny_and_unpinned_entries_cannot_be_pulled(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="built locally") as info:
        models.pull("tiny-cogvideox", tmp_path, download=LocalDownloader(tmp_path))
    assert "tiny build --family cogvideox" in str(info.value)
    unpinned = next(
        (e for e in models.load_catalog().models.values() if not e.tiny and not e.pinned), None
    )
    if unpinned is not None:
        with pytest.raises(PipelineError, match="no pinned revision"):
            models.pull(unpinned.id, tmp_path, download=LocalDownloader(tmp_path))


def test_check_reports_verified_corrupted_and_missing(
    tmp_path: Path, repo_dir: Path, catalog: Catalog
) -> None:
    root = tmp_path / "weights"
    assert models.check(MODEL, root, catalog=catalog).state == "missing"
    models.pull(MODEL, root, download=LocalDownloader(repo_dir), catalog=catalog)
    shard = root / MODEL / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(shard.read_bytes())
    data[0] ^= 0xFF
    shard.write_bytes(bytes(data))
    status = models.check(MODEL, root, catalog=catalog)
    assert status.state == "invalid"
    assert status.problem is not None and "diffusion_pytorch_model.safetensors" in status.problem


def test_cli_list_and_pull(
    tmp_path: Path, repo_dir: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI reads the packaged catalog; here it reads the one with the pinned entry.
    monkeypatch.setattr(models, "load_catalog", lambda: catalog)
    root = tmp_path / "weights"
    runner = CliRunner()
    empty = runner.invoke(node_group, ["models", "list", "--weights-dir", str(root)])
    assert empty.exit_code == 0 and "no models" in empty.output

    monkeypatch.setattr(models, "hub_download", LocalDownloader(repo_dir))
    pulled = runner.invoke(node_group, ["models", "pull", MODEL, "--weights-dir", str(root)])
    assert pulled.exit_code == 0, pulled.output
    assert "verified" in pulled.output

    listed = runner.invoke(node_group, ["models", "list", "--json", "--weights-dir", str(root)])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["id"], r["state"], r["files"]) for r in rows] == [(MODEL, "verified", 3)]

    table = runner.invoke(node_group, ["models", "list", "--all", "--weights-dir", str(root)])
    assert "verified" in table.output and "missing" in table.output


# -- components (a ControlNet from its own repo) and style LoRAs ----------------------------

POSE = "text2video-zero-pose"
SD_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
CN_REPO = "lllyasviel/sd-controlnet-openpose"
CN_REVISION = "2" * 40
LORA_REPO = "someone/pose-lora"
LORA_FILE = "pose-style.safetensors"


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    """Stand-ins for the base model's repo, the ControlNet's repo and a LoRA's repo."""
    root = tmp_path / "hub"
    write_files(
        root / SD_REPO,
        {
            "model_index.json": b'{"_class_name": "StableDiffusionPipeline"}',
            "unet/config.json": b"{}",
            "unet/diffusion_pytorch_model.safetensors": bytes(range(256)) * 4_000,
        },
    )
    write_files(
        root / CN_REPO,
        {
            "config.json": b'{"_class_name": "ControlNetModel"}',
            "diffusion_pytorch_model.safetensors": bytes(reversed(range(256))) * 4_000,
            "README.md": b"not pinned, so not downloaded",
        },
    )
    write_files(root / LORA_REPO, {LORA_FILE: b"lora weights " * 1_000})
    return root


def pinned_pose(hub: Path, subdir: str = "") -> CatalogEntry:
    """The real pose entry with its base model and ControlNet pinned to the stand-in repos."""
    entry = get_entry(POSE)
    controlnet = entry.components["controlnet"].model_copy(
        update={
            "revision": CN_REVISION,
            "subdir": subdir,
            "manifest": {
                name: sha
                for name, sha in compute_manifest(hub / CN_REPO / subdir).items()
                if name != "README.md"
            },
        }
    )
    return entry.model_copy(
        update={
            "revision": REVISION,
            "manifest": compute_manifest(hub / SD_REPO),
            "components": {"controlnet": controlnet},
        }
    )


def pose_styles(hub: Path, catalog: Catalog, store: LocalStore) -> Catalog:
    """Two styles trained on the pose entry (a LoRA by hub revision, one by CID), one not."""
    by_repo = Style(
        id="posed",
        name="posed",
        prompt_template="{prompt}, posed",
        guidance_milli=7500,
        families=["text2video-zero"],
        lora=LoraAdapter(
            repo=LORA_REPO,
            revision="3" * 40,
            file=LORA_FILE,
            base_model=POSE,
            sha256=file_sha256(hub / LORA_REPO / LORA_FILE),
        ),
    )
    cid_file = hub / "by-cid.safetensors"
    cid_file.write_bytes(b"cid lora " * 500)
    cid = str(store.add_path(cid_file))
    by_cid = Style(
        id="pinned-by-cid",
        name="by cid",
        prompt_template="{prompt}",
        guidance_milli=7500,
        families=["text2video-zero"],
        lora=LoraAdapter(
            cid=cid, file="by-cid.safetensors", base_model=POSE, sha256=file_sha256(cid_file)
        ),
    )
    styles = {**catalog.styles, by_repo.id: by_repo, by_cid.id: by_cid}
    return catalog.model_copy(update={"styles": styles})


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "blocks")


@pytest.mark.parametrize("subdir", ["", "openpose"])
def test_pull_places_the_controlnet_where_the_runner_loads_it(
    tmp_path: Path, hub: Path, subdir: str
) -> None:
    if subdir:  # a repo that keeps the ControlNet in a subfolder
        source = hub / CN_REPO
        moved = source.parent / "moved"
        source.rename(moved)
        source.mkdir()
        moved.rename(source / subdir)
    entry = pinned_pose(hub, subdir)
    catalog = with_entry(entry)
    download = LocalHub(hub)
    root = tmp_path / "weights"
    path = models.pull(POSE, root, download=download, catalog=catalog)

    assert download.calls == [(SD_REPO, REVISION), (CN_REPO, CN_REVISION)]
    # The runner loads the ControlNet from MODEL_DIR/CONTROLNET_DIR (the shared constant).
    assert entry.component_dir("controlnet") == CONTROLNET_DIR == "controlnet"
    assert (path / CONTROLNET_DIR / "config.json").read_bytes() == (
        hub / CN_REPO / subdir / "config.json"
    ).read_bytes()
    assert compute_manifest(path) == entry.full_manifest()  # no README, no .cache, no subdir
    assert download.progress[-1] == (2, 2)
    status = models.check(POSE, root, catalog=catalog)
    assert status.state == "verified", status.problem


def test_pull_progress_counts_every_file_of_every_repo(tmp_path: Path, hub: Path) -> None:
    seen: list[tuple[int, int]] = []
    catalog = with_entry(pinned_pose(hub))
    models.pull(
        POSE,
        tmp_path / "weights",
        download=LocalHub(hub),
        catalog=catalog,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_corrupted_controlnet_file_fails_naming_it_and_nothing_is_put_in_place(
    tmp_path: Path, hub: Path
) -> None:
    entry = pinned_pose(hub)
    catalog = with_entry(entry)
    root = tmp_path / "weights"
    bad = LocalHub(hub, corrupt=f"{CN_REPO}:diffusion_pytorch_model.safetensors")
    with pytest.raises(WeightsInvalid) as info:
        models.pull(POSE, root, download=bad, catalog=catalog)
    name = "controlnet/diffusion_pytorch_model.safetensors"
    message = str(info.value)
    assert name in message
    assert entry.full_manifest()[name] in message  # expected
    staged = root / ".partial" / POSE / name
    assert file_sha256(staged) in message  # actual
    assert not (root / POSE).exists(), "unverified weights were put in place"

    # A verified copy already in place survives a failed re-pull untouched.
    models.pull(POSE, root, download=LocalHub(hub), catalog=catalog)
    before = compute_manifest(root / POSE)
    with pytest.raises(WeightsInvalid):
        models.pull(POSE, root, download=bad, catalog=catalog)
    assert compute_manifest(root / POSE) == before


def test_an_unpinned_component_refuses_the_pull_naming_its_manifest(
    tmp_path: Path, hub: Path
) -> None:
    entry = pinned_pose(hub)
    unpinned = entry.components["controlnet"].model_copy(update={"revision": None})
    catalog = with_entry(entry.model_copy(update={"components": {"controlnet": unpinned}}))
    with pytest.raises(PipelineError, match=r"component controlnet \(lllyasviel") as info:
        models.pull(POSE, tmp_path, download=LocalHub(hub), catalog=catalog)
    assert f"manifests/{POSE}/controlnet.json" in str(info.value)


def test_pull_places_the_loras_of_the_styles_trained_on_the_model(
    tmp_path: Path, hub: Path, store: LocalStore
) -> None:
    catalog = pose_styles(hub, with_entry(pinned_pose(hub)), store)
    assert [s.id for s in models.lora_styles(catalog.models[POSE], catalog)] == [
        "pinned-by-cid",
        "posed",
    ]
    root = tmp_path / "weights"
    download = LocalHub(hub)
    path = models.pull(
        POSE, root, download=download, fetch_cid=models.store_fetcher(store), catalog=catalog
    )
    assert (path / LORA_DIR / LORA_FILE).read_bytes() == (hub / LORA_REPO / LORA_FILE).read_bytes()
    assert (path / LORA_DIR / "by-cid.safetensors").read_bytes() == (
        hub / "by-cid.safetensors"
    ).read_bytes()
    assert (LORA_REPO, "3" * 40) in download.calls
    assert not (path / LORA_DIR / ".cache").exists()
    status = models.check(POSE, root, catalog=catalog)
    assert status.state == "verified", status.problem
    assert status.styles == ("pinned-by-cid", "posed")

    # Without a store, a LoRA pinned by CID cannot be fetched: refused before any download.
    with pytest.raises(PipelineError, match="pinned-by-cid are pinned by CID"):
        models.pull(POSE, tmp_path / "other", download=LocalHub(hub), catalog=catalog)


def test_corrupted_lora_fails_the_pull_naming_file_and_both_hashes(
    tmp_path: Path, hub: Path, store: LocalStore
) -> None:
    catalog = pose_styles(hub, with_entry(pinned_pose(hub)), store)
    root = tmp_path / "weights"
    with pytest.raises(WeightsInvalid) as info:
        models.pull(
            POSE,
            root,
            download=LocalHub(hub, corrupt=f"{LORA_REPO}:{LORA_FILE}"),
            fetch_cid=models.store_fetcher(store),
            catalog=catalog,
        )
    message = str(info.value)
    lora = catalog.styles["posed"].lora
    assert lora is not None
    assert f"{LORA_DIR}/{LORA_FILE}" in message and "style posed" in message
    assert lora.sha256 in message
    assert file_sha256(root / ".partial" / POSE / LORA_DIR / LORA_FILE) in message
    assert not (root / POSE).exists()


def test_models_list_reports_missing_lora_and_corrupted_controlnet(
    tmp_path: Path, hub: Path, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = pose_styles(hub, with_entry(pinned_pose(hub)), store)
    root = tmp_path / "weights"
    models.pull(
        POSE,
        root,
        download=LocalHub(hub),
        fetch_cid=models.store_fetcher(store),
        catalog=catalog,
    )
    monkeypatch.setattr(models, "load_catalog", lambda: catalog)
    runner = CliRunner()

    def listed() -> dict[str, object]:
        result = runner.invoke(node_group, ["models", "list", "--json", "--weights-dir", str(root)])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.output)
        assert [r["id"] for r in rows] == [POSE]
        row: dict[str, object] = rows[0]
        return row

    assert listed()["state"] == "verified"
    assert listed()["styles"] == ["pinned-by-cid", "posed"]

    lora = root / POSE / LORA_DIR / LORA_FILE
    lora.chmod(0o644)
    lora.unlink()
    row = listed()
    assert row["state"] == "incomplete" and row["styles"] == ["pinned-by-cid"]
    sha = catalog.styles["posed"].lora.sha256  # type: ignore[union-attr]
    assert isinstance(row["problem"], str)
    assert LORA_FILE in row["problem"] and "missing" in row["problem"] and sha in row["problem"]

    shard = root / POSE / CONTROLNET_DIR / "diffusion_pytorch_model.safetensors"
    shard.chmod(0o644)
    shard.write_bytes(b"truncated")
    row = listed()
    assert row["state"] == "invalid"
    assert isinstance(row["problem"], str)
    assert "controlnet/diffusion_pytorch_model.safetensors" in row["problem"]
    expected = catalog.models[POSE].full_manifest()[
        "controlnet/diffusion_pytorch_model.safetensors"
    ]
    assert expected in row["problem"] and file_sha256(shard) in row["problem"]

    table = runner.invoke(node_group, ["models", "list", "--weights-dir", str(root)])
    assert table.exit_code == 0 and "invalid" in table.output


@pytest.mark.slow  # builds, pulls and runs a pose model in a runner
def test_runner_runs_a_pose_job_with_the_controlnet_the_pull_placed(tmp_path: Path) -> None:
    """Pull the tiny pose model from stand-in repos (base pipeline and ControlNet apart, as
    on the hub), then run a pose job on it through the real runner in a subprocess."""
    built = build_tiny("t2v-zero-controlnet", tmp_path / "built")
    # The base pipeline names no ControlNet: the runner can only get it from its folder.
    assert "controlnet" not in json.loads((built / "model_index.json").read_text())
    hub = tmp_path / "hub"
    shutil.copytree(built / CONTROLNET_DIR, hub / "test" / "tiny-controlnet")
    shutil.copytree(built, hub / "test" / "tiny-sd", ignore=shutil.ignore_patterns("controlnet"))
    tiny = get_entry("tiny-t2v-zero-pose")
    pullable = tiny.model_copy(
        update={
            "tiny": None,
            "repo": "test/tiny-sd",
            "revision": REVISION,
            "components": {
                "controlnet": tiny.components["controlnet"].model_copy(
                    update={"repo": "test/tiny-controlnet", "revision": CN_REVISION}
                )
            },
        }
    )
    root = tmp_path / "weights"
    model_dir = models.pull(tiny.id, root, download=LocalHub(hub), catalog=with_entry(pullable))

    job_dir = tmp_path / "job"
    job_dir.mkdir()
    cid = put_video(job_dir / "inputs", moving_square())
    spec = default_spec(
        tiny.id, TINY_PROMPT, inputs={"control": cid}, num_frames=4, seed=7, steps=2
    )
    runtime = ProcessRuntime(log_dir=tmp_path / "logs")
    try:

        def run(name: str, weights: Path) -> RunnerEvent:
            request = RunRequest(
                job_id=name,
                spec=spec,
                model_dir=str(weights),
                output_dir=str(job_dir / name),
                inputs_dir=str(job_dir / "inputs"),
            )
            return runtime.run(request, job_dir=job_dir, on_event=lambda _e: None, timeout_s=120)

        done = run("pose", model_dir)
        assert done.status == "succeeded", done.error
        assert done.output is not None and done.output.num_frames == 4
        assert (job_dir / "pose" / "video.mp4").stat().st_size > 0

        # Without the ControlNet in its folder the same job fails on that file, by name.
        broken = tmp_path / "broken"
        shutil.copytree(model_dir, broken)
        (broken / CONTROLNET_DIR / "config.json").unlink()
        failed = run("broken", broken)
        assert failed.error is not None and failed.error.kind == "weights"
        assert "controlnet/config.json is missing" in failed.error.message
    finally:
        runtime.close()
