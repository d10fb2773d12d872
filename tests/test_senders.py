"""Frame senders (engine.devices.senders): the newest-wins mailbox with a fake sink, the --send
flag, the missing-extra messages, each optional adapter against a fake module, and (integration)
real MPEG-TS over UDP from the bundled ffmpeg."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from engine.devices import senders
from engine.devices.senders import FfmpegSink, Sender, ffmpeg_command, open_senders, parse_send, send_hook
from engine.errors import StartupError
from engine.flags import build_parser, show_config

WAIT = 10.0  # seconds any wait on the sender thread may take before the test fails (never reached)


class FakeSink:
    """Records what a Sender's thread does; `gate` holds send() until set (a busy receiver)."""

    def __init__(self, fail_sends: int = 0) -> None:
        self.calls: list[tuple] = []
        self.frames: list[np.ndarray] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # send() started
        self.fail_sends = fail_sends
        self.threads: set[str] = set()

    def open(self, width: int, height: int) -> None:
        self.threads.add(threading.current_thread().name)
        self.calls.append(("open", width, height))

    def send(self, frame: np.ndarray) -> None:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(WAIT)
        if self.fail_sends:
            self.fail_sends -= 1
            raise RuntimeError("receiver went away")
        self.frames.append(frame.copy())
        self.calls.append(("send",))

    def close(self) -> None:
        self.calls.append(("close",))


def frame(value: int, h: int = 4, w: int = 6) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


# -- the mailbox --------------------------------------------------------------------------


def test_newest_wins_while_the_sink_is_busy_and_drops_are_counted():
    sink = FakeSink()
    sink.gate.clear()
    sender = Sender(sink, "fake")
    sender.offer(frame(0))
    assert sink.entered.wait(WAIT)  # the thread is inside send(frame 0), held there
    for v in (1, 2, 3):
        sender.offer(frame(v))  # 1 and 2 are replaced while they wait: newest wins
    sink.gate.set()
    assert sender.wait_idle(WAIT)
    assert [int(f[0, 0, 0]) for f in sink.frames] == [0, 3]
    assert sender.stats() == {"send": "fake", "offered": 4, "sent": 2, "dropped": 2, "failed": 0, "errors": 0}
    sender.close()


def test_offer_copies_the_frame_so_the_loop_may_overwrite_its_buffer():
    sink = FakeSink()
    sink.gate.clear()
    sender = Sender(sink, "fake")
    buf = frame(7)
    sender.offer(buf)
    assert sink.entered.wait(WAIT)
    buf[...] = 9  # the loop draws the next frame into the same buffer
    sink.gate.set()
    sender.close()
    assert int(sink.frames[0].max()) == 7


def test_close_delivers_the_waiting_frame_closes_the_sink_and_joins_the_thread():
    sink = FakeSink()
    sink.gate.clear()
    sender = Sender(sink, "fake")
    sender.offer(frame(1))
    assert sink.entered.wait(WAIT)
    sender.offer(frame(2))
    sink.gate.set()
    sender.close()
    assert not sender.alive
    assert [int(f[0, 0, 0]) for f in sink.frames] == [1, 2]
    assert sink.calls[0] == ("open", 6, 4) and sink.calls[-1] == ("close",)
    assert sink.threads == {"send fake"}  # open, send and close all ran on the sender's thread
    sender.offer(frame(3))  # after close: ignored, not an error
    assert sender.stats()["offered"] == 2


def test_close_without_any_frame_never_opens_the_sink():
    sink = FakeSink()
    sender = Sender(sink, "fake")
    sender.close()
    assert not sender.alive and sink.calls == []


def test_a_stuck_sink_is_aborted_at_close():
    sink = FakeSink()
    sink.gate.clear()
    aborted = []
    sink.abort = lambda: (aborted.append(True), sink.gate.set())
    sender = Sender(sink, "fake")
    sender.offer(frame(1))
    assert sink.entered.wait(WAIT)
    sender.close(timeout=0.05)
    assert aborted == [True] and not sender.alive


