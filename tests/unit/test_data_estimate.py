"""`ftops data estimate` and `estimate_cost`: the epoch rule, the per-example cap, prices and overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.config.environment import load_environment
from jobs.data.estimate import apply_overrides, estimate_cost, price_file
from jobs.data.manifest import read_manifest
from jobs.data.prepare import prepare
from jobs.data.tokens import resolve
from jobs.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PREPARED = ROOT / "datasets" / "it-helpdesk" / "prepared"


@pytest.mark.parametrize(("examples", "epochs"), [(10, 10), (20, 5), (30, 3), (100, 3), (8333, 3), (8334, 2),
                                                  (30000, 1), (3, 25)])
def test_default_epochs_follow_the_documented_rule(examples: int, epochs: int) -> None:
    assert price_file().azure_openai.epochs_rule.epochs(examples) == epochs


def test_azure_cost_is_billed_tokens_times_price() -> None:
    manifest = read_manifest(PREPARED)
    estimate = estimate_cost(manifest, model="gpt-4.1-mini", epochs=2)
    train = manifest.files["train"]
    assert estimate.billed_tokens == train.tokens * 2
    assert estimate.cost_usd == round(train.tokens * 2 / 1e6 * 5.00, 2)
    global_standard = estimate_cost(manifest, model="gpt-4.1-mini", epochs=2, training_type="GlobalStandard")
    assert global_standard.price_per_1m_tokens == pytest.approx(4.5)


def test_examples_over_the_limit_count_only_up_to_it(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "word " * n}]}
            for n in (100, 40_000, 200) * 10]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    counter, limits = resolve("gpt-4.1-mini", None)  # 65,536 per example: nothing dropped
    prepare(source, tmp_path / "out", counter, limits, split=(1.0, 0.0, 0.0))
    manifest = read_manifest(tmp_path / "out")
    nano = estimate_cost(manifest, model="gpt-4.1-nano", epochs=1, manifest_dir=tmp_path / "out")  # 32,768 limit
    assert nano.train_tokens < manifest.files["train"].tokens
    per_example = sorted({t for t in _totals(tmp_path / "out" / "train.jsonl")})
    assert nano.train_tokens == 10 * (per_example[0] + per_example[1] + 32_768)


def _totals(path: Path) -> list[int]:
    from jobs.data.validate import validate_file

    counter, limits = resolve("gpt-4.1-mini", None)
    return list(validate_file(path, "chat", counter, limits, workers=1).totals)


def test_sagemaker_hours_on_demand_and_spot() -> None:
    manifest = read_manifest(PREPARED)
    estimate = estimate_cost(manifest, provider="sagemaker", instance_type="ml.g5.2xlarge", spot=True)
    instance = price_file().sagemaker.instances["ml.g5.2xlarge"]
    hours = manifest.files["train"].tokens * 3 / instance.tokens_per_second / 3600 + 0.15
    assert estimate.hours == pytest.approx(hours, abs=1e-3)
    assert estimate.on_demand_usd == round(hours * instance.on_demand_per_hour, 2)
    assert estimate.cost_usd == estimate.spot_usd == round(hours * instance.spot_per_hour, 2)


def test_environment_overrides_win_and_unknown_ones_are_errors() -> None:
    prices = apply_overrides(price_file(), {"azure-openai/gpt-4.1-mini/training_per_1m_tokens": 1.0,
                                            "sagemaker/ml.g5.2xlarge/spot_per_hour": 0.1})
    assert prices.azure_openai.models["gpt-4.1-mini"].training_per_1m_tokens == 1.0
    assert prices.sagemaker.instances["ml.g5.2xlarge"].spot_per_hour == 0.1
    with pytest.raises(ConfigError, match="data.price_overrides"):
        apply_overrides(price_file(), {"azure-openai/gpt-9/training_per_1m_tokens": 1.0})


def test_override_from_environment_file(monkeypatch) -> None:
    env = load_environment("local")
    patched = env.model_copy(update={"data": env.data.model_copy(
        update={"price_overrides": {"azure-openai/gpt-4.1-mini/training_per_1m_tokens": 10.0}})})
    estimate = estimate_cost(read_manifest(PREPARED), model="gpt-4.1-mini", epochs=1, env=patched)
    assert estimate.price_per_1m_tokens == 10.0 and estimate.overridden == ["azure-openai/gpt-4.1-mini/training_per_1m_tokens"]


def test_cli_json_and_errors(ftops) -> None:
    result = ftops("data", "estimate", PREPARED, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["epochs"] == 3 and data["epochs_source"].startswith("auto") and data["cost_usd"] > 0
    result = ftops("data", "estimate", PREPARED, "--provider", "sagemaker", "--instance", "ml.nope")
    assert result.exit_code == 1 and "ml.g5.2xlarge" in result.stderr
    result = ftops("data", "estimate", PREPARED.parent)
    assert result.exit_code == 1 and "manifest.json" in result.stderr


def test_a_raw_dataset_is_refused_with_the_prepare_command_to_run(ftops, tmp_path: Path) -> None:
    """`estimate support-chat.jsonl` said `not a valid ftops manifest: Invalid JSON: trailing characters ... (re-run
    ftops data prepare instead of editing the manifest)`."""
    raw = ROOT / "datasets" / "it-helpdesk" / "support-chat.jsonl"
    result = ftops("data", "estimate", raw)
    assert result.exit_code == 1 and "\n" not in result.stderr.strip()
    assert result.stderr.strip() == (
        f"error: {raw}: a dataset, not a prepared one: `ftops data estimate` takes the output of `ftops data prepare` "
        f"(the directory it wrote, or its manifest.json) (run `ftops data prepare {raw} --out DIR`, then pass DIR)")
    notes = tmp_path / "notes.txt"
    notes.write_text("{}")
    result = ftops("data", "estimate", notes)
    assert result.exit_code == 1 and "not a manifest.json: `ftops data estimate` takes the output" in result.stderr
    result = ftops("data", "upload", raw, "--env", "local")
    assert result.exit_code == 1 and "a dataset, not a prepared one: `ftops data upload` takes" in result.stderr
    assert ftops("data", "estimate", PREPARED / "manifest.json").exit_code == 0


def test_upload_of_a_renamed_manifest_names_the_directory_to_pass(ftops, tmp_path: Path) -> None:
    renamed = tmp_path / "x-manifest.json"
    renamed.write_bytes((PREPARED / "manifest.json").read_bytes())
    result = ftops("data", "upload", renamed, "--env", "local")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert f"{renamed}: upload sends the directory `ftops data prepare` wrote" in result.stderr


@pytest.mark.parametrize("args, option", [
    (["--spot"], "--spot"),
    (["--instance", "ml.g5.2xlarge"], "--instance"),
    (["--provider", "sagemaker", "--instance", "ml.g5.2xlarge", "--training-type", "Developer"], "--training-type"),
])
def test_an_option_of_the_other_provider_is_refused_not_ignored(ftops, args, option) -> None:
    result = ftops("data", "estimate", PREPARED, *args)
    assert result.exit_code == 2 and option in result.stderr and "applies to --provider" in result.stderr


def test_epochs_are_bounded_as_in_job_definitions(ftops) -> None:
    from jobs.cli.data import MAX_EPOCHS
    from jobs.config.job import Hyperparameters

    bound = next(m.le for m in Hyperparameters.model_fields["epochs"].metadata if getattr(m, "le", None))
    assert MAX_EPOCHS == bound
    assert ftops("data", "estimate", PREPARED, "--epochs", str(MAX_EPOCHS + 1)).exit_code == 2
    assert ftops("data", "estimate", PREPARED, "--epochs", str(MAX_EPOCHS)).exit_code == 0
