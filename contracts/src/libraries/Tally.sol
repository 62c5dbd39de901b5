// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {Bitmask} from "./Bitmask.sol";

/// @title Tally — how the revealed frames digests of a replicated job vote
/// @notice Pure rules over `digests[i]` (replica i's revealed frames digest, claim order) and
///         `revealed` (bit i: replica i revealed; other entries are ignored).
library Tally {
    using Bitmask for uint256;

    /// @notice Whether at least two replicas revealed and every revealed digest is the same.
    /// @return agree The replicas agree (two or more reveals, one digest).
    /// @return digest The digest of the lowest revealed replica (zero if none revealed).
    function agreement(bytes32[] memory digests, uint256 revealed)
        internal
        pure
        returns (bool agree, bytes32 digest)
    {
        uint256 reveals = 0;
        agree = true;
        for (uint256 i; i < digests.length; ++i) {
            if (!revealed.has(i)) continue;
            ++reveals;
            if (reveals == 1) digest = digests[i];
            else if (digests[i] != digest) agree = false;
        }
        agree = agree && reveals >= 2;
    }

    /// @notice The revealed replicas whose digest more than half of the revealed ones share, or 0
    ///         when no digest has a strict majority.
    function majority(bytes32[] memory digests, uint256 revealed) internal pure returns (uint256) {
        uint256 reveals = 0;
        for (uint256 i; i < digests.length; ++i) {
            if (revealed.has(i)) ++reveals;
        }
        for (uint256 i; i < digests.length; ++i) {
            if (!revealed.has(i)) continue;
            uint256 same = 0;
            for (uint256 j; j < digests.length; ++j) {
                if (revealed.has(j) && digests[j] == digests[i]) same |= 1 << j;
            }
            if (same.count() * 2 > reveals) return same;
        }
        return 0;
    }

    /// @notice The replicas that missed the deadline a replicated job in `state` has passed: the
    ///         claim deadline (Open: the set never filled, every claimed replica), the commit
    ///         deadline (Claimed: those that did not commit) or the reveal deadline (Revealing:
    ///         those that committed and did not reveal).
    /// @param claims Replicas claimed; `committed` and `revealed` are the set's masks.
    function missed(IJobMarket.JobState state, uint256 claims, uint256 committed, uint256 revealed)
        internal
        pure
        returns (uint256)
    {
        uint256 claimed = Bitmask.first(claims);
        if (state == IJobMarket.JobState.Open) return claimed;
        if (state == IJobMarket.JobState.Claimed) return claimed & ~committed;
        return committed & ~revealed;
    }

    /// @notice Splits `bond` among the `n` (≥ 1) paid replicas.
    /// @return share What each paid replica gets.
    /// @return remainder What the lowest paid index gets on top, so nothing is lost to rounding.
    function split(uint256 bond, uint256 n) internal pure returns (uint256 share, uint256 remainder) {
        share = bond / n;
        remainder = bond % n;
    }
}
