"""The node's side of a replicated job (k ≥ 2 providers, issue #6), which the agent
delegates to.

The node claims one replica while the job is Open and it holds none yet, then waits (local
``waiting``, no GPU slot held) until the k-th claim makes the job Claimed; only then does
it run. Should the claim deadline pass first, the node itself calls `reclaim` (the job
Expires, everyone's collateral unlocks) and ends the job ``lost``. After the run it commits
instead of delivering: the salt is written to the state database before `commitResult` is
sent and reused on a retry, so a node killed at any point reveals with the salt it
committed to. It reveals as soon as the chain says Revealing, and moves a stuck job on with
`reclaim` once its commit or reveal deadline has passed. `settle` pays every replica in one
call (whoever calls first; the others meet InvalidJobState and just reconcile). The node's
own outcome is read from its replica's close-out events: paid → ``settled`` (earned = its
price − fee), refunded with collateral slashed → ``rejected`` (arbiter: at fault) or
``slashed`` (missed its commit or reveal), refunded unslashed → ``lost`` with the reason.
`releaseJob` does not exist for replicated jobs: a failed replicated run stays ``failed``
(collateral at stake) until its commit deadline passes; the node then reclaims and the job
ends ``slashed``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

from framecast.node.state import TERMINAL, JobRecord, StateStore
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import JobState, JobView, Market, ReplicaView
from framecast.shared.chain.history import LogReader, read_job
from framecast.shared.ipfs import parse_cid
from framecast.shared.replicas import new_salt, replica_commitment

#: The agent's logger: a replica's lines stay where operators (and their filters) read
#: every other line of the job.
log = logging.getLogger("framecast.node.agent")


class ReplicaHost(Protocol):
    """What the flow needs from the agent that owns the job's local record and its run."""

    @property
    def market(self) -> Market: ...

    @property
    def state(self) -> StateStore: ...

    @property
    def address(self) -> str: ...

    def chain_now(self) -> int: ...

    def reconcile(self, job_id: int) -> None: ...

    def transition(self, job: JobRecord, to: str, **fields: object) -> JobRecord: ...

    def start_run(self, job_id: int) -> None: ...

    def forget_running(self, job_id: int) -> None: ...

    def is_running(self, job_id: int) -> bool: ...


