"""`bench --soak MINUTES`: a long headless show under random OSC traffic, watched from outside.

The show (a subprocess) plays a setlist of the shipped picture scenes that
changes every 20 s, with its state saved every 5 s and its HTTP status on; a
sender throws random well-formed and malformed OSC at it (about 200 messages a
second). A poller asks GET /status every 5 s (as a monitoring system would) and,
every 30 s, what the control page asks (/controls and /frame.jpg). Every
`sample_s` seconds the benchmark reads the show's resident memory, thread count
and open file handles from /proc, and pings it over OSC (the answer's latency);
then it ends the show with SIGTERM, as a service manager would. At the end: the
samples, the resident memory's slope over the last two thirds of the run (MB
per hour, least squares), the spread of threads and handles, the
/status latencies, the show's frame rate over the first and the last third of
the run (from the frame counts /status reports), and the show's own stats.
Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.flood import _bad, _good_messages, wait_for_pong
from engine.bench.ports import free_tcp_port, free_udp_port
from engine.control.osc_dispatch import encode
from engine.files import REPO_ROOT

SCENES = ("default.toml", "tissue_breath.toml", "pictures_morph.toml")
DWELL_S = 20.0
RATE = 200.0  # OSC messages per second
BAD_SHARE = 0.1
STATUS_S = 5.0  # GET /status this often
PAGE_S = 30.0  # ... and what an open control page asks for, this often


def _proc_sample(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024.0,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _ping_ms(port: int) -> float | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2.0)
        t0 = time.perf_counter()
        s.sendto(encode("/ping"), ("127.0.0.1", port))
        try:
            s.recvfrom(1024)
        except TimeoutError:
            return None
        return (time.perf_counter() - t0) * 1000.0


def _traffic(port: int, stop: threading.Event, seed: int = 0) -> int:
    rnd = random.Random(seed)
    good = _good_messages(rnd) + [encode("/setlist/goto", rnd.randint(1, 3)) for _ in range(4)]
    bad = [_bad(k, rnd) for k in ("random", "truncated", "wrong_type", "nan") for _ in range(8)]
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while not stop.wait(1.0 / RATE):
            data = rnd.choice(bad) if rnd.random() < BAD_SHARE else rnd.choice(good)
            try:
                s.sendto(data, ("127.0.0.1", port))
            except OSError:
                pass
            sent += 1
    return sent


def _get(url: str) -> tuple[float, bytes] | None:
    """(milliseconds, body) for a GET answered 200 in under 2 s, else None."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=2.0) as r:  # noqa: S310 - the show's own loopback server
            body = r.read()
            ok = r.status == 200
    except OSError:
        return None
    return ((time.perf_counter() - t0) * 1000.0, body) if ok else None


def _status_sample(base: str) -> dict[str, float] | None:
    """GET /status: its latency (ms) and the show's own uptime (s) and frame count, else None."""
    got = _get(base + "/status")
    if got is None:
        return None
    ms, body = got
    try:
        status = json.loads(body)
        return {"ms": ms, "uptime_s": float(status["uptime_s"]), "frames": float(status["frames"])}
    except (ValueError, KeyError, TypeError):
        return {"ms": ms, "uptime_s": float("nan"), "frames": float("nan")}


def _poll_status(base: str, stop: threading.Event, out: list[dict[str, float] | None]) -> None:
    """GET /status every STATUS_S s (a `_status_sample` into `out`); the page's requests every PAGE_S s."""
    next_page = 0.0
    while not stop.wait(STATUS_S):
        out.append(_status_sample(base))
        if time.monotonic() >= next_page:
            next_page = time.monotonic() + PAGE_S
            _get(base + "/controls")
            _get(base + "/frame.jpg")


def _fps_first_last_third(status: list[dict[str, float] | None]) -> list[float | None]:
    """The show's frame rate over the first and the last third of the /status answers (frames
    counted by the show over its own uptime), or None where a third has under two answers.
    A show that slows down as it runs (a growing queue, a leak that costs time) shows here."""
    answered = [x for x in status if x is not None and np.isfinite(x["frames"])]
    third = len(answered) // 3
    rates: list[float | None] = []
    for part in (answered[:third], answered[len(answered) - third :]):
        span = part[-1]["uptime_s"] - part[0]["uptime_s"] if len(part) >= 2 else 0.0
        rates.append(round((part[-1]["frames"] - part[0]["frames"]) / span, 2) if span > 0 else None)
    return rates


