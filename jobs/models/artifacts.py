"""SageMaker artifacts: the sha256 of a `model.tar.gz` in S3, and a copy into another environment's bucket
whose bytes are verified against that digest before anything refers to them."""

from __future__ import annotations

import hashlib
from typing import Any

from jobs.errors import CloudError

CHUNK = 8 * 1024 * 1024


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def s3_sha256(s3: Any, uri: str) -> tuple[str, int]:
    """(sha256 hex, size) of the object, streamed (a model.tar.gz may be gigabytes)."""
    bucket, key = split_s3(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as exc:
        raise CloudError(f"cannot read the model artifact {uri}: {str(exc).splitlines()[0]}", field="artifact",
                         hint="check that the training job finished and wrote its model") from None
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def promoted_key(job: str, sha256: str) -> str:
    """Content-addressed: the same model promoted twice lands on the same key."""
    return f"ftops-models/artifacts/{job}/{sha256}/model.tar.gz"


def copy_verified(source_s3: Any, source_uri: str, target_s3: Any, target_bucket: str, job: str, sha256: str,
                  *, kms_key: str | None = None) -> str:
    """Copy the artifact into the target bucket (streamed through this process, so the source and target may be
    different accounts, each with its own credentials) and re-read the copy to check its sha256."""
    key = promoted_key(job, sha256)
    target_uri = f"s3://{target_bucket}/{key}"
    try:
        existing, _ = s3_sha256(target_s3, target_uri)
    except CloudError:
        existing = None
    if existing != sha256:
        bucket, source_key = split_s3(source_uri)
        body = source_s3.get_object(Bucket=bucket, Key=source_key)["Body"]
        extra: dict[str, Any] = {"Metadata": {"ftops-sha256": sha256}}
        if kms_key:  # the target bucket's customer-managed key (the caller leaves it out on the emulator)
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
        target_s3.upload_fileobj(body, target_bucket, key, ExtraArgs=extra)
        copied, _ = s3_sha256(target_s3, target_uri)
        if copied != sha256:
            target_s3.delete_object(Bucket=target_bucket, Key=key)
            raise CloudError(f"the copy of {source_uri} has sha256 {copied[:12]}, not {sha256[:12]}; removed it",
                             source=target_uri, hint="run the promotion again")
    return target_uri
