"""OSC 1.0 address patterns (`*`, `?`, `[a-z]`, `[!abc]`, `{foo,bar}`) matched
against a fixed set of addresses.

A pattern is translated to a regular expression in which every character the
sender wrote is escaped, so user text never becomes regex syntax. Results are
cached per pattern (bounded: a sender cycling through random patterns cannot
grow memory), and patterns are limited in length, in `*`s and in wildcards of
any kind so that a pathological pattern cannot make matching slow: compiling
is the expensive part (Python code in `re`), and it grows with the number of
groups, so `/x/{a,b}{a,b}...` 250 characters long took about 1 ms, ~100 times
an ordinary message.

Pure module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

WILDCARDS = frozenset("*?[]{}")
MAX_PATTERN = 256  # characters
MAX_STARS = 8
MAX_WILDCARDS = 16  # '*', '?', '[...]' and '{...}' together; real patterns use one to four
CACHE_SIZE = 256


class PatternError(ValueError):
    """An address pattern that is not valid OSC 1.0 (or exceeds the limits)."""


def is_pattern(address: str) -> bool:
    return not WILDCARDS.isdisjoint(address)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression that fully matches what `pattern` matches."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"pattern longer than {MAX_PATTERN} characters")
    if pattern.count("*") > MAX_STARS:
        raise PatternError(f"more than {MAX_STARS} '*' in a pattern")
    if sum(pattern.count(c) for c in "*?[{") > MAX_WILDCARDS:
        raise PatternError(f"more than {MAX_WILDCARDS} wildcards in a pattern")
    parts: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            while i + 1 < n and pattern[i + 1] == "*":
                i += 1  # '**' matches what '*' matches
            parts.append("[^/]*")
        elif c == "?":
            parts.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise PatternError("'[' without ']'")
            parts.append(_char_class(pattern[i + 1 : end]))
            i = end
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end < 0:
                raise PatternError("'{' without '}'")
            parts.append(_alternatives(pattern[i + 1 : end]))
            i = end
        elif c in "]}":
            raise PatternError(f"unbalanced {c!r}")
        else:
            parts.append(re.escape(c))
        i += 1
    return re.compile("".join(parts) + r"\Z")


def _char_class(body: str) -> str:
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    if not body:
        raise PatternError("empty '[...]'")
    items: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = body[i], body[i + 2]
            if lo > hi:
                raise PatternError(f"bad range {lo}-{hi}")
            items.append(f"{re.escape(lo)}-{re.escape(hi)}")
            i += 3
        else:
            items.append(re.escape(body[i]))
            i += 1
    # A negated class must still not cross a '/' (it matches one character of a part).
    return f"[^/{''.join(items)}]" if negate else f"[{''.join(items)}]"


def _alternatives(body: str) -> str:
    if not WILDCARDS.isdisjoint(body):
        raise PatternError("wildcards inside '{...}'")
    return "(?:" + "|".join(re.escape(a) for a in body.split(",")) + ")"


class Matcher:
    """Which of a fixed set of addresses a pattern matches, with a bounded cache."""

    def __init__(self, addresses: Iterable[str]) -> None:
        self.addresses = tuple(addresses)
        self._cache: dict[str, tuple[str, ...] | None] = {}

    def known(self, pattern: str) -> bool:
        """Whether `pattern` is cached (matching it costs a dict lookup)."""
        return pattern in self._cache

    def match(self, pattern: str) -> tuple[str, ...]:
        """Matching addresses in registry order; raises PatternError for a bad pattern."""
        hit = self._cache.get(pattern, ())
        if hit is None:
            raise PatternError("invalid pattern (cached)")
        if hit or pattern in self._cache:
            return hit
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()  # simplest bound; real senders reuse a handful of patterns
        try:
            rx = compile_pattern(pattern)
        except (PatternError, re.error) as e:
            self._cache[pattern] = None
            raise PatternError(str(e)) from None
        found = tuple(a for a in self.addresses if rx.match(a))
        self._cache[pattern] = found
        return found
