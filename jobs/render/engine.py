"""Render jobs for an environment: templates -> canonical bytes -> content-hash names -> checks -> files.

Names: `<job>-<env>-<hash8>`, where the hash is the idempotency key: sha256 of every target's rendered content
(with the name-dependent fields as placeholders). Same inputs, same bytes, same name; any change, a new name
(SageMaker job names are unique and immutable). Writing is all-or-nothing: everything renders and passes the
checks in memory, is written into a temporary directory beside the output, then moved into place.
"""

from __future__ import annotations

import gc
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jinja2
import orjson
import yaml

from jobs import paths
from jobs.config.environment import Environment
from jobs.config.resolved import resolved_aws, resolved_azure
from jobs.data.manifest import Manifest
from jobs.errors import ConfigError, FtopsError
from jobs.fsutil import check_replaceable, make_dirs, replace_dir
from jobs.render import context as ctx
from jobs.render import policy, sagemaker_rules
from jobs.render.cost import cost_key, estimate_job_cost
from jobs.render.definitions import JobVariant, definition_files, find_definition, load_variants
from jobs.render.secrets import find_secret, rendered_secrets
from jobs.render.templating import fill, load_template

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CParser = getattr(getattr(yaml, "cyaml", None), "CParser", None)  # libyaml's parser, when PyYAML has it
# What only YAML's composer rejects (an undefined alias, a duplicate anchor, a second document) needs an anchor
# or alias token or a `---`. Such a token never starts right after a letter, digit or dot (those continue a
# scalar, a tag or an anchor name), so text without this pattern passes composing once it parses.
_ANCHOR_OR_ALIAS = re.compile(r"[&*](?<![A-Za-z0-9.][&*])")
_CONTINUES_TOKEN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")
INDEX = "job.json"
# target -> (template, file). A SageMaker job renders `sagemaker` or, for a tuning sweep, `sagemaker-tuning`.
TARGETS: dict[str, tuple[str, str]] = {
    "sagemaker": ("sagemaker/training-job.json.j2", "sagemaker.json"),
    "sagemaker-tuning": ("sagemaker-tuning/tuning-job.json.j2", "sagemaker-tuning.json"),
    "ack": ("ack/training-job.yaml.j2", "ack.yaml"),
    "ack-tuning": ("ack/tuning-job.yaml.j2", "ack.yaml"),
    "azure-openai": ("azure-openai/fine-tuning-job.json.j2", "azure-openai.json"),
    "azure-openai-deployment": ("azure-openai/deployment.json.j2", "azure-openai-deployment.json"),
}
_TOKEN = re.compile(r"[a-z0-9-]+")  # fullmatch: `$` would let a trailing newline through


