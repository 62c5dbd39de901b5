// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {Terms, TermsLib} from "../../src/libraries/Terms.sol";
import {Amounts} from "../../src/libraries/Amounts.sol";
import {Results} from "../../src/libraries/Results.sol";

/// @notice Packing of the market terms, the 96-bit amounts and the replica commitment.
contract TermsTest is Test {
    function testFuzz_pack_roundTrips(
        uint96 bond,
        uint16 bps,
        uint48 challenge,
        uint48 resolve,
        uint48 reveal
    ) public pure {
        Terms terms = TermsLib.pack(bond, bps, challenge, resolve, reveal);
        assertEq(terms.disputeBond(), bond, "dispute bond");
        assertEq(terms.collateralBps(), bps, "collateral bps");
        assertEq(terms.challengeWindow(), challenge, "challenge window");
        assertEq(terms.resolveWindow(), resolve, "resolve window");
        assertEq(terms.revealWindow(), reveal, "reveal window");
    }

    function testFuzz_share_isFloorOfBps(uint96 amount, uint16 rate) public pure {
        rate = uint16(_bound(rate, 0, Amounts.BPS));
        uint256 got = Amounts.share(amount, rate);
        assertLe(got * Amounts.BPS, uint256(amount) * rate, "rounded down");
        assertGe((got + 1) * Amounts.BPS, uint256(amount) * rate + 1, "by less than one unit");
    }

    function testFuzz_commitment_bindsEveryField(uint256 jobId, address provider, bytes32 salt, uint8 field)
        public
        pure
    {
        bytes32 cid = keccak256("cid");
        bytes32 video = keccak256("video");
        bytes32 frames = keccak256("frames");
        bytes32 c = Results.commitment(jobId, provider, cid, video, frames, salt);
        assertEq(c, keccak256(abi.encode(jobId, provider, cid, video, frames, salt)), "abi.encode layout");
        bytes32 other;
        uint256 f = _bound(field, 0, 5);
        if (f == 0) {
            other = Results.commitment(jobId ^ 1, provider, cid, video, frames, salt);
        } else if (f == 1) {
            other = Results.commitment(jobId, address(uint160(provider) ^ 1), cid, video, frames, salt);
        } else if (f == 2) {
            other = Results.commitment(jobId, provider, cid ^ bytes32(uint256(1)), video, frames, salt);
        } else if (f == 3) {
            other = Results.commitment(jobId, provider, cid, video ^ bytes32(uint256(1)), frames, salt);
        } else if (f == 4) {
            other = Results.commitment(jobId, provider, cid, video, frames ^ bytes32(uint256(1)), salt);
        } else {
            other = Results.commitment(jobId, provider, cid, video, frames, salt ^ bytes32(uint256(1)));
        }
        assertTrue(other != c, "a changed field changes the commitment");
    }
}
