"""The spec file parser and the parameter-name rule (pure functions)."""

from __future__ import annotations

import json
import re
import unicodedata

import botocore.session
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker import spec
from worker.errors import ParameterError, SpecError
from worker.spec import Target, match_parameters, parse_spec

SEND_COMMAND = botocore.session.get_session().get_service_model("ssm").operation_model("SendCommand").input_shape
# The model's patterns when spec.py's stricter ones were written: if botocore changes them, look again.
MODEL_INSTANCE_ID = r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)"
MODEL_TARGET_KEY = r"^[\p{L}\p{Z}\p{N}_.:/=\-@]*$|resource-groups:ResourceTypeFilters|resource-groups:Name"
INSTANCE = "i-0123456789abcdef0"


def parse(obj: object) -> spec.Spec:
    return parse_spec(json.dumps(obj).encode())


def test_seed_format() -> None:
    s = parse({"instance_id": "i-0123456789abcdef0", "message": "aSampleMessage"})
    assert s.instance_ids == ("i-0123456789abcdef0",)
    assert s.targets == ()
    assert s.parameters == {"message": ("aSampleMessage",)}


def test_general_format_with_targets_and_typed_values() -> None:
    s = parse({"targets": [{"Key": "tag:Role", "Values": ["build", "test"]}],
               "parameters": {"Count": 3, "Flag": True, "Items": ["a", 2], "Map": {"k": "v"}}, "extra": "x"})
    assert s.targets == (Target("tag:Role", ("build", "test")),)
    assert s.parameters == {"extra": ("x",), "Count": ("3",), "Flag": ("true",), "Items": ("a", "2"),
                            "Map": ('{"k":"v"}',)}


