"""Property tests (hypothesis) of the three parsers an artifact feeds: the zip reader, the spec parser and
the parameter validator. Whatever the input, each returns a result or raises a ConfigurationError, never
anything else; the zip reader also stays within a memory bound (tracemalloc) and reads a bounded number
of bytes (the stand-in for time and S3 requests: no timing assertions on a shared machine).

Example counts are kept modest so the whole file runs in seconds; `deadline=None` because a slow
example on a busy machine is not a failure.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import warnings
import zipfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_artifacts import READ_MEMORY, Counting, in_both_headers

from worker.artifacts import read_zip_member
from worker.errors import ConfigurationError
from worker.spec import parse_spec
from worker.ssmdoc import load_document, validate_parameters
from worker.ssmdoc.model import PARAMETER_TYPES

MAX_BYTES = 4096  # a small spec_max_bytes, so members on both sides of it are cheap to make
FAST = settings(max_examples=150, deadline=None)
ZIPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def outcome(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The call's result, or the ConfigurationError it raised; any other exception fails the test."""
    try:
        return call(*args, **kwargs)
    except ConfigurationError as exc:
        return exc


def read_bounded(data: bytes) -> Any:
    """read_zip_member on `data`, asserting its memory peak and the bytes it read (linear in the input)."""
    source = Counting(data)
    tracemalloc.start()
    try:
        result = outcome(read_zip_member, source, "SourceArtifact", "abc.json", max_bytes=MAX_BYTES)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < READ_MEMORY, peak
    assert source.read_bytes <= 5 * len(data) + 1024, (source.read_bytes, len(data))
    if isinstance(result, bytes):
        assert len(result) <= MAX_BYTES
    return result


# ------------------------------------------------------------------------------ the zip reader


small_or_any = (st.integers(0, 600) | st.integers(0, 0xFFFFFFFF)).map  # offsets and sizes, in range or not
end_records = st.builds(  # arbitrary bytes, then an end record with arbitrary fields (mostly one disk)
    lambda body, disks, entries, size, offset, comment: body + struct.pack(
        "<4s4H2LH", b"PK\x05\x06", *disks, entries, entries, size, offset, comment),
    st.binary(max_size=512), st.sampled_from([(0, 0)] * 6 + [(1, 0), (0, 1)]),
    st.integers(0, 0xFFFF), small_or_any(int), small_or_any(int), st.integers(0, 0xFFFF) | st.just(0))


