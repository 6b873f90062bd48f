"""Input artifacts in S3, read with the job's own artifact credentials.

The artifact is a zip that can be large (a whole checkout); the worker needs one small member.
`RangeReader` is a seekable file over ranged GETs, so `zipfile` reads the end-of-archive record,
the central directory and that member only: a handful of requests whatever the archive's size,
and nothing is extracted to disk.
"""

from __future__ import annotations

import io
import threading
import zipfile
from typing import IO, Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from worker.errors import ConfigurationError, SpecError
from worker.jobs import Artifact, Credentials

BLOCK = 64 * 1024  # one GET fetches at least this much: EOCD + central directory usually fit


class S3Clients:
    """S3 clients signed with a job's artifact credentials (never the worker's own role).

    All come from one shared session, so botocore's service models are loaded once: a client per
    job then costs milliseconds and little memory instead of a whole new session.
    """

    def __init__(self, session: boto3.session.Session, *, retries: int = 5) -> None:
        self.session = session
        self.config = BotoConfig(signature_version="s3v4", retries={"mode": "standard", "total_max_attempts": retries})
        self._lock = threading.Lock()  # a session is not thread-safe; the clients it makes are

    def for_job(self, credentials: Credentials | None) -> Any:
        """A client signed with the job's credentials; a job without them is refused, never read as the worker."""
        if credentials is None:
            raise ConfigurationError(
                "the pipeline's artifact store gave no credentials for this job (the job has no artifactCredentials); "
                "the worker reads and writes artifacts only with a job's own credentials, never with its own role: "
                "check that the action has its input artifact and that the pipeline's artifact store is in S3")
        with self._lock:
            return self.session.client(
                "s3", config=self.config, aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key, aws_session_token=credentials.session_token)


class RangeReader(io.RawIOBase):
    """A read-only, seekable view of one S3 object, fetched by byte ranges on demand.

    The first request is a suffix range: it learns the size and holds the zip's tail (end
    record and central directory) in one round trip. Later ranges carry IfMatch, so an artifact
    replaced mid-read fails loudly instead of mixing two archives.
    """

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.requests = 0
        resp = self._get(f"bytes=-{BLOCK}")
        body = resp["Body"].read()
        content_range = resp.get("ContentRange") or ""
        self.size = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else len(body)
        self.etag: str = resp.get("ETag", "")
        self.pos = 0
        self._buf_start, self._buf = self.size - len(body), body

    def _get(self, byte_range: str, **extra: Any) -> Any:
        self.requests += 1
        return self.client.get_object(Bucket=self.bucket, Key=self.key, Range=byte_range, **extra)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, b: Any) -> int:
        want = min(len(b), self.size - self.pos)
        if want <= 0:
            return 0
        if not self._buf_start <= self.pos < self._buf_start + len(self._buf):
            end = min(self.size, self.pos + max(want, BLOCK))
            extra = {"IfMatch": self.etag} if self.etag else {}
            self._buf_start, self._buf = self.pos, self._get(f"bytes={self.pos}-{end - 1}", **extra)["Body"].read()
        offset = self.pos - self._buf_start
        chunk = self._buf[offset: offset + want]
        b[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def read_member(client: Any, artifact: Artifact, member: str, *, max_bytes: int) -> bytes:
    """One member of the artifact zip in S3, at most `max_bytes` uncompressed; raises SpecError otherwise."""
    try:
        reader = RangeReader(client, artifact.bucket, artifact.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidRange":
            raise
        raise SpecError(f"input artifact {artifact.name!r} is empty; it must be a zip holding the spec file") from exc
    return read_zip_member(reader, artifact.name, member, max_bytes=max_bytes)


def read_zip_member(fileobj: IO[bytes], artifact_name: str, member: str, *, max_bytes: int) -> bytes:
    """The spec file from a zip (any seekable file: S3 ranges or a local artifact), size-capped."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as exc:
        raise SpecError(f"input artifact {artifact_name!r} is not a zip archive ({exc}); the first input "
                        "artifact must be the source output that contains the spec file") from exc
    with archive:
        name = member.lstrip("/")
        try:
            info = archive.getinfo(name)
        except KeyError:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            raise SpecError(missing_spec_message(name, artifact_name, names)) from None
        check_spec_size(name, info.file_size, max_bytes)
        with archive.open(info) as fh:
            data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SpecError(f"spec file {name!r} is larger than {max_bytes} bytes once decompressed (spec_max_bytes)")
    return data


def missing_spec_message(name: str, artifact_name: str, files: list[str]) -> str:
    """Where the spec file might be instead, so the fix is one property away."""
    near = [n for n in files if n.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]]
    hint = (f"found it at {', '.join(near[:3])}: set the action's SpecFile property to that path"
            if near else f"the archive holds {len(files)} files, e.g. {', '.join(files[:5]) or 'none'}; "
            "commit the spec file at the repository root or set the action's SpecFile property")
    return f"spec file {name!r} not found in input artifact {artifact_name!r}; {hint}"


def check_spec_size(name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise SpecError(f"spec file {name!r} is {size} bytes; the limit is {max_bytes} "
                        "(spec_max_bytes); keep only targets and parameters in it")


def write_output(client: Any, artifact: Artifact, files: dict[str, bytes], *, kms_key_id: str | None) -> None:
    """Upload the action's output artifact (a zip), encrypted as CodePipeline expects (SSE-KMS)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    extra = {"SSEKMSKeyId": kms_key_id} if kms_key_id else {}
    client.put_object(Bucket=artifact.bucket, Key=artifact.key, Body=buf.getvalue(), ServerSideEncryption="aws:kms",
                      **extra)


def presigned_url(client: Any, artifact: Artifact, expires: int) -> str:
    """A GET URL for the exact artifact revision, signed with the job's credentials."""
    return client.generate_presigned_url("get_object", Params={"Bucket": artifact.bucket, "Key": artifact.key},
                                         ExpiresIn=expires)
