"""worker.ssmdoc: loading, parameter rules, {{ }} interpolation as SSM Agent does it, ENV_VAR, lint."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker.errors import DocumentError, ParameterError, Problem
from worker.ssmdoc import (
    Document,
    execution_timeout,
    lint_document,
    load_document,
    step_outcome,
    validate_parameters,
)
from worker.ssmdoc.regex import pattern_matches, pattern_portability
from worker.ssmdoc.substitute import interpolate, parameter_environment

# The seed article's ssm/windows.yml, as published.
SEED_WINDOWS = """\
schemaVersion: "2.2"
description: "Example document"
parameters:
  Message:
    type: "String"
    description: "Message to write"
  OutputBucket:
    type: "String"
    description: "Bucket to save output"
  CodeRepository:
    type: "String"
    description: "Git repository to clone"
mainSteps:
  - action: "aws:runPowerShellScript"
    name: "SampleStep"
    precondition:
      StringEquals:
        - platformType
        - Windows
    inputs:
      timeoutSeconds: "60"
      runCommand:
        - Import-Module AWSPowerShell
        - Write-Host "Create temp dir"
        - $tempdir=$(-join ((48..57) + (97..122) | Get-Random -Count 32 | % {[char]$_}))
        - New-item "$env:temp\\$tempdir" -ItemType Directory
        - Write-Host "Cloning repository"
        - "git clone {{CodeRepository}} $tempdir"
        - $fname = $(((get-date).ToUniversalTime()).ToString("yyyyMMddTHHmmssZ"))
        - Write-Host "Writing file on S3"
        - "Write-S3Object -BucketName {{OutputBucket}} -Key ($fname + '.txt') -Content {{Message}}"
        - Write-Host "Removing temp dir"
        - Remove-Item -path $tempdir -Recurse -Force -EA SilentlyContinue
        - Write-Host "All done!"
"""


def make(parameters: dict[str, Any] | None = None, steps: list[dict[str, Any]] | None = None,
         version: str = "2.2") -> Document:
    content: dict[str, Any] = {"schemaVersion": version, "parameters": parameters or {}}
    content["mainSteps"] = steps if steps is not None else [
        {"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": ["true"]}}]
    return load_document(content)


def problems(document: Document, values: dict[str, Any]) -> list[Problem]:
    with pytest.raises(ParameterError) as info:
        validate_parameters(document, values)
    return info.value.problems


def only(document: Document, values: dict[str, Any]) -> Problem:
    found = problems(document, values)
    assert len(found) == 1, found
    return found[0]


def findings(document: Document, severity: str | None = None) -> list[str]:
    return [str(f) for f in lint_document(document) if severity in (None, f.severity)]


# ------------------------------------------------------------------------------ loading


def test_load_yaml_and_json_give_the_same_model() -> None:
    as_json = json.dumps({"schemaVersion": "2.2", "description": "d",
                          "parameters": {"Name": {"type": "String", "default": "x", "allowedValues": ["x", "y"]}},
                          "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                                         "precondition": {"StringEquals": ["Linux", "platformType"]},
                                         "inputs": {"runCommand": ["echo {{ Name }}"], "onFailure": "exit",
                                                    "finallyStep": True}}]})
    as_yaml = """
schemaVersion: '2.2'
description: d
parameters:
  Name: {type: String, default: x, allowedValues: [x, y]}
mainSteps:
- action: aws:runShellScript
  name: s
  precondition: {StringEquals: [Linux, platformType]}
  inputs: {runCommand: ['echo {{ Name }}'], onFailure: exit, finallyStep: true}
