"""The environment's storage is provisioned, never made on the fly: ftops checks it, never creates it.

S3 buckets are the stack's (`ftops infra deploy`); the Blob container is `ftops infra apply --cloud azure`'s (with
the pipeline's Storage Blob Data Contributor assignment on it, and soft delete on its account).

A bucket a command made would lack what the stack gives the real ones (SSE-KMS with the environment's key,
TLS-only policy, public access blocked, versioning), and the later `ftops infra deploy` would fail on it with
BucketAlreadyExists. So in an emulated environment a command that writes to S3 first checks that its buckets
exist, before it writes anything anywhere, and refuses with one line naming the bucket, the environment and the
provisioning step. Real environments are not checked here: HeadBucket needs s3:ListBucket on the whole bucket,
which the pipeline role holds only per prefix; a missing bucket there shows as NoSuchBucket at the first write,
and `ftops preflight` checks the stack's buckets.

A container a command made on Azurite would be one the provisioning never made (no ARM record, no role
assignment), so a `local` that skipped `infra apply` would silently differ from a provisioned one. In an
emulated environment a command that writes to Blob checks the container first (`require_container`); in a real
one a missing container is one line too (`missing_container`), when the first call finds it gone (a check there
would need a container read permission the pipeline role does not otherwise use).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
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


# --- Blob containers ---------------------------------------------------------------------------------------------

def container_provision_hint(env: Environment) -> str:
    return (f"provision {env.name} first: ftops infra apply --cloud azure --env {env.name} creates the storage "
            "account, its container and the role assignment on it")


def missing_container(env: Environment, container: str) -> CloudError:
    """The one line for a container that does not exist, in any environment."""
    account = env.require_azure().storage_account
    return CloudError(f"container {container} does not exist in storage account {account} of environment "
                      f"{env.name}", source=environment_file(env.name), field="data.blob_container",
                      hint=container_provision_hint(env))


def is_container_not_found(exc: BaseException) -> bool:
    """Whether a Blob call failed because the container (not the blob) does not exist."""
    return getattr(exc, "error_code", None) == "ContainerNotFound"


@contextlib.contextmanager
def container_checked(missing: Callable[[], Exception] | None) -> Iterator[None]:
    """A block of Blob calls whose ContainerNotFound becomes `missing()` (the one line naming the container and
    its provisioning step); without it a missing container would read as a missing blob."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        yield
    except ResourceNotFoundError as exc:
        if is_container_not_found(exc) and missing is not None:
            raise missing() from None
        raise


def container_exists(env: Environment, container: Any) -> bool:
    """Whether `container` (a ContainerClient) exists; an unreachable service is one line, a refused login is left
    to the CLI root's line for it."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    try:
        return bool(container.exists())
    except ResourceNotFoundError:
        return False
    except AzureError as exc:
        from jobs.clients import credential_error

        if credential_error(exc, env) is not None:
            raise
        hint = ("is the emulator running? `ftops local status`" if env.emulated
                else "check your Azure login and the storage account's role assignments")
        raise CloudError(f"cannot reach container {container.container_name} of environment {env.name}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                         source=environment_file(env.name), field="data.blob_container", hint=hint) from None


def require_container(env: Environment, container: Any, *, real_too: bool = False) -> None:
    """Raise `missing_container` when `container` does not exist: in emulated environments (as `require_buckets`),
    and in real ones too with `real_too` (data upload, which always checked it)."""
    if not (env.emulated or real_too):
        return
    if not container_exists(env, container):
        raise missing_container(env, container.container_name)
