"""Frames to other video apps (Resolume, TouchDesigner, OBS, VLC): `show --send SPEC`.

SPEC is one of
    udp://HOST:PORT, srt://HOST:PORT   MPEG-TS from the bundled ffmpeg (imageio-ffmpeg)
    ndi[:NAME]                         NDI source (cyndilib; its wheel carries the NDI runtime)
    syphon[:NAME]                      Syphon server, macOS (syphon-python)
    spout[:NAME]                       Spout sender, Windows (SpoutGL)
    v4l2[:/dev/videoN]                 virtual camera, Linux (pyvirtualcam + v4l2loopback)

Sending never blocks the frame loop. Each `Sender` owns a thread and a one-slot
mailbox: `offer(frame)` copies the presented (H, W, 3) uint8 frame into a buffer
the loop alone writes, under a lock the thread holds only to swap two buffers; a
frame still waiting when the next is offered is replaced (newest wins) and counted
in `dropped`. The thread opens its sink on the first frame, at that frame's size,
and keeps that size for good (receivers, a v4l2 device, an NDI source do not like
a stream that changes size): a later scene of another size is scaled to it
(nearest) on the sender thread. A sink that fails (ffmpeg dies, the device goes
away) is logged once, counted, closed and reopened after a back-off; the show
goes on.

Sink adapters are thin: each opens, sends and closes on the sender thread only
(an OpenGL or Metal context, a pipe, belongs to one thread). The optional
packages are imported at startup, so a missing extra is one clear StartupError
before the first frame.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import logging
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.core.ratelog import first_and_every
from engine.errors import StartupError

__all__ = [
    "DEFAULT_NAME",
    "SPEC_HELP",
    "FfmpegSink",
    "SendSpec",
    "Sender",
    "Sink",
    "close_senders",
    "ffmpeg_command",
    "open_senders",
    "parse_send",
    "send_hook",
    "senders_stats",
]

log = logging.getLogger(__name__)

DEFAULT_NAME = "Latent Stage"  # the NDI source / Syphon server / Spout sender name without :NAME
SPEC_HELP = (
    "ndi, syphon, spout (each optionally :NAME), v4l2 (optionally :/dev/videoN), udp://HOST:PORT or srt://HOST:PORT"
)
NAMED_KINDS = ("ndi", "syphon", "spout", "v4l2")
URL_KINDS = ("udp", "srt")

# kind -> (extra name, module imported at startup, what else it needs)
EXTRAS: dict[str, tuple[str, str, str]] = {
    "ndi": ("ndi", "cyndilib", " (cyndilib, whose wheels carry the NDI runtime)"),
    "syphon": ("syphon", "syphon", " (syphon-python)"),
    "spout": ("spout", "SpoutGL", " (SpoutGL)"),
    "v4l2": ("v4l2", "pyvirtualcam", " (pyvirtualcam) and the v4l2loopback kernel module: sudo modprobe v4l2loopback"),
}
PLATFORMS = {"syphon": ("darwin", "macOS"), "spout": ("win32", "Windows"), "v4l2": ("linux", "Linux")}
V4L2_SYSFS = Path("/sys/devices/virtual/video4linux")  # where v4l2loopback's devices appear

RETRY_FIRST_S = 1.0  # a failed sink is reopened after this, doubling to RETRY_MAX_S while it keeps failing
RETRY_MAX_S = 30.0
CLOSE_TIMEOUT_S = 3.0  # close() waits this long for the thread, then aborts the sink (kills ffmpeg)


@dataclass(frozen=True)
class SendSpec:
    """One parsed --send value: `kind` (udp, srt, ndi, syphon, spout, v4l2) and its `target`
    (the URL for udp/srt, the source name or device for the others)."""

    text: str
    kind: str
    target: str


def parse_send(text: str) -> SendSpec:
    """A --send value, checked; ValueError names what was expected."""
    spec = text.strip()
    scheme, sep, rest = spec.partition("://")
    if sep:
        if scheme.lower() not in URL_KINDS:
            raise ValueError(f"expected {SPEC_HELP}, got {text!r} (unknown scheme {scheme!r})")
        _check_host_port(text, rest.partition("?")[0].rstrip("/"))
        return SendSpec(spec, scheme.lower(), f"{scheme.lower()}://{rest}")
    kind, sep, name = spec.partition(":")
    kind = kind.lower()
    if kind not in NAMED_KINDS or (sep and not name.strip()):
        raise ValueError(f"expected {SPEC_HELP}, got {text!r}")
    if kind == "v4l2" and sep and not name.startswith("/"):
        raise ValueError(f"expected v4l2 or v4l2:/dev/videoN (a device path), got {text!r}")
    return SendSpec(spec, kind, name.strip() if sep else ("" if kind == "v4l2" else DEFAULT_NAME))


def _check_host_port(text: str, hostport: str) -> None:
    host, sep, port = hostport.rpartition(":")
    if host.startswith("[") and host.endswith("]"):  # [IPv6]:PORT
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            host = ""
    ok_port = port.isdigit() and 1 <= int(port) <= 65535
    if not sep or not host or not ok_port or any(c.isspace() for c in host):
        raise ValueError(f"expected {SPEC_HELP}, got {text!r} (HOST:PORT with a port 1-65535)")


class Sink(Protocol):
    """Where a Sender's thread puts frames. Every method runs on that thread (abort excepted)."""

    def open(self, width: int, height: int) -> None: ...

    def send(self, frame: np.ndarray) -> None: ...  # (height, width, 3) uint8, C-contiguous

    def close(self) -> None: ...


