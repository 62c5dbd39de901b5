// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {Amounts} from "./Amounts.sol";
import {Books} from "./Books.sol";

/// @title Payouts — paying a provider for a claim, or unlocking (and slashing) its collateral
/// @notice Shared by {JobMarket} (single jobs) and {ReplicatedJobs} (each replica).
library Payouts {
    /// @notice Pays `price` minus the protocol fee (plus `bondPaid`) to `provider`'s free balance,
    ///         books the fee and unlocks the collateral its claim at `price` locked; emits
    ///         {IJobMarket-JobSettled}.
    function pay(
        Books storage books,
        uint256 jobId,
        address provider,
        uint96 price,
        uint16 feeBps,
        uint16 collateralBps,
        uint96 bondPaid
    ) internal {
        // feeBps <= MAX_FEE_BPS < 100 %, so the fee fits 96 bits.
        uint96 fee = uint96((uint256(price) * feeBps) / Amounts.BPS);
        uint96 collateral = Amounts.share(price, collateralBps);
        IJobMarket.Provider storage p = books.providers[provider];
        unchecked {
            // The claim locked exactly this collateral; fee <= price.
            p.locked -= collateral;
            books.free[provider] += uint256(price - fee) + bondPaid;
        }
        if (fee != 0) books.feesOwed += fee;
        emit IJobMarket.JobSettled(jobId, provider, price - fee, fee, collateral, bondPaid);
    }

    /// @notice Unlocks the collateral of a claim at `price`; with `slash` also removes it from the
    ///         provider's bond and returns it (the caller credits it to the client).
    function unlock(Books storage books, address provider, uint96 price, uint16 collateralBps, bool slash)
        internal
        returns (uint96 slashed)
    {
        uint96 collateral = Amounts.share(price, collateralBps);
        IJobMarket.Provider storage p = books.providers[provider];
        unchecked {
            // The claim locked `collateral`, so locked >= collateral and bond >= locked.
            p.locked -= collateral;
            if (slash) {
                p.bond -= collateral;
                slashed = collateral;
            }
        }
    }
}
