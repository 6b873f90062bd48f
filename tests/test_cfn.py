"""CloudFormation templates agree with the worker: action type, IAM actions, configuration, documents.

The templates are read with cfn-lint's decoder (it understands !Ref, !Sub and the other short
forms). The few intrinsic functions the templates use are evaluated here with sample parameter
values, so the tests see the policies and configuration files AWS would see. cfn-lint and
checkov themselves run in CI (see .ci/run), not here: they take seconds per template.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from cfnlint.decode import decode

from worker.config import parse_config
from worker.plan import output_options

ROOT = Path(__file__).resolve().parent.parent
CFN = ROOT / "cfn"
TEMPLATES = sorted(p.name for p in CFN.glob("*.yml"))
# Modules that only ever talk to the local emulator, never to AWS with the worker's role.
LOCAL_ONLY = ("worker/local/",)
PSEUDO = {"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::StackName": "stack", "AWS::URLSuffix": "amazonaws.com"}
NO_VALUE = object()


@cache
def template(name: str) -> dict[str, Any]:
    tpl, errors = decode(str(CFN / name))
    assert not errors, f"{name} does not parse: {errors}"
    return tpl


# --- a small evaluator for the intrinsic functions these templates use -------------------------

class Stack:
    """A template with parameter values: evaluates Ref, Sub, Join, Split, If and conditions."""

    def __init__(self, name: str, **values: str) -> None:
        self.tpl = template(name)
        params = self.tpl.get("Parameters", {})
        unknown = set(values) - set(params)
        assert not unknown, f"{name} has no parameter(s) {unknown}"
        for k, v in values.items():  # only values CloudFormation would accept
            assert re.fullmatch(params[k].get("AllowedPattern", ".*"), str(v), re.DOTALL), f"{name} {k}={v!r}"
            assert str(v) in map(str, params[k].get("AllowedValues", [v])), f"{name} {k}={v!r}"
        self.params = {k: str(values.get(k, p.get("Default", f"<{k}>"))) for k, p in params.items()}
        self.conditions = {k: self.eval(v) for k, v in self.tpl.get("Conditions", {}).items()}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            kind = self.tpl["Parameters"][name]["Type"]
            return self.params[name].split(",") if kind == "CommaDelimitedList" else self.params[name]
        return f"<{name}>"  # a resource: its physical id is unknown here

    def sub(self, text: str, extra: dict[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            if m[1].startswith("!"):
                return "${" + m[1][1:] + "}"
            if m[1] in extra:
                return str(extra[m[1]])
            return str(self.ref(m[1])) if "." not in m[1] else f"<{m[1]}>"

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def eval(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Condition":
                return self.conditions[arg]
            if fn == "Fn::Sub":
                text, extra = (arg[0], self.eval(arg[1])) if isinstance(arg, list) else (arg, {})
                return self.sub(text, extra)
            if fn == "Fn::Join":
                return arg[0].join(self.eval(arg[1]))
            if fn == "Fn::Split":
                return self.eval(arg[1]).split(arg[0])
            if fn == "Fn::If":
                return self.eval(arg[1] if self.conditions[arg[0]] else arg[2])
            if fn == "Fn::Equals":
                a, b = self.eval(arg)
                return a == b
            if fn == "Fn::Not":
                return not self.eval(arg[0])
            if fn == "Fn::Base64":
                return self.eval(arg)
            if fn in ("Fn::GetAtt", "Fn::ImportValue"):
                return f"<{fn}:{self.eval(arg)}>"
        if isinstance(node, dict):
            out = {k: self.eval(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not NO_VALUE}
        if isinstance(node, list):
            return [v for v in (self.eval(x) for x in node) if v is not NO_VALUE]
        return node

    def resource(self, logical_id: str) -> dict[str, Any]:
        return self.eval(self.tpl["Resources"][logical_id])


# --- every template ----------------------------------------------------------------------------

def test_templates_exist() -> None:
    assert set(TEMPLATES) >= {"custom-action.yml", "documents.yml", "worker-iam.yml", "worker-ec2.yml",
                              "worker-fargate.yml", "example-pipeline.yml"}


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_loads(name: str) -> None:
    tpl = template(name)
    assert tpl["AWSTemplateFormatVersion"] == "2010-09-09" and tpl["Resources"]


def test_stacks_agree_on_the_action_type() -> None:
    """Category/Provider/Version have the same defaults and rules in every template that names them."""
    shapes = {}
    for name in TEMPLATES:
        params = template(name).get("Parameters", {})
        if "Provider" in params:
            shapes[name] = {k: {f: params[k].get(f) for f in ("Default", "AllowedValues", "AllowedPattern")}
                            for k in ("Category", "Provider", "Version")}
    assert len(shapes) == 5, shapes.keys()
    first = shapes["custom-action.yml"]
    assert first["Category"]["Default"] == "Deploy" and first["Provider"]["Default"] == "SSMRunCommand"
    assert first["Version"]["Default"] == "1"
    for name, shape in shapes.items():
        assert shape == first, f"{name} disagrees with custom-action.yml on the action type parameters"


# --- custom-action.yml -------------------------------------------------------------------------

def _properties(enable_fleet: str) -> dict[str, dict[str, Any]]:
    action = Stack("custom-action.yml", EnableFleet=enable_fleet).resource("ActionType")["Properties"]
    return {p["Name"]: p for p in action["ConfigurationProperties"]}


def test_action_type_properties_without_fleet() -> None:
    props = _properties("false")
    assert list(props) == ["DocumentName", "DocumentVersion", "SpecFile"]
    assert props["DocumentName"]["Required"] is True
    assert props["DocumentVersion"]["Required"] is False and props["SpecFile"]["Required"] is False
    for p in props.values():
        assert p["Secret"] is False and p["Queryable"] is False and p["Type"] == "String"
        assert len(p["Description"]) <= 160, p["Name"]


def test_action_type_fleet_is_the_one_queryable_property() -> None:
    props = _properties("true")
    assert list(props) == ["DocumentName", "DocumentVersion", "SpecFile", "Fleet"]
    fleet = props["Fleet"]
    # CodePipeline: a queryable property must be required and not secret; at most one per type.
    assert fleet["Queryable"] is True and fleet["Required"] is True and fleet["Secret"] is False
    assert [p["Name"] for p in props.values() if p["Queryable"]] == ["Fleet"]
    assert len(fleet["Description"]) <= 160


def test_action_type_artifacts_and_links() -> None:
    props = Stack("custom-action.yml").resource("ActionType")["Properties"]
    assert props["InputArtifactDetails"] == {"MinimumCount": 1, "MaximumCount": 1}
    assert props["OutputArtifactDetails"] == {"MinimumCount": 0, "MaximumCount": 1}
    url = props["Settings"]["ExecutionUrlTemplate"]
    assert "{ExternalExecutionId}" in url and "/systems-manager/run-command/" in url
    assert "{Config:DocumentName}" in props["Settings"]["EntityUrlTemplate"]


def _worker_python_files() -> list[Path]:
    files = [p for p in sorted((ROOT / "worker").rglob("*.py"))
             if not p.relative_to(ROOT).as_posix().startswith(LOCAL_ONLY)]
    assert files, "no worker code found under worker/"
    return files


def test_worker_reads_only_declared_action_properties() -> None:
    """Every key the worker reads from the action configuration is a property of the type."""
    read: set[str] = set()
    for path in _worker_python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # configuration.get("Key") and configuration["Key"]
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "configuration"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                read.add(node.args[0].value)
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "configuration" and isinstance(node.slice, ast.Constant)):
                read.add(node.slice.value)
    assert "DocumentName" in read, "the worker does not read DocumentName from the action configuration"
    assert read <= set(_properties("true")), f"undeclared action properties read: {read - set(_properties('true'))}"


# --- worker-iam.yml: the role allows exactly what the worker calls ------------------------------

@cache
def _operations() -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """snake_case operation name -> IAM actions; (service, waiter) -> IAM action."""
    session = botocore.session.get_session()
    ops: dict[str, set[str]] = {}
    waiters: dict[tuple[str, str], str] = {}
    with_waiters = set(session.get_component("data_loader").list_available_services("waiters-2"))
    for service in ("codepipeline", "ssm", "s3"):
        model = session.get_service_model(service)
        prefix = model.signing_name
        for op in model.operation_names:
            ops.setdefault(xform_name(op), set()).add(f"{prefix}:{op}")
        if service not in with_waiters:
            continue
        waiter_model = session.get_waiter_model(service)
        for name in waiter_model.waiter_names:
            waiters[(service, xform_name(name))] = f"{prefix}:{waiter_model.get_waiter(name).operation}"
    return ops, waiters


def worker_api_calls() -> dict[str, set[str]]:
    """IAM action -> 'file:line' of each boto3 client call the worker makes, found with ast."""
    ops, waiters = _operations()
    found: dict[str, set[str]] = {}
    ambiguous = []
    for path in _worker_python_files():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name in ("get_paginator", "can_paginate") and node.args and isinstance(node.args[0], ast.Constant):
                name = node.args[0].value
            elif name == "get_waiter" and node.args and isinstance(node.args[0], ast.Constant):
                actions = {a for (_, w), a in waiters.items() if w == node.args[0].value}
                for action in actions:
                    found.setdefault(action, set()).add(f"{rel}:{node.lineno}")
                continue
            actions = ops.get(name, set())
            if len(actions) > 1:
                ambiguous.append(f"{rel}:{node.lineno} {name} -> {sorted(actions)}")
            for action in actions:
                found.setdefault(action, set()).add(f"{rel}:{node.lineno}")
    assert not ambiguous, "calls whose service cannot be told from the name: " + "; ".join(ambiguous)
    return found


def _role_statements(**values: str) -> list[dict[str, Any]]:
    stack = Stack("worker-iam.yml", **values)
    statements = []
    for policy in stack.resource("WorkerRole")["Properties"]["Policies"]:
        doc = policy["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc  # a JSON string where keys need !Sub
        statements += doc["Statement"]
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        assert s["Effect"] == "Allow"
        out |= {s["Action"]} if isinstance(s["Action"], str) else set(s["Action"])
    return out


def test_worker_role_allows_exactly_the_calls_the_worker_makes() -> None:
    calls = worker_api_calls()
    needed = {a for a in calls if a.startswith(("codepipeline:", "ssm:"))}
    assert {"codepipeline:PollForJobs", "ssm:SendCommand"} <= needed, (
        "the worker code does not call PollForJobs and SendCommand yet: the worker core is not there")
    granted = {a for a in _actions(_role_statements()) if a.startswith(("codepipeline:", "ssm:"))}
    missing = {a: sorted(calls[a]) for a in needed - granted}
    unused = granted - needed
    assert not missing, f"cfn/worker-iam.yml lacks actions the worker calls: {missing}"
    assert not unused, f"cfn/worker-iam.yml grants actions no worker code calls: {sorted(unused)}"


def test_worker_role_has_no_s3_permissions() -> None:
    """The worker reads artifacts with the job's artifact credentials, never its own role."""
    for values in ({}, {"KmsKeyArns": "arn:aws:kms:eu-west-1:123456789012:key/abc", "EnableSessionManager": "true",
                        "OutputS3BucketName": "ops-command-logs"}):
        stack = Stack("worker-iam.yml", **values)
        text = json.dumps([stack.resource(r) for r in stack.tpl["Resources"]])
        assert '"s3:' not in text and "s3:*" not in text
        assert not any(a.startswith("s3") or a == "*" for a in _actions(_role_statements(**values)))


