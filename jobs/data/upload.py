"""`ftops data upload`: put a prepared dataset into the environment's S3 bucket and/or Blob container.

Content-addressed: keys come from the manifest (`<prefix><dataset id>/<split>/<file>`, `<dataset id>/<file>`), so
an object that exists with our sha256 in its metadata is the same bytes and is skipped. Large files go up in
parts on a thread pool: S3 multipart with a SHA-256 per part, Azure blocks staged and committed at the end.
Neither makes anything visible until the final complete/commit call, so an interruption never leaves a
half-written object; the next run finds the parts already uploaded (S3 multipart upload, Azure uncommitted
blocks), re-checks them and sends only the rest. After upload the object's size and sha256 metadata are read
back and compared (small objects are downloaded and hashed in full).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from jobs.buckets import (is_container_not_found, missing_container, provision_hint, require_buckets,
                          require_container)
from jobs.config.environment import Environment, environment_file, load_environment
from jobs.data.manifest import SPLITS, Manifest, manifest_file, read_manifest
from jobs.errors import CloudError, FtopsError
from jobs.fsutil import regular_file, sha256_file

Cloud = Literal["aws", "azure"]
FULL_VERIFY_BYTES = 64 << 20
"""Objects up to this size are downloaded and hashed after upload; larger ones are checked by size and metadata
(their parts were checksummed by the service on the way in)."""
MIN_PART = 5 << 20  # S3's smallest part (all but the last)
MAX_PARTS = 10_000

Progress = Callable[[str, int], None]
"""Called with (object label, bytes just sent)."""


class UploadedObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cloud: Cloud
    name: str
    """`train`, `validation`, `test` or `manifest`."""
    url: str
    bytes: int
    sha256: str
    status: Literal["uploaded", "resumed", "skipped"]
    transferred: int
    """Bytes actually sent this run (0 when skipped)."""


class UploadReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: str
    dataset_id: str
    objects: list[UploadedObject] = []

    @property
    def transferred(self) -> int:
        return sum(obj.transferred for obj in self.objects)


@dataclass(frozen=True)
class LocalFile:
    name: str
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Tuning:
    threshold: int
    part_size: int
    concurrency: int


def upload_dataset(env: Environment | str, manifest_dir: Path, clouds: Iterable[Cloud] | None = None, *,
                   on_progress: Progress | None = None, tuning: Tuning | None = None) -> UploadReport:
    """Upload the splits and then manifest.json (last, so its presence means the dataset is complete)."""
    env = load_environment(env) if isinstance(env, str) else env
    manifest = read_manifest(manifest_dir)
    manifest_dir = manifest_file(manifest_dir).parent  # `upload DIR/manifest.json` names the same dataset
    files = local_files(manifest, manifest_dir)
    chosen = list(clouds) if clouds is not None else enabled_clouds(env)
    if not chosen:
        raise FtopsError("this environment enables neither AWS nor Azure", source=environment_file(env.name),
                         hint="add an aws: or azure: block")
    tuning = tuning or Tuning(threshold=env.data.multipart_threshold_mb << 20,
                              part_size=max(8 << 20, MIN_PART), concurrency=env.data.upload_concurrency)
    report = UploadReport(env=env.name, dataset_id=manifest.dataset_id)
    progress = on_progress or (lambda label, sent: None)
    targets: list[tuple[Cloud, S3Target | BlobTarget]] = []
    for cloud in chosen:  # every bucket and container checked before the first byte goes anywhere
        with _cloud_errors(cloud, env):
            target = S3Target(env, manifest) if cloud == "aws" else BlobTarget(env, manifest)
            target.ensure_location()
            targets.append((cloud, target))
    for cloud, target in targets:
        with _cloud_errors(cloud, env):
            for file in files:
                report.objects.append(target.upload(file, tuning, progress))
    return report


@contextlib.contextmanager
def _cloud_errors(cloud: Cloud, env: Environment) -> Iterator[None]:
    """SDK failures become one line naming the cloud and the fix (no traceback for a missing login)."""
    try:
        yield
    except FtopsError:
        raise
    except Exception as exc:
        module = type(exc).__module__
        if not module.startswith(("botocore", "boto3", "azure")):
            raise
        from jobs.clients import credential_error

        login = credential_error(exc, env)   # a missing or expired login: the wording every command uses
        if login is not None:
            raise CloudError(f"{cloud} upload failed: {login.message}", source=environment_file(env.name),
                             hint=login.hint) from None
        if (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") == "NoSuchBucket":
            bucket = exc.response["Error"].get("BucketName") or "the datasets bucket"
            raise CloudError(f"bucket {bucket} does not exist in environment {env.name}",
                             source=environment_file(env.name), field="aws", hint=provision_hint(env)) from None
        if is_container_not_found(exc):  # deleted after the check
            raise missing_container(env, env.data.blob_container) from None
        hint = ("log in (aws sso login / AWS_PROFILE) or check the role's S3 permissions" if cloud == "aws"
                else "log in (az login / workload identity) and check the Storage Blob Data Contributor role")
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CloudError(f"{cloud} upload failed: {type(exc).__name__}: {first}", source=environment_file(env.name),
                         hint=hint) from None


def enabled_clouds(env: Environment) -> list[Cloud]:
    clouds: list[Cloud] = []
    if env.aws is not None and env.aws.enabled:
        clouds.append("aws")
    if env.azure is not None and env.azure.enabled:
        clouds.append("azure")
    return clouds


def local_files(manifest: Manifest, directory: Path) -> list[LocalFile]:
    """The split files (checked against the manifest: a changed file must not go up under the old address)."""
    files = []
    for split in SPLITS:
        if split not in manifest.files:
            continue
        entry = manifest.files[split]
        path = directory / entry.path
        if not path.exists():
            raise FtopsError(f"{entry.path} is missing", source=directory, hint="re-run `ftops data prepare`")
        regular_file(path, what="split file")  # a FIFO would block the hash below forever
        digest = sha256_file(path)
        if digest != entry.sha256:
            raise FtopsError(f"{entry.path} changed since prepare (sha256 {digest[:12]}, manifest {entry.sha256[:12]})",
                             source=path, hint="re-run `ftops data prepare` instead of editing prepared files")
        files.append(LocalFile(split, path, path.stat().st_size, digest))
    manifest_path = directory / "manifest.json"
    files.append(LocalFile("manifest", manifest_path, manifest_path.stat().st_size, sha256_file(manifest_path)))
    return files


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """(offset, length) per part; parts grow when a file would need more than S3's 10,000."""
    part_size = max(part_size, MIN_PART, -(-size // MAX_PARTS))
    return [(offset, min(part_size, size - offset)) for offset in range(0, size, part_size)] or [(0, 0)]


def read_range(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def _hash_stream(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _verify(url: str, expected: LocalFile, size: int | None, metadata_sha: str | None,
            download: Callable[[], Iterable[bytes]]) -> None:
    if size != expected.size or metadata_sha != expected.sha256:
        raise CloudError(f"verification failed for {url}: size {size} / sha256 {metadata_sha}, expected "
                         f"{expected.size} / {expected.sha256}", hint="re-run the upload; the object is replaced")
    if expected.size <= FULL_VERIFY_BYTES and _hash_stream(download()) != expected.sha256:
        raise CloudError(f"verification failed for {url}: the stored bytes hash differently",
                         hint="re-run the upload; the object is replaced")


def _reusable(file: LocalFile, download: Callable[[], Iterable[bytes]]) -> bool:
    """Whether an object found at `file`'s content address may be reused instead of uploaded again.

    Size and sha256 metadata are a claim by whoever wrote the object (anyone who can write the prefix can plant
    bytes under our address with our hash in its metadata). So the bytes are read back and hashed up to
    FULL_VERIFY_BYTES; a larger object that S3 has no full-object SHA-256 for is replaced rather than trusted.
    """
    return file.size <= FULL_VERIFY_BYTES and _hash_stream(download()) == file.sha256


class S3Target:
    def __init__(self, env: Environment, manifest: Manifest) -> None:
        from jobs.clients import aws_client
        from jobs.config.resolved import resolved_aws

        self.env = env
        self.manifest = manifest
        self.bucket = resolved_aws(env).datasets_bucket
        self.prefix = env.data.s3_prefix
        self.s3 = aws_client(env, "s3")

    def key(self, file: LocalFile) -> str:
        if file.name == "manifest":
            return f"{self.prefix}{self.manifest.dataset_id}/manifest.json"
        return self.manifest.s3_key(self.prefix, file.name)  # type: ignore[arg-type]

    def ensure_location(self) -> None:
        # Never created here, not even on the emulator (jobs.buckets says why): checked in emulated environments.
        require_buckets(self.env, self.s3, [self.bucket])

    def upload(self, file: LocalFile, tuning: Tuning, progress: Progress) -> UploadedObject:
        key = self.key(file)
        url = f"s3://{self.bucket}/{key}"
        size, stored_sha = self._head(key)
        if size == file.size and stored_sha == file.sha256 and self._holds(key, file):
            return UploadedObject(cloud="aws", name=file.name, url=url, bytes=file.size, sha256=file.sha256,
                                  status="skipped", transferred=0)
        metadata = {"sha256": file.sha256, "dataset-id": self.manifest.dataset_id}
        if file.size <= tuning.threshold:
            data = file.path.read_bytes()
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata=metadata,
                               ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                               ContentType="application/json" if file.name == "manifest" else "application/jsonl")
            progress(file.name, file.size)
            status, sent = "uploaded", file.size
        else:
            status, sent = self._multipart(key, file, metadata, tuning, progress)
        size, stored_sha = self._head(key)
        _verify(url, file, size, stored_sha,
                lambda: self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].iter_chunks(1 << 20))
        return UploadedObject(cloud="aws", name=file.name, url=url, bytes=file.size, sha256=file.sha256,
                              status=status, transferred=sent)

    def _holds(self, key: str, file: LocalFile) -> bool:
        """Whether the object at `key` is proven to hold `file`'s bytes (see `_reusable`): S3's own SHA-256 of a
        single-part object (computed by S3 from the bytes, never a claim), or the bytes read back and hashed."""
        head = self.s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        checksum = head.get("ChecksumSHA256") or ""
        if "-" not in checksum and checksum == base64.b64encode(bytes.fromhex(file.sha256)).decode():
            return True
        return _reusable(file, lambda: self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].iter_chunks(1 << 20))

    def _head(self, key: str) -> tuple[int | None, str | None]:
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None, None
            raise
        return head["ContentLength"], head.get("Metadata", {}).get("sha256")

    def _multipart(self, key: str, file: LocalFile, metadata: dict[str, str], tuning: Tuning,
                   progress: Progress) -> tuple[str, int]:
        ranges = part_ranges(file.size, tuning.part_size)
        upload_id, done = self._resumable(key, file, ranges)
        if upload_id is None:
            upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, Metadata=metadata,
                                                        ChecksumAlgorithm="SHA256")["UploadId"]
        for number in done:
            progress(file.name, ranges[number - 1][1])
        lock = threading.Lock()
        sent = 0

        def send(number: int) -> dict:
            nonlocal sent
            offset, length = ranges[number - 1]
            data = read_range(file.path, offset, length)
            checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
            response = self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                           Body=data, ChecksumSHA256=checksum)
            with lock:
                sent += length
            progress(file.name, length)
            return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}

        todo = [number for number in range(1, len(ranges) + 1) if number not in done]
        with ThreadPoolExecutor(tuning.concurrency) as pool:
            parts = {part["PartNumber"]: part for part in pool.map(send, todo)}
        parts.update(done)
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                          MultipartUpload={"Parts": [parts[n] for n in sorted(parts)]})
        return ("resumed" if done else "uploaded"), sent

    def _resumable(self, key: str, file: LocalFile, ranges: list[tuple[int, int]]) -> tuple[str | None, dict[int, dict]]:
        """An earlier, interrupted multipart upload of this key and the parts of it that match our bytes."""
        uploads = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=key).get("Uploads", [])
        for upload in uploads:
            if upload["Key"] != key:
                continue
            upload_id = upload["UploadId"]
            done: dict[int, dict] = {}
            listed = self.s3.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id).get("Parts", [])
            for part in listed:
                number = part["PartNumber"]
                if number > len(ranges) or part["Size"] != ranges[number - 1][1]:
                    continue
                data = read_range(file.path, *ranges[number - 1])
                checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
                # Real S3 returns the part's SHA-256; without it (emulators, SSE-S3) the ETag is the part's MD5.
                if part.get("ChecksumSHA256") == checksum or part["ETag"].strip('"') == hashlib.md5(data).hexdigest():
                    done[number] = {"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": checksum}
            return upload_id, done
        return None, {}


