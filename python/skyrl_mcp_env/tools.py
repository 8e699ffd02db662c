"""Tool execution behind one small interface, with two backends.

``CassetteBackend`` (default) replays the tool results ``skyrl verify`` recorded (cassettes.jsonl, keyed
by ``call_key(server, tool, params)``): deterministic and offline; a call with no recording gets an
error text and the status ``miss``. A cassette directory without ``cassettes.jsonl`` (``skyrl verify`` makes
the directory first and the file with the first recorded call) is an empty store, as for ``skyrl cassettes
stats``: every call is a miss, and a warning says so once per process; a path that does not exist is a
``ConfigError``. ``LiveBackend`` runs the call on the row inventory's MCP servers
(launch specs), through the MCP Python SDK, with one session per server per worker process reused
across episodes, a timeout per call, and tools without ``readOnlyHint: true`` refused unless the config
allows side effects, and arguments that are not valid Unicode (a lone surrogate) refused before they
reach the shared session. Neither backend raises for a call: every failure is a result with a status.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

from .calls import depth_at_most
from .canonical import call_key, canonical_json


_log = logging.getLogger(__name__)

_TIMEOUTS = (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError)


class ConfigError(ValueError):
    """A setting or a file the env config names is unusable; the message names it."""


@dataclass(frozen=True)
class ToolResult:
    text: str
    status: str  # "ok" | "tool_error" | "miss" | "refused" | "unavailable" | "timeout"


class ToolBackend(Protocol):
    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult: ...


def result_text(result: dict[str, Any]) -> str:
    """The text a policy sees for an MCP CallToolResult (as stored in cassettes)."""
    parts = [_block_text(b) for b in result.get("content") or []]
    if not parts and result.get("structuredContent") is not None:
        parts.append(json.dumps(result["structuredContent"], ensure_ascii=False))
    text = "\n".join(parts)
    return f"Error: {text}" if result.get("isError") else text


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return str(block)
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") in ("image", "audio"):
        data = block.get("data")
        size = len(data) if isinstance(data, str) else 0
        return f"[{block['type']} {block.get('mimeType', '')}, {size} base64 chars]"
    return json.dumps(block, ensure_ascii=False)


def _result_fault(result: dict[str, Any]) -> Optional[str]:
    """Why a recorded ``result`` is not an MCP CallToolResult ``result_text`` can show, or None. The store's line
    rule (``_entry_fault``, skyrl's) asks only for an object, so a hand-edited store may hold one: its call is
    answered as a miss naming the fault, never with an exception out of ``step()``."""
    content = result.get("content")
    if content is not None and not isinstance(content, list):
        return f"content is {type(content).__name__}, not a list"
    if "isError" in result and not isinstance(result["isError"], bool):
        return f"isError is {type(result['isError']).__name__}, not a boolean"
    return None


# ---------------------------------------------------------------------------------------------
# Cassettes


class CassetteBackend:
    def __init__(self, path: Optional[str], keys: str = "checked"):
        self.path = path
        self.records = load_cassettes(path, keys) if path else {}
        if not path:
            _warn_no_store()

    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        key = call_key(server, tool, arguments)
        record = self.records.get(key)
        if record is None:
            where = f"in {self.path}" if self.path else "(no cassettes configured)"
            return ToolResult(
                f"Error: no recorded result for {server}/{tool} with these arguments {where}; "
                f"cassette mode answers only calls that skyrl verify recorded (key {key})",
                "miss",
            )
        result = record["result"]
        fault = _result_fault(result)
        if fault is not None:
            return ToolResult(
                f"Error: the recorded result for {server}/{tool} in {self.path} is not an MCP tool result ({fault}); "
                f"mend or remove its line (key {key})",
                "miss",
            )
        return ToolResult(result_text(result), "tool_error" if result.get("isError") else "ok")


CASSETTE_FILE = "cassettes.jsonl"  # the store's file in its directory (next to the writer's cassettes.jsonl.lock)

_CASSETTE_CACHE: dict[tuple[str, int, int, str], dict[str, dict[str, Any]]] = {}
_WARNED_EMPTY: set[str] = set()


def load_cassettes(path: str, keys: str = "checked") -> dict[str, dict[str, Any]]:
    """key -> cassette line; the first line per key wins (unless it is a tool error and a later one is not: the
    call answered later, and that answer wins), a torn last line is ignored. ``keys``: ``"checked"``, a line's key
    must be the key of its server, tool and params; ``"trusted"``, taken as written (``_entry_fault``).

    ``path`` is a store directory or its ``cassettes.jsonl``. A directory without the file is an empty store
    (what ``skyrl verify`` leaves when it recorded no call yet); the file is looked for again on every load,
    so a store that fills later is read then. A path that does not exist, or a file that cannot be read, is a
    ``ConfigError``: a typo must not train on misses. Nothing else in the directory (the writer's
    ``cassettes.jsonl.lock``) is read.
    """
    given = Path(path)
    if given.is_dir():
        file = given / CASSETTE_FILE
        if not os.path.lexists(file):  # a dangling link is not "no file": stat below names it
            _warn_empty_store(given, f"it has no {CASSETTE_FILE}")
            return {}
    else:
        file = given
    try:
        stat = file.stat()
    except OSError as e:
        raise ConfigError(f"cassettes: cannot read {file}: {e.strerror}") from None
    cache_key = (str(file.resolve()), stat.st_mtime_ns, stat.st_size, keys)
    if cache_key not in _CASSETTE_CACHE:
        try:
            _CASSETTE_CACHE[cache_key] = _read_cassettes(file, keys)
        except OSError as e:  # a directory named cassettes.jsonl, no permission...
            raise ConfigError(f"cassettes: cannot read {file}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"cassettes: cannot read {file}: not UTF-8 ({e.reason})") from None
        # The store's earlier versions (a store that fills while training): an env built on one keeps its own
        # reference; the cache held every version, its memory growing with the square of the store.
        for old in [k for k in list(_CASSETTE_CACHE) if k[0] == cache_key[0] and k[1:3] != cache_key[1:3]]:
            _CASSETTE_CACHE.pop(old, None)
    records = _CASSETTE_CACHE[cache_key]
    if not records:
        _warn_empty_store(file, "it holds no entries")
    return records


_WARNED_NO_STORE = False  # reward_check sets it: it scores without a store on purpose when --cassettes is not given


def _warn_no_store() -> None:
    """Once per process: cassette mode without ``cassettes`` answers every call with a miss, as an empty store does
    (which warns too): the key forgotten, or ``SKYRL_MCP_ENV_CONFIG`` not set in the process that builds the envs."""
    global _WARNED_NO_STORE
    if _WARNED_NO_STORE:
        return
    _WARNED_NO_STORE = True
    _log.warning(
        "cassettes: no cassettes configured (env_config cassettes, or SKYRL_MCP_ENV_CONFIG in the process that "
        "builds the envs): every tool call is a cassette miss (metadata cassette_misses) and gets an error "
        "observation; give the directory skyrl verify --cassettes filled, or set tools: live"
    )


def _warn_empty_store(store: Path, why: str) -> None:
    """Once per store and process (SkyRL builds an env per episode): why every call will be a miss."""
    seen = str(store.resolve())
    if seen in _WARNED_EMPTY:
        return
    _WARNED_EMPTY.add(seen)
    _log.warning(
        "cassettes: %s holds no cassettes (%s): every tool call is a cassette miss (metadata cassette_misses) "
        "and gets an error observation; run skyrl verify --cassettes on this store, or check the path",
        store,
        why,
    )


def _read_cassettes(file: Path, keys: str = "checked") -> dict[str, dict[str, Any]]:
    lines = file.read_text(encoding="utf-8-sig").split("\n")  # a BOM at the start dropped, as skyrl reads it
    records: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        if line.strip() == "":
            continue
        try:
            record = json.loads(line, parse_constant=_not_json)
            fault = _entry_fault(record, keys)
        except ValueError as e:  # json.JSONDecodeError too
            record, fault = None, f"not JSON ({getattr(e, 'msg', e)})"
        except RecursionError:  # a line of thousands of levels: the parser's own limit (was raised out of the env)
            record, fault = None, _TOO_DEEP
        if fault is not None:
            if number == len(lines):
                break  # a torn last line, without its newline (a writer died mid-append), as skyrl reads it
            raise ConfigError(f"{file}:{number}: {fault}")
        kept = records.get(record["key"])
        if kept is None or (_is_error(kept) and not _is_error(record)):
            records[record["key"]] = record  # a later answer replaces a tool error (the call failed once)
    return records


def _not_json(constant: str) -> Any:
    """NaN, Infinity and -Infinity, which Python's json reads and JavaScript's JSON.parse (skyrl's) does not."""
    raise ValueError(f"{constant} is not JSON")


def _entry_fault(record: Any, keys: str = "checked") -> Optional[str]:
    """Why a parsed cassette line is not an entry, or None: skyrl's rule (``entryFault`` in src/skyrl/cassettes.ts),
    so a store ``skyrl cassettes stats`` calls bad is refused here and one it accepts is read. An object with
    ``key``, ``server`` and ``tool`` strings, a ``params`` object, a ``result`` object and ``duration_ms`` a finite
    number >= 0, whose ``key`` is ``call_key(server, tool, params)``: replay answers a call with the line stored under
    the call's key, so a line keyed otherwise (hand-edited, or copied and its params changed) answered a call it is
    not the result of. With ``keys="trusted"`` (``cassette_keys: trusted``), ``params`` and the key's match are not
    checked (the rule before 2026-12-05)."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {_json_type(record)}"
    for field in ("key", "server", "tool"):
        if not isinstance(record.get(field), str):
            return _field_fault(record, field, "a string")
    checked = keys != "trusted"
    if checked and not isinstance(record.get("params"), dict):
        return _field_fault(record, "params", "an object")
    if not isinstance(record.get("result"), dict):
        return _field_fault(record, "result", "an object")
    ms = record.get("duration_ms")
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
        return _field_fault(record, "duration_ms", "a number of milliseconds ≥ 0")
    if not depth_at_most(record["result"], MAX_RESULT_DEPTH):
        return _TOO_DEEP
    if not checked:
        return None
    if not depth_at_most(record["params"], MAX_RESULT_DEPTH):  # before canonical JSON, which is recursive
        return _PARAMS_TOO_DEEP
    key = call_key(record["server"], record["tool"], record["params"])
    if record["key"] != key:
        return f'key: {_shown(record["key"], 66)} is not the key of its server, tool and params ("{key}")'
    return None


MAX_RESULT_DEPTH = 512  # skyrl's MAX_JSON_DEPTH (src/skyrl/depth.ts): verify refuses a deeper result, stats a line
_TOO_DEEP_REASON = (
    f"nests objects and arrays more than {MAX_RESULT_DEPTH} levels deep: too deep to read "
    "(skyrl's checks and MCPToolEnv walk values recursively)"
)
_TOO_DEEP = f"result: the result {_TOO_DEEP_REASON}"
_PARAMS_TOO_DEEP = f"params: the params object {_TOO_DEEP_REASON}"


def _field_fault(record: dict[str, Any], field: str, expected: str) -> str:
    if field not in record:
        return f"{field}: is missing"
    return f"{field}: expected {expected}, got {_shown(record[field])}"


def _shown(value: Any, limit: int = 60) -> str:
    """A value as a fault names it, as skyrl does: JSON (inf as Infinity, as JavaScript writes it), cut at ``limit``
    characters (a key is shown whole up to 66, a sha256 hex key in its quotes)."""
    if isinstance(value, float) and math.isinf(value):
        shown = "Infinity" if value > 0 else "-Infinity"  # 1e400: String(Infinity)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        shown = canonical_json(value)  # as JSON.stringify writes it: 1.0 as 1, a lone surrogate escaped
    else:  # without spaces, as JSON.stringify writes it
        shown = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) else type(value).__name__


def _is_error(record: dict[str, Any]) -> bool:
    return record["result"].get("isError") is True


# ---------------------------------------------------------------------------------------------
# Live MCP servers


class LiveBackend:
    def __init__(self, inventory: str, allow_side_effects: Any, call_timeout: float, startup_timeout: float):
        self.inventory = inventory
        self.launch = load_launch_specs(inventory)
        self.allow = allow_side_effects
        self.call_timeout = call_timeout
        self.startup_timeout = startup_timeout

    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        launch = self.launch.get(server)
        if launch is None:
            return ToolResult(f"Error: server {server!r} has no launch spec in {self.inventory}", "unavailable")
        if not _encodable(arguments):
            return ToolResult(
                f"Error: {server}/{tool} not run: its arguments hold a string that is not valid Unicode "
                "(a lone surrogate such as \\ud800), which no MCP transport can send",
                "refused",
            )
        try:
            conn = sessions().connection(server, launch, self.startup_timeout)
        except _RecentStartFailure as e:
            return ToolResult(f"Error: MCP server {server!r} could not be started: {e}", "unavailable")
        except Exception as e:  # noqa: BLE001 - any start failure is an answer, never a crash
            return ToolResult(f"Error: MCP server {server!r} could not be started: {_describe(e)}", "unavailable")
        if tool in conn.refused:
            return ToolResult(
                f"Error: {server}/{tool!r} not run: MCP server {server!r} lists it under a name skyrl refuses (it "
                f"{conn.refused[tool]}), so it is left out, as skyrl tools import leaves it out of an inventory",
                "refused",
            )
        if tool not in conn.tools:
            return ToolResult(f"Error: MCP server {server!r} has no tool {tool!r}", "tool_error")
        if conn.tools[tool].get("readOnlyHint") is not True and not self._allowed(server, tool):
            return ToolResult(
                f"Error: {server}/{tool} may have side effects (not annotated readOnlyHint) and the env "
                "config does not allow side effects (allow_side_effects)",
                "refused",
            )
        return sessions().call(conn, tool, arguments, self.call_timeout)

    def _allowed(self, server: str, tool: str) -> bool:
        """Named by ``allow_side_effects`` as ``server.tool``, or as ``tool`` for a name without a dot: a plain
        ``mem.create_entities`` would also name a tool so named on another server (skyrl verify reads it alike)."""
        if self.allow is True:
            return True
        if not isinstance(self.allow, (list, tuple)):
            return False
        return f"{server}.{tool}" in self.allow or ("." not in tool and tool in self.allow)


def _encodable(arguments: dict[str, Any]) -> bool:
    """The arguments' strings (keys too) encode as UTF-8. A lone surrogate (JSON text "\\ud800" reads as one)
    does not: the stdio writer fails on it and the session, shared by every episode of the process, closes."""
    try:
        json.dumps(arguments, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_launch_specs(path: str) -> dict[str, dict[str, Any]]:
    """server name -> launch spec, from an inventory file (servers without one are left out).

    The server names are held to skyrl's rule (``name_fault``; duplicates refused too), so an inventory
    skyrl refuses to load is refused here as well, and a malformed entry is a ``ConfigError`` naming its path,
    never a KeyError or AttributeError. The tools are not read (live mode asks the server for them).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))  # a BOM dropped, as skyrl reads it
    except OSError as e:
        raise ConfigError(f"inventory: cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"inventory: {path} is not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("servers"), list):
        raise ConfigError(f'inventory: {path}: must be a JSON object with a "servers" array')
    specs: dict[str, dict[str, Any]] = {}
    names: set[str] = set()
    for i, server in enumerate(data["servers"]):
        if not isinstance(server, dict):
            raise ConfigError(f"inventory: {path}: servers[{i}]: must be an object")
        name = server.get("name")
        fault = name_fault(name, "server")
        if fault is None and name in names:
            fault = f'duplicate server name "{name}"'
        if fault is not None:
            raise ConfigError(f"inventory: {path}: servers[{i}].name: {fault}")
        names.add(name)
        launch = server.get("launch")
        if launch is None:
            continue
        transport = launch.get("transport") if isinstance(launch, dict) else None
        if not isinstance(launch, dict) or (transport, bool(launch.get("command")), bool(launch.get("url"))) not in (
            ("stdio", True, False),
            ("http", False, True),
        ):
            raise ConfigError(
                f"inventory: {path}: servers[{i}].launch: needs transport stdio with command, or http with url"
            )
        specs[name] = launch
    return specs