def test_worker_role_scopes_what_iam_can_scope() -> None:
    statements = _role_statements(TargetTagKey="Team", TargetTagValue="build", Provider="MyProvider",
                                  Version="7", DocumentNamePattern="my-docs-*", OutputS3BucketName="ops-logs")
    by_action: dict[str, list[dict[str, Any]]] = {}
    for s in statements:
        for a in [s["Action"]] if isinstance(s["Action"], str) else s["Action"]:
            by_action.setdefault(a, []).append(s)

    def resources(action: str) -> set[str]:
        return {r for s in by_action[action] for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                                      else s["Resource"])}

    assert resources("codepipeline:PollForJobs") == {
        "arn:aws:codepipeline:eu-west-1:123456789012:actiontype:Custom/Deploy/MyProvider/7"}
    document = "arn:aws:ssm:eu-west-1:123456789012:document/my-docs-*"
    for action in ("ssm:GetDocument", "ssm:DescribeDocument"):
        if action in by_action:
            assert resources(action) == {document}
    # SendCommand: the documents without condition; instances only with the target tag.
    for s in by_action["ssm:SendCommand"]:
        arns = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        if any(":instance/" in r or ":managed-instance/" in r for r in arns):
            assert s["Condition"] == {"StringEquals": {"ssm:resourceTag/Team": "build"}}
            assert set(arns) == {"arn:aws:ec2:eu-west-1:123456789012:instance/*",
                                 "arn:aws:ssm:eu-west-1:123456789012:managed-instance/*"}
        elif any(r.startswith("arn:aws:s3:") for r in arns):
            assert arns == ["arn:aws:s3:::ops-logs"] and s["Action"] == "ssm:SendCommand" and "Condition" not in s
        else:
            assert arns == [document] and "Condition" not in s


