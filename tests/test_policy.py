"""The operators' bounds on a job: allow-lists, fixed parameters and the DocumentVersion property.

The matching rules are pure functions, tested with many spellings; each rule is also driven end to end
through a real worker process, where the emulator shows that nothing was sent.
"""

from __future__ import annotations

import json

import botocore.session
import pytest
from conftest import DOCUMENT, INSTANCE, ROOT, Harness
from test_worker import run_to_result

from worker.config import parse_config
from worker.errors import ConfigurationError, DocumentError, ParameterError
from worker.plan import (
    DOCUMENT_VERSION_PATTERN,
    document_version,
    fixed_parameters,
    make_plan,
    name_matches,
    target_allowed,
)
from worker.spec import parse_spec
from worker.ssmdoc import load_document

ARN = "arn:aws:ssm:us-east-1:123456789012:document/codepipeline-ssm-linux"


@pytest.mark.parametrize(("value", "pattern", "allowed"), [
    ("codepipeline-ssm-linux", "codepipeline-ssm-*", True),
    ("codepipeline-ssm-", "codepipeline-ssm-*", True),
    ("codepipeline-ssm-..", "codepipeline-ssm-*", True),  # a legal document name; cannot reach another
    ("codepipeline-ssm-x/AWS-RunShellScript", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-../AWS-RunShellScript", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-x:AWS-RunShellScript", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-x%2FAWS-RunShellScript", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-x%2fAWS-RunShellScript", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-x\\AWS-RunShellScript", "codepipeline-ssm-*", False),
    ("Codepipeline-ssm-linux", "codepipeline-ssm-*", False),
    ("CODEPIPELINE-SSM-LINUX", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-linux ", "codepipeline-ssm-*", False),
    (" codepipeline-ssm-linux", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-linux\n", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-linux\t", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-linux\x00", "codepipeline-ssm-*", False),
    ("codepipeline-ssm-linux\u200b", "codepipeline-ssm-*", False),  # zero-width space
    ("codepipeline\u2010ssm-linux", "codepipeline-ssm-*", False),  # Unicode hyphen
    ("c\u043edepipeline-ssm-linux", "codepipeline-ssm-*", False),  # Cyrillic o
    ("codepipeline-ssm-l\u0456nux", "codepipeline-ssm-*", False),  # Cyrillic i inside the wildcard's part
    ("codepipeline-ssm-\uff4c\uff49\uff4e\uff55\uff58", "codepipeline-ssm-*", False),  # fullwidth letters
    (ARN, "codepipeline-ssm-*", False),
    (ARN, "*", False),
    (ARN, "arn:aws:ssm:*:123456789012:document/codepipeline-ssm-*", False),  # an ARN is listed exactly or not at all
    (ARN, ARN, True),
    (ARN.upper(), ARN, False),
    (ARN + " ", ARN, False),
    ("123456789012/shared-document", "123456789012/shared-document", True),
    ("123456789012/shared-document", "*/shared-document", False),
    ("codepipeline-ssm-linux", "*", True),
    ("a/b", "*", False),
    ("", "*", False),
    ("codepipeline-ssm-a", "codepipeline-ssm-?", True),
    ("codepipeline-ssm-/", "codepipeline-ssm-?", False),
    ("codepipeline-ssm-:", "codepipeline-ssm-?", False),
    ("codepipeline-ssm-bx", "codepipeline-ssm-[!a]*", True),
    ("codepipeline-ssm-/x", "codepipeline-ssm-[!a]*", False),  # fnmatch's [!a] would take "/"
    ("codepipeline-ssm-ax", "codepipeline-ssm-[!a]*", False),
    ("codepipeline-ssm-linux", "codepipeline-ssm-linux", True),
    ("codepipeline-ssm-linux", "codepipeline-ssm-Linux", False),
    ("codepipeline-ssm-*", "codepipeline-ssm-*", False),  # "*" in a name is not a name character
    ("i-0123456789abcdef0", "i-0*", True),
    ("i-0123456789abcdeF0", "i-0*", True),
    ("i-0123456789abcde\u017f0", "i-0*", False),  # Latin long s: Python's \w takes it, SSM would not
    ("i-9123456789abcdef0", "i-0*", False),
    ("mi-0123456789abcdef0", "i-*", False),
    ("i-0123456789abcdef0", "mi-*", False),
])
def test_name_matching(value: str, pattern: str, allowed: bool) -> None:
    assert name_matches(value, pattern) is allowed


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("tag:Role", "build", True),
    ("tag:Role", "build-01", True),
    ("tag:Role", "build ", False),
    ("tag:Role", "build\n", False),
    ("tag:Role", "Build", False),
    ("tag:role", "build", False),  # tag keys are case-sensitive
    ("tag:Roles", "build", False),
    ("tag:Role", "build/../prod", False),
    ("tag:Role", "prod:db", False),
    ("tag:Role", "web server", False),
    ("tag:Role", "a=b", False),
    ("tag:Role", "*", False),
    ("tag:Role", "%2F", False),
    ("tag:Role", "b\u0443ild", False),  # Cyrillic u
    ("tag:Team", "platform/build", True),  # listed exactly
    ("tag:Team", "platform/other", False),
    ("tag-key", "Role", True),
    ("resource-groups:Name", "ci-linux", True),
    ("resource-groups:Name", "prod-linux", False),
    ("tag:Env", "build", False),  # "tag:*=build" names the key "tag:*" only: keys never take wildcards
])
def test_target_matching(key: str, value: str, allowed: bool) -> None:
    patterns = ["tag:Role=build", "tag:Role=build-*", "tag:Team=platform/build", "tag-key=Role",
                "resource-groups:Name=ci-*", "tag:*=build", "tag:Env"]
    assert target_allowed(key, value, patterns) is allowed


def test_any_tag_value_is_still_a_whole_name() -> None:
    """`tag:Role=*` takes any plain value, and nothing a wildcard cannot stand for."""
    assert target_allowed("tag:Role", "anything_1.2-x", ["tag:Role=*"])
    for odd in ("a/b", "a:b", "a b", "a\nb", "", "a&b", "a%2Fb", "\u00e9t\u00e9"):
        assert not target_allowed("tag:Role", odd, ["tag:Role=*"]), odd


def test_document_version_pattern_is_botocores() -> None:
    model = botocore.session.get_session().get_service_model("ssm")
    assert model.shape_for("DocumentVersion").metadata["pattern"] == DOCUMENT_VERSION_PATTERN


@pytest.mark.parametrize(("value", "expected"), [
    (None, "$DEFAULT"), ("", "$DEFAULT"), ("$DEFAULT", "$DEFAULT"), ("$LATEST", "$LATEST"), ("1", "1"), ("12", "12"),
])
def test_document_version_accepted(value: str | None, expected: str) -> None:
    assert document_version(value) == expected


@pytest.mark.parametrize("value", [
    "0", "01", "-1", "1.0", "+1", "latest", "$latest", "LATEST", "DEFAULT", " 3", "3 ", "3\n", "$DEFAULT\n",
    "\u0663", "x$LATESTy", "$LATEST$DEFAULT", "v2", "1e3", "$", "$DEFAULT ",
])
def test_document_version_refused(value: str) -> None:
    with pytest.raises(DocumentError) as caught:
        document_version(value)
    assert str(caught.value) == (
        f"action property DocumentVersion {value!r} is not a document version; set it to $DEFAULT, $LATEST or "
        "a version number (1, 2, ...), or leave it empty for $DEFAULT")


LINUX = load_document((ROOT / "ssm" / "linux.yml").read_text(), source="linux.yml")


def config(**overrides: object):
    return parse_config({"action_type": {"category": "Deploy", "provider": "SSMRunCommand", "version": "1"},
                         "allowed_documents": ["codepipeline-ssm-*"], "allowed_instance_ids": ["i-*"], **overrides})


def plan_for(spec: dict, **overrides: object):
    return make_plan(parse_spec(json.dumps(spec).encode()), LINUX, document_name=DOCUMENT, document_version="1",
                     config=config(**overrides), auto={}, comment="job x")


@pytest.mark.parametrize("name", ["outputbucket", "OUTPUTBUCKET", "outputBucket", "Output_Bucket", "output-bucket",
                                  "output bucket"])
def test_fixed_parameter_spelt_differently_is_refused(name: str) -> None:
    with pytest.raises(ParameterError) as caught:
        fixed_parameters(config(parameters={name: "ops-bucket"}), LINUX, DOCUMENT)
    assert isinstance(caught.value, ConfigurationError)
    assert str(caught.value) == (
        "the worker configuration fixes parameters under a name the document spells differently:\n"
        f"- parameters.{name}: document {DOCUMENT!r} declares 'OutputBucket', not {name!r}; the worker's operators "
        "must spell it 'OutputBucket' so that it is fixed (fixed parameters in the worker configuration)")


def test_fixed_parameters_apply_exactly_and_others_are_ignored() -> None:
    cfg = config(parameters={"OutputBucket": "ops-bucket", "InstallPath": "/opt/app"})  # one config, many documents
    assert fixed_parameters(cfg, LINUX, DOCUMENT) == {"OutputBucket": ("ops-bucket",)}
    plan = plan_for({"instance_id": INSTANCE, "message": "x"}, parameters={"OutputBucket": "ops-bucket",
                                                                           "InstallPath": "/opt/app"})
    assert plan.parameters["OutputBucket"] == ["ops-bucket"] and "InstallPath" not in plan.parameters


def test_misspelt_fixed_parameter_never_lets_the_spec_value_through() -> None:
    with pytest.raises(ParameterError) as caught:
        plan_for({"instance_id": INSTANCE, "message": "x", "OutputBucket": "evil-bucket"},
                 parameters={"outputbucket": "ops-bucket"})
    assert "parameters.outputbucket" in str(caught.value) and "evil-bucket" not in str(caught.value)


# -- end to end ------------------------------------------------------------------------------------


def test_document_name_cannot_reach_another_document_through_a_path(harness: Harness) -> None:
    """The emulator, like an ARN path, resolves the last segment: the wildcard must not cross "/"."""
    corpus = ROOT / "tests" / "data" / "ssm-corpus" / "awsmanaged__AWS-RunShellScript.json"
    harness.emu.ssm.create_document("AWS-RunShellScript", corpus.read_text(), fmt="JSON")
    execution = harness.enqueue(configuration={"DocumentName": "codepipeline-ssm-x/AWS-RunShellScript"},
                                spec={"instance_id": INSTANCE, "commands": "id"})
    assert run_to_result(harness, execution) == (
        "document 'codepipeline-ssm-x/AWS-RunShellScript' is not allowed by this worker (allowed_documents: "
        "codepipeline-ssm-*); set the action's DocumentName to an allowed document or ask the worker's operators "
        "to allow it")


def test_document_arn_listed_exactly_runs(harness: Harness) -> None:
    arn = f"arn:aws:ssm:us-east-1:{harness.emu.account_id}:document/{DOCUMENT}"
    execution = harness.enqueue(configuration={"DocumentName": arn})
    worker = harness.start(harness.config(allowed_documents=["codepipeline-ssm-*", arn]))
    final = harness.final(execution)
    worker.stop()
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    assert [s["DocumentName"] for s in harness.sends()] == [arn]


def test_tag_target_with_a_path_value_is_refused(harness: Harness) -> None:
    execution = harness.enqueue(spec={"targets": [{"Key": "tag:Role", "Values": ["build/../prod"]}], "message": "x"})
    assert run_to_result(harness, execution, allowed_targets=["tag:Role=*"]) == (
        "abc.json: target tag:Role=build/../prod not allowed by this worker (allowed_targets: tag:Role=*); "
        "use instance ids or a target the operators allow")


def test_misspelt_fixed_parameter_fails_the_job_and_sends_nothing(harness: Harness) -> None:
    execution = harness.enqueue(spec={"instance_id": INSTANCE, "message": "x", "OutputBucket": "evil-bucket"})
    message = run_to_result(harness, execution, parameters={"outputbucket": "ops-bucket"})
    assert message == (
        "the worker configuration fixes parameters under a name the document spells differently:\n"
        f"- parameters.outputbucket: document {DOCUMENT!r} declares 'OutputBucket', not 'outputbucket'; the worker's "
        "operators must spell it 'OutputBucket' so that it is fixed (fixed parameters in the worker configuration)")


def test_invalid_document_version_fails_the_job_and_sends_nothing(harness: Harness) -> None:
    execution = harness.enqueue(configuration={"DocumentName": DOCUMENT, "DocumentVersion": "latest"})
    assert run_to_result(harness, execution) == (
        "action property DocumentVersion 'latest' is not a document version; set it to $DEFAULT, $LATEST or a "
        "version number (1, 2, ...), or leave it empty for $DEFAULT")
    assert not [c for c in harness.emu.calls if c.service == "ssm"]  # refused before SSM was asked


@pytest.mark.parametrize(("property_value", "sent"), [(None, "1"), ("$DEFAULT", "1"), ("$LATEST", "2"), ("2", "2")])
def test_accepted_document_versions_resolve(harness: Harness, property_value: str | None, sent: str) -> None:
    """Absent means $DEFAULT (CodePipeline does not deliver empty property values)."""
    harness.emu.ssm.update_document(DOCUMENT, (ROOT / "ssm" / "linux.yml").read_text() + "\n# v2\n", fmt="YAML")
    configuration = {"DocumentName": DOCUMENT} | ({"DocumentVersion": property_value} if property_value else {})
    execution = harness.enqueue(configuration=configuration)
    worker = harness.run_once(harness.config())
    assert worker.proc.returncode == 0
    assert harness.results(execution)[0][0] == "PutJobSuccessResult"
    assert [s["DocumentVersion"] for s in harness.sends()] == [sent]