def test_a_failing_sink_is_logged_once_counted_and_reopened_after_a_back_off(caplog):
    now = [100.0]
    sink = FakeSink(fail_sends=2)
    sender = Sender(sink, "fake", clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="engine.devices.senders"):
        sender.offer(frame(1))
        assert sender.wait_idle(WAIT)
        assert sender.errors == 1 and sink.calls == [("open", 6, 4), ("close",)]
        now[0] += 0.5  # inside the 1 s back-off: the frame is counted, the sink left alone
        sender.offer(frame(2))
        assert sender.wait_idle(WAIT)
        assert sender.failed == 2 and len(sink.calls) == 2
        now[0] += 1.0  # reopened; fails again: the back-off doubles
        sender.offer(frame(3))
        assert sender.wait_idle(WAIT)
        now[0] += 1.5
        sender.offer(frame(4))
        assert sender.wait_idle(WAIT)
        assert sink.calls.count(("open", 6, 4)) == 2 and sender.errors == 2
        now[0] += 1.0  # 2.5 s after the second failure: open again, and this time it works
        sender.offer(frame(5))
        assert sender.wait_idle(WAIT)
    sender.close()
    assert [int(f[0, 0, 0]) for f in sink.frames] == [5]
    assert sender.stats() | {"send": "x"} == {
        "send": "x",
        "offered": 5,
        "sent": 1,
        "dropped": 0,
        "failed": 4,
        "errors": 2,
    }
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "receiver went away" in warnings[0].getMessage()


def test_the_stream_keeps_its_first_size_and_other_sizes_are_scaled_to_it():
    sink = FakeSink()
    sender = Sender(sink, "fake")
    sender.offer(frame(1, h=2, w=3))
    assert sender.wait_idle(WAIT)
    big = np.arange(4 * 6, dtype=np.uint8).reshape(4, 6, 1).repeat(3, axis=2)  # a scene twice the size
    sender.offer(big)
    sender.close()
    assert sink.calls.count(("open", 3, 2)) == 1
    assert sink.frames[1].shape == (2, 3, 3)
    np.testing.assert_array_equal(sink.frames[1][..., 0], big[::2, ::2, 0])


def test_offer_refuses_a_frame_that_is_not_rgb_bytes():
    sender = Sender(FakeSink(), "fake")
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        sender.offer(np.zeros((4, 4, 3), np.float32))
    sender.close()


def test_the_frame_hook_offers_the_presented_frame_to_every_sender():
    sinks = [FakeSink(), FakeSink()]
    out = [Sender(s, f"fake{i}") for i, s in enumerate(sinks)]
    show = types.SimpleNamespace(output=types.SimpleNamespace(frame_buffer=frame(4)))
    send_hook(out)(show)
    senders.close_senders(out)
    assert [int(s.frames[0][0, 0, 0]) for s in sinks] == [4, 4]
    assert [s["sent"] for s in senders.senders_stats(out)["send"]] == [1, 1]
    assert senders.senders_stats([]) == {}


def test_the_hook_in_a_real_show_loop_sends_every_presented_frame(scene_file):
    from tests.test_show import make_show

    show, out, _, _ = make_show([scene_file("[path]\nseconds_per_key = 0.5\n")])
    sink = FakeSink()
    sender = Sender(sink, "fake")
    show.frame_hooks.append(send_hook([sender]))  # the line live.py adds
    for _ in range(3):
        show.run(frames=1)
        assert sender.wait_idle(WAIT)  # one at a time, so none is dropped
    sender.close()
    assert len(sink.frames) == 3 and not np.array_equal(sink.frames[0], sink.frames[2])  # the picture moves
    for sent, shown in zip(sink.frames, out.frames):
        np.testing.assert_array_equal(sent, shown)


