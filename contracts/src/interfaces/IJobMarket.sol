// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IJobMarket — registry and escrow for text-to-video jobs
/// @notice Clients escrow credits behind an EIP-712 signed request; bonded providers claim,
///         deliver a content-addressed result, and are paid after a challenge window. Every
///         path ends with the funds released: timeouts refund clients, missed deliveries slash
///         the provider's collateral to the client, disputes are resolved by an arbiter or, if it
///         stays silent, settle as delivered.
///
///         A request may ask for k ≥ 2 replicas: k providers each claim a share, run the job
///         independently, commit to their result (`commitResult`) and only then reveal it
///         (`revealResult`). Identical frames digests settle after the challenge window; any
///         disagreement goes to the arbiter automatically (`resolveReplicas`).
/// @dev Money invariant: `token.balanceOf(market) == Σ free + Σ escrowOf(job) + Σ bond + feesOwed`.
interface IJobMarket {
    // ---------------------------------------------------------------- types

    /// @notice Life of a job. Terminal states: Settled, Cancelled, Expired, Defaulted, Rejected,
    ///         Released.
    enum JobState {
        None, //      0: no such job
        Open, //      1: escrowed, waiting for a provider
        Claimed, //   2: a provider holds it and owes a delivery by `deadline`
        Delivered, // 3: result on chain; challenge window runs until `deadline`
        Disputed, //  4: the client disputed; the arbiter decides until `deadline`
        Settled, //   5: provider paid (no dispute, dispute rejected, or arbiter silent)
        Cancelled, // 6: client cancelled before any claim
        Expired, //   7: nobody claimed before the claim deadline; client refunded
        Defaulted, // 8: claimed but not delivered in time; client refunded, collateral slashed
        Rejected, //  9: dispute upheld; client refunded, collateral slashed
        Released, // 10: the provider gave the job back before its deadline; client refunded
        Revealing // 11: replicated job: every surviving replica committed; reveals due by `deadline`
    }

    /// @notice Why a client disputes a delivery.
    enum DisputeReason {
        HashMismatch, //   the bytes at the CID do not hash to the delivered digests
        SpecMismatch, //   the video does not match the signed spec (frames, size, fps, model)
        ReplayMismatch, // a replay with the same model, image and seed gives other frames
        NotRetrievable, // the CID cannot be fetched from any gateway
        ReplicaMismatch // replicated job: the revealed frames digests differ (raised by the market)
    }

    /// @notice The request a client signs (EIP-712 type `JobRequest`).
    /// @param client Who pays; must be the signer.
    /// @param modelId keccak256 of the catalog id of the model.
    /// @param specHash keccak256 of the canonical JSON spec carried in calldata.
    /// @param maxPrice Most the client pays; the surplus over the claim price is refunded.
    /// @param claimDeadline Last timestamp at which a provider may claim.
    /// @param deliveryWindow Seconds a provider has from its claim to deliver (replicated job:
    ///        from the claim that fills the set to the commit deadline).
    /// @param replicas How many providers run the job independently, 1..MAX_REPLICAS.
    /// @param perceptual The client accepts perceptual agreement attested by the arbiter
    ///        (frames within its stated PSNR/SSIM threshold) instead of identical digests only.
    /// @param nonce Single-use per client.
    struct JobRequest {
        address client;
        bytes32 modelId;
        bytes32 specHash;
        uint256 maxPrice;
        uint64 claimDeadline;
        uint64 deliveryWindow;
        uint8 replicas;
        bool perceptual;
        uint256 nonce;
    }

    /// @notice A job as stored: two slots, so a claim only overwrites slots already written.
    /// @param client Who pays.
    /// @param deadline Meaning follows the state: claim deadline while Open, deliver-by (commit-by
    ///        for a replicated job) while Claimed, reveal-by while Revealing, end of the challenge
    ///        window while Delivered, end of the arbiter's time while Disputed. (40 bits:
    ///        seconds until the year 36812.)
    /// @param state See {JobState}.
    /// @param feeBps Protocol fee fixed when the job was submitted.
    /// @param deliveryWindow Seconds from claim to delivery, from the request.
    /// @param provider The claiming provider (zero while Open). A replicated job holds the marker
    ///        `address(1)` here from submission on; its providers are in {getReplica}.
    /// @param amount Escrowed price: the request's maxPrice while Open, the claim price after. A
    ///        replicated job keeps the per-replica maxPrice here; see {ReplicaSet} for its escrow.
    struct Job {
        address client;
        uint40 deadline;
        JobState state;
        uint16 feeBps;
        uint32 deliveryWindow;
        address provider;
        uint96 amount;
    }

