"""Live mode against real MCP servers from npm over stdio (node_modules of the repository)."""

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import FIXTURES, REPO, call, episode, make_row, play

from skyrl_mcp_env import MCPToolEnv, tools
from skyrl_mcp_env.tools import ConfigError, LiveBackend, close_sessions, name_fault, sessions

NODE = shutil.which("node")


def server_bin(name):
    path = REPO / "node_modules" / "@modelcontextprotocol" / name / "dist" / "index.js"
    assert path.exists(), f"{path} is missing: run npm ci"
    return str(path)


@pytest.fixture(scope="module")
def fs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsroot").resolve()
    (root / "notes.txt").write_text("quarterly revenue: 42", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, fs_root):
    servers = [
        {
            "name": "everything",
            "launch": {
                "transport": "stdio",
                "command": NODE,
                "args": [server_bin("server-everything"), "stdio"],
                "env": [],
                "cwd": None,
            },
        },
        {
            "name": "fs",
            "launch": {"transport": "stdio", "command": NODE, "args": [server_bin("server-filesystem"), str(fs_root)]},
        },
        {"name": "missing", "launch": {"transport": "stdio", "command": "/nonexistent/mcp-server", "args": []}},
        {
            "name": "hangs",
            "launch": {"transport": "stdio", "command": NODE, "args": ["-e", "setInterval(() => {}, 1000)"]},
        },
        {"name": "nolaunch", "tools": [{"name": "x", "inputSchema": {"type": "object"}}]},
    ]
    path = tmp_path_factory.mktemp("inv") / "inventory.json"
    path.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_server():
    port = free_port()
    cmd = [NODE, server_bin("server-everything"), "streamableHttp"]
    proc = subprocess.Popen(cmd, env={**os.environ, "PORT": str(port)}, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(10)


def live(inventory, **extra):
    return {"tools": "live", "inventory": inventory, "startup_timeout": 20, "call_timeout": 20, **extra}


def observations(row, config, actions):
    outs = play(MCPToolEnv(config, {**row, "max_turns": 10}), actions)
    return [o["observations"][0]["content"] for o in outs if o["observations"]], outs[-1]


ECHO = make_row([{"server": "everything", "tool": "echo", "params": {"message": "hello"}}])


def test_everything_echo_runs_and_scores(inventory):
    texts, _ = observations(ECHO, live(inventory), [call("echo", {"message": "hello"})])
    assert texts == ["<tool_response>\nEcho: hello\n</tool_response>"]
    assert episode(ECHO, [call("echo", {"message": "hello"}), "done"], live(inventory))["reward"] == 1.0


def test_everything_over_streamable_http(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MCP_TEST_TOKEN", "Bearer test")
    launch = {"transport": "http", "url": http_server, "headers_env": {"Authorization": "MCP_TEST_TOKEN"}}
    inventory = tmp_path / "http.json"
    inventory.write_text(json.dumps({"servers": [{"name": "everything", "launch": launch}]}))
    texts, _ = observations(ECHO, live(str(inventory)), [call("echo", {"message": "over http"})])
    assert texts == ["<tool_response>\nEcho: over http\n</tool_response>"]


def test_a_url_referencing_the_environment_is_expanded(http_server, tmp_path, monkeypatch):
    # An inventory keeps ${VAR} in a URL (a key in its query), never the value: the start reads it.
    inventory = tmp_path / "http-var.json"

    def echo_with(url):
        launch = {"transport": "http", "url": url, "headers_env": {}}
        inventory.write_text(json.dumps({"servers": [{"name": "everything", "launch": launch}]}))
        return observations(ECHO, live(str(inventory)), [call("echo", {"message": "over http"})])[0]

    monkeypatch.setenv("SKYRL_TEST_URL_KEY", "k1")
    texts = echo_with(http_server + "?key=${SKYRL_TEST_URL_KEY}")
    assert texts == ["<tool_response>\nEcho: over http\n</tool_response>"]
    texts = echo_with(http_server + "?key=${SKYRL_TEST_UNSET_URL_KEY}")
    assert "could not be started" in texts[0] and "$SKYRL_TEST_UNSET_URL_KEY not set" in texts[0]


def test_one_session_per_server_reused_across_episodes(inventory):
    play(MCPToolEnv(live(inventory), {**ECHO, "max_turns": 5}), [call("echo", {"message": "warm up"})])
    starts = sessions().starts
    for i in range(3):
        env = MCPToolEnv(live(inventory), {**ECHO, "max_turns": 5})
        texts, _ = observations(ECHO, live(inventory), [call("echo", {"message": f"episode {i}"})])
        env.close()
        assert texts == [f"<tool_response>\nEcho: episode {i}\n</tool_response>"]
    assert sessions().starts == starts


def test_arguments_that_are_not_unicode_are_refused_without_breaking_the_shared_session(inventory):
    # before: '"\\ud800"' (a lone surrogate, valid JSON text) reached the stdio writer, which cannot encode it:
    # "echo failed: MCPError: Connection closed", and the session every episode of the process shares was
    # torn down and started again (any call in flight from another episode failed with it)
    play(MCPToolEnv(live(inventory), {**ECHO, "max_turns": 5}), [call("echo", {"message": "warm up"})])
    starts = sessions().starts
    lone = '<tool_call>{"name": "echo", "arguments": {"message": "a\\ud800"}}</tool_call>'
    texts, _ = observations(ECHO, live(inventory), [lone, call("echo", {"message": "after"})])
    assert texts[0].startswith("<tool_response>\nError: ") and "not valid Unicode" in texts[0]
    assert texts[1] == "<tool_response>\nEcho: after\n</tool_response>"
    assert sessions().starts == starts


def server_children(marker):
    """PIDs of this process's child processes whose command line contains marker."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
        except (OSError, IndexError):
            continue
        if int(stat[1]) == os.getpid() and marker in cmdline:
            pids.append(int(entry))
    return pids


def test_a_server_that_died_is_started_again(inventory):
    play(MCPToolEnv(live(inventory), {**ECHO, "max_turns": 5}), [call("echo", {"message": "up"})])
    [pid] = server_children("server-everything/dist/index.js\x00stdio")
    os.kill(pid, signal.SIGKILL)
    texts, _ = observations(ECHO, live(inventory), [call("echo", {"message": "after kill"})] * 2)
    assert texts[0].startswith("<tool_response>\nError: echo failed")
    assert texts[1] == "<tool_response>\nEcho: after kill\n</tool_response>"


def test_envs_stepping_from_a_thread_pool_share_one_session(inventory):
    def episode_text(i):
        return observations(ECHO, live(inventory), [call("echo", {"message": f"thread {i}"})])[0][0]

    play(MCPToolEnv(live(inventory), {**ECHO, "max_turns": 5}), [call("echo", {"message": "warm up"})])
    starts = sessions().starts
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(episode_text, range(16)))
    assert texts == [f"<tool_response>\nEcho: thread {i}\n</tool_response>" for i in range(16)]
    assert sessions().starts == starts


def test_call_timeout_answers_instead_of_hanging(inventory):
    row = make_row(
        [{"server": "everything", "tool": "trigger-long-running-operation", "params": {"duration": 10, "steps": 2}}]
    )
    started = time.monotonic()
    texts, out = observations(
        row, live(inventory, call_timeout=1), [call("trigger-long-running-operation", {"duration": 10, "steps": 2})]
    )
    assert time.monotonic() - started < 8
    assert "did not answer within 1 s" in texts[0] and out["metadata"]["tool_results"] == {"timeout": 1}




def test_a_server_that_still_answers_keeps_its_session_after_a_call_times_out(inventory):
    # a long operation on a server that serves other requests meanwhile (server-everything's is asynchronous): the
    # session is kept, so calls of other episodes in flight on it are not cut off by a restart
    play(MCPToolEnv(live(inventory), {**ECHO, "max_turns": 5}), [call("echo", {"message": "warm up"})])
    starts = sessions().starts
    slow = {"duration": 10, "steps": 2}
    row = make_row(
        [
            {"server": "everything", "tool": "trigger-long-running-operation", "params": slow},
            {"server": "everything", "tool": "echo", "params": {"message": "after"}},
        ]
    )
    steps = [call("trigger-long-running-operation", slow), call("echo", {"message": "after"})]
    texts, _ = observations(row, live(inventory, call_timeout=1), steps)
    assert "did not answer within 1 s" in texts[0] and texts[1] == "<tool_response>\nEcho: after\n</tool_response>"
    assert sessions().starts == starts

def test_a_server_a_call_left_stuck_is_started_again_for_the_next_call(tmp_path):
    # before: 'ping did not answer within 1 s', here and in every later episode of the worker: a call that timed
    # out left its server busy (a single-threaded server running a synchronous tool that never returns, e.g.
    # execute_python on `while True: pass`), the session was kept, and each later call to that server waited out
    # call_timeout (a turn of 32 calls: 16 minutes at the default 30 s) and answered with an error
    launch = {"transport": "stdio", "command": sys.executable, "args": [str(FIXTURES / "stuck_server.py")]}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"servers": [{"name": "stuck", "launch": launch}]}), encoding="utf-8")
    offered = [{"server": "stuck", "tool": t, "call_name": t} for t in ("spin", "ping")]
    steps = [{"server": "stuck", "tool": "ping", "params": {}}]
    row = make_row(steps, available_tools=offered, limits={"max_tools": 2})
    config = live(str(inventory), call_timeout=1, startup_timeout=10)
    texts, _ = observations(row, config, [call("spin", {}), call("ping", {})])
    assert "spin did not answer within 1 s" in texts[0]
    assert texts[1] == "<tool_response>\npong\n</tool_response>"
    texts, out = observations(row, config, [call("ping", {})])  # a later episode of the worker
    assert texts == ["<tool_response>\npong\n</tool_response>"] and out["metadata"]["tool_results"] == {"ok": 1}
    deadline = time.monotonic() + 10  # the stuck server is stopped, not left running
    while server_children("stuck_server.py") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(server_children("stuck_server.py")) == 1


FS = make_row(
    [
        {"server": "fs", "tool": "read_text_file", "params": {"path": "PLACEHOLDER"}},
        {"server": "fs", "tool": "write_file", "params": {"path": "PLACEHOLDER", "content": "x"}},
    ]
)


def test_filesystem_read_runs_and_a_side_effect_tool_is_refused(inventory, fs_root):
    target = fs_root / "written.txt"
    texts, out = observations(
        FS,
        live(inventory),
        [
            call("read_text_file", {"path": str(fs_root / "notes.txt")}),
            call("write_file", {"path": str(target), "content": "should not exist"}),
        ],
    )
    assert texts[0] == "<tool_response>\nquarterly revenue: 42\n</tool_response>"
    assert "may have side effects" in texts[1] and "allow_side_effects" in texts[1]
    assert not target.exists()
    assert out["metadata"]["tool_results"] == {"ok": 1, "refused": 1}


def test_side_effect_tool_runs_when_the_config_allows_it(inventory, fs_root):
    target = fs_root / "allowed.txt"
    texts, _ = observations(
        FS,
        live(inventory, allow_side_effects=["fs.write_file"]),
        [
            call("write_file", {"path": str(target), "content": "written by the env"}),
        ],
    )
    assert "Error" not in texts[0]
    assert target.read_text(encoding="utf-8") == "written by the env"


def test_a_tool_the_server_lists_twice_once_without_read_only_is_refused(tmp_path, monkeypatch):
    # before: the last listing won, and `append` (listed again with readOnlyHint: true) ran: the log got its line
    log = tmp_path / "appended.log"
    server = str(REPO / "test" / "fixtures" / "mcp" / "side-effect-server.mjs")
    launch = {"transport": "stdio", "command": NODE, "args": [server, str(log)], "env": ["DUP_APPEND"]}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"servers": [{"name": "se", "launch": launch}]}), encoding="utf-8")
    monkeypatch.setenv("DUP_APPEND", "1")
    row = make_row([{"server": "se", "tool": "append", "params": {"text": "side effect"}}])
    texts, out = observations(row, live(str(inventory)), [call("append", {"text": "side effect"})])
    assert "may have side effects" in texts[0] and not log.exists()
    assert out["metadata"]["tool_results"] == {"refused": 1}


def test_allow_side_effects_names_a_dotted_tool_as_server_dot_tool_only(inventory):
    # before: "mem.create_entities" also allowed a tool named "mem.create_entities" on another server (proxy)
    backend = LiveBackend(inventory, ["mem.create_entities", "write_file", "fs.a.b"], 20, 20)
    assert backend._allowed("mem", "create_entities") and backend._allowed("fs", "write_file")
    assert not backend._allowed("proxy", "mem.create_entities")
    assert backend._allowed("fs", "a.b") and not backend._allowed("other", "a.b")


def test_launch_args_referencing_the_environment_are_expanded(tmp_path, fs_root, monkeypatch):
    # An inventory records ${VAR} in args (a servers config's "args": ["${env:ROOT}"]), never the value.
    monkeypatch.setenv("SKYRL_TEST_FS_ROOT", str(fs_root))
    launch = {"transport": "stdio", "command": NODE, "args": [server_bin("server-filesystem"), "${SKYRL_TEST_FS_ROOT}"]}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"servers": [{"name": "fs", "launch": launch}]}), encoding="utf-8")
    read = call("read_text_file", {"path": str(fs_root / "notes.txt")})
    texts, _ = observations(FS, live(str(inventory)), [read])
    assert texts[0] == "<tool_response>\nquarterly revenue: 42\n</tool_response>"
    monkeypatch.delenv("SKYRL_TEST_FS_ROOT")
    launch["args"][1] = "${SKYRL_TEST_UNSET_ROOT}"  # another launch: another session
    inventory.write_text(json.dumps({"servers": [{"name": "fs", "launch": launch}]}), encoding="utf-8")
    texts, _ = observations(FS, live(str(inventory)), [read])
    assert "could not be started" in texts[0] and "$SKYRL_TEST_UNSET_ROOT not set" in texts[0]


def test_tool_error_from_the_server_is_an_error_observation(inventory, fs_root):
    texts, out = observations(FS, live(inventory), [call("read_text_file", {"path": str(fs_root / "absent.txt")})])
    assert texts[0].startswith("<tool_response>\nError: ") and out["metadata"]["tool_results"] == {"tool_error": 1}


@pytest.mark.parametrize(
    "server,message",
    [
        ("missing", "could not be started"),
        ("nolaunch", "has no launch spec"),
    ],
)
def test_server_that_cannot_start_is_an_error_observation(inventory, server, message):
    row = make_row([{"server": server, "tool": "x", "params": {}}])
    started = time.monotonic()
    texts, out = observations(row, live(inventory), [call("x", {})])
    assert message in texts[0] and out["metadata"]["tool_results"] == {"unavailable": 1}
    assert time.monotonic() - started < 10


def test_server_that_hangs_on_initialize_times_out(inventory):
    row = make_row([{"server": "hangs", "tool": "x", "params": {}}])
    started = time.monotonic()
    texts, _ = observations(row, live(inventory, startup_timeout=2), [call("x", {})])
    assert "no answer to initialize within 2 s" in texts[0]
    assert time.monotonic() - started < 15


def test_live_mode_needs_an_inventory():
    with pytest.raises(ConfigError, match="live needs inventory"):
        MCPToolEnv({"tools": "live"}, {**ECHO, "max_turns": 5})


def test_an_unreadable_inventory_is_a_clear_error(tmp_path):
    bad = tmp_path / "inv.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="inv.json is not JSON"):
        MCPToolEnv({"tools": "live", "inventory": str(bad)}, {**ECHO, "max_turns": 5})


# A server (raw JSON-RPC over stdio) that lists tools whose names skyrl refuses next to a good one.
ODD_NAMES = ["good", "a,b", "bad\nname", "x\u2028y", "tab\tx", " padded", "del\x7f"]


@pytest.fixture(scope="module")
def odd_inventory(tmp_path_factory):
    script = str(FIXTURES / "odd_names_server.py")
    launch = {"transport": "stdio", "command": sys.executable, "args": [script, json.dumps(ODD_NAMES)]}
    path = tmp_path_factory.mktemp("odd") / "inventory.json"
    path.write_text(json.dumps({"servers": [{"name": "odd", "launch": launch}]}), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name", [n for n in ODD_NAMES[1:] if n.strip() == n])  # a call's name is read trimmed
def test_a_tool_a_live_server_lists_under_a_name_skyrl_refuses_is_left_out(odd_inventory, name, caplog):
    # before: each of these ran ('ran "a,b"', status ok); `skyrl tools import` leaves such a tool out of an
    # inventory (nameFault), so live mode, which asks the server for its tools, leaves it out too
    row = make_row([{"server": "odd", "tool": name, "params": {}}, {"server": "odd", "tool": "good", "params": {}}])
    close_sessions()  # a fresh session, so its warnings are logged here
    with caplog.at_level(logging.WARNING, logger="skyrl_mcp_env.tools"):
        texts, out = observations(row, live(odd_inventory), [call(name, {}), call("good", {})])
    assert texts[0].startswith("<tool_response>\nError: ") and "name skyrl refuses" in texts[0], texts[0]
    assert texts[1] == '<tool_response>\nran "good"\n</tool_response>'
    assert out["metadata"]["tool_results"] == {"refused": 1, "ok": 1}
    warned = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(warned) == len(ODD_NAMES) - 1 and any(repr(name) in w for w in warned)


def test_tool_name_faults_follow_skyrls_rule():
    assert name_fault("fmp.get_quote", "tool") is None and name_fault("read file/ü", "tool") is None
    assert "a tool name is written as one line" in name_fault("a\nb", "tool")
    assert "could name this tool" in name_fault("a,b", "tool")
    assert "could name this server" in name_fault("a,b", "server")
    assert "lone surrogate" in name_fault("a\ud800", "tool") and name_fault("😀", "tool") is None


def test_a_server_that_failed_to_start_is_not_started_again_for_each_call(inventory, monkeypatch):
    # before: each call started the server again and waited startup_timeout for it, one after another behind
    # the server's lock: 6 calls to a server that hangs on initialize took 6 s at startup_timeout 1 (a turn of
    # 32 calls at the default 30 s held the worker 16 minutes)
    close_sessions()
    row = make_row([{"server": "hangs", "tool": "x", "params": {}}])
    started = time.monotonic()
    out = play(MCPToolEnv(live(inventory, startup_timeout=1), {**row, "max_turns": 5}), [call("x", {}) * 6])[-1]
    assert time.monotonic() - started < 3.5
    assert out["metadata"]["tool_results"] == {"unavailable": 6}
    texts = [o["content"] for o in out["observations"]]
    assert len(texts) == 6 and all("no answer to initialize within 1 s" in t for t in texts)
    assert "started again 60 s after the failure" in texts[-1]
    assert sessions().starts == 1
    monkeypatch.setattr(tools, "RESTART_AFTER", 0.0)  # the window passed: the next call starts it again
    observations(row, live(inventory, startup_timeout=1), [call("x", {})])
    assert sessions().starts == 2
    close_sessions()


def test_a_named_launch_variable_that_is_not_set_fails_the_start_naming_it(tmp_path, monkeypatch):
    # An inventory records a server's env NAMES (server-memory's MEMORY_FILE_PATH); skyrl fails the start naming an
    # unset one. Before, the env left it out and started the server anyway: server-memory then wrote its graph to
    # the memory.jsonl shared by every run (in its package directory), not to the file the variable would name.
    memory_file = tmp_path / "graph.jsonl"
    monkeypatch.setenv("SKYRL_TEST_MEMORY_FILE", str(memory_file))
    script = f'MEMORY_FILE_PATH="$SKYRL_TEST_MEMORY_FILE" exec "{NODE}" "{server_bin("server-memory")}"'
    launch = {"transport": "stdio", "command": "/bin/sh", "args": ["-c", script], "env": ["SKYRL_TEST_MEMORY_FILE"]}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"servers": [{"name": "memory", "launch": launch}]}), encoding="utf-8")
    row = make_row([{"server": "memory", "tool": "read_graph", "params": {}}])
    texts, _ = observations(row, live(str(inventory)), [call("read_graph", {})])
    assert "could not be started" not in texts[0] and "entities" in texts[0]
    for unset in ("", None):  # empty is not set, as skyrl reads it
        if unset is None:
            monkeypatch.delenv("SKYRL_TEST_MEMORY_FILE")
        else:
            monkeypatch.setenv("SKYRL_TEST_MEMORY_FILE", unset)
        launch["args"][1] += " "  # another launch: another session
        inventory.write_text(json.dumps({"servers": [{"name": "memory", "launch": launch}]}), encoding="utf-8")
        texts, out = observations(row, live(str(inventory)), [call("read_graph", {})])
        assert "could not be started" in texts[0] and "$SKYRL_TEST_MEMORY_FILE not set" in texts[0], texts[0]
        assert out["metadata"]["tool_results"] == {"unavailable": 1}