# What JavaScript's String.prototype.trim removes (skyrl's rule for a trimmed name): Python's str.strip differs.
_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_CONTROL_NAMES = {
    0x00: "a NUL",
    0x09: "a tab",
    0x0A: "a line feed",
    0x0D: "a carriage return",
    0x85: "a next-line character",
    0x2028: "a line separator",
    0x2029: "a paragraph separator",
}


def name_fault(name: Any, kind: str) -> Optional[str]:
    """Why an inventory's server name (``kind`` "server") or the name of a tool a server lists ("tool") cannot be
    used, or None: skyrl's rule (``nameFault`` in src/domain/inventory.ts, with ``ServerName``/``ToolName``'s
    non-empty trimmed string). A name is a non-empty trimmed string without control characters (C0, DEL, C1),
    line or paragraph separators, commas, or lone surrogates: it is written as one line, it is a field of the
    cassette key (``server \\n tool \\n params``, hashed as UTF-8), and ``allow_side_effects`` given as a string
    (``"fmp.get_quote,fs.write_file"``) is split at commas, as skyrl's ``--servers`` and ``--allow-side-effects``
    are, so no such list could name a server or tool whose name held one. Positions count UTF-16 code units, as
    skyrl's."""
    if not isinstance(name, str) or name.strip(_JS_WHITESPACE) == "":
        return f"must be a non-empty string, got {name!r}"
    if name.strip(_JS_WHITESPACE) != name:
        return f"has leading or trailing whitespace: {name!r}"
    at = 0
    for ch in name:
        c = ord(ch)
        if c < 0x20 or 0x7F <= c <= 0x9F or c in (0x2028, 0x2029):
            what = _CONTROL_NAMES.get(c, "a control character")
            return (
                f"holds {what} (U+{c:04X} at character {at}): a {kind} name is written as one line (the prompt's "
                "tool listing, tools list, cassettes stats) and is a field of the cassette key "
                "(server \\n tool \\n params)"
            )
        if ch == ",":
            if kind == "server":
                return (
                    f"holds a comma (at character {at}): --servers and --allow-side-effects take comma-separated "
                    "names, so no list could name this server; name it otherwise in the inventory"
                )
            return (
                f"holds a comma (at character {at}): --allow-side-effects takes comma-separated names, so no list "
                "could name this tool (MCP asks tool names to hold none)"
            )
        if 0xD800 <= c <= 0xDFFF:
            return (
                f"holds a lone surrogate (U+{c:04X} at character {at}): no Unicode text, so no UTF-8 for the "
                "cassette key"
            )
        at += 2 if c > 0xFFFF else 1
    return None