    /// @notice The replica bookkeeping of a job with `replicas` ≥ 2 (all zero for a single job).
    ///         Masks have bit i for replica i (claim order).
    /// @param replicas Providers the request asked for.
    /// @param claims Replicas claimed so far.
    /// @param commits Replicas that committed to a result.
    /// @param reveals Replicas that revealed a result matching their commitment.
    /// @param committedMask Which replicas committed.
    /// @param revealedMask Which replicas revealed.
    /// @param settledMask Which replicas are closed out (paid, refunded to the client, defaulted).
    /// @param perceptual From the request: perceptual agreement attested by the arbiter is enough.
    /// @param bonded The client disputed (and locked the dispute bond), as opposed to an
    ///        automatic ReplicaMismatch dispute.
    /// @param escrow Escrowed prices still held for the job (unclaimed shares at maxPrice, claimed
    ///        open shares at their price); the dispute bond is not included.
    struct ReplicaSet {
        uint8 replicas;
        uint8 claims;
        uint8 commits;
        uint8 reveals;
        uint8 committedMask;
        uint8 revealedMask;
        uint8 settledMask;
        bool perceptual;
        bool bonded;
        uint96 escrow;
    }

    /// @notice One replica of a replicated job as stored: one slot for who and at what price,
    ///         then its commitment and its revealed frames digest (zero until set).
    struct Replica {
        address provider;
        uint96 price;
        bytes32 commitment;
        bytes32 framesDigest;
    }

    /// @notice A provider's bond, of which `locked` backs claimed jobs.
    struct Provider {
        uint96 bond;
        uint96 locked;
        uint40 exitAvailableAt;
        bool registered;
    }

    // ---------------------------------------------------------------- errors