def test_instance_ids_through_targets_count_for_allow_lists() -> None:
    s = parse({"targets": [{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}]})
    assert s.all_instance_ids() == ("i-0123456789abcdef0",)


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"instance_id": "i-0123456789abcdef0",}',
     "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 39"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1]", "must hold a JSON object"),
    (b'{"message": "x"}', "exactly one of instance_id, instance_ids or targets; it has none"),
    (b'{"instance_id": "i-0123456789abcdef0", "targets": []}', "it has instance_id and targets"),
    (b'{"instance_id": "i-123"}', "'i-123' is not an instance id"),
    (b'{"instance_ids": []}', "'instance_ids' must be a non-empty list"),
    (b'{"instance_ids": ["i-0123456789abcdef0", "i-0123456789abcdef0"]}', "the same instance twice"),
    (b'{"targets": [{"Key": "tag:Role"}]}', "targets[0] must be an object with exactly Key and Values"),
    (b'{"targets": [{"Key": "bogus", "Values": ["x"]}]}', "targets[0].Key 'bogus' is not a target key"),
    (b'{"instance_id": "i-0123456789abcdef0", "message": null}', "parameter 'message' is null"),
    (b'{"instance_id": "i-0123456789abcdef0", "message": "a", "message": "b"}', "abc.json: duplicate key 'message' in the same object; keep one"),
    (b'{"instance_id": "i-0123456789abcdef0", "m": "a", "parameters": {"m": "b"}}',
     "given both at the top level and in 'parameters'"),
    (b'{"instance_id": "i-0123456789abcdef0", "parameters": ["m"]}', "'parameters' must be an object"),
    # Strict JSON: Python's json module takes these, JSON does not.
    (b'{"instance_id": "i-0123456789abcdef0", "m": NaN}',
     ("abc.json is not valid JSON: NaN is not a JSON number (JSON has no NaN or Infinity); write a finite number "
      "or a string")),
    (b'{"instance_id": "i-0123456789abcdef0", "m": Infinity}', "not valid JSON: Infinity is not a JSON number"),
    (b'{"instance_id": "i-0123456789abcdef0", "m": [-Infinity]}', "not valid JSON: -Infinity is not a JSON number"),
    (b'{"instance_id": "i-0123456789abcdef0", "m": 1e999}',
     "not valid JSON: the number 1e999 is too large for a float; write it as a string"),
    (b'{"instance_id": "i-0123456789abcdef0", "m": ' + b"9" * 5000 + b"}",
     "not valid JSON: a number of 5000 digits; write it as a string"),
    (b'{"instance_id": "i-0123456789abcdef0", "m": "\\ud800"}', "a lone UTF-16 surrogate in '\\ud800'"),
    # Deep enough for RecursionError in json.loads, and just past MAX_DEPTH.
    (b'{"instance_id": "i-0123456789abcdef0", "m": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "abc.json nests objects or lists more than 20 deep; a spec file needs a few levels (targets, parameters)"),
    (b'{"instance_id": "i-0123456789abcdef0", "m": ' + b'{"a": ' * 20 + b"1" + b"}" * 20 + b"}",
     "nests objects or lists more than 20 deep"),
    # Whole, ASCII-only instance ids and target keys.
    (b'{"instance_id": "i-0123456789abcdef0\\n"}',
     ("'i-0123456789abcdef0\\n' is not an instance id; expected i- followed by 8 or 17 lowercase hex digits (0-9, "
      "a-f) for EC2, or mi- followed by 17 for a managed node")),
    ('{"instance_id": "i-\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667"}'.encode(), "is not an instance id"),
    (b'{"instance_ids": ["i-0123456789ABCDEF0"]}', "is not an instance id"),
    (b'{"instance_id": "i-0123456789abcdef_"}', "is not an instance id"),
    (b'{"targets": [{"Key": "InstanceIds", "Values": ["i-01234567\\n"]}]}', "'i-01234567\\n' is not an instance id"),
    (b'{"targets": [{"Key": "tag:Role\\n", "Values": ["x"]}]}', "targets[0].Key 'tag:Role\\n' is not a target key"),
    (b'{"targets": [{"Key": "tag-key\\n", "Values": ["x"]}]}', "is not a target key"),
    (b'{"targets": [{"Key": "tag:a b", "Values": ["x"]}]}', "is not a target key"),
    (b'{"targets": [{"Key": "tag:a+b", "Values": ["x"]}]}', "is not a target key"),
])
def test_bad_specs_name_the_problem(raw: bytes, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(raw)
    assert expected in str(err.value)
    assert str(err.value).startswith("abc.json")


def test_too_many_instances() -> None:
    ids = [f"i-{n:017x}" for n in range(51)]
    with pytest.raises(SpecError, match="names 51 instances; SSM accepts at most 50"):
        parse({"instance_ids": ids})


def test_name_matching_rule() -> None:
    s = parse({"instance_id": "i-0123456789abcdef0", "message": "m", "output_bucket": "b",
               "parameters": {"CodeRepository": "r"}})
    assert match_parameters(s, ["Message", "OutputBucket", "CodeRepository"]) == {
        "Message": ("m",), "OutputBucket": ("b",), "CodeRepository": ("r",)}


def test_unknown_and_ambiguous_names_are_all_reported() -> None:
    s = parse({"instance_id": "i-0123456789abcdef0", "mesage": "m", "a_b": "x", "Message": "y", "message": "z"})
    with pytest.raises(ParameterError) as err:
        match_parameters(s, ["Message", "AB", "A_B2", "ab"])
    text = str(err.value)
    assert "mesage: the document declares no such parameter; it declares: Message, AB, A_B2, ab" in text
    assert "a_b: matches AB and ab; use the exact name" in text
    assert "message: sets Message which 'Message' already sets" in text


def test_limits_agree_with_botocore_model() -> None:
    shape = SEND_COMMAND
    assert shape.members["InstanceIds"].member.metadata["pattern"] == MODEL_INSTANCE_ID
    assert shape.members["Targets"].member.members["Key"].metadata["pattern"] == MODEL_TARGET_KEY
    assert shape.members["InstanceIds"].metadata["max"] == spec.MAX_INSTANCE_IDS
    assert shape.members["Targets"].metadata["max"] == spec.MAX_TARGETS
    assert shape.members["Targets"].member.members["Values"].metadata["max"] == spec.MAX_TARGET_VALUES


@given(st.from_regex(spec.INSTANCE_ID_PATTERN, fullmatch=True))
def test_every_instance_id_accepted_is_one_the_model_accepts(instance_id: str) -> None:
    assert re.match(MODEL_INSTANCE_ID, instance_id, re.ASCII)  # the model's \w read as ASCII, the strict reading
    assert parse({"instance_id": instance_id}).instance_ids == (instance_id,)


@pytest.mark.parametrize("instance_id", ["i-0123456789abcdef0\n", "i-\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
                                         "i-0123456789abcdef_"])
def test_the_model_pattern_read_by_python_is_looser(instance_id: str) -> None:
    """Why spec.py does not use the model's pattern as is: Python reads \\w as Unicode and $ before a newline."""
    assert re.match(MODEL_INSTANCE_ID, instance_id)
    with pytest.raises(SpecError, match="is not an instance id"):
        parse({"instance_id": instance_id})


@given(st.from_regex(spec.TARGET_KEY_PATTERN, fullmatch=True))
def test_every_target_key_accepted_is_one_the_model_accepts(key: str) -> None:
    """The model's \\p{L}\\p{Z}\\p{N} classes (Python's re has none), checked by Unicode category."""
    literal = key in ("resource-groups:Name", "resource-groups:ResourceTypeFilters")
    assert literal or all(unicodedata.category(c)[0] in "LZN" or c in "_.:/=-@" for c in key), key
    assert 1 <= len(key) <= SEND_COMMAND.members["Targets"].member.members["Key"].metadata["max"]
    assert parse({"targets": [{"Key": key, "Values": [INSTANCE]}]}).targets[0].key == key


def test_nesting_up_to_the_limit_is_accepted() -> None:
    deep: object = "x"
    for _ in range(spec.MAX_DEPTH - 2):  # the spec object and the parameter's object are two levels
        deep = {"a": deep}
    s = parse({"instance_id": INSTANCE, "parameters": {"Map": deep}})
    assert s.parameters["Map"][0].count("{") == spec.MAX_DEPTH - 2