def _describe(e: BaseException) -> str:
    """One line for an exception, looking inside exception groups (anyio task groups)."""
    inner = getattr(e, "exceptions", None)  # an exception group (anyio task groups)
    if isinstance(inner, tuple) and inner:
        return "; ".join(_describe(x) for x in inner)
    text = str(e) or type(e).__name__
    return text if type(e).__name__ in text else f"{type(e).__name__}: {text}"


@dataclass
class _Conn:
    session: Any
    tools: dict[str, dict[str, Any]]  # tool name -> annotations
    stop: asyncio.Event
    task: asyncio.Task
    broken: bool = False  # a call failed at the protocol level: start a new session next time
    refused: dict[str, str] = field(default_factory=dict)  # tool name -> why skyrl refuses it (left out of tools)


# Seconds a server that failed to start is not started again: calls to it in that time get the failure at once.
# Without it each call waited for its own start (up to startup_timeout, 30 s by default), one after another
# behind the server's lock: a turn of 32 calls to a server that hangs on initialize held the worker 16 minutes.
RESTART_AFTER = 60.0
# Seconds a server whose call timed out has to answer a ping (at most call_timeout); else its session is restarted.
PING_TIMEOUT = 5.0


class _RecentStartFailure(Exception):
    """The server failed to start less than ``RESTART_AFTER`` seconds ago (the message says how)."""


