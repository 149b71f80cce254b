"""Targets: SageMaker endpoints (botocore Stubber), Retry-After parsing, the emulator's Batch API, and a
batch submitted by an interrupted run being collected instead of paid for twice."""

from __future__ import annotations

import io
import json
import time

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from jobs.errors import CloudError
from jobs.eval.store import AnswerStore
from jobs.eval.targets.base import Generation, Request, Throttle, retry_after_seconds
from jobs.eval.targets.sagemaker import SageMakerEndpointTarget
from tests.fixtures.emulators import provision_openai_account


def _body(payload) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_sagemaker_target_reads_messages_api_and_retries_throttling():
    client = boto3.client("sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    messages = [{"role": "user", "content": "my vpn drops"}]
    with Stubber(client) as stub:
        stub.add_client_error("invoke_endpoint", "ThrottlingException", "slow down", 400)
        stub.add_response("invoke_endpoint", {"Body": _body({"choices": [{"message": {"content": "Renew the cert."}}]}),
                                              "ContentType": "application/json"},
                          {"EndpointName": "helpdesk", "ContentType": "application/json", "Accept": "application/json",
                           "Body": json.dumps({"messages": messages, "max_tokens": 256, "temperature": 0.0,
                                               "seed": 0}, separators=(",", ":")).encode()})
        stub.add_response("invoke_endpoint", {"Body": _body([{"generated_text": "Old container."}])})
        target = SageMakerEndpointTarget(client, "helpdesk", throttle=Throttle(sleep=lambda s: None))
        answer = target.answer(messages, Generation())
        assert (answer.text, answer.attempts) == ("Renew the cert.", 2)
        assert target.answer(messages, Generation()).text == "Old container."
    with Stubber(client) as stub:
        stub.add_client_error("invoke_endpoint", "ValidationError", "Endpoint helpdesk not found", 400)
        with pytest.raises(CloudError, match="endpoint helpdesk: Endpoint helpdesk not found"):
            target.answer(messages, Generation())


def _serving_endpoint(stub: Stubber, model_data: str) -> None:
    """SageMaker's answers for endpoint -> config -> model; Stubber checks each request and response against
    botocore's service model."""
    stub.add_response("describe_endpoint", {
        "EndpointName": "helpdesk", "EndpointArn": "arn:aws:sagemaker:us-east-1:111111111111:endpoint/helpdesk",
        "EndpointConfigName": "helpdesk-0a1b-cfg", "EndpointStatus": "InService",
        "CreationTime": "2026-11-30T00:00:00Z", "LastModifiedTime": "2026-11-30T00:00:00Z"},
        {"EndpointName": "helpdesk"})
    stub.add_response("describe_endpoint_config", {
        "EndpointConfigName": "helpdesk-0a1b-cfg",
        "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:111111111111:endpoint-config/helpdesk-0a1b-cfg",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "helpdesk-0a1b"}],
        "CreationTime": "2026-11-30T00:00:00Z"}, {"EndpointConfigName": "helpdesk-0a1b-cfg"})
    stub.add_response("describe_model", {
        "ModelName": "helpdesk-0a1b", "ModelArn": "arn:aws:sagemaker:us-east-1:111111111111:model/helpdesk-0a1b",
        "CreationTime": "2026-11-30T00:00:00Z", "PrimaryContainer": {"Image": "image", "ModelDataUrl": model_data}},
        {"ModelName": "helpdesk-0a1b"})


def test_an_endpoint_serving_another_artifact_is_refused_before_any_request(tmp_path):
    """The evaluation is recorded on the trained model's record: an endpoint serving a checkpoint (or an older
    model) must not have its scores credited to it."""
    from jobs.config.environment import load_environment
    from jobs.errors import FtopsError
    from jobs.eval.plan import EvalPlan, check_serves_artifact

    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x")
    trained = "s3://out/helpdesk/output/model.tar.gz"
    plan = EvalPlan(job="helpdesk-qwen-lora", env=load_environment("dev"), definition_path=tmp_path / "x.yaml",
                    config=None, examples=[], dataset_id="d", fine_tuned="sagemaker:helpdesk", base="local:x",
                    judge=None, out_dir=tmp_path, artifact={"kind": "s3", "uri": trained, "sha256": "0" * 64})
    with Stubber(sm) as stub:
        _serving_endpoint(stub, "s3://out/helpdesk/checkpoints/checkpoint-12.tar.gz")
        with pytest.raises(FtopsError, match="serves s3://out/helpdesk/checkpoints/checkpoint-12.tar.gz, not "
                                             "s3://out/helpdesk/output/model.tar.gz"):
            check_serves_artifact(plan, SageMakerEndpointTarget(runtime, "helpdesk", describe_client=sm))
    with Stubber(sm) as stub:
        _serving_endpoint(stub, trained)
        target = SageMakerEndpointTarget(runtime, "helpdesk", describe_client=sm)
        assert check_serves_artifact(plan, target) == "helpdesk"
        assert target.identity == f"sagemaker:helpdesk={trained}"  # the artifact keys the saved answers


