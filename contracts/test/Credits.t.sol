// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Credits} from "../src/Credits.sol";
import {ICredits} from "../src/interfaces/ICredits.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @notice Credits: faucet, owner settings, minting, permit and two-step ownership.
contract CreditsTest is Test {
    uint256 internal constant DRIP = 1000 ether;
    uint64 internal constant COOLDOWN = 1 days;
    uint256 internal constant T0 = 1_700_000_000;

    Credits internal credits;
    address internal owner;
    address internal alice;
    address internal bob;

    function setUp() public {
        vm.warp(T0);
        owner = makeAddr("owner");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        credits = new Credits(owner, DRIP, COOLDOWN);
    }

    // ================================================================ constructor

    function test_constructor_setsMetadataAndFaucet() public view {
        assertEq(credits.name(), "framecast credits", "name");
        assertEq(credits.symbol(), "FCC", "symbol");
        assertEq(credits.decimals(), 18, "decimals");
        assertEq(credits.owner(), owner, "owner");
        assertEq(credits.dripAmount(), DRIP, "drip");
        assertEq(credits.cooldown(), COOLDOWN, "cooldown");
        assertTrue(credits.faucetEnabled(), "enabled");
        assertEq(credits.totalSupply(), 0, "no premine");
    }

    function test_constructor_revertsIfDripZero() public {
        vm.expectRevert(abi.encodeWithSelector(ICredits.InvalidFaucetConfig.selector, 0, COOLDOWN));
        new Credits(owner, 0, COOLDOWN);
    }

    function test_constructor_revertsIfDripAboveMax() public {
        uint256 tooMuch = credits.MAX_DRIP() + 1;
        vm.expectRevert(abi.encodeWithSelector(ICredits.InvalidFaucetConfig.selector, tooMuch, COOLDOWN));
        new Credits(owner, tooMuch, COOLDOWN);
    }

    function test_constructor_revertsIfOwnerZero() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new Credits(address(0), DRIP, COOLDOWN);
    }

    // ================================================================ faucet

    function test_faucet_mintsDripAndStartsCooldown() public {
        vm.expectEmit(true, true, true, true, address(credits));
        emit ICredits.FaucetDrip(alice, DRIP, uint64(T0 + COOLDOWN));
        vm.prank(alice);
        uint256 amount = credits.faucet();
        assertEq(amount, DRIP, "returned");
        assertEq(credits.balanceOf(alice), DRIP, "minted");
        assertEq(credits.faucetAvailableAt(alice), T0 + COOLDOWN, "next drip");
        assertEq(credits.faucetAvailableAt(bob), 0, "others unaffected");
    }

    function test_faucet_revertsDuringCooldown() public {
        vm.prank(alice);
        credits.faucet();
        vm.warp(T0 + COOLDOWN - 1);
        vm.expectRevert(
            abi.encodeWithSelector(ICredits.FaucetCooldown.selector, alice, uint64(T0 + COOLDOWN))
        );
        vm.prank(alice);
        credits.faucet();
    }

    function test_faucet_allowsNextDripAfterCooldown() public {
        vm.prank(alice);
        credits.faucet();
        vm.warp(T0 + COOLDOWN);
        vm.prank(alice);
        credits.faucet();
        assertEq(credits.balanceOf(alice), 2 * DRIP, "two drips");
    }

    function test_faucet_revertsIfDisabled() public {
        vm.prank(owner);
        credits.setFaucet(false, DRIP, COOLDOWN);
        vm.expectRevert(ICredits.FaucetDisabled.selector);
        vm.prank(alice);
        credits.faucet();
    }

    function testFuzz_faucet_oneDripPerCooldown(uint64 cooldown, uint256 wait) public {
        cooldown = uint64(_bound(cooldown, 0, 365 days));
        vm.prank(owner);
        credits.setFaucet(true, DRIP, cooldown);
        vm.prank(alice);
        credits.faucet();
        wait = _bound(wait, 0, 2 * uint256(cooldown) + 1);
        vm.warp(T0 + wait);
        if (wait < cooldown) {
            vm.expectRevert(
                abi.encodeWithSelector(ICredits.FaucetCooldown.selector, alice, uint64(T0) + cooldown)
            );
        }
        vm.prank(alice);
        credits.faucet();
    }

    // ================================================================ owner settings

    function test_setFaucet_changesSettings() public {
        vm.expectEmit(true, true, true, true, address(credits));
        emit ICredits.FaucetConfigured(false, 5 ether, 2 days);
        vm.prank(owner);
        credits.setFaucet(false, 5 ether, 2 days);
        assertFalse(credits.faucetEnabled(), "off");
        assertEq(credits.dripAmount(), 5 ether, "drip");
        assertEq(credits.cooldown(), 2 days, "cooldown");
    }

    function test_setFaucet_revertsIfInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(ICredits.InvalidFaucetConfig.selector, 0, 1));
        vm.prank(owner);
        credits.setFaucet(true, 0, 1);
    }

    function test_setFaucet_revertsIfNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        credits.setFaucet(true, DRIP, 0);
    }

    function test_mint_ownerMints() public {
        vm.prank(owner);
        credits.mint(bob, 3 ether);
        assertEq(credits.balanceOf(bob), 3 ether, "minted");
    }

    function test_mint_revertsIfNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        credits.mint(alice, 1);
    }

    function test_ownership_transfersInTwoSteps() public {
        vm.prank(owner);
        credits.transferOwnership(alice);
        assertEq(credits.owner(), owner, "not yet");
        assertEq(credits.pendingOwner(), alice, "pending");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        vm.prank(bob);
        credits.acceptOwnership();
        vm.prank(alice);
        credits.acceptOwnership();
        assertEq(credits.owner(), alice, "transferred");
    }

    // ================================================================ ERC-20 and permit

    function test_transferAndTransferFrom_moveBalances() public {
        vm.prank(owner);
        credits.mint(alice, 10 ether);
        vm.prank(alice);
        credits.transfer(bob, 4 ether);
        vm.prank(alice);
        credits.approve(bob, 1 ether);
        vm.prank(bob);
        credits.transferFrom(alice, bob, 1 ether);
        assertEq(credits.balanceOf(alice), 5 ether, "alice");
        assertEq(credits.balanceOf(bob), 5 ether, "bob");
    }

    function test_permit_setsAllowanceFromSignature() public {
        uint256 key = 0xA11CE;
        address signer = vm.addr(key);
        uint256 deadline = T0 + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                signer,
                bob,
                9 ether,
                0,
                deadline
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked("\x19\x01", credits.DOMAIN_SEPARATOR(), structHash)));
        credits.permit(signer, bob, 9 ether, deadline, v, r, s);
        assertEq(credits.allowance(signer, bob), 9 ether, "allowance");
        assertEq(credits.nonces(signer), 1, "nonce");
    }
}