    /// @notice An amount of zero where a positive amount is required.
    error ZeroAmount();
    /// @notice An amount does not fit the market's 96-bit accounting.
    error AmountTooLarge(uint256 amount);
    /// @notice `account` has `available` free credits but `required` are needed.
    error InsufficientBalance(address account, uint256 available, uint256 required);
    /// @notice The spec carried in calldata is longer than `MAX_SPEC_BYTES`.
    error SpecTooLarge(uint256 length, uint256 maxLength);
    /// @notice keccak256(spec) differs from the signed `specHash`.
    error SpecHashMismatch(bytes32 signed, bytes32 actual);
    /// @notice The request's claim deadline has passed (or is not in the future).
    error RequestExpired(uint64 claimDeadline, uint256 nowTimestamp);
    /// @notice The claim deadline is further in the future than `MAX_CLAIM_HORIZON`.
    error ClaimDeadlineTooFar(uint64 claimDeadline, uint256 latest);
    /// @notice The delivery window is outside [MIN_DELIVERY_WINDOW, MAX_DELIVERY_WINDOW].
    error InvalidDeliveryWindow(uint64 deliveryWindow, uint64 minWindow, uint64 maxWindow);
    /// @notice The nonce was already used (or invalidated) by this client.
    error NonceAlreadyUsed(address client, uint256 nonce);
    /// @notice The signature does not recover to the request's client (wrong key, chain or contract).
    error InvalidSigner(address client, address recovered);
    /// @notice The signature is malformed or malleable (high-s); re-sign with a standard library.
    error InvalidSignature();
    /// @notice The job is not in a state that allows this call.
    error InvalidJobState(uint256 jobId, JobState state);
    /// @notice Only the job's client may call this.
    error NotJobClient(uint256 jobId, address caller);
    /// @notice Only the job's provider may call this.
    error NotJobProvider(uint256 jobId, address caller);
    /// @notice The claim deadline has passed.
    error ClaimWindowClosed(uint256 jobId, uint64 claimDeadline);
    /// @notice The claim price is above the request's maximum.
    error PriceAboveMax(uint256 jobId, uint256 price, uint256 maxPrice);
    /// @notice The delivery deadline has passed.
    error DeliveryWindowClosed(uint256 jobId, uint64 deliverBy);
    /// @notice The challenge window has closed.
    error ChallengeWindowClosed(uint256 jobId, uint64 challengeEnds);
    /// @notice Too early: the relevant window (`until`) is still open.
    error TooEarly(uint256 jobId, uint64 until);
    /// @notice The result CID is empty or longer than `MAX_CID_BYTES`.
    error InvalidCid(uint256 length);
    /// @notice A delivered digest (video sha256 or frames digest) is zero.
    error EmptyDigest();
    /// @notice The arbiter's time for this dispute is over; the job settles as delivered.
    error ResolveWindowClosed(uint256 jobId, uint64 resolveBy);
    /// @notice The caller is not a registered provider.
    error NotRegistered(address provider);
    /// @notice The provider is already registered.
    error AlreadyRegistered(address provider);
    /// @notice The bond would be below `minBond`.
    error BondTooLow(address provider, uint256 bond, uint256 minBond);
    /// @notice The provider's unlocked bond cannot cover the collateral of this claim.
    error InsufficientCollateral(address provider, uint256 available, uint256 required);
    /// @notice The provider asked to exit and can no longer claim jobs.
    error ProviderExiting(address provider, uint40 exitAvailableAt);
    /// @notice The provider has not asked to exit.
    error NotExiting(address provider);
    /// @notice The bond cannot be withdrawn before an exit was requested and its cooldown passed.
    error ExitNotReady(address provider, uint40 exitAvailableAt);
    /// @notice More than the unlocked bond was asked for.
    error BondLocked(address provider, uint256 unlocked, uint256 requested);
    /// @notice The protocol fee is above the hard cap `MAX_FEE_BPS`.
    error FeeTooHigh(uint256 feeBps, uint256 maxFeeBps);
    /// @notice More fees were asked for than are owed.
    error InsufficientFees(uint256 owed, uint256 requested);
    /// @notice A zero address where an account is required.
    error ZeroAddress();
    /// @notice A constructor parameter is out of range.
    error InvalidParameter(string name, uint256 value);
    /// @notice The request asks for 0 or more than `max` replicas.
    error InvalidReplicas(uint8 replicas, uint8 max);
    /// @notice The provider already holds a replica of this job (one replica per provider).
    error AlreadyReplica(uint256 jobId, address provider);
    /// @notice The call is for replicated jobs (commit, reveal, resolveReplicas); this job has one provider.
    error NotReplicated(uint256 jobId);
    /// @notice The call is for single-provider jobs (deliver, release, resolve); this job is replicated.
    error ReplicatedJob(uint256 jobId);
    /// @notice A replica has claimed, so the client can no longer cancel; it can reclaim after the
    ///         claim deadline if the set does not fill.
    error ReplicasClaimed(uint256 jobId, uint8 claims);
    /// @notice The replica already committed to a result.
    error AlreadyCommitted(uint256 jobId, address provider);
    /// @notice The replica made no commitment (it defaulted at the commit deadline).
    error NotCommitted(uint256 jobId, address provider);
    /// @notice The replica already revealed its result.
    error AlreadyRevealed(uint256 jobId, address provider);
    /// @notice The revealed result does not hash to the replica's commitment (see {replicaCommitment}).
    error CommitmentMismatch(uint256 jobId, address provider);
    /// @notice The reveal deadline has passed.
    error RevealWindowClosed(uint256 jobId, uint64 revealBy);
    /// @notice The fault mask names replicas that did not reveal (bits outside `revealedMask`).
    error InvalidFaultMask(uint256 jobId, uint8 faultMask, uint8 revealedMask);

    // ---------------------------------------------------------------- events

