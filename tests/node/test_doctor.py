"""`framecast node doctor` against real parts: anvil with the real contracts, the node's
keystore on disk, described GPUs, the real Docker probe where a daemon runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from framecast.node.config import NodeSettings
from framecast.node.doctor import MIN_DRIVER, check_driver, run_doctor
from framecast.shared.catalog.fit import GpuCard
from framecast.shared.errors import PipelineError
from framecast.shared.ipfs.store import StoreSettings
from framecast.shared.keystore import Secret, encrypt_key, write_keystore
from tests.chain.conftest import register
from tests.conftest import Chain

RTX_4060 = GpuCard(name="NVIDIA GeForce RTX 4060", memory_mib=8188, driver="550.54.14", cuda="12.4")
OLD = GpuCard(name="Tesla T4", memory_mib=15360, driver="470.57.02", cuda="11.4")


def _no_docker(_image: str) -> dict[str, Any]:
    raise AssertionError("runtime = process must not probe Docker")


@pytest.fixture
def node_settings(chain: Chain, tmp_path: Path, weights_dir: Path) -> NodeSettings:
    deployment_file = tmp_path / "deployment.json"
    chain.deployment.save(deployment_file)
    keystore = tmp_path / "provider.json"
    account = chain.account("provider-1")
    write_keystore(keystore, encrypt_key(bytes(account.key), Secret("pw"), scrypt_n=2))
    return NodeSettings(
        deployment=deployment_file,
        keystore=keystore,
        models=["tiny-cogvideox"],
        weights_dir=weights_dir,
        state_dir=tmp_path / "state",
        store=StoreSettings(store_path=tmp_path / "blocks"),
        http_bind="127.0.0.1:1",  # nothing listens there
    )


def _by_name(settings: NodeSettings, **kw: Any) -> dict[str, Any]:
    report = run_doctor(settings, detect=kw.pop("detect", list), probe=_no_docker, **kw)
    return {c.name: c for c in report.checks}


def test_a_registered_funded_cpu_node_passes_but_says_its_url_is_down(
    chain: Chain, node_settings: NodeSettings
) -> None:
    register(chain, "provider-1")
    checks = _by_name(node_settings)
    assert {n: c.status for n, c in checks.items()} == {
        "gpus": "ok", "driver": "ok", "docker": "ok", "fit": "ok", "disk": "ok",
        "weights": "warn", "chain": "ok", "key": "ok", "bond": "ok", "clock": "ok",
        "advertised": "warn",
    }  # fmt: skip
    assert "tiny-cogvideox: full" in checks["fit"].detail
    # The style LoRA trained on tiny-cogvideox is not in this weights folder.
    assert "incomplete" in checks["weights"].detail
    assert abs(checks["clock"].data["skew_s"]) < 5


def test_an_unregistered_provider_is_told_to_register_with_the_minimum_bond(
    node_settings: NodeSettings,
) -> None:
    checks = _by_name(node_settings)
    assert checks["bond"].status == "fail"
    assert "framecast node register --bond" in (checks["bond"].fix or "")


def test_gpu_models_on_a_small_card_say_which_fit_and_that_weights_are_missing(
    node_settings: NodeSettings,
) -> None:
    settings = node_settings.model_copy(update={"models": ["ltx-video", "open-sora-2.0"]})
    checks = _by_name(settings, detect=lambda: [RTX_4060], chain=False)
    fit = checks["fit"]
    assert fit.status == "warn"
    assert "open-sora-2.0 needs at least 60 GiB" in fit.detail and "80 GB: full" in fit.detail
    assert fit.data["plans"]["ltx-video"]["profile"] == "group-offload-tiled"
    assert fit.data["plans"]["ltx-video"]["numerics"] == "vae-tiling"
    assert checks["weights"].status == "fail" and "ltx-video: missing" in checks["weights"].detail


def test_a_driver_too_old_for_the_images_cuda_names_the_driver_to_install() -> None:
    failed = check_driver([OLD], "12.4")
    assert failed.status == "fail"
    assert "supports CUDA 11.4 (driver 470.57.02)" in failed.detail
    assert MIN_DRIVER["12.4"] in (failed.fix or "")
    # Without the card's CUDA report, the driver table decides.
    no_report = GpuCard(name="NVIDIA L4", memory_mib=23034, driver="535.54.03")
    assert check_driver([no_report], "12.4").status == "fail"
    assert check_driver([no_report], "12.2").status == "ok"
    assert check_driver([RTX_4060], "12.4").status == "ok"


def test_docker_without_the_nvidia_runtime_is_named(node_settings: NodeSettings) -> None:
    settings = node_settings.model_copy(update={"runtime": "docker", "docker_image": "runner:x"})

    def refusing(_image: str) -> dict[str, Any]:
        # What map_docker_error makes of the daemon's answer (see test below for the real one).
        raise PipelineError(
            "cannot start a GPU test container of runner:x: Docker has no GPU support here "
            '(500 Server Error: could not select device driver "" with capabilities: [[gpu]])'
        )

    report = run_doctor(settings, detect=lambda: [RTX_4060], probe=refusing, chain=False)
    docker = next(c for c in report.checks if c.name == "docker")
    assert docker.status == "fail" and docker.detail.startswith("Docker has no NVIDIA runtime")
    assert "nvidia-ctk runtime configure" in (docker.fix or "")


@pytest.mark.docker
def test_the_real_probe_on_a_daemon_without_nvidia_runtime(docker_client: Any) -> None:
    import io
    import tarfile

    from framecast.node.runtime.docker import probe_gpu

    # An empty image: the GPU request fails when the daemon picks a device driver, before
    # anything in the image would run.
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    docker_client.images.client.api.import_image_from_data(
        empty.getvalue(), repository="framecast-gpu-probe", tag="empty"
    )
    image = "framecast-gpu-probe:empty"
    try:
        with pytest.raises(PipelineError, match="could not select device driver") as caught:
            probe_gpu(docker_client, image)
        assert "GPU support" in caught.value.message
        assert docker_client.containers.list(all=True, filters={"ancestor": image}) == []
    finally:
        docker_client.images.remove(image, force=True)


def test_doctor_json_through_the_console_script(
    node_settings: NodeSettings, tmp_path: Path
) -> None:
    from framecast.node.config import render_toml

    config = tmp_path / "node.toml"
    forced = node_settings.model_copy(update={"memory_profiles": {"tiny-cogvideox": "vae-slicing"}})
    config.write_text(render_toml(forced))
    framecast = str(Path(sys.executable).parent / "framecast")
    done = subprocess.run(
        [framecast, "node", "doctor", "--config", str(config), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert done.returncode == 1  # not registered
    assert report["ok"] is False
    assert [c["name"] for c in report["checks"]][:4] == ["gpus", "driver", "docker", "fit"]
    assert next(c for c in report["checks"] if c["name"] == "bond")["status"] == "fail"
    fit = next(c for c in report["checks"] if c["name"] == "fit")
    assert fit["data"]["plans"]["tiny-cogvideox"]["profile"] == "vae-slicing"  # from node.toml
