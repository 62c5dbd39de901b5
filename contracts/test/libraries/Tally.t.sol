// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {Tally} from "../../src/libraries/Tally.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";

/// @notice Tally's rules against direct counts over small digest alphabets (so ties, majorities
///         and agreement all occur under fuzzing).
contract TallyTest is Test {
    /// @dev Up to five replicas whose digests come from three values, with a revealed mask.
    function _votes(uint256 seed, uint8 claims, uint8 revealed)
        internal
        pure
        returns (bytes32[] memory digests, uint256 mask)
    {
        claims = uint8(_bound(claims, 0, 5));
        digests = new bytes32[](claims);
        for (uint256 i; i < claims; ++i) {
            digests[i] = keccak256(abi.encode((seed >> (2 * i)) % 3));
        }
        mask = uint256(revealed) & ((1 << claims) - 1);
    }

    function _isRevealed(uint256 mask, uint256 i) internal pure returns (bool) {
        return (mask >> i) & 1 == 1;
    }

    function testFuzz_agreement_isTwoOrMoreRevealsOfOneDigest(uint256 seed, uint8 claims, uint8 revealed)
        public
        pure
    {
        (bytes32[] memory digests, uint256 mask) = _votes(seed, claims, revealed);
        (bool agree, bytes32 digest) = Tally.agreement(digests, mask);
        uint256 reveals = 0;
        bool same = true;
        bytes32 lowest = bytes32(0);
        for (uint256 i; i < digests.length; ++i) {
            if (!_isRevealed(mask, i)) continue;
            if (reveals == 0) lowest = digests[i];
            if (digests[i] != lowest) same = false;
            ++reveals;
        }
        assertEq(agree, reveals >= 2 && same, "agreement");
        assertEq(digest, lowest, "digest of the lowest revealed replica");
    }

    function testFuzz_majority_isTheStrictMajorityOrNone(uint256 seed, uint8 claims, uint8 revealed)
        public
        pure
    {
        (bytes32[] memory digests, uint256 mask) = _votes(seed, claims, revealed);
        uint256 got = Tally.majority(digests, mask);
        uint256 reveals = 0;
        for (uint256 i; i < digests.length; ++i) {
            if (_isRevealed(mask, i)) ++reveals;
        }
        bool found = false;
        for (uint256 i; i < digests.length; ++i) {
            if (!_isRevealed(mask, i)) continue;
            uint256 same = 0;
            uint256 count = 0;
            for (uint256 j; j < digests.length; ++j) {
                if (_isRevealed(mask, j) && digests[j] == digests[i]) {
                    same += 1 << j;
                    ++count;
                }
            }
            if (2 * count > reveals) {
                assertEq(got, same, "the majority's replicas");
                found = true;
                break;
            }
        }
        if (!found) assertEq(got, 0, "no strict majority");
        assertEq(got & ~mask, 0, "only revealed replicas");
    }

    function testFuzz_missed_byDeadline(uint8 state, uint8 claims, uint8 committed, uint8 revealed)
        public
        pure
    {
        claims = uint8(_bound(claims, 0, 5));
        uint256 claimed = (1 << claims) - 1;
        // The market's masks only hold claimed replicas, and only committed ones reveal.
        uint256 c = committed & claimed;
        uint256 r = revealed & c;
        IJobMarket.JobState s = [
            IJobMarket.JobState.Open, IJobMarket.JobState.Claimed, IJobMarket.JobState.Revealing
        ][_bound(state, 0, 2)];
        uint256 got = Tally.missed(s, claims, c, r);
        for (uint256 i; i < 8; ++i) {
            bool expected = s == IJobMarket.JobState.Open
                ? _isRevealed(claimed, i)
                : s == IJobMarket.JobState.Claimed
                    ? _isRevealed(claimed, i) && !_isRevealed(c, i)
                    : _isRevealed(c, i) && !_isRevealed(r, i);
            assertEq(_isRevealed(got, i), expected, "missed replica");
        }
    }

    function testFuzz_split_losesNothing(uint96 bond, uint8 n) public pure {
        n = uint8(_bound(n, 1, 5));
        (uint256 share, uint256 remainder) = Tally.split(bond, n);
        assertEq(share * n + remainder, bond, "shares + remainder == bond");
        assertLe(remainder + 1, n, "remainder below one unit per replica");
    }
}
