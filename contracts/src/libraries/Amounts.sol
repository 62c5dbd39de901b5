// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IJobMarket} from "../interfaces/IJobMarket.sol";

/// @title Amounts — the market's 96-bit amounts and basis-point shares of them
library Amounts {
    /// @notice 100 % in basis points.
    uint256 internal constant BPS = 10_000;

    /// @notice `amount` as a 96-bit amount; reverts with {IJobMarket-AmountTooLarge} above 2^96 - 1.
    function toAmount(uint256 amount) internal pure returns (uint96) {
        if (amount > type(uint96).max) revert IJobMarket.AmountTooLarge(amount);
        return uint96(amount);
    }

    /// @notice `rate` basis points of `amount`, rounded down; reverts if it does not fit 96 bits
    ///         (only possible for rates above 100 %).
    function share(uint96 amount, uint256 rate) internal pure returns (uint96) {
        // amount < 2^96 and the market's rates are far below 2^160: the product fits 256 bits.
        return toAmount((uint256(amount) * rate) / BPS);
    }
}
