"""The artifact zip as hostile input: the exact attacks, each refused with a clear ConfigurationError in
bounded memory and reads, first by the reader itself, then by the real worker (one result per job, and
the worker takes the next job)."""

from __future__ import annotations

import functools
import io
import json
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import ACTION_TYPE, BUCKET, DOCUMENT, INSTANCE, Harness

from worker import artifacts
from worker.artifacts import read_member, read_zip_member, spec_member
from worker.errors import SpecError
from worker.jobs import Artifact
from worker.local import Emulator

MiB = 1024 * 1024
SPEC = json.dumps({"instance_id": INSTANCE, "message": "hello"}).encode()
BOMB_BYTES = 64 * MiB  # decompressed, more than a job may add to the worker's memory (50 MB)
MAX_BYTES = MiB  # spec_max_bytes' default
READ_MEMORY = 8 * MiB  # what one read may allocate at its peak, whatever the archive


def zipped(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def stored_zip(members: Iterable[tuple[bytes, bytes]], *, declared: int | None = None) -> bytes:
    """A stored zip written directly (zipfile takes seconds for 100,000s of entries); zip64 end records
    past 65,535 entries. `declared` replaces the entry count the end records give."""
    local, central = struct.Struct("<4s2B4HL2L2H"), struct.Struct("<4s4B4HL2L5H2L")
    body, directory, offset, count = [], [], 0, 0
    for name, data in members:
        crc = zlib.crc32(data)
        header = local.pack(b"PK\x03\x04", 20, 0, 0, 0, 0, 0x21, crc, len(data), len(data), len(name), 0)
        body.append(header + name + data)
        directory.append(central.pack(b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0x21, crc, len(data), len(data),
                                      len(name), 0, 0, 0, 0, 0, offset) + name)
        offset += len(header) + len(name) + len(data)
        count += 1
    size, entries = sum(map(len, directory)), count if declared is None else declared
    tail = b""
    if entries > 0xFFFF:
        tail = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset)
        tail += struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + size, 1)
    tail += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, min(entries, 0xFFFF), min(entries, 0xFFFF), size, offset, 0)
    return b"".join(body) + b"".join(directory) + tail


def empty_files(count: int) -> Iterable[tuple[bytes, bytes]]:
    return ((b"f%d" % n, b"") for n in range(count))


def patched(data: bytes, signature: bytes, offset: int, fmt: str, value: int) -> bytes:
    """`data` with one field of every header with `signature` set to `value` (offset from the signature)."""
    out, pos = bytearray(data), data.find(signature)
    while pos >= 0:
        struct.pack_into(fmt, out, pos + offset, value)
        pos = data.find(signature, pos + 1)
    return bytes(out)


def in_both_headers(data: bytes, local_offset: int, central_offset: int, fmt: str, value: int) -> bytes:
    return patched(patched(data, b"PK\x03\x04", local_offset, fmt, value), b"PK\x01\x02", central_offset, fmt, value)


@functools.cache
def bomb(compression: int) -> bytes:
    """abc.json as BOMB_BYTES of zeros: a few hundred bytes (bzip2), a few KB (LZMA), 64 KB (deflate)."""
    return zipped({"abc.json": bytes(BOMB_BYTES)}, compression)


def lying_deflate_bomb() -> bytes:
    """A deflate bomb whose headers say it holds 100 bytes."""
    return in_both_headers(bomb(zipfile.ZIP_DEFLATED), 22, 24, "<L", 100)


def encrypted() -> bytes:
    return in_both_headers(zipped({"abc.json": SPEC}), 6, 8, "<H", 0x1)


def bad_crc() -> bytes:
    return in_both_headers(zipped({"abc.json": SPEC}), 14, 16, "<L", zlib.crc32(SPEC) ^ 1)


class Counting(io.BytesIO):
    """A file that counts the bytes read from it (reads stand for ranged GETs, and for time)."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


def bounded_read(data: bytes, spec_file: str = "abc.json", max_bytes: int = MAX_BYTES) -> tuple[Any, int, int]:
    """read_zip_member's result (or SpecError), its peak traced allocation, and the bytes it read."""
    source = Counting(data)
    tracemalloc.start()
    try:
        result: Any = read_zip_member(source, "SourceArtifact", spec_file, max_bytes=max_bytes)
    except SpecError as exc:
        result = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, peak, source.read_bytes


