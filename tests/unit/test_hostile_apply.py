"""Issue 17, cases 4, 5 and 7 (ledger/lookup): apply acts only on what was reviewed, and a ledger entry is
trusted only when it and the cloud job agree with the object it sits in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from jobs.apply import engine, lookup
from jobs.apply.ledger import LedgerEntry, object_name
from jobs.apply.rendered import load_rendered
from jobs.apply.verify import verified
from jobs.config.environment import load_environment
from jobs.config.resolved import resolved_aws
from jobs.errors import FtopsError
from jobs.providers import sagemaker
from tests.fixtures.rendered import mocked_aws_buckets, real_dataset, write_dataset, write_job

ENV = "dev"


REPO = Path(__file__).resolve().parents[2]


def _render(project, ftops, out: Path) -> Path:
    real_dataset(project)
    result = ftops("render", "--env", ENV, "--out", out)
    assert result.exit_code == 0, result.stderr
    return next((out / ENV).glob("helpdesk-qwen-lora-*"))


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def test_an_unedited_tree_verifies_and_keys_come_from_the_render(project, ftops, tmp_path):
    job_dir = _render(project, ftops, tmp_path / "rendered")
    env = load_environment(ENV)
    jobs = verified(env, load_rendered(tmp_path / "rendered", ENV))
    key = json.loads((job_dir / "job.json").read_text())["idempotency_key"]
    assert key in {job.idempotency_key for job in jobs}


@pytest.mark.parametrize("change, field", [
    (lambda r: r.update(RoleArn="arn:aws:iam::999999999999:role/admin"), "RoleArn"),
    (lambda r: r["ResourceConfig"].update(InstanceCount=64, InstanceType="ml.p5.48xlarge"),
     "ResourceConfig.InstanceCount"),
    (lambda r: r.update(EnableManagedSpotTraining=False), "EnableManagedSpotTraining"),
    (lambda r: r.pop("CheckpointConfig"), "CheckpointConfig"),
    (lambda r: r["AlgorithmSpecification"].update(TrainingImage="111111111111.dkr.ecr.us-east-1.amazonaws.com/x:1"),
     "AlgorithmSpecification.TrainingImage"),
])
def test_a_hand_edited_request_is_refused_naming_file_and_field(project, ftops, tmp_path, change, field):
    job_dir = _render(project, ftops, tmp_path / "rendered")
    _edit(job_dir / "sagemaker.json", change)
    for command in ("plan", "apply"):
        result = ftops(command, tmp_path / "rendered", "--env", ENV)
        assert result.exit_code == 1
        assert f"{job_dir / 'sagemaker.json'}: {field}: differs from what definitions/helpdesk-qwen-lora.yaml" \
               in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_a_key_in_job_json_is_recomputed_not_read(project, ftops, tmp_path):
    job_dir = _render(project, ftops, tmp_path / "rendered")
    _edit(job_dir / "job.json", lambda index: index.update(idempotency_key="ab" * 32))
    result = ftops("apply", tmp_path / "rendered", "--env", ENV)
    assert result.exit_code == 1
    assert "job.json: idempotency_key: differs" in result.stderr


@pytest.mark.parametrize("change, field", [
    (lambda index: index.update(idempotency_key="../../../evil-key"), "idempotency_key"),
    (lambda index: index["targets"].update(sagemaker="../../../../etc/request.json"), "targets"),
    (lambda index: index.update(name="../other"), "name"),
])
def test_job_json_cannot_name_paths_outside_the_job_directory(project, ftops, tmp_path, change, field):
    job_dir = _render(project, ftops, tmp_path / "rendered")
    _edit(job_dir / "job.json", change)
    result = ftops("plan", tmp_path / "rendered", "--env", ENV)
    assert result.exit_code == 1
    assert f"job.json: {field}" in result.stderr, result.stderr


@pytest.mark.parametrize("content", ["[]", '"x"', "3"])
def test_a_job_json_that_is_not_an_object_is_one_line(project, ftops, tmp_path, content):
    job_dir = _render(project, ftops, tmp_path / "rendered")
    (job_dir / "job.json").write_text(content)
    for command in ("plan", "apply"):
        result = ftops(command, tmp_path / "rendered", "--env", ENV)
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert f"{job_dir / 'job.json'}: expected a JSON object" in result.stderr, result.stderr


def test_a_tree_without_jobs_is_not_an_empty_apply(ftops, tmp_path):
    (tmp_path / "empty" / ENV).mkdir(parents=True)
    for command in ("plan", "apply"):
        result = ftops(command, tmp_path / "empty", "--env", ENV)
        assert result.exit_code == 1
        assert "no rendered jobs for environment 'dev' here" in result.stderr, result.stderr


def test_a_manifest_pointing_elsewhere_is_refused(project, ftops, tmp_path):
    job_dir = _render(project, ftops, tmp_path / "rendered")
    manifest = write_dataset(tmp_path / "elsewhere")
    _edit(job_dir / "job.json", lambda index: index.update(dataset_manifest=str(manifest)))
    result = ftops("apply", tmp_path / "rendered", "--env", ENV)
    assert result.exit_code == 1
    assert "job.json: dataset_manifest: differs" in result.stderr


def test_a_job_the_definitions_no_longer_render_is_refused(project, ftops, tmp_path):
    job_dir = _render(project, ftops, tmp_path / "rendered")
    project.edit_definition("helpdesk-qwen-lora", hyperparameters__epochs=1)
    result = ftops("apply", tmp_path / "rendered", "--env", ENV)
    assert result.exit_code == 1
    assert f"does not render job {job_dir.name}" in result.stderr and "out of date or was edited" in result.stderr


def test_a_key_never_becomes_a_ledger_path():
    with pytest.raises(FtopsError, match="not an idempotency key"):
        object_name("ledger/dev/", "../../../evil-key")
    assert object_name("ledger/dev/", "a" * 64) == f"ledger/dev/{'a' * 64}.json"


# --- the ledger (moto in-process) ------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch, tmp_path):
    with mocked_aws_buckets(monkeypatch, ENV) as env:
        monkeypatch.setattr("jobs.apply.uploads.upload_dataset", lambda env, path, clouds: None)
        manifest = write_dataset(tmp_path / "data")
        for name in ("faq-a", "faq-b"):
            write_job(tmp_path / "rendered", ENV, name, "sagemaker", manifest)
        jobs = load_rendered(tmp_path / "rendered", ENV)
        items = engine.apply(env, jobs)
        assert [item.result for item in items] == ["created", "created"], [i.detail for i in items]
        yield env, jobs, tmp_path / "rendered"


def _rewrite_entry(env, object_key: str, **changes) -> None:
    ledger = sagemaker.SageMaker().ledger(env)
    entry = ledger.get(object_key)
    data = json.loads(entry.to_bytes())
    data.update(changes)
    ledger.client.put_object(Bucket=ledger.bucket, Key=ledger._key(object_key), Body=json.dumps(data).encode())


def test_a_ledger_entry_pointing_at_another_job_is_not_acted_on(aws, ftops, monkeypatch):
    env, (a, b), root = aws
    # These trees are synthetic (no definition renders them): deploy would refuse them as unreviewed before it
    # reads the ledger (tests/unit/test_deploy_reviewed.py); here the ledger check itself is under test.
    monkeypatch.setattr("jobs.apply.verify.verified", lambda env, jobs: jobs)
    _rewrite_entry(env, a.idempotency_key, job_id=b.name)  # the entry now names job b's cloud job
    for command in (["status"], ["cancel"], ["results"]):
        result = ftops("jobs", *command, a.name, "--env", ENV, "--dir", root)
        assert result.exit_code == 1, (command, result.stdout)
        assert f"the ledger names cloud job '{b.name}', which is not the job of key {a.idempotency_key[:12]}" \
            in result.stderr
    result = ftops("deploy", a.name, "--env", ENV, "--dir", root)
    assert result.exit_code == 1 and "not trusted" in result.stderr
    assert lookup.trusted_ref(env, b).job_id == b.name  # b's own entry is still good


def test_a_ledger_entry_copied_into_another_key_is_refused_everywhere(aws, ftops):
    env, (a, b), root = aws
    _rewrite_entry(env, a.idempotency_key, key=b.idempotency_key, job_name=b.name, job_id=b.name)
    result = ftops("jobs", "status", a.name, "--env", ENV, "--dir", root)
    assert result.exit_code == 1 and "carries key" in result.stderr and "not trusted" in result.stderr
    (item,) = [i for i in engine.plan(env, [a]) if i.job == a.name]
    assert item.action == "conflict" and "not trusted" in item.detail
    (applied,) = engine.apply(env, [a])
    assert applied.result == "conflict"


def test_a_corrupt_ledger_object_in_plan_is_named_with_its_location(aws, ftops):
    env, (a, _), root = aws
    ledger = sagemaker.SageMaker().ledger(env)
    ledger.client.put_object(Bucket=ledger.bucket, Key=ledger._key(a.idempotency_key), Body=b"{not json")
    with pytest.raises(FtopsError) as caught:
        engine.plan(env, [a])
    text = str(caught.value)
    assert text.startswith(f"s3://{ledger.bucket}/{ledger._key(a.idempotency_key)}: corrupt ledger entry")
    assert "\n" not in text
    ledger.client.put_object(Bucket=ledger.bucket, Key=ledger._key(a.idempotency_key), Body=b'["a list"]')
    (item,) = engine.apply(env, [a])
    assert item.result == "failed" and "corrupt ledger entry" in item.detail


def test_a_cloud_error_during_apply_lookup_fails_those_jobs_with_the_reason(aws, monkeypatch, tmp_path):
    env, _, _ = aws
    from botocore.exceptions import ClientError

    manifest = write_dataset(tmp_path / "data2")
    write_job(tmp_path / "more", ENV, "faq-c", "sagemaker", manifest)
    jobs = load_rendered(tmp_path / "more", ENV)

    def broken(self, env, jobs):
        raise ClientError({"Error": {"Code": "InternalFailure", "Message": "We encountered an internal error"},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "DescribeTrainingJob")

    monkeypatch.setattr(sagemaker.SageMaker, "existing", broken)
    from jobs import retry

    items = engine.apply(env, jobs, engine.ApplyOptions(retry=retry.RetryPolicy(attempts=2, base_s=0, max_delay_s=0)))
    assert [(i.job, i.result) for i in items] == [("faq-c", "failed")]
    assert "InternalFailure: We encountered an internal error" in items[0].detail
    assert sagemaker.SageMaker().ledger(env).get(jobs[0].idempotency_key) is None  # nothing claimed or submitted
    with pytest.raises(FtopsError, match="looking up 1 sagemaker jobs in the cloud failed: InternalFailure"):
        engine.plan(env, jobs)


def test_ledger_entry_kinds_are_checked():
    with pytest.raises(FtopsError, match="loc: corrupt ledger entry: no job_name"):
        LedgerEntry.from_bytes(b'{"key": "k", "provider": "p", "state": "submitted", "run_id": "r"}', None, "loc")


# --- policy on facts (case 6) ------------------------------------------------------------------------------


def _edit_manifest(directory: Path, change) -> None:
    _edit(directory / "manifest.json", change)


def test_edited_token_counts_do_not_lower_the_cost_check(project, ftops, tmp_path):
    prepared = real_dataset(project)
    # The true counts come from the shipped split: examples are its lines; the tokens are the unedited manifest's,
    # which the first render accepted (it reached the cost ceiling, so the counts matched the file).
    train = json.loads((prepared / "manifest.json").read_text())["files"]["train"]
    examples = sum(1 for line in (prepared / train["path"]).read_text().splitlines() if line.strip())
    assert train["examples"] == examples and examples > 1 and train["tokens"] > 1
    project.edit_environment("dev", "max_cost_per_job_usd: 200", "max_cost_per_job_usd: 0.01")
    refused = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    assert refused.exit_code == 1 and "is above the ceiling" in refused.stderr, refused.stderr

    def cheaper(manifest):
        for split in manifest["files"].values():
            split["tokens"], split["examples"] = 1, 1
    _edit_manifest(prepared, cheaper)
    result = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert (f"claims 1 examples and 1 tokens in train.jsonl; the file holds {examples:,} and {train['tokens']:,}"
            in result.stderr), result.stderr


def test_a_changed_split_file_is_refused(project, ftops, tmp_path):
    prepared = real_dataset(project)
    with (prepared / "train.jsonl").open("ab") as handle:
        handle.write(b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    result = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "is not the file its manifest hashes" in result.stderr


def test_apply_refuses_a_manifest_whose_split_files_are_gone(project, ftops, tmp_path):
    prepared = real_dataset(project)
    _render(project, ftops, tmp_path / "rendered")
    (prepared / "train.jsonl").unlink()
    assert ftops("render", "--env", "dev", "--out", tmp_path / "again").exit_code == 0  # review without the data
    result = ftops("apply", tmp_path / "rendered", "--env", ENV)
    assert result.exit_code == 1 and "the train split train.jsonl" in result.stderr and "is missing" in result.stderr


def test_split_paths_and_datasets_stay_inside_the_project(project, ftops, tmp_path):
    prepared = real_dataset(project)
    _edit_manifest(prepared, lambda m: m["files"]["train"].update(path="../../../../outside/train.jsonl"))
    result = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    # Refused either by the manifest's own file-name rule or by the containment check behind it.
    assert result.exit_code == 1, result.stderr
    assert "outside its directory" in result.stderr or "not a valid ftops manifest" in result.stderr, result.stderr

    outside = tmp_path / "outside"
    shutil.copytree(REPO / "datasets" / "it-helpdesk" / "prepared", outside)
    relative = Path("..") / outside.relative_to(tmp_path)
    project.edit_definition("helpdesk-qwen-lora", dataset=f"{relative}/manifest.json")
    assert (project.root / relative / "manifest.json").is_file()
    result = ftops("render", "--env", "dev", "--out", tmp_path / "out", "--job", "helpdesk-qwen-lora")
    assert result.exit_code == 1 and "lies outside the project" in result.stderr, result.stderr


def _overrides(project, name: str, overrides: dict) -> None:
    data = project.definition(name)
    data["overrides"] = overrides
    project.write_definition(data)


def test_overrides_for_an_unknown_environment_are_an_error(project, ftops, tmp_path):
    _overrides(project, "helpdesk-qwen-lora", {"prdo": {"compute": {"spot": False}}})
    result = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "overrides.prdo: overrides for unknown environment 'prdo'" in result.stderr
    assert "did you mean 'prod'?" in result.stderr


@pytest.mark.parametrize("field, value, message", [
    ("base_model__s3_uri", "s3://attacker-weights/qwen/", "bucket attacker-weights is not on environment dev's"),
    ("compute__image_uri", "999999999999.dkr.ecr.us-east-1.amazonaws.com/evil:1",
     "registry 999999999999.dkr.ecr.us-east-1.amazonaws.com is not on environment dev's allow-list"),
])
def test_s3_uri_and_image_uri_must_be_on_the_allow_lists(project, ftops, tmp_path, field, value, message):
    project.edit_definition("helpdesk-qwen-lora", **{field: value})
    result = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    assert result.exit_code == 1 and message in result.stderr, result.stderr


def test_the_environment_own_bucket_and_registries_and_listed_ones_render(project, ftops, tmp_path):
    env = load_environment("dev")
    aws = resolved_aws(env)
    project.edit_definition("helpdesk-qwen-lora", base_model__s3_uri=f"s3://{aws.output_bucket}/models/q/",
                            compute__image_uri=f"{aws.account}.dkr.ecr.{aws.region}.amazonaws.com/mine:1")
    assert ftops("render", "--env", "dev", "--out", tmp_path / "out").exit_code == 0
    # The pinned Hugging Face image's own registry (AWS Deep Learning Containers) is allowed too.
    project.edit_definition("helpdesk-qwen-lora",
                            compute__image_uri="763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch:x")
    assert ftops("render", "--env", "dev", "--out", tmp_path / "out").exit_code == 0
    project.edit_definition("helpdesk-qwen-lora", base_model__s3_uri="s3://acme-models-shared/q/")
    project.edit_environment("dev", "max_cost_per_job_usd: 200",
                             "max_cost_per_job_usd: 200\n  allowed_s3_buckets: [acme-models-*]")
    assert ftops("render", "--env", "dev", "--out", tmp_path / "out").exit_code == 0


@pytest.mark.parametrize("value", [
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # an AWS secret access key (AWS's documented example)
    "3f8a9c2e71b04d5a96e1c7b2d84f0a6e5b9c1d37",  # a WandB API key (40 hex digits)
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",  # a Stripe live key (Stripe's documented example)
])
def test_secrets_under_neutral_names_never_reach_a_rendered_file(project, ftops, tmp_path, value):
    project.edit_definition("helpdesk-qwen-lora", compute__environment={"NOTES": value})
    result = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "rendered sagemaker.json would carry a secret at Environment.NOTES: detect-secrets finds a" in result.stderr
    assert value not in result.stderr and not (tmp_path / "out" / "dev").exists()


def test_ordinary_values_are_not_taken_for_secrets(project, ftops, tmp_path):
    project.edit_definition("helpdesk-qwen-lora", compute__environment={
        "WANDB_PROJECT": "it-helpdesk-finetuning-2026", "RUN_NOTE": "qwen2.5 lora on the helpdesk tickets"})
    assert ftops("render", "--env", "dev", "--out", tmp_path / "out").exit_code == 0


# --- content addresses are verified (case 7) ----------------------------------------------------------------


def test_a_planted_source_archive_is_refused_and_nothing_is_submitted(monkeypatch, tmp_path):
    from jobs.training.archive import source_archive

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sagemaker._client.cache_clear()
        env = load_environment(ENV)
        aws = resolved_aws(env)
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (aws.output_bucket, aws.datasets_bucket):
            s3.create_bucket(Bucket=bucket)
        monkeypatch.setattr("jobs.apply.uploads.upload_dataset", lambda env, path, clouds: None)
        archive = source_archive()
        key = archive.s3_key()
        # Planted with our hash in its metadata: a claim anyone who can write the prefix can make.
        s3.put_object(Bucket=aws.output_bucket, Key=key, Body=b"evil tarball", Metadata={"sha256": archive.sha256})
        write_job(tmp_path / "rendered", ENV, "faq-planted", "sagemaker", write_dataset(tmp_path / "data"))
        (item,) = engine.apply(env, load_rendered(tmp_path / "rendered", ENV))
        assert item.result == "failed"
        assert "does not hold the bytes its content address names" in item.detail
        assert sagemaker.client(env).list_training_jobs()["TrainingJobSummaries"] == []
        # The genuine archive at its address is reused (and a later apply goes ahead).
        s3.put_object(Bucket=aws.output_bucket, Key=key, Body=archive.data)
        (item,) = engine.apply(env, load_rendered(tmp_path / "rendered", ENV))
        assert item.result == "created", item.detail
        sagemaker._client.cache_clear()


def test_a_planted_dataset_object_is_replaced_not_trusted(monkeypatch, tmp_path):
    from jobs.data.manifest import read_manifest
    from jobs.data.upload import upload_dataset

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        env = load_environment(ENV)
        aws = resolved_aws(env)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=aws.datasets_bucket)
        directory = write_dataset(tmp_path / "data").parent
        manifest = read_manifest(directory)
        key = manifest.s3_key(env.data.s3_prefix, "train")
        train = manifest.files["train"]
        planted = b"x" * train.bytes  # same size, our hash in the metadata, other bytes
        s3.put_object(Bucket=aws.datasets_bucket, Key=key, Body=planted, Metadata={"sha256": train.sha256})
        report = upload_dataset(env, directory, ["aws"])
        status = {obj.name: obj.status for obj in report.objects}
        assert status["train"] == "uploaded"
        stored = s3.get_object(Bucket=aws.datasets_bucket, Key=key)["Body"].read()
        assert stored == (directory / "train.jsonl").read_bytes()
        again = upload_dataset(env, directory, ["aws"])
        assert {obj.status for obj in again.objects} == {"skipped"}  # genuine objects are still reused


# --- credentials go only where they belong (case 8) -----------------------------------------------------------


def _resolved_azure_with(project, endpoint: str) -> Path:
    from jobs.config.resolved import derive_azure, resolved_file

    path = resolved_file("dev", "azure")
    path.parent.mkdir(parents=True, exist_ok=True)
    values = derive_azure(load_environment("dev")).model_dump(mode="json")
    path.write_text(json.dumps({**values, "openai_endpoint": endpoint}))
    return path


@pytest.mark.parametrize("endpoint", [
    "http://evil.example/", "https://evil.example/", "http://acct.openai.azure.com/",
    "https://acct.openai.azure.com.evil.example/", "https://user:pw@acct.openai.azure.com/",
    "https://acct.openai.azure.com:8443/", "https://openai.azure.com/",
])
def test_azure_tokens_go_only_to_azure_https_endpoints(project, ftops, endpoint):
    from jobs.providers import azure_openai

    path = _resolved_azure_with(project, endpoint)
    with pytest.raises(FtopsError) as caught:
        azure_openai.endpoint(load_environment("dev"))
    assert str(caught.value).startswith(f"{path}: openai_endpoint {endpoint!r} is not https on *.openai.azure.com")
    result = ftops("jobs", "status", "ftjob-0123", "--env", "dev")
    assert result.exit_code == 1 and "is not https on" in result.stderr


@pytest.mark.parametrize("endpoint", ["https://acct.openai.azure.com/", "https://acct.cognitiveservices.azure.com"])
def test_azure_own_endpoints_are_accepted(project, endpoint):
    from jobs.providers import azure_openai

    _resolved_azure_with(project, endpoint)
    assert azure_openai.endpoint(load_environment("dev")) == endpoint


@pytest.mark.parametrize("name, variable", [("moto", "FTOPS_MOTO_ENDPOINT"), ("azure", "FTOPS_AZURE_ENDPOINT"),
                                            ("azurite", "FTOPS_AZURITE_ENDPOINT")])
def test_endpoint_overrides_are_loopback_only(monkeypatch, name, variable):
    from jobs import clients

    monkeypatch.setenv(variable, "http://evil.example:4566")
    with pytest.raises(FtopsError, match=f"{variable}: the {name} emulator endpoint http://evil.example:4566 is not"):
        clients.emulator_endpoint(name)
    env = load_environment("local")
    call = {"moto": lambda: clients.aws_client(env, "s3"), "azure": lambda: clients.arm_endpoint(env),
            "azurite": lambda: clients.blob_account_url(env)}[name]
    with pytest.raises(FtopsError, match="is not a loopback address"):
        call()
    for loopback in ("http://127.0.0.1:4566", "http://localhost:4566", "http://[::1]:4566"):
        monkeypatch.setenv(variable, loopback)
        assert clients.emulator_endpoint(name) == loopback


def test_emulated_aws_clients_never_send_the_users_keys(monkeypatch):
    from jobs import clients

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("FTOPS_MOTO_ENDPOINT", "http://127.0.0.1:4566")
    credentials = clients.aws_client(load_environment("local"), "s3")._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("testing", "testing")


class _Files:
    """The Files API surface `_file_id` uses, in memory (what each call returns is what Azure documents)."""

    def __init__(self):
        from types import SimpleNamespace

        self.ns, self.store, self.created = SimpleNamespace, {}, 0

    def add(self, name: str, data: bytes, status: str = "processed"):
        file = self.ns(id=f"file-{len(self.store)}", filename=name, bytes=len(data), status=status,
                       status_details=None, data=data)
        self.store[file.id] = file
        return file

    def list(self, purpose):
        return list(self.store.values())

    def create(self, file, purpose):
        self.created += 1
        return self.add(file[0], file[1].read())

    def retrieve(self, file_id):
        return self.store[file_id]

    def content(self, file_id):
        return self.ns(read=lambda: self.store[file_id].data)


def test_a_planted_azure_training_file_is_not_reused(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from jobs.providers import azure_openai

    files = _Files()
    monkeypatch.setattr(azure_openai, "client", lambda env: SimpleNamespace(files=files))
    ours = tmp_path / "train.jsonl"
    ours.write_bytes(b'{"messages": []}\n' * 10)
    name = "ftops-0123456789abcdef-train.jsonl"
    planted = files.add(name, b"x" * ours.stat().st_size)  # our name and size, other bytes
    env = load_environment("local")
    file_id = azure_openai.AzureOpenAI()._file_id(env, engine.UploadCache(), ours, name)
    assert file_id != planted.id and files.store[file_id].data == ours.read_bytes() and files.created == 1
    # Our own earlier upload is found by name and reused once its bytes are checked.
    again = azure_openai.AzureOpenAI()._file_id(env, engine.UploadCache(), ours, name)
    assert files.store[again].data == ours.read_bytes() and files.created == 1


def test_plan_names_a_corrupt_ledger_object_in_one_line(project, ftops, tmp_path, monkeypatch):
    job_dir = _render(project, ftops, tmp_path / "rendered")
    key = json.loads((job_dir / "job.json").read_text())["idempotency_key"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sagemaker._client.cache_clear()
        env = load_environment(ENV)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=resolved_aws(env).output_bucket)
        ledger = sagemaker.SageMaker().ledger(env)
        ledger.client.put_object(Bucket=ledger.bucket, Key=ledger._key(key), Body=b"\x00garbage")
        monkeypatch.setattr("jobs.providers.azure_openai.AzureOpenAI.existing", lambda self, env, jobs: {})
        result = ftops("plan", tmp_path / "rendered", "--env", ENV, "--job", job_dir.name)
        sagemaker._client.cache_clear()
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: s3://{ledger.bucket}/{ledger._key(key)}: corrupt ledger entry: not JSON")
    assert len(result.stderr.strip().splitlines()) == 1
