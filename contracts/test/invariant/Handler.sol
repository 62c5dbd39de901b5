// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {Credits} from "../../src/Credits.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";

/// @notice Drives the market with bounded random actions from three clients and three providers.
/// @dev Lifecycle calls are made on any job, in any state, at any time, inside try/catch: a call the
///      market wrongly accepts (a second payout, an early settlement, a replayed request) is recorded
///      in a ghost counter that the invariants require to stay zero. The handler never asserts itself:
///      with `fail_on_revert = false` a failed assertion here would pass unnoticed.
contract Handler is Test {
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant N_CLIENTS = 3;
    uint256 internal constant N_PROVIDERS = 3;
    uint256 internal constant MAX_JOB_PRICE = 200 ether;
    uint256 internal constant OPEN = 1 << 1;
    uint256 internal constant CLAIMED = 1 << 2;
    uint256 internal constant DELIVERED = 1 << 3;
    uint256 internal constant DISPUTED = 1 << 4;
    uint256 internal constant REVEALING = 1 << 11;

    JobMarket public immutable market;
    Credits public immutable credits;
    address public immutable admin;
    address public immutable arbiter;
    address public immutable treasury;

    uint256[] internal _clientKeys;
    address[] public clients;
    address[] public providers;
    address[] public actors; // clients then providers: everyone who can hold free balance or bond

    /// @dev forge may reset block.timestamp between calls; the handler keeps its own clock.
    uint256 public currentTime;

    struct Signed {
        IJobMarket.JobRequest request;
        bytes spec;
        bytes signature;
    }

    Signed[] internal _signed;
    mapping(address client => uint256) internal _nextNonce;

    // ---------------------------------------------------------------- ghosts

    /// @dev Successful submissions per request digest (must stay ≤ 1).
    mapping(bytes32 digest => uint256) public ghost_jobsPerRequest;
    /// @dev Times the provider of a job was paid (settle, or resolve in its favour).
    mapping(uint256 jobId => uint256) public ghost_payouts;
    /// @dev Times a job's escrow went back to its client (cancel, reclaim, resolve against provider).
    mapping(uint256 jobId => uint256) public ghost_refunds;
    mapping(uint256 jobId => uint256) public ghost_deliverBy;
    mapping(uint256 jobId => uint256) public ghost_challengeEnds;
    mapping(uint256 jobId => uint256) public ghost_resolveBy;
    mapping(uint256 jobId => bool) public ghost_disputed;
    mapping(address provider => uint256) public ghost_expectedLocked;

    uint256 public ghost_replayedRequests; // a signed request created a second job
    uint256 public ghost_earlyPayouts; // settled before the challenge (or resolve) window ended
    uint256 public ghost_earlyRefunds; // reclaimed before the claim or delivery deadline
    uint256 public ghost_wrongAmounts; // a payout or refund moved other than the expected amount
    uint256 public ghost_badReveals; // a reveal that does not match its commitment was accepted
    /// @dev Jobs submitted with replicas >= 2.
    mapping(uint256 jobId => bool) public ghost_replicated;
    /// @dev What a replica committed to (frames variant + 1; 0 = nothing committed).
    mapping(uint256 jobId => mapping(address provider => uint256)) internal _committedVariant;
    uint256 public ghost_feesAccrued;
    uint256 public ghost_feesWithdrawn;

    mapping(bytes4 selector => uint256) public calls;
    /// @dev Outcomes reached, so a test can prove the campaign gets past the first steps.
    mapping(IJobMarket.JobState state => uint256) public reached;
    /// @dev States replicated jobs reached through a replicated call (commit, reveal, settle, ...).
    mapping(IJobMarket.JobState state => uint256) public replicatedReached;

    modifier tracked(bytes4 selector) {
        vm.warp(currentTime);
        calls[selector]++;
        _;
    }

    constructor(JobMarket market_, Credits credits_, address admin_, address arbiter_, address treasury_) {
        market = market_;
        credits = credits_;
        admin = admin_;
        arbiter = arbiter_;
        treasury = treasury_;
        currentTime = block.timestamp;
        for (uint256 i; i < N_CLIENTS; ++i) {
            uint256 key = uint256(keccak256(abi.encode("invariant client", i))) % (SECP256K1_N - 1) + 1;
            _clientKeys.push(key);
            clients.push(vm.addr(key));
            actors.push(vm.addr(key));
        }
        for (uint256 i; i < N_PROVIDERS; ++i) {
            address p = address(uint160(uint256(keccak256(abi.encode("invariant provider", i)))));
            providers.push(p);
            actors.push(p);
        }
    }

    /// @dev Called once by the test after deployment (the handler must own no tokens of its own).
    function fundActors() external {
        for (uint256 i; i < actors.length; ++i) {
            vm.prank(admin);
            credits.mint(actors[i], 1_000_000_000 ether);
            vm.prank(actors[i]);
            credits.approve(address(market), type(uint256).max);
        }
    }

    // ================================================================ client funds

    function deposit(uint256 actorSeed, uint256 amount) external tracked(this.deposit.selector) {
        address who = actors[actorSeed % actors.length];
        amount = _bound(amount, 1, 1000 ether);
        vm.prank(who);
        market.deposit(amount);
    }

    function withdraw(uint256 actorSeed, uint256 amount) external tracked(this.withdraw.selector) {
        address who = actors[actorSeed % actors.length];
        uint256 free = market.freeBalanceOf(who);
        if (free == 0) return;
        amount = _bound(amount, 1, free);
        vm.prank(who);
        market.withdraw(amount, who);
    }

    // ================================================================ requests

    function submit(
        uint256 clientSeed,
        uint256 maxPrice,
        uint256 claimDelay,
        uint256 window,
        uint256 specSeed
    ) external tracked(this.submit.selector) {
        uint256 c = clientSeed % N_CLIENTS;
        address who = clients[c];
        IJobMarket.JobRequest memory r;
        r.client = who;
        r.modelId = keccak256(abi.encode("model", specSeed % 4));
        bytes memory spec = abi.encodePacked('{"seed":', vm.toString(specSeed), "}");
        r.specHash = keccak256(spec);
        r.maxPrice = _bound(maxPrice, 0, MAX_JOB_PRICE);
        // Mostly workable windows; one request in eight gets the tightest the market allows.
        bool tight = _oneIn(8, claimDelay);
        r.claimDeadline = uint64(block.timestamp + (tight ? 1 : _bound(claimDelay, 10 minutes, 2 days)));
        r.deliveryWindow = uint64(tight ? 60 : _bound(window, 1 hours, 2 days));
        r.nonce = _nextNonce[who]++;
        // One request in three asks for 2 or 3 replicas (there are 3 providers).
        r.replicas = _oneIn(3, specSeed) ? uint8(2 + specSeed % 2) : 1;
        r.perceptual = specSeed % 5 == 0;
        bytes32 digest = market.hashRequest(r);
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(_clientKeys[c], digest);
        bytes memory signature = abi.encodePacked(rr, s, v);

        _ensureFree(who, r.maxPrice * r.replicas);
        uint256 jobId = market.submitJob(r, spec, signature);
        if (r.replicas > 1) ghost_replicated[jobId] = true;
        ghost_jobsPerRequest[digest]++;
        _signed.push(Signed(r, spec, signature));
    }

    /// @dev Replays a request that already created a job, as signed and as its high-s twin.
    function replay(uint256 index, bool malleable) external tracked(this.replay.selector) {
        if (_signed.length == 0) return;
        Signed memory sr = _signed[index % _signed.length];
        if (sr.request.claimDeadline <= block.timestamp) return; // would fail as expired anyway
        bytes memory signature = sr.signature;
        if (malleable) signature = _highS(signature);
        _ensureFree(sr.request.client, sr.request.maxPrice * sr.request.replicas);
        try market.submitJob(sr.request, sr.spec, signature) {
            ghost_jobsPerRequest[market.hashRequest(sr.request)]++;
            ghost_replayedRequests++;
        } catch {}
    }

    /// @dev The client burns its next nonce; a request signed with it must then be refused.
    function invalidateNonce(uint256 clientSeed) external tracked(this.invalidateNonce.selector) {
        uint256 c = clientSeed % N_CLIENTS;
        address who = clients[c];
        uint256 nonce = _nextNonce[who]++;
        vm.prank(who);
        market.invalidateNonce(nonce);

        IJobMarket.JobRequest memory r = IJobMarket.JobRequest({
            client: who,
            modelId: bytes32(0),
            specHash: keccak256(""),
            maxPrice: 0,
            claimDeadline: uint64(block.timestamp + 1 hours),
            deliveryWindow: 60,
            replicas: 1,
            perceptual: false,
            nonce: nonce
        });
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(_clientKeys[c], market.hashRequest(r));
        try market.submitJob(r, "", abi.encodePacked(rr, s, v)) {
            ghost_replayedRequests++;
        } catch {}
    }

    // ================================================================ job lifecycle

    function cancel(uint256 jobSeed) external tracked(this.cancel.selector) {
        (uint256 jobId, IJobMarket.Job memory job) = _pickJob(jobSeed, OPEN);
        if (jobId == 0) return;
        if (ghost_replicated[jobId]) {
            _replicatedCall(job.client, jobId, abi.encodeCall(market.cancelJob, (jobId)));
            return;
        }
        uint256 freeBefore = market.freeBalanceOf(job.client);
        vm.prank(job.client);
        try market.cancelJob(jobId) {
            ghost_refunds[jobId]++;
            reached[IJobMarket.JobState.Cancelled]++;
            if (market.freeBalanceOf(job.client) != freeBefore + job.amount) ghost_wrongAmounts++;
        } catch {}
    }

    function claim(uint256 providerSeed, uint256 jobSeed, uint256 price, uint256 topUp)
        external
        tracked(this.claim.selector)
    {
        (uint256 jobId, IJobMarket.Job memory job) = _pickJob(jobSeed, OPEN);
        if (jobId == 0) return;
        address p = providers[providerSeed % N_PROVIDERS];
        price = _bound(price, 0, job.amount);
        _ensureProvider(p, market.collateralFor(price), topUp);
        vm.prank(p);
        try market.claimJob(jobId, price) {
            uint256 collateral = market.collateralFor(price);
            ghost_expectedLocked[p] += collateral;
            reached[IJobMarket.JobState.Claimed]++;
            ghost_deliverBy[jobId] = block.timestamp + job.deliveryWindow;
            if (ghost_replicated[jobId] && market.getJob(jobId).state == IJobMarket.JobState.Open) {
                ghost_deliverBy[jobId] = 0;
            }
        } catch {}
    }

    function deliver(uint256 jobSeed, bytes32 videoSha256) external tracked(this.deliver.selector) {
        (uint256 jobId, IJobMarket.Job memory job) = _pickJob(jobSeed, CLAIMED);
        if (jobId == 0 || job.provider == address(0)) return;
        if (videoSha256 == bytes32(0)) videoSha256 = keccak256("video");
        vm.prank(job.provider);
        try market.deliver(
            jobId, abi.encodePacked(hex"01551220", videoSha256), videoSha256, keccak256("frames")
        ) {
            ghost_challengeEnds[jobId] = block.timestamp + market.CHALLENGE_WINDOW();
            reached[IJobMarket.JobState.Delivered]++;
        } catch {}
    }

    function dispute(uint256 jobSeed, uint8 reason) external tracked(this.dispute.selector) {
        (uint256 jobId, IJobMarket.Job memory job) = _pickJob(jobSeed, DELIVERED);
        if (jobId == 0) return;
        _ensureFree(job.client, market.DISPUTE_BOND());
        vm.prank(job.client);
        try market.dispute(jobId, IJobMarket.DisputeReason(reason % 5), keccak256("evidence")) {
            ghost_disputed[jobId] = true;
            reached[IJobMarket.JobState.Disputed]++;
            ghost_resolveBy[jobId] = block.timestamp + market.RESOLVE_WINDOW();
        } catch {}
    }

    function resolve(uint256 jobSeed, bool providerAtFault) external tracked(this.resolve.selector) {
        (uint256 jobId, IJobMarket.Job memory job) = _pickJob(jobSeed, DISPUTED);
        if (jobId == 0) return;
        if (ghost_replicated[jobId]) {
            vm.prank(arbiter);
            try market.resolve(jobId, providerAtFault) {
                ghost_wrongAmounts++; // resolve must refuse replicated jobs
            } catch {}
            return;
        }
        uint256 clientBefore = market.freeBalanceOf(job.client);
        uint256 providerBefore = market.freeBalanceOf(job.provider);
        vm.prank(arbiter);
        try market.resolve(jobId, providerAtFault) {
            uint256 bond = market.DISPUTE_BOND();
            if (providerAtFault) {
                ghost_refunds[jobId]++;
                reached[IJobMarket.JobState.Rejected]++;
                _unlock(job);
                uint256 expected = clientBefore + job.amount + market.collateralFor(job.amount) + bond;
                if (market.freeBalanceOf(job.client) != expected) ghost_wrongAmounts++;
            } else {
                ghost_payouts[jobId]++;
                uint256 fee = _recordFee(job);
                _unlock(job);
                if (market.freeBalanceOf(job.provider) != providerBefore + job.amount - fee + bond) {
                    ghost_wrongAmounts++;
                }
            }
        } catch {}
    }

    function settle(uint256 jobSeed, uint256 callerSeed) external tracked(this.settle.selector) {
        (uint256 jobId, IJobMarket.Job memory job) = _pickJob(jobSeed, DELIVERED | DISPUTED);
        if (jobId == 0) return;
        if (ghost_replicated[jobId]) {
            uint256 deadline = job.deadline;
            if (
                _replicatedCall(
                        actors[callerSeed % actors.length], jobId, abi.encodeCall(market.settle, (jobId))
                    ) && block.timestamp < deadline
            ) {
                ghost_earlyPayouts++;
            }
            return;
        }
        uint256 providerBefore = market.freeBalanceOf(job.provider);
        vm.prank(actors[callerSeed % actors.length]);
        try market.settle(jobId) {
            ghost_payouts[jobId]++;
            reached[IJobMarket.JobState.Settled]++;
            if (block.timestamp < ghost_challengeEnds[jobId]) ghost_earlyPayouts++;
            if (ghost_disputed[jobId] && block.timestamp < ghost_resolveBy[jobId]) ghost_earlyPayouts++;
            uint256 fee = _recordFee(job);
            _unlock(job);
            // A settling client who is also the provider is not a case here (disjoint actor sets).
            if (market.freeBalanceOf(job.provider) != providerBefore + job.amount - fee) {
                ghost_wrongAmounts++;
            }
        } catch {}
    }

    function reclaim(uint256 jobSeed, uint256 callerSeed) external tracked(this.reclaim.selector) {
        (uint256 jobId, IJobMarket.Job memory job) = _pickJob(jobSeed, OPEN | CLAIMED | REVEALING);
        if (jobId == 0) return;
        if (ghost_replicated[jobId]) {
            uint256 deadline = job.deadline;
            if (
                _replicatedCall(
                        actors[callerSeed % actors.length], jobId, abi.encodeCall(market.reclaim, (jobId))
                    ) && block.timestamp <= deadline
            ) {
                ghost_earlyRefunds++;
            }
            return;
        }
        uint256 clientBefore = market.freeBalanceOf(job.client);
        vm.prank(actors[callerSeed % actors.length]);
        try market.reclaim(jobId) {
            ghost_refunds[jobId]++;
            uint256 expected;
            if (job.state == IJobMarket.JobState.Open) {
                reached[IJobMarket.JobState.Expired]++;
                if (block.timestamp <= job.deadline) ghost_earlyRefunds++;
                expected = clientBefore + job.amount;
            } else {
                reached[IJobMarket.JobState.Defaulted]++;
                if (block.timestamp <= ghost_deliverBy[jobId]) ghost_earlyRefunds++;
                _unlock(job);
                expected = clientBefore + job.amount + market.collateralFor(job.amount);
            }
            if (market.freeBalanceOf(job.client) != expected) ghost_wrongAmounts++;
        } catch {}
    }

    function release(uint256 jobSeed) external tracked(this.release.selector) {
        (uint256 jobId, IJobMarket.Job memory job) = _pickJob(jobSeed, CLAIMED);
        if (jobId == 0 || job.provider == address(0)) return;
        uint256 clientBefore = market.freeBalanceOf(job.client);
        uint256 bondBefore = market.getProvider(job.provider).bond;
        vm.prank(job.provider);
        try market.releaseJob(jobId) {
            ghost_refunds[jobId]++;
            reached[IJobMarket.JobState.Released]++;
            if (block.timestamp > ghost_deliverBy[jobId]) ghost_wrongAmounts++; // too late to release
            _unlock(job);
            uint256 penalty = market.collateralFor(job.amount) * market.RELEASE_PENALTY_BPS() / 10_000;
            if (market.freeBalanceOf(job.client) != clientBefore + job.amount + penalty) {
                ghost_wrongAmounts++;
            }
            if (market.getProvider(job.provider).bond != bondBefore - penalty) ghost_wrongAmounts++;
        } catch {}
    }

    // ================================================================ replicated jobs

    /// @dev A replica commits to one of two frames variants (so replicas sometimes disagree).
    function commit(uint256 jobSeed, uint256 providerSeed, uint256 variant)
        external
        tracked(this.commit.selector)
    {
        uint256 jobId = _pickReplicated(jobSeed, CLAIMED);
        if (jobId == 0) return;
        address p = providers[providerSeed % N_PROVIDERS];
        variant = variant % 2;
        bytes32 c = market.replicaCommitment(
            jobId, p, _resultCid(variant), keccak256("video"), _frames(variant), _salt(jobId, p)
        );
        vm.prank(p);
        try market.commitResult(jobId, c) {
            _committedVariant[jobId][p] = variant + 1;
        } catch {}
    }

    /// @dev A replica reveals what it committed to; one call in eight reveals something else,
    ///      which the market must refuse.
    function reveal(uint256 jobSeed, uint256 providerSeed, uint256 lie)
        external
        tracked(this.reveal.selector)
    {
        uint256 jobId = _pickReplicated(jobSeed, REVEALING);
        if (jobId == 0) return;
        address p = providers[providerSeed % N_PROVIDERS];
        uint256 committed = _committedVariant[jobId][p];
        if (committed == 0) return;
        uint256 variant = committed - 1;
        bool lying = _oneIn(8, lie);
        bytes32 frames = lying ? keccak256(abi.encode("lie", lie)) : _frames(variant);
        bytes memory call = abi.encodeCall(
            market.revealResult, (jobId, _resultCid(variant), keccak256("video"), frames, _salt(jobId, p))
        );
        if (_replicatedCall(p, jobId, call) && lying) ghost_badReveals++;
    }

    function resolveReplicas(uint256 jobSeed, uint8 faultMask)
        external
        tracked(this.resolveReplicas.selector)
    {
        uint256 jobId = _pickReplicated(jobSeed, DISPUTED);
        if (jobId == 0) return;
        // Usually a mask the market accepts (revealed replicas only); sometimes any mask.
        if (!_oneIn(8, faultMask)) faultMask &= market.getReplicaSet(jobId).revealedMask;
        _replicatedCall(arbiter, jobId, abi.encodeCall(market.resolveReplicas, (jobId, faultMask)));
    }

    // ================================================================ providers

    function register(uint256 providerSeed, uint256 bond) external tracked(this.register.selector) {
        address p = providers[providerSeed % N_PROVIDERS];
        if (market.getProvider(p).registered) return;
        bond = _bound(bond, market.MIN_BOND(), 10 * market.MIN_BOND());
        vm.prank(p);
        market.registerProvider(bond, "ipfs://offer");
    }

    function addBond(uint256 providerSeed, uint256 amount) external tracked(this.addBond.selector) {
        address p = providers[providerSeed % N_PROVIDERS];
        if (!market.getProvider(p).registered) return;
        amount = _bound(amount, 1, 500 ether);
        vm.prank(p);
        market.addBond(amount);
    }

    function requestExit(uint256 providerSeed) external tracked(this.requestExit.selector) {
        address p = providers[providerSeed % N_PROVIDERS];
        IJobMarket.Provider memory info = market.getProvider(p);
        if (!info.registered || info.exitAvailableAt != 0) return;
        vm.prank(p);
        market.requestExit();
    }

    function cancelExit(uint256 providerSeed) external tracked(this.cancelExit.selector) {
        address p = providers[providerSeed % N_PROVIDERS];
        if (market.getProvider(p).exitAvailableAt == 0) return;
        vm.prank(p);
        market.cancelExit();
    }

    function withdrawBond(uint256 providerSeed, uint256 amount) external tracked(this.withdrawBond.selector) {
        address p = providers[providerSeed % N_PROVIDERS];
        IJobMarket.Provider memory info = market.getProvider(p);
        if (info.exitAvailableAt == 0 || block.timestamp < info.exitAvailableAt) return;
        uint256 unlocked = info.bond - info.locked;
        if (unlocked == 0) return;
        amount = _bound(amount, 1, unlocked);
        vm.prank(p);
        market.withdrawBond(amount, p);
    }

    // ================================================================ admin and time

    function setFee(uint256 feeBps) external tracked(this.setFee.selector) {
        uint16 fee = uint16(_bound(feeBps, 0, market.MAX_FEE_BPS())); // before the prank: it is a call
        vm.prank(admin);
        market.setProtocolFee(fee);
    }

    function withdrawFees(uint256 amount) external tracked(this.withdrawFees.selector) {
        uint256 owed = market.feesOwed();
        if (owed == 0) return;
        amount = _bound(amount, 1, owed);
        vm.prank(admin);
        market.withdrawFees(treasury, amount);
        ghost_feesWithdrawn += amount;
    }

    function warp(uint256 secondsAhead) external tracked(this.warp.selector) {
        currentTime += _bound(secondsAhead, 1 minutes, 1 days);
        vm.warp(currentTime);
    }

    // ================================================================ end state

    /// @notice Past every deadline: close every job, let providers exit, and have every actor
    ///         withdraw everything. Reverts (failing the run) if anything is stuck.
    function drain() external {
        currentTime += 31 days + market.MAX_DELIVERY_WINDOW() + market.CHALLENGE_WINDOW()
            + market.RESOLVE_WINDOW();
        vm.warp(currentTime);
        uint256 last = market.nextJobId();
        // A replicated job may take several steps (commit deadline, reveal deadline, arbiter).
        for (uint256 round; round < 4; ++round) {
            for (uint256 jobId = 1; jobId < last; ++jobId) {
                IJobMarket.JobState state = market.getJob(jobId).state;
                if (
                    state == IJobMarket.JobState.Open || state == IJobMarket.JobState.Claimed
                        || state == IJobMarket.JobState.Revealing
                ) {
                    market.reclaim(jobId);
                } else if (state == IJobMarket.JobState.Delivered || state == IJobMarket.JobState.Disputed) {
                    market.settle(jobId);
                }
            }
            currentTime += market.REVEAL_WINDOW() + market.CHALLENGE_WINDOW() + market.RESOLVE_WINDOW();
            vm.warp(currentTime);
        }
        for (uint256 i; i < N_PROVIDERS; ++i) {
            address p = providers[i];
            IJobMarket.Provider memory info = market.getProvider(p);
            if (info.registered && info.exitAvailableAt == 0) {
                vm.prank(p);
                market.requestExit();
            }
        }
        currentTime += market.EXIT_COOLDOWN();
        vm.warp(currentTime);
        for (uint256 i; i < N_PROVIDERS; ++i) {
            address p = providers[i];
            uint256 bond = market.getProvider(p).bond;
            if (bond != 0) {
                vm.prank(p);
                market.withdrawBond(bond, p);
            }
        }
        for (uint256 i; i < actors.length; ++i) {
            uint256 free = market.freeBalanceOf(actors[i]);
            if (free != 0) {
                vm.prank(actors[i]);
                market.withdraw(free, actors[i]);
            }
        }
    }

    // ================================================================ views for the invariants

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function providerCount() external pure returns (uint256) {
        return N_PROVIDERS;
    }

    function signedCount() external view returns (uint256) {
        return _signed.length;
    }

    function signedDigest(uint256 i) external view returns (bytes32) {
        return market.hashRequest(_signed[i].request);
    }

    // ================================================================ internals

    /// @dev Usually a job in one of the states of `mask` (bit i = JobState(i)), found from a random
    ///      start; one call in eight takes any job, whatever its state, to probe wrong acceptances.
    function _pickJob(uint256 seed, uint256 mask)
        internal
        view
        returns (uint256 jobId, IJobMarket.Job memory job)
    {
        uint256 count = market.nextJobId() - 1;
        if (count == 0) return (0, job);
        uint256 start = seed % count;
        if (!_oneIn(8, seed)) {
            for (uint256 i; i < count; ++i) {
                uint256 id = (start + i) % count + 1;
                IJobMarket.Job memory candidate = market.getJob(id);
                if (mask & (1 << uint8(candidate.state)) != 0) return (id, candidate);
            }
        }
        jobId = start + 1;
        job = market.getJob(jobId);
    }

    /// @dev A replicated job in one of the states of `mask`, found from a random start (0 if none).
    function _pickReplicated(uint256 seed, uint256 mask) internal view returns (uint256) {
        uint256 count = market.nextJobId() - 1;
        for (uint256 i; i < count; ++i) {
            uint256 id = (seed % count + i) % count + 1;
            if (ghost_replicated[id] && mask & (1 << uint8(market.getJob(id).state)) != 0) return id;
        }
        return 0;
    }

    /// @dev A 1-in-`n` choice from a fuzzed value. Hashed first: forge favours small and edge
    ///      values, so `x % n` alone would pick the rare branch far too often.
    function _oneIn(uint256 n, uint256 x) internal pure returns (bool) {
        return uint256(keccak256(abi.encode(x))) % n == 0;
    }

    function _ensureFree(address who, uint256 amount) internal {
        uint256 free = market.freeBalanceOf(who);
        if (free >= amount) return;
        vm.prank(who);
        market.deposit(amount - free);
    }

    function _ensureProvider(address p, uint256 collateral, uint256 topUp) internal {
        IJobMarket.Provider memory info = market.getProvider(p);
        uint256 minBond = market.MIN_BOND();
        if (!info.registered) {
            vm.prank(p);
            market.registerProvider(minBond + collateral, "ipfs://offer");
            return;
        }
        // Top up only sometimes, so under-bonded claims are exercised too.
        if (_oneIn(4, topUp)) return;
        uint256 need = collateral + info.locked;
        if (need < minBond) need = minBond;
        if (info.bond < need) {
            vm.prank(p);
            market.addBond(need - info.bond);
        }
    }

    /// @dev Saturating: a ghost update must never revert, or the wrong call it records would vanish.
    function _unlock(IJobMarket.Job memory job) internal {
        uint256 collateral = market.collateralFor(job.amount);
        uint256 expected = ghost_expectedLocked[job.provider];
        if (expected < collateral) {
            ghost_wrongAmounts++;
            ghost_expectedLocked[job.provider] = 0;
        } else {
            ghost_expectedLocked[job.provider] = expected - collateral;
        }
    }

    /// @dev Makes `call` on the market as `caller` for a replicated job and
    ///      books what changed: each replica newly closed unlocks its collateral in the ghost, and
    ///      one whose provider's free balance grew was paid (its fee is booked). Returns success.
    function _replicatedCall(address caller, uint256 jobId, bytes memory call) internal returns (bool ok) {
        IJobMarket.ReplicaSet memory before = market.getReplicaSet(jobId);
        uint256[5] memory freeBefore;
        for (uint8 i; i < before.claims; ++i) {
            freeBefore[i] = market.freeBalanceOf(market.getReplica(jobId, i).provider);
        }
        vm.prank(caller);
        (ok,) = address(market).call(call);
        if (!ok) return false;
        IJobMarket.ReplicaSet memory afterSet = market.getReplicaSet(jobId);
        uint16 feeBps = market.getJob(jobId).feeBps;
        for (uint8 i; i < afterSet.claims; ++i) {
            uint8 bit = uint8(1 << i);
            if (before.settledMask & bit != 0 || afterSet.settledMask & bit == 0) continue;
            IJobMarket.Replica memory r = market.getReplica(jobId, i);
            uint256 collateral = market.collateralFor(r.price);
            uint256 expected = ghost_expectedLocked[r.provider];
            if (expected < collateral) {
                ghost_wrongAmounts++;
                ghost_expectedLocked[r.provider] = 0;
            } else {
                ghost_expectedLocked[r.provider] = expected - collateral;
            }
            uint256 gained = market.freeBalanceOf(r.provider) - freeBefore[i];
            if (gained != 0) {
                uint256 fee = uint256(r.price) * feeBps / 10_000;
                ghost_feesAccrued += fee;
                // Paid: price - fee, plus at most the dispute bond.
                if (gained < r.price - fee || gained > r.price - fee + market.DISPUTE_BOND()) {
                    ghost_wrongAmounts++;
                }
            }
        }
        replicatedReached[market.getJob(jobId).state]++;
    }

    function _frames(uint256 variant) internal pure returns (bytes32) {
        return keccak256(abi.encode("frames", variant));
    }

    function _resultCid(uint256 variant) internal pure returns (bytes memory) {
        return abi.encodePacked(hex"01551220", _frames(variant));
    }

    function _salt(uint256 jobId, address p) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", jobId, p));
    }

    function _recordFee(IJobMarket.Job memory job) internal returns (uint256 fee) {
        fee = uint256(job.amount) * job.feeBps / 10_000;
        ghost_feesAccrued += fee;
    }

    function _highS(bytes memory sig) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }
}
