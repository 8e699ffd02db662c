"""The env built exactly as SkyRL builds it: rows loaded by HF datasets from skyrl's .jsonl and .parquet
output, ``extras`` = the row minus prompt and env_class plus max_turns, ``env_config`` a dict-like
section with attribute access, as omegaconf's DictConfig reads (omegaconf is not installable here:
its antlr4 dependency is missing from the index), or SkyRL's fallback ``dict()``, through
``skyrl_gym.make`` after importing the package registered the env. skyrl-gym itself is not
installable here, so tests/skyrl_gym_double stands in for it in a subprocess (this process keeps the
package's own stand-in base class)."""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import datasets
import pytest
from conftest import FIXTURES, AttrDict, call, episode, plan_calls

from skyrl_mcp_env import MCPToolEnv
from skyrl_mcp_env.tools import ConfigError

HERE = Path(__file__).resolve().parent

SCRIPT = r"""
import json, sys
import datasets
import skyrl_mcp_env  # registers MCPToolEnv with skyrl_gym on import
import skyrl_gym
from skyrl_gym.envs.base_text_env import BaseTextEnv

kind, path = sys.argv[1], sys.argv[2]
ds = datasets.load_dataset(kind, data_files=path, keep_in_memory=True)["train"]
class AttrDict(dict):  # reads like omegaconf's DictConfig: keys, .get() and attributes
    def __getattr__(self, name):
        value = self[name]
        return AttrDict(value) if isinstance(value, dict) else value

cfg = AttrDict({"skyrl_gym": {"MCPToolEnv": {"tools": "cassette", "strict": True}}})
env_config = getattr(cfg.skyrl_gym, "MCPToolEnv", dict())
results = []
for item in range(len(ds)):
    row = ds[item]
    prompt = row.pop("prompt")
    env_class = row.pop("env_class", None)
    extras = {k: v for k, v in row.items()}
    extras["max_turns"] = 8
    env = skyrl_gym.make(env_class, env_config=env_config, extras=extras)
    assert isinstance(env, BaseTextEnv)
    prompt, _ = env.init(prompt)
    out = None
    for step in extras["reward_spec"]["ground_truth"]["tool_sequence"]:
        body = {"name": step.get("call_name") or step["tool"], "arguments": json.loads(step["params"])}
        out = env.step("<tool_call>" + json.dumps(body) + "</tool_call>")
    out = env.step("final answer")
    env.close()
    results.append({"task_id": extras["reward_spec"]["ground_truth"]["task_id"], "reward": out["reward"],
                    "done": out["done"], "steps": out["metadata"]["steps_matched"],
                    "metrics": env.get_metrics()["reward"]})
print(json.dumps({"registered": "MCPToolEnv" in skyrl_gym.registry, "results": results}))
"""


def run_as_skyrl(kind, path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE / "skyrl_gym_double"), str(HERE.parent)])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, kind, str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind,name", [("json", "generated.jsonl"), ("parquet", "generated.parquet")])
def test_skyrl_builds_the_env_from_datasets_rows(cli_dir, generated_rows, kind, name):
    out = run_as_skyrl(kind, cli_dir / name)
    assert out["registered"] is True
    assert [r["task_id"] for r in out["results"]] == [
        r["reward_spec"]["ground_truth"]["task_id"] for r in generated_rows
    ]
    assert all(r["reward"] == 1.0 and r["done"] and r["metrics"] == 1.0 for r in out["results"])


def test_new_row_fields_survive_the_arrow_round_trip(tmp_path, v2_rows):
    parquet = tmp_path / "v2.parquet"
    datasets.load_dataset("json", data_files=str(FIXTURES / "rows_v2.jsonl"))["train"].to_parquet(str(parquet))
    for kind, path in (("json", FIXTURES / "rows_v2.jsonl"), ("parquet", parquet)):
        out = run_as_skyrl(kind, path)
        assert [(r["reward"], r["steps"]) for r in out["results"]] == [
            (1.0, len(r["reward_spec"]["ground_truth"]["tool_sequence"])) for r in v2_rows
        ]


def test_datasets_row_and_json_row_score_alike(cli_dir, generated_rows):
    """The Arrow round-trip and the raw row agree, trajectory by trajectory (a wrong-param one included)."""
    loaded = datasets.load_dataset("json", data_files=str(cli_dir / "generated.jsonl"))["train"]
    for raw, arrow in zip(generated_rows, loaded, strict=True):
        calls = plan_calls(raw)
        wrong = calls[:-1] + [call("fmp_get_quote", {"symbol": "ZZZZ"}), "done"]
        for actions in (calls + ["done"], wrong):
            a = episode(raw, actions)
            b = episode({k: v for k, v in arrow.items()}, actions)
            assert a == b


