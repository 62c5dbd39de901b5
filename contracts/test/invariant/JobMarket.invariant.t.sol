// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {Handler} from "./Handler.sol";
import {Credits} from "../../src/Credits.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice Money and lifecycle invariants of the market under random handler-driven sequences.
/// forge-config: default.invariant.runs = 64
/// forge-config: default.invariant.depth = 128
/// forge-config: deep.invariant.runs = 10000
/// forge-config: deep.invariant.depth = 128
contract JobMarketInvariantTest is Test {
    Credits internal credits;
    JobMarket internal market;
    Handler internal handler;
    address internal admin;
    address internal treasury;

    function setUp() public {
        vm.warp(1_700_000_000);
        admin = makeAddr("admin");
        treasury = makeAddr("treasury");
        address arbiter = makeAddr("arbiter");
        credits = new Credits(admin, 1000 ether, 1 days);
        market = new JobMarket(
            IERC20(address(credits)),
            JobMarket.MarketConfig({
                admin: admin,
                arbiter: arbiter,
                minBond: 100 ether,
                collateralBps: 5000,
                disputeBond: 10 ether,
                challengeWindow: 1 days,
                resolveWindow: 2 days,
                exitCooldown: 3 days,
                protocolFeeBps: 250,
                revealWindow: 1 hours
            })
        );
        handler = new Handler(market, credits, admin, arbiter, treasury);
        handler.fundActors();

        // Weighted by repetition (forge draws uniformly from this list): the lifecycle steps that
        // need a job in a given state come often enough for whole lives to play out in one run.
        bytes4[38] memory weighted = [
            Handler.submit.selector,
            Handler.submit.selector,
            Handler.submit.selector,
            Handler.submit.selector,
            Handler.claim.selector,
            Handler.claim.selector,
            Handler.claim.selector,
            Handler.deliver.selector,
            Handler.deliver.selector,
            Handler.deliver.selector,
            Handler.settle.selector,
            Handler.settle.selector,
            Handler.warp.selector,
            Handler.warp.selector,
            Handler.warp.selector,
            Handler.dispute.selector,
            Handler.resolve.selector,
            Handler.commit.selector,
            Handler.commit.selector,
            Handler.commit.selector,
            Handler.reveal.selector,
            Handler.reveal.selector,
            Handler.reveal.selector,
            Handler.resolveReplicas.selector,
            Handler.reclaim.selector,
            Handler.release.selector,
            Handler.cancel.selector,
            Handler.replay.selector,
            Handler.invalidateNonce.selector,
            Handler.deposit.selector,
            Handler.withdraw.selector,
            Handler.register.selector,
            Handler.addBond.selector,
            Handler.requestExit.selector,
            Handler.cancelExit.selector,
            Handler.withdrawBond.selector,
            Handler.setFee.selector,
            Handler.withdrawFees.selector
        ];
        bytes4[] memory selectors = new bytes4[](weighted.length);
        for (uint256 i; i < weighted.length; ++i) {
            selectors[i] = weighted[i];
        }
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @notice token balance == Σ free + Σ escrow + Σ bonds + fees owed.
    function invariant_balanceEqualsFreePlusEscrowPlusBondsPlusFees() public view {
        uint256 sum = market.feesOwed();
        uint256 actors = handler.actorCount();
        for (uint256 i; i < actors; ++i) {
            address a = handler.actors(i);
            sum += market.freeBalanceOf(a) + market.getProvider(a).bond;
        }
        uint256 last = market.nextJobId();
        for (uint256 jobId = 1; jobId < last; ++jobId) {
            sum += market.escrowOf(jobId);
        }
        assertEq(credits.balanceOf(address(market)), sum, "market balance");
    }

    /// @notice Every job pays out or refunds exactly once, and only when it reached that terminal state.
    function invariant_eachJobClosesExactlyOnce() public view {
        uint256 last = market.nextJobId();
        for (uint256 jobId = 1; jobId < last; ++jobId) {
            if (handler.ghost_replicated(jobId)) continue; // see invariant_replicatedJobsCloseEveryShare
            IJobMarket.JobState state = market.getJob(jobId).state;
            uint256 payouts = handler.ghost_payouts(jobId);
            uint256 refunds = handler.ghost_refunds(jobId);
            bool paid = state == IJobMarket.JobState.Settled;
            bool refunded = state == IJobMarket.JobState.Cancelled || state == IJobMarket.JobState.Expired
                || state == IJobMarket.JobState.Defaulted || state == IJobMarket.JobState.Rejected
                || state == IJobMarket.JobState.Released;
            assertEq(payouts, paid ? 1 : 0, "payouts");
            assertEq(refunds, refunded ? 1 : 0, "refunds");
            if (paid || refunded) assertEq(market.escrowOf(jobId), 0, "closed job holds no escrow");
        }
        assertEq(handler.ghost_wrongAmounts(), 0, "a payout or refund moved the wrong amount");
    }

    /// @notice A replicated job in a terminal state has closed every claimed share and holds no
    ///         escrow; a running one holds exactly its open shares; no lying reveal is accepted.
    function invariant_replicatedJobsCloseEveryShare() public view {
        uint256 last = market.nextJobId();
        for (uint256 jobId = 1; jobId < last; ++jobId) {
            if (!handler.ghost_replicated(jobId)) continue;
            IJobMarket.JobState state = market.getJob(jobId).state;
            IJobMarket.ReplicaSet memory set = market.getReplicaSet(jobId);
            bool running = state == IJobMarket.JobState.Open || state == IJobMarket.JobState.Claimed
                || state == IJobMarket.JobState.Revealing || state == IJobMarket.JobState.Delivered
                || state == IJobMarket.JobState.Disputed;
            if (!running) {
                assertEq(market.escrowOf(jobId), 0, "closed replicated job holds no escrow");
                if (state != IJobMarket.JobState.Cancelled) {
                    assertEq(set.settledMask, (1 << set.claims) - 1, "every claimed share closed");
                }
            } else {
                uint256 open = uint256(market.getJob(jobId).amount) * (set.replicas - set.claims);
                for (uint8 i; i < set.claims; ++i) {
                    if (set.settledMask & (1 << i) == 0) open += market.getReplica(jobId, i).price;
                }
                assertEq(set.escrow, open, "escrow = unclaimed shares + open claimed shares");
            }
        }
        assertEq(handler.ghost_badReveals(), 0, "a reveal not matching its commitment was accepted");
    }

    /// @notice No payout before the challenge window (or the arbiter's window) is over; no refund
    ///         before the claim or delivery deadline.
    function invariant_noEarlyPayoutOrRefund() public view {
        assertEq(handler.ghost_earlyPayouts(), 0, "early payout");
        assertEq(handler.ghost_earlyRefunds(), 0, "early refund");
    }

    /// @notice A signed request creates at most one job (replays and high-s twins are refused).
    function invariant_eachSignedRequestCreatesAtMostOneJob() public view {
        assertEq(handler.ghost_replayedRequests(), 0, "a replayed request was accepted");
        uint256 n = handler.signedCount();
        for (uint256 i; i < n; ++i) {
            assertEq(handler.ghost_jobsPerRequest(handler.signedDigest(i)), 1, "jobs per request");
        }
    }

    /// @notice Locked bond is exactly the collateral of the provider's running jobs, and never above the bond.
    function invariant_lockedBondMatchesRunningJobs() public view {
        uint256 n = handler.providerCount();
        for (uint256 i; i < n; ++i) {
            address p = handler.providers(i);
            IJobMarket.Provider memory info = market.getProvider(p);
            assertEq(info.locked, handler.ghost_expectedLocked(p), "locked collateral");
            assertLe(info.locked, info.bond, "locked <= bond");
        }
    }

    /// @notice Fees owed are exactly the fees of settled jobs not yet withdrawn.
    function invariant_feesOwedMatchSettledJobs() public view {
        assertEq(market.feesOwed(), handler.ghost_feesAccrued() - handler.ghost_feesWithdrawn(), "fees owed");
        assertEq(credits.balanceOf(treasury), handler.ghost_feesWithdrawn(), "fees paid out");
    }

    /// @notice After all deadlines everyone gets out: every job closes, every actor withdraws every
    ///         credit it is owed, and the market keeps exactly the fees it owes.
    function afterInvariant() public {
        handler.drain();
        uint256 actors = handler.actorCount();
        for (uint256 i; i < actors; ++i) {
            address a = handler.actors(i);
            assertEq(market.freeBalanceOf(a), 0, "free left behind");
            assertEq(market.getProvider(a).bond, 0, "bond left behind");
        }
        uint256 last = market.nextJobId();
        for (uint256 jobId = 1; jobId < last; ++jobId) {
            assertEq(market.escrowOf(jobId), 0, "escrow left behind");
        }
        assertEq(credits.balanceOf(address(market)), market.feesOwed(), "market holds exactly the fees");
    }

    /// @notice The handler can drive a replicated job through commit, reveal and settlement (so the
    ///         invariants above do see replicated jobs), and books its money like the market.
    function test_handler_drivesReplicatedJobToSettlement() public {
        uint256 seed;
        // A spec seed the handler turns into a 2-replica request.
        while (uint256(keccak256(abi.encode(seed))) % 3 != 0 || seed % 2 != 0) ++seed;
        handler.submit(0, 10 ether, 1 hours, 1 hours, seed);
        assertEq(market.getReplicaSet(1).replicas, 2, "replicated request");
        handler.claim(0, 0, 5 ether, 1);
        handler.claim(1, 0, 5 ether, 1);
        handler.commit(0, 0, 0);
        handler.commit(0, 1, 0);
        assertEq(uint256(market.getJob(1).state), uint256(IJobMarket.JobState.Revealing), "revealing");
        handler.reveal(0, 0, 1);
        handler.reveal(0, 1, 1);
        assertEq(uint256(market.getJob(1).state), uint256(IJobMarket.JobState.Delivered), "delivered");
        handler.warp(1 days);
        handler.settle(0, 0);
        assertEq(uint256(market.getJob(1).state), uint256(IJobMarket.JobState.Settled), "settled");
        invariant_balanceEqualsFreePlusEscrowPlusBondsPlusFees();
        invariant_lockedBondMatchesRunningJobs();
        invariant_feesOwedMatchSettledJobs();
        invariant_replicatedJobsCloseEveryShare();
    }
}
