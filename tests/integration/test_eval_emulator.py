"""`ftops eval` against the Azure emulator: the gate's verdicts, Batch API == per request, a 429 storm ridden
out, an interrupted evaluation resumed without repeating requests (counted at the emulator)."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from pathlib import Path

import pytest

from jobs.errors import CloudError
from jobs.eval.config import EvalConfig, GateConfig
from jobs.eval.evaluate import Targets, evaluate
from jobs.eval.examples import load_examples
from jobs.eval.store import AnswerStore
from jobs.eval.targets.azure_openai import AzureOpenAITarget, make_client
from jobs.eval.targets.base import Throttle

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SUB, RG, ACCOUNT = "00000000-0000-4000-8000-000000000000", "ftops-eval-rg", "ftops-eval-openai"
BASE_MODEL = "gpt-4.1-mini-2025-04-14"


def http(endpoint: str, method: str, path: str, body: dict | None = None) -> dict:
    sep = "&" if "?" in path else "?"
    url = f"{endpoint}{path}{sep}api-version=2025-09-01" if path.startswith("/subscriptions") else f"{endpoint}{path}"
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer t"})
    with urllib.request.urlopen(request) as response:
        raw = response.read()
    return json.loads(raw) if raw else {}


def arm_ready(endpoint: str, path: str, body: dict) -> None:
    http(endpoint, "PUT", path, body)
    for _ in range(200):
        state = http(endpoint, "GET", path).get("properties", {}).get("provisioningState")
        if state == "Succeeded":
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never succeeded")


def helpdesk_examples(n: int = 24) -> list[dict]:
    rows = [json.loads(line) for line in (ROOT / "datasets/it-helpdesk/support-chat.jsonl").read_text().splitlines()]
    return rows[:n]


def fine_tune(client, rows: list[dict]) -> str:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    file_id = client.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=file_id, suffix="eval")
    for _ in range(400):
        job = client.fine_tuning.jobs.retrieve(job.id)
        if job.status in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert job.status == "succeeded", job
    return job.fine_tuned_model


@pytest.fixture(scope="module")
def deployments(azure_emulator, tmp_path_factory) -> dict:
    """Three deployments on the emulator: a model fine-tuned on the task, one fine-tuned on something else,
    and the base model. The test examples are the task's own data, so the first has memorised them."""
    endpoint = azure_emulator.endpoint
    http(endpoint, "POST", "/_emulator/openai/settings", {"job_duration_s": 0.3, "file_processing_s": 0})
    http(endpoint, "POST", "/_emulator/batch/settings", {"batch_duration_s": 0.5})
    rg = f"/subscriptions/{SUB}/resourcegroups/{RG}"
    http(endpoint, "PUT", rg, {"location": "swedencentral"})
    account = f"{rg}/providers/Microsoft.CognitiveServices/accounts/{ACCOUNT}"
    arm_ready(endpoint, account, {"kind": "OpenAI", "sku": {"name": "S0"}, "location": "swedencentral",
                                  "properties": {"customSubDomainName": ACCOUNT}})
    client = make_client(f"{endpoint}/accounts/{ACCOUNT}", lambda: "emulator-token")  # the account's data plane
    rows = helpdesk_examples()
    good = fine_tune(client, rows)
    unrelated = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                               {"role": "assistant", "content": str(2 * i)}]} for i in range(20)]
    bad = fine_tune(client, unrelated)
    for name, model, version in (("ft-good", good, "1"), ("ft-bad", bad, "1"), ("base", "gpt-4.1-mini", "2025-04-14")):
        arm_ready(endpoint, f"{account}/deployments/{name}",
                  {"sku": {"name": "Standard", "capacity": 1},
                   "properties": {"model": {"format": "OpenAI", "name": model, "version": version}}})
    test_file = tmp_path_factory.mktemp("eval") / "test.jsonl"
    test_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"endpoint": endpoint, "client": client, "examples": load_examples(test_file)}


def faults(endpoint: str, rules: list[dict] | None) -> None:
    if rules is None:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_emulator/faults", method="DELETE"))
    else:
        http(endpoint, "POST", "/_emulator/faults", {"rules": rules})


CONFIG = EvalConfig(metrics=("rougeL", "exact_match", "f1"), perturbations=("case", "whitespace"),
                    gate=GateConfig("rougeL", 0.2, 0.1), out_of_domain=False, resamples=200)


def target(deployments, name: str, **kw) -> AzureOpenAITarget:
    kw.setdefault("throttle", Throttle(base_backoff_s=0.05))
    return AzureOpenAITarget(deployments["client"], name, poll_interval_s=0.1, **kw)


def run(deployments, tmp_path: Path, ft: str, *, config=CONFIG, batch=False, **kw):
    targets = Targets(target(deployments, ft, batch=batch, **kw), target(deployments, "base", batch=batch, **kw))
    with AnswerStore(tmp_path / "answers.jsonl") as store:
        return evaluate(config, deployments["examples"], targets, store, job="helpdesk", env="local", batch=batch), targets


def test_memorised_model_passes_and_unrelated_model_fails_naming_the_metric(deployments, tmp_path):
    good, _ = run(deployments, tmp_path / "good", "ft-good")
    assert good["gate"]["passed"], good["gate"]["reasons"]
    assert good["metrics"]["exact_match"]["fine_tuned"]["value"] > 0.9  # a few prompts repeat with other answers
    bad, _ = run(deployments, tmp_path / "bad", "ft-bad")
    assert not bad["gate"]["passed"]
    reason = bad["gate"]["reasons"][0]
    assert reason.startswith("rougeL: fine-tuned ") and "below the required +0.200" in reason


