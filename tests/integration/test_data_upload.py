"""`ftops data upload` against moto server and Azurite: content-addressed, idempotent, resumable, verified."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from jobs.clients import aws_client, blob_service
from jobs.config.environment import load_environment
from jobs.config.resolved import resolved_aws
from jobs.data import upload as upload_module
from jobs.data.manifest import read_manifest
from jobs.data.prepare import prepare
from jobs.data.tokens import resolve
from jobs.data.upload import Tuning, upload_dataset
from jobs.errors import CloudError, FtopsError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PREPARED = ROOT / "datasets" / "it-helpdesk" / "prepared"
SMALL_PARTS = Tuning(threshold=5 << 20, part_size=5 << 20, concurrency=4)


@pytest.fixture
def clouds(aws_buckets, blob_container):
    return load_environment("local")


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    """The sample dataset salted with this test's name, prepared: its objects are content-addressed, so a shared
    dataset would find (or corrupt) objects another test uploaded to the session's emulators."""
    salt = tmp_path.name
    rows = []
    for line in (ROOT / "datasets" / "it-helpdesk" / "support-chat.jsonl").read_text().splitlines():
        row = json.loads(line)
        row["messages"][-1]["content"] += f" ({salt})"
        rows.append(json.dumps(row))
    source = tmp_path / "source.jsonl"
    source.write_text("\n".join(rows) + "\n")
    counter, limits = resolve(None, None)
    prepare(source, tmp_path / "prepared", counter, limits)
    return tmp_path / "prepared"


