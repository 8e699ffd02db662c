"""Shared fixtures: rows made by the built skyrl CLI (generate from the bundled answers, convert from
the repository's fixtures), the hand-written rows in the new row format, and small helpers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from skyrl_mcp_env import MCPToolEnv
from skyrl_mcp_env.tools import close_sessions

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SYNTAX = 'To call a tool, reply with exactly: <tool_call>{"name": "TOOL", "arguments": {...}}</tool_call>'


class AttrDict(dict):
    """A dict with attribute access, like omegaconf's DictConfig for reading."""

    __getattr__ = dict.get


def skyrl(*args: str) -> subprocess.CompletedProcess:
    if not (REPO / "dist" / "bin.js").exists():
        subprocess.run(["node", "scripts/build.mjs"], cwd=REPO, check=True)
    return subprocess.run(["node", "bin/skyrl.js", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    # Only "\n" ends a JSON Lines row: str.splitlines also splits at U+2028, which a row's strings may hold raw.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


@pytest.fixture(scope="session")
def cli_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli")
    for ext in ("jsonl", "parquet"):
        done = skyrl("generate", "-n", "12", "--llm", "replay", "--out", str(out / f"generated.{ext}"))
        assert done.returncode == 0, done.stderr
    for i, task_file in enumerate(sorted((REPO / "test" / "fixtures" / "openai" / "chat").glob("*.json"))):
        skyrl("convert", str(task_file), "--out", str(out / f"converted_{i}.jsonl"))  # some tasks are rejected
    return out


@pytest.fixture(scope="session")
def generated_rows(cli_dir) -> list[dict[str, Any]]:
    rows = read_jsonl(cli_dir / "generated.jsonl")
    assert len(rows) == 12
    return rows


@pytest.fixture(scope="session")
def converted_rows(cli_dir) -> list[dict[str, Any]]:
    rows = [
        r
        for p in sorted(cli_dir.glob("converted_*.jsonl"))
        if not p.name.endswith(".rejects.jsonl")
        for r in read_jsonl(p)
    ]
    assert len(rows) >= 3, "convert made fewer rows from test/fixtures/openai/chat than expected"
    return rows


@pytest.fixture(scope="session")
def v2_rows() -> list[dict[str, Any]]:
    """Hand-written rows in the format of /work/spec/formats.md (call_name, depends_on, derived_params,
    available_tools, tool_schemas), over the bundled finance inventory."""
    return read_jsonl(FIXTURES / "rows_v2.jsonl")


def v2_row(rows: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    return next(r for r in rows if r["reward_spec"]["ground_truth"]["task_id"] == task_id)


def extras_of(row: dict[str, Any], max_turns: int | None = None) -> dict[str, Any]:
    """What SkyRL hands the env: the row minus prompt and env_class, plus the trainer's max_turns."""
    extras = {k: v for k, v in row.items() if k not in ("prompt", "env_class")}
    extras["max_turns"] = max_turns if max_turns is not None else row["reward_spec"]["ground_truth"]["max_turns"]
    return extras


def schema_row(schema: Any, params: Any = None, derived: tuple[str, ...] = ("a",)) -> dict[str, Any]:
    """A one-step row of tool `t` on server `s` whose `tool_schemas` holds `schema` for it."""
    params = {"a": 1, "n": 1} if params is None else params
    return make_row(
        [{"server": "s", "tool": "t", "params": params, "derived_params": list(derived)}],
        tool_schemas=json.dumps({"t": schema}),
    )


def call(name: str, arguments: Any) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def plan_calls(row: dict[str, Any]) -> list[str]:
    steps = row["reward_spec"]["ground_truth"]["tool_sequence"]
    return [call(s.get("call_name") or s["tool"], json.loads(s["params"])) for s in steps]


def play(env: MCPToolEnv, actions: list[str]) -> list[dict[str, Any]]:
    """Step through the actions until done; returns every step output."""
    env.init([])
    outs = []
    for action in actions:
        outs.append(env.step(action))
        if outs[-1]["done"]:
            break
    return outs


def episode(
    row: dict[str, Any], actions: list[str], config: Any = None, max_turns: int | None = None
) -> dict[str, Any]:
    """The last step output of an episode."""
    return play(MCPToolEnv(config or {}, extras_of(row, max_turns)), actions)[-1]


@pytest.fixture(scope="session", autouse=True)
def _stop_servers():
    yield
    close_sessions()


def make_row(steps: list[dict[str, Any]], **ground_truth: Any) -> dict[str, Any]:
    """A small row in skyrl's layout (params, depends_on and derived_params as JSON text); ``steps`` are
    {server, tool, params, depends_on?, derived_params?, ...} with plain values."""
    seq = [
        {
            "step": i,
            **s,
            "params": json.dumps(s.get("params", {})),
            "depends_on": json.dumps(s.get("depends_on", []), separators=(",", ":")),
            "derived_params": json.dumps(s.get("derived_params", []), separators=(",", ":")),
        }
        for i, s in enumerate(steps, start=1)
    ]
    gt = {
        "task_id": "t",
        "complexity": "simple",
        "max_turns": len(seq) + 2,
        "success": {"must_call_tool": seq[0].get("call_name", seq[0]["tool"])},
        "tool_sequence": seq,
        "limits": {"max_tools": len({s["tool"] for s in seq}), "max_servers": len({s["server"] for s in seq})},
        "rubric": {"name": "r", "criteria": []},
        **ground_truth,
    }
    return {
        "data_source": "test",
        "prompt": [{"role": "system", "content": SYNTAX}, {"role": "user", "content": "task"}],
        "env_class": "MCPToolEnv",
        "reward_spec": {"method": "rule", "ground_truth": gt},
        "extra_info": {"task_metadata": "{}"},
    }


def loose_row(tools: list[str], distractors: list[str]) -> dict[str, Any]:
    """A plan of one call per tool on server-everything that offers ``distractors`` besides, under limits
    looser than the plan (a task's limits are often the run's, 5 tools), with a turn for every offered tool
    and the answer."""
    params = {"echo": {"message": "hi"}, "get-sum": {"a": 1, "b": 2}, "get-tiny-image": {}}
    steps = [{"server": "everything", "tool": t, "params": params[t]} for t in tools]
    offered = [{"server": "everything", "tool": t, "call_name": t} for t in tools + distractors]
    limits = {"max_tools": 5, "max_servers": 3}
    return make_row(steps, available_tools=offered, max_turns=len(offered) + 2, limits=limits)
