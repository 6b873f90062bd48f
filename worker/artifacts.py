"""Input artifacts in S3, read with the job's own artifact credentials.

The artifact is a zip that can be large (a whole checkout); the worker needs one small member.
`RangeReader` is a seekable file over ranged GETs, so `archive.read_zip_member` reads the end
record, the central directory and that member only: a handful of requests whatever the archive's
size, and nothing is extracted to disk.
"""

from __future__ import annotations

import io
import threading
import zipfile
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from worker.archive import TAIL, read_zip_member, spec_member
from worker.errors import SpecError
from worker.jobs import Artifact, Credentials

BLOCK = 64 * 1024  # a GET after the first fetches at least this much


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
        with self._lock:
            return self.session.client(
                "s3", config=self.config,
                aws_access_key_id=credentials.access_key_id if credentials else None,
                aws_secret_access_key=credentials.secret_access_key if credentials else None,
                aws_session_token=credentials.session_token if credentials else None)


class RangeReader(io.RawIOBase):
    """A read-only, seekable view of one S3 object, fetched by byte ranges on demand.

    The first request is a suffix range: it learns the size and holds the zip's tail (end
    record, and usually the central directory) in one round trip. Later ranges carry IfMatch, so
    an artifact replaced mid-read fails loudly instead of mixing two archives.
    """

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.requests = 0
        resp = self._get(f"bytes=-{TAIL}")
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
    spec_member(member)  # a bad SpecFile property fails before any request
    try:
        reader = RangeReader(client, artifact.bucket, artifact.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidRange":
            raise
        raise SpecError(f"input artifact {artifact.name!r} is empty; it must be a zip holding the spec file") from exc
    return read_zip_member(reader, artifact.name, member, max_bytes=max_bytes)


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
