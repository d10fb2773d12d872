"""OSC datagrams -> events on the show's queue (and replies to the sender).

Runs on the OSC receive thread and knows nothing about sockets: it is handed
bytes and the sender's (host, port), and a `reply` callable for answers
(`/pong`, `?` queries). It only translates and enqueues: it never touches
torch or pygame, never sleeps, and counts everything it cannot use.

What each counter counts (`OscCounters`):
- received:  datagrams handed in (before any check).
- malformed: datagrams that do not decode as OSC (random bytes, truncated,
  oversized, bad type tags, bad patterns), and messages whose arguments do not
  fit their address (a string, no value or NaN/inf for a param, a bad scene
  argument), or whose patch route raised.
- dropped:   well-formed messages not acted on: sender outside --osc-allow
  (`not_allowed`), address unknown (`unknown`), bundle timetag too far ahead,
  the event queue full, or over a rate limit (`limited`).

Rate limits bound what one sender can cost, since nothing here may stall the
show: new wildcard patterns (compiling one costs up to ~0.3 ms on this
thread), replies per datagram (one 24 KB bundle of `/deck/a/*/* ?` asked for
36,864), and verbs per address (each is applied on the loop thread: a scene
load is ~0.2 ms). Params are not limited: the queue coalesces them.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder

from engine.control.osc_decode import Decoded, Malformed, decode
from engine.control.osc_pattern import Matcher, PatternError, is_pattern
from engine.core.events import Event, EventQueue
from engine.core.params import Registry
from engine.core.ratelog import first_and_every
from engine.core.space import OSC_TYPE, AddressSpace, space_of

log = logging.getLogger(__name__)

Sender = tuple[str, int]
Reply = Callable[[bytes, Sender], None]
Subscribe = Callable[[str, int, bool], None]  # (sender IP, port, on/off)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_AHEAD_S = 60.0  # bundles timed further ahead are dropped: the heap must not fill with the far future
MAX_TEXT = 256  # characters of a /text/prime string kept (the stream primes with at most this many)
LOG_EVERY = 1000  # after the first malformed datagram, log every Nth
MAX_REPLIES = 128  # replies to one datagram: a query of every param is ~60
NEW_PATTERN_BURST, NEW_PATTERN_RATE = 16, 32.0  # patterns compiled at once / per second after
VERB_BURST, VERB_RATE = 8, 20.0  # per verb address: far beyond a hand on a button


MAX_SENDERS = 32  # senders counted by name (the HUD's client list); more go under "others"


@dataclass
class OscCounters:
    received: int = 0
    dropped: int = 0
    malformed: int = 0
    unknown: int = 0
    not_allowed: int = 0
    replies: int = 0
    limited: int = 0
    # Datagrams per sender "host:port"; bounded, so a flood from random ports cannot grow it.
    senders: dict[str, int] = field(default_factory=dict)

    def count_sender(self, sender: Sender) -> None:
        key = f"{sender[0]}:{sender[1]}"
        if key not in self.senders and len(self.senders) >= MAX_SENDERS:
            key = "others"
        self.senders[key] = self.senders.get(key, 0) + 1


class Budget:
    """A token bucket: `burst` at once, refilled at `rate` per second of the caller's clock."""

    def __init__(self, burst: float, rate: float) -> None:
        self.burst, self.rate = float(burst), float(rate)
        self.tokens = self.burst
        self._t: float | None = None

    def take(self, now: float) -> bool:
        if self._t is not None:
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self._t) * self.rate)
        self._t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def encode(address: str, *args: Any) -> bytes:
    """One OSC message; floats as 'f', ints as 'i', bools as T/F, str as 's'."""
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def encode_param(address: str, value: float, param_type: str) -> bytes:
    """A param value in the type the address space advertises (OSC_TYPE)."""
    tag = OSC_TYPE.get(param_type, "f")
    if tag == "T":
        return encode(address, value >= 0.5)
    if tag == "i":
        return encode(address, int(value))
    return encode(address, float(value))


def number_arg(args: list[Any]) -> float | None:
    """The single finite number (or bool) in `args`, else None."""
    if len(args) != 1:
        return None
    a = args[0]
    if isinstance(a, bool):
        return 1.0 if a else 0.0
    if isinstance(a, (int, float)):
        v = float(a)
        return v if math.isfinite(v) else None
    return None


