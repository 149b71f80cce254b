"""`ftops data`: validate, prepare, estimate and upload fine-tuning datasets."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from jobs.cli.output import (EnvOption, JsonOption, console, emit, err_console, markup_free, path_argument,
                             path_option, progress)
from jobs.errors import FtopsError

app = typer.Typer(help="Validate, clean, split, count, estimate and upload fine-tuning datasets.", no_args_is_help=True)


class Format(str, Enum):
    chat = "chat"
    preference = "preference"
    completion = "completion"
    classification = "classification"


# jobs.data.tokens.DEFAULT_MODEL, written out: importing it here would load pydantic for every `--help`
# (tests/unit/test_cli_output.py keeps the two equal). In the help text, not in Typer's `[default: ...]`: rich
# cuts a word longer than the help column (80 columns outside a terminal) with an ellipsis.
DEFAULT_MODEL_SHOWN = "gpt-4.1-mini-2025-04-14"
MAX_EPOCHS = 50  # jobs.config.job.Hyperparameters.epochs' bound (the same test keeps them equal)
# jobs.config.data.MAX_SEED, written out for the same reason (tests/unit/test_data_prepare.py keeps the two equal).
MAX_SEED = 2**31 - 1
FormatOption = typer.Option(None, "--format", "-f", help="Dataset format; detected from the first lines if omitted.")
ModelOption = typer.Option(None, "--model", "-m",
                           help="Azure OpenAI model whose tokenizer and limits apply (one of models.yaml in jobs/reference). "
                                f"Default: {DEFAULT_MODEL_SHOWN}.")
TokenizerOption = typer.Option(None, "--tokenizer", exists=True, file_okay=False,
                               help="Local Hugging Face tokenizer directory (SageMaker models); overrides --model.")
MaxLengthOption = typer.Option(None, "--max-length", min=1,
                               help="Training truncation length in tokens (warns when answers would be cut).")


def _issue_lines(kind: str, issues: list[dict], counts: dict[str, int], file: str) -> None:
    style = "red" if kind == "error" else "yellow"
    for issue in issues:
        where = f"{file}:{issue['line']}" if issue["line"] else file
        err_console.print(f"[{style}]{kind}[/] {escape(where)} [bold]{issue['code']}[/] {escape(issue['message'])}",
                          soft_wrap=True)
    hidden = sum(counts.values()) - len(issues)
    if hidden > 0:
        err_console.print(f"[{style}]... and {hidden} more {kind}s[/] (counts per code: "
                          f"{', '.join(f'{code} {n}' for code, n in counts.items())})")


def _stats_table(payload: dict) -> Table:
    table = Table("", "min", "mean", "p50", "p95", "max", title=f"{markup_free(payload['file'])}: {payload['format']}, "
                  f"tokenizer {payload['tokenizer']}", title_justify="left")
    for name, stats in (("tokens per example", payload["tokens"]["per_example"]),
                        ("assistant tokens per example", payload["tokens"]["assistant_per_example"]),
                        ("messages per example", payload["messages_per_example"])):
        table.add_row(name, *(str(stats[key]) for key in ("min", "mean", "p50", "p95", "max")))
    return table


@app.command()
def validate(
    file: Path = path_argument(..., help="JSONL dataset to check."),
    format: Format | None = FormatOption,
    model: str | None = ModelOption,
    tokenizer: Path | None = TokenizerOption,
    max_length: int | None = MaxLengthOption,
    max_errors: int = typer.Option(100, "--max-errors", min=1, help="Report at most this many errors and warnings "
                                                                    "(all are counted)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes to use.",
                                       show_default="every core"),
    against_train: Path | None = path_option(None, "--against-train", metavar="FILE",
                                              help="A training file: report examples of FILE whose prompt is also "
                                                   "in it (exit 1 when any), e.g. a test split against its train."),
    as_json: bool = JsonOption,
) -> None:
    """Check every line (format, roles, weights, tool calls, token limits), count tokens; exit 1 on any error."""
    from jobs.data.tokens import resolve
    from jobs.data.validate import validate_file

    counter, limits = resolve(model, tokenizer)
    size = file.stat().st_size if file.is_file() else 0
    with progress(disable=as_json or size < (16 << 20)) as bar:
        task = bar.add_task(f"validating {escape(file.name)}", total=size)
        report = validate_file(file, format.value if format else None, counter, limits, max_length=max_length,
                               max_reported=max_errors, workers=workers,
                               on_progress=lambda done, total: bar.update(task, completed=done))
    payload = report.as_dict()
    overlap = None
    if against_train is not None:
        from jobs.data.leaks import prompt_overlap

        overlap = prompt_overlap(file, against_train, report.format)
        payload["against_train"] = overlap.as_dict()

    def human(payload: dict) -> None:
        _issue_lines("error", payload["errors"], payload["error_counts"], payload["file"])
        _issue_lines("warning", payload["warnings"], payload["warning_counts"], payload["file"])
        console.print(_stats_table(payload))
        tokens = payload["tokens"]
        console.print(f"{payload['examples']} examples, {payload['valid_examples']} valid; "
                      f"{tokens['total']:,} tokens ({tokens['assistant']:,} trained-on assistant tokens)")
        if payload.get("labels"):
            console.print("labels: " + escape(", ".join(f"{label} {n}" for label, n in payload["labels"].items())))
        errors, warnings = sum(payload["error_counts"].values()), sum(payload["warning_counts"].values())
        verdict = "[green]valid[/]" if not errors else f"[red]{errors} error(s)[/]"
        console.print(f"{verdict}, {warnings} warning(s)")
        if "against_train" in payload:
            found = payload["against_train"]
            for entry in found["lines"]:
                err_console.print(f"[red]error[/] {escape(payload['file'])}:{entry['line']} [bold]E_PROMPT_IN_TRAIN"
                                  f"[/] the same prompt is in {escape(found['train'])}:{entry['train_line']}",
                                  soft_wrap=True)
            more = found["overlapping_examples"] - len(found["lines"])
            if more > 0:
                err_console.print(f"[red]... and {more} more[/] examples whose prompt is in {escape(found['train'])}")
            console.print(f"{found['overlapping_examples']} example(s) share a prompt with {escape(found['train'])}")

    emit(payload, as_json, human)
    if not report.ok or (overlap is not None and overlap.examples):
        raise typer.Exit(1)


def _parse_split(value: str | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not three comma-separated fractions, e.g. 0.8,0.1,0.1") from None
    if len(parts) != 3:
        raise typer.BadParameter(f"{value!r} must have three parts: train,validation,test")
    return parts  # type: ignore[return-value]


def _split_table(manifest: dict, title: str) -> Table:
    table = Table("split", "examples", "tokens", "trained", "max/ex.", "bytes", "sha256", title=title,
                  title_justify="left")
    for name, entry in manifest["files"].items():
        table.add_row(name, str(entry["examples"]), f"{entry['tokens']:,}", f"{entry['assistant_tokens']:,}",
                      str(entry["max_example_tokens"]), f"{entry['bytes']:,}", entry["sha256"][:12])
    return table


@app.command()
def prepare(
    file: Path = path_argument(..., help="JSONL dataset to clean and split."),
    out: Path = path_option(..., "--out", "-o", help="Directory for the train, validation and test files and manifest.json."),
    split: str | None = typer.Option(None, "--split", help="train,validation,test fractions, e.g. 0.8,0.1,0.1.",
                                   show_default="the environment's data.split"),
    seed: int | None = typer.Option(None, "--seed", min=0, max=MAX_SEED, help="Split seed.",
                                  show_default="the environment's data.seed"),
    dedupe: bool = typer.Option(False, "--dedupe", help="Drop exact duplicates (after normalisation)."),
    group_by: str | None = typer.Option(None, "--group-by", help="Top-level field whose value keeps related "
                                                                 "examples in one split."),
    format: Format | None = FormatOption,
    model: str | None = ModelOption,
    tokenizer: Path | None = TokenizerOption,
    env: str = EnvOption,
    as_json: bool = JsonOption,
) -> None:
    """Clean, drop invalid examples (with line and reason), dedupe, split deterministically, write a manifest."""
    from jobs.config.environment import load_environment
    from jobs.data.prepare import prepare as run_prepare
    from jobs.data.tokens import resolve

    settings = load_environment(env).data
    counter, limits = resolve(model, tokenizer)
    with err_console.status(f"preparing {escape(file.name)}...", spinner="dots"):
        report = run_prepare(file, out, counter, limits, fmt=format.value if format else None,
                             split=_parse_split(split) or settings.split,
                             seed=settings.seed if seed is None else seed, dedupe=dedupe, group_by=group_by)

    def human(payload: dict) -> None:
        for entry in payload["dropped"][:20]:
            err_console.print(f"[yellow]dropped[/] {escape(file.name)}:{entry['line']} [bold]{entry['code']}[/] "
                              f"{escape(entry['reason'])}", soft_wrap=True)
        dropped = sum(payload["dropped_counts"].values())
        if dropped > 20:
            err_console.print(f"[yellow]... {dropped - 20} more dropped[/] (all listed in manifest.json up to 1000)")
        for warning in payload["warnings"]:
            err_console.print(f"[yellow]warning[/] {escape(warning)}")
        manifest = payload["manifest"]
        console.print(_split_table(manifest, f"{escape(manifest['source'])} -> {escape(payload['out'])}"))
        stripped = ", ".join(f"{key} ({n})" for key, n in payload["stripped_keys"].items())
        console.print(f"read {payload['read']} examples, kept {payload['kept']}, dropped {dropped}"
                      + (f"; removed keys: {escape(stripped)}" if stripped else ""))
        if payload["moved_for_shared_prompts"]:
            console.print(f"moved {payload['moved_for_shared_prompts']} examples to another split than grouping "
                          f"alone gave: {payload['joined_units']} group(s) shared a prompt with another group, so "
                          "they were kept in one split")
        console.print(f"dataset id [bold]{payload['dataset_id']}[/] (seed {manifest['seed']}, split "
                      f"{'/'.join(str(part) for part in manifest['split'])}"
                      + (f", grouped by {escape(manifest['group_by'])}" if manifest["group_by"] else "") + ")")

    emit(report.as_dict(), as_json, human)


class Provider(str, Enum):
    azure_openai = "azure-openai"
    sagemaker = "sagemaker"


class TrainingTypeChoice(str, Enum):
    Standard = "Standard"
    GlobalStandard = "GlobalStandard"
    Developer = "Developer"


@app.command()
def estimate(
    directory: Path = path_argument(..., help="A directory written by `ftops data prepare` (or its manifest.json)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Azure OpenAI model; for SageMaker, the model name "
                                                                 f"shown in the estimate. Default: {DEFAULT_MODEL_SHOWN}."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, max=MAX_EPOCHS, help="Epochs.",
                                   show_default="the provider's rule"),
    provider: Provider = typer.Option(Provider.azure_openai, "--provider", help="Where the job trains."),
    instance: str | None = typer.Option(None, "--instance", help="SageMaker instance type, e.g. ml.g5.2xlarge."),
    spot: bool = typer.Option(False, "--spot", help="SageMaker managed spot: budget the spot figure."),
    training_type: TrainingTypeChoice | None = typer.Option(None, "--training-type", show_default="Standard",
                                                            help="Azure OpenAI training type."),
    env: str = EnvOption,
    as_json: bool = JsonOption,
) -> None:
    """Estimate training cost: Azure OpenAI billed tokens, or SageMaker hours on demand and at spot."""
    from jobs.config.environment import load_environment
    from jobs.data.estimate import estimate_cost
    from jobs.data.manifest import manifest_dir, read_manifest

    if provider is Provider.sagemaker and instance is None:
        raise typer.BadParameter("--provider sagemaker needs --instance TYPE", param_hint="--instance")
    # An option of the other provider would change nothing in the estimate: refuse it rather than ignore it.
    if provider is Provider.azure_openai and (instance is not None or spot):
        raise typer.BadParameter("applies to --provider sagemaker only", param_hint="--instance" if instance else "--spot")
    if provider is Provider.sagemaker and training_type is not None:
        raise typer.BadParameter("applies to --provider azure-openai only", param_hint="--training-type")
    manifest = read_manifest(directory, command="`ftops data estimate`")
    result = estimate_cost(manifest, provider=provider.value, model=model, epochs=epochs, instance_type=instance,
                           spot=spot, training_type=(training_type or TrainingTypeChoice.Standard).value,
                           env=load_environment(env),
                           manifest_dir=manifest_dir(directory))

    def human(data: dict) -> None:
        table = Table("", "", title=f"estimate: {data['provider']}, dataset {data['dataset_id']}", title_justify="left",
                      show_header=False)
        rows = [("model", data["model"] or "-"), ("train examples", str(data["train_examples"])),
                ("train tokens", f"{data['train_tokens']:,}"), ("epochs", f"{data['epochs']} ({data['epochs_source']})")]
        if data["provider"] == "azure-openai":
            rows += [("billed tokens", f"{data['billed_tokens']:,}"),
                     ("price", f"${data['price_per_1m_tokens']} per 1M tokens ({data['training_type']})"),
                     ("training cost", f"[bold]${data['cost_usd']:,.2f}[/]")]
        else:
            rows += [("instance", f"{data['instance_type']} at an assumed {data['tokens_per_second']:,.0f} tokens/s"),
                     ("hours", f"{data['hours']:.2f}"), ("on demand", f"${data['on_demand_usd']:,.2f}"),
                     ("spot", f"${data['spot_usd']:,.2f}"),
                     ("budget", f"[bold]${data['cost_usd']:,.2f}[/] ({'spot' if data['spot'] else 'on demand'})")]
        rows.append(("prices", f"{data['price_source']} (retrieved {data['prices_retrieved']})"
                               + (f"; overridden: {', '.join(data['overridden'])}" if data["overridden"] else "")))
        for row in rows:
            table.add_row(*row)
        console.print(table)

    emit(result.model_dump(mode="json"), as_json, human)


class CloudChoice(str, Enum):
    aws = "aws"
    azure = "azure"
    all = "all"


@app.command()
def upload(
    directory: Path = path_argument(..., help="A directory written by `ftops data prepare` (or its manifest.json)."),
    env: str = EnvOption,
    cloud: CloudChoice = typer.Option(CloudChoice.all, "--cloud", help="Where to upload: aws, azure, or all (every "
                                                                       "cloud the environment enables)."),
    as_json: bool = JsonOption,
) -> None:
    """Upload the splits and manifest, content-addressed (a second upload sends nothing), verified by sha256."""
    from jobs.config.environment import load_environment
    from jobs.data.manifest import manifest_dir, read_manifest
    from jobs.data.upload import enabled_clouds, upload_dataset

    environment = load_environment(env)
    clouds = enabled_clouds(environment) if cloud is CloudChoice.all else [cloud.value]
    manifest = read_manifest(directory, command="`ftops data upload`")
    if directory.is_file() and directory.name != "manifest.json":  # upload sends the prepared directory as written
        raise FtopsError("upload sends the directory `ftops data prepare` wrote, with its manifest.json",
                         source=directory, hint=f"pass {directory.parent}, the directory prepare wrote")
    directory = manifest_dir(directory)  # the directory or its manifest.json: the same dataset
    total = (sum(entry.bytes for entry in manifest.files.values()) + (directory / "manifest.json").stat().st_size) \
        * len(clouds)
    with progress(disable=as_json) as bar:
        task = bar.add_task(f"uploading {manifest.dataset_id} to {', '.join(clouds)}", total=total)
        report = upload_dataset(environment, directory, clouds,
                                on_progress=lambda label, sent: bar.advance(task, sent))

    def human(data: dict) -> None:
        table = Table("cloud", "file", "bytes", "status", "sent", "where",
                      title=f"dataset {data['dataset_id']} -> {data['env']}", title_justify="left")
        for obj in data["objects"]:
            style = "dim" if obj["status"] == "skipped" else "green"
            table.add_row(obj["cloud"], obj["name"], f"{obj['bytes']:,}", f"[{style}]{obj['status']}[/]",
                          f"{obj['transferred']:,}", escape(obj["url"]))
        console.print(table)
        console.print(f"transferred {data['transferred']:,} bytes; uploaded objects were read back and verified "
                      "by sha256, skipped ones already held the same sha256")

    emit({**report.model_dump(mode="json"), "transferred": report.transferred}, as_json, human)
