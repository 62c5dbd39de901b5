// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {SmartWallet} from "../utils/SmartWallet.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";

/// @notice submitJob, invalidateNonce, hashRequest and the EIP-712 domain.
contract SubmitTest is MarketFixture {
    function setUp() public override {
        super.setUp();
        _deposit(client, 1000 ether);
    }

    // ------------------------------------------------------------ digest

    function test_hashRequest_matchesIndependentEip712Digest() public view {
        IJobMarket.JobRequest memory r = _request(client, 7);
        assertEq(market.hashRequest(r), _digest(r, block.chainid, address(market)), "digest");
        assertEq(market.JOB_REQUEST_TYPEHASH(), JOB_REQUEST_TYPEHASH, "type hash");
    }

    function test_eip712Domain_isFramecastV1OnThisChainAndContract() public view {
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            market.eip712Domain();
        assertEq(name, "framecast", "name");
        assertEq(version, "1", "version");
        assertEq(chainId, block.chainid, "chain id");
        assertEq(verifyingContract, address(market), "verifying contract");
    }

    // ------------------------------------------------------------ happy path

    function test_submitJob_escrowsMaxPriceAndStoresJob() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(clientKey, r);
        uint256 freeBefore = market.freeBalanceOf(client);

        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobSubmitted(
            1,
            client,
            MODEL_ID,
            keccak256(SPEC),
            MAX_PRICE,
            r.claimDeadline,
            DELIVERY_WINDOW,
            1,
            false,
            1,
            SPEC
        );
        vm.prank(relayer);
        uint256 jobId = market.submitJob(r, SPEC, sig);

        assertEq(jobId, 1, "first job id");
        assertEq(market.nextJobId(), 2, "next id");
        assertEq(market.freeBalanceOf(client), freeBefore - MAX_PRICE, "free balance");
        assertEq(market.escrowOf(jobId), MAX_PRICE, "escrow");
        assertTrue(market.isNonceUsed(client, 1), "nonce used");
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(job.client, client, "client");
        assertEq(uint256(job.state), uint256(IJobMarket.JobState.Open), "state");
        assertEq(job.deadline, r.claimDeadline, "claim deadline");
        assertEq(job.amount, MAX_PRICE, "max price");
        assertEq(job.feeBps, FEE_BPS, "fee snapshot");
        assertEq(job.deliveryWindow, DELIVERY_WINDOW, "delivery window");
        assertEq(job.provider, address(0), "no provider");
        _assertSolvent(jobId);
    }

    function test_submitJob_clientMaySubmitItself() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(clientKey, r);
        vm.prank(client);
        assertEq(market.submitJob(r, SPEC, sig), 1, "job id");
    }

    function test_submitJob_acceptsEmptySpecAndMaxSizeSpec() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.specHash = keccak256("");
        vm.prank(relayer);
        market.submitJob(r, "", _sign(clientKey, r));

        bytes memory big = new bytes(market.MAX_SPEC_BYTES());
        r = _request(client, 2);
        r.specHash = keccak256(big);
        vm.prank(relayer);
        assertEq(market.submitJob(r, big, _sign(clientKey, r)), 2, "4 KiB spec accepted");
    }

    function test_submitJob_acceptsDeliveryWindowBounds() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.deliveryWindow = market.MIN_DELIVERY_WINDOW();
        _submit(r, _sign(clientKey, r));
        r = _request(client, 2);
        r.deliveryWindow = market.MAX_DELIVERY_WINDOW();
        r.claimDeadline = uint64(block.timestamp + market.MAX_CLAIM_HORIZON());
        _submit(r, _sign(clientKey, r));
        assertEq(market.nextJobId(), 3, "two jobs");
    }

    function test_submitJob_idsIncrease() public {
        for (uint256 i; i < 3; ++i) {
            IJobMarket.JobRequest memory r = _request(client, 100 + i);
            assertEq(_submit(r, _sign(clientKey, r)), i + 1, "job id");
        }
    }

    function test_submitJob_snapshotsFeeAtSubmission() public {
        uint256 jobId = _openJob(1);
        vm.prank(admin);
        market.setProtocolFee(900);
        assertEq(market.getJob(jobId).feeBps, FEE_BPS, "old fee kept");
        IJobMarket.JobRequest memory r = _request(client, 2);
        assertEq(market.getJob(_submit(r, _sign(clientKey, r))).feeBps, 900, "new fee for new job");
    }

    // ------------------------------------------------------------ ERC-1271 smart wallet clients

    function test_submitJob_acceptsErc1271WalletSignature() public {
        SmartWallet wallet = new SmartWallet(vm.addr(client2Key));
        vm.prank(admin);
        credits.mint(address(wallet), 100 ether);
        vm.startPrank(address(wallet));
        credits.approve(address(market), type(uint256).max);
        market.deposit(MAX_PRICE);
        vm.stopPrank();

        IJobMarket.JobRequest memory r = _request(address(wallet), 1);
        uint256 jobId = _submit(r, _sign(client2Key, r));
        assertEq(market.getJob(jobId).client, address(wallet), "wallet is the client");
        assertEq(market.escrowOf(jobId), MAX_PRICE, "escrow");

        vm.prank(address(wallet));
        market.cancelJob(jobId);
        assertEq(market.freeBalanceOf(address(wallet)), MAX_PRICE, "refund to wallet");
    }

    function test_submitJob_revertsIfErc1271WalletRejects() public {
        SmartWallet wallet = new SmartWallet(vm.addr(client2Key));
        IJobMarket.JobRequest memory r = _request(address(wallet), 1);
        bytes memory sig = _sign(clientKey, r); // not the wallet's owner
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidSigner.selector, address(wallet), address(0))
        );
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfContractClientIsNotAWallet() public {
        // A contract without isValidSignature (here: the token) can never be a client.
        IJobMarket.JobRequest memory r = _request(address(credits), 1);
        bytes memory sig = _sign(clientKey, r);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidSigner.selector, address(credits), address(0))
        );
        market.submitJob(r, SPEC, sig);
    }

    // ------------------------------------------------------------ bad input: signature and domain

    function test_submitJob_revertsIfWrongSigner() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(client2Key, r);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSigner.selector, client, client2));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfRequestFieldAlteredAfterSigning() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(clientKey, r);
        r.maxPrice = MAX_PRICE - 1; // a relayer tampering with the terms
        address recovered = _recover(market.hashRequest(r), sig);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSigner.selector, client, recovered));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfSignedForOtherChainId() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _signDigest(clientKey, _digest(r, block.chainid + 1, address(market)));
        address recovered = _recover(market.hashRequest(r), sig);
        assertTrue(recovered != client, "recovers someone else");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSigner.selector, client, recovered));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsAfterChainFork() public {
        // Signed for this chain, then the chain id changes (a fork): the domain follows block.chainid.
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(clientKey, r);
        vm.chainId(block.chainid + 5);
        bytes32 forkedDigest = market.hashRequest(r);
        assertEq(forkedDigest, _digest(r, block.chainid, address(market)), "domain rebuilt for new chain id");
        address recovered = _recover(forkedDigest, sig);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSigner.selector, client, recovered));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfSignedForOtherContract() public {
        JobMarket other = _deployMarket(address(credits));
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _signDigest(clientKey, other.hashRequest(r));
        address recovered = _recover(market.hashRequest(r), sig);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSigner.selector, client, recovered));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfMalleableHighS() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(clientKey, market.hashRequest(r));
        // The twin (r, n - s, v ^ 1) recovers the same key through the raw precompile ...
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        uint8 flippedV = v == 27 ? 28 : 27;
        assertEq(ecrecover(market.hashRequest(r), flippedV, rr, highS), client, "twin is a valid ecrecover");
        // ... but the market insists on low s.
        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        market.submitJob(r, SPEC, abi.encodePacked(rr, highS, flippedV));
    }

    function test_submitJob_revertsIfCompactSignature() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(clientKey, market.hashRequest(r));
        bytes32 vs = bytes32(uint256(v - 27) << 255 | uint256(s)); // ERC-2098 short form
        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        market.submitJob(r, SPEC, abi.encodePacked(rr, vs));
    }

    function test_submitJob_revertsIfSignatureMalformed() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(clientKey, r);
        sig[64] = bytes1(uint8(29)); // v outside {27, 28}
        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        market.submitJob(r, SPEC, sig);

        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        market.submitJob(r, SPEC, "");
    }

    // ------------------------------------------------------------ bad input: nonces

    function test_submitJob_revertsIfNonceReused() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(clientKey, r);
        _submit(r, sig);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceAlreadyUsed.selector, client, 1));
        market.submitJob(r, SPEC, sig);

        // The same nonce with other terms is just as dead.
        IJobMarket.JobRequest memory r2 = _request(client, 1);
        r2.maxPrice = 1 ether;
        bytes memory sig2 = _sign(clientKey, r2);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceAlreadyUsed.selector, client, 1));
        market.submitJob(r2, SPEC, sig2);
    }

    function test_submitJob_revertsIfNonceInvalidated() public {
        IJobMarket.JobRequest memory r = _request(client, 9);
        bytes memory sig = _sign(clientKey, r);
        vm.prank(client);
        market.invalidateNonce(9);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceAlreadyUsed.selector, client, 9));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_noncesAreUnorderedAndPerClient() public {
        uint256[4] memory nonces = [uint256(1000), 3, 256, type(uint256).max];
        for (uint256 i; i < nonces.length; ++i) {
            IJobMarket.JobRequest memory r = _request(client, nonces[i]);
            _submit(r, _sign(clientKey, r));
            assertTrue(market.isNonceUsed(client, nonces[i]), "used");
            assertFalse(market.isNonceUsed(client2, nonces[i]), "other client unaffected");
        }
        assertFalse(market.isNonceUsed(client, 255), "neighbouring bit free");
        assertFalse(market.isNonceUsed(client, 257), "neighbouring bit free");
    }

    function test_invalidateNonce_marksNonceUsedAndEmits() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.NonceInvalidated(client, 42);
        vm.prank(client);
        market.invalidateNonce(42);
        assertTrue(market.isNonceUsed(client, 42), "invalidated");
        assertFalse(market.isNonceUsed(client2, 42), "per client");
    }

    function test_invalidateNonce_revertsIfAlreadyUsed() public {
        _openJob(5);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceAlreadyUsed.selector, client, 5));
        vm.prank(client);
        market.invalidateNonce(5);
    }

    // ------------------------------------------------------------ bad input: spec and terms

    function test_submitJob_revertsIfSpecHashMismatch() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(clientKey, r);
        bytes memory otherSpec = bytes('{"prompt":"something else"}');
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.SpecHashMismatch.selector, keccak256(SPEC), keccak256(otherSpec)
            )
        );
        market.submitJob(r, otherSpec, sig);
    }

    function test_submitJob_revertsIfSpecOver4KiB() public {
        bytes memory big = new bytes(4097);
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.specHash = keccak256(big);
        bytes memory sig = _sign(clientKey, r);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpecTooLarge.selector, 4097, 4096));
        market.submitJob(r, big, sig);
    }

    function test_submitJob_revertsIfExpired() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        bytes memory sig = _sign(clientKey, r);
        vm.warp(r.claimDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.RequestExpired.selector, r.claimDeadline, r.claimDeadline)
        );
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfClaimDeadlineTooFar() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        uint256 latest = block.timestamp + market.MAX_CLAIM_HORIZON();
        r.claimDeadline = uint64(latest + 1);
        bytes memory sig = _sign(clientKey, r);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ClaimDeadlineTooFar.selector, latest + 1, latest));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfDeliveryWindowTooShort() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.deliveryWindow = 59;
        bytes memory sig = _sign(clientKey, r);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidDeliveryWindow.selector, 59, 60, 7 days));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfDeliveryWindowTooLong() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.deliveryWindow = 7 days + 1;
        bytes memory sig = _sign(clientKey, r);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InvalidDeliveryWindow.selector, 7 days + 1, 60, 7 days)
        );
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfMaxPriceAbove96Bits() public {
        IJobMarket.JobRequest memory r = _request(client, 1);
        r.maxPrice = uint256(type(uint96).max) + 1;
        bytes memory sig = _sign(clientKey, r);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AmountTooLarge.selector, r.maxPrice));
        market.submitJob(r, SPEC, sig);
    }

    function test_submitJob_revertsIfClientCannotCoverMaxPrice() public {
        IJobMarket.JobRequest memory r = _request(client2, 1); // client2 deposited nothing
        bytes memory sig = _sign(client2Key, r);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InsufficientBalance.selector, client2, 0, MAX_PRICE)
        );
        market.submitJob(r, SPEC, sig);
        assertFalse(market.isNonceUsed(client2, 1), "nonce not burnt by a failed submit");
    }

    function _recover(bytes32 digest, bytes memory sig) internal pure returns (address) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
        return ecrecover(digest, v, r, s);
    }
}