class Dispatcher:
    def __init__(
        self,
        registry: Registry,
        queue: EventQueue,
        routes: Mapping[str, Callable[[list, float], list[Event]]],
        reply: Reply,
        subscribe: Subscribe | None = None,
        allow: Iterable[Network] | None = None,
        now: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
        space: AddressSpace | None = None,
    ) -> None:
        self.registry = registry
        self.space = space if space is not None else space_of(registry)
        self.queue = queue
        self.routes = routes  # read on this thread; the patch loader fills it before start
        self.reply = reply
        self.subscribe = subscribe
        self.allow = tuple(allow) if allow else None
        self._allowed_cache: dict[str, bool] = {}
        self.now = now
        # Bundle timetags are wall-clock (NTP) times: the one place a wall clock is
        # needed, to convert them to the loop's perf_counter clock.
        self.wall = wall
        self.matcher = Matcher(p.address for p in registry)
        self.types = {p.address: p.type for p in registry}
        self.counters = OscCounters()
        self._new_patterns = Budget(NEW_PATTERN_BURST, NEW_PATTERN_RATE)
        self._verb_budgets: dict[str, Budget] = {}
        self._replies_left = MAX_REPLIES  # reset for every datagram
        # One reader per kind of verb argument (engine.core.space.ArgKind); /ping is answered here.
        # Looked up once per verb address now, so a message costs one dict lookup.
        readers = {
            "trigger": self._trigger,
            "scene": self._scene,
            "index": self._scene,
            "address": self._learn,
            "text": self._text,
            "port": self._subscribe,
        }
        self._verb_readers = {
            address: self._ping if verb.handler == "osc.ping" else readers[verb.arg]
            for address, verb in self.space.osc_verbs()
        }

    # -- entry ----------------------------------------------------------
    def handle(self, dgram: bytes, sender: Sender) -> None:
        """Everything one datagram asks for; never raises for what a sender sends."""
        c = self.counters
        c.received += 1
        c.count_sender(sender)
        if self.allow is not None and not self._allowed(sender[0]):
            c.dropped += 1
            c.not_allowed += 1
            return
        try:
            messages = decode(dgram)
        except Malformed as e:
            self._malformed(str(e), sender)
            return
        t = self.now()
        self._replies_left = MAX_REPLIES
        wall_now = self.wall() if any(m.wall is not None for m in messages) else 0.0
        for m in messages:
            due = None
            if m.wall is not None and m.wall > wall_now:
                ahead = m.wall - wall_now
                if ahead > MAX_AHEAD_S:
                    c.dropped += 1
                    continue
                due = t + ahead
            self.message(m, t, due, sender)

    def message(self, m: Decoded, t: float, due: float | None, sender: Sender) -> None:
        address, args = m.address, m.args
        if address in self.types:
            self._param(address, args, t, due, sender)
        elif (reader := self._verb_readers.get(address)) is not None:
            reader(address, args, t, due, sender)
        elif address in self.routes:
            self._route(address, args, t, due, sender)
        elif is_pattern(address):
            self._pattern(address, args, t, due, sender)
        else:
            self._unknown(address, sender)

    # -- params ---------------------------------------------------------
    def _param(self, address: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        if len(args) == 1 and args[0] == "?":
            self._answer(address, sender)
            return
        value = number_arg(args)
        if value is None:
            self._malformed(f"{address} expects one number (f, i, d, h or T/F), got {_types(args)}", sender)
            return
        self._put(Event("set", address, value, t, "osc", due))

    def _pattern(self, pattern: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        query = len(args) == 1 and args[0] == "?"
        if not query and number_arg(args) is None:
            # Checked once here, so a bad message counts once, not once per matched param.
            self._malformed(f"{pattern} expects one number (f, i, d, h or T/F), got {_types(args)}", sender)
            return
        if not self.matcher.known(pattern) and not self._new_patterns.take(t):
            self._limited()
            return
        try:
            found = self.matcher.match(pattern)
        except PatternError as e:
            self._malformed(f"bad address pattern: {e}", sender)
            return
        if not found:
            self._unknown(pattern, sender)
            return
        if query and self._replies_left <= 0:  # all at once: a flood of these is cheap to drop
            self._limited(len(found))
            return
        for address in found:
            self._param(address, args, t, due, sender)

    def _answer(self, address: str, sender: Sender) -> None:
        """`?`: the param's current target, to the sender's address and port."""
        if self._may_reply():  # asked before encoding: encoding is most of a reply's cost
            p = self.registry.param(address)
            self.reply(encode_param(address, p.target, p.type), sender)

    # -- verbs ----------------------------------------------------------
    def _trigger(self, address: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        fire = _fires(args)
        if fire is None:
            self._malformed(f"{address} expects no argument or one number, got {_types(args)}", sender)
        elif fire:
            self._put_verb(Event("verb", address, None, t, "osc", due))  # a fixed argument is the core's

    def _scene(self, address: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        value: float | str | None = None
        if len(args) == 1 and isinstance(args[0], str) and args[0].strip():
            text = args[0].strip()
            # Digits that are not decimal ("²") are no index the show reads: say so to the
            # sender as malformed rather than let the show reject them as an unknown name.
            value = None if text.isdigit() and not text.isdecimal() else args[0]
        elif len(args) == 1 and isinstance(args[0], (int, float)) and not isinstance(args[0], bool):
            value = args[0] if math.isfinite(args[0]) else None
        if value is None:
            self._malformed(f"{address} expects a scene name or 1-based index, got {_types(args)}", sender)
            return
        self._put_verb(Event("verb", address, value, t, "osc", due))

    def _learn(self, address: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            name = args[0].strip()
            if name and name not in self.types:  # else the learn control logs each one, on the loop thread
                self._malformed(f"{address} expects a param address, got {_short(name)!r}", sender)
                return
            self._put_verb(Event("verb", address, name, t, "osc", due))
        else:
            self._trigger(address, args, t, due, sender)

    def _text(self, address: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            self._put_verb(Event("verb", address, args[0][:MAX_TEXT], t, "osc", due))
        else:
            self._malformed(f"{address} expects one string, got {_types(args)}", sender)

    def _ping(self, address: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        if self._may_reply():
            self.reply(encode("/pong"), sender)

    def _subscribe(self, address: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        port = number_arg(args) if not (args and isinstance(args[0], bool)) else None
        if port is None or not port.is_integer() or not 1 <= port <= 65535:
            self._malformed(f"{address} expects a UDP port 1..65535, got {_types(args)}", sender)
            return
        if self.subscribe is None:
            self.counters.dropped += 1
            return
        if not self._verb_budget(address).take(t):  # each (un)subscription is logged
            self._limited()
            return
        self.subscribe(sender[0], int(port), address.endswith("/subscribe"))

    # -- patch routes ---------------------------------------------------
    def _route(self, address: str, args: list, t: float, due: float | None, sender: Sender) -> None:
        try:
            events = list(self.routes[address](list(args), t))
        except Exception as e:  # a patch route is foreign code: it may not take the show down
            self._malformed(f"patch route {address} failed on {_types(args)}: {e!r}", sender)
            return
        for ev in events:
            if due is not None:
                ev.due = due
            self._put(ev)

    # -- bookkeeping ----------------------------------------------------
    def _put(self, ev: Event) -> None:
        if not self.queue.put(ev):
            self.counters.dropped += 1

    def _put_verb(self, ev: Event) -> None:
        """A verb sent by address (not a patch route's: those carry fader moves, at fader rates)."""
        if self._verb_budget(ev.address).take(ev.t):
            self._put(ev)
        else:
            self._limited()

    def _verb_budget(self, address: str) -> Budget:
        budget = self._verb_budgets.get(address)
        if budget is None:  # verbs are a fixed set (the verb table), so this stays small
            budget = self._verb_budgets[address] = Budget(VERB_BURST, VERB_RATE)
        return budget

    def _may_reply(self) -> bool:
        """Counts a reply to this datagram, or a drop once MAX_REPLIES were sent."""
        if self._replies_left <= 0:
            self._limited()
            return False
        self._replies_left -= 1
        self.counters.replies += 1
        return True

    def _limited(self, n: int = 1) -> None:
        """Over a rate limit: dropped, counted, logged with the first and every LOG_EVERYth."""
        c = self.counters
        c.limited += n
        c.dropped += n
        if first_and_every(c.limited, LOG_EVERY, added=n):
            log.warning(
                "OSC over a rate limit (a flood?): dropped (%d so far; logging every %dth)", c.limited, LOG_EVERY
            )

    def _unknown(self, address: str, sender: Sender) -> None:
        """No param, verb or route answers to `address` (a typo in the other app, most often)."""
        c = self.counters
        c.unknown += 1
        c.dropped += 1
        if first_and_every(c.unknown, LOG_EVERY):
            log.warning(
                "unknown OSC address %r from %s:%s, dropped (%d so far; logging every %dth); "
                "`run_show.py params` lists the addresses",
                _short(address),
                sender[0],
                sender[1],
                c.unknown,
                LOG_EVERY,
            )

    def _malformed(self, reason: str, sender: Sender) -> None:
        c = self.counters
        c.malformed += 1
        if first_and_every(c.malformed, LOG_EVERY):
            log.warning(
                "malformed OSC from %s:%s: %s (%d malformed so far; logging every %dth)",
                sender[0],
                sender[1],
                reason,
                c.malformed,
                LOG_EVERY,
            )

    def _allowed(self, host: str) -> bool:
        ok = self._allowed_cache.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                ip = None
            ok = ip is not None and any(ip in net for net in self.allow or ())
            if len(self._allowed_cache) >= 1024:
                self._allowed_cache.clear()
            self._allowed_cache[host] = ok
        return ok


def _fires(args: list) -> bool | None:
    """Trigger semantics: no argument or a non-zero number fires, 0 is ignored,
    anything else is malformed (None)."""
    if not args:
        return True
    v = number_arg(args)
    return None if v is None else v != 0.0


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."


def _types(args: list) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "string", bytes: "blob"}
    return "(" + ", ".join(names.get(type(a), type(a).__name__) for a in args[:4]) + ")" if args else "nothing"
