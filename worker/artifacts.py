"""Input artifacts in S3, read with the job's own artifact credentials, and read as hostile input.

The artifact is a zip that can be large (a whole checkout); the worker needs one small member.
`RangeReader` is a seekable file over ranged GETs whose first request is the last `TAIL` bytes:
the end record, and usually the whole central directory. So a spec read costs that request and
one for the member, whatever the archive's size, and nothing is extracted to disk.

Whoever can push to the source repository writes the artifact. So the zip is not handed to
`zipfile` (which builds an object per directory entry, ~0.6 KB each, and decompresses bzip2 and
LZMA members without an output cap): `read_zip_member` reads the end record itself (zip64 too),
checks its entry count and directory size against `MAX_DIRECTORY_ENTRIES` and
`MAX_DIRECTORY_BYTES` before anything else is read, scans the directory in `CHUNK`-sized pieces
for the one member (nothing kept per entry), and decompresses only a stored or deflated member,
its output capped at `max_bytes` whatever its headers say, its size and CRC-32 checked. It takes
any seekable binary file: `RangeReader`, or a local zip (dry-run). Everything wrong is a SpecError
naming the member or the artifact and the fix.
"""

from __future__ import annotations

import io
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from worker.errors import ConfigurationError, SpecError
from worker.jobs import Artifact, Credentials

BLOCK = 64 * 1024  # a GET after the first fetches at least this much
MAX_DIRECTORY_ENTRIES = 100_000  # files in the artifact: a large monorepo checkout fits
MAX_DIRECTORY_BYTES = 8 * 1024 * 1024  # its central directory: ~80 bytes an entry, so room for the entries
CHUNK = 2 * 1024 * 1024  # the directory is read this much at a time (one ranged GET each)

_END = struct.Struct("<4s4H2LH")  # end of central directory record (APPNOTE 4.3.16)
_END_SIG = b"PK\x05\x06"
_MAX_COMMENT = 0xFFFF
TAIL = _END.size + _MAX_COMMENT  # the end record is somewhere in this many last bytes
_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator (4.3.15)
_LOCATOR_SIG = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record (4.3.14)
_END64_SIG = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header (4.3.12)
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header (4.3.7)
_LOCAL_SIG = b"PK\x03\x04"
_EXTRA = struct.Struct("<HH")
_ZIP64_EXTRA = 0x0001
_MASK32 = 0xFFFFFFFF

_ENCRYPTED, _STRONG_ENCRYPTION, _UTF8 = 0x0001, 0x0040, 0x0800  # general purpose flag bits (4.4.4)
STORED, DEFLATED = 0, 8
_AES = 99  # WinZip AES encryption, recorded as a compression method
_METHOD_NAMES = {1: "Shrink", 6: "Implode", 9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "XZ",
                 97: "WavPack", 98: "PPMd"}