class Sender:
    """One output: a thread, a one-slot newest-wins mailbox, and the counts for the stats.

    `offer()` is the frame loop's whole cost: one copy of the frame under a lock the
    thread holds only for a swap of two buffer references.
    """

    def __init__(self, sink: Sink, label: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self._sink = sink
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._back = np.zeros((0, 0, 3), np.uint8)  # written by offer() only, under the lock
        self._front = np.zeros((0, 0, 3), np.uint8)  # read by the thread only
        self._waiting = False  # _back holds a frame the thread has not taken
        self._busy = False  # the thread is delivering _front
        self._closing = False
        self._size: tuple[int, int] | None = None  # (height, width) of the stream, fixed at the first frame
        self._open = False
        self._retry_at = 0.0
        self._retry_s = RETRY_FIRST_S
        self._scale: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None
        self.offered = 0
        self.sent = 0
        self.dropped = 0  # replaced in the mailbox before the thread took them
        self.failed = 0  # taken but not delivered: the sink failed, or was waiting to reopen
        self.errors = 0  # sink failures (open or send)
        self._thread = threading.Thread(target=self._run, name=f"send {label}", daemon=True)
        self._thread.start()

    # -- the frame loop's side --------------------------------------------------------
    def offer(self, frame: np.ndarray) -> None:
        """Hand the thread a copy of `frame` ((H, W, 3) uint8); replaces one still waiting."""
        with self._lock:
            if self._closing:
                return
            if self._back.shape != frame.shape:  # the first frame, or a scene of another size
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    raise ValueError(
                        f"{self.label}: expected an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}"
                    )
                self._back = np.empty(frame.shape, np.uint8)
            np.copyto(self._back, frame)
            self.offered += 1
            if self._waiting:
                self.dropped += 1
            self._waiting = True
            self._wake.notify_all()

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Send the frame still waiting, close the sink and join the thread; a sink stuck past
        `timeout` is aborted (ffmpeg killed) so close never hangs the show's exit."""
        with self._lock:
            self._closing = True
            self._wake.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: sender still busy after %.1f s at close; aborting it", self.label, timeout)
            abort = getattr(self._sink, "abort", None)
            if abort is not None:
                abort()
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every offered frame is delivered or dropped (tests, benchmarks); False on timeout."""
        with self._lock:
            return self._wake.wait_for(lambda: not (self._waiting or self._busy), timeout)

    def stats(self) -> dict[str, Any]:
        """Counts for the show's summary (read without the lock: ints, a moment's skew is fine)."""
        return {
            "send": self.label,
            "offered": self.offered,
            "sent": self.sent,
            "dropped": self.dropped,
            "failed": self.failed,
            "errors": self.errors,
        }

    # -- the sender thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._waiting and not self._closing:
                        self._wake.wait()
                    if not self._waiting:
                        break  # closing, and nothing left to send
                    self._back, self._front = self._front, self._back
                    self._waiting = False
                    self._busy = True
                try:
                    self._deliver(self._front)
                finally:
                    with self._lock:
                        self._busy = False
                        self._wake.notify_all()
        finally:
            self._close_sink()

    def _deliver(self, frame: np.ndarray) -> None:
        now = self._clock()
        if not self._open and now < self._retry_at:
            self.failed += 1
            return
        try:
            if not self._open:
                if self._size is None:
                    self._size = (frame.shape[0], frame.shape[1])
                height, width = self._size
                self._sink.open(width, height)
                self._open = True
                if self.errors:
                    log.info("%s: sending again (%d sink errors so far)", self.label, self.errors)
                else:
                    log.info("%s: sending %dx%d", self.label, width, height)
            self._sink.send(self._fit(frame))
            self.sent += 1
            self._retry_s = RETRY_FIRST_S
        except Exception as e:  # any sink failure: counted, the show goes on
            self.failed += 1
            self.errors += 1
            if first_and_every(self.errors, 100):
                log.warning(
                    "%s: %s (%d sink errors so far); retrying in %.0f s, the show goes on",
                    self.label,
                    e,
                    self.errors,
                    self._retry_s,
                )
            self._close_sink()
            self._retry_at = now + self._retry_s
            self._retry_s = min(self._retry_s * 2.0, RETRY_MAX_S)

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        """The frame at the stream's size: itself, or scaled (nearest) when a scene of
        another size plays."""
        assert self._size is not None
        h, w = self._size
        if frame.shape[0] == h and frame.shape[1] == w:
            return frame
        src = (frame.shape[0], frame.shape[1])
        if self._scale is None or self._scale[0] != src:
            rows = (np.arange(h) * src[0] // h).astype(np.intp)
            cols = (np.arange(w) * src[1] // w).astype(np.intp)
            self._scale = (src, rows[:, None], cols[None, :])
        _, rows2, cols2 = self._scale
        return frame[rows2, cols2]

    def _close_sink(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            self._sink.close()
        except Exception as e:  # closing a failed sink may fail too; nothing more to do
            log.debug("%s: close failed: %s", self.label, e)


# -- ffmpeg: udp:// and srt:// --------------------------------------------------------


def ffmpeg_command(exe: str, url: str, width: int, height: int, fps: float, encoder: str) -> list[str]:
    """The ffmpeg command that reads raw RGB frames on stdin and sends MPEG-TS to `url`."""
    if url.startswith("udp://") and "pkt_size=" not in url:
        # 7 TS packets a datagram: the usual MPEG-TS-over-UDP size, under any Ethernet MTU.
        url += ("&" if "?" in url else "?") + "pkt_size=1316"
    gop = str(max(1, round(fps)))  # a keyframe about every second: a player that joins late shows a picture soon
    if encoder == "libx264":
        codec = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"]
    else:  # mpeg4 (part 2) takes any frame rate, unlike mpeg1video/mpeg2video
        codec = ["-c:v", encoder, "-q:v", "4", "-pix_fmt", "yuv420p"]
    return [
        exe,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-framerate",
        f"{fps:g}",
        # Stamp each frame when it arrives, and keep those times: a show slower than --fps, or a
        # dropped frame, plays at its real pace instead of drifting behind the receiver's clock.
        "-use_wallclock_as_timestamps",
        "1",
        "-i",
        "pipe:0",
        "-fps_mode",
        "passthrough",
        *codec,
        # yuv420p needs even sides: an odd frame gets one black row or column.
        "-vf",
        "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-g",
        gop,
        "-flush_packets",
        "1",
        "-f",
        "mpegts",
        url,
    ]


@functools.lru_cache(maxsize=4)
def ffmpeg_encoder(exe: str) -> str:
    """libx264 where this ffmpeg has it (imageio-ffmpeg's builds do), else mpeg4."""
    try:
        out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return "libx264" if " libx264 " in out else "mpeg4"


class FfmpegSink:
    """An ffmpeg process fed raw frames on stdin, sending MPEG-TS to a udp:// or srt:// URL."""

    def __init__(self, exe: str, url: str, fps: float, *, encoder: str | None = None) -> None:
        self.exe = exe
        self.url = url
        self.fps = fps
        self.encoder = encoder  # None: ffmpeg_encoder(exe), found on the sender thread at open
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: deque[str] = deque(maxlen=8)
        self._drainer: threading.Thread | None = None

    def open(self, width: int, height: int) -> None:
        encoder = self.encoder or ffmpeg_encoder(self.exe)
        command = ffmpeg_command(self.exe, self.url, width, height, self.fps, encoder)
        self._stderr.clear()
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # ffmpeg's messages drained on their own thread: a full stderr pipe would stall it.
        self._drainer = threading.Thread(target=self._drain, args=(self._proc,), name="send ffmpeg stderr", daemon=True)
        self._drainer.start()
        log.info("%s: ffmpeg %s, MPEG-TS, %dx%d", self.url, encoder, width, height)

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._stderr.append(line.decode(errors="replace").strip())

    def _died(self, code: int | None) -> RuntimeError:
        if self._drainer is not None:
            self._drainer.join(1.0)  # its last words, which arrive as it exits
        said = "; ".join(s for s in self._stderr if s)[-300:]
        return RuntimeError(f"ffmpeg exited (status {code})" + (f": {said}" if said else ""))

    def send(self, frame: np.ndarray) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        if proc.poll() is not None:
            raise self._died(proc.returncode)
        try:
            proc.stdin.write(np.ascontiguousarray(frame).data)  # the buffer itself, not a bytes copy
            proc.stdin.flush()
        except (OSError, ValueError):  # BrokenPipeError: ffmpeg is gone
            try:
                code: int | None = proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                code = None
            raise self._died(code) from None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # end of input: ffmpeg flushes the encoder and exits
            proc.wait(timeout=2.0)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def abort(self) -> None:
        """From another thread, when a write is stuck: kill ffmpeg, which ends the write."""
        proc = self._proc
        if proc is not None:
            proc.kill()


def _ffmpeg_exe(spec: SendSpec) -> str:
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise StartupError(f"--send {spec.text}: no ffmpeg found ({e})") from None


# -- the optional adapters ------------------------------------------------------------


def frame_rate(fps: float) -> Fraction:
    """fps as NDI wants it: 60 -> 60/1, the NTSC rates 59.94, 29.97, 23.976 -> N*1000/1001."""
    if fps == round(fps):
        return Fraction(round(fps))
    ntsc = round(fps * 1.001)
    if abs(fps - ntsc * 1000 / 1001) < 0.005:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


class NdiSink:
    """An NDI source through cyndilib (RGBX frames: NDI has no 3-byte RGB format)."""

    def __init__(self, name: str, fps: float) -> None:
        self.name = name
        self.fps = fps
        self._sender: Any = None
        self._rgbx = np.zeros((0, 0, 4), np.uint8)

    def open(self, width: int, height: int) -> None:
        sender_mod = importlib.import_module("cyndilib.sender")
        frame_mod = importlib.import_module("cyndilib.video_frame")
        structs = importlib.import_module("cyndilib.wrapper.ndi_structs")
        vf = frame_mod.VideoSendFrame()
        vf.set_resolution(width, height)
        vf.set_frame_rate(frame_rate(self.fps))
        vf.set_fourcc(structs.FourCC.RGBX)
        # clock_video=False: the show paces the frames; NDI's own clock would block this thread.
        sender = sender_mod.Sender(self.name, clock_video=False)
        sender.set_video_frame(vf)
        sender.open()
        self._sender = sender
        self._rgbx = np.full((height, width, 4), 255, np.uint8)

    def send(self, frame: np.ndarray) -> None:
        self._rgbx[..., :3] = frame
        if not self._sender.write_video(self._rgbx.reshape(-1)):
            raise RuntimeError("NDI sender refused the frame (not running)")

    def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()


class SyphonSink:
    """A Syphon Metal server through syphon-python (RGBA textures)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._server: Any = None
        self._texture: Any = None
        self._copy: Callable[[np.ndarray, Any], None] | None = None
        self._rgba = np.zeros((0, 0, 4), np.uint8)

    def open(self, width: int, height: int) -> None:
        syphon = importlib.import_module("syphon")
        raw = importlib.import_module("syphon.utils.raw")
        self._copy = importlib.import_module("syphon.utils.numpy").copy_image_to_mtl_texture
        self._server = syphon.SyphonMetalServer(self.name)
        self._texture = raw.create_mtl_texture(self._server.device, width, height)
        self._rgba = np.full((height, width, 4), 255, np.uint8)

    def send(self, frame: np.ndarray) -> None:
        assert self._copy is not None
        self._rgba[..., :3] = frame
        self._copy(self._rgba, self._texture)
        self._server.publish_frame_texture(self._texture)

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()


GL_RGB = 0x1907  # OpenGL's enum for 3-byte RGB pixels (SpoutGL.enums.GL_RGB), so PyOpenGL is not needed


class SpoutSink:
    """A Spout sender through SpoutGL (sendImage from host memory; Spout makes its own GL context)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._sender: Any = None
        self._size = (0, 0)

    def open(self, width: int, height: int) -> None:
        spout = importlib.import_module("SpoutGL")
        sender = spout.SpoutSender()
        sender.setSenderName(self.name)
        self._sender = sender
        self._size = (width, height)

    def send(self, frame: np.ndarray) -> None:
        width, height = self._size
        if not self._sender.sendImage(frame, width, height, GL_RGB, False, 0):
            raise RuntimeError("Spout sendImage failed")
        self._sender.setFrameSync(self.name)  # receivers waiting on the frame wake now

    def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.releaseSender()


class V4l2Sink:
    """A v4l2loopback virtual camera through pyvirtualcam (RGB frames as they are)."""

    def __init__(self, device: str, fps: float) -> None:
        self.device = device  # "" = the first v4l2loopback device
        self.fps = fps
        self._cam: Any = None

    def open(self, width: int, height: int) -> None:
        pvc = importlib.import_module("pyvirtualcam")
        self._cam = pvc.Camera(
            width, height, self.fps, fmt=pvc.PixelFormat.RGB, device=self.device or None, backend="v4l2loopback"
        )

    def send(self, frame: np.ndarray) -> None:
        self._cam.send(frame)  # no sleep_until_next_frame: the show paces

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()


# -- startup --------------------------------------------------------------------------


def _platform() -> str:
    return sys.platform


def _require(spec: SendSpec) -> None:
    """The platform and optional package `spec` needs; StartupError naming the flag if absent."""
    where = PLATFORMS.get(spec.kind)
    if where is not None and not _platform().startswith(where[0]):
        raise StartupError(
            f"--send {spec.text}: {spec.kind} exists on {where[1]} only (this is {_platform()}); "
            "ndi or udp://HOST:PORT work everywhere"
        )
    extra, module, needs = EXTRAS[spec.kind]
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise StartupError(
            f"--send {spec.text} needs the {extra} extra: pip install 'latent-stage[{extra}]'{needs}; "
            f"import {module} failed: {e}"
        ) from None


def _v4l2_device(spec: SendSpec) -> None:
    """A v4l2loopback device must exist before the show starts (pyvirtualcam opens it later)."""
    if spec.target:
        if not Path(spec.target).exists():
            raise StartupError(f"--send {spec.text}: no such device (sudo modprobe v4l2loopback video_nr=N)")
    elif not (V4L2_SYSFS.is_dir() and any(V4L2_SYSFS.glob("video*"))):
        raise StartupError(f"--send {spec.text}: no v4l2loopback device (sudo modprobe v4l2loopback)")


def make_sink(spec: SendSpec, fps: float) -> Sink:
    """The sink for one spec, its package and platform checked (StartupError if missing)."""
    if spec.kind in URL_KINDS:
        return FfmpegSink(_ffmpeg_exe(spec), spec.target, fps)
    _require(spec)
    if spec.kind == "ndi":
        return NdiSink(spec.target, fps)
    if spec.kind == "syphon":
        return SyphonSink(spec.target)
    if spec.kind == "spout":
        return SpoutSink(spec.target)
    _v4l2_device(spec)
    return V4l2Sink(spec.target, fps)


def open_senders(specs: Sequence[str], fps: float) -> list[Sender]:
    """A started Sender per --send value. Every check runs before any thread starts, so a bad
    spec or a missing extra is one StartupError and nothing to clean up."""
    parsed = []
    for text in specs:
        try:
            parsed.append(parse_send(text))
        except ValueError as e:
            raise StartupError(f"--send: {e}") from None
    labels = [s.text for s in parsed]
    if len(set(labels)) != len(labels):
        raise StartupError(f"--send: the same output twice in {labels}")
    sinks = [make_sink(s, fps) for s in parsed]
    return [Sender(sink, s.text) for sink, s in zip(sinks, parsed)]


def send_hook(senders: Sequence[Sender]) -> Callable[[Any], None]:
    """A frame hook (show.frame_hooks) that offers each presented frame to every sender."""

    def offer(show: Any) -> None:
        frame = show.output.frame_buffer
        for sender in senders:
            sender.offer(frame)

    return offer


def close_senders(senders: Sequence[Sender]) -> None:
    for sender in senders:
        sender.close()


def senders_stats(senders: Sequence[Sender]) -> dict[str, Any]:
    """{"send": [each sender's stats]} for the show's summary; {} without senders."""
    return {"send": [s.stats() for s in senders]} if senders else {}
