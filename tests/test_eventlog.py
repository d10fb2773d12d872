"""Performances as event logs: a scripted live run recorded, then rendered from its log."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.core.clock import FixedClock
from engine.core.eventlog import EventLogError, EventRecorder, load_event_log
from engine.core.events import Event, EventQueue
from engine.core.space import build_registry
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.offline import render
from engine.stage.show import Show
from tests.fakes import FakeOutput

FPS = 10


class EnqueueDuringForward(torch.nn.Module):
    """Puts events on the queue during chosen forward passes (an input thread racing the model)."""

    def __init__(self, inner, queue, script):
        super().__init__()
        self.inner, self.queue, self.script, self.calls = inner, queue, script, 0

    def forward(self, z):
        for ev in self.script.get(self.calls, []):
            self.queue.put(ev)
        self.calls += 1
        return self.inner(z)


def scenes(scene_file):
    a = scene_file('name = "A"\n[path]\nbeats_per_key = 1\n', name="a.toml")
    b = scene_file('name = "B"\nseed = 5\n[path]\nkind = "walk"\nseconds_per_key = 0.5\n', name="b.toml")
    return [a, b]


def live_run(paths, log_path, frames=40):
    """A 'live' show on a FixedClock: events arrive between frames and during forward passes."""
    loaded = load_scenes([load_scene(p) for p in paths], torch.device("cpu"))
    reg, q, out = build_registry(), EventQueue(), FakeOutput()
    show = Show(loaded, reg, q, FrameRenderer(torch.device("cpu")), out, FixedClock(FPS))
    recorder = EventRecorder(log_path, fps=FPS, scenes=list(paths), tempo_source="internal")
    recorder.attach(show)
    between = {  # put after frame k is presented: applied at frame k+1, phase "model"
        2: [Event("set", "/deck/a/latent/2", 2.5, t=1.0, source="osc")],
        5: [Event("verb", "/tempo/tap", t=2.0, source="key")],
        7: [Event("verb", "/tempo/tap", t=2.25, source="key"), Event("set", "/master/brightness", 0.3, source="osc")],
        14: [Event("verb", "/show/next", source="osc")],
        30: [Event("set", "/nope", 1.0, source="osc"), Event("set", "/master/brightness", float("nan"), source="osc")],
    }
    during = {  # put during the forward pass of frame k: post params now, the rest next frame
        10: [
            Event("set", "/master/brightness", 0.0, source="osc"),
            Event("set", "/deck/a/latent/1", -2.0, source="osc"),
        ],
        12: [Event("set", "/master/brightness", 1.0, source="osc")],
        20: [Event("verb", "/show/blackout", source="midi")],
    }
    wrapped = EnqueueDuringForward(loaded[0].generator, q, during)  # one model, so one call count
    for sc in loaded:
        sc.generator = wrapped

    def script(s):
        for ev in between.get(s.frame_count - 1, []):
            q.put(ev)

    show.frame_hooks.insert(0, script)
    show.run(frames=frames)
    recorder.close(end_frame=show.frame_count)
    return out.frames, reg


def read_pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_recorded_performance_renders_frame_for_frame(scene_file, tmp_path):
    paths = scenes(scene_file)
    log_path = tmp_path / "perf.jsonl"
    live, live_reg = live_run(paths, log_path)
    assert live[9].max() > 0 and live[10].max() == 0  # brightness 0 arrived during frame 10's forward pass
    lines = [json.loads(x) for x in log_path.read_text().splitlines()]
    assert lines[0]["latent_stage_events"] == 1 and lines[0]["fps"] == FPS and lines[-1] == {"end_frame": 40}
    phases = [(e["address"], e["frame"], e["phase"]) for e in lines[1:-1]]
    assert ("/master/brightness", 10, "post") in phases and ("/deck/a/latent/1", 11, "model") in phases
    assert ("/show/blackout", 20, "post") in phases and ("/show/next", 15, "model") in phases

    log = load_event_log(log_path)
    assert log.frames == 40 and log.count == len(lines) - 2
    res = render([load_scene(p) for p in log.scenes], seconds=None, fps=FPS, out=f"{tmp_path / 'r'}/", events=log)
    rendered = read_pngs(tmp_path / "r")
    assert res.frames == 40 and len(rendered) == 40
    for k, (a, b) in enumerate(zip(live, rendered)):
        assert np.array_equal(a, b), f"frame {k} differs"

    # at another size: the same progression (same cuts to black, same pictures scaled)
    render(
        [load_scene(p) for p in log.scenes],
        seconds=None,
        fps=FPS,
        out=f"{tmp_path / 'big'}/",
        size=(128, 128),
        events=log,
    )
    big = read_pngs(tmp_path / "big")
    assert len(big) == 40 and big[0].shape == (128, 128, 3)
    for k, (a, b) in enumerate(zip(live, big)):
        small = b.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
        assert np.abs(small - a).mean() < 6.0, f"frame {k}"
        assert (a.max() == 0) == (b.max() == 0)


def test_bad_log_lines_name_file_and_line(tmp_path):
    header = json.dumps({"latent_stage_events": 1, "fps": 30, "scenes": ["a.toml"]})
    good = json.dumps(
        {
            "frame": 3,
            "phase": "model",
            "t": 1.0,
            "source": "osc",
            "kind": "set",
            "address": "/master/brightness",
            "value": 0.5,
        }
    )
    cases = [
        ("{not json", 1, "not valid JSON"),
        (json.dumps({"fps": 30}), 1, "header"),
        (header + "\n" + good + "\n[1, 2]", 3, "a JSON object"),
        (header + "\n" + good.replace('"model"', '"later"'), 2, "'phase'"),
        (header + "\n" + good.replace('"frame": 3', '"frame": -1'), 2, "'frame'"),
        (header + "\n" + good.replace('"set"', '"explode"'), 2, "'kind'"),
        (header + "\n" + good.replace("0.5}", "[1]}"), 2, "'value'"),
        (header + "\n" + good + "\n" + good.replace('"frame": 3', '"frame": 2'), 3, "comes after frame 3"),
        (header + "\n" + good + '\n{"end_frame": 2}', 3, "'end_frame'"),
        (header + "\n" + json.dumps({"phase": "model"}), 2, "'frame'"),
    ]
    for text, line, expected in cases:
        f = tmp_path / "bad.jsonl"
        f.write_text(text + "\n")
        with pytest.raises(EventLogError) as e:
            load_event_log(f)
        msg = str(e.value)
        assert str(f) in msg and f"line {line}" in msg and expected in msg, (text, msg)
    with pytest.raises(EventLogError, match="cannot read"):
        load_event_log(tmp_path / "missing.jsonl")


class BrokenFile:
    def __init__(self):
        self.writes = 0

    def write(self, text):
        self.writes += 1
        raise OSError(28, "No space left on device")

    def flush(self):
        pass

    def close(self):
        pass


def test_write_error_is_logged_once_and_the_show_goes_on(scene_file, tmp_path, caplog):
    loaded = load_scenes([load_scene(scene_file(""))], torch.device("cpu"))
    reg, q, out = build_registry(), EventQueue(), FakeOutput()
    show = Show(loaded, reg, q, FrameRenderer(torch.device("cpu")), out, FixedClock(FPS))
    recorder = EventRecorder(tmp_path / "log.jsonl", fps=FPS, scenes=[Path("x.toml")], tempo_source="internal")
    recorder.attach(show)
    broken = recorder._file = BrokenFile()
    for k in range(5):
        q.put(Event("set", "/master/brightness", 0.1 * k))
        show.run(frames=1)
    assert out.presents == 5 and reg.get("/master/brightness") == pytest.approx(0.4)
    assert broken.writes == 1 and recorder.failed and recorder.recorded == 0
    assert sum("write failed" in r.message for r in caplog.records) == 1
    recorder.close(end_frame=5)  # no second error


def test_recording_flushes_every_frame(scene_file, tmp_path):
    loaded = load_scenes([load_scene(scene_file(""))], torch.device("cpu"))
    q = EventQueue()
    show = Show(loaded, build_registry(), q, FrameRenderer(torch.device("cpu")), FakeOutput(), FixedClock(FPS))
    path = tmp_path / "log.jsonl"
    EventRecorder(path, fps=FPS, scenes=[Path("x.toml")], tempo_source="internal").attach(show)
    q.put(Event("set", "/master/speed", 2.0, t=5.0, source="osc"))
    show.run(frames=1)
    # not closed (as after a crash): the line is on disk already
    log = load_event_log(path)
    assert log.end_frame is None and log.frames == 1
    assert log.events[(0, "model")][0].value == 2.0 and log.events[(0, "model")][0].t == 5.0


def test_unwritable_log_is_a_startup_error(tmp_path):
    from engine.errors import StartupError

    with pytest.raises(StartupError, match="--record-events"):
        EventRecorder(tmp_path / "no" / "such" / "dir.jsonl", fps=30, scenes=[], tempo_source="internal")


@pytest.mark.integration
def test_cli_show_records_osc_and_render_replays_it(scene_file, tmp_path):
    """A headless show driven by real OSC, recorded; its render shows each change at its frame."""
    import subprocess
    import sys
    import threading

    from pythonosc.udp_client import SimpleUDPClient

    from engine.bench.ports import free_udp_port
    from tests.conftest import REPO, start_show

    port = free_udp_port()
    scene = scene_file("[path]\nseconds_per_key = 0.5\n")
    log_path = tmp_path / "gig.jsonl"
    command = [sys.executable, str(REPO / "run_show.py"), *"show --headless --fps 30 --seconds 3 --threads 1".split()]
    command += ["--scene", str(scene), "--osc-port", str(port), "--oscquery-port", "0"]
    command += ["--record-events", str(log_path)]
    proc, lines = start_show(command)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        gap = threading.Event()
        for address, value in [
            ("/master/brightness", 0.0),
            ("/master/brightness", 1.0),
            ("/deck/a/latent/2", 3.0),
            ("/master/brightness", 0.5),
        ]:
            gap.wait(0.4)  # spread over the show (a real wait: the show runs in real time)
            client.send_message(address, value)
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        proc.kill()
    log = load_event_log(log_path)
    at = {(e.address, e.value): frame for (frame, _), evs in log.events.items() for e in evs}
    assert len(at) == 4 and log.end_frame is not None
    out = tmp_path / "r"
    command = [sys.executable, str(REPO / "run_show.py"), *"-q render --size 128x128 --events".split()]
    command += [str(log_path), "--out", f"{out}/"]
    r = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    frames = read_pngs(out)
    assert len(frames) == log.end_frame and frames[0].shape == (128, 128, 3)
    dark, lit, half = at[("/master/brightness", 0.0)], at[("/master/brightness", 1.0)], at[("/master/brightness", 0.5)]
    assert frames[dark - 1].max() > 0 and frames[dark].max() == 0 and frames[lit - 1].max() == 0
    assert frames[lit].max() > 0
    assert frames[half].mean() < 0.75 * frames[half - 1].mean()  # dimmer from that very frame


def test_a_set_renders_at_another_frame_rate(scene_file, tmp_path):
    """Events keep their show time: a set recorded at 10 fps renders at 20 with each change
    at the same moment (frame k at 10 fps is frame 2k at 20)."""
    paths = scenes(scene_file)
    log_path = tmp_path / "perf.jsonl"
    live, _ = live_run(paths, log_path)
    log = load_event_log(log_path).at_fps(2 * FPS)
    assert log.frames == 80 and log.fps == 2 * FPS
    render([load_scene(p) for p in log.scenes], seconds=None, fps=2 * FPS, out=f"{tmp_path / 'r'}/", events=log)
    rendered = read_pngs(tmp_path / "r")
    assert len(rendered) == 80
    black_live = [k for k in range(40) if live[k].max() == 0]
    black = [k for k in range(80) if rendered[k].max() == 0]
    assert black_live[:3] == [10, 11, 24] and black[:5] == [20, 21, 22, 23, 49]  # brightness 0 from 1.0 to 1.2 s
    # The blackout fade (0.5 s) is black from 2.4 s live: from 2.45 s at 20 fps (its last step is shorter).
    assert black[4:] == list(range(49, 80))
    log10 = load_event_log(log_path)
    assert log10.at_fps(FPS) is log10


def test_a_two_deck_set_with_presets_renders_frame_for_frame(scene_file, tmp_path):
    """Deck scenes, the mixer (a fade and a quantised cut) and presets, recorded and rendered."""
    paths = scenes(scene_file)
    loaded = load_scenes([load_scene(p) for p in paths], torch.device("cpu"))
    from engine.core.space import build_space
    from engine.stage.presets import PresetBank

    space = build_space()
    q, out = EventQueue(), FakeOutput()
    bank = PresetBank(tmp_path / "presets", {}, write=False)
    show = Show(
        loaded, space.registry, q, FrameRenderer(torch.device("cpu")), out, FixedClock(FPS), space=space, presets=bank
    )
    log_path = tmp_path / "set.jsonl"
    recorder = EventRecorder(log_path, fps=FPS, scenes=list(paths), tempo_source="internal", presets=tmp_path / "p")
    recorder.attach(show)
    script = {
        2: [Event("verb", "/deck/b/scene", "B"), Event("set", "/mixer/fade_time", 1.0)],
        4: [Event("verb", "/preset/save", "start"), Event("verb", "/mixer/fade")],
        20: [Event("set", "/mixer/quantize", 4.0), Event("verb", "/mixer/cut")],
        30: [Event("set", "/preset/morph", 0.5), Event("verb", "/preset/recall", "start")],
        36: [Event("set", "/mixer/blend", 4.0), Event("set", "/mixer/crossfade", 0.5)],
    }
    show.frame_hooks.insert(0, lambda s: [q.put(ev) for ev in script.get(s.frame_count - 1, [])])
    show.run(frames=45)
    recorder.close(end_frame=show.frame_count)
    live = out.frames
    changes = [k for k in range(1, 45) if not np.array_equal(live[k], live[k - 1])]
    assert len(changes) > 20  # the fade, the cut, the morph and the blend all moved the picture
    log = load_event_log(log_path)
    assert log.presets == (tmp_path / "p").resolve()
    render([load_scene(p) for p in paths], seconds=None, fps=FPS, out=f"{tmp_path / 'r'}/", events=log)
    rendered = read_pngs(tmp_path / "r")
    assert len(rendered) == 45
    for k, (a, b) in enumerate(zip(live, rendered)):
        assert np.array_equal(a, b), f"frame {k} differs"
    assert not (tmp_path / "p").exists()  # the render kept the replayed save in memory