_SHOWN_NAMES = 5  # files named when the spec file is not found
_SHOWN_NEAR = 3  # places named where a file of the same name is


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
    record, and usually the central directory) in one round trip. Later ranges carry IfMatch, so
    an artifact replaced mid-read fails loudly instead of mixing two archives.
    """

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        resp = self._get(f"bytes=-{TAIL}")
        body = resp["Body"].read()
        content_range = resp.get("ContentRange") or ""
        self.size = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else len(body)
        self.etag: str = resp.get("ETag", "")
        self.pos = 0
        self._buf_start, self._buf = self.size - len(body), body

    def _get(self, byte_range: str, **extra: Any) -> Any:
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


# ------------------------------------------------------------------------- the zip, as hostile input


@dataclass(frozen=True)
class Directory:
    """Where the central directory is, as the end record says (checked against the limits)."""

    start: int  # file offset of the first entry (the shift already added)
    size: int
    shift: int  # bytes before the archive proper (a self-extracting stub): added to every offset


class Entry(NamedTuple):
    """One central directory entry: what is needed to find, check and read its member (a tuple:
    made once per entry, so it must be cheap)."""

    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int  # as recorded: add the directory's shift to find it in the file
    extra: bytes

    @property
    def name(self) -> str:
        """The name as zipfile decodes it: UTF-8 when flagged, else code page 437."""
        return self.raw_name.decode("utf-8", "replace") if self.flags & _UTF8 else self.raw_name.decode("cp437")


def spec_member(spec_file: str) -> str:
    """The action's SpecFile as a path inside the artifact: relative, without '..' (shared by the
    daemon and dry-run, so neither reads outside the artifact or checkout)."""
    if not spec_file:
        problem = "is empty"
    elif spec_file.startswith("/"):
        problem = "is an absolute path"
    elif "\\" in spec_file:
        problem = "contains '\\'; separate folders with '/'"
    elif ".." in spec_file.split("/"):
        problem = "contains a '..' component"
    elif not spec_file.isprintable():
        problem = "contains a control character"
    else:
        problem = ""
    parts = [part for part in spec_file.split("/") if part not in ("", ".")]
    if problem or not parts:
        raise SpecError(f"the action's SpecFile property {spec_file!r} {problem or 'names no file'}; give a path "
                        "inside the input artifact, relative to its root, such as abc.json or deploy/abc.json")
    return "/".join(parts)


def read_zip_member(fileobj: IO[bytes], artifact_name: str, spec_file: str, *, max_bytes: int) -> bytes:
    """The spec file out of a zip (any seekable file: S3 ranges or a local artifact), bounded as the
    module docstring says."""
    name = spec_member(spec_file)
    directory = find_directory(fileobj, artifact_name)
    found: Entry | None = None
    folder = False
    utf8, cp437 = name.encode(), _cp437(name)
    for entry in entries(fileobj, directory, artifact_name):
        wanted = utf8 if entry.flags & _UTF8 else cp437  # raw bytes compared: no name is decoded
        if wanted is None:
            continue
        folder = folder or entry.raw_name.startswith(wanted + b"/")
        if entry.raw_name == wanted:
            if found is not None:
                raise SpecError(f"input artifact {artifact_name!r} holds {name!r} more than once; re-create the "
                                "zip so that it holds each file once")
            found = entry
    if found is None and folder:
        raise spec_folder_error(name, artifact_name)
    if found is None:
        listed = (entry.name for entry in entries(fileobj, directory, artifact_name))
        raise SpecError(missing_spec_message(name, artifact_name, (n for n in listed if not n.endswith("/"))))
    member = _with_zip64(found, artifact_name)
    member = member._replace(header_offset=member.header_offset + directory.shift)
    return read_entry(fileobj, member, name, artifact_name, max_bytes=max_bytes)


def missing_spec_message(name: str, artifact_name: str, files: Iterable[str]) -> str:
    """Where the spec file might be instead, so the fix is one property away (one pass, bounded)."""
    base = name.rsplit("/", 1)[-1]
    count, first, near = 0, [], []
    for file in files:
        count += 1
        if len(first) < _SHOWN_NAMES:
            first.append(_shown(file))
        if len(near) < _SHOWN_NEAR and file.rsplit("/", 1)[-1] == base:
            near.append(_shown(file))
    hint = (f"found it at {', '.join(near)}: set the action's SpecFile property to that path"
            if near else f"the archive holds {count} files, e.g. {', '.join(first) or 'none'}; "
            "commit the spec file at the repository root or set the action's SpecFile property")
    return f"spec file {name!r} not found in input artifact {artifact_name!r}; {hint}"


def spec_folder_error(name: str, artifact_name: str) -> SpecError:
    return SpecError(f"spec file {name!r} in input artifact {artifact_name!r} is a folder; set the action's SpecFile "
                     "property to the file inside it")


def check_spec_size(name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise SpecError(f"spec file {name!r} is {size} bytes; the limit is {max_bytes} "
                        "(spec_max_bytes); keep only targets and parameters in it")


def _cp437(name: str) -> bytes | None:
    """The name as an entry without the UTF-8 flag records it (None: it cannot)."""
    try:
        return name.encode("cp437")
    except UnicodeEncodeError:
        return None


def _shown(name: str, limit: int = 100) -> str:
    """A file name from the archive as a message may show it: printable, not too long."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name[:limit])
    return text + "…" if len(name) > limit else text


def _not_zip(artifact_name: str, reason: str) -> SpecError:
    return SpecError(f"input artifact {artifact_name!r} is not a zip archive ({reason}); the first input artifact "
                     "must be the source output that contains the spec file")


def _damaged(name: str, artifact_name: str, reason: str) -> SpecError:
    return SpecError(f"spec file {name!r} in input artifact {artifact_name!r} is damaged ({reason}); re-create the "
                     "artifact: push the commit again or re-run the source action")


def _read_at(fileobj: IO[bytes], offset: int, length: int) -> bytes:
    """`length` bytes at `offset`, fewer only where the file ends (a raw file may return short reads)."""
    fileobj.seek(offset)
    parts: list[bytes] = []
    while length > 0 and (chunk := fileobj.read(length)):
        parts.append(chunk)
        length -= len(chunk)
    return b"".join(parts)


