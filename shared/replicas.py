"""The commitment a replica makes before revealing its result (k-of-n replicated jobs).

Equal to `JobMarket.replicaCommitment` (a test checks it against the deployed contract):
``keccak256(abi.encode(jobId, provider, keccak256(resultCid), videoSha256, framesDigest, salt))``.
It binds the provider's address, so another replica copying the commitment cannot reveal it.
"""

from __future__ import annotations

import secrets

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from framecast.shared.errors import SpecError


def _bytes32(name: str, value: bytes) -> bytes:
    if len(value) != 32:
        raise SpecError(
            f"{name} must be 32 bytes, got {len(value)}",
            field=name,
            fix=f"pass the raw 32-byte {name}, not its hex string",
        )
    return value


def new_salt() -> bytes:
    """A fresh random salt: keeps a commitment unguessable until it is revealed."""
    return secrets.token_bytes(32)


def replica_commitment(
    job_id: int,
    provider: str,
    result_cid: bytes,
    video_sha256: bytes,
    frames_digest: bytes,
    salt: bytes,
) -> bytes:
    """The 32-byte commitment `commitResult` takes and `revealResult` checks."""
    if not result_cid:
        raise SpecError("result CID is empty", field="result_cid", fix="pass the binary CID")
    return keccak(
        abi_encode(
            ["uint256", "address", "bytes32", "bytes32", "bytes32", "bytes32"],
            [
                job_id,
                to_checksum_address(provider),
                keccak(result_cid),
                _bytes32("video_sha256", video_sha256),
                _bytes32("frames_digest", frames_digest),
                _bytes32("salt", salt),
            ],
        )
    )
