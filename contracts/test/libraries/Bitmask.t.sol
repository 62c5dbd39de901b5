// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {Bitmask} from "../../src/libraries/Bitmask.sol";

/// @notice Bitmask against bit-by-bit reference loops.
contract BitmaskTest is Test {
    function testFuzz_count_matchesBitByBit(uint256 mask) public pure {
        uint256 n = 0;
        for (uint256 i; i < 256; ++i) {
            if ((mask / (2 ** i)) % 2 == 1) ++n;
        }
        assertEq(Bitmask.count(mask), n, "set bits");
    }

    function testFuzz_has_matchesDivision(uint256 mask, uint8 index) public pure {
        assertEq(Bitmask.has(mask, index), (mask / (2 ** uint256(index))) % 2 == 1, "bit");
    }

    function testFuzz_first_setsExactlyTheLowIndexes(uint8 n, uint8 index) public pure {
        n = uint8(_bound(n, 0, 8));
        uint256 mask = Bitmask.first(n);
        assertEq(Bitmask.count(mask), n, "n bits");
        assertEq(Bitmask.has(mask, index), index < n, "only indexes below n");
    }
}
