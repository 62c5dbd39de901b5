// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ICredits} from "./interfaces/ICredits.sol";

/// @title Credits — framecast testnet credits
/// @notice ERC-20 with EIP-2612 permit (so a deposit into the market is one transaction) and a
///         rate-limited faucet. On a real network the owner switches the faucet off.
contract Credits is ERC20, ERC20Permit, Ownable2Step, ICredits {
    /// @notice Upper bound on one drip, so a misconfiguration cannot mint without limit.
    uint256 public constant MAX_DRIP = 1_000_000 ether;

    uint256 private _dripAmount;
    uint64 private _cooldown;
    bool private _faucetEnabled;
    mapping(address account => uint64 availableAt) private _nextDrip;

    /// @param initialOwner Owner (faucet settings, minting for deployment funding).
    /// @param dripAmount_ Credits paid per drip.
    /// @param cooldown_ Seconds between two drips to the same address.
    constructor(address initialOwner, uint256 dripAmount_, uint64 cooldown_)
        ERC20("framecast credits", "FCC")
        ERC20Permit("framecast credits")
        Ownable(initialOwner)
    {
        _configure(true, dripAmount_, cooldown_);
    }

    /// @inheritdoc ICredits
    function faucet() external returns (uint256 amount) {
        if (!_faucetEnabled) revert FaucetDisabled();
        uint64 availableAt = _nextDrip[msg.sender];
        if (block.timestamp < availableAt) revert FaucetCooldown(msg.sender, availableAt);
        uint64 next = uint64(block.timestamp) + _cooldown;
        _nextDrip[msg.sender] = next;
        amount = _dripAmount;
        _mint(msg.sender, amount);
        emit FaucetDrip(msg.sender, amount, next);
    }

    /// @notice Change the faucet: on/off, drip size and cooldown.
    function setFaucet(bool enabled, uint256 dripAmount_, uint64 cooldown_) external onlyOwner {
        _configure(enabled, dripAmount_, cooldown_);
    }

    /// @notice Mint credits (deployment funding of named test accounts).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @inheritdoc ICredits
    function faucetAvailableAt(address account) external view returns (uint64) {
        return _nextDrip[account];
    }

    /// @inheritdoc ICredits
    function dripAmount() external view returns (uint256) {
        return _dripAmount;
    }

    /// @inheritdoc ICredits
    function cooldown() external view returns (uint64) {
        return _cooldown;
    }

    /// @inheritdoc ICredits
    function faucetEnabled() external view returns (bool) {
        return _faucetEnabled;
    }

    function _configure(bool enabled, uint256 dripAmount_, uint64 cooldown_) private {
        if (dripAmount_ == 0 || dripAmount_ > MAX_DRIP) revert InvalidFaucetConfig(dripAmount_, cooldown_);
        _faucetEnabled = enabled;
        _dripAmount = dripAmount_;
        _cooldown = cooldown_;
        emit FaucetConfigured(enabled, dripAmount_, cooldown_);
    }
}
