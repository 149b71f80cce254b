"""Uploads apply does before a submit: the dataset (through the data stage) and the training source archive.

Both are content-addressed, so an upload that already happened is found, then checked (its bytes hashed)
before it is reused.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
from pathlib import Path
from typing import Any

from jobs.config.environment import Environment
from jobs.errors import CloudError, FtopsError


def upload_dataset(env: Environment, manifest_dir: Path, clouds: list[str]) -> Any:
    """The data stage's content-addressed upload (`ftops data upload`); a no-op for what is already there."""
    for module_name in ("jobs.data.upload", "jobs.data"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        upload = getattr(module, "upload_dataset", None)
        if upload is not None:
            return upload(env, manifest_dir, clouds)
    raise FtopsError("the data stage's upload is not installed (jobs.data.upload.upload_dataset)",
                     hint="upload the dataset with `ftops data upload` first, or update ftops")


def put_if_absent(s3: Any, bucket: str, key: str, data: bytes) -> bool:
    """Upload `data` unless the object exists; True when it uploaded. Content addresses never change.
    Encryption comes from the bucket's default (the environment's KMS key), set by the stack.

    An object already at the address is reused only when its bytes hash to `data`'s sha256 (read back, not
    taken from metadata). A different object there was planted or corrupted: it is refused, never replaced
    (the stack denies overwrites under `source/`, and what already ran from it needs investigating).
    """
    digest = hashlib.sha256(data)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
            raise
    else:
        _check_existing(s3, bucket, key, digest.hexdigest())
        return False
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*",
                      ChecksumSHA256=base64.b64encode(digest.digest()).decode())
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") != "PreconditionFailed":
            raise
        _check_existing(s3, bucket, key, digest.hexdigest())  # another applier wrote it first: check theirs too
        return False
    return True


def _check_existing(s3: Any, bucket: str, key: str, sha256: str) -> None:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    found = hashlib.sha256()
    for chunk in body.iter_chunks(1 << 20):
        found.update(chunk)
    if found.hexdigest() != sha256:
        raise CloudError(f"s3://{bucket}/{key} does not hold the bytes its content address names (sha256 "
                         f"{found.hexdigest()[:12]}, expected {sha256[:12]}): refusing to use it",
                         source=f"s3://{bucket}/{key}",
                         hint="someone wrote a different object at this address; have an administrator inspect "
                              "and delete it, then rerun")
