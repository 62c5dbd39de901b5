// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// @notice deposit, depositWithPermit, withdraw.
contract FundsTest is MarketFixture {
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    // ================================================================ deposit

    function test_deposit_creditsFreeBalance() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.Deposited(client, 5 ether);
        _deposit(client, 5 ether);
        assertEq(market.freeBalanceOf(client), 5 ether, "free");
        assertEq(credits.balanceOf(address(market)), 5 ether, "tokens moved");
        _assertSolvent(0);
    }

    function test_deposit_revertsIfZero() public {
        vm.expectRevert(IJobMarket.ZeroAmount.selector);
        vm.prank(client);
        market.deposit(0);
    }

    function test_deposit_revertsWithoutAllowance() public {
        address poor = makeAddr("poor");
        vm.prank(admin);
        credits.mint(poor, 10 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(market), 0, 10 ether
            )
        );
        vm.prank(poor);
        market.deposit(10 ether);
    }

    // ================================================================ depositWithPermit

    function _permit(uint256 key, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        address owner = vm.addr(key);
        bytes32 structHash = keccak256(
            abi.encode(PERMIT_TYPEHASH, owner, address(market), value, credits.nonces(owner), deadline)
        );
        return vm.sign(key, keccak256(abi.encodePacked("\x19\x01", credits.DOMAIN_SEPARATOR(), structHash)));
    }

    function test_depositWithPermit_depositsInOneCall() public {
        vm.prank(client);
        credits.approve(address(market), 0);
        (uint8 v, bytes32 r, bytes32 s) = _permit(clientKey, 7 ether, block.timestamp + 1 hours);
        vm.prank(client);
        market.depositWithPermit(7 ether, block.timestamp + 1 hours, v, r, s);
        assertEq(market.freeBalanceOf(client), 7 ether, "deposited");
        assertEq(credits.allowance(client, address(market)), 0, "allowance spent");
        assertEq(credits.nonces(client), 1, "permit used");
    }

    function test_depositWithPermit_survivesFrontRunPermit() public {
        vm.prank(client);
        credits.approve(address(market), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(clientKey, 7 ether, deadline);
        // Someone sees the permit in the mempool and spends it first.
        vm.prank(stranger);
        credits.permit(client, address(market), 7 ether, deadline, v, r, s);
        vm.prank(client);
        market.depositWithPermit(7 ether, deadline, v, r, s);
        assertEq(market.freeBalanceOf(client), 7 ether, "deposit still went through");
    }

    function test_depositWithPermit_revertsIfPermitInvalidAndNoAllowance() public {
        vm.prank(client);
        credits.approve(address(market), 0);
        (uint8 v, bytes32 r, bytes32 s) = _permit(client2Key, 7 ether, block.timestamp + 1 hours); // wrong key
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(market), 0, 7 ether
            )
        );
        vm.prank(client);
        market.depositWithPermit(7 ether, block.timestamp + 1 hours, v, r, s);
    }

    function test_depositWithPermit_revertsIfZero() public {
        vm.expectRevert(IJobMarket.ZeroAmount.selector);
        vm.prank(client);
        market.depositWithPermit(0, block.timestamp, 27, 0, 0);
    }

    // ================================================================ withdraw

    function test_withdraw_paysFreeBalanceToRecipient() public {
        _deposit(client, 5 ether);
        uint256 before = credits.balanceOf(treasury);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.Withdrawn(client, treasury, 3 ether);
        vm.prank(client);
        market.withdraw(3 ether, treasury);
        assertEq(credits.balanceOf(treasury), before + 3 ether, "paid out");
        assertEq(market.freeBalanceOf(client), 2 ether, "rest stays");
        _assertSolvent(0);
    }

    function test_withdraw_revertsIfAmountEscrowed() public {
        uint256 jobId = _openJob(); // the whole deposit is escrowed
        assertEq(market.escrowOf(jobId), MAX_PRICE, "escrowed");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InsufficientBalance.selector, client, 0, MAX_PRICE));
        vm.prank(client);
        market.withdraw(MAX_PRICE, client);
    }

    function test_withdraw_revertsIfMoreThanFree() public {
        _deposit(client, 5 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InsufficientBalance.selector, client, 5 ether, 5 ether + 1)
        );
        vm.prank(client);
        market.withdraw(5 ether + 1, client);
    }

    function test_withdraw_revertsIfZero() public {
        _deposit(client, 5 ether);
        vm.expectRevert(IJobMarket.ZeroAmount.selector);
        vm.prank(client);
        market.withdraw(0, client);
    }

    function test_withdraw_revertsIfToZeroAddress() public {
        _deposit(client, 5 ether);
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        vm.prank(client);
        market.withdraw(1 ether, address(0));
    }

    function test_withdraw_cannotTouchBonds() public {
        _register(provider, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InsufficientBalance.selector, provider, 0, 1));
        vm.prank(provider);
        market.withdraw(1, provider);
    }
}
