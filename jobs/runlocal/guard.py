"""What the local runner accepts from a request before it touches the disk or S3.

A `sagemaker.json` is input: on SageMaker its names are only names, but locally they become paths and the
environment of a process on the user's machine. So before anything runs:

- `TrainingJobName` and every `ChannelName` must match SageMaker's own patterns (botocore's service model), and
  the paths built from them, and `sagemaker_program`, must resolve inside the run's work directory;
- the request's `Environment` reaches the script without the variables that the dynamic loader, the Python
  interpreter or a shell act on before any of our code runs (`LD_PRELOAD`, `PYTHONPATH`, `BASH_ENV`, ...), nor
  credentials or AWS configuration: on SageMaker they would act inside a throwaway container; here they would act
  on this machine with the user's rights. A deny-list (not an allow-list) because `Environment` is where a job
  legitimately puts its own settings (`HF_*`, `NCCL_*`, `TORCH_*`, `WANDB_PROJECT`, ...), which we cannot list;
  the variables that change how a process is loaded are a small set, documented in ld.so(8), python(1) and
  bash(1). The list below is written from those pages as we know them, not re-checked against a given glibc,
  Python or bash release: hence whole prefixes (`LD_`, `PYTHON`) rather than single names.
- a job that already has outputs or checkpoints in S3 is not silently resumed or overwritten (`existing`).
"""

from __future__ import annotations

import re
import secrets
from functools import cache
from pathlib import Path

from jobs.errors import FtopsError

# Prefixes and names dropped from the request's Environment (see the module docstring).
DENIED_PREFIXES = ("LD_", "DYLD_", "PYTHON", "AWS_", "MALLOC_", "GCONV_", "NLSPATH")
DENIED_NAMES = frozenset({
    "PATH", "HOME", "SHELL", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "IFS", "CDPATH", "GLOBIGNORE",
    "PROMPT_COMMAND", "GLIBC_TUNABLES", "HOSTALIASES", "LOCPATH", "RESOLV_HOST_CONF", "TMPDIR",
    "NODE_OPTIONS", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB", "OPENSSL_CONF", "OPENSSL_ENGINES",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY",
    "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "SSH_ASKPASS", "EDITOR", "VISUAL", "PAGER",
})
# What we never pass down from the user's own environment either: the runner does every S3 transfer itself, so
# the script needs no credentials (SageMaker gives the container its execution role, not the submitter's keys).
HOST_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                    "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH")


@cache
def _pattern(shape: str) -> tuple[re.Pattern[str], int]:
    """SageMaker's regex and maximum length for a shape, from botocore's service model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker").shape_for(shape)
    return re.compile(model.metadata["pattern"]), int(model.metadata["max"])


def check_name(value: object, shape: str, field: str) -> str:
    pattern, longest = _pattern(shape)
    text = str(value) if isinstance(value, str) else ""
    if not text or len(text) > longest or not pattern.fullmatch(text) or text in {".", ".."}:
        raise FtopsError(f"{value!r} is not a valid SageMaker {shape} (pattern {pattern.pattern}, at most "
                         f"{longest} characters)", field=field,
                         hint="render the job with `ftops render`; names become paths in the local run")
    return text


def inside(base: Path, relative: str, field: str) -> Path:
    """`base/relative`, refusing an absolute path or one that resolves outside `base` (`..`, a symlink out)."""
    if not relative or Path(relative).is_absolute():
        raise FtopsError(f"{relative!r} must be a path relative to the source directory", field=field)
    root = base.resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise FtopsError(f"{relative!r} leads outside the source directory", field=field,
                         hint="use the script's path inside the source archive, without '..'")
    return path


def check_request(request: dict) -> None:
    """Names that become local paths match SageMaker's patterns (before anything is created or deleted)."""
    check_name(request.get("TrainingJobName"), "TrainingJobName", "TrainingJobName")
    program = str((request.get("HyperParameters") or {}).get("sagemaker_program", "")).strip('"')
    if program and (Path(program).is_absolute() or ".." in Path(program).parts):
        raise FtopsError(f"{program!r} must be a path inside the source archive (relative, without '..')",
                         field="HyperParameters.sagemaker_program")
    for i, channel in enumerate(request.get("InputDataConfig") or []):
        if isinstance(channel, dict):
            check_name(channel.get("ChannelName"), "ChannelName", f"InputDataConfig[{i}].ChannelName")


