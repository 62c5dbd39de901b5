"""`framecast catalog fit`: the profile table, from the catalog data, through the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from framecast.shared.catalog import load_catalog
from framecast.shared.catalog.fit import REFERENCE_CARDS, REFERENCE_SIZES_GB, choose_profile

FRAMECAST = str(Path(sys.executable).parent / "framecast")


def test_fit_json_is_the_choice_for_every_entry_on_every_reference_card() -> None:
    done = subprocess.run(
        [FRAMECAST, "catalog", "fit", "--json"], capture_output=True, text=True, check=True
    )
    table = json.loads(done.stdout)
    assert [c["size"] for c in table["cards"]] == [f"{s}G" for s in REFERENCE_SIZES_GB]
    hub_entries = [e for e in load_catalog().models.values() if e.tiny is None]
    assert sorted(table["models"]) == sorted(e.id for e in hub_entries)
    for entry in hub_entries:
        for size, card in zip(REFERENCE_SIZES_GB, REFERENCE_CARDS, strict=True):
            profile = choose_profile(entry, card)
            cell = table["models"][entry.id][f"{size}G"]
            assert cell == (
                None if profile is None else {"profile": profile.name, "numerics": profile.numerics}
            )


def test_fit_for_a_given_card_marks_profiles_that_change_numerics() -> None:
    done = subprocess.run(
        [FRAMECAST, "catalog", "fit", "--gpu-mib", "8188"],
        capture_output=True,
        text=True,
        check=True,
    )
    row = next(line for line in done.stdout.splitlines() if "cogvideox-5b " in line)
    assert "group-offload-tiled *" in row  # VAE tiling: another numerics class
    wan = next(line for line in done.stdout.splitlines() if "wan2.1-t2v-1.3b" in line)
    assert "group-offload" in wan and "*" not in wan  # offload keeps the frames
