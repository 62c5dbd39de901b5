// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @notice cancelJob, claimJob, deliver, dispute, resolve, settle, reclaim: outcomes and reverts.
contract LifecycleTest is MarketFixture {
    bytes32 internal constant VIDEO = keccak256("video");
    bytes32 internal constant FRAMES = keccak256("frames");

    // ================================================================ cancelJob

    function test_cancelJob_refundsMaxPrice() public {
        uint256 jobId = _openJob();
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobCancelled(jobId, client, MAX_PRICE);
        vm.prank(client);
        market.cancelJob(jobId);
        _assertState(jobId, IJobMarket.JobState.Cancelled);
        assertEq(market.freeBalanceOf(client), MAX_PRICE, "refunded");
        assertEq(market.escrowOf(jobId), 0, "escrow released");
        _assertSolvent(jobId);
    }

    function test_cancelJob_worksAfterClaimDeadline() public {
        uint256 jobId = _openJob();
        vm.warp(block.timestamp + 1 days);
        vm.prank(client);
        market.cancelJob(jobId);
        _assertState(jobId, IJobMarket.JobState.Cancelled);
    }

    function test_cancelJob_revertsIfNotClient() public {
        uint256 jobId = _openJob();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotJobClient.selector, jobId, stranger));
        vm.prank(stranger);
        market.cancelJob(jobId);
    }

    function test_cancelJob_revertsIfClaimed() public {
        uint256 jobId = _claimedJob();
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Claimed)
        );
        vm.prank(client);
        market.cancelJob(jobId);
    }

    function test_cancelJob_revertsIfCancelledTwice() public {
        uint256 jobId = _openJob();
        vm.prank(client);
        market.cancelJob(jobId);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Cancelled)
        );
        vm.prank(client);
        market.cancelJob(jobId);
    }

    function test_cancelJob_revertsIfNoSuchJob() public {
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, 99, IJobMarket.JobState.None)
        );
        market.cancelJob(99);
    }

    // ================================================================ claimJob

    function test_claimJob_locksCollateralAndRefundsSurplus() public {
        uint256 jobId = _openJob();
        _register(provider, MIN_BOND);
        uint64 deliverBy = uint64(block.timestamp + DELIVERY_WINDOW);

        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobClaimed(jobId, provider, PRICE, MAX_PRICE - PRICE, _collateral(PRICE), deliverBy);
        vm.prank(provider);
        market.claimJob(jobId, PRICE);

        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint256(job.state), uint256(IJobMarket.JobState.Claimed), "state");
        assertEq(job.provider, provider, "provider");
        assertEq(job.amount, PRICE, "price");
        assertEq(job.deadline, deliverBy, "deliver by");
        assertEq(market.freeBalanceOf(client), MAX_PRICE - PRICE, "surplus refunded at once");
        assertEq(market.escrowOf(jobId), PRICE, "escrow is the price");
        assertEq(market.getProvider(provider).locked, _collateral(PRICE), "collateral locked");
        _assertSolvent(jobId);
    }

    function test_claimJob_atMaxPriceRefundsNothing() public {
        uint256 jobId = _openJob();
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.claimJob(jobId, MAX_PRICE);
        assertEq(market.freeBalanceOf(client), 0, "no refund");
        assertEq(market.escrowOf(jobId), MAX_PRICE, "escrow");
    }

    function test_claimJob_atClaimDeadlineSucceeds() public {
        uint256 jobId = _openJob();
        _register(provider, MIN_BOND);
        vm.warp(market.getJob(jobId).deadline);
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
        _assertState(jobId, IJobMarket.JobState.Claimed);
    }

    function test_claimJob_revertsIfExpired() public {
        uint256 jobId = _openJob();
        _register(provider, MIN_BOND);
        uint64 claimDeadline = market.getJob(jobId).deadline;
        vm.warp(claimDeadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ClaimWindowClosed.selector, jobId, claimDeadline));
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
    }

    function test_claimJob_revertsIfPriceAboveMax() public {
        uint256 jobId = _openJob();
        _register(provider, MIN_BOND);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.PriceAboveMax.selector, jobId, MAX_PRICE + 1, MAX_PRICE)
        );
        vm.prank(provider);
        market.claimJob(jobId, MAX_PRICE + 1);
    }

    function test_claimJob_revertsIfUnregistered() public {
        uint256 jobId = _openJob();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotRegistered.selector, stranger));
        vm.prank(stranger);
        market.claimJob(jobId, PRICE);
    }

    function test_claimJob_revertsIfBondBelowMinimum() public {
        // A slash took the provider's bond below the minimum: it must top up before claiming again.
        uint256 jobId = _claimedJob();
        vm.warp(market.getJob(jobId).deadline + 1);
        market.reclaim(jobId);
        uint256 bond = MIN_BOND - _collateral(PRICE);
        assertEq(market.getProvider(provider).bond, bond, "slashed");

        uint256 next = _openJob(1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.BondTooLow.selector, provider, bond, MIN_BOND));
        vm.prank(provider);
        market.claimJob(next, PRICE);
    }

    function test_claimJob_revertsIfCollateralNotCovered() public {
        // MIN_BOND backs four claims at 50 (25 collateral each); the fifth finds no unlocked bond.
        _register(provider, MIN_BOND);
        uint256 maxClaims = MIN_BOND / _collateral(MAX_PRICE); // 4 jobs at 25 collateral each
        for (uint256 i; i < maxClaims; ++i) {
            uint256 id = _openJob(i);
            vm.prank(provider);
            market.claimJob(id, MAX_PRICE);
        }
        uint256 jobId = _openJob(maxClaims);
        uint256 unlocked = MIN_BOND - maxClaims * _collateral(MAX_PRICE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.InsufficientCollateral.selector, provider, unlocked, _collateral(MAX_PRICE)
            )
        );
        vm.prank(provider);
        market.claimJob(jobId, MAX_PRICE);
    }

    function test_claimJob_revertsIfProviderExiting() public {
        uint256 jobId = _openJob();
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.requestExit();
        uint40 exitAt = uint40(block.timestamp + EXIT_COOLDOWN);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ProviderExiting.selector, provider, exitAt));
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
    }

    function test_claimJob_revertsIfAlreadyClaimed() public {
        uint256 jobId = _claimedJob();
        _register(provider2, MIN_BOND);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Claimed)
        );
        vm.prank(provider2);
        market.claimJob(jobId, PRICE);
    }

    function test_claimJob_revertsIfCancelled() public {
        uint256 jobId = _openJob();
        vm.prank(client);
        market.cancelJob(jobId);
        _register(provider, MIN_BOND);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Cancelled)
        );
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
    }

    // ================================================================ deliver

    function test_deliver_startsChallengeWindow() public {
        uint256 jobId = _claimedJob();
        vm.warp(block.timestamp + 30 minutes);
        uint64 challengeEnds = uint64(block.timestamp + CHALLENGE_WINDOW);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobDelivered(jobId, provider, _cid(), VIDEO, FRAMES, challengeEnds);
        vm.prank(provider);
        market.deliver(jobId, _cid(), VIDEO, FRAMES);
        _assertState(jobId, IJobMarket.JobState.Delivered);
        assertEq(market.getJob(jobId).deadline, challengeEnds, "challenge end");
        assertEq(market.escrowOf(jobId), PRICE, "still escrowed");
        _assertSolvent(jobId);
    }

    function test_deliver_atDeadlineSucceeds() public {
        uint256 jobId = _claimedJob();
        vm.warp(market.getJob(jobId).deadline);
        vm.prank(provider);
        market.deliver(jobId, _cid(), VIDEO, FRAMES);
        _assertState(jobId, IJobMarket.JobState.Delivered);
    }

    function test_deliver_acceptsMaxCidLength() public {
        uint256 jobId = _claimedJob();
        vm.prank(provider);
        market.deliver(jobId, new bytes(128), VIDEO, FRAMES);
        _assertState(jobId, IJobMarket.JobState.Delivered);
    }

    function test_deliver_revertsIfNotProvider() public {
        uint256 jobId = _claimedJob();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotJobProvider.selector, jobId, stranger));
        vm.prank(stranger);
        market.deliver(jobId, _cid(), VIDEO, FRAMES);
    }

    function test_deliver_revertsIfLate() public {
        uint256 jobId = _claimedJob();
        uint64 deliverBy = market.getJob(jobId).deadline;
        vm.warp(deliverBy + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DeliveryWindowClosed.selector, jobId, deliverBy));
        vm.prank(provider);
        market.deliver(jobId, _cid(), VIDEO, FRAMES);
    }

    function test_deliver_revertsIfCidEmpty() public {
        uint256 jobId = _claimedJob();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidCid.selector, 0));
        vm.prank(provider);
        market.deliver(jobId, "", VIDEO, FRAMES);
    }

    function test_deliver_revertsIfCidTooLong() public {
        uint256 jobId = _claimedJob();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidCid.selector, 129));
        vm.prank(provider);
        market.deliver(jobId, new bytes(129), VIDEO, FRAMES);
    }

    function test_deliver_revertsIfVideoDigestEmpty() public {
        uint256 jobId = _claimedJob();
        vm.expectRevert(IJobMarket.EmptyDigest.selector);
        vm.prank(provider);
        market.deliver(jobId, _cid(), bytes32(0), FRAMES);
    }

    function test_deliver_revertsIfFramesDigestEmpty() public {
        uint256 jobId = _claimedJob();
        vm.expectRevert(IJobMarket.EmptyDigest.selector);
        vm.prank(provider);
        market.deliver(jobId, _cid(), VIDEO, bytes32(0));
    }

    function test_deliver_revertsIfNotClaimed() public {
        uint256 jobId = _openJob();
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Open)
        );
        vm.prank(provider);
        market.deliver(jobId, _cid(), VIDEO, FRAMES);
    }

    function test_deliver_revertsIfDeliveredTwice() public {
        uint256 jobId = _deliveredJob();
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Delivered)
        );
        vm.prank(provider);
        market.deliver(jobId, _cid(), VIDEO, FRAMES);
    }

    // ================================================================ dispute

    function test_dispute_locksBondAndStartsResolveWindow() public {
        uint256 jobId = _deliveredJob();
        _deposit(client, DISPUTE_BOND);
        uint256 freeBefore = market.freeBalanceOf(client);
        uint64 resolveBy = uint64(block.timestamp + RESOLVE_WINDOW);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobDisputed(
            jobId, client, IJobMarket.DisputeReason.ReplayMismatch, keccak256("replay"), resolveBy
        );
        vm.prank(client);
        market.dispute(jobId, IJobMarket.DisputeReason.ReplayMismatch, keccak256("replay"));
        _assertState(jobId, IJobMarket.JobState.Disputed);
        assertEq(market.getJob(jobId).deadline, resolveBy, "resolve by");
        assertEq(market.freeBalanceOf(client), freeBefore - DISPUTE_BOND, "bond taken");
        assertEq(market.escrowOf(jobId), PRICE + DISPUTE_BOND, "bond escrowed");
        _assertSolvent(jobId);
    }

    function test_dispute_revertsIfNotClient() public {
        uint256 jobId = _deliveredJob();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotJobClient.selector, jobId, provider));
        vm.prank(provider);
        market.dispute(jobId, IJobMarket.DisputeReason.HashMismatch, 0);
    }

    function test_dispute_revertsAfterChallengeWindow() public {
        uint256 jobId = _deliveredJob();
        _deposit(client, DISPUTE_BOND);
        uint64 challengeEnds = market.getJob(jobId).deadline;
        vm.warp(challengeEnds);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobId, challengeEnds)
        );
        vm.prank(client);
        market.dispute(jobId, IJobMarket.DisputeReason.HashMismatch, 0);
    }

    function test_dispute_revertsIfBondNotCovered() public {
        uint256 jobId = _deliveredJob();
        uint256 free = market.freeBalanceOf(client) - 1; // keep less than the bond
        vm.prank(client);
        market.withdraw(1, client);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InsufficientBalance.selector, client, free, DISPUTE_BOND)
        );
        vm.prank(client);
        market.dispute(jobId, IJobMarket.DisputeReason.HashMismatch, 0);
    }

    function test_dispute_revertsIfNotDelivered() public {
        uint256 jobId = _claimedJob();
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Claimed)
        );
        vm.prank(client);
        market.dispute(jobId, IJobMarket.DisputeReason.HashMismatch, 0);
    }

    function test_dispute_revertsIfDisputedTwice() public {
        uint256 jobId = _disputedJob();
        _deposit(client, DISPUTE_BOND);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Disputed)
        );
        vm.prank(client);
        market.dispute(jobId, IJobMarket.DisputeReason.HashMismatch, 0);
    }

    // ================================================================ resolve

    function test_resolve_providerAtFaultRefundsClientAndSlashes() public {
        uint256 jobId = _disputedJob();
        uint256 clientBefore = market.freeBalanceOf(client);
        uint256 slashed = _collateral(PRICE);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobResolved(jobId, arbiter, true);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobRefunded(jobId, client, IJobMarket.JobState.Rejected, PRICE, slashed);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.DisputeBondReturned(jobId, client, DISPUTE_BOND);
        vm.prank(arbiter);
        market.resolve(jobId, true);

        _assertState(jobId, IJobMarket.JobState.Rejected);
        assertEq(
            market.freeBalanceOf(client), clientBefore + PRICE + slashed + DISPUTE_BOND, "client made whole"
        );
        IJobMarket.Provider memory p = market.getProvider(provider);
        assertEq(p.bond, MIN_BOND - slashed, "bond slashed");
        assertEq(p.locked, 0, "nothing locked");
        assertEq(market.freeBalanceOf(provider), 0, "provider unpaid");
        assertEq(market.feesOwed(), 0, "no fee on a rejected job");
        assertEq(market.escrowOf(jobId), 0, "escrow released");
        _assertSolvent(jobId);
    }

    function test_resolve_providerNotAtFaultPaysProviderAndBond() public {
        uint256 jobId = _disputedJob();
        uint256 clientBefore = market.freeBalanceOf(client);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobSettled(
            jobId, provider, PRICE - _fee(PRICE), _fee(PRICE), _collateral(PRICE), DISPUTE_BOND
        );
        vm.prank(arbiter);
        market.resolve(jobId, false);

        _assertState(jobId, IJobMarket.JobState.Settled);
        assertEq(market.freeBalanceOf(provider), PRICE - _fee(PRICE) + DISPUTE_BOND, "provider paid + bond");
        assertEq(market.freeBalanceOf(client), clientBefore, "client loses its bond");
        assertEq(market.feesOwed(), _fee(PRICE), "fee");
        assertEq(market.getProvider(provider).locked, 0, "collateral unlocked");
        assertEq(market.getProvider(provider).bond, MIN_BOND, "bond intact");
        _assertSolvent(jobId);
    }

    function test_resolve_revertsIfNotArbiter() public {
        uint256 jobId = _disputedJob();
        bytes32 role = market.ARBITER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, admin, role)
        );
        vm.prank(admin);
        market.resolve(jobId, true);
    }

    function test_resolve_revertsAfterResolveWindow() public {
        uint256 jobId = _disputedJob();
        uint64 resolveBy = market.getJob(jobId).deadline;
        vm.warp(resolveBy);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ResolveWindowClosed.selector, jobId, resolveBy));
        vm.prank(arbiter);
        market.resolve(jobId, true);
    }

    function test_resolve_revertsIfNotDisputed() public {
        uint256 jobId = _deliveredJob();
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Delivered)
        );
        vm.prank(arbiter);
        market.resolve(jobId, false);
    }

    function test_resolve_revertsIfResolvedTwice() public {
        uint256 jobId = _disputedJob();
        vm.prank(arbiter);
        market.resolve(jobId, true);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Rejected)
        );
        vm.prank(arbiter);
        market.resolve(jobId, false);
    }

    // ================================================================ settle

    function test_settle_paysProviderAfterChallengeWindow() public {
        uint256 jobId = _deliveredJob();
        vm.warp(market.getJob(jobId).deadline);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobSettled(jobId, provider, PRICE - _fee(PRICE), _fee(PRICE), _collateral(PRICE), 0);
        vm.prank(stranger); // anyone may settle
        market.settle(jobId);

        _assertState(jobId, IJobMarket.JobState.Settled);
        assertEq(market.freeBalanceOf(provider), PRICE - _fee(PRICE), "paid price - fee");
        assertEq(market.feesOwed(), _fee(PRICE), "fee accrued");
        assertEq(market.getProvider(provider).locked, 0, "collateral unlocked");
        assertEq(market.escrowOf(jobId), 0, "escrow released");
        _assertSolvent(jobId);
    }

    function test_settle_revertsBeforeChallengeWindowEnds() public {
        uint256 jobId = _deliveredJob();
        uint64 challengeEnds = market.getJob(jobId).deadline;
        vm.warp(challengeEnds - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.TooEarly.selector, jobId, challengeEnds));
        market.settle(jobId);
    }

    function test_settle_disputedWithSilentArbiterPaysProviderAndReturnsBond() public {
        uint256 jobId = _disputedJob();
        uint256 clientBefore = market.freeBalanceOf(client);
        vm.warp(market.getJob(jobId).deadline);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.DisputeBondReturned(jobId, client, DISPUTE_BOND);
        market.settle(jobId);
        _assertState(jobId, IJobMarket.JobState.Settled);
        assertEq(market.freeBalanceOf(client), clientBefore + DISPUTE_BOND, "bond back");
        assertEq(market.freeBalanceOf(provider), PRICE - _fee(PRICE), "provider paid");
        _assertSolvent(jobId);
    }

    function test_settle_revertsIfDisputedAndArbiterStillHasTime() public {
        uint256 jobId = _disputedJob();
        uint64 resolveBy = market.getJob(jobId).deadline;
        vm.warp(resolveBy - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.TooEarly.selector, jobId, resolveBy));
        market.settle(jobId);
    }

    function test_settle_revertsIfSettledTwice() public {
        uint256 jobId = _deliveredJob();
        vm.warp(market.getJob(jobId).deadline);
        market.settle(jobId);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Settled)
        );
        market.settle(jobId);
    }

    function test_settle_revertsIfClaimed() public {
        uint256 jobId = _claimedJob();
        vm.warp(block.timestamp + 30 days);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Claimed)
        );
        market.settle(jobId);
    }

    function test_settle_withZeroFeeAccruesNothing() public {
        vm.prank(admin);
        market.setProtocolFee(0);
        uint256 jobId = _deliveredJob();
        vm.warp(market.getJob(jobId).deadline);
        market.settle(jobId);
        assertEq(market.freeBalanceOf(provider), PRICE, "full price");
        assertEq(market.feesOwed(), 0, "no fee");
    }

    // ================================================================ reclaim

    function test_reclaim_unclaimedAfterClaimDeadlineRefundsClient() public {
        uint256 jobId = _openJob();
        vm.warp(market.getJob(jobId).deadline + 1);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobRefunded(jobId, client, IJobMarket.JobState.Expired, MAX_PRICE, 0);
        vm.prank(stranger); // anyone may reclaim; the money goes to the client
        market.reclaim(jobId);
        _assertState(jobId, IJobMarket.JobState.Expired);
        assertEq(market.freeBalanceOf(client), MAX_PRICE, "refunded");
        assertEq(market.freeBalanceOf(stranger), 0, "caller gets nothing");
        _assertSolvent(jobId);
    }

    function test_reclaim_revertsIfUnclaimedBeforeDeadline() public {
        uint256 jobId = _openJob();
        uint64 claimDeadline = market.getJob(jobId).deadline;
        vm.warp(claimDeadline);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.TooEarly.selector, jobId, claimDeadline));
        market.reclaim(jobId);
    }

    function test_reclaim_undeliveredRefundsClientAndSlashesCollateral() public {
        uint256 jobId = _claimedJob();
        uint256 clientBefore = market.freeBalanceOf(client);
        vm.warp(market.getJob(jobId).deadline + 1);
        uint256 slashed = _collateral(PRICE);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobRefunded(jobId, client, IJobMarket.JobState.Defaulted, PRICE, slashed);
        market.reclaim(jobId);
        _assertState(jobId, IJobMarket.JobState.Defaulted);
        assertEq(market.freeBalanceOf(client), clientBefore + PRICE + slashed, "refund + slash");
        assertEq(market.getProvider(provider).bond, MIN_BOND - slashed, "bond slashed");
        assertEq(market.getProvider(provider).locked, 0, "unlocked");
        _assertSolvent(jobId);
    }

    function test_reclaim_revertsIfUndeliveredBeforeDeadline() public {
        uint256 jobId = _claimedJob();
        uint64 deliverBy = market.getJob(jobId).deadline;
        vm.warp(deliverBy);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.TooEarly.selector, jobId, deliverBy));
        market.reclaim(jobId);
    }

    function test_reclaim_revertsIfDelivered() public {
        uint256 jobId = _deliveredJob();
        vm.warp(block.timestamp + 30 days);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Delivered)
        );
        market.reclaim(jobId);
    }

    function test_reclaim_revertsIfAlreadyReclaimed() public {
        uint256 jobId = _openJob();
        vm.warp(block.timestamp + 1 days);
        market.reclaim(jobId);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Expired)
        );
        market.reclaim(jobId);
    }

    function test_reclaim_revertsIfNoSuchJob() public {
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, 7, IJobMarket.JobState.None)
        );
        market.reclaim(7);
    }

    // ================================================================ views

    function test_escrowOf_followsTheJob() public {
        assertEq(market.escrowOf(123), 0, "no job");
        uint256 jobId = _disputedJob();
        assertEq(market.escrowOf(jobId), PRICE + DISPUTE_BOND, "disputed");
        vm.prank(arbiter);
        market.resolve(jobId, false);
        assertEq(market.escrowOf(jobId), 0, "settled");
    }

    function test_collateralFor_isBpsOfPrice() public view {
        assertEq(market.collateralFor(PRICE), _collateral(PRICE), "collateral");
        assertEq(market.collateralFor(0), 0, "zero");
    }

    function test_collateralFor_revertsAbove96Bits() public {
        uint256 tooBig = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AmountTooLarge.selector, tooBig));
        market.collateralFor(tooBig);
    }

    function test_getJob_unknownIdIsNone() public view {
        IJobMarket.Job memory job = market.getJob(5);
        assertEq(uint256(job.state), uint256(IJobMarket.JobState.None), "none");
        assertEq(job.client, address(0), "empty");
    }

    // ------------------------------------------------------------------ releaseJob

    function test_releaseJob_refundsClientWithPenaltyAndUnlocksTheRest() public {
        uint256 jobId = _claimedJob();
        uint256 freeBefore = market.freeBalanceOf(client);
        uint256 collateral = _collateral(PRICE);
        uint256 penalty = collateral * market.RELEASE_PENALTY_BPS() / 10_000;
        vm.expectEmit(true, true, false, true, address(market));
        emit IJobMarket.JobReleased(jobId, provider, PRICE, penalty);
        vm.prank(provider);
        market.releaseJob(jobId);
        assertEq(uint256(market.getJob(jobId).state), uint256(IJobMarket.JobState.Released), "state");
        assertEq(market.freeBalanceOf(client), freeBefore + PRICE + penalty, "client refund");
        assertEq(market.getProvider(provider).locked, 0, "unlocked");
        assertEq(market.getProvider(provider).bond, MIN_BOND - penalty, "penalty");
        assertEq(market.escrowOf(jobId), 0, "no escrow left");
    }

    function test_releaseJob_atDeliverBySucceeds() public {
        uint256 jobId = _claimedJob();
        vm.warp(market.getJob(jobId).deadline);
        vm.prank(provider);
        market.releaseJob(jobId);
        assertEq(uint256(market.getJob(jobId).state), uint256(IJobMarket.JobState.Released), "state");
    }

    function test_releaseJob_revertsAfterDeliverBy() public {
        uint256 jobId = _claimedJob();
        uint64 deliverBy = market.getJob(jobId).deadline;
        vm.warp(deliverBy + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DeliveryWindowClosed.selector, jobId, deliverBy));
        vm.prank(provider);
        market.releaseJob(jobId);
    }

    function test_releaseJob_revertsIfNotProvider() public {
        uint256 jobId = _claimedJob();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotJobProvider.selector, jobId, stranger));
        vm.prank(stranger);
        market.releaseJob(jobId);
    }

    function test_releaseJob_revertsIfNotClaimed() public {
        uint256 jobId = _deliveredJob();
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidJobState.selector, jobId, IJobMarket.JobState.Delivered)
        );
        vm.prank(provider);
        market.releaseJob(jobId);
    }
}
