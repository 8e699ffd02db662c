"""``MCPToolEnv``: a SkyRL text environment that scores tool calls against a skyrl row's plan.

SkyRL builds it as ``skyrl_gym.make("MCPToolEnv", env_config=..., extras=row_minus_prompt_and_env_class)``
and calls ``init(prompt)``, ``step(assistant_text)`` until ``done``, then ``close()``. ``step`` answers
with the new messages only (one ``<tool_response>`` user message per call); the reward comes with the
step that ends the episode (0 before), and every step's metadata carries the score's parts.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Optional

from .calls import SYNTAX, Malformed, Parsed, parse_calls, strip_thinking, tool_response
from .canonical import canonical_json
from .plan import Plan, json_object, plan_from_extras, positive_int, shown, with_plan_limits
from .reward import (
    OFF_PLAN_PENALTY,
    STRICT_MIN_PRECISION,
    CallRecord,
    Grounding,
    Trajectory,
    limit_breach,
    planned_params,
    score,
)
from .tools import ConfigError, ToolBackend, ToolResult, make_backend

try:  # the real base class when SkyRL is installed
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput
except ImportError:  # a stand-in with the same attributes and method signatures (skyrl-gym is not on PyPI)
    from typing import TypedDict

    class BaseTextEnvStepOutput(TypedDict):  # type: ignore[no-redef]
        observations: list
        reward: float
        done: bool
        metadata: dict
        postprocessed_action: Optional[str]

    class BaseTextEnv:  # type: ignore[no-redef]
        def __init__(self) -> None:
            self.turns = 0
            self.max_turns = 1
            self.tool_groups: list = []
            self.tool_to_toolgroup: dict = {}

        def init(self, prompt: list) -> tuple[list, dict]:
            return prompt, {}

        def step(self, action: str) -> BaseTextEnvStepOutput:
            raise NotImplementedError

        def close(self) -> None:
            pass

        def get_metrics(self) -> dict:
            return {}


ENV_ID = "MCPToolEnv"
CONFIG_VARIABLE = "SKYRL_MCP_ENV_CONFIG"
ENTRY_POINT = "skyrl_mcp_env.env:MCPToolEnv"


@dataclass(frozen=True)
class Settings:
    """The env's section of the SkyRL config (``skyrl_gym.MCPToolEnv``); every key optional."""

    tools: str = "cassette"  # "cassette" | "live"
    cassettes: Optional[str] = None  # directory holding cassettes.jsonl, or the file
    cassette_keys: str = "checked"  # "checked": a line's key must be that of its server, tool and params; "trusted"
    inventory: Optional[str] = None  # live: inventory file with launch specs
    allow_side_effects: Any = False  # live: False | True | list of tool names ("tool" or "server.tool")
    call_timeout: float = 30.0  # live: seconds per call
    startup_timeout: float = 30.0  # live: seconds for a server to start and answer initialize
    strict: bool = False  # reward 0 unless every plan step matched (and, with strict_finish, the episode finished)
    strict_finish: bool = True  # strict also needs a final answer within the limits and max_turns
    strict_min_precision: float = STRICT_MIN_PRECISION  # strict also needs matched steps / calls >= this (0: off)
    dependencies_across_turns: bool = True  # a dependent step matches only in a later turn than its depends_on
    ground_derived: Any = "auto"  # a derived param matches only with a value an earlier ok result holds: true, false,
    # or "auto": on the steps skyrl verify found the derived values of in the results (verification.steps[]
    # .derived_values_found; on a record without those, the row's verification.derived_values_found)
    limits_from_plan: bool = True  # a row without limits gets the plan's own (distinct tools and servers)
    pattern_guard: bool = True  # schema regexes run on the policy's strings without backtracking (reward._is_valid)
    off_plan_penalty: float = OFF_PLAN_PENALTY  # what calling every off-plan tool offered costs (reward.off_plan_tools)
    judge: Optional[Any] = None  # callable(*, final_answer, rubric, extras) -> [0, 1], or "module:function"
    judge_errors: str = "zero"  # a judge that raises or gives no finite number: "zero" scores 0, "rule" the rule reward
    max_response_chars: int = 8000  # longer tool results are cut
    max_calls_per_turn: int = 32  # calls of one turn beyond this are not run (invalid calls)

    @staticmethod
    def read(env_config: Any) -> "Settings":
        """From a dict, an omegaconf DictConfig, a dataclass or any object with attributes, over the
        JSON object in the environment variable SKYRL_MCP_ENV_CONFIG (for SkyRL's typed config, which
        refuses keys it does not declare under ``environment.skyrl_gym``)."""
        values = {}
        for source, config in ((CONFIG_VARIABLE, _config_from_environment()), ("MCPToolEnv config", env_config)):
            _check_keys(source, config)
            given = {k: v for k in Settings.__dataclass_fields__ if (v := _setting(config, k)) is not None}
            # Each source checked on its own: a wrong value in the variable is an error even when the config
            # section gives the key too (it wins, but the variable is still wrong).
            if "allow_side_effects" in given:
                given["allow_side_effects"] = _allowed_tools(given["allow_side_effects"], source)
            for key, value in given.items():
                _check_type(key, value, source)
            values.update(given)
        return Settings(**values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What each typed setting must be: a wrong type fails at construction, never mid-episode, and a string
# "false" (truthy) never turns strict mode on.
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "strict": (lambda v: isinstance(v, bool), "true or false"),
    "strict_finish": (lambda v: isinstance(v, bool), "true or false"),
    "strict_min_precision": (lambda v: _is_number(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "dependencies_across_turns": (lambda v: isinstance(v, bool), "true or false"),
    "ground_derived": (lambda v: isinstance(v, bool) or v == "auto", 'true, false or "auto"'),
    "limits_from_plan": (lambda v: isinstance(v, bool), "true or false"),
    "pattern_guard": (lambda v: isinstance(v, bool), "true or false"),
    "off_plan_penalty": (lambda v: _is_number(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "max_response_chars": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive integer"),
    "max_calls_per_turn": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive integer"),
    "call_timeout": (lambda v: _is_number(v) and v > 0, "a positive number of seconds"),
    "startup_timeout": (lambda v: _is_number(v) and v > 0, "a positive number of seconds"),
    "judge_errors": (lambda v: v in ("zero", "rule"), '"zero" or "rule"'),
    "cassettes": (lambda v: isinstance(v, (str, os.PathLike)), "a path"),
    "cassette_keys": (lambda v: v in ("checked", "trusted"), '"checked" or "trusted"'),
    "inventory": (lambda v: isinstance(v, (str, os.PathLike)), "a path"),
}


def _check_type(key: str, value: Any, source: str) -> None:
    check = _TYPES.get(key)
    if check is not None and not check[0](value):
        raise ConfigError(f"{source}: {key}: expected {check[1]}, got {value!r}")


ALLOWED_TOOLS_FORMS = 'true, false, "all", a comma-separated string of tool names or a list of tool names'


def _allowed_tools(value: Any, source: str) -> Any:
    """True, False, or a list of tool names ("tool" or "server.tool"); "all" and "a,b" strings as on skyrl's
    command line. A list is any sequence of strings (omegaconf's ListConfig too); anything else (a number,
    an object, a list holding a non-string) is a ConfigError, never a name made up by ``str()``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return True if value.strip() == "all" else [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        if all(isinstance(t, str) for t in value):
            return [t.strip() for t in value if t.strip()]
    raise ConfigError(f"{source}: allow_side_effects: expected {ALLOWED_TOOLS_FORMS}, got {shown(value)}")


def _config_from_environment() -> Optional[dict]:
    text = os.environ.get(CONFIG_VARIABLE, "").strip()
    return json_object(text, CONFIG_VARIABLE, ConfigError) if text else None


def _check_keys(source: str, config: Any) -> None:
    known = Settings.__dataclass_fields__
    if config is not None and hasattr(config, "keys"):
        unknown = sorted(str(k) for k in config.keys() if k not in known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(known)})")


def _setting(config: Any, key: str) -> Any:
    if config is None:
        return None
    if hasattr(config, "get"):
        return config.get(key, None)
    return getattr(config, key, None)


class MCPToolEnv(BaseTextEnv):
    def __init__(self, env_config: Any = None, extras: Optional[Mapping[str, Any]] = None):
        super().__init__()
        self.extras = extras or {}
        self.settings = Settings.read(env_config)
        self.plan: Plan = plan_from_extras(self.extras)
        if self.settings.limits_from_plan:
            self.plan = with_plan_limits(self.plan)
        self.max_turns = _max_turns(self.plan, self.extras)
        self.judge = _load_judge(self.settings.judge)
        s = self.settings
        self.backend: ToolBackend = make_backend(
            s.tools, s.cassettes, s.inventory, s.allow_side_effects, s.call_timeout, s.startup_timeout, s.cassette_keys
        )
        self._new_episode()

    def _new_episode(self) -> None:
        """Nothing of an earlier episode: SkyRL makes an env per trajectory, but an env whose ``init`` is called again
        (reused) began its second episode ended, at turn 2 with the first one's calls."""
        self.turns = 0
        self.calls: list[CallRecord] = []
        self.statuses: Counter = Counter()
        self.final_answer: Optional[str] = None
        self.ended_by: Optional[str] = None
        self.parts: dict[str, Any] = {}

    def init(self, prompt: list) -> tuple[list, dict]:
        self._new_episode()
        return prompt, {"task_id": self.plan.task_id, "max_turns": self.max_turns, "tools": self.settings.tools}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        if self.ended_by is not None:
            return self._output([], 0.0, done=True)
        self.turns += 1
        parsed = parse_calls(action)
        if not parsed:
            self.final_answer, self.ended_by = strip_thinking(action).strip(), "final_answer"
            return self._finish([])
        observations = []
        for n, item in enumerate(parsed):
            observations.append(tool_response(self._run(item) if n < self.settings.max_calls_per_turn else self._refuse()))
            if self.ended_by is not None:
                break
        if self.ended_by is None and self.turns >= self.max_turns:
            self.ended_by = "max_turns"
        if self.ended_by is not None:
            return self._finish(observations)
        self.parts = self._score()
        return self._output(observations, 0.0, done=False)

    def close(self) -> None:
        """Nothing to release: live MCP sessions belong to the worker process and serve later episodes."""

    def get_metrics(self) -> dict:
        numbers = {
            k: float(v) for k, v in self.parts.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        return {**numbers, "cassette_misses": float(self.statuses["miss"])}

    # -----------------------------------------------------------------------------------------

    def _run(self, item: Parsed) -> str:
        """Record one call, run it, and return the text the policy sees."""
        if isinstance(item, Malformed):
            self.calls.append(CallRecord(self.turns, error="malformed"))
            return f"Error: malformed tool call: {item.error}. Write {SYNTAX}"
        target = self.plan.tools.get(item.name)
        if target is None:
            self.calls.append(CallRecord(self.turns, item.name, item.arguments, error="unknown_tool"))
            return f"Error: unknown tool {_cut(repr(item.name), NAME_SHOWN)}: {self._offered()}"
        server, tool = target
        self.calls.append(CallRecord(self.turns, item.name, item.arguments, server))
        breach = limit_breach(self.plan, self.calls)
        if breach is not None:
            self.ended_by = breach
            return f"Error: {breach.split(':')[1]} exceeded ({self._limit_text()}); the episode ends"
        result = self._call(item.name, server, tool, item.arguments)
        self.statuses[result.status] += 1
        text = _well_formed(result.text)
        if result.status == "ok":  # the evidence ``ground_derived`` reads: the tool's text the policy saw, not the
            # env's note on a cut (its words and count grounded a derived value on any long result)
            self.calls[-1] = replace(self.calls[-1], result=text[: self.settings.max_response_chars])
        return _cut(text, self.settings.max_response_chars)

    def _call(self, name: str, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """The backend's result. A cassette miss for a call the scorer reads as a plan step's call (a schema
        default spelled out or left out where the plan did the other) replays that step's recording: the
        call ``skyrl verify`` ran, under the key of the plan's params. Else the policy saw an error where the
        scorer counted the right call, and with ``ground_derived`` the steps depending on it lost their credit."""
        result = self.backend.call(server, tool, arguments)
        if result.status != "miss":
            return result
        given = canonical_json(arguments)
        for params in planned_params(self.plan, name, arguments):
            if canonical_json(params) != given:
                replayed = self.backend.call(server, tool, params)
                if replayed.status != "miss":
                    return replayed
        return result

    def _refuse(self) -> str:
        """A call past the turn's limit: recorded as invalid, never run (a turn of hundreds of calls, each
        up to ``call_timeout`` on a live server, would hold the worker)."""
        self.calls.append(CallRecord(self.turns, error="over_turn_limit"))
        return f"Error: not run: at most {self.settings.max_calls_per_turn} tool calls per turn"

    def _finish(self, observations: list) -> BaseTextEnvStepOutput:
        self.parts = self._score()
        reward = self.parts["reward"]
        if self.judge is not None and reward > 0:
            reward = self._judged(reward)
        self.parts["reward"] = reward
        return self._output(observations, reward, done=True)

    def _score(self) -> dict[str, Any]:
        trajectory = Trajectory(tuple(self.calls), self.final_answer, self.ended_by)
        s = self.settings
        across, guard = s.dependencies_across_turns, s.pattern_guard
        ground = self.grounding()
        parts = score(
            self.plan, trajectory, s.strict, across, ground, s.strict_finish, guard, s.off_plan_penalty,
            s.strict_min_precision,
        )
        return {
            **parts,
            "ground_derived": ground is True or bool(parts["grounded_steps"]),
            "ended_by": self.ended_by,
            "turns": self.turns,
            "max_turns": self.max_turns,
            "tool_results": dict(self.statuses),
            "cassette_misses": self.statuses["miss"],
        }

    def grounding(self) -> Grounding:
        """Where derived values must be grounded on this row (``grounding_of``)."""
        return grounding_of(self.plan, self.settings.ground_derived)

    def _judged(self, reward: float) -> float:
        """The reward times the judge's score of the final answer. An episode without one (empty, or ended at
        max_turns or on a limit) scores 0 without a call: else skipping the answer would skip the judge. So does
        one whose answer the judge fails on (``judge_errors: "zero"``): the answer is the policy's, and keeping
        the rule reward paid for an answer too long for the judge's context, or one telling it not to score."""
        if not self.final_answer:
            self.parts["judge"] = 0.0
            return 0.0
        try:
            verdict = _verdict(self.judge(final_answer=self.final_answer, rubric=self.plan.rubric, extras=self.extras))
        except Exception as e:  # noqa: BLE001 - a failing judge is recorded, and scores as judge_errors says
            self.parts["judge_error"] = f"{type(e).__name__}: {e}"
            return reward if self.settings.judge_errors == "rule" else 0.0
        self.parts["judge"] = min(1.0, max(0.0, verdict))
        return reward * self.parts["judge"]

    def _output(self, observations: list, reward: float, done: bool) -> BaseTextEnvStepOutput:
        return BaseTextEnvStepOutput(
            observations=observations if not done else [],
            reward=reward,
            done=done,
            metadata=dict(self.parts),
            postprocessed_action=None,
        )

    def _offered(self) -> str:
        if self.plan.tools_listed:
            return "the tools are " + ", ".join(sorted(self.plan.tools))
        return "use a tool listed in the system message"

    def _limit_text(self) -> str:
        return f"at most {self.plan.max_tools} distinct tools and {self.plan.max_servers} servers per episode"


def grounding_of(plan: Plan, setting: Any) -> Grounding:
    """Where ``ground_derived`` (``setting``: true, false or "auto") grounds derived values on ``plan``'s row: every
    step (True), none (False), or, under "auto", the steps whose own derived values ``skyrl verify`` found in their
    dependencies' results (``Plan.derived_found_steps``: copied values, ids, tickers, paths), or every step on a row
    whose record says so of the whole row only (written before the steps' field: ``derived_values_found``). There a
    value the policy invents is no value the task could have: without grounding a search then
    ``get_quote("PALANTIR")`` scored 1.0. A step with a computed value (a sum, a summary), or a row never verified,
    is not grounded: the right call would lose its step. Per step since 2026-12-03: on a row with one computed value
    and copied ones, the row's field (false) grounded nothing, so inventing the copied ones (``""`` too) scored 1.0."""
    if setting is True or setting is False:
        return setting
    if plan.derived_found_steps is not None:
        return plan.derived_found_steps
    return plan.derived_values_found


def _max_turns(plan: Plan, extras: Mapping[str, Any]) -> int:
    """The smaller of the row's ``ground_truth.max_turns`` and the trainer's ``extras["max_turns"]`` (each an
    integer >= 1 when given, as ``positive_int`` reads it: 0 is an error, never "not given")."""
    where = f"row {plan.task_id or '(no task_id)'}: extras max_turns (the trainer's generator.max_turns)"
    trainer = positive_int(extras.get("max_turns"), where)
    limits = [v for v in (plan.max_turns, trainer) if v is not None]
    return min(limits) if limits else max(len(plan.steps) + 2, 4)


NAME_SHOWN = 200  # characters of an unknown tool's name an observation repeats (the policy wrote it: unbounded)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _well_formed(text: str) -> str:
    """``text`` with each lone surrogate (a cassette's ``"\\ud800"`` reads as one; Python joins real pairs) as
    U+FFFD, as a UTF-8 writer replaces it: the observation is tokenized and logged by the trainer, and a string
    that has no UTF-8 fails there, outside the env."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters cut]"


JUDGE_KEYWORDS = ("final_answer", "rubric", "extras")


def _load_judge(judge: Any) -> Optional[Callable[..., float]]:
    """The configured judge, checked once: it must take the keywords the env passes (or ``**kwargs``)."""
    if judge is None:
        return None
    if callable(judge):
        _check_judge(judge, getattr(judge, "__qualname__", repr(judge)))
        return judge
    if not isinstance(judge, str):
        raise ConfigError(f"judge: expected a callable or a 'module:function' string, got {shown(judge)}")
    module, _, name = judge.partition(":")
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError, TypeError) as e:  # TypeError: a relative name (".x")
        raise ConfigError(f"MCPToolEnv config: judge {judge!r} is not an importable 'module:function' ({e})") from None
    if not callable(function):
        raise ConfigError(f"MCPToolEnv config: judge {judge!r} is a {type(function).__name__}, not a function")
    _check_judge(function, str(judge))
    return function


def _check_judge(judge: Callable[..., Any], name: str) -> None:
    """A judge that cannot be called as ``judge(final_answer=, rubric=, extras=)`` would fail every episode
    (each recorded as judge_error): refuse it when the env is built. A callable without a signature
    (some builtins) is not checked."""
    try:
        signature = inspect.signature(judge)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**{k: None for k in JUDGE_KEYWORDS})
    except TypeError as e:
        expected = ", ".join(f"{k}=" for k in JUDGE_KEYWORDS)
        raise ConfigError(
            f"MCPToolEnv config: judge {name}{signature} cannot be called as judge({expected}) ({e}); "
            f"it must accept the keyword parameters final_answer, rubric and extras (or **kwargs)"
        ) from None


def _verdict(value: Any) -> float:
    """The judge's score: a finite real number (clamped to [0, 1] by the caller); NaN, infinities and
    anything else (a string, None) are errors, never silently a score."""
    if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"the judge returned {value!r}, not a finite number in [0, 1]")
    return float(value)


def register() -> bool:
    """Register ``MCPToolEnv`` with skyrl_gym (once; False when it was already registered)."""
    from skyrl_gym.envs import registration

    if ENV_ID in registration.registry:
        return False
    registration.register(id=ENV_ID, entry_point=ENTRY_POINT)
    return True
