// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Bitmask — replica masks (bit i = replica i, claim order)
/// @notice Pure helpers over the 8-bit replica masks of {IJobMarket-ReplicaSet}, widened to
///         uint256 so callers can combine them without casts.
library Bitmask {
    /// @notice Number of set bits in `mask`.
    function count(uint256 mask) internal pure returns (uint256 n) {
        // Kernighan: each step clears the lowest set bit, so the loop runs once per replica.
        for (; mask != 0; mask &= mask - 1) {
            unchecked {
                ++n;
            }
        }
    }

    /// @notice Whether bit `index` of `mask` is set.
    function has(uint256 mask, uint256 index) internal pure returns (bool) {
        return (mask >> index) & 1 != 0;
    }

    /// @notice The mask of the first `n` indexes (0..n-1); `n` is at most MAX_REPLICAS here.
    function first(uint256 n) internal pure returns (uint256) {
        return (1 << n) - 1;
    }
}
