// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./Test.sol";
import {Credits} from "../../src/Credits.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice A deployed market with funded, approved accounts and helpers that sign and drive jobs.
abstract contract MarketFixture is Test {
    // Market terms used by every unit test.
    uint256 internal constant MIN_BOND = 100 ether;
    uint16 internal constant COLLATERAL_BPS = 5000; // 50 % of the price
    uint256 internal constant DISPUTE_BOND = 10 ether;
    uint64 internal constant CHALLENGE_WINDOW = 1 days;
    uint64 internal constant RESOLVE_WINDOW = 3 days;
    uint64 internal constant EXIT_COOLDOWN = 7 days;
    uint64 internal constant REVEAL_WINDOW = 1 hours;
    uint16 internal constant FEE_BPS = 250; // 2.5 %
    uint256 internal constant DRIP = 1000 ether;
    uint64 internal constant FAUCET_COOLDOWN = 1 days;
    uint256 internal constant T0 = 1_700_000_000;

    uint256 internal constant PRICE = 40 ether;
    uint256 internal constant MAX_PRICE = 50 ether;
    uint64 internal constant DELIVERY_WINDOW = 1 hours;
    uint64 internal constant CLAIM_WINDOW = 10 minutes;

    /// @dev secp256k1 group order; s above n/2 is the malleable twin.
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    bytes32 internal constant MODEL_ID = keccak256("cogvideox-2b");
    // A typical canonical spec (sorted keys, no whitespace): about 300 bytes.
    bytes internal constant SPEC = bytes(
        '{"fps":8,"guidance_milli":6000,"height":480,"inputs":{},"model":"cogvideox-2b",'
        '"negative_prompt":"blurry, low quality","num_frames":49,'
        '"prompt":"a red fox trotting through fresh snow at dawn, cinematic lighting",'
        '"seed":42,"steps":50,"style":"cinematic","task":"text-to-video","version":1,"width":720}'
    );

    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant JOB_REQUEST_TYPEHASH = keccak256(
        "JobRequest(address client,bytes32 modelId,bytes32 specHash,uint256 maxPrice,uint64 claimDeadline,uint64 deliveryWindow,uint8 replicas,bool perceptual,uint256 nonce)"
    );

    Credits internal credits;
    JobMarket internal market;

    uint256 internal clientKey = 0xC11E47;
    uint256 internal client2Key = 0xC11E48;
    address internal client;
    address internal client2;
    address internal provider;
    address internal provider2;
    address internal admin;
    address internal arbiter;
    address internal relayer;
    address internal stranger;
    address internal treasury;
    /// @dev Accounts a test adds (more providers) that the money identity must cover too.
    address[] internal extraAccounts;

    function setUp() public virtual {
        vm.warp(T0);
        client = vm.addr(clientKey);
        client2 = vm.addr(client2Key);
        vm.label(client, "client");
        vm.label(client2, "client2");
        provider = makeAddr("provider");
        provider2 = makeAddr("provider2");
        admin = makeAddr("admin");
        arbiter = makeAddr("arbiter");
        relayer = makeAddr("relayer");
        stranger = makeAddr("stranger");
        treasury = makeAddr("treasury");

        credits = new Credits(admin, DRIP, FAUCET_COOLDOWN);
        market = _deployMarket(address(credits));
        vm.label(address(credits), "credits");
        vm.label(address(market), "market");

        address[5] memory funded = [client, client2, provider, provider2, stranger];
        for (uint256 i; i < funded.length; ++i) {
            vm.prank(admin);
            credits.mint(funded[i], 1_000_000 ether);
            vm.prank(funded[i]);
            credits.approve(address(market), type(uint256).max);
        }
    }

    function _config() internal view returns (JobMarket.MarketConfig memory) {
        return JobMarket.MarketConfig({
            admin: admin,
            arbiter: arbiter,
            minBond: MIN_BOND,
            collateralBps: COLLATERAL_BPS,
            disputeBond: DISPUTE_BOND,
            challengeWindow: CHALLENGE_WINDOW,
            resolveWindow: RESOLVE_WINDOW,
            exitCooldown: EXIT_COOLDOWN,
            protocolFeeBps: FEE_BPS,
            revealWindow: REVEAL_WINDOW
        });
    }

    function _deployMarket(address token) internal returns (JobMarket) {
        return new JobMarket(IERC20(token), _config());
    }

    // ------------------------------------------------------------ signing

    function _request(address who, uint256 nonce) internal view returns (IJobMarket.JobRequest memory) {
        return IJobMarket.JobRequest({
            client: who,
            modelId: MODEL_ID,
            specHash: keccak256(SPEC),
            maxPrice: MAX_PRICE,
            claimDeadline: uint64(block.timestamp + CLAIM_WINDOW),
            deliveryWindow: DELIVERY_WINDOW,
            replicas: 1,
            perceptual: false,
            nonce: nonce
        });
    }

    /// @dev The EIP-712 digest computed here from first principles (not through the market).
    function _digest(IJobMarket.JobRequest memory r, uint256 chainId, address verifyingContract)
        internal
        pure
        returns (bytes32)
    {
        bytes32 domainSeparator = keccak256(
            abi.encode(
                EIP712_DOMAIN_TYPEHASH, keccak256("framecast"), keccak256("1"), chainId, verifyingContract
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                JOB_REQUEST_TYPEHASH,
                r.client,
                r.modelId,
                r.specHash,
                r.maxPrice,
                r.claimDeadline,
                r.deliveryWindow,
                r.replicas,
                r.perceptual,
                r.nonce
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }

    function _signDigest(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _sign(uint256 key, IJobMarket.JobRequest memory r) internal view returns (bytes memory) {
        return _signDigest(key, _digest(r, block.chainid, address(market)));
    }

    // ------------------------------------------------------------ driving jobs

    function _deposit(address who, uint256 amount) internal {
        vm.prank(who);
        market.deposit(amount);
    }

    function _register(address who, uint256 bond) internal {
        vm.prank(who);
        market.registerProvider(bond, "ipfs://provider-offer");
    }

    function _submit(IJobMarket.JobRequest memory r, bytes memory signature)
        internal
        returns (uint256 jobId)
    {
        vm.prank(relayer);
        jobId = market.submitJob(r, SPEC, signature);
    }

    /// @dev Client deposits and a relayer submits a default request: an Open job.
    function _openJob() internal returns (uint256 jobId) {
        return _openJob(0);
    }

    function _openJob(uint256 nonce) internal returns (uint256 jobId) {
        _deposit(client, MAX_PRICE);
        IJobMarket.JobRequest memory r = _request(client, nonce);
        jobId = _submit(r, _sign(clientKey, r));
    }

    function _claimedJob() internal returns (uint256 jobId) {
        jobId = _openJob();
        _register(provider, MIN_BOND);
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
    }

    function _deliveredJob() internal returns (uint256 jobId) {
        jobId = _claimedJob();
        vm.prank(provider);
        market.deliver(jobId, _cid(), keccak256("video"), keccak256("frames"));
    }

    function _disputedJob() internal returns (uint256 jobId) {
        jobId = _deliveredJob();
        _deposit(client, DISPUTE_BOND);
        vm.prank(client);
        market.dispute(jobId, IJobMarket.DisputeReason.HashMismatch, keccak256("evidence"));
    }

    /// @dev A CIDv1 (dag-pb, sha2-256) in binary: 0x01 0x70 0x12 0x20 ‖ 32-byte digest.
    function _cid() internal pure returns (bytes memory) {
        return abi.encodePacked(hex"01701220", keccak256("result-dir"));
    }

    function _fee(uint256 price) internal pure returns (uint256) {
        return price * FEE_BPS / 10_000;
    }

    function _collateral(uint256 price) internal pure returns (uint256) {
        return price * COLLATERAL_BPS / 10_000;
    }

    /// @dev The money identity over the accounts these unit tests use.
    function _assertSolvent(uint256 lastJobId) internal view {
        address[7] memory accounts = [client, client2, provider, provider2, stranger, relayer, treasury];
        uint256 sum = market.feesOwed();
        for (uint256 i; i < accounts.length; ++i) {
            sum += market.freeBalanceOf(accounts[i]) + market.getProvider(accounts[i]).bond;
        }
        for (uint256 i; i < extraAccounts.length; ++i) {
            sum += market.freeBalanceOf(extraAccounts[i]) + market.getProvider(extraAccounts[i]).bond;
        }
        for (uint256 id = 1; id <= lastJobId; ++id) {
            sum += market.escrowOf(id);
        }
        assertEq(credits.balanceOf(address(market)), sum, "market balance == free + escrow + bonds + fees");
    }

    function _state(uint256 jobId) internal view returns (IJobMarket.JobState) {
        return market.getJob(jobId).state;
    }

    function _assertState(uint256 jobId, IJobMarket.JobState expected) internal view {
        assertEq(uint256(_state(jobId)), uint256(expected), "job state");
    }
}
