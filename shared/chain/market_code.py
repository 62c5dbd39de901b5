"""Is the code at an address framecast's contract? And since which block is it there?

Joining a deployment someone else made (`framecast network add`) must not bind the client
to whatever answers at an address. The check compares the runtime code on chain with the
committed artifact's ``deployed_bytecode``, byte for byte, except where a deployment
legitimately differs:

- **immutables** (the token address, the market's parameters, EIP-712's cached domain):
  the compiler leaves them as ``PUSH32 0x00…00`` in the artifact and the constructor
  writes the values into the deployed code, so the 32 bytes after every all-zero PUSH32
  of the artifact are masked (an optimised build never pushes a literal 32-byte zero);
- **library link references**: an unlinked artifact holds ``__$<hash>$__`` placeholders
  where a linked library's address goes; those 20 bytes are masked;
- the **CBOR metadata** at the end (a hash of the sources' metadata, comments included):
  it does not execute, so a rebuild that changed only a comment still matches.

Comparing a code hash instead would only work for a deployment whose hash was published
(the registry's ``code_hash``): immutables make every deployment's hash different. The
hash is still recorded in each user network and compared when the registry has one.
"""

from __future__ import annotations

import re

from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import Web3Exception

from framecast.shared.chain.artifacts import load_artifact
from framecast.shared.errors import ChainError, ChainMismatch

_PLACEHOLDER = re.compile(r"__\$[0-9a-fA-F]{34}\$__")
_PUSH1, _PUSH32 = 0x60, 0x7F


def code_hash(code: bytes) -> str:
    """keccak256 of runtime code, as the registry records it."""
    return "0x" + keccak(code).hex()


def _artifact_code(deployed_bytecode: str) -> tuple[bytes, bytearray]:
    """The artifact's runtime code with placeholders zeroed, and a mask (1 = must match)."""
    text = deployed_bytecode.removeprefix("0x")
    linked = [(m.start() // 2, 20) for m in _PLACEHOLDER.finditer(text)]
    code = bytes.fromhex(_PLACEHOLDER.sub("00" * 20, text))
    mask = bytearray(b"\x01" * len(code))
    for start, length in linked:
        mask[start : start + length] = b"\x00" * length
    i = 0
    while i < len(code):
        op = code[i]
        if _PUSH1 <= op <= _PUSH32:
            width = op - _PUSH1 + 1
            if op == _PUSH32 and not any(code[i + 1 : i + 33]):
                mask[i + 1 : i + 33] = b"\x00" * 32
            i += width
        i += 1
    return code, mask


def _strip_metadata(code: bytes) -> bytes:
    # solc appends CBOR metadata and its length as the last two bytes.
    if len(code) < 2:
        return code
    length = int.from_bytes(code[-2:], "big")
    return code[: -(length + 2)] if length + 2 <= len(code) else code


def mismatch(chain_code: bytes, contract: str) -> str | None:
    """Why ``chain_code`` is not ``contract``'s runtime code (None when it is)."""
    return compare_code(chain_code, load_artifact(contract).deployed_bytecode, contract)


def compare_code(chain_code: bytes, deployed_bytecode: str, contract: str) -> str | None:
    """Why ``chain_code`` is not the runtime code ``deployed_bytecode`` (None when it is)."""
    expected, mask = _artifact_code(deployed_bytecode)
    body = _strip_metadata(expected)
    got = _strip_metadata(chain_code)
    if len(got) != len(body):
        return f"its code is {len(chain_code)} bytes, {contract}'s is {len(expected)}"
    for offset, (want, have) in enumerate(zip(body, got, strict=True)):
        if mask[offset] and want != have:
            return f"its code differs from {contract}'s at byte {offset}"
    return None


def require_contract(w3: Web3, address: str, contract: str, *, option: str) -> bytes:
    """The runtime code at ``address``, after checking it is framecast's ``contract``."""
    chain_id = int(w3.eth.chain_id)
    code = bytes(w3.eth.get_code(Web3.to_checksum_address(address)))
    if not code:
        raise ChainMismatch(
            f"there is no contract at {address} on chain {chain_id}",
            fix=f"check {option}: it takes the {contract} address that `framecast deploy` or "
            "`framecast devnet up` printed, on this RPC's chain",
        )
    why = mismatch(code, contract)
    if why is not None:
        raise ChainMismatch(
            f"the contract at {address} on chain {chain_id} is not framecast's {contract} ({why})",
            fix=f"check {option}; a deployment of another framecast version needs that version",
        )
    return code


def deploy_block(w3: Web3, address: str, *, latest: int | None = None) -> int:
    """The first block at which ``address`` has code (binary search over eth_getCode).

    Needs an RPC that answers state at past blocks (anvil does; on public chains an archive
    node); otherwise the caller must be told the block.
    """
    target = Web3.to_checksum_address(address)
    high = int(w3.eth.block_number) if latest is None else latest
    low = 0
    try:
        if not w3.eth.get_code(target, block_identifier=high):
            raise ChainMismatch(f"there is no contract at {address} at block {high}")
        while low < high:
            middle = (low + high) // 2
            if w3.eth.get_code(target, block_identifier=middle):
                high = middle
            else:
                low = middle + 1
    except (Web3Exception, ValueError) as exc:
        raise ChainError(
            f"the RPC cannot say since which block {address} has code ({type(exc).__name__}: "
            "state at past blocks needs an archive node)",
            fix="pass --deploy-block N, the block of the deployment transaction",
        ) from None
    return low