    /// @notice `account` deposited `amount` free credits.
    event Deposited(address indexed account, uint256 amount);
    /// @notice `account` withdrew `amount` free credits to `to`.
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    /// @notice A provider registered with `bond` credits; `metadataURI` describes its offer.
    event ProviderRegistered(address indexed provider, uint256 bond, string metadataURI);
    /// @notice A provider changed its metadata URI.
    event ProviderMetadataUpdated(address indexed provider, string metadataURI);
    /// @notice A provider added `amount` to its bond.
    event BondAdded(address indexed provider, uint256 amount);
    /// @notice A provider asked to exit; its bond unlocks for withdrawal at `exitAvailableAt`.
    event ExitRequested(address indexed provider, uint40 exitAvailableAt);
    /// @notice A provider took back its exit request.
    event ExitCancelled(address indexed provider);
    /// @notice A provider withdrew `amount` of its bond to `to`.
    event BondWithdrawn(address indexed provider, address indexed to, uint256 amount);
    /// @notice A job was created from a signed request; `spec` is its canonical JSON.
    event JobSubmitted(
        uint256 indexed jobId,
        address indexed client,
        bytes32 indexed modelId,
        bytes32 specHash,
        uint256 maxPrice,
        uint64 claimDeadline,
        uint64 deliveryWindow,
        uint8 replicas,
        bool perceptual,
        uint256 nonce,
        bytes spec
    );
    /// @notice The client cancelled an unclaimed job; `refund` went back to its free balance.
    event JobCancelled(uint256 indexed jobId, address indexed client, uint256 refund);
    /// @notice `provider` claimed the job at `price`; `refund` (maxPrice - price) returned to the
    ///         client; `collateral` of the provider's bond is locked until settlement. For a
    ///         replicated job one per replica; `deliverBy` is the commit deadline on the claim
    ///         that fills the set and 0 before it.
    event JobClaimed(
        uint256 indexed jobId,
        address indexed provider,
        uint256 price,
        uint256 refund,
        uint256 collateral,
        uint64 deliverBy
    );
    /// @notice The provider delivered: UnixFS result directory CID (binary), the video's sha256
    ///         and the sha256 over its decoded RGB frames.
    event JobDelivered(
        uint256 indexed jobId,
        address indexed provider,
        bytes resultCid,
        bytes32 videoSha256,
        bytes32 framesDigest,
        uint64 challengeEnds
    );
    /// @notice The client disputed the delivery, locking `disputeBond`. `client` is zero when the
    ///         market raised it (reason ReplicaMismatch, no bond).
    event JobDisputed(
        uint256 indexed jobId,
        address indexed client,
        DisputeReason reason,
        bytes32 evidence,
        uint64 resolveBy
    );
    /// @notice The arbiter decided a dispute.
    event JobResolved(uint256 indexed jobId, address indexed arbiter, bool providerAtFault);
    /// @notice The provider was paid `payout`; `fee` went to the protocol; `collateral` unlocked;
    ///         `bondPaid` is the client's dispute bond paid to the provider (0 if none).
    event JobSettled(
        uint256 indexed jobId,
        address indexed provider,
        uint256 payout,
        uint256 fee,
        uint256 collateral,
        uint256 bondPaid
    );
    /// @notice Funds went back to the client: `refund` of escrow plus `slashed` provider collateral.
    ///         `state` is Expired, Defaulted or Rejected; for a replicated job it is the job's state
    ///         after the call, which may still be running (Revealing, Delivered, Disputed).
    event JobRefunded(
        uint256 indexed jobId, address indexed client, JobState state, uint256 refund, uint256 slashed
    );
    /// @notice The provider gave a claimed job back: `refund` (the price) plus `penalty` (a share
    ///         of its collateral) went to the client; the rest of the collateral unlocked.
    event JobReleased(uint256 indexed jobId, address indexed provider, uint256 refund, uint256 penalty);
    /// @notice The client's dispute bond went back to its free balance.
    event DisputeBondReturned(uint256 indexed jobId, address indexed client, uint256 amount);
    /// @notice The client invalidated a nonce before its request was submitted.
    event NonceInvalidated(address indexed client, uint256 nonce);
    /// @notice The protocol fee for jobs submitted from now on changed.
    event ProtocolFeeChanged(uint16 oldFeeBps, uint16 newFeeBps);
    /// @notice Protocol fees were paid out.
    event FeesWithdrawn(address indexed to, uint256 amount);
    /// @notice The last replica claimed: every replica must commit by `commitBy`.
    event ReplicasFilled(uint256 indexed jobId, uint64 commitBy);
    /// @notice Replica `index` committed to a result (see {replicaCommitment}).
    event ResultCommitted(uint256 indexed jobId, address indexed provider, uint8 index, bytes32 commitment);
    /// @notice Replica `index` revealed its result, matching its commitment.
    event ResultRevealed(
        uint256 indexed jobId,
        address indexed provider,
        uint8 index,
        bytes resultCid,
        bytes32 videoSha256,
        bytes32 framesDigest
    );
    /// @notice Every revealed replica (bit i of `agreeing` = replica i) gave `framesDigest`; the
    ///         job is Delivered and the challenge window runs until `challengeEnds`.
    event ReplicasAgreed(uint256 indexed jobId, bytes32 framesDigest, uint8 agreeing, uint64 challengeEnds);
    /// @notice Replica `index`'s share went back to the client: `refund` of its price plus
    ///         `slashed` collateral (it missed its commit or reveal deadline, the arbiter found it at
    ///         fault, or a silent arbiter left it outvoted or without majority, then unslashed), or
    ///         the job expired before the set filled (unslashed).
    event ReplicaDefaulted(
        uint256 indexed jobId, address indexed provider, uint8 index, uint256 refund, uint256 slashed
    );
    /// @notice The arbiter decided a replicated dispute; bit i of `faultMask` = replica i at fault.
    event ReplicasResolved(uint256 indexed jobId, address indexed arbiter, uint8 faultMask);