class _Sessions:
    """MCP sessions of this process, one per server, on one background event loop thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="skyrl-mcp-sessions", daemon=True).start()
        self.conns: dict[str, _Conn] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.failed: dict[str, tuple[float, str]] = {}  # key -> when a start failed (monotonic), and why
        self.guard = threading.Lock()
        self.starts = 0  # how many servers this process started (tests check the reuse)

    def connection(self, name: str, launch: dict[str, Any], startup_timeout: float) -> _Conn:
        key = name + "\n" + canonical_json(launch)
        with self.guard:
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            conn = self.conns.get(key)
            if conn is None or conn.broken or conn.task.done():
                self.conns.pop(key, None)
                failed = self.failed.get(key)
                if failed is not None and time.monotonic() - failed[0] < RESTART_AFTER:
                    raise _RecentStartFailure(
                        f"{failed[1]} ({time.monotonic() - failed[0]:.0f} s ago; a server that failed to start is "
                        f"started again {RESTART_AFTER:g} s after the failure)"
                    )
                self.starts += 1
                future = asyncio.run_coroutine_threadsafe(_open(launch, startup_timeout), self.loop)
                try:
                    conn = self.conns[key] = future.result(startup_timeout + 10)
                except Exception as e:
                    self.failed[key] = (time.monotonic(), _describe(e))
                    raise
                self.failed.pop(key, None)
                for tool, fault in conn.refused.items():
                    _log.warning(
                        "live: MCP server %r lists a tool named %r, left out (calls to it are refused): its name %s",
                        name,
                        tool,
                        fault,
                    )
            return conn

    def call(self, conn: _Conn, tool: str, arguments: dict[str, Any], timeout: float) -> ToolResult:
        coro = conn.session.call_tool(tool, arguments)
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop)
        try:
            result = future.result(timeout + 10)
        except _TIMEOUTS:
            # The server may be stuck on it (a single-threaded server in a synchronous tool that never returns):
            # keeping its session made every later call of every episode of the process wait out the timeout. A
            # server that does not answer a ping either is stopped, and the next call starts a fresh one; one that
            # does (a long operation it runs asynchronously) keeps its session and the calls in flight on it.
            future.cancel()
            if not self._answers_ping(conn, min(timeout, PING_TIMEOUT)):
                conn.broken = True
                self.loop.call_soon_threadsafe(conn.stop.set)
            return ToolResult(f"Error: {tool} did not answer within {timeout:g} s", "timeout")
        except Exception as e:  # noqa: BLE001 - a broken session is restarted on the next call
            conn.broken = True
            self.loop.call_soon_threadsafe(conn.stop.set)
            return ToolResult(f"Error: {tool} failed: {_describe(e)}", "tool_error")
        data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return ToolResult(result_text(data), "tool_error" if data.get("isError") else "ok")

    def _answers_ping(self, conn: _Conn, wait: float) -> bool:
        """The server answers an MCP ping within ``wait`` seconds (an error reply, from a server without ping, is
        an answer too; a closed connection is not)."""
        from mcp.shared.exceptions import MCPError
        from mcp.types import CONNECTION_CLOSED

        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(conn.session.send_ping(), wait), self.loop)
        try:
            future.result(wait + 10)
        except _TIMEOUTS:
            future.cancel()
            return False
        except MCPError as e:
            return e.code != CONNECTION_CLOSED
        except Exception:  # noqa: BLE001 - no answer
            return False
        return True

    def close(self) -> None:
        for conn in list(self.conns.values()):
            self.loop.call_soon_threadsafe(conn.stop.set)
        tasks = [c.task for c in self.conns.values()]
        if tasks:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(asyncio.wait(tasks, timeout=10), self.loop).result(15)
        self.conns.clear()


async def _open(launch: dict[str, Any], startup_timeout: float) -> _Conn:
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(_serve(launch, ready, stop))
    try:
        session, (tools, refused) = await asyncio.wait_for(asyncio.shield(ready), startup_timeout)
    except _TIMEOUTS:
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        task.cancel()
        raise TimeoutError(f"no answer to initialize within {startup_timeout:g} s") from None
    return _Conn(session, tools, stop, task, refused=refused)


async def _serve(launch: dict[str, Any], ready: asyncio.Future, stop: asyncio.Event) -> None:
    from mcp import ClientSession

    try:
        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(_transport(launch))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            tools = await _list_tools(session)
            ready.set_result((session, tools))
            await stop.wait()
    except BaseException as e:
        if not ready.done():
            ready.set_exception(RuntimeError(_describe(e)))
        if not isinstance(e, Exception):
            raise


async def _list_tools(session: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The server's tools (name -> annotations), and the tools it lists under a name skyrl refuses (name -> why:
    ``name_fault``), which are left out as ``skyrl tools import`` leaves them out of an inventory."""
    from mcp import types

    tools: dict[str, dict[str, Any]] = {}
    refused: dict[str, str] = {}
    cursor = None
    while True:
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        for t in page.tools:
            fault = name_fault(t.name, "tool")
            if fault is not None:
                refused[t.name] = fault
                continue
            if t.name in tools and tools[t.name].get("readOnlyHint") is not True:
                continue  # a tool listed twice is read-only only when every listing says so, as skyrl verify reads it
            tools[t.name] = t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else {}
        cursor = page.next_cursor
        if not cursor:
            return tools, refused


