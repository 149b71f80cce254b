"""The cost estimate behind the policy's per-job ceiling: an adapter over the data stage's estimator.

The data stage owns prices and token arithmetic (`jobs.data.estimate`); rendering only asks "how much will one
run of this job cost" and compares it with the ceiling. The call is kept here so it matches the estimator's
signature in one place.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs import paths
from jobs.config.environment import Environment
from jobs.data.manifest import Manifest
from jobs.errors import FtopsError
from jobs.render.definitions import JobVariant

_require_split_files = False
"""Set while apply re-renders (jobs/apply/verify.py): the split files must be there, as the upload needs them."""
_verified: dict[tuple[str, str, str], tuple[int, int, int]] = {}
"""Counts by (split sha256, encoding, format): each file's content is tokenized once per process."""
_lock = threading.Lock()


@contextmanager
def split_files_required() -> Iterator[None]:
    """Within this block a manifest whose train split file is absent is refused instead of taken on trust."""
    global _require_split_files
    before, _require_split_files = _require_split_files, True
    try:
        yield
    finally:
        _require_split_files = before


def verified_manifest(variant: JobVariant, manifest: Manifest) -> Manifest:
    """`manifest` with its train counts checked against the split file its hash names (policy on facts).

    The split paths must stay in the manifest's directory inside the project; the train file must have the
    size and sha256 the manifest records; its examples and tokens are counted again (with the manifest's
    tiktoken encoding; a Hugging Face tokenizer is not named precisely enough to reload, so there o200k_base
    counts, and the larger of the two figures is used) and a manifest claiming fewer is refused. Counts are
    kept by content (sha256) for the process and in the user's own cache outside the checkout, so a render of
    many jobs and environments, and the next interactive render, tokenize each file once.
    """
    root = paths.project_root().resolve()
    dataset = paths.project_root() / variant.definition.dataset
    directory = (dataset if dataset.is_dir() else dataset.parent).resolve()
    if not directory.is_relative_to(root):
        raise variant.error(f"dataset {variant.definition.dataset} lies outside the project", "dataset",
                            "prepare the dataset under datasets/ in this repository")
    for split, file in manifest.files.items():
        resolved = (directory / file.path).resolve()
        if resolved.parent != directory:
            raise variant.error(f"the manifest's {split} split names {file.path!r}, outside its directory", "dataset",
                                "re-run `ftops data prepare`; split files lie beside manifest.json")
    train = manifest.files["train"]
    path = directory / train.path
    if not path.is_file():
        if _require_split_files:
            raise variant.error(f"the train split {path.name} of {variant.definition.dataset} is missing", "dataset",
                                "run `ftops data prepare` (apply uploads the split files)")
        return manifest  # render without the data: apply's re-render checks the counts before anything runs
    examples, tokens, longest = _counts(path, train.sha256, train.bytes, manifest, variant)
    claimed = (train.examples, train.tokens)
    if _tiktoken(manifest.tokenizer):
        if claimed != (examples, tokens):
            raise variant.error(
                f"{variant.definition.dataset} claims {train.examples:,} examples and {train.tokens:,} tokens in "
                f"{train.path}; the file holds {examples:,} and {tokens:,}", "dataset",
                "re-run `ftops data prepare`; manifests are written by ftops, not edited")
    elif train.examples != examples or train.tokens < tokens:
        raise variant.error(f"{variant.definition.dataset} claims {train.examples:,} examples and {train.tokens:,} "
                            f"tokens in {train.path}; the file holds {examples:,} examples and at least {tokens:,} "
                            "tokens (o200k_base)", "dataset", "re-run `ftops data prepare`")
    facts = train.model_copy(update={"examples": examples, "tokens": max(tokens, train.tokens),
                                     "max_example_tokens": max(longest, train.max_example_tokens)})
    return manifest.model_copy(update={"files": {**manifest.files, "train": facts}})


def _tiktoken(tokenizer: str) -> bool:
    return not tokenizer.startswith("hf:")