# -- specs and the flag -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, target",
    [
        ("udp://127.0.0.1:5000", "udp", "udp://127.0.0.1:5000"),
        ("UDP://239.0.0.1:1234?ttl=2", "udp", "udp://239.0.0.1:1234?ttl=2"),
        ("udp://[::1]:5000", "udp", "udp://[::1]:5000"),
        ("srt://studio.local:9000?mode=listener", "srt", "srt://studio.local:9000?mode=listener"),
        ("ndi", "ndi", "Latent Stage"),
        ("ndi:Main Out", "ndi", "Main Out"),
        ("syphon", "syphon", "Latent Stage"),
        ("spout:LS", "spout", "LS"),
        ("v4l2", "v4l2", ""),
        ("v4l2:/dev/video10", "v4l2", "/dev/video10"),
    ],
)
def test_send_specs(text, kind, target):
    spec = parse_send(text)
    assert (spec.kind, spec.target) == (kind, target)


@pytest.mark.parametrize(
    "text",
    [
        "hdmi",
        "udp://127.0.0.1",
        "udp://:5000",
        "udp://host:0",
        "udp://host:70000",
        "rtp://host:5000",
        "ndi:",
        "v4l2:cam",
    ],
)
def test_bad_send_specs_say_what_was_expected(text):
    with pytest.raises(ValueError, match="expected"):
        parse_send(text)


def test_the_send_flag_is_repeatable_and_lands_in_the_show_config():
    args = build_parser().parse_args(["show", "--send", "udp://127.0.0.1:5000", "--send", "ndi:Main"])
    assert show_config(args, device="cpu").send == ("udp://127.0.0.1:5000", "ndi:Main")
    assert show_config(build_parser().parse_args(["show"]), device="cpu").send == ()


def test_a_bad_send_flag_is_one_error_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["show", "--send", "hdmi"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "argument --send: expected ndi, syphon, spout" in err and "udp://HOST:PORT" in err and "'hdmi'" in err


# -- startup checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, platform, module, extra",
    [
        ("ndi", "linux", "cyndilib", "ndi"),
        ("syphon", "darwin", "syphon", "syphon"),
        ("spout:X", "win32", "SpoutGL", "spout"),
        ("v4l2", "linux", "pyvirtualcam", "v4l2"),
    ],
)
def test_a_missing_extra_is_one_startup_message(monkeypatch, spec, platform, module, extra):
    monkeypatch.setattr(senders, "_platform", lambda: platform)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(StartupError) as e:
        open_senders((spec,), 60.0)
    assert str(e.value).startswith(f"--send {spec} needs the {extra} extra: pip install 'latent-stage[{extra}]'")


@pytest.mark.parametrize("spec, os_name", [("syphon", "macOS"), ("spout", "Windows"), ("v4l2", "Linux")])
def test_a_sender_of_another_platform_is_a_startup_error(monkeypatch, spec, os_name):
    monkeypatch.setattr(senders, "_platform", lambda: "sunos5")
    with pytest.raises(StartupError, match=f"--send {spec}: {spec} exists on {os_name} only"):
        open_senders((spec,), 60.0)


def test_v4l2_needs_a_loopback_device(monkeypatch, tmp_path):
    monkeypatch.setattr(senders, "_platform", lambda: "linux")
    monkeypatch.setitem(sys.modules, "pyvirtualcam", types.ModuleType("pyvirtualcam"))
    monkeypatch.setattr(senders, "V4L2_SYSFS", tmp_path)
    with pytest.raises(StartupError, match="no v4l2loopback device"):
        open_senders(("v4l2",), 30.0)
    with pytest.raises(StartupError, match="/dev/video99: no such device"):
        open_senders(("v4l2:/dev/video99",), 30.0)


def test_bad_or_repeated_specs_fail_before_any_thread_starts(monkeypatch):
    monkeypatch.setattr(senders, "_ffmpeg_exe", lambda spec: "ffmpeg")
    before = threading.active_count()
    with pytest.raises(StartupError, match="--send: expected"):
        open_senders(("udp://127.0.0.1:5000", "hdmi"), 60.0)
    with pytest.raises(StartupError, match="the same output twice"):
        open_senders(("udp://127.0.0.1:5000", "udp://127.0.0.1:5000"), 60.0)
    monkeypatch.setitem(sys.modules, "cyndilib", None)
    with pytest.raises(StartupError, match="ndi extra"):
        open_senders(("udp://127.0.0.1:5000", "ndi"), 60.0)
    assert threading.active_count() == before


