"""Skips for tests that need a real JACK server and PortAudio, with the reason a person can act on."""

from __future__ import annotations

import pytest

from engine.bench.jackserver import missing_tools
from engine.devices.audio_devices import import_sounddevice


def skip_without_jack_audio(*tools: str) -> None:
    """Skip unless jackd (and `tools`) and a working sounddevice (PortAudio) are here."""
    missing = missing_tools(tools)
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install jackd2)")
    sd, why = import_sounddevice()
    if sd is None:
        pytest.skip(why)
