"""Web3 Secret Storage keystores (geth / Foundry compatible), read and written safely.

Keys never appear in messages, logs or reprs. Files are written atomically with 0600
permissions. Scrypt uses geth's standard parameters (n=262144, r=8, p=1) unless
`FRAMECAST_KEYSTORE_SCRYPT_N` lowers n — meant for test suites only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from framecast.shared.errors import WalletError

GETH_SCRYPT_N = 262_144


def scrypt_n() -> int:
    """Scrypt cost: geth's standard, unless a test suite asked for less."""
    return int(os.environ.get("FRAMECAST_KEYSTORE_SCRYPT_N", GETH_SCRYPT_N))


def encrypt_key(private_key: bytes, password: str) -> dict[str, Any]:
    """A Web3 Secret Storage v3 document (scrypt, r=8, p=1)."""
    document: dict[str, Any] = Account.encrypt(
        private_key, password, kdf="scrypt", iterations=scrypt_n()
    )
    return document


def write_keystore(path: Path, document: dict[str, Any]) -> None:
    """Write atomically with 0600 permissions; never replaces an existing keystore."""
    if path.exists():
        raise WalletError(
            f"keystore {path} already exists", fix="choose another name or remove it first"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keystore-")
    try:
        os.fchmod(fd, 0o600)  # before any byte of the key is written
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if `path` appeared meanwhile: never clobber a key
    except FileExistsError:
        raise WalletError(f"keystore {path} already exists", fix="choose another name") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def unlock(path: Path, password: str) -> LocalAccount:
    """Decrypt the keystore at ``path``; wrong passwords get a clear WalletError."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise WalletError(
            f"no keystore at {path}",
            fix="create one with `framecast wallet new` / `framecast node init`",
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise WalletError(f"keystore {path} is unreadable: {type(exc).__name__}") from None
    try:
        key = Account.decrypt(document, password)
    except ValueError:
        # eth-account says "MAC mismatch" for a wrong password; nothing secret in ours.
        raise WalletError(
            f"wrong password for keystore {path}",
            fix="check the password (prompt, --password-file or FRAMECAST_PASSWORD)",
        ) from None
    except (KeyError, TypeError):
        raise WalletError(f"{path} is not a Web3 Secret Storage keystore") from None
    account: LocalAccount = Account.from_key(key)
    return account


def read_password(password_file: Path | None, *, prompt: str | None = None) -> str:
    """Password from a file, FRAMECAST_PASSWORD, or an interactive prompt (in that order)."""
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\n")
        except OSError as exc:
            raise WalletError(
                f"cannot read password file {password_file}: {exc.strerror}"
            ) from None
    env = os.environ.get("FRAMECAST_PASSWORD")
    if env is not None:
        return env
    if prompt is None:
        raise WalletError("no password given", fix="use --password-file or set FRAMECAST_PASSWORD")
    import click

    value: str = click.prompt(prompt, hide_input=True)
    return value
