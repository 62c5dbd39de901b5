// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice Fuzz tests over amounts and timings.
contract FuzzTest is MarketFixture {
    uint256 internal constant MAX_AMOUNT = type(uint96).max;

    function _job(uint256 maxPrice, uint64 claimWindow, uint64 deliveryWindow)
        internal
        returns (uint256 jobId)
    {
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.maxPrice = maxPrice;
        r.claimDeadline = uint64(block.timestamp) + claimWindow;
        r.deliveryWindow = deliveryWindow;
        if (maxPrice != 0) _deposit(client, maxPrice);
        jobId = _submit(r, _sign(clientKey, r));
    }

    // ================================================================ amounts

    function testFuzz_depositWithdraw_roundTrips(uint256 amount, uint256 out) public {
        amount = _bound(amount, 1, 1_000_000 ether);
        out = _bound(out, 1, amount);
        uint256 walletBefore = credits.balanceOf(client);
        _deposit(client, amount);
        vm.prank(client);
        market.withdraw(out, client);
        assertEq(market.freeBalanceOf(client), amount - out, "free");
        assertEq(credits.balanceOf(client), walletBefore - amount + out, "wallet");
        _assertSolvent(0);
    }

    function testFuzz_withdraw_neverReachesEscrow(uint256 maxPrice, uint256 extra, uint256 ask) public {
        maxPrice = _bound(maxPrice, 1, 100_000 ether);
        extra = _bound(extra, 0, 100_000 ether);
        if (extra != 0) _deposit(client, extra);
        _job(maxPrice, 1 hours, 1 hours);
        ask = _bound(ask, extra + 1, extra + maxPrice);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InsufficientBalance.selector, client, extra, ask));
        vm.prank(client);
        market.withdraw(ask, client);
    }

    function testFuzz_claimJob_refundsExactSurplus(uint256 maxPrice, uint256 price) public {
        maxPrice = _bound(maxPrice, 0, 100_000 ether);
        price = _bound(price, 0, maxPrice);
        uint256 jobId = _job(maxPrice, 1 hours, 1 hours);
        _register(provider, MIN_BOND + _collateral(price));
        vm.prank(provider);
        market.claimJob(jobId, price);
        assertEq(market.freeBalanceOf(client), maxPrice - price, "surplus");
        assertEq(market.escrowOf(jobId), price, "escrow");
        assertEq(market.getProvider(provider).locked, _collateral(price), "collateral");
        _assertSolvent(jobId);
    }

    function testFuzz_claimJob_revertsAboveMaxPrice(uint256 maxPrice, uint256 price) public {
        maxPrice = _bound(maxPrice, 0, 100_000 ether);
        price = _bound(price, maxPrice + 1, type(uint256).max);
        uint256 jobId = _job(maxPrice, 1 hours, 1 hours);
        _register(provider, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.PriceAboveMax.selector, jobId, price, maxPrice));
        vm.prank(provider);
        market.claimJob(jobId, price);
    }

    function testFuzz_claimJob_needsUnlockedCollateral(uint256 price, uint256 bond) public {
        price = _bound(price, 1 ether, 100_000 ether);
        bond = _bound(bond, MIN_BOND, MIN_BOND + 100_000 ether);
        uint256 jobId = _job(price, 1 hours, 1 hours);
        _register(provider, bond);
        uint256 collateral = _collateral(price);
        if (bond < collateral) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.InsufficientCollateral.selector, provider, bond, collateral)
            );
        }
        vm.prank(provider);
        market.claimJob(jobId, price);
    }

    function testFuzz_settle_paysPriceMinusFee(uint256 price, uint16 feeBps) public {
        price = _bound(price, 0, 100_000 ether);
        feeBps = uint16(_bound(feeBps, 0, market.MAX_FEE_BPS()));
        vm.prank(admin);
        market.setProtocolFee(feeBps);
        uint256 jobId = _job(price, 1 hours, 1 hours);
        _register(provider, MIN_BOND + _collateral(price));
        vm.startPrank(provider);
        market.claimJob(jobId, price);
        market.deliver(jobId, _cid(), keccak256("v"), keccak256("f"));
        vm.stopPrank();
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        market.settle(jobId);
        uint256 fee = price * feeBps / 10_000;
        assertEq(market.freeBalanceOf(provider), price - fee, "payout");
        assertEq(market.feesOwed(), fee, "fee");
        assertLe(fee, price / 10, "fee capped at 10 %");
        assertEq(market.getProvider(provider).locked, 0, "unlocked");
        _assertSolvent(jobId);
    }

    function testFuzz_resolve_conservesMoney(uint256 price, bool providerAtFault) public {
        price = _bound(price, 0, 100_000 ether);
        uint256 jobId = _job(price, 1 hours, 1 hours);
        _register(provider, MIN_BOND + _collateral(price));
        vm.startPrank(provider);
        market.claimJob(jobId, price);
        market.deliver(jobId, _cid(), keccak256("v"), keccak256("f"));
        vm.stopPrank();
        _deposit(client, DISPUTE_BOND);
        vm.prank(client);
        market.dispute(jobId, IJobMarket.DisputeReason.SpecMismatch, 0);
        vm.prank(arbiter);
        market.resolve(jobId, providerAtFault);
        uint256 clientFree = market.freeBalanceOf(client);
        uint256 providerFree = market.freeBalanceOf(provider);
        if (providerAtFault) {
            assertEq(clientFree, price + _collateral(price) + DISPUTE_BOND, "client made whole plus slash");
            assertEq(providerFree, 0, "provider unpaid");
        } else {
            assertEq(providerFree, price - _fee(price) + DISPUTE_BOND, "provider paid plus bond");
            assertEq(clientFree, 0, "client lost bond");
        }
        _assertSolvent(jobId);
    }

    function testFuzz_collateralFor_matchesBps(uint256 price, uint16 bps) public {
        bps = uint16(_bound(bps, 0, 50_000)); // the constructor caps collateral at 5x the price
        JobMarket.MarketConfig memory c = _config();
        c.collateralBps = bps;
        JobMarket m = new JobMarket(IERC20(address(credits)), c);
        price = _bound(price, 0, MAX_AMOUNT);
        uint256 expected = price * bps / 10_000;
        if (expected > MAX_AMOUNT) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.AmountTooLarge.selector, expected));
            m.collateralFor(price);
        } else {
            assertEq(m.collateralFor(price), expected, "collateral");
        }
    }

    // ================================================================ timings

    function testFuzz_submitJob_claimDeadlineBounds(uint256 delay) public {
        delay = _bound(delay, 0, 2 * uint256(market.MAX_CLAIM_HORIZON()));
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.claimDeadline = uint64(block.timestamp + delay);
        _deposit(client, MAX_PRICE);
        bytes memory sig = _sign(clientKey, r);
        if (delay == 0) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.RequestExpired.selector, r.claimDeadline, block.timestamp)
            );
        } else if (delay > market.MAX_CLAIM_HORIZON()) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobMarket.ClaimDeadlineTooFar.selector,
                    r.claimDeadline,
                    block.timestamp + market.MAX_CLAIM_HORIZON()
                )
            );
        }
        market.submitJob(r, SPEC, sig);
    }

    function testFuzz_submitJob_deliveryWindowBounds(uint64 window) public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.deliveryWindow = window;
        _deposit(client, MAX_PRICE);
        bytes memory sig = _sign(clientKey, r);
        if (window < 60 || window > 7 days) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.InvalidDeliveryWindow.selector, window, 60, 7 days)
            );
        }
        market.submitJob(r, SPEC, sig);
    }

    function testFuzz_claimOrReclaim_exactlyOneAtAnyTime(uint64 claimWindow, uint256 wait) public {
        claimWindow = uint64(_bound(claimWindow, 1, market.MAX_CLAIM_HORIZON()));
        uint256 jobId = _job(MAX_PRICE, claimWindow, 1 hours);
        uint64 claimDeadline = market.getJob(jobId).deadline;
        _register(provider, MIN_BOND);
        wait = _bound(wait, 0, 2 * uint256(claimWindow));
        vm.warp(block.timestamp + wait);
        bool claimable = block.timestamp <= claimDeadline;

        uint256 snap = vm.snapshotState();
        if (!claimable) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.ClaimWindowClosed.selector, jobId, claimDeadline)
            );
        }
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
        vm.revertToState(snap);

        if (claimable) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.TooEarly.selector, jobId, claimDeadline));
        }
        market.reclaim(jobId);
    }

    function testFuzz_deliverOrReclaim_exactlyOneAtAnyTime(uint64 window, uint256 wait) public {
        window = uint64(_bound(window, 60, 7 days));
        uint256 jobId = _job(MAX_PRICE, 1 hours, window);
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
        uint64 deliverBy = market.getJob(jobId).deadline;
        assertEq(deliverBy, block.timestamp + window, "deliver by");
        wait = _bound(wait, 0, 2 * uint256(window));
        vm.warp(block.timestamp + wait);
        bool inTime = block.timestamp <= deliverBy;

        uint256 snap = vm.snapshotState();
        if (!inTime) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.DeliveryWindowClosed.selector, jobId, deliverBy)
            );
        }
        vm.prank(provider);
        market.deliver(jobId, _cid(), keccak256("v"), keccak256("f"));
        vm.revertToState(snap);

        if (inTime) vm.expectRevert(abi.encodeWithSelector(IJobMarket.TooEarly.selector, jobId, deliverBy));
        market.reclaim(jobId);
    }

    function testFuzz_disputeOrSettle_exactlyOneAtAnyTime(uint256 wait) public {
        uint256 jobId = _deliveredJob();
        uint64 challengeEnds = market.getJob(jobId).deadline;
        _deposit(client, DISPUTE_BOND);
        wait = _bound(wait, 0, 2 * uint256(CHALLENGE_WINDOW));
        vm.warp(block.timestamp + wait);
        bool open = block.timestamp < challengeEnds;

        uint256 snap = vm.snapshotState();
        if (!open) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobId, challengeEnds)
            );
        }
        vm.prank(client);
        market.dispute(jobId, IJobMarket.DisputeReason.NotRetrievable, 0);
        vm.revertToState(snap);

        if (open) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.TooEarly.selector, jobId, challengeEnds));
        }
        market.settle(jobId);
    }

    function testFuzz_resolveOrSettle_exactlyOneAtAnyTime(uint256 wait, bool providerAtFault) public {
        uint256 jobId = _disputedJob();
        uint64 resolveBy = market.getJob(jobId).deadline;
        wait = _bound(wait, 0, 2 * uint256(RESOLVE_WINDOW));
        vm.warp(block.timestamp + wait);
        bool open = block.timestamp < resolveBy;

        uint256 snap = vm.snapshotState();
        if (!open) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.ResolveWindowClosed.selector, jobId, resolveBy));
        }
        vm.prank(arbiter);
        market.resolve(jobId, providerAtFault);
        vm.revertToState(snap);

        if (open) vm.expectRevert(abi.encodeWithSelector(IJobMarket.TooEarly.selector, jobId, resolveBy));
        market.settle(jobId);
    }

    function testFuzz_withdrawBond_onlyAfterCooldown(uint256 wait, uint256 amount) public {
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.requestExit();
        uint40 exitAt = uint40(block.timestamp + EXIT_COOLDOWN);
        wait = _bound(wait, 0, 2 * uint256(EXIT_COOLDOWN));
        amount = _bound(amount, 1, MIN_BOND);
        vm.warp(block.timestamp + wait);
        if (block.timestamp < exitAt) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.ExitNotReady.selector, provider, exitAt));
        }
        vm.prank(provider);
        market.withdrawBond(amount, provider);
    }

    // ================================================================ signatures

    function testFuzz_submitJob_rejectsAnyOtherKey(uint256 key) public {
        key = _bound(key, 1, SECP256K1_N - 1);
        vm.assume(key != clientKey);
        _deposit(client, MAX_PRICE);
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(key, r);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSigner.selector, client, vm.addr(key)));
        market.submitJob(r, SPEC, sig);
    }

    function testFuzz_submitJob_eachNonceOnce(uint256 nonce) public {
        _deposit(client, 2 * MAX_PRICE);
        IJobMarket.JobRequest memory r = _request(client, nonce);
        bytes memory sig = _sign(clientKey, r);
        _submit(r, sig);
        assertTrue(market.isNonceUsed(client, nonce), "used");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceAlreadyUsed.selector, client, nonce));
        market.submitJob(r, SPEC, sig);
    }

    function testFuzz_submitJob_specLength(uint256 length) public {
        length = _bound(length, 0, 2 * market.MAX_SPEC_BYTES());
        bytes memory spec = new bytes(length);
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.specHash = keccak256(spec);
        _deposit(client, MAX_PRICE);
        bytes memory sig = _sign(clientKey, r);
        if (length > 4096) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpecTooLarge.selector, length, 4096));
        }
        market.submitJob(r, spec, sig);
    }
}
