// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {Books} from "./libraries/Books.sol";
import {Bitmask} from "./libraries/Bitmask.sol";
import {Payouts} from "./libraries/Payouts.sol";
import {Results} from "./libraries/Results.sol";
import {Tally} from "./libraries/Tally.sol";
import {Terms} from "./libraries/Terms.sol";

/// @title ReplicatedJobs — the replicated-job half of {JobMarket}
/// @notice The life of a job with replicas ≥ 2 (claim of a share, commit, reveal, comparison,
///         arbiter, settle and reclaim), split out of JobMarket so the market stays far below the
///         EIP-170 code size cap. It is an externally linked library: deployed once, its address
///         written into JobMarket's bytecode at deployment, and called by DELEGATECALL. So it runs
///         on the market's storage ({Books}), sees the market's caller as `msg.sender`, and its
///         events are the market's events (emitter: the market's address). JobMarket checks
///         roles and, for settle and reclaim, the shared state and deadline rules before calling;
///         errors and events are those of {IJobMarket}. Single jobs never call it.
/// @dev Every function is `external`, and only JobMarket calls them: a direct call would work on
///      the library's own empty storage and change nothing of any market.
library ReplicatedJobs {
    using Bitmask for uint256;

    /// @notice `Job.provider` of a replicated job. No transaction can come from address(1) (the
    ///         ecrecover precompile), so it never matches a caller.
    address internal constant REPLICATED = address(1);

    /// @dev One close-out of a replicated job's shares (see {_closeOut}); in memory to keep the
    ///      stack shallow without via-IR.
    struct Closing {
        uint256 jobId;
        uint256 payMask;
        uint256 refundMask;
        bool slash;
        uint16 feeBps;
        uint16 collateralBps;
    }

    // ================================================================ entry points

    /// @notice Records the caller's claim of a share of the Open replicated job `jobId` at `price`
    ///         (JobMarket already locked its collateral and refunded `refund` = maxPrice - price).
    /// @return The commit deadline `commitBy` if this claim fills the set (the job is then
    ///         Claimed), else 0.
    function claim(Books storage books, uint256 jobId, uint96 price, uint96 refund, uint40 commitBy)
        external
        returns (uint40)
    {
        IJobMarket.ReplicaSet storage set = books.sets[jobId];
        mapping(uint256 => IJobMarket.Replica) storage replicas = books.replicas[jobId];
        uint8 claims = set.claims;
        for (uint256 i; i < claims; ++i) {
            if (replicas[i].provider == msg.sender) revert IJobMarket.AlreadyReplica(jobId, msg.sender);
        }
        IJobMarket.Replica storage r = replicas[claims];
        r.provider = msg.sender;
        r.price = price;
        unchecked {
            // claims < replicas <= MAX_REPLICAS (the set fills, then the job leaves Open); the
            // escrow holds maxPrice for this unclaimed share, and refund <= maxPrice.
            claims += 1;
            set.escrow -= refund;
        }
        set.claims = claims;
        if (claims != set.replicas) return 0;
        IJobMarket.Job storage job = books.jobs[jobId];
        job.state = IJobMarket.JobState.Claimed;
        job.deadline = commitBy;
        emit IJobMarket.ReplicasFilled(jobId, commitBy);
        return commitBy;
    }

    /// @notice See {IJobMarket-commitResult}.
    function commit(Books storage books, uint256 jobId, bytes32 commitment, Terms terms) external {
        (IJobMarket.Job storage job, IJobMarket.ReplicaSet storage set) =
            _replicated(books, jobId, IJobMarket.JobState.Claimed);
        uint40 commitBy = job.deadline;
        if (block.timestamp > commitBy) revert IJobMarket.DeliveryWindowClosed(jobId, commitBy);
        if (commitment == bytes32(0)) revert IJobMarket.EmptyDigest();
        uint8 index = _indexOf(books, jobId, set.claims);
        uint8 bit = uint8(1 << index);
        uint8 committed = set.committedMask;
        if (committed & bit != 0) revert IJobMarket.AlreadyCommitted(jobId, msg.sender);
        books.replicas[jobId][index].commitment = commitment;
        uint8 commits = set.commits + 1;
        set.committedMask = committed | bit;
        set.commits = commits;
        emit IJobMarket.ResultCommitted(jobId, msg.sender, index, commitment);
        if (commits == set.replicas) _openReveals(job, terms.revealWindow());
    }

    /// @notice See {IJobMarket-revealResult}.
    function reveal(
        Books storage books,
        uint256 jobId,
        bytes calldata resultCid,
        bytes32 videoSha256,
        bytes32 framesDigest,
        bytes32 salt,
        Terms terms
    ) external {
        (IJobMarket.Job storage job, IJobMarket.ReplicaSet storage set) =
            _replicated(books, jobId, IJobMarket.JobState.Revealing);
        uint40 revealBy = job.deadline;
        if (block.timestamp > revealBy) revert IJobMarket.RevealWindowClosed(jobId, revealBy);
        Results.check(resultCid, videoSha256, framesDigest);
        if (_recordReveal(books, jobId, set, resultCid, videoSha256, framesDigest, salt) == set.commits) {
            _compareReveals(books, jobId, job, set, terms);
        }
    }

    /// @notice See {IJobMarket-resolveReplicas} (JobMarket checked the arbiter role).
    function resolve(Books storage books, uint256 jobId, uint8 faultMask, Terms terms) external {
        (IJobMarket.Job storage job, IJobMarket.ReplicaSet storage set) =
            _replicated(books, jobId, IJobMarket.JobState.Disputed);
        uint40 resolveBy = job.deadline;
        if (block.timestamp >= resolveBy) revert IJobMarket.ResolveWindowClosed(jobId, resolveBy);
        uint8 revealed = set.revealedMask;
        if (faultMask & ~revealed != 0) revert IJobMarket.InvalidFaultMask(jobId, faultMask, revealed);
        uint256 fault = faultMask;
        emit IJobMarket.ReplicasResolved(jobId, msg.sender, faultMask);
        uint96 bond = set.bonded ? terms.disputeBond() : 0;
        // A fault proves the client right: its bond comes back; otherwise the paid replicas share it.
        if (faultMask != 0) {
            _closeOut(books, _closing(books, jobId, revealed & ~fault, fault, true, terms), bond, 0);
        } else {
            _closeOut(books, _closing(books, jobId, revealed, 0, false, terms), 0, bond);
        }
    }

    /// @notice Closes the replicated job `jobId` once a deadline passed: settles it (`settling`,
    ///         for {IJobMarket-settle}) or reclaims it (for {IJobMarket-reclaim}). One entry point
    ///         for both keeps JobMarket's code small.
    function close(Books storage books, uint256 jobId, bool settling, Terms terms) external {
        if (settling) _settle(books, jobId, terms);
        else _reclaim(books, jobId, terms);
    }

    /// @dev Settles the replicated job `jobId`, Delivered or Disputed with its deadline passed
    ///      (JobMarket checked both); see {IJobMarket-settle}.
    function _settle(Books storage books, uint256 jobId, Terms terms) private {
        IJobMarket.Job storage job = books.jobs[jobId];
        IJobMarket.ReplicaSet storage set = books.sets[jobId];
        uint256 revealed = set.revealedMask;
        if (job.state == IJobMarket.JobState.Delivered) {
            _closeOut(books, _closing(books, jobId, revealed, 0, false, terms), 0, 0);
        } else if (set.bonded) {
            // A silent arbiter on a client dispute: the delivery stands, the bond goes back.
            _closeOut(books, _closing(books, jobId, revealed, 0, false, terms), terms.disputeBond(), 0);
        } else {
            // A silent arbiter on a mismatch: a strict majority wins; the rest is refunded
            // without slashing, as nobody proved a fault.
            uint256 majority = Tally.majority(_digests(books, jobId, set.claims), revealed);
            _closeOut(books, _closing(books, jobId, majority, revealed & ~majority, false, terms), 0, 0);
        }
    }

    /// @dev Reclaims the replicated job `jobId` past its claim, commit or reveal deadline; see
    ///      {IJobMarket-reclaim}.
    function _reclaim(Books storage books, uint256 jobId, Terms terms) private {
        IJobMarket.Job storage job = books.jobs[jobId];
        IJobMarket.JobState state = job.state;
        IJobMarket.ReplicaSet storage set = books.sets[jobId];
        uint40 deadline = job.deadline;
        if (
            state != IJobMarket.JobState.Open && state != IJobMarket.JobState.Claimed
                && state != IJobMarket.JobState.Revealing
        ) {
            revert IJobMarket.InvalidJobState(jobId, state);
        }
        if (block.timestamp <= deadline) revert IJobMarket.TooEarly(jobId, deadline);
        uint256 missed = Tally.missed(state, set.claims, set.committedMask, set.revealedMask);
        (uint96 refunded, uint96 slashed) = _closeReplicas(
            books, _closing(books, jobId, 0, missed, state != IJobMarket.JobState.Open, terms), 0
        );
        if (state == IJobMarket.JobState.Open) {
            uint96 unclaimed = set.escrow;
            set.escrow = 0;
            books.free[job.client] += unclaimed;
            refunded += unclaimed;
            job.state = IJobMarket.JobState.Expired;
        } else if (state == IJobMarket.JobState.Revealing) {
            _compareReveals(books, jobId, job, set, terms);
        } else if (set.committedMask == 0) {
            job.state = IJobMarket.JobState.Defaulted;
        } else {
            _openReveals(job, terms.revealWindow());
        }
        emit IJobMarket.JobRefunded(jobId, job.client, job.state, refunded, slashed);
    }

    // ================================================================ internals

    /// @dev The replicated job `jobId` in `state`, with its replica set.
    function _replicated(Books storage books, uint256 jobId, IJobMarket.JobState state)
        private
        view
        returns (IJobMarket.Job storage job, IJobMarket.ReplicaSet storage set)
    {
        job = books.jobs[jobId];
        if (job.provider != REPLICATED) revert IJobMarket.NotReplicated(jobId);
        if (job.state != state) revert IJobMarket.InvalidJobState(jobId, job.state);
        set = books.sets[jobId];
    }

    /// @dev The caller's replica index among the first `claims`; reverts if it holds none.
    function _indexOf(Books storage books, uint256 jobId, uint8 claims) private view returns (uint8 index) {
        mapping(uint256 => IJobMarket.Replica) storage replicas = books.replicas[jobId];
        for (; index < claims; ++index) {
            if (replicas[index].provider == msg.sender) return index;
        }
        revert IJobMarket.NotJobProvider(jobId, msg.sender);
    }

    /// @dev The revealed frames digests of the first `claims` replicas (zero where none).
    function _digests(Books storage books, uint256 jobId, uint256 claims)
        private
        view
        returns (bytes32[] memory digests)
    {
        mapping(uint256 => IJobMarket.Replica) storage replicas = books.replicas[jobId];
        digests = new bytes32[](claims);
        for (uint256 i; i < claims; ++i) {
            digests[i] = replicas[i].framesDigest;
        }
    }

    /// @dev Checks the caller's reveal against its commitment and records it; returns the reveals so far.
    function _recordReveal(
        Books storage books,
        uint256 jobId,
        IJobMarket.ReplicaSet storage set,
        bytes calldata resultCid,
        bytes32 videoSha256,
        bytes32 framesDigest,
        bytes32 salt
    ) private returns (uint8 reveals) {
        uint8 index = _indexOf(books, jobId, set.claims);
        uint8 bit = uint8(1 << index);
        if (set.committedMask & bit == 0) revert IJobMarket.NotCommitted(jobId, msg.sender);
        uint8 revealed = set.revealedMask;
        if (revealed & bit != 0) revert IJobMarket.AlreadyRevealed(jobId, msg.sender);
        IJobMarket.Replica storage r = books.replicas[jobId][index];
        bytes32 expected =
            Results.commitment(jobId, msg.sender, keccak256(resultCid), videoSha256, framesDigest, salt);
        if (r.commitment != expected) revert IJobMarket.CommitmentMismatch(jobId, msg.sender);
        r.framesDigest = framesDigest;
        reveals = set.reveals + 1;
        set.revealedMask = revealed | bit;
        set.reveals = reveals;
        emit IJobMarket.ResultRevealed(jobId, msg.sender, index, resultCid, videoSha256, framesDigest);
    }

    function _openReveals(IJobMarket.Job storage job, uint48 revealWindow) private {
        job.state = IJobMarket.JobState.Revealing;
        job.deadline = uint40(block.timestamp + revealWindow);
    }

    /// @dev Every committed replica revealed (or the reveal deadline passed): agreement of ≥ 2
    ///      identical digests delivers; anything else goes to the arbiter; nobody left defaults.
    function _compareReveals(
        Books storage books,
        uint256 jobId,
        IJobMarket.Job storage job,
        IJobMarket.ReplicaSet storage set,
        Terms terms
    ) private {
        uint8 revealed = set.revealedMask;
        if (revealed == 0) {
            job.state = IJobMarket.JobState.Defaulted;
            return;
        }
        (bool agree, bytes32 digest) = Tally.agreement(_digests(books, jobId, set.claims), revealed);
        if (agree) {
            uint40 challengeEnds = uint40(block.timestamp + terms.challengeWindow());
            job.state = IJobMarket.JobState.Delivered;
            job.deadline = challengeEnds;
            emit IJobMarket.ReplicasAgreed(jobId, digest, revealed, challengeEnds);
        } else {
            uint40 resolveBy = uint40(block.timestamp + terms.resolveWindow());
            job.state = IJobMarket.JobState.Disputed;
            job.deadline = resolveBy;
            emit IJobMarket.JobDisputed(
                jobId, address(0), IJobMarket.DisputeReason.ReplicaMismatch, bytes32(0), resolveBy
            );
        }
    }

    /// @dev Ends a replicated job: pays `c.payMask` (sharing `bondToReplicas`), refunds
    ///      `c.refundMask` to the client (slashing if `c.slash`), returns `bondToClient` to it.
    ///      Settled if anyone was paid, else Rejected.
    function _closeOut(Books storage books, Closing memory c, uint96 bondToClient, uint96 bondToReplicas)
        private
    {
        IJobMarket.Job storage job = books.jobs[c.jobId];
        IJobMarket.JobState end = c.payMask != 0 ? IJobMarket.JobState.Settled : IJobMarket.JobState.Rejected;
        job.state = end;
        (uint96 refund, uint96 slashed) = _closeReplicas(books, c, bondToReplicas);
        address client = job.client;
        if (c.refundMask != 0) emit IJobMarket.JobRefunded(c.jobId, client, end, refund, slashed);
        if (bondToClient != 0) {
            books.free[client] += bondToClient;
            emit IJobMarket.DisputeBondReturned(c.jobId, client, bondToClient);
        }
    }

    /// @dev Pays the replicas in `c.payMask` (price - fee each; `bond` split among them, the
    ///      remainder to the lowest index) and returns the shares in `c.refundMask` to the client
    ///      (their collateral slashed to it if `c.slash`, else unlocked). Returns the client's totals.
    function _closeReplicas(Books storage books, Closing memory c, uint96 bond)
        private
        returns (uint96 refund, uint96 slashed)
    {
        uint256 closing = c.payMask | c.refundMask;
        uint96 share = 0;
        if (bond != 0) {
            // payMask != 0 whenever a bond is shared (resolveReplicas pays every revealed one).
            // `bond` keeps the remainder, which the lowest paid index gets with its share.
            (uint256 each, uint256 rest) = Tally.split(bond, c.payMask.count());
            // Both are at most `bond`, which fits 96 bits.
            (share, bond) = (uint96(each), uint96(rest));
        }
        uint96 closed = 0;
        for (uint256 i; closing >> i != 0; ++i) {
            if (!closing.has(i)) continue;
            (uint96 price, uint96 taken) = _closeReplica(books, c, i, share + bond);
            closed += price;
            if (c.payMask.has(i)) {
                bond = 0;
            } else {
                refund += price;
                slashed += taken;
            }
        }
        IJobMarket.ReplicaSet storage set = books.sets[c.jobId];
        // Masks only hold bits of claimed replicas (< MAX_REPLICAS); the escrow holds every open
        // share's price.
        set.settledMask |= uint8(closing);
        set.escrow -= closed;
        if (refund != 0) books.free[books.jobs[c.jobId].client] += uint256(refund) + slashed;
    }

    /// @dev Pays replica `i` (with `bondPaid`) if it is in `c.payMask`, else refunds its share
    ///      (`c.slash`: its collateral taken).
    function _closeReplica(Books storage books, Closing memory c, uint256 i, uint96 bondPaid)
        private
        returns (uint96 price, uint96 taken)
    {
        IJobMarket.Replica storage r = books.replicas[c.jobId][i];
        address provider = r.provider;
        price = r.price;
        if (c.payMask.has(i)) {
            Payouts.pay(books, c.jobId, provider, price, c.feeBps, c.collateralBps, bondPaid);
        } else {
            taken = Payouts.unlock(books, provider, price, c.collateralBps, c.slash);
            // i < claims <= MAX_REPLICAS.
            emit IJobMarket.ReplicaDefaulted(c.jobId, provider, uint8(i), price, taken);
        }
    }

    /// @dev The close-out of `payMask` and `refundMask` of job `jobId`, at its fee.
    function _closing(
        Books storage books,
        uint256 jobId,
        uint256 payMask,
        uint256 refundMask,
        bool slash,
        Terms terms
    ) private view returns (Closing memory) {
        return Closing({
            jobId: jobId,
            payMask: payMask,
            refundMask: refundMask,
            slash: slash,
            feeBps: books.jobs[jobId].feeBps,
            collateralBps: terms.collateralBps()
        });
    }
}