def test_udp_opens_an_ffmpeg_sink_that_starts_nothing_before_the_first_frame(monkeypatch):
    monkeypatch.setattr(senders, "_ffmpeg_exe", lambda spec: "/opt/ffmpeg")
    (sender,) = open_senders(("udp://127.0.0.1:5000",), 60.0)
    assert isinstance(sender._sink, FfmpegSink) and sender._sink.url == "udp://127.0.0.1:5000"
    sender.close()  # no frame: no process was started (the autouse guard would fail the test)


def test_the_ffmpeg_command_sends_mpeg_ts_of_raw_rgb_frames():
    cmd = ffmpeg_command("ffmpeg", "udp://127.0.0.1:5000", 320, 180, 60.0, "libx264")
    text = " ".join(cmd)
    assert "-f rawvideo -pix_fmt rgb24 -s 320x180 -framerate 60" in text
    assert "-c:v libx264 -preset ultrafast -tune zerolatency" in text and "-g 60" in text
    assert cmd[-3:] == ["-f", "mpegts", "udp://127.0.0.1:5000?pkt_size=1316"]
    assert ffmpeg_command("ffmpeg", "udp://h:1?ttl=2", 2, 2, 30, "mpeg4")[-1] == "udp://h:1?ttl=2&pkt_size=1316"
    assert "-c:v mpeg4" in " ".join(ffmpeg_command("ffmpeg", "srt://h:1", 2, 2, 29.97, "mpeg4"))
    assert ffmpeg_command("ffmpeg", "srt://h:1", 2, 2, 30, "libx264")[-1] == "srt://h:1"


# -- the optional adapters, against fake modules ------------------------------------------


def fake_modules(monkeypatch, modules: dict[str, dict]) -> None:
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)


def send_two_frames(spec: str, fps: float = 60.0) -> np.ndarray:
    """Open `spec`, offer two 4x6 frames (the second waited for), close; the frame sent last."""
    (sender,) = open_senders((spec,), fps)
    sender.offer(frame(1))
    assert sender.wait_idle(WAIT)
    last = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    sender.offer(last)
    sender.close()
    assert sender.stats()["sent"] == 2 and sender.errors == 0
    return last


def test_ndi_adapter_drives_cyndilib(monkeypatch):
    calls: list[tuple] = []

    class VideoSendFrame:
        def __getattr__(self, name):
            return lambda *a: calls.append((name, *a))

    class NdiSender:
        def __init__(self, name, clock_video=True):
            calls.append(("Sender", name, clock_video))

        def set_video_frame(self, vf):
            calls.append(("set_video_frame", type(vf).__name__))

        def open(self):
            calls.append(("open",))

        def write_video(self, data):
            calls.append(("write_video", data.copy()))
            return True

        def close(self):
            calls.append(("close",))

    fourcc = types.SimpleNamespace(RGBX="RGBX")
    fake_modules(
        monkeypatch,
        {
            "cyndilib": {},
            "cyndilib.sender": {"Sender": NdiSender},
            "cyndilib.video_frame": {"VideoSendFrame": VideoSendFrame},
            "cyndilib.wrapper": {},
            "cyndilib.wrapper.ndi_structs": {"FourCC": fourcc},
        },
    )
    last = send_two_frames("ndi:Main Out", fps=59.94)
    names = [c[0] for c in calls]
    assert names == [
        "set_resolution",
        "set_frame_rate",
        "set_fourcc",
        "Sender",
        "set_video_frame",
        "open",
        "write_video",
        "write_video",
        "close",
    ]
    assert calls[0] == ("set_resolution", 6, 4) and calls[2] == ("set_fourcc", "RGBX")
    assert calls[1][1].numerator == 60000 and calls[1][1].denominator == 1001
    assert calls[3] == ("Sender", "Main Out", False)
    data = calls[7][1]
    assert data.ndim == 1 and data.size == 4 * 6 * 4  # RGBX, flat
    np.testing.assert_array_equal(data.reshape(4, 6, 4)[..., :3], last)
    assert (data.reshape(4, 6, 4)[..., 3] == 255).all()


