"""Routing: controller gestures (MIDI, patch-defined OSC addresses) -> show events.

Where takeover is decided (the brief left it open):

- Routes that need nothing but the control's position (takeover "jump", no
  smoothing, buttons) become plain `set` / `toggle` / `verb` events on the input
  thread, so they coalesce in the queue when flooded and an event log replays
  them without any patch loaded.
- Routes that need the param's *current* value (pick-up and scale takeover,
  relative encoders, smoothing) enqueue `Event("verb", "/patch/route/<id>",
  position-or-ticks)`; the handler runs on the loop thread at the frame
  boundary, where the param's target is exact (after every earlier event of
  the same frame, after scene switches that reset params without telling any
  listener). It then applies an ordinary `set` through `Show.apply`, so
  listeners (feedback) see the value, and first tells `show.applied_hooks`
  (the event-log recorder) about that `set`, so a recorded performance
  replays without the patch (the `/patch/route/<id>` verb itself replays as
  an unknown verb, counted and ignored). All per-route state (picked
  up or not, last position, glide) is touched by the loop thread only: no
  locks, no stale copies of values kept in sync by listeners.

Pick-up: a moved control is ignored until its value comes within 2% of the
range of the param's value or crosses it between two messages; when anything
else changes the param, the route must pick it up again. A route's
`pickup_led` is lit from the moment its control is known to be away from the
value (moved without picking up, or the param changed under it by OSC, a
scene change, learn...) until it picks up; a control never moved leaves it dark
(its position is unknown). Scale: the distance
between control and value shrinks as the control moves, so both meet at the
end of the travel. Smoothing: the loop glides the param towards the route's
target with a one-pole of `smoothing` seconds, one `set` per frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.control.midi_decode import Gesture, relative_steps
from engine.core.events import Event
from engine.core.params import one_pole
from engine.core.space import ROUTE_VERB
from engine.files.patch import MidiSource, OscSource, Route, to_position, to_value

if TYPE_CHECKING:
    from engine.stage.show import Show

PICKUP_TOLERANCE = 0.02  # fraction of the range that counts as "at the value"
_FULL = {"cc": 127.0, "cc14": 16383.0, "pitchbend": 16383.0, "note": 127.0}


@dataclass
class _State:
    """Loop-thread state of one route."""

    picked: bool = False
    last_pos: float | None = None  # the control's previous position, 0..1
    last_value: float | None = None  # the param target this route last applied
    glide_to: float | None = None
    led: bool | None = None  # the pick-up light as last shown (None: never shown)


def gesture_position(route: Route, g: Gesture) -> float:
    """A MIDI gesture's value as a control position 0..1."""
    if g.kind == "nrpn":
        return (g.value >> 7) / 127.0 if route.bits == 7 else g.value / 16383.0
    return g.value / _FULL.get(g.kind, 127.0)


def midi_key(kind: str, channel: int, number: int) -> tuple[str, int, int]:
    return ("nrpn" if kind == "nrpn_step" else kind, channel, number)