def _sendcommand_on_buckets(**values: str) -> list[str]:
    return [r for s in _role_statements(**values) if s["Action"] == "ssm:SendCommand"
            for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]) if ":s3:" in r]


def test_output_bucket_is_named_to_sendcommand_only_when_asked() -> None:
    """SendCommand with OutputS3BucketName is also authorized against the bucket (Service Authorization
    Reference: resource type `bucket`, arn:${Partition}:s3:::${BucketName}); the role may name exactly
    the configured bucket, and no other, and gains no S3 action. CloudWatch output needs nothing here."""
    assert not Stack("worker-iam.yml").conditions["HasOutputS3Bucket"]
    assert _sendcommand_on_buckets() == []
    assert _sendcommand_on_buckets(OutputS3BucketName="ops-command-logs") == ["arn:aws:s3:::ops-command-logs"]
    with_bucket = _actions(_role_statements(OutputS3BucketName="ops-command-logs"))
    assert with_bucket == _actions(_role_statements()), "naming the bucket must not add actions"
    assert not any(a.startswith(("s3:", "logs:")) for a in with_bucket)


def test_output_bucket_parameter_agrees_across_stacks() -> None:
    """The IAM stack and both worker stacks take the same OutputS3BucketName with the same rules."""
    shapes = {name: {f: template(name)["Parameters"]["OutputS3BucketName"].get(f)
                     for f in ("Type", "Default", "AllowedPattern")}
              for name in ("worker-iam.yml", "worker-ec2.yml", "worker-fargate.yml")}
    assert len({json.dumps(s, sort_keys=True) for s in shapes.values()}) == 1, shapes