class Documents(Mapping[str, Any]):
    """Parsed targets by file name, each parsed on first access (checks read only the JSON ones)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = files  # a job's files (never changed once rendered), job.json among them
        self._parsed: dict[str, Any] | None = None  # made on first access: most jobs' documents are never read

    def __getitem__(self, name: str) -> Any:
        if self._parsed is None:
            self._parsed = {}
        if name not in self._parsed:
            if name == INDEX:
                raise KeyError(name)
            data = self._files[name]
            json = name.endswith(".json")
            self._parsed[name] = orjson.loads(data) if json else yaml.load(data, Loader=_Loader)
        return self._parsed[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._files if name != INDEX)

    def __len__(self) -> int:
        return len(self._files) - (INDEX in self._files)


@dataclass
class RenderedJob:
    """One rendered job: its name, the files of its directory (job.json included) and the parsed requests."""

    name: str
    files: dict[str, bytes]
    documents: Mapping[str, Any] = field(repr=False)
    index: dict[str, Any] = field(repr=False)
    _variant: JobVariant | None = field(default=None, repr=False)

    @property
    def variant(self) -> JobVariant:
        """The job variant it was rendered from (jobs rendered in a worker process load theirs on first use)."""
        if self._variant is None:
            path = paths.project_root() / self.index["definition"]
            self._variant = next(v for v in load_variants(path, self.index["environment"])
                                 if v.name == self.index["job"])
        return self._variant


def _dump_json(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _targets(variant: JobVariant) -> list[str]:
    job = variant.definition
    if job.provider == "azure-openai":
        # No aso.yaml here: its model exists only after training (`ftops deploy --gitops` writes it then).
        return ["azure-openai", "azure-openai-deployment"]
    return ["sagemaker-tuning", "ack-tuning"] if job.is_tuning else ["sagemaker", "ack"]


def _canonical(target: str, text: str, variant: JobVariant, parsed: dict[str, Any] | None = None) -> bytes:
    """JSON targets: parsed (kept in `parsed`) and re-dumped with sorted keys. YAML targets: checked to parse,
    kept as written."""
    template = TARGETS[target][0]
    try:
        if TARGETS[target][1].endswith(".json"):
            data = orjson.loads(text)
            if parsed is not None:
                parsed[target] = data
            return _dump_json(data)
        text = _without_blank_lines(text)
        _check_yaml(text)  # well-formed (libyaml); the values are the JSON targets' values
        return text.encode()
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise FtopsError(f"template {template} produced invalid output for {variant.name}: {str(exc).splitlines()[0]}",
                         source=paths.templates_dir() / template, hint="fix the template") from None


# What else str.splitlines() breaks lines at, or str.strip() strips, in ASCII text (tabs included: a line of
# them is blank too).
_ODD_WHITESPACE = "\t\r\x0b\x0c\x1c\x1d\x1e\x1f"
# Literal searches: re finds these short literals in a few kB faster than `in` does.
_EMPTY_LINE, _SPACE_AT_LINE_END = re.compile("\n\n"), re.compile(" \n")
_DOCUMENT_MARKER = re.compile("---")


def _without_blank_lines(text: str) -> str:
    """`text` without its blank (whitespace-only) lines, ending with one line break: a macro may leave one where
    it ends (the shipped templates trim theirs), and they mean nothing in these documents.

    Text with none is found with a few substring checks (splitting it into lines was most of the cost): ASCII
    whose only line break is "\n" and whose only other whitespace is the space has a blank line only where
    a line starts or ends with a break ("\n\n", a leading "\n") or with a space (" \n", a trailing " ").
    """
    if (text.isascii() and not _EMPTY_LINE.search(text) and not _SPACE_AT_LINE_END.search(text)
            and not text.startswith("\n") and not text.endswith(" ")
            and not any(mark in text for mark in _ODD_WHITESPACE)):
        return text if text.endswith("\n") else text + "\n"
    return "\n".join(filter(str.strip, text.splitlines())) + "\n"


def _check_yaml(text: str) -> None:
    """Raise yaml.YAMLError where `yaml.compose` would, without building the node tree when it cannot matter.

    libyaml's parser alone (no Python objects) is an order of magnitude cheaper than composing; composing is
    kept for the rare text that could carry a composer-only error.
    """
    if _CParser is not None:
        _CParser(text).raw_parse()
        if not _DOCUMENT_MARKER.search(text) and not _may_hold_anchor_or_alias(text):
            return
    yaml.compose(text, Loader=_Loader)


def _may_hold_anchor_or_alias(text: str) -> bool:
    """`_ANCHOR_OR_ALIAS.search(text)`, jumping from one `&` or `*` to the next (the regex steps through every
    character, and templates carry few of either: `*` in metric regexes)."""
    for sign in "&*":
        at = text.find(sign)
        while at != -1:
            if at == 0 or text[at - 1] not in _CONTINUES_TOKEN:
                return True
            at = text.find(sign, at + 1)
    return False


def _names(variant: JobVariant, env: Environment, key: str) -> dict[str, str]:
    short = key[:8]
    name = f"{variant.name}-{env.name}-{short}"
    # Tuning job names allow 32 characters; keep the hash, trim the readable part.
    tuning = f"{variant.name[:22 - len(env.name)].rstrip('-')}-{env.name}-{short}"
    base = variant.definition.azure.suffix or variant.definition.name[:9].rstrip("-")
    return {ctx.NAME: name, ctx.KEY: key, ctx.TUNING_NAME: tuning, ctx.SUFFIX: f"{base}-{short}"}


def _encoded(names: dict[str, str]) -> dict[bytes, bytes]:
    # Only plain tokens may be substituted into JSON/YAML text (joined by "-", they are all checked at once).
    if not all(names.values()) or not _TOKEN.fullmatch("-".join(names.values())):
        bad = next(value for value in names.values() if not _TOKEN.fullmatch(value))
        raise FtopsError(f"unsafe generated name {bad!r}")
    return {_ENCODED_PLACEHOLDERS[placeholder]: value.encode() for placeholder, value in names.items()}


_ENCODED_PLACEHOLDERS = {placeholder: placeholder.encode() for placeholder in ctx.PLACEHOLDERS}


# Every placeholder, found in one pass: a name put in is never read again, so a job whose name happens to spell
# another placeholder keeps it (one replace after another would substitute into it).
_PLACEHOLDER = re.compile(b"|".join(re.escape(p.encode()) for p in ctx.PLACEHOLDERS))


def _with_names(data: bytes, names: dict[bytes, bytes]) -> bytes:
    return _PLACEHOLDER.sub(lambda found: names[found[0]], data)


@dataclass
class RenderRun:
    """What every job rendered for one environment shares: read or computed once per `render_environment`."""

    env: Environment
    datasets: dict[str, ctx.Dataset] = field(default_factory=dict)
    costs: dict[tuple[object, ...], float | None] = field(default_factory=dict)
    verified: dict[str, Manifest] = field(default_factory=dict)  # manifests checked against their files
    _resolved: dict[str, Any] = field(default_factory=dict)
    jobs: dict[tuple[str, str], RenderedJob | FtopsError] = field(default_factory=dict)
    """What each (definition file, job name) rendered to in this run. A production environment's promotion.json
    names its source environment's job: rendering that job again would give the same bytes, so it is taken from
    here when the source environment rendered in the same run (names are unique within a file)."""
    peers: dict[str, RenderRun] = field(default_factory=dict)
    """The runs of the other environments of the same render, by name (shared, this one included)."""

    @cached_property
    def environment_names(self) -> list[str]:
        """Listed once per render: every job's overrides are checked against them."""
        from jobs.config.environment import environment_names

        return environment_names()

    def resolved(self, provider: str) -> Any:
        if provider not in self._resolved:
            self._resolved[provider] = (resolved_azure if provider == "azure-openai" else resolved_aws)(self.env)
        return self._resolved[provider]

    def peer(self, env: Environment) -> RenderRun:
        """The run of `env` within this render (made, and kept, when it is not one of the environments asked)."""
        if env.name not in self.peers:
            self.peers[self.env.name] = self
            self.peers[env.name] = RenderRun(env, peers=self.peers)
        return self.peers[env.name]


