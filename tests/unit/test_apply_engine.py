"""plan/apply against SageMaker (moto in-process): exactly once per key, reruns, races, failures, retries."""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.exceptions import ClientError

from jobs import retry
from jobs.apply import engine
from jobs.apply.rendered import load_rendered
from jobs.providers import sagemaker
from tests.fixtures.rendered import mocked_aws_buckets, write_dataset, write_job

ENV = "dev"  # a real (non-emulated) environment: mock_aws intercepts its default endpoints


@pytest.fixture
def aws(monkeypatch):
    with mocked_aws_buckets(monkeypatch, ENV) as env:
        uploads = []
        monkeypatch.setattr("jobs.apply.uploads.upload_dataset", lambda env, path, clouds: uploads.append(path))
        yield env, uploads


@pytest.fixture
def rendered(tmp_path):
    manifest = write_dataset(tmp_path / "data")
    for i in range(6):
        write_job(tmp_path / "rendered", ENV, f"faq-{i}", "sagemaker", manifest)
    return tmp_path / "rendered"


def _count_creates(env) -> list[str]:
    created: list[str] = []
    sagemaker.client(env).meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: created.append(params["TrainingJobName"]))
    return created


def test_plan_apply_plan_apply_converges_with_one_submit_per_key(aws, rendered):
    env, uploads = aws
    jobs = load_rendered(rendered, ENV)
    assert [item.action for item in engine.plan(env, jobs)] == ["create"] * 6
    created = _count_creates(env)
    first = engine.apply(env, jobs, engine.ApplyOptions(concurrency=4))
    assert [item.result for item in first] == ["created"] * 6, [i.detail for i in first]
    assert sorted(created) == [j.name for j in jobs]
    assert len(uploads) == 1, "the shared dataset is uploaded once per run, not once per job"
    assert {item.action for item in engine.plan(env, jobs)} == {"submitted"}
    second = engine.apply(env, jobs)
    assert {item.result for item in second} == {"already-submitted"} and len(created) == 6
    archive_key = jobs[0].load_target("sagemaker")["HyperParameters"]["sagemaker_submit_directory"]
    bucket, key = archive_key.removeprefix("s3://").split("/", 1)
    assert boto3.client("s3", region_name="us-east-1").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_two_concurrent_applies_submit_each_key_exactly_once(aws, rendered):
    env, _ = aws
    jobs = load_rendered(rendered, ENV)
    created = _count_creates(env)
    results: list[list[engine.ApplyItem]] = []
    threads = [threading.Thread(target=lambda: results.append(engine.apply(env, jobs, engine.ApplyOptions(concurrency=3))))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created) == sorted(job.name for job in jobs)
    outcomes = [item.result for run in results for item in run]
    assert outcomes.count("created") == 6 and set(outcomes) <= {"created", "already-submitted"}


def test_a_failed_submit_is_reported_and_a_rerun_finishes_it(aws, rendered, monkeypatch):
    env, _ = aws
    jobs = load_rendered(rendered, ENV)
    real_submit = sagemaker.SageMaker.submit

    def broken(self, env, job, request, **kw):
        if job.name == "faq-2":
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "bad instance type"}},
                              "CreateTrainingJob")
        return real_submit(self, env, job, request, **kw)

    monkeypatch.setattr(sagemaker.SageMaker, "submit", broken)
    items = {item.job: item for item in engine.apply(env, jobs)}
    assert items["faq-2"].result == "failed" and "bad instance type" in items["faq-2"].detail
    assert sum(item.result == "created" for item in items.values()) == 5
    assert "bad instance type" in next(p.detail for p in engine.plan(env, jobs) if p.job == "faq-2")

    monkeypatch.setattr(sagemaker.SageMaker, "submit", real_submit)
    rerun = {item.job: item.result for item in engine.apply(env, jobs)}
    assert rerun.pop("faq-2") == "created" and set(rerun.values()) == {"already-submitted"}


def test_throttled_submits_are_retried(aws, rendered, monkeypatch):
    env, _ = aws
    jobs = load_rendered(rendered, ENV)[:2]
    real_submit = sagemaker.SageMaker.submit
    calls = {"n": 0}

    def throttled(self, env, job, request, **kw):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {"retry-after": "0"}}},
                              "CreateTrainingJob")
        return real_submit(self, env, job, request, **kw)

    monkeypatch.setattr(sagemaker.SageMaker, "submit", throttled)
    items = engine.apply(env, jobs, engine.ApplyOptions(concurrency=1))
    assert [item.result for item in items] == ["created", "created"] and items[0].attempts == 3


def test_a_stale_claim_from_a_dead_apply_is_taken_over(aws, rendered):
    env, _ = aws
    job = load_rendered(rendered, ENV)[0]
    ledger = sagemaker.SageMaker().ledger(env)
    dead = engine.LedgerEntry(key=job.idempotency_key, job_name=job.name, provider="sagemaker", state="claimed",
                              run_id="dead", pid=2 ** 22 + 12345)
    assert ledger.create(dead) is not None
    assert engine.plan(env, [job])[0].action == "create"
    assert engine.apply(env, [job])[0].result == "created"
    assert ledger.get(job.idempotency_key).state == "submitted"


def test_a_live_claim_from_another_apply_is_left_alone(aws, rendered):
    env, _ = aws
    job = load_rendered(rendered, ENV)[0]
    live = engine.LedgerEntry(key=job.idempotency_key, job_name=job.name, provider="sagemaker", state="claimed",
                              run_id="other", host="another-runner")
    sagemaker.SageMaker().ledger(env).create(live)
    assert engine.plan(env, [job])[0].action == "in-progress"
    item = engine.apply(env, [job], engine.ApplyOptions(wait_for_others_s=0))[0]
    assert item.result == "in-progress" and "another-runner" in item.detail


def test_a_cloud_job_with_another_key_is_a_conflict(aws, rendered, tmp_path):
    env, _ = aws
    job = load_rendered(rendered, ENV)[0]
    request = job.load_target("sagemaker")
    request["Tags"] = [{"Key": "ftops:idempotency-key", "Value": "f" * 64}]
    sagemaker.client(env).create_training_job(**request)
    assert engine.plan(env, [job])[0].action == "conflict"
    item = engine.apply(env, [job])[0]
    assert item.result == "conflict" and "rename the job" in item.detail


def test_dry_run_uploads_but_submits_nothing(aws, rendered):
    env, uploads = aws
    jobs = load_rendered(rendered, ENV)
    created = _count_creates(env)
    items = engine.apply(env, jobs, engine.ApplyOptions(dry_run=True))
    assert {item.result for item in items} == {"would-create"} and created == [] and uploads
    assert {item.action for item in engine.plan(env, jobs)} == {"create"}


def test_retry_honours_retry_after_and_gives_up_on_validation_errors():
    waits: list[float] = []
    attempts = {"n": 0}

    def flaky():
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"},
                               "ResponseMetadata": {"HTTPStatusCode": 429, "HTTPHeaders": {"Retry-After": "7"}}}, "X")
        return "ok"

    assert retry.call(flaky, sleep=waits.append) == "ok" and waits == [7.0, 7.0]
    with pytest.raises(ClientError):
        retry.call(lambda: (_ for _ in ()).throw(ClientError({"Error": {"Code": "ValidationException"},
                                                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "X")),
                   sleep=waits.append)
    assert len(waits) == 2
