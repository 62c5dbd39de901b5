"""One module per pipeline family, each a call adapter for the diffusers classes it serves.

Every family module has ``PIPELINES`` (the diffusers class names a catalog entry's
``pipeline`` may name) and ``run(pipe, call, generator, on_step)``, which turns a `Call`
into that pipeline's keyword arguments and returns its frames. `framecast.runner.pipelines`
builds its registry from them; what several families share lives in `call.py`,
`flow.py` and `frame_batch.py`.
"""
