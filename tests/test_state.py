"""Show state that survives a restart: snapshot, atomic save, restore, bad files."""

import json
import logging
import signal
import sys
import time

import pytest
import torch

from engine.core.clock import FixedClock
from engine.core.events import Event, EventQueue
from engine.core.space import build_space
from engine.files.scene import load_scene
from engine.files.setlist import load_setlist
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.presets import PresetBank
from engine.stage.show import Show
from engine.stage.state import StateSaver, restore, snapshot
from tests.conftest import REPO, start_show, two_scene_files
from tests.fakes import FakeOutput


def make_show(paths, setlist=None):
    scenes = load_scenes([load_scene(p) for p in paths], torch.device("cpu"))
    space, q = build_space(), EventQueue()
    bank = PresetBank(paths[0].parent / "presets", {}, write=False)
    show = Show(
        scenes,
        space.registry,
        q,
        FrameRenderer(torch.device("cpu")),
        FakeOutput(),
        FixedClock(10),
        space=space,
        presets=bank,
    )
    if setlist is not None:
        show.use_setlist(load_setlist(setlist))
    return show, space.registry, q


@pytest.fixture
def setup(tmp_path):
    paths = two_scene_files(tmp_path)
    setlist = tmp_path / "s.setlist.toml"
    setlist.write_text('dwell_seconds = 3\nfade_seconds = 1\n[[item]]\nscene = "a.toml"\n[[item]]\nscene = "b.toml"\n')
    return paths, setlist


def test_a_saved_state_resumes_params_decks_setlist_and_tempo(tmp_path, setup):
    paths, setlist = setup
    show, reg, q = make_show(paths, setlist)
    q.put(Event("set", "/deck/a/latent/3", 1.5))
    q.put(Event("set", "/tempo/bpm", 90.0))
    show.run(frames=45)  # 4.5 s: item 2 (b) since 3 s, faded in by 4 s
    state = snapshot(show)
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert state["setlist"]["item"] == 1 and state["setlist"]["played_s"] == pytest.approx(1.4)

    again, reg2, _ = make_show(paths, setlist)
    assert restore(again, tmp_path / "state.json")
    again.run(frames=1)
    assert again.autopilot.index == 1 and again.decks[again.front].scene_name == "b"
    assert reg2.get("/deck/a/latent/3") == 1.5 and reg2.get("/tempo/bpm") == 90.0
    assert [d.scene_name for d in again.decks] == [d.scene_name for d in show.decks]
    assert again.decks[1].playing.tau == pytest.approx(show.decks[1].playing.tau, abs=0.05)
    assert again.tempo.beat == pytest.approx(show.tempo.beat, abs=0.2)
    again.run(frames=14)  # the rest of item 2's 3 s dwell (1.4 s played): the next item starts
    assert again.autopilot.changes == 0
    again.run(frames=2)
    assert again.autopilot.changes == 1 and again.autopilot.index == 0


@pytest.mark.parametrize(
    "text",
    [
        "not json at all {",
        '{"some": "other file"}',
        '{"latent_stage_state": 1, "params": {"/a": "x"}, "decks": {}, "tempo": {"bpm": 1, "beat": 0}}',
        '{"latent_stage_state": 1, "params": {}, "decks": {"a": {"scene": 3}}, "tempo": {"bpm": 1, "beat": 0}}',
        '{"latent_stage_state": 1, "params": {}, "decks": {}, "tempo": {"bpm": NaN, "beat": 0}}',
        '{"latent_stage_state": 1, "params": {}, "decks": {}, "tempo": {"bpm": 1, "beat": 0}, "setlist": 4}',
    ],
)
def test_a_bad_state_starts_fresh_says_so_once_and_keeps_the_file_aside(tmp_path, setup, caplog, text):
    paths, setlist = setup
    bad = tmp_path / "state.json"
    bad.write_text(text)
    show, reg, _ = make_show(paths, setlist)
    with caplog.at_level(logging.WARNING):
        assert not restore(show, bad)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1 and "starting fresh" in caplog.text
    assert not bad.exists() and [p.read_text() for p in tmp_path.glob("state.json.bad-*")] == [text]
    show.run(frames=2)
    assert show.autopilot.index == 0


def test_no_state_yet_is_a_fresh_start(tmp_path, setup, caplog):
    show, *_ = make_show(setup[0], setup[1])
    with caplog.at_level(logging.WARNING):
        assert not restore(show, tmp_path / "none.json")
    assert not caplog.records


def test_the_saver_writes_on_its_thread_and_at_close(tmp_path, setup):
    show, reg, q = make_show(setup[0])
    clock = [0.0]
    saver = StateSaver(tmp_path / "st" / "state.json", every_s=5.0, now=lambda: clock[0])
    show.frame_hooks.append(saver)
    show.run(frames=3)
    reg.set("/master/brightness", 0.25)
    saver.close(show)
    assert json.loads((tmp_path / "st" / "state.json").read_text())["params"]["/master/brightness"] == 0.25
    assert saver.saved >= 2 and saver.errors == 0


def test_an_unwritable_state_is_counted_not_fatal(tmp_path, setup):
    show, *_ = make_show(setup[0])
    (tmp_path / "file").write_text("")
    saver = StateSaver(tmp_path / "file" / "state.json")  # a folder that is a file
    show.frame_hooks.append(saver)
    show.run(frames=2)
    saver.close(show)
    assert saver.errors >= 1 and show.hook_errors == 0


@pytest.mark.integration
def test_a_killed_show_resumes_at_its_setlist_item(tmp_path, setup):
    """kill -9 mid-set; the next start with --resume-state goes on with the same item and params."""
    paths, setlist = setup
    state = tmp_path / "state.json"
    base = [sys.executable, str(REPO / "run_show.py"), "show", "--headless", "--threads", "1", "--no-audio"]
    base += ["--setlist", str(setlist), "--osc-port", "0", "--oscquery-port", "0", "--presets", str(tmp_path / "p")]
    proc, lines = start_show([*base, "--state", str(state), "--set", "/master/speed=0.7"])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the show runs in real time: wait for item 2's save
            if state.exists() and json.loads(state.read_text()).get("setlist", {}).get("item") == 1:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    assert json.loads(state.read_text())["setlist"]["item"] == 1, "".join(lines)
    again, lines2 = start_show([*base, "--resume-state", str(state), "--state", str(state), "--seconds", "1"])
    assert again.wait(60) == 0
    text = "".join(lines2)
    assert "resumed from" in text and "resumed at item 2/2 b" in text, text
    assert json.loads(state.read_text())["params"]["/master/speed"] == 0.7
