"""A linear-time ``re.search`` for the JSON Schema regexes (``pattern``, ``patternProperties``) the scorer runs
on the policy's strings.

Python's ``re`` backtracks: a schema's ``^(a+)+$`` takes minutes on 30 ``a`` and a ``!``, and even ``\\d+$``
takes seconds on 20,000 digits and an ``x`` (``re.search`` tries every start). The policy writes the string, so
one call could stall a training worker. ``re`` has no timeout, a thread running it cannot be stopped, a
subprocess per check costs milliseconds, and a wall-clock bound would make the reward depend on the machine.
So the scorer matches with an automaton instead: the pattern, as Python's own parser reads it, becomes a
Thompson NFA whose state sets are walked once over the string (a lazy DFA: each set and each transition is
built once and cached), so the work grows with the string's length times the pattern's size, never
exponentially. Each single-character test (a literal, a class, ``.``, ``\\w``...) is compiled with ``re`` and
the flags in force there, so case folding and Unicode classes are ``re``'s own: the answer is ``re.search``'s.

Patterns the automaton cannot run (back-references, lookaround, atomic groups, possessive repeats, or more
than ``MAX_STATES`` states once counted repeats are spelled out) get ``None`` from ``automaton``; and a walk
whose state sets sum past ``BUDGET`` (a function of the pattern and the string only, so the same on every
machine, cache or not) raises ``Undecided``. The caller decides what those mean (reward.py: not valid).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import sys
import threading
from typing import Any, Callable, Iterator, Optional

try:  # Python 3.11+
    from re import _constants as _c
    from re import _parser
except ImportError:  # Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

MAX_STATES = 10_000  # NFA states a pattern may take (``(?:a{100}){100}`` takes 10,000)
BUDGET = 1_000_000  # NFA states the closures visit, summed over the positions of a string (and by ``Guard`` over
# all the strings of one validation): about half a second of Python at worst, with nothing cached
_CACHE_ENTRIES = 20_000  # cached DFA states and transitions per pattern (then cleared: only speed depends on it)
_CACHE_INTS = 250_000  # NFA states held by those DFA states, summed (about 16 MB; ``[ab]*a[ab]{600}c`` held 710,000
# after one 1,500-character string, and 3,000,000 (185 MB) after 60, when only entries were counted)
_ANSWERS = 256  # strings whose answer each pattern remembers

_CHAR, _SPLIT, _ASSERT, _MATCH = range(4)
_CATEGORY_TEXT = {
    _c.CATEGORY_DIGIT: r"\d", _c.CATEGORY_NOT_DIGIT: r"\D", _c.CATEGORY_SPACE: r"\s",
    _c.CATEGORY_NOT_SPACE: r"\S", _c.CATEGORY_WORD: r"\w", _c.CATEGORY_NOT_WORD: r"\W",
}
_CHAR_FLAGS = re.IGNORECASE | re.DOTALL | re.ASCII | re.UNICODE
_TYPE_FLAGS = re.ASCII | re.LOCALE | re.UNICODE


class Undecided(Exception):
    """Whether the pattern matches is left undecided: the walk would pass ``BUDGET``, or no automaton runs it."""


class _Unsupported(Exception):
    pass


def _escaped(code: int) -> str:
    return "\\U%08x" % code


def _item_text(op: object, av: object) -> str:
    """One member of a character class, as pattern text."""
    if op is _c.LITERAL:
        return _escaped(av)  # type: ignore[arg-type]
    if op is _c.RANGE:
        return _escaped(av[0]) + "-" + _escaped(av[1])  # type: ignore[index]
    if op is _c.CATEGORY and av in _CATEGORY_TEXT:
        return _CATEGORY_TEXT[av]
    raise _Unsupported(op)


def _char_text(op: object, av: object) -> Optional[str]:
    """A node that matches one character, as pattern text; None for any other node."""
    if op is _c.LITERAL:
        return _escaped(av)  # type: ignore[arg-type]
    if op is _c.NOT_LITERAL:
        return "[^" + _escaped(av) + "]"  # type: ignore[arg-type]
    if op is _c.ANY:
        return "."
    if op is _c.IN:
        negate = bool(av) and av[0][0] is _c.NEGATE  # type: ignore[index]
        items = av[1:] if negate else av  # type: ignore[index]
        members = "".join(_item_text(o, a) for o, a in items)  # type: ignore[union-attr]
        return "[" + ("^" if negate else "") + members + "]"
    return None


class _Predicate:
    """A one-character test, compiled by ``re`` with the flags in force where it stands (answers cached)."""

    def __init__(self, text: str, flags: int):
        if flags & re.ASCII:
            flags &= ~re.UNICODE
        self._match: Callable[[str], object] = re.compile(text, flags & _CHAR_FLAGS).fullmatch
        self._seen: dict[str, bool] = {}

    def __call__(self, ch: str) -> bool:
        hit = self._seen.get(ch)
        if hit is None:
            if len(self._seen) > 4096:
                self._seen.clear()
            hit = self._seen[ch] = self._match(ch) is not None
        return hit


def _combined(flags: int, add: int, remove: int) -> int:
    """The flags inside a ``(?flags:...)`` group. A group that sets ``a``, ``u`` or ``L`` is not run: ``re``
    reads a class at the pattern's start with the outer flags in its first-character filter (``(?a:\\W)`` finds
    no ``é``), and JavaScript has no such group."""
    if add & _TYPE_FLAGS:
        raise _Unsupported("a scoped a, u or L flag")
    return (flags | add) & ~remove


class _Builder:
    """The NFA of a parsed pattern, built back to front (each node is given the state that follows it)."""

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.arg: list[object] = []
        self.out: list[list[int]] = []
        self.predicates: dict[tuple[str, int], _Predicate] = {}

    def state(self, kind: int, arg: object = None, out: Optional[list[int]] = None) -> int:
        if len(self.kind) >= MAX_STATES:
            raise _Unsupported("too many states")
        self.kind.append(kind)
        self.arg.append(arg)
        self.out.append(out or [])
        return len(self.kind) - 1

    def sequence(self, items: list, then: int, flags: int) -> int:
        for op, av in reversed(list(items)):
            then = self.node(op, av, then, flags)
        return then

    def node(self, op: object, av: object, then: int, flags: int) -> int:
        text = _char_text(op, av)
        if text is not None:
            key = (text, flags & _CHAR_FLAGS)
            if key not in self.predicates:
                self.predicates[key] = _Predicate(text, flags)
            return self.state(_CHAR, self.predicates[key], [then])
        if op is _c.AT:
            return self.state(_ASSERT, _anchor(av, flags), [then])
        if op is _c.BRANCH:
            return self.state(_SPLIT, None, [self.sequence(alt, then, flags) for alt in av[1]])  # type: ignore[index]
        if op is _c.SUBPATTERN:
            _, add, remove, inner = av  # type: ignore[misc]
            return self.sequence(inner, then, _combined(flags, add, remove))
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):  # lazy or greedy: the same strings match
            return self.repeat(*av, then, flags)  # type: ignore[misc]
        raise _Unsupported(op)

    def repeat(self, least: int, most: int, body: list, then: int, flags: int) -> int:
        if most == _c.MAXREPEAT:
            loop = self.state(_SPLIT)
            self.out[loop] = [self.sequence(body, loop, flags), then]
            then = loop
        else:  # x{0,3} as (x(x(x)?)?)?: each optional copy skips straight to what follows (x?x?x? is the same
            end = then  # language, but its every closure walks the whole chain)
            for _ in range(most - least):
                then = self.state(_SPLIT, None, [self.sequence(body, then, flags), end])
        for _ in range(least):
            then = self.sequence(body, then, flags)
        return then


# Anchors: what each asks of the position, as sre_lib.h's SRE(at) reads it (\b and \B never hold in "").
_BEGIN, _BEGIN_LINE, _END, _END_LINE, _END_STRING, _BOUNDARY, _NOT_BOUNDARY = range(7)


def _anchor(code: object, flags: int) -> tuple[int, bool]:
    """(which anchor, ASCII word characters) for an AT node under ``flags`` (MULTILINE turns ^ and $ per line)."""
    multiline = bool(flags & re.MULTILINE)
    kinds = {
        _c.AT_BEGINNING: _BEGIN_LINE if multiline else _BEGIN,
        _c.AT_BEGINNING_STRING: _BEGIN,
        _c.AT_END: _END_LINE if multiline else _END,
        _c.AT_END_STRING: _END_STRING,
        _c.AT_BOUNDARY: _BOUNDARY,
        _c.AT_NON_BOUNDARY: _NOT_BOUNDARY,
    }
    if code not in kinds:
        raise _Unsupported(code)
    return kinds[code], bool(flags & re.ASCII)


def _holds(anchor: tuple[int, bool], text: str, i: int, word: Callable[[str, bool], bool]) -> bool:
    kind, ascii_only = anchor
    n = len(text)
    if kind == _BEGIN:
        return i == 0
    if kind == _BEGIN_LINE:
        return i == 0 or text[i - 1] == "\n"
    if kind == _END:
        return i == n or (i == n - 1 and text[i] == "\n")
    if kind == _END_LINE:
        return i == n or text[i] == "\n"
    if kind == _END_STRING:
        return i == n
    if n == 0:
        return False
    before = i > 0 and word(text[i - 1], ascii_only)
    after = i < n and word(text[i], ascii_only)
    return (before != after) == (kind == _BOUNDARY)


class Automaton:
    """``search(text)[0]`` is ``re.search(pattern, text) is not None``, in time linear in ``len(text)``."""

    def __init__(self, builder: _Builder, start: int):
        self.kind, self.arg, self.out, self.start = builder.kind, builder.arg, builder.out, start
        self.anchors = sorted({a for k, a in zip(self.kind, self.arg) if k == _ASSERT})  # type: ignore[type-var]
        self._words = {flag: _Predicate(r"\w", re.ASCII if flag else re.UNICODE) for flag in (False, True)}
        self._answers: dict[str, Any] = {}
        self._lock = threading.Lock()  # one walk at a time: SkyRL steps envs in threads, and they share this cache
        self._forget()

    def _forget(self) -> None:
        """Drop the lazy DFA built so far (answers and ``BUDGET`` spending do not depend on it)."""
        self._ids: dict[frozenset[int], int] = {}
        self._sets: list[frozenset[int]] = []
        self._held = 0
        self._closed: dict[tuple[int, tuple[bool, ...]], tuple[int, bool, int]] = {}
        self._moves: dict[tuple[int, str], int] = {}
        self._restart: dict[int, int] = {}

    def search(self, text: str) -> tuple[bool, int]:
        """Whether the pattern matches in ``text``, and the NFA states walked (those each position's closure
        visits): the count is the same whether the DFA states were cached or built. Raises ``Undecided`` past
        ``BUDGET``. Answers are remembered for the last ``_ANSWERS`` strings (the env scores the whole
        trajectory again after every turn). Thread-safe: one automaton serves every env of the process, and
        SkyRL calls ``step`` from a thread pool; a walk whose DFA cache another thread cleared or renumbered
        raised IndexError or gave another string's answer."""
        with self._lock:
            if text not in self._answers:
                if len(self._answers) >= _ANSWERS:
                    self._answers.clear()
                try:
                    self._answers[text] = self._walk(text)
                except Undecided as e:
                    self._answers[text] = e
            answer = self._answers[text]
        if isinstance(answer, Undecided):
            raise answer
        return answer

    def _walk(self, text: str) -> tuple[bool, int]:
        spent, reached = 0, self._id(frozenset())
        for i in range(len(text) + 1):
            if len(self._closed) + len(self._moves) > _CACHE_ENTRIES or self._held > _CACHE_INTS:
                states = self._sets[reached]
                self._forget()
                reached = self._id(states)
            context = tuple(_holds(a, text, i, self._word) for a in self.anchors)
            closed, matched, visited = self._closure(self._with_start(reached), context)
            spent += visited
            if matched:
                return True, spent
            if spent > BUDGET:
                raise Undecided(f"more than {BUDGET} automaton steps")
            if i < len(text):
                reached = self._move(closed, text[i])
        return False, spent

    def _word(self, ch: str, ascii_only: bool) -> bool:
        return self._words[ascii_only](ch)

    def _id(self, states: frozenset[int]) -> int:
        if states not in self._ids:
            self._ids[states] = len(self._sets)
            self._sets.append(states)
            self._held += len(states)
        return self._ids[states]

    def _with_start(self, reached: int) -> int:
        """``reached`` plus a new attempt starting here (``search`` tries every position)."""
        if reached not in self._restart:
            self._restart[reached] = self._id(self._sets[reached] | {self.start})
        return self._restart[reached]

    def _closure(self, states: int, context: tuple[bool, ...]) -> tuple[int, bool, int]:
        """The character-reading states reachable without reading one, whether the match state is, and how
        many states the walk visited."""
        key = (states, context)
        if key not in self._closed:
            holds = dict(zip(self.anchors, context))
            seen: set[int] = set()
            stack = list(self._sets[states])
            while stack:
                s = stack.pop()
                if s in seen:
                    continue
                seen.add(s)
                kind = self.kind[s]
                if kind == _SPLIT or (kind == _ASSERT and holds[self.arg[s]]):  # type: ignore[index]
                    stack.extend(self.out[s])
            reading = frozenset(s for s in seen if self.kind[s] == _CHAR)
            self._closed[key] = (self._id(reading), any(self.kind[s] == _MATCH for s in seen), len(seen))
        return self._closed[key]

    def _move(self, closed: int, ch: str) -> int:
        key = (closed, ch)
        if key not in self._moves:
            after = (self.out[s][0] for s in self._sets[closed] if self.arg[s](ch))  # type: ignore[operator]
            self._moves[key] = self._id(frozenset(after))
        return self._moves[key]