def read(data: bytes, spec_file: str = "abc.json") -> bytes:
    return read_zip_member(io.BytesIO(data), "SourceArtifact", spec_file, max_bytes=MAX_BYTES)


def refused(data: bytes, **kwargs: Any) -> str:
    """The SpecError reading `data` ends with, checked to stay within READ_MEMORY (tracemalloc makes
    reads of very many entries slow: those use `read`)."""
    result, peak, _ = bounded_read(data, **kwargs)
    assert isinstance(result, SpecError), result
    assert peak < READ_MEMORY, peak
    return str(result)


# ------------------------------------------------------------------------------ what is read


def test_stored_deflated_zip64_and_prefixed_archives_are_read() -> None:
    for data in (zipped({"src/a.txt": b"x", "abc.json": SPEC}), zipped({"abc.json": SPEC}, zipfile.ZIP_STORED),
                 b"#!/bin/sh\nexit 0\n" + zipped({"abc.json": SPEC}),  # a self-extracting stub before the zip
                 stored_zip([*empty_files(70_000), (b"abc.json", SPEC)])):  # zip64 end records
        assert read(data) == SPEC
    with_comment = io.BytesIO()
    with zipfile.ZipFile(with_comment, "w") as archive:
        archive.writestr("abc.json", SPEC)
        archive.comment = b"PK\x05\x06 a comment that looks like an end record" * 1000
    assert read(with_comment.getvalue()) == SPEC


def test_spec_file_property_is_normalised_or_refused() -> None:
    data = zipped({"deploy/abc.json": SPEC})
    assert read(data, spec_file="./deploy//abc.json") == SPEC
    assert spec_member("deploy/./abc.json") == "deploy/abc.json"
    assert refused(data, spec_file="../abc.json") == (
        "the action's SpecFile property '../abc.json' contains a '..' component; give a path inside the input "
        "artifact, relative to its root, such as abc.json or deploy/abc.json")
    for bad, problem in (("/abc.json", "is an absolute path"), ("deploy/../../x", "contains a '..' component"),
                         ("deploy\\abc.json", "contains '\\'; separate folders with '/'"), ("", "is empty"),
                         ("./", "names no file"), ("abc.json\n", "contains a control character")):
        with pytest.raises(SpecError) as err:
            spec_member(bad)
        assert str(err.value).startswith(f"the action's SpecFile property {bad!r} {problem}; ")


def test_missing_spec_file_message_is_bounded_and_escaped() -> None:
    names = ((b"src/%05d-" % n + b"x" * 300, b"") for n in range(20_000))
    with pytest.raises(SpecError) as err:
        read(stored_zip(names))
    message = str(err.value)
    assert message.startswith("spec file 'abc.json' not found in input artifact 'SourceArtifact'; the archive holds "
                              "20000 files, e.g. src/00000-xxx")
    assert len(message) < 800
    assert "evil\\nname" in refused(stored_zip([(b"evil\nname", b"")]))
    assert refused(zipped({"a/abc.json": SPEC, "b/abc.json": SPEC, "abc.json/x": b""})) == (
        "spec file 'abc.json' in input artifact 'SourceArtifact' is a folder; set the action's SpecFile property to "
        "the file inside it")
    assert refused(zipped({"a/abc.json": SPEC, "b/abc.json": SPEC})).endswith(
        "found it at a/abc.json, b/abc.json: set the action's SpecFile property to that path")


# ------------------------------------------------------------------------------ the attacks


