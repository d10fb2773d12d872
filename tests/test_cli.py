"""Startup errors through the real CLI: one clear line naming the culprit, exit 2."""

import json
import pickle
from pathlib import Path

import pytest

from engine.bench.ports import free_tcp_port, free_udp_port
from run_show import main
from tests.conftest import make_tiny_gan


def run_cli(capsys, *argv):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def expect_error(capsys, argv, *fragments):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, err
    return err


def test_scene_naming_missing_model(capsys, scene_file):
    f = scene_file(model="gone.safetensors")
    expect_error(
        capsys, ["render", "--scene", str(f), "--seconds", "1", "--out", "x.mp4"], str(f), "'model'", "gone.safetensors"
    )


def test_typo_in_key(capsys, scene_file):
    f = scene_file("[path]\nseconds_per_kee = 2\n")
    expect_error(capsys, ["show", "--headless", "--scene", str(f)], str(f), "path.seconds_per_kee")


def test_out_of_range_value(capsys, scene_file):
    f = scene_file("[params]\ntruncation = 9\n")
    expect_error(capsys, ["show", "--scene", str(f)], str(f), "params.truncation", "0.0 to 2.0")


@pytest.mark.parametrize(
    "body, key",
    [
        ("seed = 1e400\n", "'seed'"),
        ("seed = " + "9" * 400 + "\n", "'seed'"),
        ("[path]\nseconds_per_key = " + "9" * 400 + "\n", "'path.seconds_per_key'"),
        ("[path]\nkeys = " + "9" * 400 + "\n", "'path.keys'"),
        ("[params]\nspeed = { default = " + "9" * 400 + " }\n", "'params.speed.default'"),
        ("[synth]\ncutoff = nan\n", "'synth.cutoff'"),
    ],
)
def test_huge_and_non_finite_numbers_are_one_line(capsys, tmp_path, scene_file, body, key):
    """Integers no float holds once ended in an OverflowError traceback (patches said it in one line)."""
    f = scene_file(body, name="bad.toml")
    expect_error(capsys, ["render", "--scene", str(f), "--seconds", "1", "--out", str(tmp_path / "x.mp4")], str(f), key)


def test_huge_notes_value_is_one_line(capsys, tmp_path, seq_scene):
    f = seq_scene(notes="temperature = " + "9" * 400 + "\n")
    expect_error(
        capsys,
        ["render", "--scene", str(f), "--seconds", "1", "--out", str(tmp_path / "x.mp4")],
        str(f),
        "'notes.temperature'",
        "a finite number",
    )