@functools.lru_cache(maxsize=1024)
def automaton(pattern: str) -> Optional[Automaton]:
    """The automaton of a pattern ``re`` compiles, or None when it holds what an automaton cannot run (see the
    module's docstring) or ``re`` refuses it (then ``re.search`` raises, as before)."""
    try:
        parsed = _parser.parse(pattern, 0)
        builder = _Builder()
        start = builder.sequence(parsed, builder.state(_MATCH), parsed.state.flags)
        return Automaton(builder, start)
    except (_Unsupported, re.error, RecursionError, OverflowError, ValueError, TypeError):
        return None


def check_syntax(pattern: str) -> None:
    """Raise ``re.error`` (or RecursionError, OverflowError) where ``re.compile`` refuses the pattern's syntax,
    in time linear in its length: this is ``re``'s parser without the compiler, whose case-insensitive class
    tables took 1 s for ``(?i)`` and 200 ``[\\u0000-\\uffff]`` (a policy's "regex"-format string). The compiler's
    own refusal, a lookbehind of variable width, is not made: JavaScript accepts it."""
    _parser.parse(pattern, 0)


class Guard:
    """The pattern checks of one call's validation. A string the plan itself holds (``cleared``) is never judged
    undecided: the automaton answers for it when it can (``re``'s answer, without its backtracking: the policy
    may send the plan's free text in another param, whose pattern backtracks on it: 14 s for a 39-character
    sentence against ``^(\\w+\\s?)*$``), ``re`` when it cannot, as it always did, and it spends nothing of the
    budget. Any other string is checked by ``automaton``; one it cannot decide (a pattern it cannot run, or
    ``BUDGET`` spent over all of this validation's checks, which a long list of strings could otherwise
    multiply) raises ``Undecided``."""

    def __init__(self, cleared: frozenset[str]):
        self.cleared, self.left = cleared, BUDGET

    def search(self, pattern: str, string: str) -> Optional[object]:
        if string in self.cleared:
            return self._cleared(pattern, string)
        machine = automaton(pattern)
        if machine is None:
            raise Undecided(f"the pattern {pattern[:80]!r} cannot be run without backtracking")
        found, spent = machine.search(string)
        self.left -= spent
        if self.left < 0:
            raise Undecided(f"more than {BUDGET} automaton steps in one validation")
        return True if found else None

    @staticmethod
    def _cleared(pattern: str, string: str) -> Optional[object]:
        machine = automaton(pattern)
        if machine is not None:
            with contextlib.suppress(Undecided):
                return True if machine.search(string)[0] else None
        return re.search(pattern, string)