class ReplicaFlow:
    """Waiting for the set, commit with a stored salt, reveal, and the replica close-out."""

    def __init__(self, host: ReplicaHost, reader: LogReader) -> None:
        self.host = host
        #: The agent's one log reader (the intake's): it knows the range the RPC accepts.
        self.reader = reader

    def mine(self, job_id: int) -> ReplicaView | None:
        """This node's replica of ``job_id``, if it claimed one."""
        for replica in self.host.market.get_replicas(job_id):
            if replica.provider == self.host.address:
                return replica
        return None

    def wait(self, job: JobRecord) -> None:
        """A claimed replica waits for the set to fill; past the claim deadline it reclaims
        (the job Expires: escrow back to the client, every claimer's collateral unlocked)."""
        view = self.host.market.get_job(job.job_id)
        if view.state is JobState.OPEN:
            self.push_past_deadline(view)
            return
        self.host.reconcile(job.job_id)

    def push_past_deadline(self, view: JobView) -> None:
        """Past the deadline of an Open, Claimed or Revealing replicated job, call `reclaim`
        (anyone may): the set expires, or the replicas that missed the commit or reveal
        default and the job moves on. Then align the local record."""
        if self.host.chain_now() > view.deadline:
            # Another party may have moved it first, or chain time lags: reconcile / retry.
            with contextlib.suppress(reverts.TooEarly, reverts.InvalidJobState):
                self.host.market.reclaim(view.job_id)
        self.host.reconcile(view.job_id)

    def _commitment(self, job: JobRecord, salt_hex: str) -> bytes:
        assert job.result_cid and job.video_sha256 and job.frames_digest
        return replica_commitment(
            job.job_id,
            self.host.address,
            bytes(parse_cid(job.result_cid)),
            bytes.fromhex(job.video_sha256[2:]),
            bytes.fromhex(job.frames_digest[2:]),
            bytes.fromhex(salt_hex[2:]),
        )

    def commit(self, job: JobRecord) -> None:
        """Commit to a pinned replica's result (`commitResult`), then mark it committed."""
        host = self.host
        view = host.market.get_job(job.job_id)
        replica = self.mine(job.job_id) if view.state is JobState.CLAIMED else None
        if replica is None or replica.committed:
            host.reconcile(job.job_id)
            return
        salt_hex = job.salt
        if salt_hex is None:
            # Persisted before the transaction: if the node dies after it is mined, the
            # restarted node still holds the salt it must reveal with.
            salt_hex = "0x" + new_salt().hex()
            host.state.update(job.job_id, salt=salt_hex)
        try:
            host.market.commit_result(job.job_id, self._commitment(job, salt_hex))
        except (reverts.DeliveryWindowClosed, reverts.AlreadyCommitted, reverts.InvalidJobState):
            host.reconcile(job.job_id)
            return
        host.transition(host.state.require(job.job_id), "committed")

    def reveal(self, job: JobRecord) -> None:
        """Reveal a committed result as soon as every replica has committed."""
        host = self.host
        view = host.market.get_job(job.job_id)
        if view.state is JobState.CLAIMED:
            self.push_past_deadline(view)  # waiting for the other commitments
            return
        replica = self.mine(job.job_id) if view.state is JobState.REVEALING else None
        if replica is None or not replica.committed or replica.revealed:
            host.reconcile(job.job_id)
            return
        assert job.result_cid and job.video_sha256 and job.frames_digest and job.salt
        try:
            host.market.reveal_result(
                job.job_id,
                bytes(parse_cid(job.result_cid)),
                bytes.fromhex(job.video_sha256[2:]),
                bytes.fromhex(job.frames_digest[2:]),
                bytes.fromhex(job.salt[2:]),
            )
        except (reverts.RevealWindowClosed, reverts.AlreadyRevealed, reverts.InvalidJobState):
            host.reconcile(job.job_id)
            return
        except reverts.CommitmentMismatch as exc:
            # Cannot happen with the stored salt; say so once, the reveal deadline ends it.
            if job.reason != str(exc):
                log.error("job %s: cannot reveal: %s", job.job_id, exc)
                host.state.update(job.job_id, reason=str(exc))
            return
        host.transition(host.state.require(job.job_id), "delivered")

    def reconcile(self, local: JobRecord, view: JobView) -> None:
        """`Agent.reconcile` for a replicated job: this node's replica decides, not
        `view.provider`."""
        host = self.host
        job_id = local.job_id
        replica = self.mine(job_id)
        if replica is None:
            if view.state is JobState.OPEN:
                if local.state in ("waiting", "claimed", "running", "failed"):
                    # Our claim vanished in a reorg: start over from `seen`.
                    host.forget_running(job_id)
                    host.state.delete(job_id)
                    host.state.add_seen(
                        local.model_copy(update={"state": "seen", "price": None, "salt": None})
                    )
            elif local.state not in TERMINAL:
                host.transition(
                    local, "lost", reason=f"on chain: {view.state.label} without this node"
                )
            return
        if replica.settled:
            self._close_out(local, replica, view)
            return
        state = view.state
        if state is JobState.OPEN:
            if local.state == "seen":
                host.transition(local, "waiting", price=replica.price)
        elif state is JobState.CLAIMED:
            if local.state in ("seen", "waiting"):
                local = host.transition(local, "claimed", price=replica.price)
            elif local.state == "running" and not host.is_running(job_id):
                local = host.transition(local, "claimed")  # crashed mid-run: run again
            elif local.state == "pinned" and replica.committed:
                local = self._adopt_commitment(local, replica)
            if local.state == "claimed" and not host.is_running(job_id):
                host.start_run(job_id)
        elif state is JobState.REVEALING:
            if local.state == "pinned" and replica.committed:
                local = self._adopt_commitment(local, replica)
            if local.state == "committed" and replica.revealed:
                host.transition(local, "delivered")
        elif state in (JobState.DELIVERED, JobState.DISPUTED) and replica.revealed:
            if local.state in ("pinned", "committed"):
                local = host.transition(local, "delivered")
            if state is JobState.DISPUTED and local.state == "delivered":
                reason = "replica results disagree, or the client disputed"
                host.transition(local, "disputed", reason=reason)

    def _adopt_commitment(self, local: JobRecord, replica: ReplicaView) -> JobRecord:
        """The commit transaction was mined but the node died before recording it."""
        if local.salt is None or self._commitment(local, local.salt) != replica.commitment:
            log.error("job %s: the commitment on chain is not this node's stored one", local.job_id)
        return self.host.transition(local, "committed")

    def _close_out(self, local: JobRecord, replica: ReplicaView, view: JobView) -> None:
        """This node's replica is closed out on chain: paid, or its share refunded."""
        if local.state in TERMINAL:
            return
        host = self.host
        # The job's history through the one reader (`shared.chain.history`); a later event
        # of a kind wins, as in every other view of the job.
        history = read_job(
            host.market, local.job_id, from_block=local.block_number, reader=self.reader
        )
        me = host.address.lower()
        paid = [s for s in history.settlements if s.provider.lower() == me]
        if paid:
            if local.state not in ("delivered", "disputed"):
                local = host.transition(local, "delivered")
            host.transition(local, "settled", earned=paid[-1].payout)
            return
        refunded = [d for d in history.defaults if d.provider.lower() == me]
        if not refunded:
            return  # the logs are not visible yet: look again next round
        slashed = refunded[-1].slashed
        if slashed == 0:
            reason = (
                f"the claim deadline passed before all {local.replicas} replicas claimed; "
                "the job expired and the collateral is unlocked"
                if view.state is JobState.EXPIRED
                else "outvoted while the arbiter stayed silent: price refunded, not slashed"
            )
            host.transition(local, "lost", reason=reason)
        elif replica.revealed:
            if local.state == "committed":
                local = host.transition(local, "delivered")
            host.transition(
                local, "rejected", reason="the arbiter found this replica at fault; slashed"
            )
        else:
            missed = "reveal" if replica.committed else "commit"
            host.transition(
                local, "slashed", reason=f"missed the {missed} deadline; collateral slashed"
            )