@pytest.mark.parametrize(
    "fps, fraction", [(60.0, (60, 1)), (59.94, (60000, 1001)), (23.976, (24000, 1001)), (12.5, (25, 2))]
)
def test_ndi_frame_rates(fps, fraction):
    rate = senders.frame_rate(fps)
    assert (rate.numerator, rate.denominator) == fraction


def test_v4l2_adapter_drives_pyvirtualcam(monkeypatch, tmp_path):
    calls: list[tuple] = []

    class Camera:
        def __init__(self, width, height, fps, *, fmt, device, backend):
            calls.append(("Camera", width, height, fps, fmt, device, backend))

        def send(self, f):
            calls.append(("send", f.copy()))

        def close(self):
            calls.append(("close",))

    fake_modules(monkeypatch, {"pyvirtualcam": {"Camera": Camera, "PixelFormat": types.SimpleNamespace(RGB="RGB")}})
    monkeypatch.setattr(senders, "_platform", lambda: "linux")
    device = tmp_path / "video7"
    device.touch()
    last = send_two_frames(f"v4l2:{device}", fps=30.0)
    assert calls[0] == ("Camera", 6, 4, 30.0, "RGB", str(device), "v4l2loopback")
    assert [c[0] for c in calls] == ["Camera", "send", "send", "close"]
    np.testing.assert_array_equal(calls[2][1], last)


def test_spout_adapter_drives_spoutgl(monkeypatch):
    calls: list[tuple] = []

    class SpoutSender:
        def setSenderName(self, name):
            calls.append(("setSenderName", name))

        def sendImage(self, buf, width, height, gl_format, invert, fbo):
            calls.append(("sendImage", np.array(buf), width, height, gl_format, invert, fbo))
            return True

        def setFrameSync(self, name):
            calls.append(("setFrameSync", name))

        def releaseSender(self):
            calls.append(("releaseSender",))

    fake_modules(monkeypatch, {"SpoutGL": {"SpoutSender": SpoutSender}})
    monkeypatch.setattr(senders, "_platform", lambda: "win32")
    last = send_two_frames("spout")
    assert [c[0] for c in calls] == [
        "setSenderName",
        "sendImage",
        "setFrameSync",
        "sendImage",
        "setFrameSync",
        "releaseSender",
    ]
    assert calls[0] == ("setSenderName", "Latent Stage") and calls[2] == ("setFrameSync", "Latent Stage")
    _, buf, width, height, gl_format, invert, fbo = calls[3]
    assert (width, height, gl_format, invert, fbo) == (6, 4, 0x1907, False, 0)  # GL_RGB
    np.testing.assert_array_equal(buf, last)


def test_syphon_adapter_drives_syphon_python(monkeypatch):
    calls: list[tuple] = []

    class SyphonMetalServer:
        device = "metal-device"

        def __init__(self, name):
            calls.append(("SyphonMetalServer", name))

        def publish_frame_texture(self, texture):
            calls.append(("publish_frame_texture", texture))

        def stop(self):
            calls.append(("stop",))

    def create_mtl_texture(device, width, height):
        calls.append(("create_mtl_texture", device, width, height))
        return "texture"

    def copy_image_to_mtl_texture(image, texture):
        calls.append(("copy", image.copy(), texture))

    fake_modules(
        monkeypatch,
        {
            "syphon": {"SyphonMetalServer": SyphonMetalServer},
            "syphon.utils": {},
            "syphon.utils.raw": {"create_mtl_texture": create_mtl_texture},
            "syphon.utils.numpy": {"copy_image_to_mtl_texture": copy_image_to_mtl_texture},
        },
    )
    monkeypatch.setattr(senders, "_platform", lambda: "darwin")
    last = send_two_frames("syphon:VJ")
    assert calls[:2] == [("SyphonMetalServer", "VJ"), ("create_mtl_texture", "metal-device", 6, 4)]
    assert [c[0] for c in calls[2:]] == ["copy", "publish_frame_texture", "copy", "publish_frame_texture", "stop"]
    rgba = calls[4][1]
    assert rgba.shape == (4, 6, 4) and (rgba[..., 3] == 255).all()
    np.testing.assert_array_equal(rgba[..., :3], last)