_REFERENCE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(arg: str) -> str:
    """An argument or URL with ``${VAR}`` / ``${env:VAR}`` replaced from the environment (as skyrl starts servers)."""

    def value(m: re.Match) -> str:
        if not os.environ.get(m.group(1)):
            raise ValueError(f"environment variable ${m.group(1)} not set (needed by the server)")
        return os.environ[m.group(1)]

    return _REFERENCE.sub(value, arg)


def _named(names: Any) -> dict[str, str]:
    """The values of the variables a launch spec names (stdio ``env``, HTTP ``headers_env``), as skyrl reads them
    when it starts the server: one unset or empty fails the start, naming each (the server would run without it:
    server-memory without MEMORY_FILE_PATH writes the graph every run shares)."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        unset = list(dict.fromkeys(missing))
        shown = ", ".join(f"${n}" for n in unset)
        raise ValueError(f"environment variable{'s' if len(unset) > 1 else ''} {shown} not set (needed by the server)")
    return {n: os.environ[n] for n in names}


def _transport(launch: dict[str, Any]) -> Any:
    if launch["transport"] == "stdio":
        from mcp import StdioServerParameters, stdio_client

        env = _named(launch.get("env") or [])
        args = [_expand(a) for a in launch.get("args") or []]
        params = StdioServerParameters(command=launch["command"], args=args, env=env, cwd=launch.get("cwd"))
        return stdio_client(params)
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    headers_env = launch.get("headers_env") or {}
    values = _named(list(headers_env.values()))
    headers = {h: values[var] for h, var in headers_env.items()}
    return streamable_http_client(_expand(launch["url"]), http_client=create_mcp_http_client(headers=headers))


_SESSIONS: Optional[_Sessions] = None
_SESSIONS_GUARD = threading.Lock()


def sessions() -> _Sessions:
    """This process's sessions (a forked worker gets its own)."""
    global _SESSIONS
    with _SESSIONS_GUARD:
        if _SESSIONS is None or _SESSIONS.pid != os.getpid():
            _SESSIONS = _Sessions()
        return _SESSIONS


def close_sessions() -> None:
    """Stop every MCP server this process started (also run at exit)."""
    global _SESSIONS
    with _SESSIONS_GUARD:
        current, _SESSIONS = _SESSIONS, None
    if current is not None and current.pid == os.getpid():
        current.close()


atexit.register(close_sessions)


def make_backend(
    mode: str,
    cassettes: Optional[str],
    inventory: Optional[str],
    allow_side_effects: Any,
    call_timeout: float,
    startup_timeout: float,
    cassette_keys: str = "checked",
) -> ToolBackend:
    if mode == "cassette":
        return CassetteBackend(cassettes, cassette_keys)
    if mode == "live":
        if not inventory:
            raise ConfigError("tools: live needs inventory (an inventory file with launch specs)")
        return LiveBackend(inventory, allow_side_effects, call_timeout, startup_timeout)
    raise ConfigError(f"tools: expected 'cassette' or 'live', got {mode!r}")