class BlobTarget:
    def __init__(self, env: Environment, manifest: Manifest) -> None:
        from jobs.clients import blob_service

        self.env = env
        self.manifest = manifest
        self.container_name = env.data.blob_container
        self.service = blob_service(env)
        self.container = self.service.get_container_client(self.container_name)

    def blob_name(self, file: LocalFile) -> str:
        if file.name == "manifest":
            return f"{self.manifest.dataset_id}/manifest.json"
        return self.manifest.blob_name(file.name)  # type: ignore[arg-type]

    def ensure_location(self) -> None:
        # Never created here, not even on Azurite (jobs.buckets says why): `ftops infra apply --cloud azure` makes it.
        require_container(self.env, self.container, real_too=True)

    def upload(self, file: LocalFile, tuning: Tuning, progress: Progress) -> UploadedObject:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import BlobBlock, ContentSettings

        name = self.blob_name(file)
        blob = self.container.get_blob_client(name)
        url = blob.url
        size, stored_sha = self._head(blob)
        if size == file.size and stored_sha == file.sha256 and _reusable(file, lambda: blob.download_blob().chunks()):
            return UploadedObject(cloud="azure", name=file.name, url=url, bytes=file.size, sha256=file.sha256,
                                  status="skipped", transferred=0)
        metadata = {"sha256": file.sha256, "datasetid": self.manifest.dataset_id}
        content = ContentSettings(content_type="application/json" if file.name == "manifest" else "application/jsonl")
        if file.size <= tuning.threshold:
            blob.upload_blob(file.path.read_bytes(), overwrite=True, metadata=metadata, content_settings=content,
                             validate_content=True)
            progress(file.name, file.size)
            status, sent = "uploaded", file.size
        else:
            ranges = part_ranges(file.size, tuning.part_size)
            ids = [self._block_id(file, index, offset, length) for index, (offset, length) in enumerate(ranges)]
            try:
                staged = {b.id: b.size for b in blob.get_block_list("uncommitted")[1]}
            except ResourceNotFoundError:
                staged = {}
            lock = threading.Lock()
            sent = 0

            def stage(index: int) -> None:
                nonlocal sent
                offset, length = ranges[index]
                if staged.get(ids[index]) == length:
                    progress(file.name, length)
                    return
                # validate_content: the service checks each block's MD5 as it arrives.
                blob.stage_block(ids[index], read_range(file.path, offset, length), validate_content=True)
                with lock:
                    sent += length
                progress(file.name, length)

            with ThreadPoolExecutor(tuning.concurrency) as pool:
                list(pool.map(stage, range(len(ranges))))
            blob.commit_block_list([BlobBlock(block_id=block_id) for block_id in ids], metadata=metadata,
                                   content_settings=content)
            status = "resumed" if sent < file.size else "uploaded"
        size, stored_sha = self._head(blob)
        _verify(url, file, size, stored_sha, lambda: blob.download_blob().chunks())
        return UploadedObject(cloud="azure", name=file.name, url=url, bytes=file.size, sha256=file.sha256,
                              status=status, transferred=sent)

    @staticmethod
    def _block_id(file: LocalFile, index: int, offset: int, length: int) -> str:
        """Ids name the file's hash, the block's index and length (all ids of a blob have one length), so a staged
        block with our id holds our bytes."""
        return f"{file.sha256[:40]}-{index:06d}-{length:012d}"  # the SDK base64-encodes it; 60 bytes <= 64

    @staticmethod
    def _head(blob) -> tuple[int | None, str | None]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            properties = blob.get_blob_properties()
        except ResourceNotFoundError:
            return None, None
        return properties.size, (properties.metadata or {}).get("sha256")
