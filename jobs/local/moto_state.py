"""moto keeps everything in memory; this makes the `local` AWS state survive `ftops local down && ftops local up`.

moto server has a request recorder (moto's docs, docs/configuration/recorder: "log all incoming requests, which
can be replayed at a later date"; `MOTO_ENABLE_RECORDING` and `MOTO_RECORDER_FILEPATH` as read by
`moto/moto_api/_internal/recorder/models.py` in the moto 5.2.1 installed here, and the server's
`/moto-api/recorder/replay-recording` and `/moto-api/seed` endpoints). `local up` starts moto with
the recorder writing to `.ftops/data/moto/recording.jsonl`; on a fresh file the first request it records seeds
moto's random generator (`/moto-api/seed`), so replaying the file recreates the same resources with the same
generated ids (KMS key ids, change-set ids, multipart upload ids). A restarted moto replays the file before
anything else talks to it.

Replay is exact only for requests that moto handled one at a time: two requests in flight together may have drawn
their random ids in another order than the file lists them (for example two multipart uploads at once). So
`local down` writes an inventory (buckets and object ETags, KMS keys, stacks, training jobs) and `local up`
compares the replayed state with it and names whatever did not come back, instead of claiming it all did.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from jobs.fsutil import atomic_write

SEED = 20261129
RECORDING = "recording.jsonl"
INVENTORY = "inventory.json"


def environment(data_dir: Path) -> dict[str, str]:
    """moto server's environment for a durable state in `data_dir`."""
    return {"MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(data_dir / RECORDING)}


def _post(url: str, timeout: float) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=timeout).read()


def has_recording(data_dir: Path) -> bool:
    """Checked before moto starts: its readiness probes are recorded too, so afterwards the file always exists."""
    recording = data_dir / RECORDING
    return recording.is_file() and recording.stat().st_size > 0


def restore(endpoint: str, data_dir: Path, replay: bool) -> dict:
    """Seed a fresh moto, or replay the recording into a restarted one; report what came back."""
    recording = data_dir / RECORDING
    if not replay:
        _post(f"{endpoint}/moto-api/seed?a={SEED}", timeout=30)
        return {"replayed": 0}
    with recording.open("rb") as handle:
        count = sum(1 for _ in handle)
    _post(f"{endpoint}/moto-api/recorder/replay-recording", timeout=600)
    report: dict = {"replayed": count}
    saved = data_dir / INVENTORY
    if saved.is_file():
        try:
            before = json.loads(saved.read_text())
        except ValueError:
            before = None
        if isinstance(before, dict):
            report["lost"] = lost(before, inventory(endpoint))
    return report


def _client(endpoint: str, service: str):
    import boto3

    # Fixed dummy credentials: moto accepts any, and the user's own must never reach an emulator.
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def inventory(endpoint: str, region: str = "us-east-1") -> dict[str, list[str]]:
    """What ftops keeps in moto, one sorted list of names per kind."""
    s3 = _client(endpoint, "s3")
    objects = []
    for bucket in s3.list_buckets().get("Buckets", []):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            objects += [f"s3://{bucket['Name']}/{o['Key']} {o['ETag']}" for o in page.get("Contents", [])]
    kms = _client(endpoint, "kms")
    keys = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate() for k in page.get("Keys", [])]
    cfn = _client(endpoint, "cloudformation")
    stacks = [f"{s['StackName']} {s['StackStatus']}" for page in cfn.get_paginator("describe_stacks").paginate()
              for s in page.get("Stacks", [])]
    sagemaker = _client(endpoint, "sagemaker")
    jobs = [j["TrainingJobName"] for page in sagemaker.get_paginator("list_training_jobs").paginate()
            for j in page.get("TrainingJobSummaries", [])]
    return {"s3_objects": sorted(objects), "kms_keys": sorted(keys), "stacks": sorted(stacks),
            "training_jobs": sorted(jobs)}


def lost(before: dict, after: dict) -> dict[str, list[str]]:
    """Per kind, what `before` had that `after` lacks (an object with another ETag counts as lost)."""
    out = {}
    for kind, names in before.items():
        missing = sorted(set(names) - set(after.get(kind, [])))
        if missing:
            out[kind] = missing
    return out


def save_inventory(endpoint: str, data_dir: Path) -> None:
    atomic_write(data_dir / INVENTORY, json.dumps(inventory(endpoint), indent=1))
