"""The environment's S3 buckets are the stack's (`ftops infra deploy`): ftops checks them, never creates them.

A bucket a command made would lack what the stack gives the real ones (SSE-KMS with the environment's key,
TLS-only policy, public access blocked, versioning), and the later `ftops infra deploy` would fail on it with
BucketAlreadyExists. So in an emulated environment a command that writes to S3 first checks that its buckets
exist, before it writes anything anywhere, and refuses with one line naming the bucket, the environment and the
provisioning step. Real environments are not checked here: HeadBucket needs s3:ListBucket on the whole bucket,
which the pipeline role holds only per prefix; a missing bucket there shows as NoSuchBucket at the first write,
and `ftops preflight` checks the stack's buckets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jobs.config.environment import Environment, environment_file
from jobs.errors import CloudError

NOT_FOUND = {"404", "NoSuchBucket", "NotFound"}


def provision_hint(env: Environment) -> str:
    return f"provision {env.name} first: ftops infra deploy --env {env.name} creates the stack's KMS key and buckets"


def stack_buckets(env: Environment) -> list[str]:
    """The buckets the environment's stack makes (and its jobs write to): datasets, artifacts, checkpoints."""
    from jobs.config.resolved import resolved_aws

    aws = resolved_aws(env)
    return [aws.datasets_bucket, aws.output_bucket, aws.checkpoints_bucket]


def require_buckets(env: Environment, s3: Any, buckets: Iterable[str]) -> None:
    """Raise CloudError for the first of `buckets` that does not exist (emulated environments only)."""
    if not env.emulated:
        return
    from botocore.exceptions import BotoCoreError, ClientError

    for bucket in dict.fromkeys(buckets):  # each once, in order
        try:
            s3.head_bucket(Bucket=bucket)
            continue
        except (ClientError, BotoCoreError) as exc:
            from jobs.clients import credential_error

            if credential_error(exc, env) is not None:
                raise  # a login problem: the CLI root's one line for it
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code not in NOT_FOUND:  # e.g. the emulator is down: still one line, never a traceback
                reason = code or str(exc).splitlines()[0]
                raise CloudError(f"cannot reach bucket {bucket} of environment {env.name}: {reason}",
                                 source=environment_file(env.name), field="aws",
                                 hint="is the emulator running? `ftops local status`") from None
        stack = stack_buckets(env)
        hint = provision_hint(env) if bucket in stack else (
            f"it is not one of the stack's buckets ({', '.join(stack)}): use one of those, or create it yourself "
            "with the environment's KMS key")
        raise CloudError(f"bucket {bucket} does not exist in environment {env.name}",
                         source=environment_file(env.name), field="aws", hint=hint)
