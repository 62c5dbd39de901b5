// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";

/// @notice registerProvider, updateMetadata, addBond, requestExit, cancelExit, withdrawBond.
contract ProvidersTest is MarketFixture {
    // ================================================================ registerProvider

    function test_registerProvider_pullsBondAndRegisters() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.ProviderRegistered(provider, MIN_BOND, "ipfs://offer");
        vm.prank(provider);
        market.registerProvider(MIN_BOND, "ipfs://offer");
        IJobMarket.Provider memory p = market.getProvider(provider);
        assertTrue(p.registered, "registered");
        assertEq(p.bond, MIN_BOND, "bond");
        assertEq(p.locked, 0, "nothing locked");
        assertEq(p.exitAvailableAt, 0, "not exiting");
        assertEq(credits.balanceOf(address(market)), MIN_BOND, "tokens moved");
        _assertSolvent(0);
    }

    function test_registerProvider_revertsIfAlreadyRegistered() public {
        _register(provider, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AlreadyRegistered.selector, provider));
        vm.prank(provider);
        market.registerProvider(MIN_BOND, "");
    }

    function test_registerProvider_revertsIfBondTooLow() public {
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.BondTooLow.selector, provider, MIN_BOND - 1, MIN_BOND)
        );
        vm.prank(provider);
        market.registerProvider(MIN_BOND - 1, "");
    }

    function test_registerProvider_revertsIfBondAbove96Bits() public {
        uint256 tooBig = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AmountTooLarge.selector, tooBig));
        vm.prank(provider);
        market.registerProvider(tooBig, "");
    }

    // ================================================================ updateMetadata

    function test_updateMetadata_emits() public {
        _register(provider, MIN_BOND);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.ProviderMetadataUpdated(provider, "ipfs://new-offer");
        vm.prank(provider);
        market.updateMetadata("ipfs://new-offer");
    }

    function test_updateMetadata_revertsIfNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotRegistered.selector, stranger));
        vm.prank(stranger);
        market.updateMetadata("x");
    }

    // ================================================================ addBond

    function test_addBond_increasesBond() public {
        _register(provider, MIN_BOND);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.BondAdded(provider, 5 ether);
        vm.prank(provider);
        market.addBond(5 ether);
        assertEq(market.getProvider(provider).bond, MIN_BOND + 5 ether, "bond");
        _assertSolvent(0);
    }

    function test_addBond_restoresClaimingAfterSlash() public {
        uint256 jobId = _claimedJob();
        vm.warp(market.getJob(jobId).deadline + 1);
        market.reclaim(jobId);
        vm.prank(provider);
        market.addBond(_collateral(PRICE));
        uint256 next = _openJob(1);
        vm.prank(provider);
        market.claimJob(next, PRICE);
        _assertState(next, IJobMarket.JobState.Claimed);
    }

    function test_addBond_revertsIfNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotRegistered.selector, stranger));
        vm.prank(stranger);
        market.addBond(1 ether);
    }

    function test_addBond_revertsIfZero() public {
        _register(provider, MIN_BOND);
        vm.expectRevert(IJobMarket.ZeroAmount.selector);
        vm.prank(provider);
        market.addBond(0);
    }

    function test_addBond_revertsIfBondWouldExceed96Bits() public {
        _register(provider, MIN_BOND);
        uint256 amount = uint256(type(uint96).max);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AmountTooLarge.selector, MIN_BOND + amount));
        vm.prank(provider);
        market.addBond(amount);
    }

    // ================================================================ requestExit / cancelExit

    function test_requestExit_setsCooldown() public {
        _register(provider, MIN_BOND);
        uint40 exitAt = uint40(block.timestamp + EXIT_COOLDOWN);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.ExitRequested(provider, exitAt);
        vm.prank(provider);
        market.requestExit();
        assertEq(market.getProvider(provider).exitAvailableAt, exitAt, "exit time");
    }

    function test_requestExit_revertsIfNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotRegistered.selector, stranger));
        vm.prank(stranger);
        market.requestExit();
    }

    function test_requestExit_revertsIfAlreadyExiting() public {
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.requestExit();
        uint40 exitAt = uint40(block.timestamp + EXIT_COOLDOWN);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ProviderExiting.selector, provider, exitAt));
        vm.prank(provider);
        market.requestExit();
    }

    function test_cancelExit_acceptsJobsAgain() public {
        uint256 jobId = _openJob();
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.requestExit();
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.ExitCancelled(provider);
        vm.prank(provider);
        market.cancelExit();
        assertEq(market.getProvider(provider).exitAvailableAt, 0, "not exiting");
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
        _assertState(jobId, IJobMarket.JobState.Claimed);
    }

    function test_cancelExit_revertsIfNotExiting() public {
        _register(provider, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotExiting.selector, provider));
        vm.prank(provider);
        market.cancelExit();
    }

    // ================================================================ withdrawBond

    function test_withdrawBond_paysUnlockedBondAfterCooldown() public {
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.requestExit();
        vm.warp(block.timestamp + EXIT_COOLDOWN);
        uint256 before = credits.balanceOf(treasury);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.BondWithdrawn(provider, treasury, MIN_BOND);
        vm.prank(provider);
        market.withdrawBond(MIN_BOND, treasury);
        assertEq(credits.balanceOf(treasury), before + MIN_BOND, "paid");
        assertEq(market.getProvider(provider).bond, 0, "bond empty");
        _assertSolvent(0);
    }

    function test_withdrawBond_leavesCollateralOfRunningJobs() public {
        uint256 jobId = _claimedJob();
        vm.prank(provider);
        market.requestExit();
        vm.warp(block.timestamp + EXIT_COOLDOWN);
        uint256 unlocked = MIN_BOND - _collateral(PRICE);
        vm.prank(provider);
        market.withdrawBond(unlocked, provider);
        // The exiting provider still owes the delivery; here it defaults and the collateral is slashed.
        market.reclaim(jobId);
        assertEq(market.getProvider(provider).bond, 0, "collateral went to the client");
        _assertSolvent(jobId);
    }

    function test_withdrawBond_revertsIfLocked() public {
        _claimedJob();
        vm.prank(provider);
        market.requestExit();
        vm.warp(block.timestamp + EXIT_COOLDOWN);
        uint256 unlocked = MIN_BOND - _collateral(PRICE);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.BondLocked.selector, provider, unlocked, MIN_BOND));
        vm.prank(provider);
        market.withdrawBond(MIN_BOND, provider);
    }

    function test_withdrawBond_revertsIfExitNotRequested() public {
        _register(provider, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ExitNotReady.selector, provider, 0));
        vm.prank(provider);
        market.withdrawBond(1 ether, provider);
    }

    function test_withdrawBond_revertsBeforeCooldown() public {
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.requestExit();
        uint40 exitAt = uint40(block.timestamp + EXIT_COOLDOWN);
        vm.warp(exitAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ExitNotReady.selector, provider, exitAt));
        vm.prank(provider);
        market.withdrawBond(1 ether, provider);
    }

    function test_withdrawBond_revertsIfZero() public {
        _register(provider, MIN_BOND);
        vm.expectRevert(IJobMarket.ZeroAmount.selector);
        vm.prank(provider);
        market.withdrawBond(0, provider);
    }

    function test_withdrawBond_revertsIfToZeroAddress() public {
        _register(provider, MIN_BOND);
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        vm.prank(provider);
        market.withdrawBond(1 ether, address(0));
    }
}
