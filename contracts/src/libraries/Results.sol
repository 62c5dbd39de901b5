// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IJobMarket} from "../interfaces/IJobMarket.sol";

/// @title Results — checks on a delivered or revealed result, and a replica's commitment to one
library Results {
    /// @notice A binary CID (CIDv1 + multihash) is far below this.
    uint256 internal constant MAX_CID_BYTES = 128;

    /// @notice Reverts unless the CID is 1..MAX_CID_BYTES long and both digests are non-zero.
    function check(bytes calldata resultCid, bytes32 videoSha256, bytes32 framesDigest) internal pure {
        if (resultCid.length == 0 || resultCid.length > MAX_CID_BYTES) {
            revert IJobMarket.InvalidCid(resultCid.length);
        }
        if (videoSha256 == bytes32(0) || framesDigest == bytes32(0)) revert IJobMarket.EmptyDigest();
    }

    /// @notice See {IJobMarket-replicaCommitment}; `cidHash` is keccak256 of the binary CID.
    function commitment(
        uint256 jobId,
        address provider,
        bytes32 cidHash,
        bytes32 videoSha256,
        bytes32 framesDigest,
        bytes32 salt
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(jobId, provider, cidHash, videoSha256, framesDigest, salt));
    }
}