class Router:
    """Installed routes. `midi_events` / OSC callables run on input threads and read an
    immutable table (replaced whole when learn adds or removes a route); the
    `/patch/route/<id>` handlers and the glide frame hook run on the loop thread."""

    def __init__(self, show: Show, routes: Iterable[Route] = ()) -> None:
        self.show = show
        self._ids: dict[Route, int] = {}
        self._by_id: dict[int, Route] = {}
        self._active: set[int] = set()
        self._next_id = 1
        self._states: dict[int, _State] = {}
        self._gliding: set[int] = set()
        self.routes: tuple[Route, ...] = ()
        self._led_routes: tuple[int, ...] = ()  # active pick-up routes with a pickup_led
        self.on_pickup_led: Callable[[Route, bool], None] | None = None  # (route, lit), loop thread
        self._midi: dict[tuple[str, int, int], tuple[tuple[Route, int], ...]] = {}
        show.provide("routes", self)
        self.install(list(routes))
        show.frame_hooks.append(self._glide)
        show.frame_hooks.append(self._watch_pickups)

    # -- installing ---------------------------------------------------------
    def install(self, routes: list[Route]) -> None:
        """Replace the routing table (startup; learn on the loop thread)."""
        table: dict[tuple[str, int, int], list[tuple[Route, int]]] = {}
        for route in routes:
            rid = self._ids.get(route)
            if rid is None:
                rid = self._ids[route] = self._next_id
                self._next_id += 1
                self._states[rid] = _State()
                self._by_id[rid] = route
            if route.needs_loop:  # apply in the drain the param itself is applied in
                self.show.set_verb_phase(f"{ROUTE_VERB}{rid}", self.show.registry.stage(route.address))
            if isinstance(route.source, MidiSource):
                s = route.source
                table.setdefault((s.kind, s.channel, s.number), []).append((route, rid))
        self._midi = {k: tuple(v) for k, v in table.items()}
        self.routes = tuple(routes)
        active = {self._ids[r] for r in routes}
        for rid in self._active - active:  # unlearned routes stop answering
            self.show.set_verb_phase(f"{ROUTE_VERB}{rid}", None)
        self._active = active
        self._led_routes = tuple(self._ids[r] for r in routes if r.pickup_led is not None)
        self._register_osc()

    def cc14_pairs(self, port_name: str) -> frozenset[tuple[int, int]]:
        """(channel, MSB controller) of the 14-bit routes that listen to this port."""
        return frozenset(
            (r.source.channel, r.source.number)
            for r in self.routes
            if isinstance(r.source, MidiSource) and r.source.kind == "cc14" and r.source.matches_port(port_name)
        )

    # -- input threads --------------------------------------------------------
    def routed(self, g: Gesture, port_name: str) -> bool:
        """Does any route listen to this gesture's control on this port (whether or not
        this message fires it: a pad's release fires nothing, but the key is taken)?"""
        return any(
            route.source.matches_port(port_name)
            for route, _ in self._midi.get(midi_key(g.kind, g.channel, g.number), ())
        )

    def midi_events(self, g: Gesture, port_name: str) -> list[Event]:
        out: list[Event] = []
        for route, rid in self._midi.get(midi_key(g.kind, g.channel, g.number), ()):
            if not route.source.matches_port(port_name):
                continue
            ev = self._midi_event(route, rid, g)
            if ev is not None:
                out.append(ev)
        if g.kind == "program" and not out:
            out.append(Event("verb", "/show/scene", g.number + 1, g.t, "midi"))
        return out

    def _midi_event(self, route: Route, rid: int, g: Gesture) -> Event | None:
        if route.mode == "relative":
            steps = (
                g.value if g.kind == "nrpn_step" else (relative_steps(g.value, route.encoding) if g.kind == "cc" else 0)
            )
            if steps == 0:
                return None
            return Event("verb", f"{ROUTE_VERB}{rid}", float(steps), g.t, "midi")
        if g.kind == "nrpn_step":
            return None  # increments mean nothing to an absolute route
        pressed = True if g.kind == "program" else (g.value >= 64 if g.kind == "cc" else g.value > 0)
        return self.event(route, rid, gesture_position(route, g), pressed, g.t, "midi")

    def event(self, route: Route, rid: int, pos: float, pressed: bool, t: float, source: str) -> Event | None:
        """The event a control position (0..1) or button state causes on this route."""
        mode, address = route.mode, route.address
        if mode == "trigger":
            if not pressed:
                return None
            if route.verb is not None:
                return Event("verb", route.verb, route.value, t, source)
            return Event("set", address, self._high(route) if route.value is None else route.value, t, source)
        if mode == "toggle":
            return Event("toggle", address, None, t, source) if pressed else None
        if mode == "gate":
            return Event("set", address, self._high(route) if pressed else self._low(route), t, source)
        if mode == "velocity" and not pressed:
            return None
        if route.needs_loop:
            return Event("verb", f"{ROUTE_VERB}{rid}", pos, t, source)
        p = self.show.registry.param(address)
        return Event("set", address, to_value(route, pos, p.lo, p.hi), t, source)

    def _high(self, route: Route) -> float:
        p = self.show.registry.param(route.address)
        return to_value(route, 1.0, p.lo, p.hi)

    def _low(self, route: Route) -> float:
        p = self.show.registry.param(route.address)
        return to_value(route, 0.0, p.lo, p.hi)

    def _register_osc(self) -> None:
        by_address: dict[str, list[tuple[Route, int]]] = {}
        for route in self.routes:
            if isinstance(route.source, OscSource):
                by_address.setdefault(route.source.address, []).append((route, self._ids[route]))
        for address in [a for a, fn in self.show.osc_routes.items() if getattr(fn, "patch_route", False)]:
            if address not in by_address:
                del self.show.osc_routes[address]
        for address, routes in by_address.items():
            self.show.osc_routes[address] = self._osc_callable(tuple(routes))

    def _osc_callable(self, routes: tuple[tuple[Route, int], ...]):
        def handle(args: list, t: float) -> list[Event]:
            x = _osc_number(args)
            if x is None:
                return []
            out = []
            for route, rid in routes:
                lo, hi = route.source.input
                pos = (x - lo) / (hi - lo)
                ev = self.event(route, rid, pos, pos >= 0.5, t, "osc")
                if ev is not None:
                    out.append(ev)
            return out

        handle.patch_route = True  # type: ignore[attr-defined]  # ours to replace on reinstall
        return handle

    # -- loop thread ------------------------------------------------------------
    def fire(self, ev: Event) -> None:
        """Verb /patch/route/<id> (loop thread): an active route that needs the loop moved."""
        tail = ev.address[len(ROUTE_VERB) :]
        rid = int(tail) if tail.isdecimal() else -1
        route = self._by_id.get(rid)
        if route is None or rid not in self._active or not route.needs_loop:
            self.show.registry.rejected += 1  # unlearned since it was sent, or never a route
            return
        if isinstance(ev.value, (int, float)) and math.isfinite(ev.value):
            self._apply(route, self._states[rid], rid, float(ev.value), ev)

    def _apply(self, route: Route, st: _State, rid: int, x: float, ev: Event) -> None:
        p = self.show.registry.param(route.address)
        _release_if_moved(st, p)
        if route.mode == "relative":
            a, b = route.range or (p.lo, p.hi)
            step = route.step if route.step is not None else abs(b - a) / 128.0
            base = st.glide_to if st.glide_to is not None else p.target
            target: float | None = min(max(base + x * step, min(a, b)), max(a, b))
        else:
            target = self._takeover(route, st, x, p)
            if route.pickup_led is not None:
                self._show_pickup(route, st)
        if target is None:
            return
        if route.smoothing > 0.0:
            st.glide_to = target
            self._gliding.add(rid)
            return
        # Recorded in the drain it is applied in, so a replay applies it at the same point of the frame.
        self.show.record_and_apply(Event("set", route.address, target, ev.t, ev.source), self.show.draining)
        st.last_value = p.target

    def _takeover(self, route: Route, st: _State, pos: float, p) -> float | None:
        # An OSC sender may go past its `input` range; beyond an end the control is at that end
        # (scale takeover divides by the distance left to travel, 0 at the ends).
        pos = min(max(pos, 0.0), 1.0)
        prev, st.last_pos = st.last_pos, pos
        value = to_value(route, pos, p.lo, p.hi)
        cur = p.target if st.glide_to is None else st.glide_to
        if route.takeover == "pickup":
            if not st.picked:
                near = abs(value - cur) <= PICKUP_TOLERANCE * abs(p.hi - p.lo)
                crossed = prev is not None and (to_value(route, prev, p.lo, p.hi) - cur) * (value - cur) <= 0
                if not (near or crossed):
                    return None
                st.picked = True
            return value
        if route.takeover == "scale":
            if prev is None or pos == prev:
                return None  # the first message only tells where the control is
            c = to_position(route, cur, p.lo, p.hi)
            if pos > prev:
                new = c + (pos - prev) * (1.0 - c) / (1.0 - prev)
            else:
                new = c - (prev - pos) * c / prev
            return to_value(route, new, p.lo, p.hi)
        return value

    def _show_pickup(self, route: Route, st: _State) -> None:
        lit = not st.picked and st.last_pos is not None
        if lit != st.led:
            st.led = lit
            if self.on_pickup_led is not None:
                self.on_pickup_led(route, lit)

    def _watch_pickups(self, show: Show) -> None:
        """Frame hook: a param moved under a picked-up control (OSC, a scene change) lights
        its pick-up LED now, not at the control's next move."""
        if self.on_pickup_led is None:
            return  # no feedback port: nothing to light
        for rid in self._led_routes:
            route, st = self._by_id[rid], self._states[rid]
            if st.picked and route.address is not None:
                _release_if_moved(st, show.registry.param(route.address))
            self._show_pickup(route, st)

    def pickup_leds(self) -> list[tuple[Route, bool]]:
        """(route, lit) for every pick-up light shown so far (to resend after a reconnect)."""
        return [
            (self._by_id[rid], bool(self._states[rid].led))
            for rid in self._led_routes
            if self._states[rid].led is not None
        ]

    def _glide(self, show: Show) -> None:
        """Frame hook: move gliding routes' params one frame towards their targets."""
        dt = show.dt
        for rid in list(self._gliding):
            route = self._by_id[rid]
            st = self._states[rid]
            if st.glide_to is None or rid not in self._active:
                self._gliding.discard(rid)
                continue
            p = show.registry.param(route.address)
            new = p.target + (st.glide_to - p.target) * one_pole(dt, route.smoothing)
            if abs(st.glide_to - new) < 1e-4 * max(1.0, p.hi - p.lo):
                new = st.glide_to
                st.glide_to = None
                self._gliding.discard(rid)
            # After present: frame_count already names the next frame, whose first drain
            # ("model") is where a replay applies it.
            self.show.record_and_apply(Event("set", route.address, new, show.t, "midi"), "model")
            st.last_value = p.target


def _release_if_moved(st: _State, p) -> None:
    """Something else moved the param since this route last set it: the route lets go
    (a pick-up control must reach the value again; a glide stops)."""
    if st.last_value is not None and abs(p.target - st.last_value) > 1e-6 * max(1.0, p.hi - p.lo):
        st.picked = False
        st.glide_to = None


def _osc_number(args: list) -> float | None:
    """The first OSC argument as a number; no argument is a bang (1.0)."""
    if not args:
        return 1.0
    x = args[0]
    if isinstance(x, bool):
        return 1.0 if x else 0.0
    if isinstance(x, (int, float)) and math.isfinite(x):
        return float(x)
    return None
