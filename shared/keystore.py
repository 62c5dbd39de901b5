"""Web3 Secret Storage keystores (geth / Foundry compatible), shared by wallet and node.

Keys and passwords travel in `Secret` wrappers whose ``repr`` hides them, and every
library error on their path is re-raised without its context so a traceback cannot quote
them. Files are written atomically, 0600 from the first byte, never over an existing one.
New keystores use geth's standard scrypt parameters (n=262144, r=8, p=1).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address

from framecast.shared.errors import WalletError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

#: geth's standard scrypt cost ("StandardScryptN"); r=8 and p=1 are fixed by eth-keyfile.
GETH_SCRYPT_N = 262_144


class Secret:
    """A private key or password that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(type(self))


def is_v3(data: Any) -> bool:
    """Whether ``data`` looks like a v3 keystore document."""
    return (
        isinstance(data, dict) and data.get("version") == 3 and isinstance(data.get("crypto"), dict)
    )


def encrypt_key(
    private_key: bytes, password: Secret, *, scrypt_n: int = GETH_SCRYPT_N
) -> dict[str, Any]:
    """A v3 keystore document for ``private_key`` (scrypt, r=8, p=1)."""
    from eth_account import Account

    document: dict[str, Any] = Account.encrypt(
        private_key, password.reveal(), kdf="scrypt", iterations=scrypt_n
    )
    return document


def decrypt_keystore(data: dict[str, Any], password: Secret, label: str) -> LocalAccount:
    """Decrypt; a wrong password is a `WalletError` naming ``label``, never a library error."""
    # eth-account drags in py_ecc (BLS) through eth-keyfile: ~1 s on a busy machine, paid
    # only by commands that encrypt or decrypt, not by `wallet list` or `--help`.
    from eth_account import Account

    try:
        key = Account.decrypt(data, password.reveal())
    except ValueError:
        # eth-keyfile's "MAC mismatch" is the only sign of a wrong password.
        raise WalletError(
            f"wrong password for {label}",
            fix="try again, or give the right one by prompt, --password-file or FRAMECAST_PASSWORD",
        ) from None
    except Exception as exc:
        raise WalletError(
            f"{label} cannot be decrypted ({type(exc).__name__})",
            fix="check it is a geth/Foundry v3 keystore",
        ) from None
    account: LocalAccount = Account.from_key(key)
    return account


def recorded_address(data: dict[str, Any]) -> str | None:
    """The checksummed address a keystore records, if any (cast's files record none)."""
    raw = data.get("address")
    if not isinstance(raw, str):
        return None
    try:
        return to_checksum_address("0x" + raw.removeprefix("0x"))
    except ValueError:
        return None


def write_keystore(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, 0600 from the first byte; `FileExistsError` if ``path`` exists."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(path)
    # mkstemp creates the file 0600 before any content is written; fchmod makes that
    # explicit rather than an implementation detail.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keystore-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        # link() publishes the complete file atomically and, unlike replace(), fails if a
        # file of that name appeared meanwhile: a key is never silently overwritten.
        os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()


def read_keystore(path: Path) -> dict[str, Any]:
    """The v3 document in the keystore file at ``path``; a `WalletError` if there is none."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise WalletError(
            f"no keystore at {path}",
            fix="check the path, or create a keystore with `framecast wallet new` or "
            "`framecast node init`",
        ) from None
    except (OSError, ValueError) as exc:
        raise WalletError(
            f"keystore {path} is unreadable ({type(exc).__name__})",
            fix="restore it from a backup or import the key again",
        ) from None
    if not is_v3(data):
        raise WalletError(
            f"{path} is not a Web3 Secret Storage (v3) keystore",
            fix="use a geth/Foundry v3 keystore JSON file "
            "(`framecast wallet import --keystore FILE` takes one)",
        )
    document: dict[str, Any] = data
    return document


def keystore_address(path: Path) -> str | None:
    """The checksummed address the keystore file at ``path`` records, without unlocking it.

    None when the file records none (cast's files do not); a `WalletError` when ``path``
    holds no readable keystore.
    """
    return recorded_address(read_keystore(path))


def unlock_keystore(
    path: Path,
    *,
    password: Secret | None = None,
    password_file: Path | None = None,
    prompt: str | None = None,
    label: str | None = None,
) -> LocalAccount:
    """Decrypt the keystore file at ``path``: with ``password`` if given, else the password
    from the usual sources (`read_password`: ``password_file``, FRAMECAST_PASSWORD, a prompt).

    ``label`` names the keystore in a wrong-password error (default: its path). A file whose
    recorded address is not its key's was edited: refused rather than trusted.
    """
    if password is None:
        password = read_password(password_file, prompt=prompt)
    data = read_keystore(path)
    label = label or f"keystore {path}"
    account = decrypt_keystore(data, password, label)
    recorded = recorded_address(data)
    if recorded is not None and recorded != account.address:
        raise WalletError(
            f"keystore {path} records address {recorded} but holds the key of {account.address}",
            fix="the file was edited: restore it from a backup",
        )
    return account


def read_password(password_file: Path | None, *, prompt: str | None = None) -> Secret:
    """Password from a file, FRAMECAST_PASSWORD, or an interactive prompt (in that order)."""
    if password_file is not None:
        from framecast.shared.textfiles import read_user_text

        text = read_user_text(
            password_file.expanduser(),
            what="password file",
            error=WalletError,
            fix="check the node config's password_file (or the --password-file given)",
        )
        return Secret(text.rstrip("\n"))
    env = os.environ.get("FRAMECAST_PASSWORD")
    if env is not None:
        return Secret(env)
    if prompt is None:
        raise WalletError("no password given", fix="use --password-file or set FRAMECAST_PASSWORD")
    import click

    return Secret(click.prompt(prompt, hide_input=True))