def _slope_mb_per_hour(samples: list[dict[str, float]]) -> float:
    tail = samples[len(samples) // 3 :]
    if len(tail) < 2:
        return 0.0
    t = np.array([x["t_s"] for x in tail]) / 3600.0
    rss = np.array([x["rss_mb"] for x in tail])
    return float(np.polyfit(t, rss, 1)[0])


# Resident memory scatters by about 0.9 MB (one standard deviation) around its trend as the
# allocator reuses frames and caches; a slope fitted to n samples spread over t has a spread of
# 0.9 MB / (sqrt(n) * std(t)). Over a 10-minute soak's last two thirds that is 4.2 MB/h with a
# sample every 10 s and 6.8 MB/h every 30 s (docs/BENCHMARKS.md, "How long a soak must be").
SAMPLE_S = 10.0


def soak(minutes: float, sample_s: float = SAMPLE_S) -> dict[str, Any]:
    """Run the soak; the samples and their summary (see the module docstring)."""
    port, http_port = free_udp_port(), free_tcp_port()
    seconds = minutes * 60.0
    with tempfile.TemporaryDirectory(prefix="latent-stage-soak-") as tmp:
        folder = Path(tmp)
        setlist = folder / "soak.setlist.toml"
        items = "".join(f'\n[[item]]\nscene = "{REPO_ROOT / "scenes" / name}"\n' for name in SCENES)
        setlist.write_text(f"dwell_seconds = {DWELL_S}\nfade_seconds = 2.0\n{items}")
        stats_path = folder / "stats.json"
        cmd = [sys.executable, str(REPO_ROOT / "run_show.py"), "-q", "show", "--headless", "--no-audio"]
        cmd += ["--setlist", str(setlist), "--seconds", str(seconds + 30), "--osc-port", str(port)]
        cmd += ["--oscquery-port", "0", "--stats", str(stats_path), "--presets", str(folder / "presets")]
        cmd += ["--state", str(folder / "state.json"), "--learn-save", str(folder / "learned.toml")]
        cmd += ["--http", f"127.0.0.1:{http_port}"]
        with open(os.devnull, "w") as devnull:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=devnull, stderr=subprocess.PIPE, text=True)
        stop = threading.Event()
        sent = [0]
        status: list[dict[str, float] | None] = []
        try:
            if not wait_for_pong(port, 120.0, proc):
                raise RuntimeError("the soaked show did not answer /ping")
            sender = threading.Thread(target=lambda: sent.__setitem__(0, _traffic(port, stop)), daemon=True)
            sender.start()
            poller = threading.Thread(
                target=_poll_status, args=(f"http://127.0.0.1:{http_port}", stop, status), daemon=True
            )
            poller.start()
            samples = []
            t0 = time.monotonic()
            while (t := time.monotonic() - t0) < seconds:
                if proc.poll() is not None:
                    raise RuntimeError(f"the show ended during the soak (exit {proc.returncode})")
                samples.append({"t_s": round(t, 1), **_proc_sample(proc.pid), "ping_ms": _ping_ms(port)})
                time.sleep(max(0.0, sample_s - (time.monotonic() - t0 - t)))
            stop.set()
            sender.join(5.0)
            poller.join(5.0)
            proc.terminate()  # the show stops, writes its stats and exits 0 (its --seconds is a margin)
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"the soaked show exited {proc.returncode} on SIGTERM: {err[-2000:]}")
        finally:
            stop.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        show = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    pings = [x["ping_ms"] for x in samples if x["ping_ms"] is not None]
    answered = np.array([x["ms"] for x in status if x is not None] or [0.0])
    return {
        "minutes": minutes,
        "sent": sent[0],
        "samples": samples,
        "rss_slope_mb_per_hour": round(_slope_mb_per_hour(samples), 3),
        "rss_mb": [round(samples[0]["rss_mb"], 1), round(samples[-1]["rss_mb"], 1)],
        "threads": [min(x["threads"] for x in samples), max(x["threads"] for x in samples)],
        "fds": [min(x["fds"] for x in samples), max(x["fds"] for x in samples)],
        "ping_ms": {"answered": len(pings), "of": len(samples), "max": round(max(pings, default=0.0), 2)},
        "status_ms": {
            "answered": int(sum(x is not None for x in status)),
            "of": len(status),
            "p50": round(float(np.percentile(answered, 50)), 2),
            "p99": round(float(np.percentile(answered, 99)), 2),
            "max": round(float(answered.max()), 2),
        },
        "fps_first_last_third": _fps_first_last_third(status),
        "show": {k: show.get(k) for k in ("fps", "frame_ms", "late_frames", "frame_errors", "hook_errors", "setlist")},
    }


def format_soak(r: dict[str, Any]) -> str:
    s = r["show"]
    return (
        f"soak {r['minutes']:g} min, {r['sent']} OSC messages: "
        f"resident memory {r['rss_mb'][0]} -> {r['rss_mb'][1]} MB, "
        f"slope {r['rss_slope_mb_per_hour']:+.2f} MB/h over the last two thirds; threads {r['threads'][0]}-"
        f"{r['threads'][1]}, file handles {r['fds'][0]}-{r['fds'][1]}; /ping answered {r['ping_ms']['answered']}/"
        f"{r['ping_ms']['of']} (max {r['ping_ms']['max']} ms); GET /status every {STATUS_S:g} s answered "
        f"{r['status_ms']['answered']}/{r['status_ms']['of']} (p50 {r['status_ms']['p50']} ms, p99 "
        f"{r['status_ms']['p99']} ms, max {r['status_ms']['max']} ms); show {s.get('fps')} fps (first third "
        f"{r['fps_first_last_third'][0]}, last third {r['fps_first_last_third'][1]}), "
        f"late {s.get('late_frames')}, frame errors {s.get('frame_errors')}, setlist {s.get('setlist')}"
    )
