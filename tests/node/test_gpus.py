"""GPU detection (nvidia-smi output as the driver prints it) and the memory profile each
catalog entry gets on described cards, against the real catalog data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from framecast.node.gpus import BANNER, QUERY, detect_gpus, parse_query, plan_model, require_plans
from framecast.shared.catalog import get_entry, load_catalog
from framecast.shared.catalog.fit import REFERENCE_CARDS, GpuCard, choose_profile
from framecast.shared.errors import ConfigError, PipelineError

# What `nvidia-smi --query-gpu=index,name,memory.total,driver_version
# --format=csv,noheader,nounits` prints on a two-GPU host, and the banner of plain nvidia-smi.
QUERY_OUTPUT = (
    "0, NVIDIA GeForce RTX 4090, 24564, 550.54.14\n1, NVIDIA H100 80GB HBM3, 81559, 550.54.14\n"
)
BANNER_OUTPUT = """\
Thu Dec  3 13:00:00 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.14              Driver Version: 550.54.14      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
"""

RTX_4060 = GpuCard(name="NVIDIA GeForce RTX 4060", memory_mib=8188, driver="550.54.14", cuda="12.4")
RTX_4090 = GpuCard(
    name="NVIDIA GeForce RTX 4090", memory_mib=24564, driver="550.54.14", cuda="12.4"
)


def test_parse_query_reads_every_card_with_driver_and_cuda() -> None:
    cards = parse_query(QUERY_OUTPUT, BANNER_OUTPUT)
    assert [(c.index, c.name, c.memory_mib, c.driver, c.cuda) for c in cards] == [
        (0, "NVIDIA GeForce RTX 4090", 24564, "550.54.14", "12.4"),
        (1, "NVIDIA H100 80GB HBM3", 81559, "550.54.14", "12.4"),
    ]
    assert cards[0].memory_gib == pytest.approx(23.99, abs=0.01)


def test_detect_runs_the_query_and_the_banner() -> None:
    asked: list[list[str]] = []

    def run(command: Sequence[str]) -> str:
        asked.append(list(command))
        return QUERY_OUTPUT if command == QUERY else BANNER_OUTPUT

    assert [c.name for c in detect_gpus(run)] == [
        "NVIDIA GeForce RTX 4090",
        "NVIDIA H100 80GB HBM3",
    ]
    assert asked == [QUERY, BANNER]


def test_without_nvidia_smi_a_host_without_nvidia_devices_has_no_gpus() -> None:
    def missing(command: Sequence[str]) -> str:
        raise FileNotFoundError(command[0])

    assert detect_gpus(missing) == []  # this machine has no /dev/nvidia0


def test_a_line_nvidia_smi_cannot_have_printed_is_refused_in_one_line() -> None:
    with pytest.raises(PipelineError, match="nvidia-smi printed a line"):
        parse_query("0, NVIDIA GeForce RTX 4090, [N/A], 550.54.14\n")


@pytest.mark.parametrize("card", REFERENCE_CARDS, ids=lambda c: c.name)
def test_every_entry_gets_its_first_fitting_profile_and_bigger_cards_never_do_worse(
    card: GpuCard,
) -> None:
    for entry in load_catalog().models.values():
        profile = choose_profile(entry, card)
        profiles = entry.memory_profiles()
        fitting = [p for p in profiles if p.vram_gb * 1024 <= card.memory_mib]
        assert profile == (fitting[0] if fitting else None)
        bigger = [c for c in REFERENCE_CARDS if c.memory_mib > card.memory_mib]
        for other in bigger:
            better = choose_profile(entry, other)
            if profile is not None:
                assert better is not None
                assert profiles.index(better) <= profiles.index(profile)


def test_a_node_with_two_cards_runs_a_model_on_the_card_giving_its_best_profile() -> None:
    plan = plan_model(get_entry("cogvideox-5b"), [RTX_4060, RTX_4090])
    assert plan is not None and plan.card == RTX_4090
    assert plan.profile == choose_profile(get_entry("cogvideox-5b"), RTX_4090)


def test_a_card_too_small_for_every_profile_says_which_cards_would_fit() -> None:
    tiny_card = GpuCard(name="NVIDIA GeForce GTX 1050", memory_mib=2048, driver="550.54.14")
    with pytest.raises(ConfigError) as caught:
        require_plans([get_entry("open-sora-2.0"), get_entry("cogvideox-2b")], [tiny_card])
    message = caught.value.message
    assert "open-sora-2.0 needs at least 60 GiB" in message and "80 GB: full" in message
    assert "GTX 1050 (2.0 GiB)" in message
    smallest = min(p.vram_gb for p in get_entry("cogvideox-2b").memory_profiles())
    assert f"cogvideox-2b needs at least {smallest:g} GiB" in message


def test_models_that_fit_are_served_and_the_rest_are_named() -> None:
    plans, refused = require_plans([get_entry("open-sora-2.0"), get_entry("ltx-video")], [RTX_4090])
    assert list(plans) == ["ltx-video"] and list(refused) == ["open-sora-2.0"]


def test_an_operator_profile_must_exist_and_fit() -> None:
    entry = get_entry("ltx-video")
    forced = plan_model(entry, [RTX_4090], wanted="group-offload-tiled")
    assert forced is not None and forced.profile.name == "group-offload-tiled"
    assert plan_model(entry, [RTX_4060], wanted="full") is None
    with pytest.raises(ConfigError, match="has no memory profile 'huge'"):
        plan_model(entry, [RTX_4090], wanted="huge")


def test_a_cpu_host_serves_cpu_entries_only_and_never_a_gpu_profile() -> None:
    tiny = plan_model(get_entry("tiny-cogvideox"), [])
    assert tiny is not None and tiny.card is None and tiny.profile.name == "full"
    assert plan_model(get_entry("tiny-cogvideox"), [], wanted="int8") is None
    assert plan_model(get_entry("cogvideox-2b"), []) is None


def test_the_agent_serves_the_configured_models_that_fit_and_logs_the_rest(
    make_agent: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # This machine has no GPU: the tiny model runs on the CPU, Open-Sora (60 GiB) does not.
    agent = make_agent(
        models=["tiny-cogvideox", "open-sora-2.0"],
        memory_profiles={"tiny-cogvideox": "vae-slicing"},
    )
    with caplog.at_level("INFO", logger="framecast.node.agent"):
        agent.startup()
    assert list(agent.plans) == ["tiny-cogvideox"]
    assert agent.plans["tiny-cogvideox"].profile.name == "vae-slicing"
    assert "not serving: open-sora-2.0 needs at least 60 GiB" in caplog.text
    assert "serving tiny-cogvideox with memory profile vae-slicing" in caplog.text


def test_an_agent_whose_models_fit_nowhere_refuses_to_start(make_agent: Any) -> None:
    agent = make_agent(models=["open-sora-2.0"])
    with pytest.raises(ConfigError, match="none of the models this node is configured to serve"):
        agent.startup()