_GUARD: contextvars.ContextVar[Optional[Guard]] = contextvars.ContextVar("skyrl_mcp_env_pattern_guard", default=None)


@contextlib.contextmanager
def guarding(cleared: Optional[frozenset[str]]) -> Iterator[None]:
    """Within the block (this thread or task only), jsonschema's regex searches go through a ``Guard`` of
    ``cleared``; with None they are ``re.search`` (the lenient setting)."""
    token = _GUARD.set(None if cleared is None else Guard(cleared))
    try:
        yield
    finally:
        _GUARD.reset(token)


class _GuardedRe:
    """What jsonschema's keyword modules see as ``re``: ``re`` itself, but ``search`` (pattern, patternProperties,
    additionalProperties and unevaluatedProperties next to patternProperties, in every draft) asks the guard
    when one is set. Outside ``guarding`` nothing changes for other jsonschema users in the process."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def search(pattern: Any, string: Any, flags: int = 0) -> Any:
        guard = _GUARD.get()
        if guard is None or flags or not isinstance(pattern, str) or not isinstance(string, str):
            return re.search(pattern, string, flags)
        return guard.search(pattern, string)


# jsonschema's modules that call re.search on an instance (4.18+; the older names for 4.0-4.17).
_JSONSCHEMA_MODULES = ("_keywords", "_legacy_keywords", "_utils", "_validators", "_legacy_validators")


def hook_jsonschema() -> list[str]:
    """Point those modules' ``re`` at ``_GuardedRe``; the names of the modules hooked."""
    import jsonschema  # noqa: F401 - loads the modules

    hooked = []
    for name in _JSONSCHEMA_MODULES:
        module = sys.modules.get(f"jsonschema.{name}")
        if module is not None and getattr(module, "re", None) in (re, _GUARDED_RE):
            module.re = _GUARDED_RE  # type: ignore[attr-defined]
            hooked.append(name)
    return hooked


_GUARDED_RE = _GuardedRe()
