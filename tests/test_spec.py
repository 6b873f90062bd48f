"""The spec file parser and the parameter-name rule (pure functions)."""

from __future__ import annotations

import json

import botocore.session
import pytest

from worker import spec
from worker.errors import ParameterError, SpecError
from worker.spec import Target, match_parameters, parse_spec


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
    shape = botocore.session.get_session().get_service_model("ssm").operation_model("SendCommand").input_shape
    assert shape.members["InstanceIds"].member.metadata["pattern"] == spec.INSTANCE_ID_PATTERN
    assert shape.members["InstanceIds"].metadata["max"] == spec.MAX_INSTANCE_IDS
    assert shape.members["Targets"].metadata["max"] == spec.MAX_TARGETS
    assert shape.members["Targets"].member.members["Values"].metadata["max"] == spec.MAX_TARGET_VALUES