    // ---------------------------------------------------------------- client funds

    /// @notice Move `amount` credits from the caller's wallet into its free balance (needs approval).
    function deposit(uint256 amount) external;

    /// @notice Deposit in one transaction using the token's EIP-2612 permit.
    function depositWithPermit(uint256 amount, uint256 permitDeadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Withdraw free (not escrowed) credits to `to`.
    function withdraw(uint256 amount, address to) external;

    // ---------------------------------------------------------------- providers

    /// @notice Register the caller as a provider, pulling `bond` (≥ minBond) from its wallet.
    function registerProvider(uint256 bond, string calldata metadataURI) external;

    /// @notice Replace the caller's metadata URI.
    function updateMetadata(string calldata metadataURI) external;

    /// @notice Add `amount` from the caller's wallet to its bond.
    function addBond(uint256 amount) external;

    /// @notice Stop taking jobs; the bond unlocks after the exit cooldown.
    function requestExit() external;

    /// @notice Take back an exit request and accept jobs again.
    function cancelExit() external;

    /// @notice Withdraw up to the unlocked bond to `to`, after the exit cooldown.
    function withdrawBond(uint256 amount, address to) external;

    // ---------------------------------------------------------------- jobs

    /// @notice Create a job from a client-signed request, escrowing `maxPrice × replicas` from the
    ///         client's free balance. Callable by anyone (gasless relay).
    /// @return jobId The new job's id.
    function submitJob(JobRequest calldata request, bytes calldata spec, bytes calldata signature)
        external
        returns (uint256 jobId);

    /// @notice The client burns a nonce so an unsubmitted signed request can never be used.
    function invalidateNonce(uint256 nonce) external;

    /// @notice The client cancels an unclaimed job and gets its escrow back (a replicated job only
    ///         while no replica has claimed).
    function cancelJob(uint256 jobId) external;

    /// @notice A registered provider takes the job (one replica of a replicated job) at
    ///         `price` ≤ maxPrice, locking collateral. A replicated job becomes Claimed when its
    ///         last replica claims; work should start then.
    function claimJob(uint256 jobId, uint256 price) external;

    /// @notice The job's provider gives back a claimed job it cannot deliver, before deliver-by.
    ///         Cheaper for it than a default (only `RELEASE_PENALTY_BPS` of the collateral goes
    ///         to the client), and the client is refunded at once instead of at the deadline.
    function releaseJob(uint256 jobId) external;

    /// @notice The job's provider records the result; the challenge window starts.
    function deliver(uint256 jobId, bytes calldata resultCid, bytes32 videoSha256, bytes32 framesDigest)
        external;

    /// @notice The client disputes a delivery inside the challenge window, locking the dispute bond.
    function dispute(uint256 jobId, DisputeReason reason, bytes32 evidence) external;

    /// @notice The arbiter decides a dispute: at fault → client refunded and collateral slashed;
    ///         not at fault → provider paid and the dispute bond paid to the provider.
    function resolve(uint256 jobId, bool providerAtFault) external;

    /// @notice Pay the provider after the challenge window (or after a silent arbiter). Anyone.
    ///         Replicated job: every revealed replica is paid after the challenge window; after a
    ///         silent arbiter a client dispute stands as delivered, an automatic mismatch pays the
    ///         replicas whose digest has a strict majority of the revealed ones and refunds the
    ///         others' shares to the client without slashing.
    function settle(uint256 jobId) external;

    /// @notice Return escrow to the client of an unclaimed job past its claim deadline, or of a
    ///         claimed job past its delivery deadline (slashing the collateral to the client). Anyone.
    ///         Replicated job: past the claim deadline (set not filled) everything is refunded and
    ///         nobody slashed; past the commit or reveal deadline the replicas that missed it are
    ///         defaulted (share refunded, collateral slashed to the client) and the job moves on.
    function reclaim(uint256 jobId) external;

    /// @notice A replica commits to its result before any replica reveals:
    ///         `commitment` = {replicaCommitment}. The last commitment opens the reveal window.
    function commitResult(uint256 jobId, bytes32 commitment) external;

    /// @notice A replica reveals the result it committed to. When every committed replica has
    ///         revealed, equal frames digests (≥ 2) deliver the job; anything else disputes it
    ///         automatically (reason ReplicaMismatch).
    function revealResult(
        uint256 jobId,
        bytes calldata resultCid,
        bytes32 videoSha256,
        bytes32 framesDigest,
        bytes32 salt
    ) external;

    /// @notice The arbiter decides a replicated dispute: replicas in `faultMask` are refunded to
    ///         the client with their collateral slashed to it, the other revealed replicas paid.
    ///         The client's bond goes back to it if anyone was at fault, else to the paid replicas.
    function resolveReplicas(uint256 jobId, uint8 faultMask) external;

    // ---------------------------------------------------------------- admin

    /// @notice Set the fee for jobs submitted from now on; capped at `MAX_FEE_BPS`.
    function setProtocolFee(uint16 feeBps) external;

    /// @notice Pay out owed protocol fees. Escrow, bonds and free balances are out of reach.
    function withdrawFees(address to, uint256 amount) external;

    // ---------------------------------------------------------------- views

    /// @notice The job `jobId` (state None if it does not exist).
    function getJob(uint256 jobId) external view returns (Job memory);

    /// @notice Credits held in escrow for the job (price or maxPrice, plus a dispute bond).
    function escrowOf(uint256 jobId) external view returns (uint256);

    /// @notice Collateral a claim at `price` locks from the provider's bond.
    function collateralFor(uint256 price) external view returns (uint256);

    /// @notice A provider's record.
    function getProvider(address provider) external view returns (Provider memory);

    /// @notice Free (withdrawable) credits of `account`.
    function freeBalanceOf(address account) external view returns (uint256);

    /// @notice Whether `nonce` of `client` is used or invalidated.
    function isNonceUsed(address client, uint256 nonce) external view returns (bool);

    /// @notice EIP-712 digest a client signs for `request`.
    function hashRequest(JobRequest calldata request) external view returns (bytes32);

    /// @notice Id the next submitted job gets.
    function nextJobId() external view returns (uint256);

    /// @notice Replica bookkeeping of a job (all zero for a single-provider job).
    function getReplicaSet(uint256 jobId) external view returns (ReplicaSet memory);

    /// @notice Replica `index` (claim order, 0..claims-1) of a job; all zero if there is none. Its
    ///         progress is in the masks of {getReplicaSet}.
    function getReplica(uint256 jobId, uint8 index) external view returns (Replica memory);

    /// @notice The commitment a replica makes: keccak256(abi.encode(jobId, provider,
    ///         keccak256(resultCid), videoSha256, framesDigest, salt)). It binds the provider, so a
    ///         copied commitment fails at reveal; `salt` keeps it unguessable.
    function replicaCommitment(
        uint256 jobId,
        address provider,
        bytes calldata resultCid,
        bytes32 videoSha256,
        bytes32 framesDigest,
        bytes32 salt
    ) external pure returns (bytes32);

    /// @notice Protocol fees accrued and not yet withdrawn.
    function feesOwed() external view returns (uint256);

    /// @notice Fee in basis points applied to jobs submitted now.
    function protocolFeeBps() external view returns (uint16);
}
