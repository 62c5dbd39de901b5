// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IJobMarket — registry and escrow for text-to-video jobs
/// @notice Clients escrow credits behind an EIP-712 signed request; bonded providers claim,
///         deliver a content-addressed result, and are paid after a challenge window. Every
///         path ends with the funds released: timeouts refund clients, missed deliveries slash
///         the provider's collateral to the client, disputes are resolved by an arbiter or, if it
///         stays silent, settle as delivered.
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
        Released //  10: the provider gave the job back before its deadline; client refunded
    }

    /// @notice Why a client disputes a delivery.
    enum DisputeReason {
        HashMismatch, //   the bytes at the CID do not hash to the delivered digests
        SpecMismatch, //   the video does not match the signed spec (frames, size, fps, model)
        ReplayMismatch, // a replay with the same model, image and seed gives other frames
        NotRetrievable //  the CID cannot be fetched from any gateway
    }

    /// @notice The request a client signs (EIP-712 type `JobRequest`).
    /// @param client Who pays; must be the signer.
    /// @param modelId keccak256 of the catalog id of the model.
    /// @param specHash keccak256 of the canonical JSON spec carried in calldata.
    /// @param maxPrice Most the client pays; the surplus over the claim price is refunded.
    /// @param claimDeadline Last timestamp at which a provider may claim.
    /// @param deliveryWindow Seconds a provider has from its claim to deliver.
    /// @param nonce Single-use per client.
    struct JobRequest {
        address client;
        bytes32 modelId;
        bytes32 specHash;
        uint256 maxPrice;
        uint64 claimDeadline;
        uint64 deliveryWindow;
        uint256 nonce;
    }

    /// @notice A job as stored: two slots, so a claim only overwrites slots already written.
    /// @param client Who pays.
    /// @param deadline Meaning follows the state: claim deadline while Open, deliver-by while
    ///        Claimed, end of the challenge window while Delivered, end of the arbiter's time
    ///        while Disputed. (40 bits: seconds until the year 36812.)
    /// @param state See {JobState}.
    /// @param feeBps Protocol fee fixed when the job was submitted.
    /// @param deliveryWindow Seconds from claim to delivery, from the request.
    /// @param provider The claiming provider (zero while Open).
    /// @param amount Escrowed price: the request's maxPrice while Open, the claim price after.
    struct Job {
        address client;
        uint40 deadline;
        JobState state;
        uint16 feeBps;
        uint32 deliveryWindow;
        address provider;
        uint96 amount;
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
        uint256 nonce,
        bytes spec
    );
    /// @notice The client cancelled an unclaimed job; `refund` went back to its free balance.
    event JobCancelled(uint256 indexed jobId, address indexed client, uint256 refund);
    /// @notice `provider` claimed the job at `price`; `refund` (maxPrice - price) returned to the
    ///         client; `collateral` of the provider's bond is locked until settlement.
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
    /// @notice The client disputed the delivery, locking `disputeBond`.
    event JobDisputed(
        uint256 indexed jobId, address indexed client, DisputeReason reason, bytes32 evidence, uint64 resolveBy
    );
    /// @notice The arbiter decided a dispute.
    event JobResolved(uint256 indexed jobId, address indexed arbiter, bool providerAtFault);
    /// @notice The provider was paid `payout`; `fee` went to the protocol; `collateral` unlocked;
    ///         `bondPaid` is the client's dispute bond paid to the provider (0 if none).
    event JobSettled(
        uint256 indexed jobId, address indexed provider, uint256 payout, uint256 fee, uint256 collateral, uint256 bondPaid
    );
    /// @notice Funds went back to the client: `refund` of escrow plus `slashed` provider collateral.
    ///         `state` is Expired, Defaulted or Rejected.
    event JobRefunded(uint256 indexed jobId, address indexed client, JobState state, uint256 refund, uint256 slashed);
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

    /// @notice Create a job from a client-signed request, escrowing `maxPrice` from the client's
    ///         free balance. Callable by anyone (gasless relay).
    /// @return jobId The new job's id.
    function submitJob(JobRequest calldata request, bytes calldata spec, bytes calldata signature)
        external
        returns (uint256 jobId);

    /// @notice The client burns a nonce so an unsubmitted signed request can never be used.
    function invalidateNonce(uint256 nonce) external;

    /// @notice The client cancels an unclaimed job and gets `maxPrice` back.
    function cancelJob(uint256 jobId) external;

    /// @notice A registered provider takes the job at `price` ≤ maxPrice, locking collateral.
    function claimJob(uint256 jobId, uint256 price) external;

    /// @notice The job's provider gives back a claimed job it cannot deliver, before deliver-by.
    ///         Cheaper for it than a default (only `RELEASE_PENALTY_BPS` of the collateral goes
    ///         to the client), and the client is refunded at once instead of at the deadline.
    function releaseJob(uint256 jobId) external;

    /// @notice The job's provider records the result; the challenge window starts.
    function deliver(uint256 jobId, bytes calldata resultCid, bytes32 videoSha256, bytes32 framesDigest) external;

    /// @notice The client disputes a delivery inside the challenge window, locking the dispute bond.
    function dispute(uint256 jobId, DisputeReason reason, bytes32 evidence) external;

    /// @notice The arbiter decides a dispute: at fault → client refunded and collateral slashed;
    ///         not at fault → provider paid and the dispute bond paid to the provider.
    function resolve(uint256 jobId, bool providerAtFault) external;

    /// @notice Pay the provider after the challenge window (or after a silent arbiter). Anyone.
    function settle(uint256 jobId) external;

    /// @notice Return escrow to the client of an unclaimed job past its claim deadline, or of a
    ///         claimed job past its delivery deadline (slashing the collateral to the client). Anyone.
    function reclaim(uint256 jobId) external;

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

    /// @notice Protocol fees accrued and not yet withdrawn.
    function feesOwed() external view returns (uint256);

    /// @notice Fee in basis points applied to jobs submitted now.
    function protocolFeeBps() external view returns (uint16);
}