@pytest.mark.parametrize(("compression", "method"), [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA")])
def test_bzip2_and_lzma_bombs_are_refused_without_decompressing(compression: int, method: str) -> None:
    data = bomb(compression)
    assert len(data) < 20_000  # 64 MiB of zeros
    result, peak, read = bounded_read(data)
    assert str(result) == (
        f"spec file 'abc.json' in input artifact 'SourceArtifact' is compressed with {method}; the worker reads only "
        "stored or deflated members: re-zip the artifact with deflate (the default of zip, git archive and "
        "CodePipeline's source actions)")
    assert peak < READ_MEMORY
    assert read <= len(data)


def test_deflate_bombs_are_capped_whatever_the_headers_say() -> None:
    assert refused(bomb(zipfile.ZIP_DEFLATED)) == (
        f"spec file 'abc.json' is {BOMB_BYTES} bytes; the limit is {MAX_BYTES} (spec_max_bytes); keep only targets "
        "and parameters in it")
    result, peak, read = bounded_read(lying_deflate_bomb())
    assert str(result) == f"spec file 'abc.json' is larger than {MAX_BYTES} bytes once decompressed (spec_max_bytes)"
    assert peak < READ_MEMORY
    assert read <= artifacts.compressed_limit(MAX_BYTES) + 2 * artifacts.TAIL


def test_200000_directory_entries_are_refused_before_the_directory_is_read() -> None:
    data = stored_zip(empty_files(200_000))
    result, peak, read = bounded_read(data)
    assert str(result) == (
        "input artifact 'SourceArtifact' lists 200000 entries; the worker reads artifacts of at most 100000 entries "
        "and 8388608 bytes of central directory (limits against hostile archives): keep generated files and "
        "dependencies out of the source repository")
    assert peak < READ_MEMORY
    assert read <= artifacts.TAIL + 100  # the end records only


def test_an_end_record_that_lies_about_the_count_is_caught_by_size_or_by_counting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    too_big = stored_zip(empty_files(200_000), declared=1)
    size = sum(46 + len(name) for name, _ in empty_files(200_000))
    assert refused(too_big).startswith(f"input artifact 'SourceArtifact' has a {size}-byte central directory; ")
    monkeypatch.setattr(artifacts, "MAX_DIRECTORY_ENTRIES", 1000)  # the full-size case runs in the worker test below
    too_many = stored_zip(empty_files(1001), declared=1)
    assert refused(too_many).startswith("input artifact 'SourceArtifact' lists more than 1000 entries; ")


def test_encrypted_member() -> None:
    assert refused(encrypted()) == (
        "spec file 'abc.json' in input artifact 'SourceArtifact' is encrypted; the worker does not read encrypted "
        "members: commit the spec file as plain text and zip without a password")


def test_bad_crc_and_other_damage_name_the_member() -> None:
    damaged = ("spec file 'abc.json' in input artifact 'SourceArtifact' is damaged ({}); re-create the artifact: push "
               "the commit again or re-run the source action")
    assert refused(bad_crc()) == damaged.format("CRC-32 mismatch")
    good = zipped({"abc.json": SPEC})
    assert refused(in_both_headers(good, 22, 24, "<L", len(SPEC) - 1)) == damaged.format(
        f"{len(SPEC)} bytes where its directory entry says {len(SPEC) - 1}")
    data_at = good.find(b"abc.json") + len("abc.json")
    garbage = good[:data_at] + b"\xff" * 8 + good[data_at + 8:]
    assert refused(garbage).startswith("spec file 'abc.json' in input artifact 'SourceArtifact' is damaged (invalid "
                                       "deflate data: Error -3 while decompressing data")
    assert refused(patched(good, b"PK\x01\x02", 42, "<L", 5)) == damaged.format("no local header at offset 5")
    deflate64 = in_both_headers(good, 8, 10, "<H", 9)
    assert "is compressed with Deflate64; the worker reads only stored or deflated members" in refused(deflate64)


@pytest.mark.parametrize("data", [b"", b"plain text, not a zip", b"PK\x05\x06", zipped({"abc.json": SPEC})[:-30],
                                  zipped({"abc.json": SPEC})[40:]])
def test_not_a_zip(data: bytes) -> None:
    assert refused(data).startswith("input artifact 'SourceArtifact' is not a zip archive (")


def test_a_member_listed_twice_is_refused() -> None:
    assert refused(stored_zip([(b"abc.json", SPEC), (b"abc.json", b"{}")])) == (
        "input artifact 'SourceArtifact' holds 'abc.json' more than once; re-create the zip so that it holds each "
        "file once")


# ------------------------------------------------------------------------------ through S3


def test_s3_reads_stay_a_handful_of_ranged_gets(emulator: Emulator) -> None:
    env = emulator.env()
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    cases = {"small.zip": (zipped({"src/big.bin": bytes(range(256)) * 20_000, "abc.json": SPEC}), 2),
             "wide.zip": (stored_zip([(b"abc.json", SPEC), *empty_files(90_000)]), 5),  # a 4.6 MB directory
             "bomb.zip": (stored_zip(empty_files(200_000)), 1)}
    for key, (body, most) in cases.items():
        emulator.put_object(BUCKET, key, body)
        before = len(emulator.s3_accesses)
        try:
            assert read_member(s3, Artifact("SourceArtifact", BUCKET, key), "abc.json", max_bytes=MAX_BYTES) == SPEC
        except SpecError as exc:
            assert key == "bomb.zip", exc
        gets = [a for a in emulator.s3_accesses[before:] if a.key == key]
        assert all(a.range for a in gets)
        assert 1 <= len(gets) <= most, (key, len(gets))


# ------------------------------------------------------------------------------ the real worker


def enqueue_bytes(harness: Harness, name: str, body: bytes) -> str:
    key = f"demo-pipeline/SourceArti/{name}.zip"
    harness.emu.put_object(BUCKET, key, body)
    job_id = harness.emu.codepipeline.enqueue_job(
        ACTION_TYPE, configuration={"DocumentName": DOCUMENT},
        input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": key, "revision": name}])
    return harness.emu.codepipeline.job(job_id).action_execution_id


def peak_rss(pid: int) -> int:
    """The process's peak resident set so far (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) * 1024


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "bzip2-bomb": (lambda: bomb(zipfile.ZIP_BZIP2), "is compressed with bzip2"),
    "lzma-bomb": (lambda: bomb(zipfile.ZIP_LZMA), "is compressed with LZMA"),
    "deflate-bomb": (lying_deflate_bomb, "is larger than 1048576 bytes once decompressed"),
    "200k-entries": (lambda: stored_zip(empty_files(200_000)), "lists 200000 entries"),
    "lying-directory": (lambda: stored_zip(empty_files(100_001), declared=1), "lists more than 100000 entries"),
    "encrypted": (encrypted, "is encrypted"),
    "bad-crc": (bad_crc, "is damaged (CRC-32 mismatch)"),
    "deep-json": (lambda: zipped({"abc.json": b"[" * 100_000 + b"]" * 100_000}), "nests objects or lists"),
    "nan": (lambda: zipped({"abc.json": b'{"instance_id": "i-0123456789abcdef0", "message": NaN}'}),
            "NaN is not a JSON number"),
    "id-newline": (lambda: zipped({"abc.json": b'{"instance_id": "i-0123456789abcdef0\\n"}'}), "is not an instance id"),
}


def test_worker_answers_each_hostile_artifact_once_in_bounded_memory_and_keeps_serving(harness: Harness) -> None:
    worker = harness.start(harness.config())
    for _ in range(2):  # both slots warmed up: boto3 models and connections are not what is measured
        assert harness.final(harness.enqueue()).operation == "PutJobSuccessResult"
    before = peak_rss(worker.proc.pid)
    executions = {name: enqueue_bytes(harness, name, build()) for name, (build, _) in HOSTILE.items()}
    for name, execution in executions.items():
        final = harness.final(execution)
        assert final.operation == "PutJobFailureResult", name
        assert final.request["failureDetails"]["type"] == "ConfigurationError", name
        assert HOSTILE[name][1] in final.request["failureDetails"]["message"], (name, final.request)
        harness.assert_one_result_per_job(execution)
    assert harness.final(harness.enqueue()).operation == "PutJobSuccessResult"
    growth = peak_rss(worker.proc.pid) - before
    assert worker.proc.poll() is None
    assert worker.stop() == 0
    assert len(harness.sends()) == 3  # the good jobs only
    print(f"worker peak RSS {before / MiB:.1f} MiB before the hostile jobs, grew by {growth / MiB:.1f} MiB")
    assert growth < 50 * 1000 * 1000, f"peak RSS grew by {growth / MiB:.1f} MiB"