def test_kms_only_when_asked() -> None:
    assert template("worker-iam.yml")["Resources"]["KmsPolicy"]["Condition"] == "HasKms"
    assert not Stack("worker-iam.yml").conditions["HasKms"]
    stack = Stack("worker-iam.yml", KmsKeyArns="arn:aws:kms:eu-west-1:123456789012:key/abc")
    assert stack.conditions["HasKms"]
    assert stack.resource("KmsPolicy")["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws:kms:eu-west-1:123456789012:key/abc"]


# --- worker-ec2.yml / worker-fargate.yml: the configuration they write is one the worker accepts ---

CONFIG_CASES = [
    {},
    {"Fleet": "windows", "AllowedTargets": "tag:Role=build,tag:Team=*", "OutputBucket": "my-output-bucket",
     "AllowedDocuments": "codepipeline-ssm-*,arn:aws:ssm:*:*:document/x", "Concurrency": "8", "Version": "2"},
    # Full command output: all three keys, each alone, and the characters the parameters allow.
    {"OutputS3BucketName": "ops-command-logs", "OutputS3KeyPrefix": "pipelines/run-1/",
     "CloudWatchLogGroupName": "/ssm/pipelines"},
    {"OutputS3BucketName": "ops.command-logs"},
    {"CloudWatchLogGroupName": "ssm_output.#1-a"},
    {"OutputS3BucketName": "o1o", "OutputS3KeyPrefix": "a!b_c.d*e'f(g)/h-"},
]
OUTPUT_KEYS = {"OutputS3BucketName": "output_s3_bucket", "OutputS3KeyPrefix": "output_s3_key_prefix",
               "CloudWatchLogGroupName": "cloudwatch_log_group"}