def is_denied(name: str) -> bool:
    return name in DENIED_NAMES or name.upper().startswith(DENIED_PREFIXES)


def filter_environment(environment: dict | None) -> tuple[dict[str, str], list[str]]:
    """The request's Environment without loader, interpreter, shell, proxy and credential variables;
    returns (kept, dropped names)."""
    pattern, _ = _pattern("EnvironmentKey")
    kept, dropped = {}, []
    for key, value in (environment or {}).items():
        name = str(key)
        if not pattern.fullmatch(name) or is_denied(name):
            dropped.append(name)
        else:
            kept[name] = str(value)
    return kept, sorted(dropped)


# --- a job that already ran -----------------------------------------------------------------------------------

def prefixes(request: dict) -> dict[str, str]:
    """The S3 prefixes this job writes: its output folder and its checkpoint prefix."""
    from jobs.runlocal import s3io

    out = {"output": s3io.join(request["OutputDataConfig"]["S3OutputPath"], request["TrainingJobName"]) + "/"}
    checkpoint = (request.get("CheckpointConfig") or {}).get("S3Uri")
    if checkpoint:
        out["checkpoints"] = checkpoint.rstrip("/") + "/"
    return out


def buckets(request: dict) -> list[str]:
    """Every bucket the run reads (channels, source archive) or writes (output, checkpoints, TensorBoard)."""
    from jobs.runlocal import s3io

    channels = [c.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
                for c in request.get("InputDataConfig") or [] if isinstance(c, dict)]
    source = str((request.get("HyperParameters") or {}).get("sagemaker_submit_directory", "")).strip('"')
    tensorboard = (request.get("TensorBoardOutputConfig") or {}).get("S3OutputPath")
    uris = [*channels, source, *prefixes(request).values(), tensorboard]
    return [s3io.split_uri(uri)[0] for uri in uris if isinstance(uri, str) and uri.startswith("s3://")]


def existing(s3, request: dict) -> dict[str, str]:
    """Which of this job's prefixes already hold objects (kind -> prefix URI)."""
    from jobs.runlocal import s3io

    found = {}
    for kind, uri in prefixes(request).items():
        bucket, key = s3io.split_uri(uri)
        try:
            page = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except Exception as exc:  # botocore ClientError: a bucket that does not exist holds nothing
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "NoSuchBucket":
                continue
            raise FtopsError(f"cannot list {uri}: {exc}", hint="is the emulator running? `ftops local up`") from None
        if page.get("KeyCount", 0):
            found[kind] = uri
    return found


def fresh(request: dict, suffix: str | None = None) -> dict:
    """A copy of the request under a new job name, with the checkpoint prefix's last segment renamed alike: a
    run that shares nothing in S3 with the job it was rendered as."""
    old = request["TrainingJobName"]
    suffix = suffix or f"run-{secrets.token_hex(3)}"
    _, longest = _pattern("TrainingJobName")
    name = f"{old[:longest - len(suffix) - 1].rstrip('-')}-{suffix}"
    copy = {**request, "TrainingJobName": name}
    checkpoint = (request.get("CheckpointConfig") or {}).get("S3Uri")
    if checkpoint:
        from jobs.runlocal import s3io

        bucket, key = s3io.split_uri(checkpoint, field="CheckpointConfig.S3Uri")
        parts = [part for part in key.split("/") if part][:-1]  # ftops renders .../checkpoints/<job name>/
        copy["CheckpointConfig"] = {**request["CheckpointConfig"],
                                    "S3Uri": f"s3://{bucket}/{'/'.join([*parts, name])}/"}
    return copy