def render_variant(variant: JobVariant, env: Environment, run: RenderRun | None = None) -> RenderedJob:
    """Render one job variant for `env`; raises its first violation."""
    (result,) = render_batch([variant], env, run)
    if isinstance(result, FtopsError):
        raise result
    return result


@dataclass(slots=True)
class _Pending:
    """A job between phases: what the earlier phases computed for it."""

    variant: JobVariant
    dataset: ctx.Dataset
    cost: float | None
    values: dict[str, Any]
    targets: list[str]
    texts: dict[str, str] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    parsed: dict[str, Any] = field(default_factory=dict)
    """The JSON targets' documents as parsed for their canonical form: with the names' placeholders."""
    names: dict[str, str] = field(default_factory=dict)
    encoded: dict[bytes, bytes] = field(default_factory=dict)  # placeholder: name, encoded
    error: FtopsError | None = None  # what stopped it in an earlier phase


def render_batch(variants: list[JobVariant], env: Environment,
                 run: RenderRun | None = None) -> list[RenderedJob | FtopsError]:
    """Render each of `variants` for `env`: per variant, its job or the first violation it meets.

    The work runs phase by phase over the whole batch (checks and template values for every job, then every
    template, then canonical form, then names, the secret scan and the checks of the output): each phase's
    code stays warm in the CPU's caches, which makes a large render about 15% faster than finishing one job
    before starting the next (benchmarks/RESULTS.md), and the secret scan judges the whole batch at once. A job
    that fails a phase skips the later ones, so each gets the error a job-by-job render gives it.
    """
    if run is None or run.env is not env:
        run = RenderRun(env)
        try:
            return render_batch(variants, env, run)
        finally:
            run.peers.clear()  # it and its peers hold one another: unlinked, they are freed without the cyclic GC
    done = [run.jobs.get((str(variant.path), variant.name)) for variant in variants]
    if any(result is not None for result in done):  # rendered earlier in this run (a promotion's source job)
        fresh = iter(render_batch([v for v, result in zip(variants, done) if result is None], env, run))
        return [result if result is not None else next(fresh) for result in done]
    batch: list[_Pending | FtopsError] = []
    for variant in variants:
        try:
            batch.append(_prepare(variant, env, run))
        except FtopsError as err:
            batch.append(err)
    # Each template is looked up once per batch: the batch renders one version of it (not two, were it edited
    # meanwhile), and without Jinja's freshness check (a stat) per job.
    templates: dict[str, jinja2.Template | FtopsError] = {}
    for pending in batch:
        if isinstance(pending, _Pending):
            key_name = "a" if pending.variant.definition.provider == "azure-openai" else "s"
            try:
                pending.texts = {t: fill(_template(templates, t), **{key_name: pending.values})
                                 for t in pending.targets}
            except FtopsError as err:
                pending.error = err
    for pending in batch:
        if isinstance(pending, _Pending) and pending.error is None:
            try:
                pending.raw = {t: _canonical(t, pending.texts.pop(t), pending.variant, pending.parsed)
                               for t in pending.targets}
                pending.names = _names(pending.variant, env, _idempotency_key(pending))
                pending.encoded = _encoded(pending.names)
            except FtopsError as err:
                pending.error = err
    _check_secrets([pending for pending in batch if isinstance(pending, _Pending) and pending.error is None])
    results = [pending if isinstance(pending, FtopsError) else _finished(pending, env) for pending in batch]
    if env.is_production:  # what serves there is a promoted model: promotion.json says which (for review)
        from jobs.render.promotion import add_promotions

        results = add_promotions(variants, results, env, run)
    for variant, result in zip(variants, results):
        run.jobs.setdefault((str(variant.path), variant.name), result)
    return results


