// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "./Vm.sol";

/// @notice Minimal test base: cheatcodes, assertions that revert with readable messages (forge
///         counts a revert as a failure), bounded fuzz inputs and forge's invariant-target plumbing.
abstract contract Test {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @dev The ABI forge reads through `targetSelectors()` (same shape as forge-std's StdInvariant).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private _targetedContracts;
    address[] private _targetedSenders;
    FuzzSelector[] private _targetedSelectors;

    // ------------------------------------------------------------ invariant targets (read by forge)

    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    function targetSenders() public view returns (address[] memory) {
        return _targetedSenders;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSender(address sender) internal {
        _targetedSenders.push(sender);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetedSelectors.push(selector);
    }

    // ------------------------------------------------------------ accounts

    function makeAddr(string memory name) internal returns (address account) {
        account = vm.addr(uint256(keccak256(bytes(name))));
        vm.label(account, name);
    }

    // ------------------------------------------------------------ fuzz bounds

    /// @dev Maps `x` into [min, max] without skewing towards the edges more than a modulo does;
    ///      values already in range are kept so forge's dictionary hits stay meaningful.
    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "_bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + (x % (size + 1));
    }

    // ------------------------------------------------------------ assertions

    function fail(string memory message) internal pure {
        revert(message);
    }

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) revert(string.concat("assertTrue failed: ", message));
    }

    function assertFalse(bool condition, string memory message) internal pure {
        if (condition) revert(string.concat("assertFalse failed: ", message));
    }

    function assertEq(uint256 left, uint256 right, string memory message) internal pure {
        if (left != right) {
            revert(
                string.concat(
                    "assertEq failed: ", message, ": ", vm.toString(left), " != ", vm.toString(right)
                )
            );
        }
    }

    function assertEq(uint256 left, uint256 right) internal pure {
        assertEq(left, right, "uint256");
    }

    function assertEq(address left, address right, string memory message) internal pure {
        if (left != right) {
            revert(
                string.concat(
                    "assertEq failed: ", message, ": ", vm.toString(left), " != ", vm.toString(right)
                )
            );
        }
    }

    function assertEq(address left, address right) internal pure {
        assertEq(left, right, "address");
    }

    function assertEq(bytes32 left, bytes32 right, string memory message) internal pure {
        if (left != right) {
            revert(
                string.concat(
                    "assertEq failed: ", message, ": ", vm.toString(left), " != ", vm.toString(right)
                )
            );
        }
    }

    function assertEq(bytes32 left, bytes32 right) internal pure {
        assertEq(left, right, "bytes32");
    }

    function assertEq(bool left, bool right, string memory message) internal pure {
        if (left != right) revert(string.concat("assertEq failed: ", message, left ? ": true" : ": false"));
    }

    function assertEq(bytes memory left, bytes memory right, string memory message) internal pure {
        if (keccak256(left) != keccak256(right)) {
            revert(
                string.concat(
                    "assertEq failed: ", message, ": ", vm.toString(left), " != ", vm.toString(right)
                )
            );
        }
    }

    function assertEq(string memory left, string memory right, string memory message) internal pure {
        if (keccak256(bytes(left)) != keccak256(bytes(right))) {
            revert(string.concat("assertEq failed: ", message, ": '", left, "' != '", right, "'"));
        }
    }

    function assertGe(uint256 left, uint256 right, string memory message) internal pure {
        if (left < right) {
            revert(
                string.concat(
                    "assertGe failed: ", message, ": ", vm.toString(left), " < ", vm.toString(right)
                )
            );
        }
    }

    function assertLe(uint256 left, uint256 right, string memory message) internal pure {
        if (left > right) {
            revert(
                string.concat(
                    "assertLe failed: ", message, ": ", vm.toString(left), " > ", vm.toString(right)
                )
            );
        }
    }
}