# -- real ffmpeg (integration) ------------------------------------------------------------


def moving_pattern(i: int, h: int = 96, w: int = 160) -> np.ndarray:
    """Smooth gradients with a bright bar that moves 2 px a frame: easy to encode, easy to match."""
    y, x = np.mgrid[0:h, 0:w]
    f = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 64)], axis=-1).astype(np.uint8)
    bar = (x - 2 * i) % w < 12
    f[bar] = (250, 250, 250)
    return f


def receive_udp(sock: socket.socket, into: bytearray, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while True:
        try:
            into += sock.recv(65536)
        except TimeoutError:
            if stop.is_set():
                return


@pytest.mark.integration
def test_frames_arrive_over_udp_as_mpeg_ts_of_the_right_size(tmp_path: Path):
    import imageio_ffmpeg

    h, w, n = 96, 160, 60  # not square: a swapped width and height would show
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))  # listening before the first datagram: nothing is lost to a race
    port = sock.getsockname()[1]
    received, stop = bytearray(), threading.Event()
    receiver = threading.Thread(target=receive_udp, args=(sock, received, stop), daemon=True)
    receiver.start()
    try:
        (sender,) = open_senders((f"udp://127.0.0.1:{port}",), 30.0)
        sent = [moving_pattern(i, h, w) for i in range(n)]
        for f in sent:
            sender.offer(f)
            assert sender.wait_idle(WAIT)  # one at a time: this test wants every frame through
        sender.close()  # ffmpeg's stdin closed: it flushes the encoder and exits
        assert sender.stats() | {"send": ""} == {
            "send": "",
            "offered": n,
            "sent": n,
            "dropped": 0,
            "failed": 0,
            "errors": 0,
        }
    finally:
        stop.set()
        receiver.join(WAIT)
        sock.close()
    stream = tmp_path / "received.ts"
    stream.write_bytes(bytes(received))
    assert len(received) % 188 == 0 and received[0] == 0x47  # whole MPEG-TS packets

    # Decoded by a second ffmpeg: every frame, the right size, the pattern where it was.
    decode = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(stream), "-fps_mode", "passthrough"]
    raw = subprocess.run(
        [*decode, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True, timeout=60
    ).stdout
    assert len(raw) == n * h * w * 3
    frames = np.frombuffer(raw, np.uint8).reshape(n, h, w, 3).astype(np.int16)
    errors = [np.abs(frames[i] - sent[i]).mean() for i in range(n)]
    assert max(errors) < 8, errors
    assert np.abs(frames[30] - sent[20]).mean() > 3 * max(errors)  # the bar moved: frames are in order

    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed (apt-get install ffmpeg): decoded with ffmpeg only")
    from tests.probe import ffprobe_video

    probe = ffprobe_video(stream, "stream=codec_name,width,height,nb_read_frames")
    assert probe == {"codec_name": "h264", "width": w, "height": h, "nb_read_frames": str(n)}


@pytest.mark.integration
def test_an_ffmpeg_that_dies_is_logged_once_and_counted(tmp_path: Path, caplog):
    false = shutil.which("false")
    if false is None:
        pytest.skip("no `false` command to stand in for a dying ffmpeg")
    sender = Sender(FfmpegSink(false, "udp://127.0.0.1:9", 30.0, encoder="libx264"), "udp://127.0.0.1:9")
    with caplog.at_level(logging.WARNING, logger="engine.devices.senders"):
        for i in range(5):
            sender.offer(frame(i, 256, 256))  # more than a pipe holds: the write meets the dead reader
            assert sender.wait_idle(WAIT)
        sender.close()
    assert sender.sent == 0 and sender.errors == 1 and sender.failed == 5  # the other 4 waited out the back-off
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ffmpeg exited (status 1)" in warnings[0]
