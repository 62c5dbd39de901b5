// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The market terms that {ReplicatedJobs} needs, packed in one word: a library cannot
///         read JobMarket's immutables, so the market keeps this word as one more immutable and
///         passes it on every call (one stack value, no memory struct to encode).
///         Layout, low bits first: disputeBond (96), collateralBps (16), challengeWindow (48),
///         resolveWindow (48), revealWindow (48).
type Terms is uint256;

using TermsLib for Terms global;

/// @title TermsLib — packing and reading {Terms}
library TermsLib {
    /// @notice Packs the terms; every field keeps its exact value (the types bound them).
    function pack(
        uint96 disputeBond_,
        uint16 collateralBps_,
        uint48 challengeWindow_,
        uint48 resolveWindow_,
        uint48 revealWindow_
    ) internal pure returns (Terms) {
        return Terms.wrap(
            uint256(disputeBond_) | (uint256(collateralBps_) << 96) | (uint256(challengeWindow_) << 112)
                | (uint256(resolveWindow_) << 160) | (uint256(revealWindow_) << 208)
        );
    }

    /// @notice Credits a client locks to dispute.
    function disputeBond(Terms terms) internal pure returns (uint96) {
        return uint96(Terms.unwrap(terms));
    }

    /// @notice Collateral a claim locks, in basis points of the claim price.
    function collateralBps(Terms terms) internal pure returns (uint16) {
        return uint16(Terms.unwrap(terms) >> 96);
    }

    /// @notice Seconds after delivery (agreement) during which the client may dispute.
    function challengeWindow(Terms terms) internal pure returns (uint48) {
        return uint48(Terms.unwrap(terms) >> 112);
    }

    /// @notice Seconds the arbiter has to decide a dispute.
    function resolveWindow(Terms terms) internal pure returns (uint48) {
        return uint48(Terms.unwrap(terms) >> 160);
    }

    /// @notice Seconds replicas have to reveal once every one committed.
    function revealWindow(Terms terms) internal pure returns (uint48) {
        return uint48(Terms.unwrap(terms) >> 208);
    }
}
