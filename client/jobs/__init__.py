"""Job use cases, one module per seam: `spec` (build and check a spec), `submit` (sign a
request and escrow it), `views` (read jobs back from events), `follow` (follow a job to
delivery, providers' signed reports), `actions` (cancel, reclaim, dispute).

A job's whole story is in the market's events (`JobSubmitted` carries the spec and every
signed field, `JobClaimed` the provider and price, `JobDelivered` the result digests), so
every view is rebuilt from them plus the job's current on-chain record. Nothing is kept
locally: `framecast status JOB` on another machine shows the same thing. Import each name
from the module that holds it; this package re-exports nothing.
"""