def test_batch_api_gives_the_same_scores_as_per_request(deployments, tmp_path):
    # The Batch API serves base models only (Azure does not batch fine-tuned ones): both sides are the base model.
    per_request, _ = run(deployments, tmp_path / "direct", "base")
    batched, targets = run(deployments, tmp_path / "batch", "base", batch=True)
    assert batched["metrics"] == per_request["metrics"]
    assert batched["robustness"] == per_request["robustness"]
    assert targets.fine_tuned.requests_sent == 0  # every answer came through the Batch API
    batches = deployments["client"].batches.list()
    assert any(b.status == "completed" and b.request_counts.total == 72 for b in batches)


def test_the_batch_api_answers_nothing_for_a_fine_tuned_deployment(deployments, tmp_path):
    # (`ftops eval --batch` refuses this up front; here the target is driven directly.) Every batch line for the
    # fine-tuned deployment fails, so each one is asked again per request; the base model's come from the batch.
    _, targets = run(deployments, tmp_path / "ft-batch", "ft-good", batch=True)
    assert targets.fine_tuned.requests_sent == 72 and targets.base.requests_sent == 0


def test_a_429_storm_is_ridden_out_without_losing_a_result(deployments, tmp_path):
    faults(deployments["endpoint"], [{"method": "POST", "path": "chat/completions", "status": 429,
                                      "retry_after": 0.2, "times": 40}])
    try:
        result, targets = run(deployments, tmp_path, "ft-good", concurrency=8)
    finally:
        faults(deployments["endpoint"], None)
    assert targets.fine_tuned.throttle.throttled + targets.base.throttle.throttled == 40
    lines = (tmp_path / "answers.jsonl").read_text().splitlines()
    assert len(lines) == 24 * 3 * 2  # every answer, once
    assert result["metrics"]["exact_match"]["fine_tuned"]["value"] > 0.9


def test_an_interrupted_evaluation_resumes_without_repeating_finished_requests(deployments, tmp_path):
    # 30 requests get through, then the service fails hard (a 400 no retry helps): the run stops with an error.
    faults(deployments["endpoint"], [{"method": "POST", "path": "chat/completions", "times": 30},
                                     {"method": "POST", "path": "chat/completions", "status": 400, "times": 0}])
    try:
        with pytest.raises(CloudError, match="42 request\\(s\\) failed"):
            run(deployments, tmp_path, "ft-good", concurrency=1)
    finally:
        faults(deployments["endpoint"], None)
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 30  # kept as they arrived
    # A pass-through rule counts what the resumed run asks the emulator: only the 72 * 2 - 30 missing answers.
    faults(deployments["endpoint"], [{"method": "POST", "path": "chat/completions", "times": 0}])
    try:
        result, _ = run(deployments, tmp_path, "ft-good", concurrency=4)
        hits = http(deployments["endpoint"], "GET", "/_emulator/faults")["rules"][0]["hits"]
    finally:
        faults(deployments["endpoint"], None)
    assert hits == 72 * 2 - 30
    assert result["requests"]["fine_tuned"] == {"asked": 72 - 30, "reused": 30}
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 144


@pytest.fixture(scope="module")
def task_deployment(deployments) -> str:
    """A model fine-tuned on the prepared train split; the CLI evaluates it on the unseen test split. The CLI
    reads what a deployment serves from ARM, on the `local` environment's own account: both deployments the CLI
    test names live there. The model was trained in the fixture's own account, so its deployment in `local`
    names that account as its source (Azure's cross-resource deployment: each account's data plane is its own)."""
    from jobs.config.environment import load_environment
    from jobs.config.resolved import resolved_azure

    rows = [json.loads(line) for line in (ROOT / "datasets/it-helpdesk/prepared/train.jsonl").read_text().splitlines()]
    model = fine_tune(deployments["client"], rows)
    local = resolved_azure(load_environment("local"))
    group = f"/subscriptions/{local.subscription_id}/resourcegroups/{local.resource_group}"
    http(deployments["endpoint"], "PUT", group, {"location": local.location})
    arm_ready(deployments["endpoint"], local.openai_account_id,
              {"kind": "OpenAI", "sku": {"name": "S0"}, "location": local.location,
               "properties": {"customSubDomainName": local.openai_account}})
    trained_in = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{ACCOUNT}"
    for name, served, version, source in (("ft-task", model, "1", {"source": trained_in}),
                                          ("base", "gpt-4.1-mini", "2025-04-14", {})):
        arm_ready(deployments["endpoint"], f"{local.openai_account_id}/deployments/{name}",
                  {"sku": {"name": "Standard", "capacity": 1},
                   "properties": {"model": {"format": "OpenAI", "name": served, "version": version, **source}}})
    return "ft-task"


def test_cli_eval_writes_reports_and_promote_reads_it(deployments, task_deployment, azure_local, ftops, tmp_path):
    out = tmp_path / "eval"
    result = ftops("eval", "helpdesk-gpt41mini", "--env", "local", "--fine-tuned", f"azure:{task_deployment}",
                   "--base", "azure:base", "--no-judge", "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    evaluation = json.loads(result.stdout)
    assert evaluation["gate"]["passed"] and evaluation["examples"] == 28  # the committed test split
    assert set(evaluation["robustness"]) == {"typos", "out_of_domain"}
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.html", "evaluation.json", "answers.jsonl"}
    assert "**Gate: PASSED** on `rougeL`" in (out / "report.md").read_text()

    # A deployment named by hand is not the job's trained model: its evaluation cannot approve anything.
    refused = ftops("models", "approve", "helpdesk-gpt41mini", "--env", "local", "--no-judge",
                    "--evaluation", out / "evaluation.json")
    assert refused.exit_code == 1
    assert "is stale: it scored a target given by hand, not the job's trained model" in refused.stderr
