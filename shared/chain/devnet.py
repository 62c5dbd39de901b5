"""The devnet's named accounts: anvil's public test mnemonic, for throwaway chains only."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount

from framecast.shared.errors import ConfigError

#: anvil's well-known test mnemonic: public keys for a throwaway chain.
DEVNET_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_CHAIN_ID = 31337
#: Named accounts and their HD index on the devnet mnemonic.
NAMED_ACCOUNTS: dict[str, int] = {
    "deployer": 0,
    "arbiter": 1,
    "alice": 2,
    "bob": 3,
    "provider-1": 4,
    "provider-2": 5,
}


def devnet_account(name: str) -> LocalAccount:
    """The key of a named devnet account."""
    if name not in NAMED_ACCOUNTS:
        raise ConfigError(
            f"no devnet account named {name!r}",
            fix=f"use one of: {', '.join(NAMED_ACCOUNTS)}",
        )
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(
        DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{NAMED_ACCOUNTS[name]}"
    )
    return account
