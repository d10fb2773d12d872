"""What the OSC and MIDI halves of `bench --control` share: the addresses they move, the
gaps between sends, and the trace of sends and presents."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.core.space import DECKS

BRIGHTNESS = "/master/brightness"  # a "post" param, used after the model
LATENT = f"/deck/{DECKS[0]}/latent/1"  # a model input of the playing deck
GAP_S = (0.010, 0.030)  # seconds between sends: the same address waits >= 2 gaps (> one 60 fps frame)


@dataclass
class Trace:
    """What was sent (address, float32 value) -> send time, and what each present used."""

    sent: list[tuple[str, float, float]] = field(default_factory=list)  # (address, value, send time s)
    frames: list[tuple[float, float, float]] = field(default_factory=list)  # (present time s, brightness, latent)
    done_at: float | None = None
