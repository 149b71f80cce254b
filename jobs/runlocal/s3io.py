"""The S3 transfers SageMaker does around a training container: channels in, checkpoints both ways, artifacts out."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from jobs.errors import CloudError, FtopsError


def split_uri(uri: str, field: str = "S3Uri") -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise FtopsError(f"{uri!r} is not an s3://bucket/key URI", field=field)
    return parsed.netloc, parsed.path.lstrip("/")


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def _call(what: str, uri: str, fn, *args, **kwargs):
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(*args, **kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise CloudError(f"{what} {uri} failed: {code}", hint="check the URI and that the data was uploaded") from None
    except BotoCoreError as exc:
        raise CloudError(f"{what} {uri} failed: {exc}", hint="is the emulator running? `ftops local up`") from None


def list_objects(s3, uri: str) -> dict[str, str]:
    """Objects under `uri` as relative path -> key. A URI naming one object lists as that file's name."""
    bucket, prefix = split_uri(uri)
    out: dict[str, str] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in _call("listing", uri, lambda: list(paginator.paginate(Bucket=bucket, Prefix=prefix))):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key == prefix:
                out[Path(key).name] = key
            elif not prefix or prefix.endswith("/") or key.startswith(prefix + "/"):
                rel = key[len(prefix):].lstrip("/")
                if rel and not rel.endswith("/"):
                    out[rel] = key
    return out


def download_prefix(s3, uri: str, dest: Path) -> int:
    """Download every object under `uri` into `dest`, keeping relative paths; returns the count."""
    bucket, _prefix = split_uri(uri)
    objects = list_objects(s3, uri)
    for rel, key in objects.items():
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise CloudError(f"refusing to download s3://{bucket}/{key}: the key escapes the target directory")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        _call("downloading", f"s3://{bucket}/{key}", s3.download_file, bucket, key, str(target))
    return len(objects)


def upload_file(s3, path: Path, uri: str, kms_key: str | None = None) -> None:
    bucket, key = split_uri(uri)
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else None
    _call("uploading to", uri, s3.upload_file, str(path), bucket, key, ExtraArgs=extra)


def sync_up(s3, local: Path, uri: str, kms_key: str | None = None, known: dict[str, tuple[int, int]] | None = None,
            delete: bool = True) -> dict[str, tuple[int, int]]:
    """Mirror `local` to `uri` as SageMaker's checkpoint sync does: changed files up, removed files deleted.

    `known` is the (size, mtime_ns) per file from the previous sync, so unchanged files are not re-uploaded.
    """
    known = dict(known or {})
    current: dict[str, tuple[int, int]] = {}
    if local.is_dir():
        for path in sorted(local.rglob("*")):
            if not path.is_file() or path.name.endswith(".partial"):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed by checkpoint rotation while we walked
                continue
            rel = path.relative_to(local).as_posix()
            current[rel] = (stat.st_size, stat.st_mtime_ns)
            if known.get(rel) != current[rel]:
                try:
                    upload_file(s3, path, join(uri, rel), kms_key)
                except (FileNotFoundError, CloudError):
                    current.pop(rel)  # vanished mid-upload; the next sync decides
    if delete:
        bucket, _prefix = split_uri(uri)
        stale = [key for rel, key in list_objects(s3, uri).items() if rel not in current]
        for start in range(0, len(stale), 1000):
            batch = [{"Key": key} for key in stale[start:start + 1000]]
            _call("deleting from", uri, s3.delete_objects, Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return current