@pytest.fixture(scope="module")
def big_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 13 MB of train data: three 5 MiB parts on S3, three blocks on Azure."""
    directory = tmp_path_factory.mktemp("big")
    rng = hashlib.sha256(b"seed")
    rows = []
    for i in range(2600):
        rng.update(str(i).encode())
        rows.append(json.dumps({"messages": [{"role": "user", "content": f"q{i} " + rng.hexdigest() * 70},
                                             {"role": "assistant", "content": "ok"}]}))
    source = directory / "in.jsonl"
    source.write_text("\n".join(rows) + "\n")
    counter, limits = resolve(None, None)
    prepare(source, directory / "out", counter, limits, split=(0.98, 0.01, 0.01))
    return directory / "out"


def test_upload_twice_transfers_nothing_the_second_time(ftops, clouds, prepared: Path) -> None:
    directory = prepared
    first = json.loads(ftops("data", "upload", directory, "--json").stdout)
    assert first["transferred"] > 0
    assert {(o["cloud"], o["name"], o["status"]) for o in first["objects"]} >= {
        ("aws", "train", "uploaded"), ("azure", "manifest", "uploaded")}
    second = ftops("data", "upload", directory, "--json")
    assert second.exit_code == 0
    data = json.loads(second.stdout)
    assert data["transferred"] == 0 and {o["status"] for o in data["objects"]} == {"skipped"}

    manifest = read_manifest(directory)
    env = load_environment("local")
    s3 = aws_client(env, "s3")
    body = s3.get_object(Bucket=resolved_aws(env).datasets_bucket,
                         Key=manifest.s3_key(env.data.s3_prefix, "train"))["Body"].read()
    assert body == (directory / "train.jsonl").read_bytes()
    blob = blob_service(env).get_blob_client(env.data.blob_container, manifest.blob_name("test"))
    assert blob.download_blob().readall() == (directory / "test.jsonl").read_bytes()
    assert blob.get_blob_properties().metadata["sha256"] == manifest.files["test"].sha256


def test_multipart_upload_resumes_after_an_interruption(clouds, big_dataset: Path, monkeypatch) -> None:
    env = load_environment("local")
    real_read = upload_module.read_range
    calls = {"n": 0}

    def flaky(path, offset, length):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionResetError("network dropped")
        return real_read(path, offset, length)

    monkeypatch.setattr(upload_module, "read_range", flaky)
    serial = Tuning(threshold=SMALL_PARTS.threshold, part_size=SMALL_PARTS.part_size, concurrency=1)
    with pytest.raises(ConnectionResetError):
        upload_dataset(env, big_dataset, ["aws"], tuning=serial)
    manifest = read_manifest(big_dataset)
    bucket = resolved_aws(env).datasets_bucket
    key = manifest.s3_key(env.data.s3_prefix, "train")
    s3 = aws_client(env, "s3")
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0  # nothing half-written is visible

    monkeypatch.setattr(upload_module, "read_range", real_read)
    report = upload_dataset(env, big_dataset, ["aws"], tuning=SMALL_PARTS)
    train = next(o for o in report.objects if o.name == "train")
    size = manifest.files["train"].bytes
    assert train.status == "resumed" and 0 < train.transferred < size
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == manifest.files["train"].sha256


def test_azure_blocks_resume_and_commit_once(clouds, big_dataset: Path, monkeypatch) -> None:
    env = load_environment("local")
    real_read = upload_module.read_range
    calls = {"n": 0}

    def flaky(path, offset, length):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionResetError("network dropped")
        return real_read(path, offset, length)

    monkeypatch.setattr(upload_module, "read_range", flaky)
    serial = Tuning(threshold=SMALL_PARTS.threshold, part_size=SMALL_PARTS.part_size, concurrency=1)
    with pytest.raises(ConnectionResetError):
        upload_dataset(env, big_dataset, ["azure"], tuning=serial)
    manifest = read_manifest(big_dataset)
    blob = blob_service(env).get_blob_client(env.data.blob_container, manifest.blob_name("train"))
    assert not blob.exists()  # staged blocks are invisible until the commit

    monkeypatch.setattr(upload_module, "read_range", real_read)
    report = upload_dataset(env, big_dataset, ["azure"], tuning=SMALL_PARTS)
    train = next(o for o in report.objects if o.name == "train")
    assert train.status == "resumed" and 0 < train.transferred < manifest.files["train"].bytes
    assert hashlib.sha256(blob.download_blob().readall()).hexdigest() == manifest.files["train"].sha256


def test_an_edited_prepared_file_is_refused(clouds, tmp_path: Path) -> None:
    directory = tmp_path / "prepared"
    shutil.copytree(PREPARED, directory)
    with (directory / "train.jsonl").open("a") as handle:
        handle.write("{}\n")
    with pytest.raises(FtopsError, match="changed since prepare"):
        upload_dataset("local", directory)


def test_a_corrupted_object_is_replaced(clouds, prepared: Path) -> None:
    env = load_environment("local")
    directory = prepared
    upload_dataset(env, directory, ["aws"])
    manifest = read_manifest(directory)
    bucket, key = resolved_aws(env).datasets_bucket, manifest.s3_key(env.data.s3_prefix, "validation")
    s3 = aws_client(env, "s3")
    s3.put_object(Bucket=bucket, Key=key, Body=b"garbage", Metadata={"sha256": "0" * 64})
    report = upload_dataset(env, directory, ["aws"])
    assert next(o for o in report.objects if o.name == "validation").status == "uploaded"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == (directory / "validation.jsonl").read_bytes()


def test_real_environment_without_bucket_is_a_clear_error(aws_local, monkeypatch) -> None:
    """A non-emulated environment never creates buckets: it says the infrastructure must be deployed."""
    env = load_environment("local").model_copy(update={"emulated": False})
    monkeypatch.setattr(upload_module.S3Target, "__init__", _s3_init_for(aws_local.endpoint))
    # No HeadBucket first (the pipeline role may list only its prefixes): the first write names the missing bucket.
    with pytest.raises(CloudError, match="does not exist.*deploy"):
        upload_module.upload_dataset(env, PREPARED, ["aws"])


def test_upload_before_infra_deploy_is_refused_and_creates_no_bucket(ftops, project, aws_local) -> None:
    """Upload used to create the bucket on moto without the stack's KMS settings, so the later `ftops infra deploy
    --env local` failed with BucketAlreadyExists."""
    project.edit_environment("local", 'account: "123456789012"', 'account: "000000000042"')  # a never-deployed stack
    env = load_environment("local")
    result = ftops("data", "upload", PREPARED, "--env", "local", "--cloud", "aws")
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"bucket {resolved_aws(env).datasets_bucket} does not exist" in result.stderr
    assert "ftops infra deploy --env local" in result.stderr
    with pytest.raises(Exception, match="404|Not Found"):
        aws_client(env, "s3").head_bucket(Bucket=resolved_aws(env).datasets_bucket)


def test_upload_before_infra_apply_is_refused_and_writes_nothing(ftops, project, aws_buckets, blob_local) -> None:
    """Upload used to create the container on Azurite, one `ftops infra apply --cloud azure` never made (no ARM
    record, no role assignment). All clouds: refused before the first byte, so the bucket gets nothing either."""
    project.edit_environment("local", "data:\n", "data:\n  blob_container: never-applied\n")
    env = load_environment("local")
    manifest = read_manifest(PREPARED)
    s3, bucket = aws_client(env, "s3"), resolved_aws(env).datasets_bucket
    s3_key = manifest.s3_key(env.data.s3_prefix, "train")
    had_object = bool(s3.list_objects_v2(Bucket=bucket, Prefix=s3_key).get("KeyCount"))
    for cloud in ("azure", "all"):
        result = ftops("data", "upload", PREPARED, "--env", "local", "--cloud", cloud)
        assert result.exit_code == 1 and result.stdout == "", result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
        assert (f"container never-applied does not exist in storage account {env.require_azure().storage_account} "
                "of environment local") in result.stderr
        assert "ftops infra apply --cloud azure --env local" in result.stderr
    assert not blob_service(env).get_container_client("never-applied").exists()
    if not had_object:  # the session's moto is shared: another test may have uploaded this dataset already
        assert not s3.list_objects_v2(Bucket=bucket, Prefix=s3_key).get("KeyCount")


def test_real_environment_without_container_is_a_clear_error(blob_local, monkeypatch) -> None:
    """A real environment keeps checking the container before upload (and never creates it): one line, the fix."""
    env = load_environment("local").model_copy(update={"emulated": False})

    def init(self, env, manifest):
        self.env, self.manifest, self.container_name = env, manifest, "never-provisioned"
        self.service = blob_service(load_environment("local"))  # Azurite, standing in for the real account
        self.container = self.service.get_container_client(self.container_name)

    monkeypatch.setattr(upload_module.BlobTarget, "__init__", init)
    with pytest.raises(CloudError) as raised:
        upload_module.upload_dataset(env, PREPARED, ["azure"])
    assert "container never-provisioned does not exist" in str(raised.value)
    assert "ftops infra apply --cloud azure --env local" in str(raised.value)
    assert not blob_service(load_environment("local")).get_container_client("never-provisioned").exists()


def _s3_init_for(endpoint: str):
    def init(self, env, manifest):
        import boto3

        self.env, self.manifest = env, manifest
        self.bucket, self.prefix = "ftops-never-created-bucket", "datasets/"
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                               aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])
    return init