def test_env_config_as_dictconfig_dict_and_dataclass(generated_rows):
    @dataclass
    class Config:
        tools: str = "cassette"
        strict: bool = True

    row = generated_rows[0]
    extras = {**{k: v for k, v in row.items() if k not in ("prompt", "env_class")}, "max_turns": 8}
    for config in (AttrDict({"tools": "cassette", "strict": True}), {"strict": True}, Config(), None, {}):
        env = MCPToolEnv(config, extras)
        assert env.settings.tools == "cassette"
    assert MCPToolEnv(AttrDict({"allow_side_effects": ("a", "b")}), extras).settings.allow_side_effects == ["a", "b"]
    assert MCPToolEnv({"allow_side_effects": "all"}, extras).settings.allow_side_effects is True


def test_an_unknown_config_key_is_a_clear_error(generated_rows):
    extras = {k: v for k, v in generated_rows[0].items() if k not in ("prompt", "env_class")}
    with pytest.raises(ConfigError, match="MCPToolEnv config: unknown key.*cassete"):
        MCPToolEnv(AttrDict({"cassete": "/tmp/x"}), extras)
    with pytest.raises(ConfigError, match="expected 'cassette' or 'live'"):
        MCPToolEnv({"tools": "replay"}, extras)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"strict": "false"}, "strict: expected true or false, got 'false'"),
        ({"dependencies_across_turns": 0}, "dependencies_across_turns: expected true or false, got 0"),
        ({"max_response_chars": "8000"}, "max_response_chars: expected a positive integer, got '8000'"),
        ({"max_response_chars": 0}, "max_response_chars: expected a positive integer, got 0"),
        ({"max_calls_per_turn": 0}, "max_calls_per_turn: expected a positive integer, got 0"),
        ({"call_timeout": "30"}, "call_timeout: expected a positive number of seconds, got '30'"),
        ({"startup_timeout": -1}, "startup_timeout: expected a positive number of seconds, got -1"),
        ({"cassettes": 3}, "cassettes: expected a path, got 3"),
    ],
)
def test_a_setting_of_the_wrong_type_is_a_clear_error_at_construction(generated_rows, config, message):
    # "false" as a string is truthy: strict mode would be on while the config says false.
    extras = {k: v for k, v in generated_rows[0].items() if k not in ("prompt", "env_class")}
    with pytest.raises(ConfigError, match=re.escape(message)):
        MCPToolEnv(config, extras)


def test_settings_from_the_environment_variable_under_the_config_section(generated_rows, monkeypatch):
    extras = {k: v for k, v in generated_rows[0].items() if k not in ("prompt", "env_class")}
    monkeypatch.setenv("SKYRL_MCP_ENV_CONFIG", '{"strict": true, "call_timeout": 5}')
    settings = MCPToolEnv({}, extras).settings
    assert (settings.strict, settings.call_timeout) == (True, 5)
    assert MCPToolEnv({"strict": False}, extras).settings.strict is False  # the config section wins
    monkeypatch.setenv("SKYRL_MCP_ENV_CONFIG", '{"strikt": true}')
    with pytest.raises(ConfigError, match="SKYRL_MCP_ENV_CONFIG: unknown key.*strikt"):
        MCPToolEnv({}, extras)
    monkeypatch.setenv("SKYRL_MCP_ENV_CONFIG", "strict")
    with pytest.raises(ConfigError, match="SKYRL_MCP_ENV_CONFIG: is not JSON"):
        MCPToolEnv({}, extras)
    # A wrong type in the variable is an error even when the config section gives the key too (it wins, but the
    # variable is still wrong); before, the variable's value was replaced before any check and never looked at.
    monkeypatch.setenv("SKYRL_MCP_ENV_CONFIG", '{"strict": "yes"}')
    with pytest.raises(ConfigError, match=re.escape("SKYRL_MCP_ENV_CONFIG: strict: expected true or false, got 'yes'")):
        MCPToolEnv({"strict": False}, extras)
    monkeypatch.setenv("SKYRL_MCP_ENV_CONFIG", '{"allow_side_effects": 5}')
    with pytest.raises(ConfigError, match="^SKYRL_MCP_ENV_CONFIG: allow_side_effects: expected"):
        MCPToolEnv({"allow_side_effects": False}, extras)


def test_register_needs_skyrl_gym():
    from skyrl_mcp_env import register

    with pytest.raises(ImportError):
        register()
