"""Rendering: job definitions + environment -> per-environment job specs, through Jinja templates.

definitions (load, overrides, sweeps) -> context (values from resolved infra) -> templating (Jinja) ->
checks (policy, secrets, SageMaker limits) -> engine (names, hashes, atomic write of the tree, diff).
"""