def test_retry_after_headers():
    assert retry_after_seconds({"Retry-After-Ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({}) is None


def test_a_retry_after_beyond_the_limit_is_one_clear_error():
    throttle = Throttle(max_wait_s=10, sleep=lambda s: None)
    with pytest.raises(CloudError, match="asks to wait 600s, over the 10s limit"):
        throttle.call(lambda: (_ for _ in ()).throw(RuntimeError("429")), lambda e: (True, True, 600.0), "deployment x")


@pytest.fixture
def emulator(tmp_path):
    pytest.importorskip("jobs.local.azure_emulator.app")
    from jobs.local.azure_emulator.app import create_app

    app = create_app(tmp_path, op_delay_s=0)
    client = app.test_client()
    assert provision_openai_account(client, "acct") == DP
    client.post("/_emulator/batch/settings", json={"batch_duration_s": 0.2})
    return client


DP = "/accounts/acct/openai"
"""The data plane of the account the `emulator` fixture provisions (the emulator answers for no other)."""


def _upload(client, lines: list[dict], purpose: str = "batch") -> str:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    response = client.post(f"{DP}/files", data={"purpose": purpose, "file": (io.BytesIO(data), "in.jsonl")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["id"]


def _line(cid: str, deployment: str = "nope") -> dict:
    return {"custom_id": cid, "method": "POST", "url": "/chat/completions",
            "body": {"model": deployment, "messages": [{"role": "user", "content": "hi"}]}}


def test_batch_moves_to_completed_and_reports_unknown_deployments_in_the_error_file(emulator):
    file_id = _upload(emulator, [_line("a"), _line("b")])
    created = emulator.post(f"{DP}/batches", json={"input_file_id": file_id, "endpoint": "/chat/completions",
                                                     "completion_window": "24h"}).json
    assert created["status"] == "validating" and created["request_counts"]["total"] == 2
    time.sleep(0.25)
    done = emulator.get(f"{DP}/batches/{created['id']}").json
    assert done["status"] == "completed" and done.get("output_file_id") is None
    errors = emulator.get(f"{DP}/files/{done['error_file_id']}/content").data.decode().splitlines()
    assert [json.loads(e)["response"]["status_code"] for e in errors] == [404, 404]


def test_batch_input_is_validated_like_azure(emulator):
    fine_tune_file = _upload(emulator, [{"messages": [{"role": "user", "content": "x"}]}], purpose="fine-tune")
    wrong = emulator.post(f"{DP}/batches", json={"input_file_id": fine_tune_file, "endpoint": "/chat/completions",
                                                   "completion_window": "24h"})
    assert wrong.status_code == 400 and "purpose batch" in wrong.json["error"]["message"]
    duplicated = _upload(emulator, [_line("a"), _line("a")])
    failed = emulator.post(f"{DP}/batches", json={"input_file_id": duplicated, "endpoint": "/chat/completions",
                                                    "completion_window": "24h"}).json
    assert failed["status"] == "failed" and failed["errors"]["data"][0]["code"] == "duplicate_custom_id"


class FakeBatches:
    """An openai client double for the batch path: counts submissions."""

    def __init__(self) -> None:
        self.created = 0
        outer = self

        class Files:
            def create(self, file, purpose):
                return type("F", (), {"id": "file-in"})()

            def content(self, file_id):
                lines = [{"custom_id": f"clean/{i}", "response": {"status_code": 200, "body": {
                    "choices": [{"message": {"content": f"answer {i}"}}]}}, "error": None} for i in range(3)]
                return io.BytesIO("".join(json.dumps(x) + "\n" for x in lines).encode())

        class Batches:
            def create(self, **kw):
                outer.created += 1
                return type("B", (), {"id": "batch-1"})()

            def retrieve(self, batch_id):
                return type("B", (), {"status": "completed", "output_file_id": "file-out"})()

        self.files, self.batches = Files(), Batches()


def test_a_batch_submitted_before_an_interruption_is_collected_not_resubmitted(tmp_path):
    from jobs.eval.runner import split_custom_id
    from jobs.eval.targets.azure_openai import AzureOpenAITarget

    client = FakeBatches()
    target = AzureOpenAITarget(client, "ft", batch=True, poll_interval_s=0)
    requests = [Request(f"clean/{i}", ({"role": "user", "content": str(i)},)) for i in range(3)]
    with AnswerStore(tmp_path / "a.jsonl") as store:
        store.record_batch(target.identity, "batch-1", [r.custom_id for r in requests])  # then the run was killed
    with AnswerStore(tmp_path / "a.jsonl") as store:
        target.answer_batch(requests, Generation(), store, split_custom_id, lambda: None)
        assert client.created == 0
        assert store.get((target.identity, "2", "clean")).text == "answer 2"
        assert store.pending_batches(target.identity) == {}


def test_azure_millisecond_retry_after_is_read_too():
    assert retry_after_seconds({"x-ms-retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