def _template(templates: dict[str, jinja2.Template | FtopsError], target: str) -> jinja2.Template:
    if target not in templates:
        try:
            templates[target] = load_template(TARGETS[target][0])
        except FtopsError as err:
            templates[target] = err
    found = templates[target]
    if isinstance(found, FtopsError):
        raise found
    return found


def _finished(pending: _Pending, env: Environment) -> RenderedJob | FtopsError:
    if pending.error is not None:
        return pending.error
    try:
        return _finish(pending, env)
    except FtopsError as err:
        return err


def _prepare(variant: JobVariant, env: Environment, run: RenderRun) -> _Pending:
    """The checks that need no rendered output, and the values the templates receive."""
    job = variant.definition
    dataset = ctx.load_dataset(variant, run.datasets)
    policy.check_definition(variant, env, run.environment_names)
    question = cost_key(variant, env, dataset.relpath)
    if question in run.costs:
        cost = run.costs[question]
    else:  # an estimate that fails raises for this job's own file and line (and ends the render)
        cost = run.costs[question] = estimate_job_cost(variant, env, dataset.manifest, run.verified)
    policy.check_cost(variant, env, cost)
    context = ctx.azure_context if job.provider == "azure-openai" else ctx.sagemaker_context
    values = context(variant, env, dataset, run.resolved(job.provider))
    return _Pending(variant, dataset, cost, values, _targets(variant))


def _idempotency_key(pending: _Pending) -> str:
    """sha256 of every target's canonical content, names left as placeholders."""
    digest = hashlib.sha256()
    for target in pending.targets:
        digest.update(_FILE_LINES[target])
        digest.update(pending.raw[target])
    return digest.hexdigest()


_FILE_LINES = {target: f"{file}\n".encode() for target, (_, file) in TARGETS.items()}


