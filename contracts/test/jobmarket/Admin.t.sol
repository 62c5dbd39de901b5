// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @notice Constructor checks, setProtocolFee, withdrawFees and the roles.
contract AdminTest is MarketFixture {
    // ================================================================ constructor

    function test_constructor_setsTermsAndRoles() public view {
        assertEq(address(market.TOKEN()), address(credits), "token");
        assertEq(market.MIN_BOND(), MIN_BOND, "min bond");
        assertEq(market.COLLATERAL_BPS(), COLLATERAL_BPS, "collateral bps");
        assertEq(market.DISPUTE_BOND(), DISPUTE_BOND, "dispute bond");
        assertEq(market.CHALLENGE_WINDOW(), CHALLENGE_WINDOW, "challenge window");
        assertEq(market.RESOLVE_WINDOW(), RESOLVE_WINDOW, "resolve window");
        assertEq(market.EXIT_COOLDOWN(), EXIT_COOLDOWN, "exit cooldown");
        assertEq(market.protocolFeeBps(), FEE_BPS, "fee");
        assertEq(market.nextJobId(), 1, "ids start at 1");
        assertEq(market.feesOwed(), 0, "no fees");
        assertTrue(market.hasRole(market.DEFAULT_ADMIN_ROLE(), admin), "admin");
        assertTrue(market.hasRole(market.ARBITER_ROLE(), arbiter), "arbiter");
        assertFalse(market.hasRole(market.ARBITER_ROLE(), admin), "admin is not arbiter");
    }

    function test_constructor_withoutArbiterGrantsNoArbiterRole() public {
        JobMarket.MarketConfig memory c = _config();
        c.arbiter = address(0);
        JobMarket m = new JobMarket(IERC20(address(credits)), c);
        assertFalse(m.hasRole(m.ARBITER_ROLE(), address(0)), "no zero arbiter");
    }

    function test_constructor_revertsIfTokenZero() public {
        JobMarket.MarketConfig memory c = _config();
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        new JobMarket(IERC20(address(0)), c);
    }

    function test_constructor_revertsIfAdminZero() public {
        JobMarket.MarketConfig memory c = _config();
        c.admin = address(0);
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        new JobMarket(IERC20(address(credits)), c);
    }

    function test_constructor_revertsIfFeeTooHigh() public {
        JobMarket.MarketConfig memory c = _config();
        c.protocolFeeBps = 1001;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.FeeTooHigh.selector, 1001, 1000));
        new JobMarket(IERC20(address(credits)), c);
    }

    function test_constructor_acceptsCollateralUpToFiveTimesThePrice() public {
        JobMarket.MarketConfig memory c = _config();
        c.collateralBps = 50_000;
        JobMarket m = new JobMarket(IERC20(address(credits)), c);
        assertEq(m.collateralFor(10_000), 50_000, "5x collateral");
    }

    function test_constructor_revertsIfCollateralAboveFiveTimesThePrice() public {
        JobMarket.MarketConfig memory c = _config();
        c.collateralBps = 50_001;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidParameter.selector, "collateralBps", 50_001));
        new JobMarket(IERC20(address(credits)), c);
    }

    function test_constructor_revertsIfWindowsExceedAYear() public {
        uint64 tooLong = 365 days + 1;
        JobMarket.MarketConfig memory c = _config();
        c.challengeWindow = tooLong;
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidParameter.selector, "challengeWindow", tooLong)
        );
        new JobMarket(IERC20(address(credits)), c);
        c = _config();
        c.resolveWindow = tooLong;
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidParameter.selector, "resolveWindow", tooLong)
        );
        new JobMarket(IERC20(address(credits)), c);
        c = _config();
        c.exitCooldown = tooLong;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidParameter.selector, "exitCooldown", tooLong));
        new JobMarket(IERC20(address(credits)), c);
    }

    function test_constructor_revertsIfChallengeWindowZero() public {
        JobMarket.MarketConfig memory c = _config();
        c.challengeWindow = 0;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidParameter.selector, "challengeWindow", 0));
        new JobMarket(IERC20(address(credits)), c);
    }

    function test_constructor_revertsIfResolveWindowZero() public {
        JobMarket.MarketConfig memory c = _config();
        c.resolveWindow = 0;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidParameter.selector, "resolveWindow", 0));
        new JobMarket(IERC20(address(credits)), c);
    }

    function test_constructor_revertsIfMinBondAbove96Bits() public {
        JobMarket.MarketConfig memory c = _config();
        c.minBond = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AmountTooLarge.selector, c.minBond));
        new JobMarket(IERC20(address(credits)), c);
    }

    function test_constructor_revertsIfDisputeBondAbove96Bits() public {
        JobMarket.MarketConfig memory c = _config();
        c.disputeBond = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AmountTooLarge.selector, c.disputeBond));
        new JobMarket(IERC20(address(credits)), c);
    }

    // ================================================================ setProtocolFee

    function test_setProtocolFee_changesFeeForNewJobs() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.ProtocolFeeChanged(FEE_BPS, 1000);
        vm.prank(admin);
        market.setProtocolFee(1000);
        assertEq(market.protocolFeeBps(), 1000, "fee");
    }

    function test_setProtocolFee_revertsAboveCap() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.FeeTooHigh.selector, 1001, 1000));
        vm.prank(admin);
        market.setProtocolFee(1001);
    }

    function test_setProtocolFee_revertsIfNotAdmin() public {
        bytes32 role = market.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, arbiter, role)
        );
        vm.prank(arbiter);
        market.setProtocolFee(0);
    }

    // ================================================================ withdrawFees

    function _earnFee() internal returns (uint256 fee) {
        uint256 jobId = _deliveredJob();
        vm.warp(market.getJob(jobId).deadline);
        market.settle(jobId);
        fee = market.feesOwed();
        assertEq(fee, _fee(PRICE), "fee accrued");
    }

    function test_withdrawFees_paysOwedFees() public {
        uint256 fee = _earnFee();
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.FeesWithdrawn(treasury, fee);
        vm.prank(admin);
        market.withdrawFees(treasury, fee);
        assertEq(credits.balanceOf(treasury), fee, "paid");
        assertEq(market.feesOwed(), 0, "nothing owed");
        _assertSolvent(1);
    }

    function test_withdrawFees_revertsAboveOwed() public {
        uint256 fee = _earnFee();
        // The market holds the provider's free balance and bond too: none of it is reachable.
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InsufficientFees.selector, fee, fee + 1));
        vm.prank(admin);
        market.withdrawFees(treasury, fee + 1);
    }

    function test_withdrawFees_revertsIfToZeroAddress() public {
        _earnFee();
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        vm.prank(admin);
        market.withdrawFees(address(0), 1);
    }

    function test_withdrawFees_revertsIfNotAdmin() public {
        _earnFee();
        bytes32 role = market.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, provider, role)
        );
        vm.prank(provider);
        market.withdrawFees(provider, 1);
    }

    function test_admin_canGrantArbiterRole() public {
        bytes32 role = market.ARBITER_ROLE();
        vm.prank(admin);
        market.grantRole(role, stranger);
        uint256 jobId = _disputedJob();
        vm.prank(stranger);
        market.resolve(jobId, true);
        _assertState(jobId, IJobMarket.JobState.Rejected);
    }
}