def test_malformed_toml(capsys, tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("model = [\n")
    expect_error(capsys, ["show", "--scene", str(f)], str(f), "not valid TOML")


def test_truncated_model_file(capsys, tmp_path, scene_file):
    m = make_tiny_gan(tmp_path / "cut.safetensors")
    data = m.read_bytes()
    m.write_bytes(data[: len(data) // 2])
    f = scene_file(model="cut.safetensors")
    expect_error(
        capsys, ["render", "--scene", str(f), "--seconds", "1", "--out", str(tmp_path / "o.mp4")], "cut.safetensors"
    )


def test_pickle_renamed_to_safetensors(capsys, tmp_path, scene_file):
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    f = scene_file(model="evil.safetensors")
    expect_error(
        capsys, ["render", "--scene", str(f), "--seconds", "1", "--out", str(tmp_path / "o.mp4")], "evil.safetensors"
    )


def test_display_that_does_not_exist(capsys, monkeypatch, scene_file):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    expect_error(capsys, ["show", "--scene", str(scene_file("")), "--display", "7"], "--display 7")


def test_bad_flags_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["render", "--seconds", "1", "--out", "x.mp4", "--size", "big"])
    assert e.value.code == 2
    assert "expected WxH" in capsys.readouterr().err


def test_bad_out_suffix(capsys, scene_file):
    f = scene_file("")
    expect_error(capsys, ["render", "--scene", str(f), "--seconds", "1", "--out", "movie.avi"], "--out")


@pytest.mark.integration  # a real-time show with its OSC and OSCQuery servers
def test_headless_show_writes_stats(capsys, tmp_path, scene_file):
    stats = tmp_path / "s.json"
    code, out, err = run_cli(
        capsys,
        "show",
        "--headless",
        "--scene",
        str(scene_file("")),
        "--seconds",
        "1.5",
        "--stats",
        str(stats),
        "--fps",
        "30",
        "--osc-port",
        str(free_udp_port()),
        "--oscquery-port",
        str(free_tcp_port()),
    )
    assert code == 0, err
    s = json.loads(stats.read_text())
    assert set(s) >= {"frames", "seconds", "fps", "frame_ms", "late_frames"}
    assert set(s["frame_ms"]) == {"p50", "p95", "p99", "max"}
    # input counters are there even when an input is off (no --midi-in here)
    assert {"received", "dropped", "malformed"} <= set(s["osc"]) and {"received", "dropped"} <= set(s["midi"])
    assert isinstance(s["queue_max"], int)
    # paced to --fps: never faster (how much slower depends on the machine's load; see `bench`)
    assert s["frames"] >= 2 and 0 < s["fps"] <= 31
    assert "fps" in out


@pytest.mark.integration  # the preview goes through ffmpeg
def test_no_display_renders_a_file_instead(capsys, tmp_path, monkeypatch, scene_file):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "show", "--scene", str(scene_file("")), "--seconds", "1.5")
    assert code == 0, err
    assert "no display found" in out and "rendering 1.5 s" in out
    path = Path(out.strip().splitlines()[-1].split()[1])
    assert path.is_file() and path.stat().st_size > 1000
    assert "(45 frames," in out  # --seconds is kept: 1.5 s at the preview's 30 fps


def test_no_display_still_checks_http_and_says_it_is_not_served(capsys, tmp_path, monkeypatch, scene_file):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "show", "--scene", str(scene_file("")), "--seconds", "0.2", "--http", "nonsense")
    assert code != 0 and "--http 'nonsense': expected HOST:PORT" in err and not (tmp_path / "out").exists()


def test_render_events_flag_errors(capsys, tmp_path, scene_file):
    log = tmp_path / "gig.jsonl"
    head = json.dumps({"latent_stage_events": 1, "fps": 30, "scenes": [str(scene_file(""))]})
    log.write_text(head + '\n{"frame": "x", "phase": "post", "kind": "set", "address": "/a"}\n')
    expect_error(capsys, ["render", "--events", str(log), "--out", "x.mp4"], str(log), "line 2", "'frame'")
    expect_error(capsys, ["render", "--out", "x.mp4"], "--seconds")


@pytest.mark.integration  # PortAudio and rtmidi open the machine's real audio and MIDI systems
def test_devices_lists_audio_and_midi_even_with_neither(capsys):
    code, out, _ = run_cli(capsys, "devices")
    assert code == 0 and "audio" in out and "MIDI" in out


@pytest.mark.parametrize("value", ["/mixer/crossfade", "/mixer/crossfade=loud", "mixer=1", "/a=nan"])
def test_set_flag_errors(capsys, value):
    from engine.flags import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["show", "--set", value])
    assert "argument --set: expected ADDRESS=NUMBER" in capsys.readouterr().err


def test_the_log_file_rotates_and_stays_bounded(tmp_path, monkeypatch):
    import logging

    import engine.cli as cli

    monkeypatch.setattr(cli, "LOG_BYTES", 2000)
    root = logging.getLogger()
    before = list(root.handlers)
    cli._rotating_log(tmp_path / "logs" / "show.log")
    added = [h for h in root.handlers if h not in before]
    try:
        for i in range(2000):
            logging.getLogger("test.rotate").warning("line %d of a long unattended show", i)
    finally:
        for h in added:
            root.removeHandler(h)
            h.close()
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["show.log", *(f"show.log.{i}" for i in range(1, cli.LOG_BACKUPS + 1))]
    assert all((tmp_path / "logs" / f).stat().st_size <= 2100 for f in files)
