"""The operator HUD: its text from the show's state, its window on the dummy video driver."""

import logging

import pygame
import pytest
import torch

from engine.core.events import Event
from engine.core.stats import FrameStats
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.hud import WarningTail, frame_graph, hud_lines
from tests.fakes import built_show


@pytest.fixture
def show(scene_file):
    a = scene_file('name = "A"\n', name="a.toml")
    b = scene_file('name = "B"\n', name="b.toml")
    s = built_show(load_scenes([load_scene(p) for p in (a, b)], torch.device("cpu")))
    s.stats = FrameStats(60.0)
    for i in range(30):
        s.stats.presented(i / 60.0 + (0.05 if i == 20 else 0.0))
    return s


def test_the_hud_says_what_the_operator_needs(show):
    show.registry.set("/mixer/crossfade", 0.5, immediate=True)
    show.run(frames=3)
    controls = {
        "osc": {"received": 12, "dropped": 1, "malformed": 2, "clients": {"10.0.0.5:9000": 11}},
        "midi": {"received": 40, "dropped": 0, "ports": {"nanoKONTROL2": 40}},
    }
    text = "\n".join(hud_lines(show, controls, ["12:00:00 no scene 'x'"]))
    for words in ("fps", "deck a: A", "deck b: B", "crossfade 0.50", "|", "BPM", "beat", "OSC: 12 received"):
        assert words in text, text
    assert "10.0.0.5:9000: 11" in text and "nanoKONTROL2: 40" in text and "no scene 'x'" in text
    controls["midi"]["ports"] = ["port one"]  # the MIDI control lists names
    assert "  port one" in hud_lines(show, controls, [])
    intervals, target = frame_graph(show)
    assert len(intervals) >= 29 and target == pytest.approx(1000 / 60) and max(intervals) > 60


def test_warning_tail_keeps_the_last_few():
    tail = WarningTail(keep=2)
    logger = logging.getLogger("test.hud")
    logger.addHandler(tail)
    try:
        logger.info("not kept")
        for i in range(3):
            logger.warning("warning %d\nsecond line", i)
    finally:
        logger.removeHandler(tail)
    assert [line.split(" ", 1)[1] for line in tail.lines()] == ["warning 1", "warning 2"]


def test_hud_window_draws_and_hides_on_its_close_button(show):
    from engine.devices.hud import HudWindow
    from engine.devices.window import VideoOutput

    out = VideoOutput((64, 64), headless=True)
    hud = HudWindow(lambda: {}, visible=True, rate=1000.0)
    try:
        hud.frame_hook(show)
        assert hud.draws == 1 and hud.visible
        pygame.event.post(pygame.event.Event(pygame.WINDOWCLOSE, window=hud._window))
        assert out.poll() == ["hud"]
        hud.toggle(Event("verb", "/show/hud"))
        assert not hud.visible
        hud.frame_hook(show)
        assert hud.draws == 1
    finally:
        hud.close()
        out.close()


def test_the_hud_shows_the_setlist(show, tmp_path):
    from engine.files.setlist import load_setlist

    path = tmp_path / "s.setlist.toml"
    path.write_text('name = "night"\n[[item]]\nscene = "a.toml"\n[[item]]\nscene = "b.toml"\n')
    show.use_setlist(load_setlist(path))
    show.run(frames=1)
    assert "setlist 'night' (sequence): item 1/2 a" in "\n".join(hud_lines(show, {}, []))