def _ec2_config(**values: str) -> str:
    user_data = Stack("worker-ec2.yml", PackageSpec="codepipeline-ssm-worker==0.1.0", **values).resource(
        "LaunchTemplate")["Properties"]["LaunchTemplateData"]["UserData"]
    m = re.search(r"<<'CONFIG'\n(.*?)\nCONFIG\n", user_data, re.DOTALL)
    assert m, "the user data writes no config.yml heredoc"
    return m[1]


def _fargate_config(**values: str) -> str:
    task = Stack("worker-fargate.yml", ImageUri="example/worker:1", **values).resource("TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    return env["CODEPIPELINE_SSM_WORKER_CONFIG"]


@pytest.mark.parametrize("values", CONFIG_CASES)
@pytest.mark.parametrize("render", [_ec2_config, _fargate_config], ids=["ec2", "fargate"])
def test_rendered_config_is_accepted_by_the_worker(render: Any, values: dict[str, str]) -> None:
    import yaml

    config = parse_config(yaml.safe_load(render(**values)), source=render.__name__)
    assert config.region == "eu-west-1" and config.state_dir == "/var/lib/codepipeline-ssm-worker"
    assert config.action_type.version == values.get("Version", "1")
    assert config.concurrency == int(values.get("Concurrency", 4))
    assert config.allowed_documents == tuple(values.get("AllowedDocuments", "codepipeline-ssm-*").split(","))
    assert config.allowed_instance_ids == ("i-*", "mi-*")
    assert config.query_param == ({"Fleet": values["Fleet"]} if "Fleet" in values else {})
    targets = values.get("AllowedTargets")
    assert config.allowed_targets == (tuple(targets.split(",")) if targets else ())
    bucket = values.get("OutputBucket")
    assert config.parameters == ({"OutputBucket": (bucket,)} if bucket else {})


@pytest.mark.parametrize("values", CONFIG_CASES)
@pytest.mark.parametrize("render", [_ec2_config, _fargate_config], ids=["ec2", "fargate"])
def test_rendered_config_sets_output_keys_only_when_asked(render: Any, values: dict[str, str]) -> None:
    import yaml

    data = yaml.safe_load(render(**values))
    # An empty parameter writes no key at all (the worker's default, off), never an empty value.
    assert {k for k in data if k in OUTPUT_KEYS.values()} == {OUTPUT_KEYS[p] for p in values if p in OUTPUT_KEYS}
    config = parse_config(data, source=render.__name__)
    for param, key in OUTPUT_KEYS.items():
        assert getattr(config, key) == values.get(param)
    expected: dict[str, Any] = {}
    if "OutputS3BucketName" in values:
        expected["OutputS3BucketName"] = values["OutputS3BucketName"]
        if "OutputS3KeyPrefix" in values:
            expected["OutputS3KeyPrefix"] = values["OutputS3KeyPrefix"]
    if "CloudWatchLogGroupName" in values:
        expected["CloudWatchOutputConfig"] = {"CloudWatchOutputEnabled": True,
                                              "CloudWatchLogGroupName": values["CloudWatchLogGroupName"]}
    assert output_options(config) == expected


@pytest.mark.parametrize("name", ["worker-ec2.yml", "worker-fargate.yml"])
def test_output_parameters_admit_only_safe_values(name: str) -> None:
    """What the parameters admit is a value the worker accepts, and safe inside the YAML double quotes
    (and the EC2 heredoc): no quote, backslash, whitespace or newline."""
    params = template(name)["Parameters"]
    for param in OUTPUT_KEYS:
        pattern = re.compile(params[param]["AllowedPattern"])
        assert params[param]["Default"] == "" and pattern.fullmatch("")
        for bad in ('a"b', "a\\b", "a b", "a\nb", "a\tb", "a$b"):
            assert not pattern.fullmatch(bad), f"{name} {param} admits {bad!r}"
    assert not re.fullmatch(params["OutputS3KeyPrefix"]["AllowedPattern"], "x" * 501)
    assert not re.fullmatch(params["CloudWatchLogGroupName"]["AllowedPattern"], "x" * 513)


def _rule_holds(name: str, rule: str, **values: str) -> bool:
    stack = Stack(name, **values)
    body = stack.tpl["Rules"][rule]
    if "RuleCondition" in body and not stack.eval(body["RuleCondition"]):
        return True
    return all(stack.eval(a["Assert"]) for a in body["Assertions"])


@pytest.mark.parametrize("name", ["worker-ec2.yml", "worker-fargate.yml"])
def test_key_prefix_without_bucket_is_refused(name: str) -> None:
    """A prefix alone would be silently ignored by the worker: the stack refuses it instead."""
    extra = {"PackageSpec": "x==1"} if name == "worker-ec2.yml" else {"ImageUri": "x"}
    assert not _rule_holds(name, "KeyPrefixNeedsBucket", OutputS3KeyPrefix="logs/", **extra)
    assert _rule_holds(name, "KeyPrefixNeedsBucket", OutputS3KeyPrefix="logs/", OutputS3BucketName="b1b", **extra)
    assert _rule_holds(name, "KeyPrefixNeedsBucket", **extra)
    assert _rule_holds(name, "KeyPrefixNeedsBucket", OutputS3BucketName="b1b", **extra)


@pytest.mark.parametrize("values", CONFIG_CASES)
def test_ec2_and_fargate_write_the_same_config(values: dict[str, str]) -> None:
    assert _ec2_config(**values).strip() == _fargate_config(**values).strip()


def test_worker_stacks_import_what_the_iam_stack_exports() -> None:
    exports = {o["Export"]["Name"] for o in Stack("worker-iam.yml").eval(
        template("worker-iam.yml")["Outputs"]).values() if "Export" in o}
    ec2 = Stack("worker-ec2.yml", PackageSpec="x==1", IamStackName="stack").resource("LaunchTemplate")
    fargate = Stack("worker-fargate.yml", ImageUri="x", IamStackName="stack").resource("TaskDefinition")
    imported = {ec2["Properties"]["LaunchTemplateData"]["IamInstanceProfile"]["Name"],
                fargate["Properties"]["TaskRoleArn"]}
    assert imported == {f"<Fn::ImportValue:{name}>" for name in ("stack-InstanceProfileName", "stack-RoleArn")}
    assert {"stack-InstanceProfileName", "stack-RoleArn"} <= exports


def test_ec2_worker_is_locked_down() -> None:
    stack = Stack("worker-ec2.yml", PackageSpec="x==1")
    data = stack.resource("LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["NetworkInterfaces"][0]["AssociatePublicIpAddress"] == "false"
    assert "arm64" in stack.params["ImageId"] and "al2023" in stack.params["ImageId"]
    sg = stack.resource("SecurityGroup")["Properties"]
    assert "SecurityGroupIngress" not in sg
    assert [(r["FromPort"], r["ToPort"]) for r in sg["SecurityGroupEgress"]] == [(443, 443)]
    assert "systemd-unit > /etc/systemd/system/codepipeline-ssm-worker.service" in data["UserData"]
    assert "/etc/codepipeline-ssm-worker/config.yml" in data["UserData"]


def test_fargate_worker_is_locked_down() -> None:
    stack = Stack("worker-fargate.yml", ImageUri="example/worker:1")
    (container,) = stack.resource("TaskDefinition")["Properties"]["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] is True and container["User"] not in ("0", "root")
    assert container["HealthCheck"]["Command"][:3] == ["CMD", "codepipeline-ssm-worker", "health"]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert "--config /etc/codepipeline-ssm-worker/config.yml" in container["Command"][0]
    service = stack.resource("Service")["Properties"]
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert service["DesiredCount"] == "1"
    assert "SecurityGroupIngress" not in stack.resource("SecurityGroup")["Properties"]


def _worker_command_lines() -> list[str]:
    """Every codepipeline-ssm-worker command line the templates and the Dockerfile run."""
    ec2 = Stack("worker-ec2.yml", PackageSpec="x==1").resource("LaunchTemplate")["Properties"][
        "LaunchTemplateData"]["UserData"]
    (container,) = Stack("worker-fargate.yml", ImageUri="x").resource("TaskDefinition")["Properties"][
        "ContainerDefinitions"]
    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", docker, re.MULTILINE)[1])
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", docker, re.MULTILINE)[1])
    healthcheck = json.loads(re.search(r"^\s+CMD (\[.*\])$", docker, re.MULTILINE)[1])
    lines = re.findall(r"(?:^|exec |/usr/local/bin/)(codepipeline-ssm-worker [^>&\n]*)",
                       ec2 + "\n" + container["Command"][0], re.MULTILINE)
    lines += [" ".join(container["HealthCheck"]["Command"][1:]), " ".join(entrypoint + cmd), " ".join(healthcheck)]
    return [line.strip() for line in lines]


def test_templates_run_commands_the_cli_has() -> None:
    from worker.cli import parser

    lines = _worker_command_lines()
    assert {line.split()[1] for line in lines} == {"systemd-unit", "run", "health"}, lines
    for line in lines:
        try:
            parser().parse_args(line.split()[1:])
        except SystemExit:
            pytest.fail(f"the worker CLI does not accept: {line}")


def test_example_pipeline_uses_the_custom_action() -> None:
    stack = Stack("example-pipeline.yml", Fleet="linux")
    pipeline = stack.resource("Pipeline")["Properties"]
    assert pipeline["ArtifactStore"]["EncryptionKey"]["Type"] == "KMS"
    action = pipeline["Stages"][1]["Actions"][0]
    assert action["ActionTypeId"] == {"Category": "Deploy", "Owner": "Custom", "Provider": "SSMRunCommand",
                                      "Version": "1"}
    assert set(action["Configuration"]) <= set(_properties("true"))
    assert action["Configuration"]["Fleet"] == "linux"
    assert "Fleet" not in Stack("example-pipeline.yml").resource("Pipeline")["Properties"]["Stages"][1][
        "Actions"][0]["Configuration"]


# --- documents.yml is generated from ssm/ ----------------------------------------------------------

def _build_documents() -> Any:
    spec = importlib.util.spec_from_file_location("build_documents", CFN / "build_documents.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_documents_template_is_generated_from_ssm() -> None:
    expected = _build_documents().render()
    actual = (CFN / "documents.yml").read_text(encoding="utf-8")
    assert actual == expected, "cfn/documents.yml is stale: run python cfn/build_documents.py"


def test_documents_template_embeds_each_document_unchanged() -> None:
    import yaml

    resources = template("documents.yml")["Resources"]
    for name, logical_id in _build_documents().DOCUMENTS.items():
        content = yaml.safe_load((ROOT / "ssm" / f"{name}.yml").read_text(encoding="utf-8"))
        props = resources[logical_id]["Properties"]
        assert props["DocumentType"] == "Command" and props["DocumentFormat"] == "YAML"
        assert json.loads(json.dumps(props["Content"])) == content
