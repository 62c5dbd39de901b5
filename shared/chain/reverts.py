"""Solidity custom errors decoded into typed Python exceptions.

web3 gives only the 4-byte selector and raw data of a custom error. Here every error in
the committed ABIs becomes a subclass of `ContractRevert` (built at import time), so
callers can ``except reverts.NonceAlreadyUsed`` and users read a sentence with a fix
instead of ``0x1fb3b0b1…``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from framecast.shared.amounts import format_fcc as _fcc  # the one exact formatter
from framecast.shared.chain.artifacts import CONTRACTS, load_artifact
from framecast.shared.errors import ContractRevert, TransactionFailed

Args = dict[str, Any]

# Sentences for the errors a user meets; others get a generic rendering of their fields.
_MESSAGES: dict[str, Callable[[Args], tuple[str, str | None]]] = {
    "InsufficientBalance": lambda a: (
        f"{a['account']} has {_fcc(a['available'])} free in the market but "
        f"{_fcc(a['required'])} are needed",
        "deposit more with `framecast credits deposit` (get credits with "
        "`framecast credits faucet`)",
    ),
    "NonceAlreadyUsed": lambda a: (
        f"nonce {a['nonce']} of {a['client']} was already used",
        "sign the request again with a fresh nonce",
    ),
    "InvalidSigner": lambda a: (
        f"the request is signed by {a['recovered']}, not by its client {a['client']}",
        "sign with the client's key for this chain id and JobMarket address",
    ),
    "InvalidSignature": lambda a: (
        "the signature is malformed or malleable (high-s)",
        "sign the request again with a standard EIP-712 signer",
    ),
    "SpecHashMismatch": lambda a: (
        f"the spec in calldata hashes to {_hex(a['actual'])}, but {_hex(a['signed'])} was signed",
        "sign keccak256 of the exact canonical spec bytes you submit",
    ),
    "SpecTooLarge": lambda a: (
        f"the spec is {a['length']} bytes; the market accepts at most {a['maxLength']}",
        "shorten the prompt",
    ),
    "RequestExpired": lambda a: (
        f"the request's claim deadline {a['claimDeadline']} has passed (chain time "
        f"{a['nowTimestamp']})",
        "sign a new request with a later deadline",
    ),
    "ClaimDeadlineTooFar": lambda a: (
        f"claim deadline {a['claimDeadline']} is later than the latest allowed {a['latest']}",
        "use a claim deadline within 30 days",
    ),
    "InvalidDeliveryWindow": lambda a: (
        f"delivery window {a['deliveryWindow']} s is outside "
        f"[{a['minWindow']}, {a['maxWindow']}] s",
        "pick a delivery window inside the allowed range",
    ),
    "InvalidJobState": lambda a: (
        f"job {a['jobId']} is {_state(a['state'])}, which does not allow this",
        "check it with `framecast status JOB`",
    ),
    "NotJobClient": lambda a: (
        f"{a['caller']} is not the client of job {a['jobId']}",
        "use the wallet that submitted the job",
    ),
    "NotJobProvider": lambda a: (
        f"{a['caller']} is not the provider of job {a['jobId']}",
        "only the provider that claimed the job (or holds a replica of it) may do this",
    ),
    "ClaimWindowClosed": lambda a: (
        f"job {a['jobId']} could be claimed only until {a['claimDeadline']}",
        None,
    ),
    "PriceAboveMax": lambda a: (
        f"price {_fcc(a['price'])} for job {a['jobId']} is above its max {_fcc(a['maxPrice'])}",
        "claim at a price at most the job's maxPrice",
    ),
    "DeliveryWindowClosed": lambda a: (
        f"job {a['jobId']} had to be delivered (committed, if replicated) by {a['deliverBy']}",
        "the client can now reclaim it with `framecast reclaim JOB`",
    ),
    "ChallengeWindowClosed": lambda a: (
        f"the challenge window of job {a['jobId']} closed at {a['challengeEnds']}",
        "it can only be settled now",
    ),
    "ResolveWindowClosed": lambda a: (
        f"the arbiter's time for job {a['jobId']} ended at {a['resolveBy']}",
        "settle it; the delivery stands",
    ),
    "TooEarly": lambda a: (
        f"too early for job {a['jobId']}: its window is open until {a['until']}",
        "wait until then and try again",
    ),
    "NotRegistered": lambda a: (
        f"{a['provider']} is not a registered provider",
        "register with `framecast node register`",
    ),
    "AlreadyRegistered": lambda a: (f"{a['provider']} is already registered", None),
    "BondTooLow": lambda a: (
        f"bond of {a['provider']} is {_fcc(a['bond'])}; the minimum is {_fcc(a['minBond'])}",
        "add bond with `framecast node register --bond` / addBond",
    ),
    "InsufficientCollateral": lambda a: (
        f"{a['provider']} has {_fcc(a['available'])} unlocked bond but the claim needs "
        f"{_fcc(a['required'])} collateral",
        "add bond or finish running jobs first",
    ),
    "ProviderExiting": lambda a: (
        f"{a['provider']} asked to exit (bond unlocks at {a['exitAvailableAt']})",
        "cancel the exit to take jobs again",
    ),
    "ExitNotReady": lambda a: (
        f"bond of {a['provider']} cannot be withdrawn yet (exit available at "
        f"{a['exitAvailableAt']}; 0 means no exit requested)",
        "request an exit and wait for the cooldown",
    ),
    "BondLocked": lambda a: (
        f"only {_fcc(a['unlocked'])} of the bond is unlocked; {_fcc(a['requested'])} asked",
        "wait for claimed jobs to settle",
    ),
    "FaucetCooldown": lambda a: (
        f"{a['account']} drew from the faucet recently; next drip at {a['availableAt']}",
        "wait for the cooldown",
    ),
    "FaucetDisabled": lambda a: ("the faucet is switched off on this network", None),
    "ERC20InsufficientBalance": lambda a: (
        f"{a['sender']} holds {_fcc(a['balance'])} credits but {_fcc(a['needed'])} are needed",
        "get credits with `framecast credits faucet`",
    ),
    "ERC20InsufficientAllowance": lambda a: (
        f"allowance of {a['spender']} is {_fcc(a['allowance'])}, {_fcc(a['needed'])} needed",
        "approve the market first (the CLI's deposit uses a permit)",
    ),
    "ZeroAmount": lambda a: ("the amount must be greater than zero", None),
    "AmountTooLarge": lambda a: (
        f"{_fcc(a['amount'])} is more than the market holds in one amount "
        f"(at most {_fcc(2**96 - 1)})",
        "use a smaller amount",
    ),
    "InsufficientFees": lambda a: (
        f"only {_fcc(a['owed'])} of protocol fees are owed; {_fcc(a['requested'])} asked",
        "withdraw at most the fees owed",
    ),
    "InvalidReplicas": lambda a: (
        f"a request may ask for 1 to {a['max']} replicas, not {a['replicas']}",
        f"sign the request again with replicas between 1 and {a['max']}",
    ),
    "AlreadyReplica": lambda a: (
        f"{a['provider']} already holds a replica of job {a['jobId']}",
        "a provider runs at most one replica of a job; leave the others to other providers",
    ),
    "NotReplicated": lambda a: (
        f"job {a['jobId']} has a single provider; commit, reveal and resolveReplicas are for "
        "replicated jobs",
        "deliver it with `deliver` (the arbiter decides it with `resolve`)",
    ),
    "ReplicatedJob": lambda a: (
        f"job {a['jobId']} is replicated; deliver, release and resolve are for single jobs",
        "commit with commitResult, then reveal with revealResult (the arbiter uses "
        "resolveReplicas)",
    ),
    "ReplicasClaimed": lambda a: (
        f"{a['claims']} replica(s) of job {a['jobId']} are already claimed, so it cannot be "
        "cancelled",
        "wait for the claim deadline: if the set does not fill, `framecast reclaim JOB` refunds "
        "everything",
    ),
    "AlreadyCommitted": lambda a: (
        f"{a['provider']} already committed a result for job {a['jobId']}",
        "reveal it once every replica has committed",
    ),
    "NotCommitted": lambda a: (
        f"{a['provider']} made no commitment for job {a['jobId']} (it defaulted at the commit "
        "deadline)",
        None,
    ),
    "AlreadyRevealed": lambda a: (
        f"{a['provider']} already revealed its result for job {a['jobId']}",
        None,
    ),
    "CommitmentMismatch": lambda a: (
        f"the revealed result of {a['provider']} for job {a['jobId']} does not hash to its "
        "commitment",
        "reveal exactly the CID, digests and salt committed to, from the committing wallet",
    ),
    "RevealWindowClosed": lambda a: (
        f"the reveals of job {a['jobId']} were due by {a['revealBy']}",
        "anyone can now move the job on with `reclaim`",
    ),
    "InvalidFaultMask": lambda a: (
        f"fault mask {a['faultMask']:#04x} names replicas of job {a['jobId']} that did not "
        f"reveal (revealed: {a['revealedMask']:#04x})",
        "set bits only for revealed replicas (bit i = replica i)",
    ),
}


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _state(value: int) -> str:
    # The enum is looked up when a message is rendered, not at import: bindings imports the
    # RPC connection, which imports this module.
    from framecast.shared.chain.bindings import JobState

    try:
        return JobState(value).solidity_name
    except ValueError:
        return str(value)


def _render(name: str, args: Args) -> tuple[str, str | None]:
    if name in _MESSAGES:
        return _MESSAGES[name](args)
    fields = ", ".join(f"{k}={_hex(v) if isinstance(v, bytes) else v}" for k, v in args.items())
    return f"contract reverted with {name}({fields})", None


def refusal(name: str, **args: Any) -> ContractRevert:
    """The typed exception (and sentence) the contract's custom error ``name`` would give,
    for a check made before sending: a transaction that would revert after an earlier one
    (an approve) was mined is refused before either is sent."""
    message, fix = _render(name, args)
    return by_name[name](message, fix=fix, args=args)


class _ErrorSpec:
    def __init__(self, cls: type[ContractRevert], names: list[str], types: list[str]) -> None:
        self.cls, self.names, self.types = cls, names, types


_BY_SELECTOR: dict[bytes, _ErrorSpec] = {}
#: name -> exception class, for ``except reverts.by_name["X"]`` or attribute access.
by_name: dict[str, type[ContractRevert]] = {}


def _type_string(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_type_string(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def _build() -> None:
    for contract in CONTRACTS:
        for item in load_artifact(contract).abi:
            if item["type"] != "error":
                continue
            types = [_type_string(i) for i in item["inputs"]]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            if selector in _BY_SELECTOR:
                continue
            cls = type(
                item["name"],
                (ContractRevert,),
                {
                    "__doc__": f"Solidity `{item['name']}` ({contract}).",
                    "__module__": __name__,
                    "solidity_name": item["name"],
                    "selector": selector,
                },
            )
            _BY_SELECTOR[selector] = _ErrorSpec(cls, [i["name"] for i in item["inputs"]], types)
            by_name[item["name"]] = cls
            globals()[item["name"]] = cls


_build()

_ERROR_STRING = keccak(text="Error(string)")[:4]
_PANIC = keccak(text="Panic(uint256)")[:4]


def decode_revert(data: bytes, *, tx_hash: str | None = None) -> ContractRevert | TransactionFailed:
    """Turn revert data into the typed exception; unknown data becomes `TransactionFailed`."""
    selector, payload = data[:4], data[4:]
    spec = _BY_SELECTOR.get(selector)
    try:
        if spec is not None:
            values = abi_decode(spec.types, payload)
            args = {
                name: to_checksum_address(v) if t == "address" else v
                for name, t, v in zip(spec.names, spec.types, values, strict=True)
            }
            message, fix = _render(spec.cls.solidity_name, args)
            return spec.cls(message, fix=fix, args=args, tx_hash=tx_hash)
        if selector == _ERROR_STRING:
            (reason,) = abi_decode(["string"], payload)
            return TransactionFailed(f"reverted: {reason}", tx_hash=tx_hash)
        if selector == _PANIC:
            (code,) = abi_decode(["uint256"], payload)
            return TransactionFailed(f"contract panicked with code {code:#x}", tx_hash=tx_hash)
    except DecodingError:
        pass
    shown = "0x" + data.hex() if data else "no data"
    return TransactionFailed(f"transaction reverted ({shown})", tx_hash=tx_hash)


def __getattr__(name: str) -> type[ContractRevert]:
    # Lets mypy-typed callers write `reverts.NonceAlreadyUsed` for generated classes.
    try:
        return by_name[name]
    except KeyError:
        raise AttributeError(name) from None


def revert_from(
    exc: Exception, *, tx_hash: str | None = None
) -> ContractRevert | TransactionFailed:
    """Typed exception from web3's contract errors (which carry only selector + data)."""
    data: Any = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(bytes.fromhex(data[2:]), tx_hash=tx_hash)
    return TransactionFailed(f"transaction reverted: {exc}", tx_hash=tx_hash)
