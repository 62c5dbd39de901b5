"""The state client commands share: settings, output mode, wallet, deployment, chain.

Commands take it with ``@pass_client``; the option decorators here (``wallet_option``,
``network_options``, ``json_option``) fill it, so every command spells `--wallet`,
`--network`, `--rpc-url` and `--json` the same way (the root group's `--network` counts
too). Everything expensive is lazy and done once per command: the keystore is unlocked
(and the password prompted for) on the first ``account()``, the network resolved, the RPC
connected and the contracts bound on the first ``market()``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import ValidationError

from framecast.client.config import ClientSettings
from framecast.client.wallet import Keystores, WalletInfo
from framecast.shared.cli_params import FccAmount
from framecast.shared.errors import ConfigError, WalletError
from framecast.shared.keystore import Secret
from framecast.shared.network_choice import NETWORK_META_KEY
from framecast.shared.textfiles import read_user_text

if TYPE_CHECKING:
    # web3 takes seconds to import on a busy machine: keystore-only commands never pay it.
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from framecast.client.jobs.views import JobDetails
    from framecast.client.verify import ReplicatedReport, VerifyReport
    from framecast.shared.chain.bindings import Credits, Market
    from framecast.shared.deployment import Deployment
    from framecast.shared.ipfs.retrieve import Retriever
    from framecast.shared.networks import ResolvedNetwork

F = TypeVar("F", bound=Callable[..., Any])


class ClientContext:
    """One command's shared state; built empty by click, filled by the option callbacks."""

    def __init__(self) -> None:
        #: Settings given as options; they win over FRAMECAST_* env.
        self.overrides: dict[str, Any] = {}
        self.as_json = False
        self._settings: ClientSettings | None = None
        self._account: LocalAccount | None = None
        self._network: ResolvedNetwork | None = None
        self._w3: Web3 | None = None
        self._bound: dict[bool, tuple[Credits, Market]] = {}

    # -- settings and wallets
    @property
    def settings(self) -> ClientSettings:
        if self._settings is None:
            overrides = dict(self.overrides)
            # `framecast --network NAME cmd`: the root group leaves the choice in click's
            # shared meta; a command's own --network (in overrides) wins over it.
            ctx = click.get_current_context(silent=True)
            if "network" not in overrides and ctx is not None and ctx.meta.get(NETWORK_META_KEY):
                overrides["network"] = ctx.meta[NETWORK_META_KEY]
            try:
                self._settings = ClientSettings(**overrides)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                raise ConfigError(
                    f"client setting `{field}`: {first['msg']}",
                    fix=f"fix the option or FRAMECAST_{field.upper()} in the environment",
                ) from None
        return self._settings

    @property
    def keystores(self) -> Keystores:
        return Keystores(self.settings.keystores, scrypt_n=self.settings.keystore_scrypt_n)

    def wallet_name(self) -> str:
        """The chosen wallet: --wallet, FRAMECAST_WALLET, or the only keystore there is."""
        if self.settings.wallet:
            return str(self.settings.wallet)
        names = self.keystores.names()
        if len(names) == 1:
            return str(names[0])
        if not names:
            raise WalletError(
                f"there are no wallets in {self.settings.keystores}",
                fix="create one with `framecast wallet new` (or on the devnet "
                "`framecast wallet import --devnet alice`)",
            )
        raise WalletError(
            f"several wallets ({', '.join(names)}) and none chosen",
            fix="pass --wallet NAME or set FRAMECAST_WALLET",
        )

    def wallet(self) -> WalletInfo:
        return self.keystores.info(self.wallet_name())

    def password(self, prompt: str, *, confirm: bool = False) -> Secret:
        """The keystore password: --password-file, then FRAMECAST_PASSWORD, then a prompt."""
        settings = self.settings
        if settings.password_file is not None:
            text = read_user_text(
                settings.password_file,
                what="password file",
                error=WalletError,
                fix="check the path given by --password-file / FRAMECAST_PASSWORD_FILE",
            )
            # geth and cast read the first line; a trailing newline is not part of it.
            lines = text.splitlines()
            return Secret(lines[0] if lines else "")
        if settings.password is not None:
            return Secret(settings.password.get_secret_value())
        value = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
        return Secret(str(value))

    def account(self) -> LocalAccount:
        """The chosen wallet, unlocked; prompts for its password at most once per command."""
        if self._account is None:
            name = self.wallet_name()
            keystores = self.keystores
            keystores.info(name)  # a missing wallet fails before asking for a password
            password = self.password(f"Password for wallet {name!r}")
            self._account = keystores.unlock(name, password)
        return self._account

    def address(self, explicit: str | None = None, *, option: str = "--address") -> str:
        """Whose balances to read: an explicit address, else the wallet's (no unlock if the
        keystore records its address)."""
        if explicit is not None:
            from eth_utils.address import is_hex_address, to_checksum_address

            if is_hex_address(explicit):
                return str(to_checksum_address(explicit))
            else:
                raise click.BadParameter(
                    f"{explicit!r} is not a 20-byte hex address", param_hint=f"'{option}'"
                )
        if self._account is not None:
            return str(self._account.address)
        recorded = self.wallet().address
        return recorded if recorded is not None else str(self.account().address)

    # -- chain
    def network(self) -> ResolvedNetwork:
        """The chosen network (--network, FRAMECAST_NETWORK, --deployment; default local)."""
        if self._network is None:
            from framecast.shared.networks import select_network

            settings = self.settings
            self._network = select_network(
                settings.network,
                deployment_file=settings.deployment,
                home=settings.home,
                rpc_url=settings.rpc_url,
            )
        return self._network

    def deployment(self) -> Deployment:
        return self.network().deployment

    @property
    def rpc_url(self) -> str:
        return self.network().rpc_url

    def web3(self) -> Web3:
        if self._w3 is None:
            from framecast.shared.networks import connect_network

            self._w3 = connect_network(self.network())
        return self._w3

    def _bind(self, signing: bool) -> tuple[Credits, Market]:
        if signing not in self._bound:
            from framecast.shared.chain.bindings import bind
            from framecast.shared.chain.sender import TxSender

            # Unlock before connecting: a wrong password should not wait on the network.
            sender = TxSender(self.web3(), self.account()) if signing else None
            self._bound[signing] = bind(self.web3(), self.deployment(), sender)
        return self._bound[signing]

    def credits(self, *, signing: bool = False) -> Credits:
        """The Credits binding; ``signing`` unlocks the wallet to send transactions."""
        if signing:
            self.account()
        return self._bind(signing)[0]

    def market(self, *, signing: bool = False) -> Market:
        """The JobMarket binding; ``signing`` unlocks the wallet to send transactions."""
        if signing:
            self.account()
        return self._bind(signing)[1]

    # -- results
    def fetch_verified(self, job: JobDetails, output: Path | None) -> VerifyReport:
        """`framecast.client.verify.fetch_verified` with this user's chain, store and quarantine."""
        from framecast.client.verify import fetch_verified

        return fetch_verified(job, output, **self._retrieval())

    def fetch_verified_replicas(self, job: JobDetails, output: Path | None) -> ReplicatedReport:
        """`fetch_verified_replicas` with this user's chain, store and quarantine."""
        from framecast.client.verify import fetch_verified_replicas

        return fetch_verified_replicas(job, output, **self._retrieval())

    def retriever(self) -> Retriever:
        """The one retrieval path (`framecast.shared.ipfs.retrieve`) with this user's
        sources: the local store, --gateway, each delivering provider's advertised gateway
        (read from the chain when first needed), the public gateways, kubo."""
        from framecast.shared.chain.history import provider_uris
        from framecast.shared.endpoints import is_loopback_url
        from framecast.shared.ipfs.retrieve import RetrievalSettings, Retriever
        from framecast.shared.ipfs.store import StoreSettings
        from framecast.shared.provider_metadata import parse_offer

        settings = self.settings

        def gateways() -> dict[str, str]:
            uris = provider_uris(self.market(), from_block=self.deployment().deployed_block)
            offers = {provider: parse_offer(uri) for provider, uri in uris.items()}
            return {p: o.gateway for p, o in offers.items() if o is not None and o.gateway}

        return Retriever(
            store=StoreSettings(store="local", store_path=settings.blocks),
            settings=RetrievalSettings(
                gateway_url=settings.gateway_url,
                public_gateways=tuple(settings.public_gateways),
                kubo_url=settings.kubo_url,
                source_timeout_s=settings.source_timeout_s,
            ),
            provider_gateways=gateways,
            # Loopback gateways are accepted only when the chain itself is on this machine.
            allow_loopback=is_loopback_url(self.rpc_url),
        )

    def _retrieval(self) -> dict[str, Any]:
        deployment, settings = self.deployment(), self.settings
        return {
            "chain_id": deployment.chain_id,
            "market": deployment.market,
            "retriever": self.retriever(),
            "quarantine": settings.quarantine,
        }

    # -- output
    def echo_json(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, sort_keys=False))