"""
    one, other = load_document(as_json), load_document(as_yaml.encode("utf-8-sig"))
    assert one == other
    step = one.steps[0]
    assert (step.platform, step.on_failure, step.finally_step) == ("Linux", "exit", True)
    assert one.parameters["Name"].required is False
    assert one.parameters["Name"].allowed_values == ("x", "y")


def test_parameters_keep_declaration_order_and_required_follows_default() -> None:
    document = make({"B": {"type": "String"}, "A": {"type": "String", "default": ""},
                     "C": {"type": "String", "default": None}})
    assert list(document.parameters) == ["B", "A", "C"]
    assert [p.required for p in document.parameters.values()] == [True, False, True]


def test_yaml_timestamps_stay_text() -> None:
    document = load_document("schemaVersion: '2.2'\nparameters:\n  Day: {type: String, default: 2024-01-31}\n"
                             "mainSteps: [{action: aws:runShellScript, name: s, inputs: {runCommand: [date]}}]\n")
    assert document.parameters["Day"].default == "2024-01-31"


def test_schema_1_2_runtime_config_becomes_steps() -> None:
    document = load_document({"schemaVersion": "1.2", "runtimeConfig": {"aws:runShellScript": {
        "Properties": [{"id": "0.aws:runShellScript", "runCommand": "{{ commands }}"}]}},
        "parameters": {"commands": {"type": "StringList"}}})
    (step,) = document.steps
    assert (step.name, step.action, step.platform) == ("aws:runShellScript", "aws:runShellScript", None)
    # a list of properties is one plugin: its entries run in turn and merge into one result
    assert (step.legacy, step.properties) == (True, [{"id": "0.aws:runShellScript", "runCommand": "{{ commands }}"}])


def test_step_level_modifiers_are_noted_because_the_agent_reads_inputs() -> None:
    document = make(steps=[{"action": "aws:runShellScript", "name": "s", "onFailure": "exit",
                            "inputs": {"runCommand": ["true"]}}])
    assert document.steps[0].on_failure is None
    assert any("mainSteps[0].onFailure: SSM Agent reads onFailure from the step's inputs" in f
               for f in findings(document, "warning"))


@pytest.mark.parametrize(("content", "expected"), [
    ({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {}},
                                            {"action": "aws:runShellScript", "name": "b",
                                             "inputs": {"runCommand": 42}}]},
     "doc.json: mainSteps[1].inputs.runCommand: expected a list of strings"),
    ({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a",
                                             "inputs": {"runCommand": ["echo", True]}}]},
     ("doc.json: mainSteps[0].inputs.runCommand[1]: expected a string (one script line), got true/false True; "
     "quote the line")),
    ({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "inputs": {}}]},
     "doc.json: mainSteps[0].name: every step needs a name"),
    ({"schemaVersion": "2.2", "mainSteps": [{"name": "a", "inputs": {}}]},
     "doc.json: mainSteps[0].action: every step needs an action"),
    ({"schemaVersion": "2.2", "mainSteps": {"name": "a"}}, "doc.json: mainSteps: expected a list of steps"),
    ({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a",
                                             "precondition": {"StringEquals": "platformType"}}]},
     "doc.json: mainSteps[0].precondition.StringEquals: expected a list of strings"),
    ({"schemaVersion": "2.2", "parameters": ["Message"]}, "doc.json: parameters: expected a mapping"),
    ({"schemaVersion": "2.2", "parameters": {"M": {"type": "String", "maxChars": "lots"}}},
     "doc.json: parameters.M.maxChars: expected a whole number"),
    ({"schemaVersion": "2.2", "parameters": {"M": {"type": "String", "allowedPattern": 5}}},
     "doc.json: parameters.M.allowedPattern: expected a regular expression string"),
    ({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a",
                                             "inputs": {"workingDirectory": ["/tmp"]}}]},
     "doc.json: mainSteps[0].inputs.workingDirectory: expected a directory path string"),
])
def test_load_errors_name_the_source_and_path(content: dict[str, Any], expected: str) -> None:
    with pytest.raises(DocumentError) as info:
        load_document(content, source="doc.json")
    assert expected in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"schemaVersion": "2.2",\n "mainSteps": [}', "d: not valid JSON (line 2, column 16"),
    ('{"schemaVersion": "2.2", "schemaVersion": "2.0"}', "d: duplicate key 'schemaVersion' in the JSON"),
    ("schemaVersion: '2.2'\nmainSteps:\n  - name: a\n    name: b\n", ("d: not valid YAML (line 4, column 5: "
                                                                     "duplicate key 'name')")),
    ("schemaVersion: '2.2'\nmainSteps: [\n", "d: not valid YAML (line"),
    ("- just\n- a list\n", "d: the document must be a mapping"),
    (b"\xff\xfe", "d: not UTF-8 text"),
])
def test_syntax_errors_name_the_line(text: str | bytes, expected: str) -> None:
    with pytest.raises(DocumentError) as info:
        load_document(text, source="d")
    assert expected in str(info.value)


# --------------------------------------------------------------------------- validation


def test_unknown_parameter_lists_the_declared_ones() -> None:
    problem = only(make({"Message": {"type": "String"}, "Bucket": {"type": "String", "default": ""}}),
                   {"Message": ["hi"], "Mesage": ["hi"]})
    assert str(problem) == ("Mesage: not declared by the document; it declares Message, Bucket "
                            "(declared parameters)")


def test_missing_required_parameter() -> None:
    assert str(only(make({"Message": {"type": "String"}}), {})) == (
        "Message: missing: the document declares no default, so a value must be given (required)")


@pytest.mark.parametrize(("type_", "values", "expected"), [
    ("String", [], "M: takes exactly one value, got 0 (type String)"),
    ("String", ["a", "b"], "M: takes exactly one value, got 2 (type String)"),
    ("Integer", ["12a"], 'M: value "12a" is not a whole number (type Integer)'),
    ("Boolean", ["yes"], 'M: value "yes" is not true or false (type Boolean)'),
    ("StringMap", ["[1, 2]"], 'M: value "[1, 2]" is not a JSON object (type StringMap)'),
    ("StringMap", ["{}", "{}"], "M: takes exactly one value, got 2 (type StringMap)"),
    ("MapList", ['{"a": 1}', "nope"], 'M[1]: value "nope" is not a JSON object (type MapList)'),
    ("StringList", ["ok", 3], "M: values must be strings (type StringList)"),
])
def test_types(type_: str, values: list[Any], expected: str) -> None:
    assert str(only(make({"M": {"type": type_}}), {"M": values})) == expected


@pytest.mark.parametrize(("type_", "values"), [
    ("Integer", ["-15"]), ("Boolean", ["false"]), ("StringMap", ['{"Env": "Prod"}']), ("StringList", []),
    ("MapList", ['{"DeviceName": "/dev/sda1"}']),
])
def test_valid_types(type_: str, values: list[str]) -> None:
    assert validate_parameters(make({"M": {"type": type_}}), {"M": values}) == {"M": values}


def test_allowed_values_per_item() -> None:
    document = make({"Colour": {"type": "String", "allowedValues": ["red", "green"]},
                     "Tags": {"type": "StringList", "allowedValues": ["a", "b"]}})
    found = problems(document, {"Colour": ["blue"], "Tags": ["a", "c"]})
    assert [str(p) for p in found] == [
        'Colour: value "blue" is not one of the allowed values (allowedValues [red, green])',
        'Tags[1]: value "c" is not one of the allowed values (allowedValues [a, b])',
    ]


def test_allowed_pattern_names_rule_and_value() -> None:
    document = make({"Message": {"type": "String", "allowedPattern": "^[a-zA-Z0-9 ]{1,200}$"}})
    assert str(only(document, {"Message": ["hi; rm -rf /"]})) == (
        'Message: value "hi; rm -rf /" does not match the pattern in full (allowedPattern ^[a-zA-Z0-9 ]{1,200}$)')
    assert validate_parameters(document, {"Message": ["hello world"]}) == {"Message": ["hello world"]}


@pytest.mark.parametrize(("pattern", "value"), [
    ("[a-z]+", "abc1"),          # a search would accept it; SSM's API matches the whole value
    ("^[a-z]+$", "abc\n"),       # Python's $ alone would accept the trailing newline
    ("^\\d+$", "\u0661\u0662"),  # Arabic-Indic digits: \d is ASCII in Java and Go
    ("^\\w+$", "\u00e9t\u00e9"),
])
def test_allowed_pattern_is_whole_value_and_ascii(pattern: str, value: str) -> None:
    assert not pattern_matches(pattern, value)
    only(make({"M": {"type": "String", "allowedPattern": pattern}}), {"M": [value]})


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("^(?<word>[a-z]+)-[0-9]\\z", "abc-1", True),
    ("^a\\z", "a\n", False),
    ("^(?i)[a-z]+$", "ABC", True),     # Python 3.11 alone rejects a flag group after ^
    ("a(?i)b|c", "C", True),            # the flag reaches the next alternative, as in Java and Go
    ("a(?i)b|c", "AB", False),
    ("(x(?i)y|w)z", "xYZ", False),      # ... and ends with its group
])
def test_java_and_go_syntax_is_read_in_python(pattern: str, value: str, matches: bool) -> None:
    assert pattern_matches(pattern, value) is matches


def test_pattern_rule_applies_to_each_list_item_and_quotes_a_short_prefix() -> None:
    long_value = "x" * 200 + "!"
    document = make({"Lines": {"type": "StringList", "allowedPattern": "^x*$"}})
    problem = only(document, {"Lines": ["xx", long_value]})
    assert problem.field == "Lines[1]"
    assert problem.rule == "allowedPattern ^x*$"
    assert long_value not in str(problem)
    assert problem.problem == f'value "{"x" * 40}…" does not match the pattern in full'


def test_quoted_values_escape_newlines() -> None:
    problem = only(make({"M": {"type": "String", "allowedValues": ["a"]}}), {"M": ["a\nb"]})
    assert problem.problem == 'value "a\\nb" is not one of the allowed values'


@pytest.mark.parametrize(("rules", "value", "expected"), [
    ({"minChars": 3}, "ab", 'M: value "ab" has 2 characters, fewer than 3 (minChars 3)'),
    ({"maxChars": 3}, "abcd", 'M: value "abcd" has 4 characters, more than 3 (maxChars 3)'),
    ({"maxChars": 3}, "\u00e9\u00e9", ('M: value "\u00e9\u00e9" has 4 bytes in UTF-8 (SSM Agent counts bytes), '
                                      "more than 3 (maxChars 3)")),
])
def test_min_and_max_chars(rules: dict[str, int], value: str, expected: str) -> None:
    assert str(only(make({"M": {"type": "String", **rules}}), {"M": [value]})) == expected


def test_min_and_max_items() -> None:
    document = make({"L": {"type": "StringList", "minItems": 2, "maxItems": 3}})
    assert str(only(document, {"L": ["a"]})) == "L: 1 item(s) given, fewer than 2 (minItems 2)"
    assert str(only(document, {"L": list("abcd")})) == "L: 4 items given, more than 3 (maxItems 3)"


def test_every_problem_is_reported_at_once() -> None:
    document = make({"A": {"type": "String", "allowedValues": ["x"]}, "B": {"type": "String"},
                     "C": {"type": "String", "maxChars": 1}})
    found = problems(document, {"A": ["y"], "C": ["zz"], "D": ["?"]})
    assert [(p.field, p.rule) for p in found] == [
        ("D", "declared parameters"), ("A", "allowedValues [x]"), ("B", "required"), ("C", "maxChars 1")]
    with pytest.raises(ParameterError) as info:
        validate_parameters(document, {"A": ["y"], "C": ["zz"], "D": ["?"]})
    assert str(info.value).count("\n- ") == 4


def test_defaults_are_filled_in_declaration_order_as_ssm_strings() -> None:
    document = make({
        "Given": {"type": "String"},
        "Text": {"type": "String", "default": "hello"},
        "Lines": {"type": "StringList", "default": ["a", "b"]},
        "Map": {"type": "StringMap", "default": {"b": "2", "a": "<1>"}},
        "Flag": {"type": "Boolean", "default": True},
        "Count": {"type": "Integer", "default": 100},
        "Maps": {"type": "MapList", "default": [{"DeviceName": "/dev/sda1"}]},
        "Empty": {"type": "String", "default": ""},
    })
    assert validate_parameters(document, {"Given": "one"}) == {
        "Given": ["one"], "Text": ["hello"], "Lines": ["a", "b"], "Map": ['{"a":"\\u003c1\\u003e","b":"2"}'],
        "Flag": ["true"], "Count": ["100"], "Maps": ['{"DeviceName":"/dev/sda1"}'], "Empty": [""]}


def test_parameter_store_reference_is_left_to_ssm() -> None:
    document = make({"M": {"type": "String", "allowedPattern": "^[a-z]+$", "allowedValues": ["abc"]}})
    assert validate_parameters(document, {"M": ["{{ ssm:/team/message }}"]}) == {"M": ["{{ ssm:/team/message }}"]}


def test_a_broken_document_pattern_is_a_problem_not_a_crash() -> None:
    problem = only(make({"M": {"type": "String", "allowedPattern": "^(unclosed$"}}), {"M": ["x"]})
    assert problem.rule == "allowedPattern ^(unclosed$"
    assert "the document's pattern is not a valid regular expression" in problem.problem


# ------------------------------------------------------------------------- interpolation


def test_whole_placeholder_keeps_the_value_type() -> None:
    document = make({"commands": {"type": "StringList"}, "Dir": {"type": "String"}})
    values = {"commands": ["echo one", "echo two"], "Dir": ["/srv"]}
    inputs = {"runCommand": "{{ commands }}", "list": ["{{commands}}", "x"], "workingDirectory": "{{\tDir  }}",
              "timeoutSeconds": 60}
    assert interpolate(inputs, values, document=document) == {
        "runCommand": ["echo one", "echo two"], "list": [["echo one", "echo two"], "x"],
        "workingDirectory": "/srv", "timeoutSeconds": 60}
    # a StringList as a whole list item is a nested list: SSM Agent then fails the step (not flattened)
    assert interpolate(["{{ commands }}", "exit 0"], values, document=document) == [["echo one", "echo two"], "exit 0"]


def test_embedded_placeholders_become_text() -> None:
    document = make({"Message": {"type": "String"}, "Tags": {"type": "StringList"}})
    values = {"Message": ["hi there"], "Tags": ["a", "<b>"]}
    assert interpolate("echo {{Message}} / {{ Message }} {{ Tags }}", values, document=document) == (
        'echo hi there / hi there ["a","\\u003cb\\u003e"]')


def test_one_item_lists_need_the_document_to_be_typed_exactly() -> None:
    document = make({"Tags": {"type": "StringList"}})
    assert interpolate("x={{Tags}}", {"Tags": ["a"]}, document=document) == 'x=["a"]'
    assert interpolate("x={{Tags}}", {"Tags": ["a"]}) == "x=a"


def test_unknown_invalid_and_parameter_store_placeholders_stay_literal() -> None:
    values = {"known": ["K"], "my_param": ["M"]}
    text = "{{ known }} {{ unknown }} {{ my_param }} {{ssm:/a/b}} {{ ssm-secure:x }} {{ known}}"
    assert interpolate(text, values) == "K {{ unknown }} {{ my_param }} {{ssm:/a/b}} {{ ssm-secure:x }} K"


def test_dollar_signs_in_a_value_reach_the_script_verbatim() -> None:
    # parameters.go ReplaceParameter: no regexp expansion, only $$ becomes $ (kept for old workarounds)
    value = "cost $5 and $HOME, $$, ${x}, $(id), $0 end $"
    assert interpolate("echo {{ M }}!", {"M": [value]}) == "echo cost $5 and $HOME, $, ${x}, $(id), $0 end $!"
    assert interpolate("{{ M }}", {"M": [value]}) == value  # a whole placeholder is the value itself


def test_substitution_is_a_single_pass() -> None:
    assert interpolate("{{ A }}/{{ B }}", {"A": ["{{ B }}"], "B": ["b"]}) == "{{ B }}/b"


def test_environment_for_env_var_parameters() -> None:
    document = make({"Message": {"type": "String", "interpolationType": "ENV_VAR"},
                     "Plain": {"type": "String", "default": "p"},
                     "Lines": {"type": "StringList", "interpolationType": "ENV_VAR", "default": ["a", "b"]}})
    hostile = "a\"b'c; $(id) `id` \n$HOME"
    values = validate_parameters(document, {"Message": [hostile]})
    # documented for String parameters only: no rendering is invented for the StringList
    assert parameter_environment(document, values) == {"SSM_Message": hostile}
    # ENV_VAR does not stop the text substitution
    assert interpolate("echo {{Message}}", values, document=document) == "echo " + hostile


def test_environment_only_for_schema_2_2() -> None:
    document = make({"M": {"type": "String", "interpolationType": "ENV_VAR"}}, version="2.0")
    assert parameter_environment(document, {"M": ["x"]}) == {}


@pytest.mark.parametrize(("value", "seconds"), [
    ("60", 60), (60, 60), (12.9, 12), ("12.9", 12), ("5", 5), ("4", 3600), ("172801", 3600), ("abc", 3600),
    (None, 3600), (True, 3600), ("{{ t }}", 3600), ("1e3", 1000),
])
def test_execution_timeout_as_the_agent_reads_it(value: Any, seconds: int) -> None:
    assert execution_timeout(value) == seconds


# ------------------------------------------------------------------------- preconditions


def test_step_outcome_follows_the_agent() -> None:
    document = load_document({"schemaVersion": "2.2", "parameters": {"Env": {"type": "String"}}, "mainSteps": [
        {"action": "aws:runShellScript", "name": "linux", "precondition": {"StringEquals": ["platformType", "linux"]}},
        {"action": "aws:runShellScript", "name": "prod", "precondition": {"StringEquals": ["{{ Env }}", "prod"]}},
        {"action": "aws:runShellScript", "name": "plain"},
        {"action": "aws:nope", "name": "unknown"},
    ]})
    linux, prod, plain, unknown = document.steps
    values = {"Env": ["dev"]}
    assert step_outcome(document, linux, values, "Linux") == ("run", "")
    assert step_outcome(document, linux, values, "Windows") == (
        "skip", "Step execution skipped due to unsupported plugin: aws:runShellScript. Step name: linux")
    assert step_outcome(document, prod, values) == (
        "skip", ("Step execution skipped due to unsatisfied preconditions: "
                "'\"StringEquals\": [{{ Env }}, prod]'. Step name: prod"))
    assert step_outcome(document, prod, {"Env": ["prod"]}) == ("run", "")
    assert step_outcome(document, plain, values, "Windows")[0] == "skip"
    assert step_outcome(document, unknown, values) == (
        "fail", ("Plugin with name aws:nope is not supported by this version of ssm agent, please update to "
                "latest version. Step name: unknown"))


def test_preconditions_before_schema_2_2_fail_the_step() -> None:
    document = make(steps=[{"action": "aws:runShellScript", "name": "s",
                            "precondition": {"StringEquals": ["platformType", "Linux"]}}], version="2.0")
    assert step_outcome(document, document.steps[0], {})[0] == "fail"
    assert "error: mainSteps[0].precondition: preconditions need schemaVersion 2.2; SSM Agent fails the step" \
        in findings(document)


# ---------------------------------------------------------------------------------- lint


def test_seed_document_is_flagged_for_command_injection() -> None:
    document = load_document(SEED_WINDOWS, source="ssm/windows.yml")
    warnings = findings(document, "warning")
    for name in ("Message", "OutputBucket", "CodeRepository"):
        assert any(f"{{{{{name}}}}} is pasted into the script text and {name} has neither allowedPattern nor "
                   f"interpolationType ENV_VAR" in w and f"$env:SSM_{name}" in w for w in warnings), name
    assert findings(document, "error") == []


def test_env_var_does_not_silence_the_injection_warning() -> None:
    document = make({"M": {"type": "String", "interpolationType": "ENV_VAR"}},
                    [{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": ["echo {{M}}"]}}])
    assert any("interpolationType ENV_VAR does not stop that substitution" in w and '"$SSM_M"' in w
               for w in findings(document, "warning"))


def test_safe_documents_are_not_flagged() -> None:
    document = make({"M": {"type": "String", "interpolationType": "ENV_VAR", "allowedPattern": "^[a-z ]{1,20}$"},
                     "Mode": {"type": "String", "allowedValues": ["a; b"], "default": "a; b"}},
                    [{"action": "aws:runShellScript", "name": "s", "inputs": {
                        "runCommand": ['printf "%s" "$SSM_M"', 'x="{{ M }}"', "run {{ Mode }}"]}}])
    assert findings(document) == []


def test_a_pattern_that_lets_metacharacters_through_is_flagged() -> None:
    document = make({"M": {"type": "String", "allowedPattern": "^[a-z;$()]+$"}},
                    [{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": ["echo {{M}}"]}}])
    assert any("allowedPattern lets through ; $ ( )" in w for w in findings(document, "warning"))


def test_a_parameter_that_is_the_script_is_flagged() -> None:
    document = make({"commands": {"type": "StringList"}},
                    [{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": "{{ commands }}"}}])
    assert findings(document) == [("warning: mainSteps[0].inputs.runCommand: parameter commands is the script "
                                  "itself: whoever sets it runs any command on the instance")]


@pytest.mark.parametrize(("content", "expected"), [
    ({"schemaVersion": "3.0"}, 'error: schemaVersion: Document with schema version 3.0 is not supported'),
    ({"schemaVersion": "2.2", "mainSteps": []}, "error: mainSteps: no steps"),
    ({"schemaVersion": "1.2"}, "error: runtimeConfig: no steps"),
    ({"mainSteps": [{"action": "aws:runBash", "name": "s", "inputs": {}}]},
     "error: mainSteps[0].action: unknown action 'aws:runBash'"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": []}},
                    {"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": []}}]},
     "error: mainSteps[1].name: duplicate step name 's' (also mainSteps[0])"),
    ({"parameters": {"P": {"type": "Str"}}}, "error: parameters.P.type: unknown type 'Str'"),
    ({"parameters": {"P": {"description": "no type"}}}, "error: parameters.P.type: missing"),
    ({"parameters": {"P": {"type": "String", "default": "c", "allowedValues": ["a", "b"]}}},
     ('error: parameters.P.default: the default breaks the parameter\'s own rule: value "c" is not one of the '
     "allowed values (allowedValues [a, b])")),
    ({"parameters": {"P": {"type": "String", "default": "A", "allowedPattern": "^[a-z]$"}}},
     ('error: parameters.P.default: the default breaks the parameter\'s own rule: value "A" does not match the '
     "pattern in full (allowedPattern ^[a-z]$)")),
    ({"parameters": {"P": {"type": "String", "default": "abc", "maxChars": 2}}},
     "error: parameters.P.default: the default breaks the parameter's own rule"),
    ({"parameters": {"P": {"type": "String", "default": 5}}},
     "error: parameters.P.default: default 5 is a number; a String default must be a string; quote it"),
    ({"parameters": {"P": {"type": "Boolean", "default": "true"}}},
     "error: parameters.P.default: default 'true' is a string; a Boolean default must be true or false"),
    ({"parameters": {"P": {"type": "String", "allowedPattern": "^(a$"}}},
     "error: parameters.P.allowedPattern: not a valid regular expression for the worker's check"),
    ({"parameters": {"P": {"type": "String", "minChars": 5, "maxChars": 2}}},
     "error: parameters.P.minChars: minChars 5 is greater than maxChars 2"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "s", "timeoutSeconds": "60", "inputs": {}}]},
     ("error: mainSteps[0].timeoutSeconds: SSM Agent reads this as a whole number and fails the whole command on a "
      "string '60'")),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "s", "maxAttempts": 1.5, "inputs": {}}]},
     "error: mainSteps[0].maxAttempts: SSM Agent reads this as a whole number and fails the whole command"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "s", "onFailure": True, "inputs": {}}]},
     "error: mainSteps[0].onFailure: SSM Agent reads this as text and fails the whole command"),
    ({"description": ["not", "text"]}, "error: description: SSM Agent reads this as text"),
    ({"parameters": {"P": {"type": "String", "default": "1", "description": 5}}},
     "error: parameters.P.description: SSM Agent reads this as text"),
    ({"parameters": {"P": {"type": "String", "default": "1", "allowedValues": ["1", 2]}}},
     "error: parameters.P.allowedValues[1]: SSM Agent reads this as text (quote it)"),
    ({"mainSteps": [{"action": "aws:runScript", "name": "s", "inputs": {"runCommand": []}}]},
     "error: mainSteps[0].action: aws:runScript is a legacy EC2Config plugin name SSM Agent does not know"),
    ({"parameters": {"my_param": {"type": "String", "default": ""}}},
     ("error: parameters.my_param: SSM Agent accepts only parameter names of letters and digits: it drops the value "
      "sent for my_param and pastes its default (or null)")),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "s",
                     "precondition": {"StringEquals": ["{{ nothing }}", "x"]}}]},
     ("error: mainSteps[0].precondition: SSM Agent fails this step: \"StringEquals\": at least one of operator's "
     "arguments must contain a valid document parameter")),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "s", "precondition": {"StringLike": ["a", "b"]}}]},
     'error: mainSteps[0].precondition: SSM Agent fails this step: unrecognized operator: "StringLike"'),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "s",
                     "precondition": {"StringEquals": ["platformType", "Linux", "Windows"]}}]},
     "operator accepts exactly 2 arguments"),
    ({"parameters": {"P": {"type": "String"}}, "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                                                             "precondition": {"StringEquals": ["platformType",
                                                                                               "{{ P }}"]}}]},
     "the second argument for the platformType variable can't contain document parameters"),
])
def test_lint_errors(content: dict[str, Any], expected: str) -> None:
    content = {"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                                                      "inputs": {"runCommand": []}}], **content}
    errors = findings(load_document(content), "error")
    assert any(expected in e for e in errors), errors


def test_lint_missing_schema_version() -> None:
    document = load_document({"mainSteps": [{"action": "aws:runShellScript", "name": "s", "inputs": {}}]})
    assert 'error: schemaVersion: missing; Command documents use schemaVersion "2.2"' in findings(document)


@pytest.mark.parametrize(("content", "expected"), [
    ({"parameters": {"P": {"type": "Array", "default": []}}}, "warning: parameters.P.type: Array is accepted"),
    ({"parameters": {"P": {"type": "Integer", "default": 5, "allowedPattern": "^[0-9]+$"}}},
     "warning: parameters.P.allowedPattern: SSM Agent checks allowedPattern only on text"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo {{ ssm-secure:/x }}"]}}]},
     "warning: mainSteps[0].inputs: {{ssm-secure:...}} stays literal text in a script step"),
    ({"parameters": {"P": {"type": "String", "default": "", "interpolationType": "ENV"}}},
     "warning: parameters.P.interpolationType: unknown value 'ENV'"),
    ({"parameters": {"P": {"type": "String", "default": "", "allowedPattern": "[a-z]*"}}},
     "warning: parameters.P.allowedPattern: not anchored"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": [],
                                                                            "finallyStep": True}},
                    {"action": "aws:runShellScript", "name": "b", "inputs": {"runCommand": []}}]},
     "warning: mainSteps[0].inputs.finallyStep: only the last step can be a finally step"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": [],
                                                                            "onFailure": "Abort"}}]},
     "warning: mainSteps[0].inputs.onFailure: 'Abort' is not exit or successAndExit"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": [],
                                                                            "timeoutSeconds": "2"}}]},
     ("warning: mainSteps[0].inputs.timeoutSeconds: '2' is not a number of seconds in 5..172800; SSM Agent uses "
     "3600 instead")),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo {{ Nope }}"]}}]},
     "warning: mainSteps[0].inputs: {{ Nope }} names no declared parameter"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {}}]},
     "warning: mainSteps[0].inputs: no runCommand"),
    ({"mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": []},
                     "precondition": {"StringEquals": ["platformType", "Solaris"]}}]},
     "platformType 'Solaris' matches no instance"),
])
def test_lint_warnings(content: dict[str, Any], expected: str) -> None:
    content = {"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                                                      "inputs": {"runCommand": []}}], **content}
    document = load_document(content)
    assert findings(document, "error") == []
    assert any(expected in w for w in findings(document, "warning")), findings(document)


def test_numeric_schema_version_is_a_warning() -> None:
    document = load_document("schemaVersion: 2.2\nmainSteps: [{action: aws:runShellScript, name: s, "
                             "inputs: {runCommand: [date]}}]\n")
    assert document.schema_version == "2.2"
    assert findings(document) == ['warning: schemaVersion: write the schema version as a quoted string: "2.2"']


# ------------------------------------------------------------------------- portability


@pytest.mark.parametrize(("pattern", "expected"), [
    ("^a(?=b)$", "lookaround (?=...) is not supported by Go RE2"),
    ("^(?<!x)a$", "lookaround (?<!...) is not supported by Go RE2"),
    ("^(a)\\1$", "backreference \\1 is not supported by Go RE2"),
    ("^a++$", "possessive quantifier ++ works in Java and Python 3.11+ but Go RE2 rejects it"),
    ("^a{2}+$", "possessive quantifier {2}+"),
    ("^(?>a)$", "atomic group (?>...)"),
    ("^a\\Z", "\\Z is end of input in Python, before a final line break in Java, and an error in Go RE2"),
    ("^a\\z", "\\z is not understood by Python re before 3.14"),
    ("^[[:alpha:]]+$", "POSIX class [[:name:]] is a class only in Go RE2"),
    ("^\\p{L}+$", "\\p{L} is not supported by Python re"),
    ("^[\\p{Alpha}]+$", "\\p{...} inside a character class"),
    ("^(?<n>a)$", "named group (?<name>...) needs Go 1.22+"),
    ("^(?P<n>a)$", "named group (?P<name>...) is rejected by Java regex"),
    ("^a{,3}$", "{,3} is {0,n} in Python, an error in Java and literal text in Go RE2"),
    ("^a{1001}$", "Go RE2 rejects repetition counts above 1000"),
    ("^(?x)a$", "inline flags (?x) mean different things"),
    ("^\\Qa.b\\E$", "\\Q...\\E quoting is not supported by Python re"),
    ("^[a-z&&[^e]]$", "nested [...] or && inside a character class"),
    ("^\\u00e9$", "\\uHHHH is not supported by Go RE2"),
    ("[a-z]+", "not anchored: SSM Agent (Go regexp.MatchString) accepts any value that merely contains a match"),
    ("^a|b$", "not anchored"),
    ("([1-9][0-9]{0,4})|(172800)", "not anchored"),
])
def test_pattern_portability_flags(pattern: str, expected: str) -> None:
    assert any(expected in p for p in pattern_portability(pattern)), pattern_portability(pattern)


@pytest.mark.parametrize("pattern", [
    "^[a-zA-Z0-9 _.,:@+=/-]{1,200}$",
    "^(a|b)$",
    "(^$)|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}$",
    "\\A[0-9]+$",
    "^(?i)[a-z]+$",
    "^((^|\\s)\\w+=(\\S+|'.*'))*$",
    "^arn:[a-z0-9][-.a-z0-9]{0,62}:(package|document)\\/[a-zA-Z0-9/:.\\-_]{1,128}$|^[a-zA-Z0-9/:.\\-_]{1,128}$",
])
def test_portable_patterns_have_no_findings(pattern: str) -> None:
    assert pattern_portability(pattern) == []


def test_a_string_map_nested_too_deeply_is_a_parameter_problem() -> None:
    problem = only(make({"M": {"type": "StringMap"}}), {"M": ["[" * 100_000]})
    assert str(problem).startswith('M: value "[[[') and str(problem).endswith("is not a JSON object (type StringMap)")


@pytest.mark.parametrize("content", ['{"a": ' * 100_000, "a:\n" + "- " * 5_000 + "x"])
def test_a_document_nested_too_deeply_is_refused_clearly(content: str) -> None:
    with pytest.raises(DocumentError, match="nested too deeply to read"):
        load_document(content, source="deep")


def test_counts_are_ascii_digits() -> None:
    with pytest.raises(DocumentError, match=r"M\.minChars: expected a whole number of 0 or more"):
        load_document({"schemaVersion": "2.2", "parameters": {"M": {"type": "String", "minChars": "\u00b2"}},
                       "mainSteps": [{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": ["x"]}}]})