def _end_record(tail: bytes) -> int:
    """Where the end record starts in `tail`: the last one whose comment ends the file exactly, else
    the last whole one (some tools leave bytes after it), else -1."""
    fallback = -1
    pos = len(tail)
    while (pos := tail.rfind(_END_SIG, 0, pos)) >= 0:
        if pos + _END.size <= len(tail):
            if pos + _END.size + _END.unpack_from(tail, pos)[-1] == len(tail):
                return pos
            fallback = pos if fallback < 0 else fallback
    return fallback


def find_directory(fileobj: IO[bytes], artifact_name: str) -> Directory:
    """The end record (zip64 too), checked against the limits before the directory is read."""
    size = fileobj.seek(0, io.SEEK_END)
    for window in dict.fromkeys((min(size, _END.size), min(size, TAIL))):
        tail = _read_at(fileobj, size - window, window)
        if (pos := _end_record(tail)) >= 0:
            break
    else:
        raise _not_zip(artifact_name, "no end of central directory record")
    end_at = size - len(tail) + pos
    _, disk, directory_disk, _, entries_, directory_size, directory_offset, _ = _END.unpack_from(tail, pos)
    record_at = end_at
    locator = _read_at(fileobj, end_at - _LOCATOR.size, _LOCATOR.size) if end_at >= _LOCATOR.size else b""
    if locator.startswith(_LOCATOR_SIG):
        record_at = end_at - _LOCATOR.size - _END64.size
        record = _read_at(fileobj, record_at, _END64.size) if record_at >= 0 else b""
        if len(record) < _END64.size or not record.startswith(_END64_SIG):
            raise _not_zip(artifact_name, "a zip64 locator without its zip64 end record")
        (_, _, _, _, disk, directory_disk, _, entries_, directory_size, directory_offset) = _END64.unpack(record)
        disk = disk or _LOCATOR.unpack(locator)[3] > 1  # more than one file in all
    if disk or directory_disk:
        raise _not_zip(artifact_name, "it is split over several files; make a single-file zip")
    if entries_ > MAX_DIRECTORY_ENTRIES:
        raise _too_many(artifact_name, f"lists {entries_} entries")
    if directory_size > MAX_DIRECTORY_BYTES:
        raise _too_many(artifact_name, f"has a {directory_size}-byte central directory")
    shift = record_at - directory_size - directory_offset
    if shift < 0:
        raise _not_zip(artifact_name, "its central directory would end after its end record")
    return Directory(start=directory_offset + shift, size=directory_size, shift=shift)


def _too_many(artifact_name: str, what: str) -> SpecError:
    return SpecError(f"input artifact {artifact_name!r} {what}; the worker reads artifacts of at most "
                     f"{MAX_DIRECTORY_ENTRIES} entries and {MAX_DIRECTORY_BYTES} bytes of central directory (limits "
                     "against hostile archives): keep generated files and dependencies out of the source repository")


def entries(fileobj: IO[bytes], directory: Directory, artifact_name: str) -> Iterator[Entry]:
    """The directory's entries, read `CHUNK` bytes at a time; at most MAX_DIRECTORY_ENTRIES of them."""
    buf, at = b"", 0  # unparsed bytes, and where the next entry starts in them
    read_to, stop = directory.start, directory.start + directory.size
    count = 0
    while True:
        need = _CENTRAL.size
        if len(buf) - at >= need and buf.startswith(_CENTRAL_SIG, at):
            *_, name_len, extra_len, comment_len, _, _, _, _ = _CENTRAL.unpack_from(buf, at)
            need += name_len + extra_len + comment_len
        if len(buf) - at < need:
            if read_to >= stop:
                break
            chunk = _read_at(fileobj, read_to, min(CHUNK, stop - read_to))
            if not chunk:
                break
            buf, at, read_to = buf[at:] + chunk, 0, read_to + len(chunk)
            continue
        if not buf.startswith(_CENTRAL_SIG, at):
            raise _not_zip(artifact_name, f"bad central directory entry at offset {read_to - len(buf) + at}")
        count += 1
        if count > MAX_DIRECTORY_ENTRIES:
            raise _too_many(artifact_name, f"lists more than {MAX_DIRECTORY_ENTRIES} entries")
        (_, _, _, _, _, flags, method, _, _, crc, compressed_size, size, name_len, extra_len, _, _, _, _,
         header_offset) = _CENTRAL.unpack_from(buf, at)
        name_at = at + _CENTRAL.size
        yield Entry(buf[name_at:name_at + name_len], flags, method, crc, compressed_size, size, header_offset,
                    buf[name_at + name_len:name_at + name_len + extra_len])
        at += need
    if at < len(buf):
        raise _not_zip(artifact_name, "its central directory ends in the middle of an entry")


