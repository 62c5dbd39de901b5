"""`framecast catalog pin` and `node models pull` against a STAND-IN for the Hugging Face
hub (tests/catalog/hub_standin.py: a real HTTP server on 127.0.0.1 answering the hub's API
as huggingface_hub reads it), since the hub cannot be reached from these machines.

The repo served is the tiny CogVideoX pipeline built with `save_pretrained`, plus what
real repos carry besides (a README, an fp16 variant, a .bin copy): a pin must select
exactly the files the pipeline loads, whose manifest is then the committed tiny one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.client.catalog import HubClient, pin, set_keys
from framecast.node.models import pull
from framecast.shared.catalog import DATA_DIR, read_catalog
from framecast.shared.catalog.weights import compute_manifest
from framecast.shared.errors import ConfigError, WeightsInvalid
from tests.catalog.hub_standin import StandinRepo, serve_hub

FRAMECAST = str(Path(sys.executable).parent / "framecast")
REPO = "framecast-test/tiny-cogvideox"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
ENTRY = f'''
[[model]]
id = "standin-cogvideox"
name = "tiny CogVideoX from the hub stand-in"
family = "cogvideox"
pipeline = "CogVideoXPipeline"
repo = "{REPO}"
image = "framecast/runner-diffusers"
vram_gb = 0
dtype = "float32"
requires_gpu = false
tasks = ["text-to-video"]
max_prompt_tokens = 16
frames = {{ min = 5, max = 17, multiple = 4, offset = 1 }}
width = {{ min = 16, max = 64, multiple = 16 }}
height = {{ min = 16, max = 64, multiple = 16 }}
steps = {{ min = 1, max = 50 }}
fps = {{ min = 1, max = 60 }}
guidance_milli = {{ min = 0, max = 20000 }}
defaults = {{ num_frames = 9, width = 32, height = 32, steps = 2, fps = 8, guidance_milli = 6000 }}
'''


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """A copy of the packaged catalog with one more entry, unpinned, whose repo the
    stand-in serves."""
    target = tmp_path / "catalog"
    target.mkdir()
    shutil.copytree(DATA_DIR / "manifests", target / "manifests")
    text = (DATA_DIR / "models.toml").read_text(encoding="utf-8")
    style_at = text.index("[[style]]")
    (target / "models.toml").write_text(text[:style_at] + ENTRY + "\n" + text[style_at:])
    return target


@pytest.fixture
def repo(tiny_cogvideox_dir: Path) -> StandinRepo:
    weights = (
        tiny_cogvideox_dir / "transformer" / "diffusion_pytorch_model.safetensors"
    ).read_bytes()
    return StandinRepo.from_dir(
        tiny_cogvideox_dir,
        COMMIT,
        extra={
            "README.md": b"# tiny\n",
            ".gitattributes": b"*.safetensors filter=lfs\n",
            "transformer/diffusion_pytorch_model.fp16.safetensors": weights[: len(weights) // 2],
            "vae/diffusion_pytorch_model.bin": b"legacy pickle",
        },
    )


@pytest.fixture
def hub(repo: StandinRepo, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with serve_hub({REPO: repo}) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield endpoint


def test_pin_resolves_main_and_writes_the_pipeline_files_with_their_sha256(
    hub: str, catalog_dir: Path, repo: StandinRepo, tiny_cogvideox_dir: Path
) -> None:
    result = pin("standin-cogvideox", catalog_dir=catalog_dir, hub=HubClient(hub))
    entry = read_catalog(catalog_dir).models["standin-cogvideox"]
    assert entry.revision == COMMIT
    assert entry.pinned
    # Exactly what from_pretrained loads: no README, no fp16 variant, no .bin copy.
    assert entry.manifest == compute_manifest(tiny_cogvideox_dir)
    committed = json.loads((DATA_DIR / "manifests" / "tiny-cogvideox.json").read_text())
    assert entry.manifest == committed
    assert entry.weights_bytes == sum(len(repo.files[n]) for n in entry.manifest)
    # Weights came from the LFS metadata; configs and the tokenizer were downloaded.
    part = result.parts[0]
    assert part.hashed_locally == sum(1 for n in entry.manifest if not n.endswith(".safetensors"))
    assert not any("diffusion_pytorch_model.safetensors" in s and "resolve" in s for s in repo.seen)
    # The comments of models.toml are kept.
    assert "# The framecast model catalog" in (catalog_dir / "models.toml").read_text()


def test_pull_downloads_the_pinned_commit_from_the_hub_and_verifies(
    hub: str, catalog_dir: Path, tmp_path: Path, repo: StandinRepo
) -> None:
    pin("standin-cogvideox", revision="main", catalog_dir=catalog_dir, hub=HubClient(hub))
    catalog = read_catalog(catalog_dir)
    # The real downloader (huggingface_hub.snapshot_download), HF_ENDPOINT read at call time.
    path = pull("standin-cogvideox", tmp_path / "weights", catalog=catalog)
    assert compute_manifest(path) == catalog.models["standin-cogvideox"].manifest
    assert any(f"/resolve/{COMMIT}/" in s for s in repo.seen)  # the commit, not "main"


def test_weights_changed_after_pinning_fail_the_pull_with_expected_and_actual(
    hub: str, catalog_dir: Path, tmp_path: Path, repo: StandinRepo
) -> None:
    pin("standin-cogvideox", catalog_dir=catalog_dir, hub=HubClient(hub))
    catalog = read_catalog(catalog_dir)
    name = "vae/diffusion_pytorch_model.safetensors"
    expected = catalog.models["standin-cogvideox"].manifest[name]
    repo.files[name] = repo.files[name][:-1] + b"\x00"
    with pytest.raises(WeightsInvalid) as caught:
        pull("standin-cogvideox", tmp_path / "weights", catalog=catalog)
    assert caught.value.context["expected"] == expected
    assert caught.value.context["actual"] not in (None, expected)
    assert name in caught.value.message
    assert not (tmp_path / "weights" / "standin-cogvideox").exists()


def test_a_revision_that_does_not_exist_is_refused_and_nothing_is_written(
    hub: str, catalog_dir: Path
) -> None:
    before = (catalog_dir / "models.toml").read_text()
    with pytest.raises(ConfigError, match=r"revision 'v9' does not exist in framecast-test/"):
        pin("standin-cogvideox", revision="v9", catalog_dir=catalog_dir, hub=HubClient(hub))
    assert (catalog_dir / "models.toml").read_text() == before
    assert not (catalog_dir / "manifests" / "standin-cogvideox.json").exists()


def test_a_component_missing_from_the_hub_listing_is_named(
    hub: str, catalog_dir: Path, repo: StandinRepo
) -> None:
    for name in [n for n in repo.files if n.startswith("vae/")]:
        del repo.files[name]
    with pytest.raises(WeightsInvalid, match=r"names component 'vae'.*no vae/ files"):
        pin("standin-cogvideox", catalog_dir=catalog_dir, hub=HubClient(hub))


def test_cli_pin_through_the_console_script(hub: str, catalog_dir: Path) -> None:
    env = {**os.environ, "HF_ENDPOINT": hub}
    done = subprocess.run(
        [FRAMECAST, "catalog", "pin", "standin-cogvideox",
         "--catalog-dir", str(catalog_dir), "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["parts"][0]["revision"] == COMMIT
    bad = subprocess.run(
        [FRAMECAST, "catalog", "pin", "standin-cogvideox",
         "--revision", "nope", "--catalog-dir", str(catalog_dir)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: revision 'nope' does not exist")
    assert "Traceback" not in bad.stderr


def test_set_keys_replaces_or_inserts_within_the_entry_only() -> None:
    text = (DATA_DIR / "models.toml").read_text()
    once = set_keys(text, "text2video-zero-pose", None, {"revision": "a" * 40})
    twice = set_keys(once, "text2video-zero-pose", None, {"revision": "b" * 40})
    assert twice.count('revision = "' + "b" * 40 + '"') == 1 and "a" * 40 not in twice
    with_component = set_keys(twice, "text2video-zero-pose", "controlnet", {"revision": "c" * 40})
    import tomllib

    models = {m["id"]: m for m in tomllib.loads(with_component)["model"]}
    assert models["text2video-zero-pose"]["revision"] == "b" * 40
    assert models["text2video-zero-pose"]["components"]["controlnet"]["revision"] == "c" * 40
    assert "revision" not in models["text2video-zero-edge"]["components"]["controlnet"]


def test_a_hub_that_does_not_answer_is_one_error_naming_it(catalog_dir: Path) -> None:
    from framecast.shared.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match=r"the hub at http://127.0.0.1:9 failed"):
        pin("standin-cogvideox", catalog_dir=catalog_dir, hub=HubClient("http://127.0.0.1:9"))