@ZIPS
@given(st.binary(max_size=2048) | end_records)
def test_zip_reader_on_arbitrary_bytes(data: bytes) -> None:
    read_bounded(data)


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    """A valid zip: abc.json (or not) among other members, each with a random method and content."""
    others = st.sampled_from(["abc.json", "src/a.txt", "deploy/abc.json", "b", "abc.json/x"])
    names = draw(st.lists(others, max_size=3)) + draw(st.sampled_from([["abc.json"], ["abc.json"], []]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a name twice is one of the cases
        for name in names:
            content = draw(st.binary(max_size=64) | st.integers(0, 3 * MAX_BYTES).map(bytes)
                           | st.just(json.dumps({"instance_id": "i-0123456789abcdef0"}).encode()))
            archive.writestr(name, content, compress_type=draw(st.sampled_from(METHODS)))
    return buffer.getvalue()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid zip with its headers' flags or sizes set at random, then bytes overwritten or cut."""
    data = draw(archives())
    if draw(st.booleans()):
        data = in_both_headers(data, 6, 8, "<H", draw(st.integers(0, 0xFFFF)))  # flags
    if draw(st.booleans()):
        data = in_both_headers(data, 8, 10, "<H", draw(st.sampled_from([0, 8, 9, 12, 14, 99, 0xFFFF])))  # method
    if draw(st.booleans()):  # compressed or uncompressed size
        field = draw(st.sampled_from([(18, 20), (22, 24)]))
        data = in_both_headers(data, *field, "<L", draw(st.integers(0, 0xFFFFFFFF)))
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if out:
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    if draw(st.sampled_from([False, False, False, True])):  # cut: rarely, it leaves no end record
        del out[draw(st.integers(0, len(out))):]
    return bytes(out)


@ZIPS
@given(archives())
def test_zip_reader_on_valid_archives_reads_the_member_or_says_why_not(data: bytes) -> None:
    result = read_bounded(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        listed = [i for i in archive.infolist() if i.filename == "abc.json"]
        readable = len(listed) == 1 and listed[0].compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        if isinstance(result, bytes):  # only when abc.json is there once, deflated or stored, within the limit
            assert readable
            assert archive.open(listed[0]).read() == result
        elif readable:
            assert listed[0].file_size > MAX_BYTES, result


@ZIPS
@given(mutated())
def test_zip_reader_on_mutated_archives(data: bytes) -> None:
    read_bounded(data)


# ------------------------------------------------------------------------------ the spec parser


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30)
spec_like = st.fixed_dictionaries({}, optional={
    "instance_id": st.from_regex(r"m?i-[0-9a-fA-F_\u0660-\u0669]{0,18}\n?", fullmatch=True) | json_values,
    "instance_ids": st.lists(st.from_regex(r"i-[0-9a-f]{8}", fullmatch=True) | json_values, max_size=3),
    "targets": st.lists(st.fixed_dictionaries({"Key": st.sampled_from(["tag:Role", "InstanceIds", "tag:a\n", "x"])
                                               | st.text(max_size=12),
                                               "Values": st.lists(st.text(max_size=20), max_size=3)}), max_size=6)
    | json_values,
    "parameters": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
    "message": json_values,
})


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_spec_parser_on_arbitrary_bytes_and_text(raw: bytes) -> None:
    outcome(parse_spec, raw)


@FAST
@given(json_values | spec_like, st.sampled_from(["", "\ufeff"]), st.integers(0, 3))
def test_spec_parser_on_json_shaped_input(value: Any, bom: str, cut: int) -> None:
    text = bom + json.dumps(value)  # allow_nan: NaN and Infinity too
    outcome(parse_spec, text.encode("utf-8", "surrogatepass")[:len(text.encode("utf-8", "surrogatepass")) - cut])


# ------------------------------------------------------------------------------ the parameter validator


counts = st.none() | st.integers(-2, 60) | st.from_regex(r"[0-9]{1,2}", fullmatch=True) | st.booleans() | st.text(
    alphabet="x-", max_size=2)
patterns = st.sampled_from(["^[a-z]+$", "[0-9]{1,3}", "(?i)abc", "^(?<name>x)$", "\\p{L}+", "\\z", "(", "[", "a{2,",
                            "^\\{\\{ssm:.*\\}\\}$", ""])
declarations = st.fixed_dictionaries({"type": st.sampled_from([*PARAMETER_TYPES, "Nope"]) | st.none()}, optional={
    "allowedValues": st.lists(st.text(max_size=8) | st.integers(), max_size=3) | st.text(max_size=3),
    "allowedPattern": patterns | st.integers(),
    "minChars": counts, "maxChars": counts, "minItems": counts, "maxItems": counts,
    "default": json_values, "description": json_values,
})
names = st.sampled_from(["Message", "Count", "Flag", "Items", "Map", "bad name", ""])
values = st.text(max_size=30) | st.sampled_from(["{{ssm:param}}", '{"k": "v"}', "[]", "true", "-12", "abc"])


@FAST
@given(st.dictionaries(names, declarations, max_size=4), st.dictionaries(names, st.lists(values, max_size=3)
                                                                          | values, max_size=4))
def test_parameter_validator_on_generated_documents_and_values(declared: dict[str, Any], given_values: Any) -> None:
    document = outcome(load_document, {"schemaVersion": "2.2", "parameters": declared, "mainSteps": [
        {"action": "aws:runShellScript", "name": "Run", "inputs": {"runCommand": ["echo {{ Message }}"]}}]})
    if isinstance(document, ConfigurationError):
        return
    result = outcome(validate_parameters, document, given_values)
    if not isinstance(result, ConfigurationError):
        assert list(result) == list(document.parameters)
        assert all(isinstance(item, str) for items in result.values() for item in items)
