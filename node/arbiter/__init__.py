"""The dispute arbiter: an operator role, not a provider.

`service.py` decides disputed jobs by evidence and resolves them on chain; `cli.py` is the
`framecast arbiter` command group. It replays with the node's runtime, weights, replay and
config, so it lives beside the node; the provider agent never imports it.
"""
