"""The supervisor: restarts after a crash or a hang, backs off a crash loop, resumes the state."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from engine.devices.notify import Notifier
from engine.supervise import STABLE_S, _exit_reason, next_backoff, split_show_args
from tests.conftest import REPO, two_scene_files


def test_backoff_doubles_while_crash_looping_and_resets_after_a_stable_run():
    waits, previous = [], 0.0
    for _ in range(8):
        previous = next_backoff(previous, ran_s=0.5, ceiling=60.0)
        waits.append(previous)
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert next_backoff(32.0, ran_s=STABLE_S + 1, ceiling=60.0) == 1.0


def test_exit_reasons_and_argument_split():
    assert _exit_reason(-9) == "was killed by SIGKILL" and _exit_reason(2) == "exited with status 2"
    assert _exit_reason(0) == "ended cleanly"
    assert split_show_args(["--state", "s.json", "--", "--headless"]) == (["--state", "s.json"], ["--headless"])


def test_without_a_notify_socket_the_notifier_does_nothing():
    n = Notifier(env={})
    n(None)
    n.close()
    assert not n.active and n.sent == 0
    assert Notifier(env={"WATCHDOG_USEC": "4000000"}).period == 2.0


@pytest.mark.integration
def test_the_notifier_sends_ready_then_a_heartbeat(tmp_path):
    path = str(tmp_path / "notify")
    clock = [0.0]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(2.0)
        n = Notifier(env={"NOTIFY_SOCKET": path}, now=lambda: clock[0])
        n()
        clock[0] = 0.5
        n()  # within the period: nothing
        clock[0] = 1.1
        n()
        n.close()
        got = [sock.recv(100).decode() for _ in range(3)]
    assert got[0].startswith("READY=1") and got[1:] == ["WATCHDOG=1", "STOPPING=1"]


def _log(path):
    return path.read_text().splitlines() if path.exists() else []


def _wait_for(predicate, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _child_pid(line):
    return int(line.rsplit("pid ", 1)[1].split(")")[0].split(",")[0])


@pytest.mark.integration
def test_a_killed_or_hung_show_is_restarted_where_it_was(tmp_path):
    two_scene_files(tmp_path)
    setlist = tmp_path / "s.setlist.toml"
    setlist.write_text('dwell_seconds = 4\nfade_seconds = 1\n[[item]]\nscene = "a.toml"\n[[item]]\nscene = "b.toml"\n')
    state, log = tmp_path / "state.json", tmp_path / "supervise.log"
    show = ["--headless", "--no-audio", "--threads", "1", "--setlist", str(setlist), "--osc-port", "0"]
    show += ["--oscquery-port", "0", "--presets", str(tmp_path / "p"), "--set", "/master/speed=0.5"]
    cmd = [sys.executable, str(REPO / "run_show.py"), "supervise", "--state", str(state), "--hang-seconds", "3"]
    cmd += ["--log", str(log), "--", *show]
    started = time.monotonic()
    sup = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: any("presenting frames" in x for x in _log(log)), 60), _log(log)
        cold = time.monotonic() - started  # s: this machine's cold start (2-6 s seen on 2-core VMs)
        # The set reaches item 2 at 4 s; the state is saved every 5 s: wait for a save there.
        assert _wait_for(lambda: state.exists() and json.loads(state.read_text())["setlist"]["item"] == 1, 60)
        first = [x for x in _log(log) if "presenting frames" in x][0]
        os.kill(_child_pid(first), signal.SIGKILL)
        killed = time.monotonic()
        assert _wait_for(lambda: sum("presenting frames" in x for x in _log(log)) == 2, 30), _log(log)
        # A new show presents frames within 5 s, or one cold start and 2 s on a slower machine
        # (a Zen 1 VM starts a show in ~6 s): the restart waits for nothing but the start itself.
        assert time.monotonic() - killed < max(5.0, cold + 2.0)
        saved = json.loads(state.read_text())
        assert saved["setlist"]["item"] == 1 and saved["params"]["/master/speed"] == 0.5
        second = [x for x in _log(log) if "presenting frames" in x][1]
        os.kill(_child_pid(second), signal.SIGSTOP)  # alive, but its frame loop stands still
        assert _wait_for(lambda: sum("presenting frames" in x for x in _log(log)) == 3, 30), _log(log)
    finally:
        sup.send_signal(signal.SIGTERM)
        err = sup.communicate(timeout=30)[1].decode()
    lines = _log(log)
    assert any("was killed by SIGKILL; restart 1" in x for x in lines), lines
    assert any("presented no frame for 3 s" in x and "restart 2" in x for x in lines), lines
    assert "resumed at item 2/2 b" in err and sup.returncode == 0
    assert json.loads(state.read_text())["params"]["/master/speed"] == 0.5  # restored, then saved again


@pytest.mark.integration
def test_a_show_that_crashes_at_once_is_retried_with_back_off(tmp_path):
    log = tmp_path / "supervise.log"
    cmd = [sys.executable, str(REPO / "run_show.py"), "supervise", "--max-restarts", "3", "--log", str(log)]
    cmd += ["--", "--headless", "--scene", str(tmp_path / "missing.toml")]
    start = time.monotonic()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    restarts = [x for x in _log(log) if "exited with status 2; restart" in x]
    assert [x.rsplit(" in ", 1)[1] for x in restarts] == ["1 s", "2 s", "4 s"], _log(log)
    assert took >= 7.0 and "not restarted" in _log(log)[-1]
    assert r.returncode == 2 and "could not be kept running" in r.stderr
