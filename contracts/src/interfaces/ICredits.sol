// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ICredits — testnet credits with a rate-limited faucet
/// @notice ERC-20 (with EIP-2612 permit) that pays for framecast jobs. Anyone may draw a fixed
///         drip from the faucet once per cooldown; the owner can switch the faucet off.
interface ICredits {
    /// @notice The faucet is switched off on this network.
    error FaucetDisabled();
    /// @notice `account` drew from the faucet less than one cooldown ago.
    /// @param account The caller.
    /// @param availableAt Timestamp from which the next drip is allowed.
    error FaucetCooldown(address account, uint64 availableAt);
    /// @notice A faucet setting is out of its allowed range.
    error InvalidFaucetConfig(uint256 dripAmount, uint64 cooldown);

    /// @notice `account` received `amount` credits from the faucet.
    event FaucetDrip(address indexed account, uint256 amount, uint64 nextAvailableAt);
    /// @notice The owner changed the faucet settings.
    event FaucetConfigured(bool enabled, uint256 dripAmount, uint64 cooldown);

    /// @notice Draw `dripAmount()` credits to the caller, at most once per `cooldown()`.
    /// @return amount The credits minted to the caller.
    function faucet() external returns (uint256 amount);

    /// @notice Timestamp from which `account` may draw from the faucet again (0: now).
    function faucetAvailableAt(address account) external view returns (uint64);

    /// @notice Credits paid per drip.
    function dripAmount() external view returns (uint256);

    /// @notice Seconds between two drips to the same address.
    function cooldown() external view returns (uint64);

    /// @notice Whether the faucet is open.
    function faucetEnabled() external view returns (bool);
}
