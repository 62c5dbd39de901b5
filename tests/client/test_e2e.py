"""End to end through the installed console script, in subprocesses, against anvil."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from framecast.client.devnet import devnet_account
from tests.client.conftest import FRAMECAST, PASSWORD, TEST_SCRYPT_N
from tests.conftest import Chain


@pytest.mark.slow  # six console-script subprocesses, each paying the CLI start
def test_wallet_and_credits_through_the_console_script(
    on_chain: Chain, client_env: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "FRAMECAST_HOME": str(client_env),
        "FRAMECAST_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "FRAMECAST_KEYSTORE_SCRYPT_N": str(TEST_SCRYPT_N),
        "FRAMECAST_PASSWORD": PASSWORD,
        "NO_COLOR": "1",
    }

    def framecast(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(FRAMECAST), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == code, done.stdout + done.stderr
        return done

    framecast("wallet", "import", "--devnet", "bob")
    bob = devnet_account("bob").address
    assert framecast("wallet", "address").stdout.strip() == bob
    framecast("credits", "faucet")
    framecast("credits", "deposit", "--amount", "40")
    balance = json.loads(framecast("credits", "balance", "--json").stdout)
    assert int(balance["free"]) == 40 * 10**18
    assert [r["what"] for r in json.loads(framecast("credits", "history", "--json").stdout)] == [
        "minted",
        "faucet",
        "deposit",
    ]
    # A user error is one red line on stderr and exit code 1, with the balance and the fix.
    failed = framecast("credits", "withdraw", "--amount", "41", code=1)
    assert failed.stderr.startswith("error: ")
    assert len(failed.stderr.strip().splitlines()) == 1
    assert "40 FCC free" in failed.stderr and "framecast credits faucet" in failed.stderr
    assert "Traceback" not in failed.stderr