pass_client = click.make_pass_decorator(ClientContext, ensure=True)


def _setting(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if isinstance(value, str) and not value.strip():
            # `--wallet "$UNSET"` must not quietly mean "the default wallet".
            raise click.BadParameter("must not be empty", ctx=ctx, param=param)
        if value is not None:
            ctx.ensure_object(ClientContext).overrides[field] = value

    return store


def _store_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(ClientContext).as_json = True


def json_option(fn: F) -> F:
    """``--json``: machine-readable output (every read command has it)."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_store_json,
        help="Print JSON instead of text.",
    )(fn)


def password_file_option(fn: F) -> F:
    """``--password-file FILE``."""
    return click.option(
        "--password-file",
        type=click.Path(dir_okay=False, path_type=Path),
        expose_value=False,
        callback=_setting("password_file"),
        help="File whose first line is the password (or FRAMECAST_PASSWORD_FILE; "
        "FRAMECAST_PASSWORD holds the password itself).",
    )(fn)


def wallet_option(fn: F) -> F:
    """``--wallet NAME`` and ``--password-file FILE``."""
    fn = password_file_option(fn)
    return click.option(
        "--wallet",
        metavar="NAME",
        expose_value=False,
        callback=_setting("wallet"),
        help="Wallet to use (or FRAMECAST_WALLET); default: the only one.",
    )(fn)


def network_options(fn: F) -> F:
    """``--network NAME``, ``--deployment PATH`` and ``--rpc-url URL``."""
    fn = click.option(
        "--rpc-url",
        metavar="URL",
        expose_value=False,
        callback=_setting("rpc_url"),
        help="RPC endpoint (or FRAMECAST_RPC_URL); default: the network's.",
    )(fn)
    fn = click.option(
        "--deployment",
        type=click.Path(dir_okay=False, path_type=Path),
        expose_value=False,
        callback=_setting("deployment"),
        help="Deployment file to use instead of a network's (or FRAMECAST_DEPLOYMENT).",
    )(fn)
    return click.option(
        "--network",
        metavar="NAME",
        expose_value=False,
        callback=_setting("network"),
        help="Network (or FRAMECAST_NETWORK); default: local, this machine's devnet.",
    )(fn)


#: ``--amount``-style options: a positive decimal amount of FCC, in wei without floats.
Amount = FccAmount
