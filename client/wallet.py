"""Encrypted keystores: Web3 Secret Storage (v3) files, one per wallet name.

Files live in ``<home>/keystores/<name>`` — no extension, the layout of Foundry's
``~/.foundry/keystores``, so ``cast wallet ... --keystore-dir <home>/keystores`` works on
them unchanged, and keystores made by ``cast`` or geth can be imported. New keystores use
geth's standard scrypt parameters (n=262144, r=8, p=1). Keys and passwords travel in
`Secret` wrappers whose ``repr`` hides them, and every library error on their path is
re-raised without its context so a traceback cannot quote them.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_typing import HexStr
from pydantic import BaseModel, ConfigDict, Field

from framecast.shared.errors import WalletError
from framecast.shared.keystore import (
    GETH_SCRYPT_N,
    Secret,
    decrypt_keystore,
    keystore_address,
    read_keystore,
    unlock_keystore,
    write_keystore,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
# secp256k1 group order: a key must be in [1, n-1].
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class WalletInfo(BaseModel):
    """A keystore on disk, as `wallet list` shows it (nothing secret)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Wallet name = keystore file name.")
    address: str | None = Field(
        description="Checksummed address from the file; None when the file does not record it "
        "(Foundry's keystores do not) until it is unlocked once."
    )
    path: Path = Field(description="Keystore file.")


def parse_private_key(text: str) -> Secret:
    """A hex private key (with or without 0x) as a `Secret`; the message never quotes it."""
    stripped = text.strip()
    if not _HEX_KEY.match(stripped):
        raise WalletError(
            "the private key is not 32 bytes of hex (64 hex digits, optional 0x)",
            fix="paste the raw key exactly as exported, e.g. by `cast wallet decrypt-keystore`",
        )
    value = int(stripped.removeprefix("0x"), 16)
    if not 0 < value < _SECP256K1_N:
        raise WalletError(
            "the private key is outside the secp256k1 range", fix="check you copied the whole key"
        )
    return Secret("0x" + stripped.removeprefix("0x").lower())


def check_name(name: str) -> str:
    """A wallet name that is safe as a file name (no paths, no hidden files)."""
    if not _NAME.match(name):
        raise WalletError(
            f"{name!r} is not a valid wallet name",
            fix="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


class Keystores:
    """The folder of keystores: create, import, list, unlock."""

    def __init__(self, directory: Path, *, scrypt_n: int = GETH_SCRYPT_N) -> None:
        self.directory = directory
        self.scrypt_n = scrypt_n

    # -- reading
    def path(self, name: str) -> Path:
        return self.directory / check_name(name)

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name for p in self.directory.iterdir() if p.is_file() and _NAME.match(p.name)
        )

    def list(self) -> list[WalletInfo]:
        found = []
        for name in self.names():
            try:
                found.append(self.info(name))
            except WalletError:
                continue  # not a keystore (a stray file): not a wallet either
        return found

    def info(self, name: str) -> WalletInfo:
        path = self._existing(name)
        return WalletInfo(name=name, address=keystore_address(path), path=path)

    def _existing(self, name: str) -> Path:
        """The keystore file of wallet ``name``; if there is none, the error lists the others."""
        path = self.path(name)
        if not path.exists():
            raise self.missing(name)
        return path

    def missing(self, name: str) -> WalletError:
        present = self.names()
        listing = (
            f"wallets in {self.directory}: {', '.join(present)}"
            if present
            else (f"there are no wallets in {self.directory}")
        )
        return WalletError(
            f"no wallet named {name!r}; {listing}",
            fix="create one with `framecast wallet new --name NAME` or "
            "`framecast wallet import --name NAME`",
        )

    # -- unlocking
    def unlock(self, name: str, password: Secret) -> LocalAccount:
        """Decrypt a keystore; a wrong password is a `WalletError`, never a library error."""
        path = self._existing(name)
        return unlock_keystore(path, password=password, label=f"wallet {name!r} ({path})")

    # -- writing
    def create(self, name: str, password: Secret) -> WalletInfo:
        """A new random key, encrypted under ``password``."""
        return self.import_key(name, Secret("0x" + secrets.token_bytes(32).hex()), password)

    def import_key(self, name: str, key: Secret, password: Secret) -> WalletInfo:
        _check_new_password(password)
        key = parse_private_key(key.reveal())
        from eth_account import Account

        try:
            data = Account.encrypt(
                HexStr(key.reveal()), password.reveal(), kdf="scrypt", iterations=self.scrypt_n
            )
        except Exception as exc:
            raise WalletError(
                f"could not encrypt the key ({type(exc).__name__})", fix="check the key"
            ) from None
        # eth-keyfile records the address without 0x (as geth does); keep the checksum form.
        return self._write(name, data)

    def import_keystore(self, name: str, source: Path, password: Secret) -> WalletInfo:
        """Copy an existing keystore (geth, Foundry, ours) after proving the password opens it.

        The encryption is kept as it is (Foundry writes n=8192); only a missing ``address``
        is added, so `wallet list` can show it without a password.
        """
        data = read_keystore(source)
        account = decrypt_keystore(data, password, f"keystore {source}")
        data.setdefault("address", account.address.removeprefix("0x").lower())
        return self._write(name, data)

    def _write(self, name: str, data: dict[str, Any]) -> WalletInfo:
        """Write atomically, 0600 from the first byte, never over an existing wallet."""
        path = self.path(name)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)  # tighten a folder someone created with a umask
        if path.exists():
            raise WalletError(
                f"a wallet named {name!r} already exists ({path})",
                fix="pick another --name; framecast never overwrites a keystore",
            )
        try:
            write_keystore(path, data)
        except FileExistsError:
            raise WalletError(
                f"a wallet named {name!r} already exists ({path})",
                fix="pick another --name; framecast never overwrites a keystore",
            ) from None
        return self.info(name)


def _check_new_password(password: Secret) -> None:
    if not password.reveal():
        raise WalletError(
            "the password is empty",
            fix="choose a password: a keystore with an empty one protects nothing",
        )
