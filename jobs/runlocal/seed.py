"""`ftops local seed-model`: put a tiny offline stand-in base model where a SageMaker job's `model` channel reads.

Real environments hold real weights uploaded once to `base_model.s3_uri`. The emulated `local` environment cannot
download any, and a 0.5B model would crawl on a laptop CPU anyway, so we build a random-weight tiny Llama whose
tokenizer is trained on the job's own prepared data, and upload it to the very URI the renderer puts in the
`model` channel. Losses then fall for real, in seconds; the model's answers mean nothing.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from jobs import paths
from jobs.config.environment import Environment
from jobs.errors import FtopsError

MARKER = "ftops-seed.json"
"""Written beside the weights so nobody mistakes the stand-in for the model it replaces."""


@dataclass
class Target:
    job: str | None
    """The job definition whose `base_model.s3_uri` this is (None for an explicit --s3-uri)."""
    uri: str
    stands_in_for: str | None
    """The model the definition names (`hf_model_id`)."""
    corpus_dir: Path | None
    """The prepared dataset directory whose text trains the tokenizer."""


@dataclass
class Seeded:
    uri: str
    job: str | None
    state: str
    """`uploaded`, or `present` when a model (config.json) was already there and --force was not given."""
    files: int = 0
    bytes: int = 0


def _checked_prefix(s3_uri: str) -> str:
    """--s3-uri under the rule of `base_model.s3_uri`: `s3://` alone or an unset variable in `s3://$BUCKET/...`
    was taken as a key prefix and seeded a model under a key like `s3:/` that no definition can name."""
    from pydantic import ValidationError

    from jobs.config.job import BaseModelRef

    prefix = s3_uri.rstrip("/") + "/"
    try:
        BaseModelRef(s3_uri=prefix)
    except ValidationError:
        raise FtopsError(f"{s3_uri!r} is neither an s3://bucket/prefix/ URI nor a key prefix", field="--s3-uri",
                         hint="e.g. --s3-uri models/qwen2.5-0.5b-instruct/ (in the artifacts bucket), or "
                              "s3://BUCKET/models/NAME/") from None
    return prefix


def targets(env: Environment, job: str | None = None, s3_uri: str | None = None) -> list[Target]:
    """Where to seed: `s3_uri`, or each SageMaker definition's base-model URI as `ftops render` resolves it."""
    from jobs.config.resolved import resolved_aws
    from jobs.render.context import base_model_uri
    from jobs.render.definitions import definition_files, load_variants

    bucket = resolved_aws(env).output_bucket
    if s3_uri:
        return [Target(job, base_model_uri(_checked_prefix(s3_uri), bucket), None, None)]
    found: dict[str, Target] = {}
    for path in definition_files():
        for variant in load_variants(path, env.name):
            definition = variant.definition
            if definition.provider != "sagemaker" or not definition.base_model.s3_uri:
                continue
            if job and job not in (definition.name, variant.name):
                continue
            uri = base_model_uri(definition.base_model.s3_uri, bucket)
            dataset = paths.project_root() / definition.dataset
            found.setdefault(uri, Target(definition.name, uri, definition.base_model.hf_model_id, dataset.parent))
    if not found:
        raise FtopsError(f"no SageMaker job definition{f' named {job!r}' if job else ''} with base_model.s3_uri",
                         field="--job" if job else "definitions/",
                         hint="name a definition under definitions/, or pass --s3-uri")
    return list(found.values())


def _corpus(directory: Path | None):
    """Every message (or line) of the prepared dataset: the tokenizer learns the job's own vocabulary."""
    for path in sorted(directory.glob("*.jsonl")) if directory and directory.is_dir() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            messages = row.get("messages") if isinstance(row, dict) else None
            if isinstance(messages, list):
                yield from (str(m.get("content", "")) for m in messages if isinstance(m, dict))
            else:
                yield line


def seed(env: Environment, chosen: list[Target], *, force: bool = False, hidden: int = 64,
         layers: int = 2) -> list[Seeded]:
    """Build the stand-in once per corpus and upload it to each target that lacks a model (all with `force`)."""
    if not env.emulated:
        raise FtopsError(f"{env.name} is not an emulated environment: seed-model only writes a random-weight "
                         "stand-in for local runs", field="--env",
                         hint="upload the real weights to base_model.s3_uri (e.g. `aws s3 sync`)")
    from transformers.utils import logging as hf_logging

    from jobs.buckets import require_buckets
    from jobs.clients import aws_client
    from jobs.config.resolved import resolved_aws
    from jobs.runlocal import s3io
    from jobs.runlocal.tiny_model import build_causal_lm

    hf_logging.disable_progress_bar()  # one status line is enough; no shard-writing bars
    s3 = aws_client(env, "s3")
    # Every target's bucket before the first upload: a missing one is the stack's to make, never seed-model's.
    require_buckets(env, s3, [s3io.split_uri(target.uri, field="--s3-uri")[0] for target in chosen])
    kms_key = resolved_aws(env).kms_key_arn
    out: list[Seeded] = []
    built: dict[Path | None, Path] = {}
    with tempfile.TemporaryDirectory(prefix="ftops-seed-") as tmp:
        for target in chosen:
            if not force and "config.json" in s3io.list_objects(s3, target.uri):
                out.append(Seeded(target.uri, target.job, "present"))
                continue
            model_dir = built.get(target.corpus_dir)
            if model_dir is None:
                model_dir = Path(tmp) / f"model-{len(built)}"
                # max_positions covers the definitions' max_length (2048 in the examples); a bigger vocabulary
                # than the tests' 512 keeps sequences, and so CPU steps, short.
                build_causal_lm(model_dir, _corpus(target.corpus_dir), hidden=hidden, layers=layers,
                                vocab_size=1024, max_positions=4096)
                built[target.corpus_dir] = model_dir
            (model_dir / MARKER).write_text(json.dumps({
                "stand_in_for": target.stands_in_for, "kind": "random-weight tiny Llama (ftops local seed-model)",
                "hidden_size": hidden, "layers": layers}, indent=2) + "\n")
            files = sorted(p for p in model_dir.rglob("*") if p.is_file())
            for path in files:
                s3io.upload_file(s3, path, s3io.join(target.uri, path.relative_to(model_dir).as_posix()), kms_key)
            out.append(Seeded(target.uri, target.job, "uploaded", len(files), sum(p.stat().st_size for p in files)))
    return out


def as_json(rows: list[Seeded]) -> list[dict]:
    return [asdict(row) for row in rows]
