"""OSC over real UDP on loopback, against liblo's oscsend/oscdump (an independent
OSC implementation): an in-process show with real sockets, a windowed show
under Xvfb (screenshots), and a flood against a headless show.

Ports are free ones found by binding to port 0, so tests never clash with a
show someone is running on 9000.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from pythonosc.osc_message import OscMessage

from engine.bench.flood import flood_bench, wait_for_pong
from engine.bench.ports import free_tcp_port, free_udp_port
from engine.control.osc import start
from engine.control.osc_dispatch import encode
from engine.core.clock import FixedClock
from engine.core.events import EventQueue
from engine.core.space import build_registry, build_space
from engine.errors import StartupError
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.show import Show
from tests.fakes import FakeOutput, show_config
from tests.xvfb import screenshot, xvfb  # noqa: F401  (xvfb is a fixture)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
FEEDBACK = re.compile(r"(^|\s)/master/brightness f 0(\.0+)?$", re.M)  # oscdump may prefix a timetag


def _require_liblo() -> None:
    for tool in ("oscsend", "oscdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install liblo-tools)")


def oscsend(port: int, address: str, *typed: str) -> None:
    subprocess.run(["oscsend", "localhost", str(port), address, *typed], check=True, timeout=10)


class Dump:
    """`oscdump -L PORT` writing to a file (line-buffered)."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        self.path = tmp_path / f"oscdump-{port}.txt"
        self._file = self.path.open("w")
        self.proc = subprocess.Popen(["oscdump", "-L", str(port)], stdout=self._file, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.path.read_text()

    def wait_for(self, pattern: re.Pattern, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while not pattern.search(self.text()):
            if time.monotonic() > deadline:
                pytest.fail(f"oscdump did not print {pattern.pattern!r}; it printed:\n{self.text()}")
            time.sleep(0.02)
        return self.text()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._file.close()


@pytest.fixture
def dump(tmp_path: Path):
    _require_liblo()
    d = Dump(tmp_path, free_udp_port())
    _wait_bound(int(d.proc.args[-1]))
    yield d
    d.close()


def _wait_bound(port: int, timeout: float = 10.0) -> None:
    """Wait until some process listens on UDP `port` (oscdump starting up)."""
    table = Path("/proc/net/udp")
    if not table.exists():
        time.sleep(0.5)
        return
    deadline = time.monotonic() + timeout
    needle = f":{port:04X} "
    while not any(needle in line.split()[1] + " " for line in table.read_text().splitlines()[1:]):
        assert time.monotonic() < deadline, f"oscdump did not bind UDP port {port}"
        time.sleep(0.02)


class Client:
    """A sender that listens: gets /pong and query answers back on its own port."""

    def __init__(self, port: int) -> None:
        self.to = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3.0)

    def ask(self, address: str, *args) -> OscMessage:
        self.sock.sendto(encode(address, *args), self.to)
        data, sender = self.sock.recvfrom(65536)
        assert sender == self.to  # answered from the port we sent to
        return OscMessage(data)

    def close(self) -> None:
        self.sock.close()


def osc_args(**kw):
    return show_config(**{"osc_port": free_udp_port(), "oscquery_port": 0, **kw})


@pytest.fixture
def show(scene_file):
    scenes = load_scenes([load_scene(scene_file(""))], torch.device("cpu"))
    out = FakeOutput()
    s = Show(scenes, build_registry(), EventQueue(), FrameRenderer(torch.device("cpu")), out, FixedClock(30))
    s.run(frames=1)
    assert out.frames[-1].max() > 0
    return s, out


def _wait_queued(show: Show, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(show.queue) == 0:
        assert time.monotonic() < deadline, "nothing arrived on the show's queue"
        time.sleep(0.005)


# ---------------------------------------------------------------- in-process show, real sockets


def test_oscsend_blackens_the_next_frame_and_oscdump_gets_the_feedback(show, dump) -> None:
    s, out = show
    args = osc_args(osc_out=[f"127.0.0.1:{dump.proc.args[-1]}"])
    control = start(args, s)
    try:
        oscsend(args.osc_port, "/master/brightness", "f", "0.0")
        _wait_queued(s)
        s.run(frames=1)  # the very next frame
        assert out.frames[-1].max() == 0
        dump.wait_for(FEEDBACK)
        assert control.stats()["osc"]["received"] == 1
    finally:
        control.close()


def test_ping_pong_query_and_oscquery(show) -> None:
    _require_liblo()
    s, _ = show
    args = osc_args(oscquery_port=free_tcp_port())
    control = start(args, s)
    client = Client(args.osc_port)
    try:
        assert client.ask("/ping").address == "/pong"
        oscsend(args.osc_port, "/master/speed", "f", "2.5")
        _wait_queued(s)
        s.run(frames=1)
        answer = client.ask("/master/speed", "?")
        assert answer.address == "/master/speed" and answer.params == [pytest.approx(2.5)]
        base = f"http://127.0.0.1:{args.oscquery_port}"
        info = json.load(urllib.request.urlopen(base + "/?HOST_INFO", timeout=5))
        assert info["OSC_PORT"] == args.osc_port and info["OSC_TRANSPORT"] == "UDP"
        node = json.load(urllib.request.urlopen(base + "/master/speed", timeout=5))
        assert node["VALUE"] == [pytest.approx(2.5)] and node["TYPE"] == "f"
    finally:
        client.close()
        control.close()


def test_subscribed_sender_gets_feedback_and_status(show) -> None:
    s, _ = show
    args = osc_args()
    control = start(args, s)
    client = Client(args.osc_port)
    try:
        listen_port = client.sock.getsockname()[1]
        client.sock.sendto(encode("/feedback/subscribe", listen_port), client.to)
        deadline = time.monotonic() + 5
        while control.stats()["osc"]["subscribers"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        client.sock.sendto(encode("/master/speed", 3.0), client.to)
        _wait_queued(s)
        s.run(frames=1)
        m = OscMessage(client.sock.recvfrom(65536)[0])
        assert (m.address, m.params) == ("/master/speed", [3.0])
        control.feedback._next_status = 0.0  # due now, without waiting a second
        s.run(frames=1)
        seen = {OscMessage(client.sock.recvfrom(65536)[0]).address for _ in range(5)}
        assert {"/status/scene", "/status/osc/received"} & seen
    finally:
        client.close()
        control.close()


def test_port_in_use_is_one_startup_error_and_close_frees_it_promptly(show) -> None:
    s, _ = show
    args = osc_args()
    control = start(args, s)
    with pytest.raises(StartupError, match=f"--osc-port {args.osc_port}.*already in use"):
        start(args, s)
    t0 = time.perf_counter()
    control.close()
    assert time.perf_counter() - t0 < 0.5
    assert not control._thread.is_alive()
    assert s.listeners == [] and s.frame_hooks == []
    again = start(args, s)  # the port is free again
    again.close()
    control.close()  # idempotent


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("osc_out", ["nowhere"], "--osc-out: expected HOST:PORT"),
        ("osc_out", ["127.0.0.1:70000"], "--osc-out: expected HOST:PORT"),
        ("osc_out", ["127.0.0.1:\u00b2"], "--osc-out: expected HOST:PORT"),  # isdigit() but not int()
        ("osc_allow", "10.0.0.0/33", "--osc-allow"),
        ("osc_host", "300.0.0.1", "--osc-host"),
    ],
)
def test_bad_flags_are_startup_errors_naming_the_flag(show, flag, value, message) -> None:
    s, _ = show
    with pytest.raises(StartupError, match=message):
        start(osc_args(**{flag: value}), s)
    assert s.listeners == []


def test_cli_reports_a_busy_port_as_one_line(scene_file) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        env = dict(os.environ, SDL_VIDEODRIVER="dummy")
        command = [sys.executable, "run_show.py", *"show --headless --seconds 1 --oscquery-port 0".split()]
        command += ["--scene", str(scene_file("")), "--osc-port", str(port)]
        r = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: --osc-port {port}:")


# ---------------------------------------------------------------- windowed show under Xvfb


@pytest.mark.parametrize("xvfb", [["320x240x24"]], indirect=True, ids=["320x240"])
def test_windowed_show_goes_black_on_oscsend_and_oscdump_prints_feedback(
    xvfb: str, dump, scene_file, tmp_path: Path
) -> None:
    port = free_udp_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = xvfb
    err = (tmp_path / "show.err").open("w+")
    command = [sys.executable, "run_show.py", *"show --size 320x240 --seconds 60 --oscquery-port 0".split()]
    command += ["--scene", str(scene_file('name = "osc test"\n')), "--osc-port", str(port)]
    command += ["--osc-out", f"127.0.0.1:{dump.proc.args[-1]}"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert wait_for_pong(port, 90.0, proc), _tail(err)
        deadline = time.monotonic() + 30
        while screenshot(xvfb)[:, 40:280].max() == 0:
            assert time.monotonic() < deadline, "no picture in the window"
            time.sleep(0.1)
        t0 = time.monotonic()
        oscsend(port, "/master/brightness", "f", "0.0")
        while screenshot(xvfb).max() > 0:  # each xwd takes tens of ms: this bounds, not measures, latency
            assert time.monotonic() - t0 < 2.0, "the window did not turn black"
        print(f"oscsend -> black screenshot in {(time.monotonic() - t0) * 1000:.0f} ms (xwd included)")
        dump.wait_for(FEEDBACK)
        client = Client(port)
        try:
            assert client.ask("/ping").address == "/pong"
            assert client.ask("/master/brightness", "?").params == [0.0]
        finally:
            client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        err.close()


def _tail(f) -> str:
    f.seek(0)
    return "show did not answer /ping:\n" + f.read()[-3000:]


# ---------------------------------------------------------------- flood


def test_flood_does_not_crash_and_is_counted(scene_file) -> None:
    """5 s of 5,000 msgs/s plus 3,000 bad datagrams of every kind against a headless show."""
    r = flood_bench(seconds=5.0, rate=5000.0, malformed=3000, scene=str(scene_file("")))
    sent, stats = r["sent"], r["show"]
    osc = stats["osc"]
    print(
        json.dumps(
            {
                "sent": sent,
                "fps": stats["fps"],
                "p99": stats["frame_ms"]["p99"],
                "late": stats["late_frames"],
                "queue_max": stats["queue_max"],
                "osc": osc,
            }
        )
    )
    assert stats["frame_errors"] == 0
    assert stats["queue_max"] <= 4096
    # loopback UDP can lose datagrams when the receive buffer overflows; allow a little
    total = sent["good"] + sent["malformed"] + sent["unknown"]
    assert osc["received"] >= 0.95 * total
    assert 0.95 * sent["malformed"] <= osc["malformed"] <= sent["malformed"] + 1
    assert osc["unknown"] >= 0.95 * sent["unknown"]
    assert stats["fps"] > 30  # the full must-show (>= 58 fps for 60 s) is `flood_bench` on an idle machine


# ---------------------------------------------------------------- OSCQuery against stalling clients


def _http_get(port: int, target: str) -> tuple[bytes, float]:
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data, time.perf_counter() - t0


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_oscquery_serves_others_while_clients_stall_and_cuts_stallers_off() -> None:
    # A client that connected and sent nothing held the single-threaded server for its
    # 5 s read timeout (and, trickling a byte every few seconds, for ever).
    from engine.control.oscquery import OscQueryServer, host_info

    info = host_info("127.0.0.1", 9000)
    srv = OscQueryServer(build_space(), "127.0.0.1", 0, info, max_connections=3, deadline=5.0)
    cut = OscQueryServer(build_space(), "127.0.0.1", 0, info, deadline=0.3)
    clients: list[socket.socket] = []
    try:
        data, _ = _http_get(srv.port, "http://[")
        assert data.startswith(b"HTTP/1.0 400")
        clients += [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2)]  # silent
        data, took = _http_get(srv.port, "/?HOST_INFO")
        assert data.startswith(b"HTTP/1.0 200") and took < 2.0  # not after the stallers' 5 s
        extra = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2)]  # 2 open + 2 > 3
        clients += extra
        assert _closed_within(extra[1], 1.0)  # over the cap: closed at once
        staller = socket.create_connection(("127.0.0.1", cut.port))
        clients.append(staller)
        staller.sendall(b"GET / HTTP/1.0\r\n")  # and never the blank line
        assert _closed_within(staller, 2.0)  # cut off at the deadline
        t0 = time.perf_counter()
        srv.close()  # with stalled clients still connected
        assert time.perf_counter() - t0 < 1.0
        assert _closed_within(clients[0], 1.0)
    finally:
        for s in clients:
            s.close()
        srv.close()
        cut.close()
