"""`framecast.shared.keystore`: the one reader of a keystore file's address and the one
unlock, with the password from the usual sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framecast.shared.chain.devnet import devnet_account
from framecast.shared.errors import WalletError
from framecast.shared.keystore import (
    Secret,
    encrypt_key,
    keystore_address,
    unlock_keystore,
    write_keystore,
)

PASSWORD = "correct horse"
# Cheap scrypt for tests; the format is the same as geth's.
SCRYPT_N = 1024


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    account = devnet_account("provider-1")
    path = tmp_path / "provider.json"
    write_keystore(path, encrypt_key(bytes(account.key), Secret(PASSWORD), scrypt_n=SCRYPT_N))
    return path


def test_address_is_read_without_the_password(keystore: Path) -> None:
    assert keystore_address(keystore) == devnet_account("provider-1").address


def test_a_keystore_recording_no_address_has_none(keystore: Path, tmp_path: Path) -> None:
    data = json.loads(keystore.read_text())
    del data["address"]  # as cast writes them
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(data))
    assert keystore_address(bare) is None
    assert unlock_keystore(bare, password=Secret(PASSWORD)).address == (
        devnet_account("provider-1").address
    )


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "no keystore at"), ("{not json", "is unreadable"), ('{"version": 1}', "not a Web3")],
)
def test_no_readable_keystore_is_a_wallet_error_with_a_fix(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "k.json"
    if content is not None:
        path.write_text(content)
    for read in (keystore_address, lambda p: unlock_keystore(p, password=Secret(PASSWORD))):
        with pytest.raises(WalletError) as caught:
            read(path)
        assert says in caught.value.message and str(path) in caught.value.message
        assert caught.value.fix != WalletError.default_fix  # a fix for this case


def test_unlock_takes_the_password_from_the_usual_sources(
    keystore: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = devnet_account("provider-1").address
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    monkeypatch.delenv("FRAMECAST_PASSWORD", raising=False)
    assert unlock_keystore(keystore, password_file=password_file).address == address
    with pytest.raises(WalletError, match="no password given"):
        unlock_keystore(keystore)
    monkeypatch.setenv("FRAMECAST_PASSWORD", PASSWORD)
    assert unlock_keystore(keystore).address == address
    # A given password wins over the environment.
    with pytest.raises(WalletError, match=f"wrong password for keystore {keystore}"):
        unlock_keystore(keystore, password=Secret("not it"))


def test_wrong_password_names_the_label(keystore: Path) -> None:
    with pytest.raises(WalletError, match="wrong password for wallet 'main'"):
        unlock_keystore(keystore, password=Secret("not it"), label="wallet 'main'")


def test_an_edited_address_is_refused(keystore: Path) -> None:
    data = json.loads(keystore.read_text())
    data["address"] = devnet_account("provider-2").address.removeprefix("0x").lower()
    keystore.write_text(json.dumps(data))
    with pytest.raises(WalletError, match="records address") as caught:
        unlock_keystore(keystore, password=Secret(PASSWORD))
    assert caught.value.fix and "backup" in caught.value.fix
