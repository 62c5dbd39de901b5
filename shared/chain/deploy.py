"""Deploying Credits + JobMarket from the committed artifacts (devnet, tests, testnets).

JobMarket calls the externally linked library ReplicatedJobs (its replicated-job logic): the
library is deployed first and its address written into JobMarket's bytecode at the places
the artifact's link references name.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3

from framecast.shared.chain.artifacts import load_artifact
from framecast.shared.chain.sender import TxSender
from framecast.shared.deployment import Deployment, MarketParams
from framecast.shared.errors import TransactionFailed

FCC = 10**18

#: Short windows so a whole job (and a dispute) fits a demo or a test run.
DEVNET_PARAMS = MarketParams(
    min_bond=100 * FCC,
    collateral_bps=5000,
    dispute_bond=5 * FCC,
    challenge_window=15,
    resolve_window=120,
    exit_cooldown=60,
    protocol_fee_bps=250,
    reveal_window=60,
)
DEVNET_DRIP = 1000 * FCC
DEVNET_FAUCET_COOLDOWN = 3600


def _deploy(
    sender: TxSender, name: str, *args: object, libraries: dict[str, str] | None = None
) -> tuple[str, int]:
    artifact = load_artifact(name)
    bytecode = artifact.linked_bytecode(libraries or {})
    factory = sender.w3.eth.contract(abi=artifact.abi, bytecode=bytecode)
    receipt = sender.send(factory.constructor(*args))
    address = receipt.raw["contractAddress"]
    if not address:
        raise TransactionFailed(f"deploying {name} produced no contract", tx_hash=receipt.tx_hash)
    return str(address), receipt.block_number


def deploy_contracts(
    w3: Web3,
    deployer: LocalAccount,
    *,
    arbiter: str,
    params: MarketParams = DEVNET_PARAMS,
    drip: int = DEVNET_DRIP,
    faucet_cooldown: int = DEVNET_FAUCET_COOLDOWN,
    network: str = "devnet",
    rpc_url: str = "",
) -> Deployment:
    """Deploy both contracts (and the library JobMarket links) with ``deployer`` as owner/admin
    and ``arbiter`` as arbiter."""
    sender = TxSender(w3, deployer)
    credits, first_block = _deploy(sender, "Credits", deployer.address, drip, faucet_cooldown)
    config = (
        deployer.address,
        Web3.to_checksum_address(arbiter),
        params.min_bond,
        params.collateral_bps,
        params.dispute_bond,
        params.challenge_window,
        params.resolve_window,
        params.exit_cooldown,
        params.protocol_fee_bps,
        params.reveal_window,
    )
    libraries = {name: _deploy(sender, name)[0] for name in load_artifact("JobMarket").libraries()}
    market, _ = _deploy(sender, "JobMarket", credits, config, libraries=libraries)
    return Deployment(
        network=network,
        chain_id=w3.eth.chain_id,
        rpc_url=rpc_url,
        credits=credits,
        market=market,
        deployed_block=first_block,
        params=params,
        libraries=libraries,
    )
