"""Value checks shared by every file the artist writes: scenes, their [notes], [text]
and [synth] tables, patches, and latent path settings.

A `Checker` knows which file (and where in it) it is checking; each check returns
the value in the type the engine wants or raises one error naming the file, the
key and what was expected:

    scenes/x.toml: key 'path.keys': expected an integer from 2 to 256, got 1000

TOML hands the engine values Python would take at face value but the engine must
not: integers of any size (one past 1.8e308 does not fit a float), NaN and
infinities, and booleans (an int subclass). Every numeric check refuses them
here, once, so a loader cannot forget one.

Here in core, not in engine/files: latent.py (core) checks path settings with it,
and core does not import the layers above it. Pure module: stdlib and
engine.errors only.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeGuard

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from engine.errors import StartupError

_NOT_SHOWN = object()  # `got` default: the message has no ", got ..." tail
_MAX_SHOWN = 80  # characters of a bad value quoted in a message (a 4000-digit int is one line, not 50)


def shown(value: Any) -> str:
    """repr(value), cut short: error messages stay one readable line."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a table nested past the limit; an int too long to print
        return f"a {type(value).__name__}"
    if len(text) <= _MAX_SHOWN:
        return text
    size = f"{len(text.lstrip('-'))} digits" if isinstance(value, int) else f"{len(text)} characters"
    return f"{text[: _MAX_SHOWN - 20]}... ({size})"


class Checker:
    """Checks values read from one file; every failure names file, place, key, expectation.

    `file` may be any label (latent.py uses "path kind 'walk'"); `error` is the
    exception class raised (SceneError, PatchError, ValueError ...); `where` is
    put before the key, e.g. "route #2 ('fader'): ".
    """

    def __init__(self, file: Path | str, error: Callable[[str], Exception] = StartupError, where: str = "") -> None:
        self.file, self.error, self.where = file, error, where

    def at(self, where: str) -> Checker:
        """The same file and error, another place in it."""
        return Checker(self.file, self.error, where)

    def fail(self, key: str, expected: str, got: Any = _NOT_SHOWN) -> Exception:
        tail = "" if got is _NOT_SHOWN else f", got {shown(got)}"
        return self.error(f"{self.file}: {self.where}key '{key}': expected {expected}{tail}")

    def integer(self, key: str, v: Any, lo: int | None = None, hi: int | None = None) -> int:
        """A whole TOML integer (not a bool, not 2.0), inside [lo, hi] when given."""
        bounded = lo is not None and hi is not None
        expected = f"an integer from {lo} to {hi}" if bounded else "an integer"
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, expected, v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.fail(key, expected, v)
        return v

    def number(
        self, key: str, v: Any, lo: float | None = None, hi: float | None = None, expected: str | None = None
    ) -> float:
        """A finite float (an integer is accepted), inside [lo, hi] when given.

        `expected` words the range failure (default "a number from lo to hi");
        a value that is no finite number at all always reads "a finite number".
        """
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(key, "a finite number", v)
        try:
            x = float(v)  # TOML integers are unbounded: one past 1.8e308 overflows here
        except OverflowError:
            raise self.fail(key, "a finite number", v) from None
        if not math.isfinite(x):
            raise self.fail(key, "a finite number", v)
        x += 0.0  # -0.0 -> 0.0: a default that prints as "-0" in the status is noise
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            raise self.fail(key, expected or _range_words(lo, hi), v)
        return x

    def boolean(self, key: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise self.fail(key, "true or false", v)
        return v

    def choice(self, key: str, v: Any, options: Iterable[Any]) -> Any:
        options = tuple(options)
        if v not in options:
            raise self.fail(key, "one of " + ", ".join(map(str, options)), v)
        return v

    def text(self, key: str, v: Any) -> str:
        if not isinstance(v, str):
            raise self.fail(key, "a string", v)
        return v

    def pair(self, key: str, v: Any) -> tuple[float, float]:
        if not isinstance(v, list) or len(v) != 2:
            raise self.fail(key, "[low, high] (two numbers)", v)
        return self.number(key, v[0]), self.number(key, v[1])

    def table(self, key: str, v: Any, expected: str) -> dict:
        if not isinstance(v, dict):
            raise self.fail(key, expected, v)
        return v

    def unknown(self, table: dict, allowed: Iterable[str], prefix: str = "") -> None:
        """Fail on the first key of `table` not in `allowed` (a typo is an error, not ignored)."""
        allowed = set(allowed)
        for k in table:
            if k not in allowed:
                raise self.fail(prefix + k, "one of " + ", ".join(sorted(allowed)) + " (unknown key)")

    def existing_file(self, key: str, v: Any, what: str, roots: Iterable[Path]) -> Path:
        """A path to an existing file: absolute, or relative to the first of `roots` that has it."""
        if not isinstance(v, str) or not v:
            raise self.fail(key, f"a path to a {what} (string)", v)
        p = Path(v).expanduser()
        candidates = [p] if p.is_absolute() else [root / p for root in roots]
        for c in candidates:
            if c.is_file():
                return c.resolve()
        raise self.fail(key, f"an existing {what} (tried {' or '.join(map(str, candidates))})", v)


def _range_words(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"a number from {lo:g} to {hi:g}"
    return f"a number >= {lo:g}" if lo is not None else f"a number <= {hi:g}"


def read_toml(file: Path, error: Callable[[str], Exception], what: str) -> dict:
    """A TOML file's table, or one `error` naming the file: unreadable (`what` says what it
    should have been) or not valid TOML."""
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise error(f"{file}: cannot read {what} ({e.strerror or e})") from None
    return parse_toml(file, raw, error)


def parse_toml(file: Path, raw: bytes, error: Callable[[str], Exception]) -> dict:
    """TOML bytes -> a table, or one `error` naming the file.

    tomllib lets more than TOMLDecodeError through: UnicodeDecodeError (a binary or
    half-written file), ValueError (an integer past int()'s 4300 digits) and
    RecursionError (arrays nested thousands deep). Each once reached the CLI as a
    traceback.
    """
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise error(f"{file}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise error(
            f"{file}: not valid TOML: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})"
        ) from None
    except (ValueError, RecursionError) as e:
        raise error(f"{file}: not valid TOML: {type(e).__name__}: {str(e)[:120]}") from None


def finite_number(value: object) -> TypeGuard[float]:
    """A real number (int or float, not a bool), neither NaN nor infinite."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