def _check_secrets(batch: list[_Pending]) -> None:
    """Sets the error of each job whose rendered JSON targets would carry a secret (YAML targets carry the same values,
    from the same context).

    A rendered target is its canonical document with the generated names put in for their placeholders. The
    document is scanned as it stands before that (the placeholders are constant tokens), and the names on their
    own, hashes removed: ftops generates the names as it does the hashes, which `rendered_secret` already judges
    apart from the text around them. So a string that differs between jobs only by their names (an output
    path, a run name) is judged once, not once per job.
    """
    items: list[tuple[Any, tuple[str, ...], bytes | None]] = []
    for pending in batch:
        key = pending.names[ctx.KEY]
        # raw[target] is the parsed document as `_dump_json` writes it: its strings are read from its lines.
        items += [(data, (pending.dataset.dataset_id,), pending.raw[target]) for target, data in pending.parsed.items()]
        items.append(({p: v for p, v in pending.names.items() if p != ctx.KEY}, (key, key[:8]), None))
    found = iter(rendered_secrets(items))
    for pending in batch:
        for target in pending.parsed:
            where = next(found)
            if where and pending.error is None:
                pending.error = pending.variant.error(
                    f"rendered {TARGETS[target][1]} would carry a secret at {where[0]}: {where[1]}",
                    "compute.environment", "remove it from the definition or the template")
        where = next(found)
        if where and pending.error is None:
            pending.error = pending.variant.error(
                f"the generated name {pending.names[where[0]]} would carry a secret: {where[1]}", "name",
                "rename the job")


def _finish(pending: _Pending, env: Environment) -> RenderedJob:
    """Canonical output with the names put in, and the checks of what was rendered."""
    variant, targets, values = pending.variant, pending.targets, pending.values
    job = variant.definition
    raw = pending.raw
    names = pending.names
    key = names[ctx.KEY]
    files = {TARGETS[target][1]: _with_names(raw[target], pending.encoded) for target in targets}
    # The checks read a parse of their own: the job's Documents parse again only for a command that asks, and a
    # render does not keep (nor have the cyclic GC walk) a tree of objects per job.
    if job.provider == "sagemaker":
        request = orjson.loads(files["sagemaker-tuning.json" if job.is_tuning else "sagemaker.json"])
        policy.check_sagemaker_request(variant, request, tuning=job.is_tuning)
        archive = values["archive"]
        sagemaker_rules.check_request(variant, env, request, tuning=job.is_tuning,
                                      archive_files=archive.files if archive.offline else None)
    else:
        policy.check_azure_body(variant, orjson.loads(files["azure-openai.json"]))
    name = names[ctx.NAME]
    cost, dataset = pending.cost, pending.dataset
    index = {
        "name": name,
        "job": variant.name,
        "definition": variant.relpath,
        # The provider that submits it: a tuning sweep is its own kind of SageMaker job (jobs/providers).
        "provider": "sagemaker-tuning" if job.provider == "sagemaker" and job.is_tuning else job.provider,
        "environment": env.name,
        "idempotency_key": key,
        "dataset_manifest": dataset.relpath,
        "dataset_id": dataset.dataset_id,
        "targets": dict(_index_targets(tuple(targets))),
        "trial": variant.trial,
        "estimated_cost_usd": None if cost is None else round(cost, 2),
    }
    if job.provider == "sagemaker":
        index["source_archive"] = values["source_archive"]
        if job.is_tuning:
            index["tuning_job_name"] = names[ctx.TUNING_NAME]
    files[INDEX] = _dump_json(index)
    return RenderedJob(name, files, Documents(files), index, variant)


@cache
def _index_targets(targets: tuple[str, ...]) -> dict[str, str]:
    """job.json's `targets`, the same for every job with these targets (each index gets a copy)."""
    return {("ack" if t.startswith("ack") else t): TARGETS[t][1] for t in targets}


def select_definitions(job: str | None) -> list[Path]:
    if job:
        return [find_definition(job)]
    files = definition_files()
    if not files:
        raise ConfigError("no job definitions", source=paths.project_root() / "definitions",
                          hint="add definitions/<name>.yaml (see the README, section 3)")
    return files


def render_environment(env: Environment, job: str | None = None, *,
                       workers: int | None = None) -> list[RenderedJob]:
    """Render every job (or one definition's jobs) for `env`, in memory; raises on the first violation."""
    return render_environments([env], job, workers=workers)[env.name]


