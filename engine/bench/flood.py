"""OSC flood: many well-formed messages plus every kind of junk, for the
"nothing another program sends can crash the show" benchmark.

`flood()` is the sender (a client: it may sleep to pace itself, the engine's
receive thread never does). `flood_bench()` starts its own headless show in
a subprocess, waits until its OSC input answers /ping, floods it and returns
the show's own stats next to what was sent.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.ports import free_udp_port
from engine.control.osc_dispatch import encode
from engine.core.space import DECKS

DECK = f"/deck/{DECKS[0]}"  # the deck the flood moves

log = logging.getLogger(__name__)

TICK_S = 0.005  # the sender sends each 5 ms slice's share at once
# Kinds of bad datagrams, and how the engine counts each.
MALFORMED_KINDS = ("random", "truncated", "wrong_type", "nan", "inf", "huge_string", "deep_bundle", "bad_bundle")
DROPPED_KINDS = ("unknown_address",)  # well-formed, counted as dropped


def _good_messages(rnd: random.Random, n: int = 512) -> list[bytes]:
    """Param sets a controller would send: brightness, speed, latent offsets, a wildcard."""
    out = []
    for i in range(n):
        k = i % 4
        if k == 0:
            out.append(encode("/master/brightness", rnd.uniform(0.5, 1.0)))
        elif k == 1:
            out.append(encode(f"{DECK}/latent/{rnd.randint(1, 8)}", rnd.uniform(-2.0, 2.0)))
        elif k == 2:
            out.append(encode("/master/speed", rnd.uniform(0.5, 2.0)))
        else:
            out.append(encode(f"{DECK}/latent/[1-4]", rnd.uniform(-1.0, 1.0)))
    return out


def _bad(kind: str, rnd: random.Random) -> bytes:
    good = encode("/master/brightness", 0.5)
    if kind == "random":
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 512)))
    if kind == "truncated":
        return good[: rnd.randrange(1, len(good))]
    if kind == "wrong_type":
        return encode("/master/brightness", "bright")
    if kind == "nan":
        return b"/master/brightness\x00\x00,f\x00\x00" + struct.pack(">f", math.nan)
    if kind == "inf":
        return b"/master/speed\x00\x00\x00,d\x00\x00" + struct.pack(">d", math.inf)
    if kind == "huge_string":
        return encode("/master/brightness", "x" * 65000)  # ~64 KB datagram
    if kind == "deep_bundle":
        data = good
        for _ in range(20):
            data = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", len(data)) + data
        return data
    if kind == "bad_bundle":
        return b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", 4000) + good
    if kind == "unknown_address":
        return encode(f"/no/such/address/{rnd.randrange(1000)}", 1.0)
    raise ValueError(f"unknown malformed kind {kind!r}")


def flood(host: str, port: int, seconds: float, rate: float, malformed: int, seed: int = 0) -> dict[str, Any]:
    """Send `rate` well-formed messages per second for `seconds`, with `malformed`
    bad datagrams (every kind in turn) spread evenly among them. Returns counts."""
    rnd = random.Random(seed)
    kinds = MALFORMED_KINDS + DROPPED_KINDS
    good = _good_messages(rnd)
    bad_pool = {k: [_bad(k, rnd) for _ in range(16)] for k in kinds}
    total = int(seconds * rate)
    target = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = {"good": 0, "send_errors": 0, **{k: 0 for k in kinds}}
    t0 = time.perf_counter()
    ticks = max(1, int(seconds / TICK_S))
    try:
        for tick in range(1, ticks + 1):
            good_due = total * tick // ticks
            bad_due = malformed * tick // ticks
            while sent["good"] < good_due:
                _send(sock, good[sent["good"] % len(good)], target, sent, "good")
            while sum(sent[k] for k in kinds) < bad_due:
                kind = kinds[sum(sent[k] for k in kinds) % len(kinds)]
                _send(sock, rnd.choice(bad_pool[kind]), target, sent, kind)
            delay = t0 + tick * (seconds / ticks) - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    finally:
        sock.close()
    sent["seconds"] = round(time.perf_counter() - t0, 3)
    sent["malformed"] = sum(sent[k] for k in MALFORMED_KINDS)
    sent["unknown"] = sum(sent[k] for k in DROPPED_KINDS)
    return sent


def _send(sock: socket.socket, data: bytes, target: Any, sent: dict[str, int], kind: str) -> None:
    try:
        sock.sendto(data, target)
    except OSError:
        sent["send_errors"] += 1
    sent[kind] += 1


def wait_for_pong(port: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """Ping the show until it answers (its OSC input runs once models are loaded)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.25)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return False
            s.sendto(encode("/ping"), ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(1024)
            except TimeoutError:
                continue
            if data.startswith(b"/pong"):
                return True
    return False


def flood_bench(
    seconds: float = 60.0,
    rate: float = 5000.0,
    malformed: int = 10000,
    fps: float = 60.0,
    scene: str | None = None,
    startup_s: float = 120.0,
) -> dict[str, Any]:
    """A headless show (subprocess) flooded for `seconds`; its stats plus what was sent."""
    port = free_udp_port()
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / "stats.json"
        cmd = [
            sys.executable,
            "run_show.py",
            "-q",
            "show",
            "--headless",
            "--seconds",
            str(seconds + 4),
            "--fps",
            str(fps),
            "--osc-port",
            str(port),
            "--oscquery-port",
            "0",
            "--stats",
            str(stats_path),
            "--osc-out",
            f"127.0.0.1:{free_udp_port()}",
        ]  # feedback runs too (to a port nobody reads)
        if scene:
            cmd += ["--scene", scene]
        repo = Path(__file__).resolve().parents[2]
        with open(os.devnull, "w") as devnull:
            proc = subprocess.Popen(cmd, cwd=repo, stdout=devnull, stderr=subprocess.PIPE, text=True)
            try:
                if not wait_for_pong(port, startup_s, proc):
                    raise RuntimeError(
                        f"the show did not answer /ping within {startup_s} s: "
                        f"{proc.stderr.read() if proc.poll() is not None else 'still starting'}"
                    )
                time.sleep(1.0)  # out of the show's 1 s stats warm-up
                sent = flood("127.0.0.1", port, seconds, rate, malformed)
                _, err = proc.communicate(timeout=seconds + 60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if proc.returncode != 0 or not stats_path.exists():
            raise RuntimeError(f"the flooded show failed (exit {proc.returncode}): {err[-2000:]}")
        stats = json.loads(stats_path.read_text())
    return {"sent": sent, "show": stats}


def format_flood(result: dict[str, Any]) -> str:
    s, show = result["sent"], result["show"]
    osc = show.get("osc", {})
    return (
        f"sent {s['good']} well-formed + {s['malformed']} malformed + {s['unknown']} unknown-address datagrams "
        f"in {s['seconds']} s\n"
        f"show: {show['fps']:.1f} fps, frame p99 {show['frame_ms']['p99']:.2f} ms, late frames "
        f"{show['late_frames']}/{show['frames']}, queue_max {show.get('queue_max')}, frame errors "
        f"{show.get('frame_errors')}\n"
        f"osc: received {osc.get('received')}, malformed {osc.get('malformed')}, dropped {osc.get('dropped')} "
        f"(unknown {osc.get('unknown')})"
    )