def _counts(path: Path, sha256: str, size: int, manifest: Manifest, variant: JobVariant) -> tuple[int, int, int]:
    """(examples, tokens, longest example) of the split file at `path`, which must hash to `sha256`."""
    from jobs.fsutil import sha256_file

    if path.stat().st_size != size or sha256_file(path) != sha256:
        raise variant.error(f"{path.name} of {variant.definition.dataset} is not the file its manifest hashes "
                            f"(size or sha256 differs)", "dataset", "re-run `ftops data prepare`")
    encoding = manifest.tokenizer if _tiktoken(manifest.tokenizer) else "o200k_base"
    key = (sha256, encoding, manifest.format)
    with _lock:
        if key in _verified:
            return _verified[key]
    counts = _user_cached(key)
    if counts is None:
        from jobs.data.tokens import ModelLimits, TiktokenCounter
        from jobs.data.validate import validate_file

        report = validate_file(path, manifest.format, TiktokenCounter(encoding),
                               ModelLimits(None, None, None, None), workers=1)
        counts = (len(report.totals), sum(report.totals), max(report.totals, default=0))
        _user_cache(key, counts)
    with _lock:
        _verified[key] = counts
    return counts


def _user_cache_file(key: tuple[str, str, str]) -> Path | None:
    """Counts of a split file, by its content, in the user's own cache: never a file in the checkout (even an
    ignored path force-added in a pull request would be one more claim to take on trust). Keyed by the file's
    sha256 (checked just before), the encoding, the format and ftops' version (how it counts)."""
    from jobs import __version__

    base = paths.user_cache_dir()
    sha256, encoding, fmt = key
    return None if base is None else base / "split-counts" / f"{sha256}-{encoding}-{fmt}-{__version__}.json"


def _user_cached(key: tuple[str, str, str]) -> tuple[int, int, int] | None:
    path = _user_cache_file(key)
    try:
        data = json.loads(path.read_text()) if path is not None and path.is_file() else None
        counts = tuple(int(data[name]) for name in ("examples", "tokens", "longest")) if data else None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or odd: count again
    return counts if counts and all(n >= 0 for n in counts) else None


def _user_cache(key: tuple[str, str, str], counts: tuple[int, int, int]) -> None:
    from jobs.fsutil import atomic_write

    path = _user_cache_file(key)
    if path is None:
        return
    try:
        atomic_write(path, json.dumps(dict(zip(("examples", "tokens", "longest"), counts))))
    except OSError:
        pass  # a read-only home only costs a recount next time


def estimate_job_cost(variant: JobVariant, env: Environment, manifest: Manifest,
                      verified: dict[str, Manifest] | None = None) -> float | None:
    """Estimated USD for one run of `variant` in `env` (None: no price known and no ceiling to enforce).

    `verified`: manifests already verified in this render, by dataset path (the checks read the file system).
    """
    from jobs.data.estimate import estimate_cost

    job = variant.definition
    if verified is not None and job.dataset in verified:
        manifest = verified[job.dataset]
    else:
        manifest = verified_manifest(variant, manifest)
        if verified is not None:
            verified[job.dataset] = manifest
    try:
        if job.provider == "azure-openai":
            # Without manifest_dir the manifest's totals are used: they can only overstate the cost.
            estimate = estimate_cost(manifest, provider="azure-openai", model=job.base_model.azure_id,
                                     epochs=job.hyperparameters.epochs, training_type=job.azure.training_type, env=env)
            return estimate.cost_usd
        training = env.require_aws().training
        spot = training.spot if job.compute.spot is None else job.compute.spot
        estimate = estimate_cost(manifest, provider="sagemaker", model=job.base_model.hf_model_id,
                                 epochs=job.hyperparameters.epochs, instance_type=job.compute.instance_type,
                                 spot=spot, env=env)
        # The estimator prices one instance; data-parallel jobs bill every instance for the same hours.
        return round(estimate.cost_usd * job.compute.instance_count, 2)
    except FtopsError as err:
        if env.policy.max_cost_per_job_usd is None:
            return None
        field = "compute.instance_type" if job.provider == "sagemaker" else "base_model.azure_model"
        raise variant.error(f"cannot estimate the cost for the ceiling: {err.message}", field, err.hint) from None


def cost_key(variant: JobVariant, env: Environment, dataset_relpath: str) -> tuple[object, ...]:
    """Everything `estimate_job_cost` reads from the job, for memoising it within one environment's render.

    Keep in step with `estimate_job_cost` above: two jobs with equal keys get the same estimate (most jobs of a
    fork share dataset, model, epochs and instance, so one render asks the estimator only a few times).
    """
    job = variant.definition
    if job.provider == "azure-openai":
        return (job.provider, dataset_relpath, job.base_model.azure_id, job.hyperparameters.epochs,
                job.azure.training_type)
    return (job.provider, dataset_relpath, job.base_model.hf_model_id, job.hyperparameters.epochs,
            job.compute.instance_type, job.compute.spot, job.compute.instance_count)