def _with_zip64(entry: Entry, artifact_name: str) -> Entry:
    """The entry with the sizes and offset its zip64 extra field holds where the header says 0xFFFFFFFF."""
    wanted = [field for field in ("size", "compressed_size", "header_offset") if getattr(entry, field) == _MASK32]
    if not wanted:
        return entry
    pos = 0
    while pos + _EXTRA.size <= len(entry.extra):
        tag, length = _EXTRA.unpack_from(entry.extra, pos)
        data = entry.extra[pos + _EXTRA.size:pos + _EXTRA.size + length]
        if tag == _ZIP64_EXTRA and len(data) >= 8 * len(wanted):
            values = struct.unpack_from(f"<{len(wanted)}Q", data)
            return entry._replace(**dict(zip(wanted, values, strict=True)))
        pos += _EXTRA.size + length
    raise _damaged(entry.name, artifact_name, "its zip64 sizes are missing")


def compressed_limit(max_bytes: int) -> int:
    """The most deflate needs for `max_bytes`: stored blocks add 5 bytes per 64 KiB (margin for headers)."""
    return max_bytes + max_bytes // 8192 + 64


def read_entry(fileobj: IO[bytes], entry: Entry, name: str, artifact_name: str, *, max_bytes: int) -> bytes:
    """The member's bytes, decompressed with the output capped, its size and CRC-32 checked."""
    if entry.flags & (_ENCRYPTED | _STRONG_ENCRYPTION) or entry.method == _AES:
        raise SpecError(f"spec file {name!r} in input artifact {artifact_name!r} is encrypted; the worker does not "
                        "read encrypted members: commit the spec file as plain text and zip without a password")
    if entry.method not in (STORED, DEFLATED):
        method = _METHOD_NAMES.get(entry.method, f"compression method {entry.method}")
        raise SpecError(f"spec file {name!r} in input artifact {artifact_name!r} is compressed with {method}; the "
                        "worker reads only stored or deflated members: re-zip the artifact with deflate (the "
                        "default of zip, git archive and CodePipeline's source actions)")
    check_spec_size(name, entry.size, max_bytes)
    if entry.compressed_size > compressed_limit(max_bytes):
        raise _damaged(name, artifact_name, f"{entry.compressed_size} compressed bytes for at most {max_bytes}")
    head = _read_at(fileobj, entry.header_offset, _LOCAL.size + len(entry.raw_name) + 1024 + entry.compressed_size)
    if len(head) < _LOCAL.size or not head.startswith(_LOCAL_SIG):
        raise _damaged(name, artifact_name, f"no local header at offset {entry.header_offset}")
    *_, name_len, extra_len = _LOCAL.unpack_from(head)
    if head[_LOCAL.size:_LOCAL.size + name_len] != entry.raw_name:
        raise _damaged(name, artifact_name, "its local header names another file")
    data_at = _LOCAL.size + name_len + extra_len
    raw = head[data_at:data_at + entry.compressed_size]
    if len(raw) < entry.compressed_size:
        raw += _read_at(fileobj, entry.header_offset + data_at + len(raw), entry.compressed_size - len(raw))
    if len(raw) < entry.compressed_size:
        raise _damaged(name, artifact_name, "the archive ends inside it")
    if entry.method == DEFLATED:
        inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            data = inflate.decompress(raw, max_bytes + 1)
        except zlib.error as exc:
            raise _damaged(name, artifact_name, f"invalid deflate data: {exc}") from exc
        if len(data) <= max_bytes and not inflate.eof:
            raise _damaged(name, artifact_name, "its deflate data ends early")
    else:
        data = raw
    if len(data) > max_bytes:
        raise SpecError(f"spec file {name!r} is larger than {max_bytes} bytes once decompressed (spec_max_bytes)")
    if len(data) != entry.size:
        raise _damaged(name, artifact_name, f"{len(data)} bytes where its directory entry says {entry.size}")
    if zlib.crc32(data) != entry.crc:
        raise _damaged(name, artifact_name, "CRC-32 mismatch")
    return data


# ------------------------------------------------------------------------------ writing


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
