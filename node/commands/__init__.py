"""The `framecast node` commands, one module per area: `setup` (init, register), `run`,
`status`, `models` (pull, list), `replay`; `options` holds what they share. Command modules
do not import each other (tests/test_packaging.py checks); `framecast.node.cli` groups them.
"""
