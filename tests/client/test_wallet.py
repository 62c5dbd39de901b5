"""`framecast wallet`: keystores on disk, password sources, errors, and interop with
Foundry's `cast wallet` in both directions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from framecast.client.devnet import devnet_account
from framecast.client.wallet import GETH_SCRYPT_N, Keystores, Secret, parse_private_key
from framecast.shared.errors import WalletError
from tests.client.conftest import CAST, PASSWORD, TEST_SCRYPT_N, Cli

KEY = "0x" + "4c" * 32


def cast(*args: str) -> str:
    done = subprocess.run(
        [str(CAST), *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_new_writes_a_private_keystore_and_lists_it(cli: Cli, client_env: Path) -> None:
    created = cli.json("wallet", "new", "--name", "main")
    path = client_env / "keystores" / "main"
    assert Path(created["path"]) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["version"] == 3
    assert data["crypto"]["kdf"] == "scrypt"
    assert [(w["name"], w["address"]) for w in cli.json("wallet", "list")] == [
        ("main", created["address"])
    ]
    assert cli.json("wallet", "address") == {"name": "main", "address": created["address"]}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_new_uses_geth_scrypt_parameters_by_default(
    client_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one test at full cost: n=262144, r=8, p=1 as geth writes them.
    monkeypatch.delenv("FRAMECAST_KEYSTORE_SCRYPT_N")
    from framecast.client.config import ClientSettings

    settings = ClientSettings()
    assert settings.keystore_scrypt_n == GETH_SCRYPT_N
    keystores = Keystores(settings.keystores, scrypt_n=settings.keystore_scrypt_n)
    info = keystores.import_key("geth", Secret(KEY), Secret(PASSWORD))
    params = json.loads(info.path.read_text())["crypto"]["kdfparams"]
    assert (params["n"], params["r"], params["p"], params["dklen"]) == (262_144, 8, 1, 32)
    started = time.perf_counter()
    assert keystores.unlock("geth", Secret(PASSWORD)).key.to_0x_hex() == KEY
    print(f"unlock at geth parameters: {time.perf_counter() - started:.2f} s")


def test_password_from_file_and_prompt(cli: Cli, tmp_path: Path) -> None:
    secret_file = tmp_path / "pw.txt"
    secret_file.write_text("from-a-file\n")
    created = cli.json("wallet", "new", "--name", "f", "--password-file", str(secret_file))
    keystores = Keystores(Path(created["path"]).parent, scrypt_n=TEST_SCRYPT_N)
    assert keystores.unlock("f", Secret("from-a-file")).address == created["address"]

    prompted = Cli(env={})
    result = prompted("wallet", "new", "--name", "p", input="typed\ntyped\n")
    assert "typed" not in result.output  # hidden input
    assert keystores.unlock("p", Secret("typed"))


def test_import_private_key_from_prompt_and_file(cli: Cli, tmp_path: Path) -> None:
    expected = devnet_account("bob").address
    key = devnet_account("bob").key.to_0x_hex()
    result = cli("wallet", "import", "--name", "typed", "--json", input=key + "\n")
    assert key not in result.output
    assert json.loads(result.stdout)["address"] == expected

    key_file = tmp_path / "key.txt"
    key_file.write_text(key.removeprefix("0x") + "\n")
    imported = cli.json("wallet", "import", "--name", "filed", "--private-key-file", str(key_file))
    assert imported["address"] == expected


def test_import_devnet_account_is_labelled_public(cli: Cli) -> None:
    result = cli("wallet", "import", "--devnet", "alice")
    assert "PUBLIC" in result.stderr
    assert cli.json("wallet", "address", "--wallet", "alice")["address"] == (
        devnet_account("alice").address
    )


def test_import_refuses_to_overwrite_and_bad_names(cli: Cli) -> None:
    cli("wallet", "import", "--devnet", "alice")
    again = cli("wallet", "import", "--devnet", "alice", ok=False)
    assert isinstance(again.exception, WalletError)
    assert "already exists" in str(again.exception)
    bad = cli("wallet", "new", "--name", "../escape", ok=False)
    assert isinstance(bad.exception, WalletError)
    assert "not a valid wallet name" in str(bad.exception)


def test_wrong_password_is_a_wallet_error(cli: Cli) -> None:
    cli("wallet", "import", "--devnet", "alice")
    wrong = Cli(env={"FRAMECAST_PASSWORD": "nope"})
    result = wrong("credits", "faucet", ok=False)
    assert isinstance(result.exception, WalletError)
    assert "wrong password for wallet 'alice'" in str(result.exception)
    assert "FRAMECAST_PASSWORD" in str(result.exception)  # ends with the fix


def test_missing_wallet_lists_the_ones_present(cli: Cli) -> None:
    cli("wallet", "import", "--devnet", "alice")
    cli("wallet", "import", "--devnet", "bob")
    result = cli("wallet", "address", "--wallet", "carol", ok=False)
    assert isinstance(result.exception, WalletError)
    message = str(result.exception)
    assert "no wallet named 'carol'" in message
    assert "alice, bob" in message
    assert "framecast wallet new" in message
    ambiguous = cli("wallet", "address", ok=False)
    assert "pass --wallet NAME" in str(ambiguous.exception)


def test_export_address_prints_shell_exports(cli: Cli) -> None:
    cli("wallet", "import", "--devnet", "alice")
    out = cli("wallet", "export-address").stdout.splitlines()
    assert out == [
        "export FRAMECAST_WALLET=alice",
        f"export ETH_FROM={devnet_account('alice').address}",
    ]


def test_secrets_hide_themselves() -> None:
    secret = parse_private_key(KEY)
    assert KEY not in repr(secret) and KEY not in str(secret) and KEY not in f"{secret}"
    with pytest.raises(WalletError) as caught:
        parse_private_key("0x" + "zz" * 32)
    assert "zz" not in str(caught.value)


# --------------------------------------------------------------------------- cast interop
def test_cast_reads_our_keystore(cli: Cli) -> None:
    created = cli.json("wallet", "import", "--name", "ours", "--devnet", "bob")
    path = Path(created["path"])
    assert (
        cast("wallet", "address", "--keystore", str(path), "--password", PASSWORD)
        == (created["address"])
    )
    decrypted = cast(
        "wallet", "decrypt-keystore", "ours", "-k", str(path.parent), "--unsafe-password", PASSWORD
    )
    assert decrypted.endswith(devnet_account("bob").key.to_0x_hex())


def test_we_read_cast_keystores(cli: Cli, client_env: Path, tmp_path: Path) -> None:
    # 1. `cast wallet import` writes a keystore; `framecast wallet import --keystore` takes it.
    foundry = tmp_path / "foundry-keystores"
    key = devnet_account("provider-1").key.to_0x_hex()
    cast("wallet", "import", "carol", "--private-key", key, "-k", str(foundry),
         "--unsafe-password", PASSWORD)  # fmt: skip
    assert "address" not in json.loads((foundry / "carol").read_text())  # cast omits it
    imported = cli.json("wallet", "import", "--name", "carol", "--keystore", str(foundry / "carol"))
    assert imported["address"] == devnet_account("provider-1").address
    copy = Path(imported["path"])
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert (
        json.loads(copy.read_text())["crypto"]
        == json.loads((foundry / "carol").read_text())["crypto"]
    )

    # 2. `cast wallet new` straight into our keystore folder: same layout, it just works.
    ours = client_env / "keystores"
    out = cast("wallet", "new", str(ours), "dave", "--unsafe-password", PASSWORD)
    cast_address = next(line.split()[-1] for line in out.splitlines() if "Address" in line)
    listed = {w["name"]: w["address"] for w in cli.json("wallet", "list")}
    assert listed["dave"] is None  # not recorded by cast: shown after an unlock
    assert cli.json("wallet", "address", "--wallet", "dave")["address"] == cast_address


def test_debug_traceback_never_shows_password_or_key(client_env: Path, tmp_path: Path) -> None:
    from tests.client.conftest import FRAMECAST

    env = {
        **os.environ,
        "FRAMECAST_HOME": str(client_env),
        "FRAMECAST_KEYSTORE_SCRYPT_N": str(TEST_SCRYPT_N),
        "FRAMECAST_PASSWORD": PASSWORD,
    }
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    subprocess.run(
        [str(FRAMECAST), "wallet", "import", "--name", "w", "--private-key-file", str(key_file)],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    wrong_password = "hunter2-" + "x" * 12
    bad_key = "0x" + "ab" * 31 + "zz"  # one typo away from a real key
    key_file.write_text(bad_key)
    runs = [
        (["--debug", "credits", "faucet", "--wallet", "w"], {"FRAMECAST_PASSWORD": wrong_password}),
        (["--debug", "wallet", "import", "--name", "v", "--private-key-file", str(key_file)], {}),
    ]
    for args, extra in runs:
        done = subprocess.run(
            [str(FRAMECAST), *args], env={**env, **extra}, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode != 0, output
        for secret in (wrong_password, PASSWORD, KEY, KEY[2:], bad_key, bad_key[2:]):
            assert secret not in output, args
    assert "Traceback" in output  # --debug did show a traceback
