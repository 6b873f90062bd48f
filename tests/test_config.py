"""Worker configuration: every key checked at start-up, the key named in every error."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from worker.config import ActionType, Config, load_config, parse_config
from worker.errors import ConfigFileError

BASE = {"action_type": {"category": "Deploy", "provider": "SSMRunCommand", "version": 1},
        "allowed_documents": ["codepipeline-ssm-*"], "allowed_instance_ids": ["i-*"]}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "worker.yml"


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(BASE)
    assert config.action_type == ActionType("Deploy", "SSMRunCommand", "1")
    assert config.action_type.api() == {"category": "Deploy", "owner": "Custom", "provider": "SSMRunCommand",
                                        "version": "1"}
    assert config.concurrency == 4 and config.log_format == "auto" and config.query_param == {}


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.parameters == {"OutputBucket": ("my-output-bucket",)}


@pytest.mark.parametrize(("change", "message"), [
    ({"concurency": 2}, "unknown key 'concurency'; did you mean 'concurrency'?"),
    ({"concurrency": "four"}, "config key 'concurrency': expected a whole number from 1 to 64, got 'four'"),
    ({"concurrency": True}, "config key 'concurrency'"),
    ({"log_format": "xml"}, "config key 'log_format': expected one of auto, json, console, got 'xml'"),
    ({"allowed_documents": "x"}, "config key 'allowed_documents': expected a list of fnmatch patterns"),
    ({"action_type": {"category": "Deploy", "provider": "bad name!", "version": "1"}},
     "config key 'action_type.provider'"),
    ({"action_type": {"category": "Nope", "provider": "P", "version": "1"}}, "config key 'action_type.category'"),
    ({"query_param": {"Fleet": "has space"}}, "config key 'query_param'"),
    ({"parameters": {"Message": {"a": 1}}}, "config key 'parameters.Message'"),
    ({"poll_interval_min": 30, "poll_interval_max": 5}, "poll_interval_min (30) is larger than poll_interval_max"),
])
def test_bad_values_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config({**BASE, **change})
    assert message in str(err.value)


def test_missing_required_keys() -> None:
    with pytest.raises(ConfigFileError, match="missing required key\\(s\\) 'allowed_instance_ids'"):
        parse_config({k: v for k, v in BASE.items() if k != "allowed_instance_ids"})


def test_cli_reports_bad_config_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "worker.yml"
    path.write_text("action_type: [\n")
    proc = subprocess.run([sys.executable, "-m", "worker.cli", "run", "--config", str(path)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"config file {path} is not valid YAML" in proc.stderr


def test_readme_documents_every_key() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    assert documented == {f.name for f in fields(Config)}


def test_state_dir_defaults_to_systemds_state_directory(tmp_path: Path) -> None:
    """Read once, at load: `run` (the daemon's journal) and `health` (the heartbeat) see the same directory."""
    from worker.health import heartbeat_path

    path = tmp_path / "worker.yml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_config(path, {}).state_dir is None
    from_systemd = load_config(path, {"STATE_DIRECTORY": "/var/lib/codepipeline-ssm-worker"})
    assert from_systemd.state_dir == "/var/lib/codepipeline-ssm-worker"
    assert heartbeat_path(from_systemd) == Path("/var/lib/codepipeline-ssm-worker/heartbeat.json")
    path.write_text(yaml.safe_dump({**BASE, "state_dir": str(tmp_path / "mine")}))
    assert load_config(path, {"STATE_DIRECTORY": "/elsewhere"}).state_dir == str(tmp_path / "mine")  # the file wins
    assert parse_config(BASE).state_dir is None  # parsing alone never reads the environment