def render_environments(envs: list[Environment], job: str | None = None, *,
                        workers: int | None = None) -> dict[str, list[RenderedJob]]:
    """Render every job (or one definition's jobs) for each of `envs`, in memory; raises on the first violation.

    The first violation is the one rendering the environments one after another, file by file, would meet.
    Large renders use every core (`workers`: default all, 1 keeps it in this process); the files, their order
    and the error raised are the same either way.
    """
    from jobs.render import parallel

    files = select_definitions(job)
    # Without the cyclic GC while rendering: a render allocates many short-lived objects (freed by reference
    # counting; it leaves a few hundred cycles) and the collections it set off, each walking the whole heap of
    # imported modules, were a tenth of its CPU time. What it restores is the caller's setting.
    collecting = gc.isenabled()
    gc.disable()
    try:
        outcomes = parallel.render_files(envs, files, parallel.workers_for(len(files) * len(envs), workers))
    finally:
        if collecting:
            gc.enable()
    rendered_by_env: dict[str, list[RenderedJob]] = {}
    for env in envs:
        found = find_secret(env.tags)
        if found:
            from jobs.config.environment import environment_file

            raise ConfigError(f"looks like a secret: {found[1]}", source=environment_file(env.name),
                              field=f"tags.{found[0]}", hint="tags are visible to everyone; remove the secret")
        rendered: list[RenderedJob] = []
        for jobs_of_file, error in outcomes[env.name]:
            rendered.extend(jobs_of_file)
            if error is not None:
                raise error
        names = [r.name for r in rendered]
        if len(set(names)) != len(names):
            raise ConfigError("two definitions render to the same job name",
                              source=paths.project_root() / "definitions", hint="give each definition its own name")
        rendered_by_env[env.name] = sorted(rendered, key=lambda r: r.name)
    return rendered_by_env


RENDERED_KIND = "rendered tree"

def write_tree(rendered: list[RenderedJob], out: Path, env_name: str, *, only: list[Path] | None = None) -> Path:
    """Write `out/<env>/<job>/...` atomically: build it beside the target, then swap it in.

    Rendering everything replaces `out/<env>` (stale job directories vanish with the swap). Rendering one
    definition (`only`) replaces only the directories that definition owned.
    """
    target = out / env_name
    # A directory ftops did not render (`--out ~ --env dev` names ~/dev), or one edited since, is never replaced.
    check_replaceable(target, RENDERED_KIND, field="--out", legacy=_is_unmarked_tree)
    make_dirs(out, field="--out")
    staging = Path(tempfile.mkdtemp(prefix=f".{env_name}.", suffix=".rendering", dir=out))
    try:
        keep_from_old: list[Path] = []
        if only is not None and target.is_dir():
            owned = {_relpath(p) for p in only}
            for old in sorted(target.iterdir()):
                if old.is_dir() and _owner(old) not in owned:
                    keep_from_old.append(old)
        for old in keep_from_old:
            shutil.copytree(old, staging / old.name)
        # The staging directory is the atomic unit (swapped in whole), so files inside need no rename each.
        for job in rendered:
            (staging / job.name).mkdir()
            for name, data in job.files.items():
                (staging / job.name / name).write_bytes(data)
        replace_dir(staging, target, RENDERED_KIND, field="--out", legacy=_is_unmarked_tree)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _is_unmarked_tree(directory: Path) -> bool:
    """A tree rendered before ownership markers: only job directories, each with a job.json naming its definition
    and nothing but the files render writes (a directory of anything else is not recognised, so not replaced)."""
    names = {INDEX} | {file for _, file in TARGETS.values()}
    try:
        for job_dir in directory.iterdir():
            if job_dir.is_symlink() or not job_dir.is_dir() or not isinstance(_owner(job_dir), str):
                return False
            if any(p.is_symlink() or not p.is_file() or p.name not in names for p in job_dir.iterdir()):
                return False
    except (OSError, ValueError, AttributeError):  # an unreadable or odd job.json: not ftops's
        return False
    return True


def _relpath(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(paths.project_root()))
    except ValueError:
        return str(path)


def _owner(job_dir: Path) -> str | None:
    try:
        return orjson.loads((job_dir / INDEX).read_bytes()).get("definition")
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
