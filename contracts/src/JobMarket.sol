// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {ReplicatedJobs} from "./ReplicatedJobs.sol";
import {Amounts} from "./libraries/Amounts.sol";
import {Books} from "./libraries/Books.sol";
import {Results} from "./libraries/Results.sol";
import {Terms, TermsLib} from "./libraries/Terms.sol";

/// @title JobMarket — framecast's registry and escrow
/// @notice See {IJobMarket}. All accounting is internal: the token moves only on deposit,
///         withdraw, bond changes and fee payout, so lifecycle calls make no external calls.
/// @dev Storage is packed so one job's whole life (submit, claim, deliver, settle) stays
///      under 250k gas: a job is two slots written at submit and only overwritten later;
///      amounts are 96-bit, stored timestamps 40-bit. A replicated job (replicas ≥ 2) keeps the
///      same two slots, marked by `provider == _REPLICATED`, and its replicas in separate mappings,
///      so single jobs read nothing more than before. Its logic (claim of a share, commit, reveal,
///      comparison, arbiter, settle, reclaim) runs in the externally linked library
///      {ReplicatedJobs} on this contract's storage ({Books}); single jobs never call it.
contract JobMarket is IJobMarket, EIP712, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Role that decides disputes.
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    /// @notice EIP-712 type hash of {IJobMarket-JobRequest}.
    bytes32 public constant JOB_REQUEST_TYPEHASH = keccak256(
        "JobRequest(address client,bytes32 modelId,bytes32 specHash,uint256 maxPrice,uint64 claimDeadline,uint64 deliveryWindow,uint8 replicas,bool perceptual,uint256 nonce)"
    );
    /// @notice Most replicas a request may ask for (the replica masks are 8-bit).
    uint8 public constant MAX_REPLICAS = 5;
    /// @notice Hard cap on the protocol fee (10 %); the admin cannot set more.
    uint16 public constant MAX_FEE_BPS = 1000;
    /// @notice Canonical spec JSON carried in calldata is at most 4 KiB.
    uint256 public constant MAX_SPEC_BYTES = 4096;
    /// @notice A binary CID (CIDv1 + multihash) is far below this.
    uint256 public constant MAX_CID_BYTES = Results.MAX_CID_BYTES;
    /// @notice Shortest delivery window a request may ask for.
    uint64 public constant MIN_DELIVERY_WINDOW = 60;
    /// @notice Longest delivery window a request may ask for.
    uint64 public constant MAX_DELIVERY_WINDOW = 7 days;
    /// @notice Furthest a claim deadline may lie in the future.
    uint64 public constant MAX_CLAIM_HORIZON = 30 days;
    /// @notice Share of the collateral a provider forfeits to the client when it releases a job.
    uint16 public constant RELEASE_PENALTY_BPS = 2000;
    /// @notice Longest challenge, arbiter or exit window the constructor accepts (keeps every
    ///         stored deadline far inside 40 bits).
    uint64 public constant MAX_WINDOW = 365 days;
    uint256 private constant _BPS = Amounts.BPS;
    /// @dev `Job.provider` of a replicated job. No transaction can come from address(1) (the
    ///      ecrecover precompile), so it never matches a caller.
    address private constant _REPLICATED = ReplicatedJobs.REPLICATED;

    /// @notice Construction parameters; they are immutable so running jobs keep their terms.
    struct MarketConfig {
        address admin;
        address arbiter;
        uint256 minBond;
        uint16 collateralBps;
        uint256 disputeBond;
        uint64 challengeWindow;
        uint64 resolveWindow;
        uint64 exitCooldown;
        uint16 protocolFeeBps;
        uint64 revealWindow;
    }

    /// @notice The credits token.
    IERC20 public immutable TOKEN;
    /// @notice Least bond to register and to claim.
    uint96 public immutable MIN_BOND;
    /// @notice Collateral a claim locks, in basis points of the claim price.
    uint16 public immutable COLLATERAL_BPS;
    /// @notice Credits a client locks to dispute; paid to the provider if the dispute fails.
    uint96 public immutable DISPUTE_BOND;
    /// @notice Seconds after delivery during which the client may dispute.
    uint64 public immutable CHALLENGE_WINDOW;
    /// @notice Seconds the arbiter has to decide a dispute.
    uint64 public immutable RESOLVE_WINDOW;
    /// @notice Seconds between an exit request and bond withdrawal.
    uint64 public immutable EXIT_COOLDOWN;
    /// @notice Seconds replicas have to reveal once every one committed (or the commit deadline passed).
    uint64 public immutable REVEAL_WINDOW;
    /// @dev The terms above that ReplicatedJobs needs, packed for its calls.
    Terms private immutable _TERMS;

    // Packed in one slot: submitJob reads the fee and bumps the id with one cold access.
    uint64 private _nextJobId = 1;
    uint16 private _protocolFeeBps;
    // Jobs, balances, providers, replicas and fees: shared with the linked ReplicatedJobs.
    Books private _books;
    // Unordered nonces as bitmaps: 256 per word, so sequential nonces cost one warm-ish write.
    mapping(address client => mapping(uint256 word => uint256 bits)) private _nonceBits;

    /// @param token The credits token (a standard ERC-20 with permit, no transfer fees).
    /// @param config See {MarketConfig}.
    constructor(IERC20 token, MarketConfig memory config) EIP712("framecast", "1") {
        if (address(token) == address(0) || config.admin == address(0)) revert ZeroAddress();
        if (config.protocolFeeBps > MAX_FEE_BPS) revert FeeTooHigh(config.protocolFeeBps, MAX_FEE_BPS);
        if (config.collateralBps > _BPS * 5) revert InvalidParameter("collateralBps", config.collateralBps);
        if (config.challengeWindow == 0 || config.challengeWindow > MAX_WINDOW) {
            revert InvalidParameter("challengeWindow", config.challengeWindow);
        }
        if (config.resolveWindow == 0 || config.resolveWindow > MAX_WINDOW) {
            revert InvalidParameter("resolveWindow", config.resolveWindow);
        }
        if (config.exitCooldown > MAX_WINDOW) revert InvalidParameter("exitCooldown", config.exitCooldown);
        if (config.revealWindow == 0 || config.revealWindow > MAX_WINDOW) {
            revert InvalidParameter("revealWindow", config.revealWindow);
        }
        TOKEN = token;
        MIN_BOND = _toAmount(config.minBond);
        COLLATERAL_BPS = config.collateralBps;
        DISPUTE_BOND = _toAmount(config.disputeBond);
        CHALLENGE_WINDOW = config.challengeWindow;
        RESOLVE_WINDOW = config.resolveWindow;
        EXIT_COOLDOWN = config.exitCooldown;
        REVEAL_WINDOW = config.revealWindow;
        // The windows are at most MAX_WINDOW (checked above), far inside 48 bits.
        _TERMS = TermsLib.pack(
            DISPUTE_BOND,
            config.collateralBps,
            uint48(config.challengeWindow),
            uint48(config.resolveWindow),
            uint48(config.revealWindow)
        );
        _protocolFeeBps = config.protocolFeeBps;
        _grantRole(DEFAULT_ADMIN_ROLE, config.admin);
        if (config.arbiter != address(0)) _grantRole(ARBITER_ROLE, config.arbiter);
    }

    // ================================================================ client funds

    /// @inheritdoc IJobMarket
    function deposit(uint256 amount) external nonReentrant {
        _deposit(amount);
    }

    /// @inheritdoc IJobMarket
    function depositWithPermit(uint256 amount, uint256 permitDeadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        // A front-runner may spend the permit first; the allowance it leaves is what counts.
        try IERC20Permit(address(TOKEN)).permit(msg.sender, address(this), amount, permitDeadline, v, r, s) {}
            catch {}
        _deposit(amount);
    }

    /// @inheritdoc IJobMarket
    function withdraw(uint256 amount, address to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 available = _books.free[msg.sender];
        if (available < amount) revert InsufficientBalance(msg.sender, available, amount);
        unchecked {
            // Cannot underflow: checked just above.
            _books.free[msg.sender] = available - amount;
        }
        emit Withdrawn(msg.sender, to, amount);
        TOKEN.safeTransfer(to, amount);
    }

    // ================================================================ providers

    /// @inheritdoc IJobMarket
    function registerProvider(uint256 bond, string calldata metadataURI) external nonReentrant {
        Provider storage p = _books.providers[msg.sender];
        if (p.registered) revert AlreadyRegistered(msg.sender);
        uint96 amount = _toAmount(bond);
        if (amount < MIN_BOND) revert BondTooLow(msg.sender, amount, MIN_BOND);
        p.registered = true;
        p.bond = amount;
        emit ProviderRegistered(msg.sender, amount, metadataURI);
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IJobMarket
    function updateMetadata(string calldata metadataURI) external {
        if (!_books.providers[msg.sender].registered) revert NotRegistered(msg.sender);
        emit ProviderMetadataUpdated(msg.sender, metadataURI);
    }

    /// @inheritdoc IJobMarket
    function addBond(uint256 amount) external nonReentrant {
        Provider storage p = _books.providers[msg.sender];
        if (!p.registered) revert NotRegistered(msg.sender);
        if (amount == 0) revert ZeroAmount();
        p.bond = _toAmount(uint256(p.bond) + amount);
        emit BondAdded(msg.sender, amount);
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IJobMarket
    function requestExit() external {
        Provider storage p = _books.providers[msg.sender];
        if (!p.registered) revert NotRegistered(msg.sender);
        if (p.exitAvailableAt != 0) revert ProviderExiting(msg.sender, p.exitAvailableAt);
        uint40 availableAt = uint40(block.timestamp + EXIT_COOLDOWN);
        p.exitAvailableAt = availableAt;
        emit ExitRequested(msg.sender, availableAt);
    }

    /// @inheritdoc IJobMarket
    function cancelExit() external {
        Provider storage p = _books.providers[msg.sender];
        if (p.exitAvailableAt == 0) revert NotExiting(msg.sender);
        p.exitAvailableAt = 0;
        emit ExitCancelled(msg.sender);
    }

    /// @inheritdoc IJobMarket
    function withdrawBond(uint256 amount, address to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        Provider storage p = _books.providers[msg.sender];
        uint40 availableAt = p.exitAvailableAt;
        if (availableAt == 0 || block.timestamp < availableAt) revert ExitNotReady(msg.sender, availableAt);
        uint256 unlocked = p.bond - p.locked;
        if (amount > unlocked) revert BondLocked(msg.sender, unlocked, amount);
        unchecked {
            // amount <= bond - locked <= bond, and bond fits 96 bits.
            p.bond -= uint96(amount);
        }
        emit BondWithdrawn(msg.sender, to, amount);
        TOKEN.safeTransfer(to, amount);
    }

    // ================================================================ jobs

    /// @inheritdoc IJobMarket
    function submitJob(JobRequest calldata request, bytes calldata spec, bytes calldata signature)
        external
        returns (uint256 jobId)
    {
        if (spec.length > MAX_SPEC_BYTES) revert SpecTooLarge(spec.length, MAX_SPEC_BYTES);
        bytes32 actual = keccak256(spec);
        if (actual != request.specHash) revert SpecHashMismatch(request.specHash, actual);
        if (request.claimDeadline <= block.timestamp) {
            revert RequestExpired(request.claimDeadline, block.timestamp);
        }
        if (request.claimDeadline > block.timestamp + MAX_CLAIM_HORIZON) {
            revert ClaimDeadlineTooFar(request.claimDeadline, block.timestamp + MAX_CLAIM_HORIZON);
        }
        if (request.deliveryWindow < MIN_DELIVERY_WINDOW || request.deliveryWindow > MAX_DELIVERY_WINDOW) {
            revert InvalidDeliveryWindow(request.deliveryWindow, MIN_DELIVERY_WINDOW, MAX_DELIVERY_WINDOW);
        }
        uint8 replicas = request.replicas;
        if (replicas == 0 || replicas > MAX_REPLICAS) revert InvalidReplicas(replicas, MAX_REPLICAS);
        uint96 maxPrice = _toAmount(request.maxPrice);
        // maxPrice < 2^96 and replicas <= 5: the product fits 256 bits; _toAmount bounds it.
        uint96 escrow = replicas == 1 ? maxPrice : _toAmount(uint256(maxPrice) * replicas);
        address client = request.client;
        _checkSignature(request, signature);
        _useNonce(client, request.nonce);

        uint256 available = _books.free[client];
        if (available < escrow) revert InsufficientBalance(client, available, escrow);
        unchecked {
            // Cannot underflow: checked just above.
            _books.free[client] = available - escrow;
        }

        jobId = _nextJobId;
        uint16 feeBps = _protocolFeeBps;
        unchecked {
            // 2^64 jobs will not happen.
            _nextJobId = uint64(jobId + 1);
        }
        // claimDeadline <= now + MAX_CLAIM_HORIZON fits 40 bits; MAX_DELIVERY_WINDOW fits 32.
        _books.jobs[jobId] = Job({
            client: client,
            deadline: uint40(request.claimDeadline),
            state: JobState.Open,
            feeBps: feeBps,
            deliveryWindow: uint32(request.deliveryWindow),
            provider: replicas == 1 ? address(0) : _REPLICATED,
            amount: maxPrice
        });
        if (replicas != 1) {
            ReplicaSet storage set = _books.sets[jobId];
            set.replicas = replicas;
            set.perceptual = request.perceptual;
            set.escrow = escrow;
        }

        _emitSubmitted(jobId, request, spec);
    }

    /// @inheritdoc IJobMarket
    function invalidateNonce(uint256 nonce) external {
        _useNonce(msg.sender, nonce);
        emit NonceInvalidated(msg.sender, nonce);
    }

    /// @inheritdoc IJobMarket
    function cancelJob(uint256 jobId) external {
        Job storage job = _books.jobs[jobId];
        if (job.state != JobState.Open) revert InvalidJobState(jobId, job.state);
        address client = job.client;
        if (msg.sender != client) revert NotJobClient(jobId, msg.sender);
        uint96 refund = job.amount;
        if (job.provider == _REPLICATED) {
            ReplicaSet storage set = _books.sets[jobId];
            if (set.claims != 0) revert ReplicasClaimed(jobId, set.claims);
            refund = set.escrow;
            set.escrow = 0;
        }
        job.state = JobState.Cancelled;
        _books.free[client] += refund;
        emit JobCancelled(jobId, client, refund);
    }

    /// @inheritdoc IJobMarket
    function claimJob(uint256 jobId, uint256 price) external {
        Job storage job = _books.jobs[jobId];
        if (job.state != JobState.Open) revert InvalidJobState(jobId, job.state);
        uint40 claimDeadline = job.deadline;
        if (block.timestamp > claimDeadline) revert ClaimWindowClosed(jobId, claimDeadline);
        uint96 maxPrice = job.amount;
        if (price > maxPrice) revert PriceAboveMax(jobId, price, maxPrice);

        Provider storage p = _books.providers[msg.sender];
        if (!p.registered) revert NotRegistered(msg.sender);
        if (p.exitAvailableAt != 0) revert ProviderExiting(msg.sender, p.exitAvailableAt);
        uint96 bond = p.bond;
        if (bond < MIN_BOND) revert BondTooLow(msg.sender, bond, MIN_BOND);
        // price <= maxPrice fits 96 bits.
        uint96 claimPrice = uint96(price);
        uint96 collateral = _collateral(claimPrice);
        uint96 locked = p.locked;
        uint96 unlocked = bond - locked;
        if (unlocked < collateral) revert InsufficientCollateral(msg.sender, unlocked, collateral);
        unchecked {
            // collateral <= bond - locked.
            p.locked = locked + collateral;
        }
        uint96 refund;
        unchecked {
            // claimPrice <= maxPrice.
            refund = maxPrice - claimPrice;
        }
        if (refund != 0) _books.free[job.client] += refund;

        uint40 deliverBy = uint40(block.timestamp) + job.deliveryWindow;
        if (job.provider == _REPLICATED) {
            deliverBy = ReplicatedJobs.claim(_books, jobId, claimPrice, refund, deliverBy);
        } else {
            job.state = JobState.Claimed;
            job.deadline = deliverBy;
            job.amount = claimPrice;
            job.provider = msg.sender;
        }
        emit JobClaimed(jobId, msg.sender, claimPrice, refund, collateral, deliverBy);
    }

    /// @inheritdoc IJobMarket
    function releaseJob(uint256 jobId) external {
        Job storage job = _books.jobs[jobId];
        if (job.state != JobState.Claimed) revert InvalidJobState(jobId, job.state);
        _checkProvider(jobId, job);
        uint40 deliverBy = job.deadline;
        if (block.timestamp > deliverBy) revert DeliveryWindowClosed(jobId, deliverBy);
        uint96 price = job.amount;
        uint96 collateral = _collateral(price);
        // collateral < 2^96 and RELEASE_PENALTY_BPS < _BPS, so the penalty fits 96 bits.
        uint96 penalty = uint96((uint256(collateral) * RELEASE_PENALTY_BPS) / _BPS);
        Provider storage p = _books.providers[msg.sender];
        unchecked {
            // The claim locked `collateral`; penalty <= collateral <= locked <= bond.
            p.locked -= collateral;
            p.bond -= penalty;
        }
        job.state = JobState.Released;
        _books.free[job.client] += uint256(price) + penalty;
        emit JobReleased(jobId, msg.sender, price, penalty);
    }

    /// @inheritdoc IJobMarket
    function deliver(uint256 jobId, bytes calldata resultCid, bytes32 videoSha256, bytes32 framesDigest)
        external
    {
        Job storage job = _books.jobs[jobId];
        if (job.state != JobState.Claimed) revert InvalidJobState(jobId, job.state);
        _checkProvider(jobId, job);
        uint40 deliverBy = job.deadline;
        if (block.timestamp > deliverBy) revert DeliveryWindowClosed(jobId, deliverBy);
        Results.check(resultCid, videoSha256, framesDigest);

        uint40 challengeEnds = uint40(block.timestamp + CHALLENGE_WINDOW);
        job.state = JobState.Delivered;
        job.deadline = challengeEnds;
        emit JobDelivered(jobId, msg.sender, resultCid, videoSha256, framesDigest, challengeEnds);
    }

    /// @inheritdoc IJobMarket
    function dispute(uint256 jobId, DisputeReason reason, bytes32 evidence) external {
        Job storage job = _books.jobs[jobId];
        if (job.state != JobState.Delivered) revert InvalidJobState(jobId, job.state);
        if (msg.sender != job.client) revert NotJobClient(jobId, msg.sender);
        uint40 challengeEnds = job.deadline;
        if (block.timestamp >= challengeEnds) revert ChallengeWindowClosed(jobId, challengeEnds);
        uint256 available = _books.free[msg.sender];
        if (available < DISPUTE_BOND) revert InsufficientBalance(msg.sender, available, DISPUTE_BOND);
        unchecked {
            // Cannot underflow: checked just above.
            _books.free[msg.sender] = available - DISPUTE_BOND;
        }
        if (job.provider == _REPLICATED) _books.sets[jobId].bonded = true;
        uint40 resolveBy = uint40(block.timestamp + RESOLVE_WINDOW);
        job.state = JobState.Disputed;
        job.deadline = resolveBy;
        emit JobDisputed(jobId, msg.sender, reason, evidence, resolveBy);
    }

    /// @inheritdoc IJobMarket
    function resolve(uint256 jobId, bool providerAtFault) external onlyRole(ARBITER_ROLE) {
        Job storage job = _books.jobs[jobId];
        if (job.state != JobState.Disputed) revert InvalidJobState(jobId, job.state);
        if (job.provider == _REPLICATED) revert ReplicatedJob(jobId);
        uint40 resolveBy = job.deadline;
        if (block.timestamp >= resolveBy) revert ResolveWindowClosed(jobId, resolveBy);
        emit JobResolved(jobId, msg.sender, providerAtFault);
        if (providerAtFault) {
            address client = job.client;
            uint96 price = job.amount;
            uint96 slashed = _unlock(job.provider, price, true);
            job.state = JobState.Rejected;
            _books.free[client] += uint256(price) + slashed + DISPUTE_BOND;
            emit JobRefunded(jobId, client, JobState.Rejected, price, slashed);
            emit DisputeBondReturned(jobId, client, DISPUTE_BOND);
        } else {
            _payProvider(jobId, job, DISPUTE_BOND);
        }
    }

    /// @inheritdoc IJobMarket
    function settle(uint256 jobId) external {
        Job storage job = _books.jobs[jobId];
        JobState state = job.state;
        if (state != JobState.Delivered && state != JobState.Disputed) revert InvalidJobState(jobId, state);
        uint40 deadline = job.deadline;
        if (block.timestamp < deadline) revert TooEarly(jobId, deadline);
        if (job.provider == _REPLICATED) return _closeReplicated(jobId, true);
        if (state == JobState.Disputed) {
            // The arbiter stayed silent: the delivery stands and the client gets its bond back.
            address client = job.client;
            _books.free[client] += DISPUTE_BOND;
            emit DisputeBondReturned(jobId, client, DISPUTE_BOND);
        }
        _payProvider(jobId, job, 0);
    }

    /// @inheritdoc IJobMarket
    function reclaim(uint256 jobId) external {
        Job storage job = _books.jobs[jobId];
        if (job.provider == _REPLICATED) return _closeReplicated(jobId, false);
        JobState state = job.state;
        address client = job.client;
        if (state == JobState.Open) {
            uint40 claimDeadline = job.deadline;
            if (block.timestamp <= claimDeadline) revert TooEarly(jobId, claimDeadline);
            uint96 refund = job.amount;
            job.state = JobState.Expired;
            _books.free[client] += refund;
            emit JobRefunded(jobId, client, JobState.Expired, refund, 0);
        } else if (state == JobState.Claimed) {
            uint40 deliverBy = job.deadline;
            if (block.timestamp <= deliverBy) revert TooEarly(jobId, deliverBy);
            uint96 price = job.amount;
            uint96 slashed = _unlock(job.provider, price, true);
            job.state = JobState.Defaulted;
            _books.free[client] += uint256(price) + slashed;
            emit JobRefunded(jobId, client, JobState.Defaulted, price, slashed);
        } else {
            revert InvalidJobState(jobId, state);
        }
    }

    // ================================================================ replicated jobs

    /// @inheritdoc IJobMarket
    function commitResult(uint256 jobId, bytes32 commitment) external {
        ReplicatedJobs.commit(_books, jobId, commitment, _TERMS);
    }

    /// @inheritdoc IJobMarket
    function revealResult(
        uint256 jobId,
        bytes calldata resultCid,
        bytes32 videoSha256,
        bytes32 framesDigest,
        bytes32 salt
    ) external {
        ReplicatedJobs.reveal(_books, jobId, resultCid, videoSha256, framesDigest, salt, _TERMS);
    }

    /// @inheritdoc IJobMarket
    function resolveReplicas(uint256 jobId, uint8 faultMask) external onlyRole(ARBITER_ROLE) {
        ReplicatedJobs.resolve(_books, jobId, faultMask, _TERMS);
    }

    // ================================================================ admin

    /// @inheritdoc IJobMarket
    function setProtocolFee(uint16 feeBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (feeBps > MAX_FEE_BPS) revert FeeTooHigh(feeBps, MAX_FEE_BPS);
        emit ProtocolFeeChanged(_protocolFeeBps, feeBps);
        _protocolFeeBps = feeBps;
    }

    /// @inheritdoc IJobMarket
    function withdrawFees(address to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 owed = _books.feesOwed;
        if (amount > owed) revert InsufficientFees(owed, amount);
        unchecked {
            // Cannot underflow: checked just above.
            _books.feesOwed = owed - amount;
        }
        emit FeesWithdrawn(to, amount);
        TOKEN.safeTransfer(to, amount);
    }

    // ================================================================ views

    /// @inheritdoc IJobMarket
    function getJob(uint256 jobId) external view returns (Job memory) {
        return _books.jobs[jobId];
    }

    /// @inheritdoc IJobMarket
    function escrowOf(uint256 jobId) external view returns (uint256) {
        Job storage job = _books.jobs[jobId];
        JobState state = job.state;
        if (job.provider == _REPLICATED) {
            ReplicaSet storage set = _books.sets[jobId];
            // The counter is kept exact on every path; only a client's bond is held beside it.
            return uint256(set.escrow) + (state == JobState.Disputed && set.bonded ? DISPUTE_BOND : 0);
        }
        if (state == JobState.Open || state == JobState.Claimed || state == JobState.Delivered) {
            return job.amount;
        }
        if (state == JobState.Disputed) return uint256(job.amount) + DISPUTE_BOND;
        return 0;
    }

    /// @inheritdoc IJobMarket
    function collateralFor(uint256 price) external view returns (uint256) {
        return _collateral(_toAmount(price));
    }

    /// @inheritdoc IJobMarket
    function getProvider(address provider) external view returns (Provider memory) {
        return _books.providers[provider];
    }

    /// @inheritdoc IJobMarket
    function freeBalanceOf(address account) external view returns (uint256) {
        return _books.free[account];
    }

    /// @inheritdoc IJobMarket
    function isNonceUsed(address client, uint256 nonce) external view returns (bool) {
        return _nonceBits[client][nonce >> 8] & (uint256(1) << (nonce & 0xff)) != 0;
    }

    /// @inheritdoc IJobMarket
    function hashRequest(JobRequest calldata request) external view returns (bytes32) {
        return _hashTypedDataV4(_structHash(request));
    }

    /// @inheritdoc IJobMarket
    function getReplicaSet(uint256 jobId) external view returns (ReplicaSet memory) {
        return _books.sets[jobId];
    }

    /// @inheritdoc IJobMarket
    function getReplica(uint256 jobId, uint8 index) external view returns (Replica memory) {
        return _books.replicas[jobId][index];
    }

    /// @inheritdoc IJobMarket
    function replicaCommitment(
        uint256 jobId,
        address provider,
        bytes calldata resultCid,
        bytes32 videoSha256,
        bytes32 framesDigest,
        bytes32 salt
    ) external pure returns (bytes32) {
        return Results.commitment(jobId, provider, keccak256(resultCid), videoSha256, framesDigest, salt);
    }

    /// @inheritdoc IJobMarket
    function nextJobId() external view returns (uint256) {
        return _nextJobId;
    }

    /// @inheritdoc IJobMarket
    function feesOwed() external view returns (uint256) {
        return _books.feesOwed;
    }

    /// @inheritdoc IJobMarket
    function protocolFeeBps() external view returns (uint16) {
        return _protocolFeeBps;
    }

    // ================================================================ internals

    /// @dev Split out of submitJob to keep its stack shallow (no via-IR with solc-js).
    function _emitSubmitted(uint256 jobId, JobRequest calldata request, bytes calldata spec) private {
        emit JobSubmitted(
            jobId,
            request.client,
            request.modelId,
            request.specHash,
            request.maxPrice,
            request.claimDeadline,
            request.deliveryWindow,
            request.replicas,
            request.perceptual,
            request.nonce,
            spec
        );
    }

    function _deposit(uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        _books.free[msg.sender] += amount;
        emit Deposited(msg.sender, amount);
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Settles (`settling`) or reclaims a replicated job in ReplicatedJobs; one call site for
    ///      both, as each library call costs JobMarket about 140 bytes of code.
    function _closeReplicated(uint256 jobId, bool settling) private {
        ReplicatedJobs.close(_books, jobId, settling, _TERMS);
    }

    /// @dev Settles a single job: pays its provider.
    function _payProvider(uint256 jobId, Job storage job, uint96 bondPaid) private {
        job.state = JobState.Settled;
        _pay(jobId, job.provider, job.amount, job.feeBps, bondPaid);
    }

    /// @dev Pays price - fee (plus `bondPaid`) to `provider` and unlocks its collateral. The
    ///      single-job twin of {Payouts-pay} (which ReplicatedJobs uses): calling the shared one
    ///      here cost single jobs gas, measured (bench/gas.py).
    function _pay(uint256 jobId, address provider, uint96 price, uint16 feeBps, uint96 bondPaid) private {
        uint96 fee = uint96((uint256(price) * feeBps) / _BPS);
        uint96 collateral = _collateral(price);
        Provider storage p = _books.providers[provider];
        unchecked {
            // The claim locked exactly this collateral; fee <= price (feeBps <= MAX_FEE_BPS).
            p.locked -= collateral;
            _books.free[provider] += uint256(price - fee) + bondPaid;
        }
        if (fee != 0) _books.feesOwed += fee;
        emit JobSettled(jobId, provider, price - fee, fee, collateral, bondPaid);
    }

    /// @dev Reverts unless the caller is the job's provider (or for a replicated job).
    function _checkProvider(uint256 jobId, Job storage job) private view {
        address provider = job.provider;
        // The marker is checked too, though no transaction can come from address(1).
        if (provider == _REPLICATED) revert ReplicatedJob(jobId);
        if (msg.sender != provider) revert NotJobProvider(jobId, msg.sender);
    }

    /// @dev Unlocks the collateral of a claim at `price`; with `slash` also removes it from the
    ///      provider's bond and returns it (single-job twin of {Payouts-unlock}).
    function _unlock(address provider, uint96 price, bool slash) private returns (uint96 slashed) {
        uint96 collateral = _collateral(price);
        Provider storage p = _books.providers[provider];
        unchecked {
            // The claim locked `collateral`, so locked >= collateral and bond >= locked.
            p.locked -= collateral;
            if (slash) {
                p.bond -= collateral;
                slashed = collateral;
            }
        }
    }

    function _collateral(uint96 price) private view returns (uint96) {
        // price < 2^96 and COLLATERAL_BPS <= 5 * _BPS, so the product fits 256 bits; the
        // result fits 96 bits while COLLATERAL_BPS <= _BPS, and above that _toAmount checks.
        return _toAmount((uint256(price) * COLLATERAL_BPS) / _BPS);
    }

    function _useNonce(address client, uint256 nonce) private {
        uint256 word = nonce >> 8;
        uint256 bit = uint256(1) << (nonce & 0xff);
        uint256 bits = _nonceBits[client][word];
        if (bits & bit != 0) revert NonceAlreadyUsed(client, nonce);
        _nonceBits[client][word] = bits | bit;
    }

    function _checkSignature(JobRequest calldata request, bytes calldata signature) private view {
        bytes32 digest = _hashTypedDataV4(_structHash(request));
        address client = request.client;
        if (client.code.length != 0) {
            // Smart-contract wallets sign through ERC-1271.
            if (!SignatureChecker.isValidERC1271SignatureNowCalldata(client, digest, signature)) {
                revert InvalidSigner(client, address(0));
            }
            return;
        }
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature();
        if (recovered != client) revert InvalidSigner(client, recovered);
    }

    function _structHash(JobRequest calldata request) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                JOB_REQUEST_TYPEHASH,
                request.client,
                request.modelId,
                request.specHash,
                request.maxPrice,
                request.claimDeadline,
                request.deliveryWindow,
                request.replicas,
                request.perceptual,
                request.nonce
            )
        );
    }

    function _toAmount(uint256 amount) private pure returns (uint96) {
        if (amount > type(uint96).max) revert AmountTooLarge(amount);
        return uint96(amount);
    }
}
