"""Evaluation on unseen data: metrics with confidence intervals, robustness, targets, reports, the promotion gate.

Modules, each one concern:
- `examples`: the test split (and the shipped out-of-domain set) as `Example`s.
- `metrics` / `stats`: per-example scores, corpus metrics, bootstrap confidence intervals.
- `perturb`: deterministic input perturbations (casing, whitespace, typos, reordered instructions).
- `store`: the append-only answer store that lets an interrupted evaluation resume.
- `targets`: where answers come from (Azure OpenAI per request or Batch API, SageMaker endpoints, local models).
- `runner`: asks each target for every missing answer, with bounded concurrency.
- `evaluate`: ties it together into one `Evaluation`; `report` renders it; `gate` decides promotion.
"""
