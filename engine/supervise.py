"""`run_show.py supervise [--state FILE] -- <show args>`: keep a show running for weeks.

The supervisor starts `run_show.py show <show args>` with $NOTIFY_SOCKET set to
a datagram socket of its own (the protocol systemd uses, engine.devices.notify),
and restarts the show when
- it exits with an error or is killed (a crash, `kill -9`, the OOM killer), or
- it stops presenting frames: no heartbeat for `--hang-seconds` (the frame loop
  sends one about every second; a live process whose loop hangs sends none), or
  no first frame within `--start-seconds`.
A show that ends cleanly (exit 0: --seconds, Esc, SIGTERM) ends the supervisor.
Restarts back off: a show that dies within `STABLE_S` of its start waits 1 s,
then 2, 4 ... up to `--max-backoff` before the next try (a crash loop does not
spin); one that ran longer restarts after 1 s. With `--state FILE` the show
saves its state there and every restart resumes from it (same setlist item,
scenes and params). Every start, restart and its reason is logged (one line
each) to stderr and, with `--log FILE`, appended to that file.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import StartupError

log = logging.getLogger(__name__)

STABLE_S = 30.0  # a show that ran this long was not crash-looping: the back-off starts again
FIRST_BACKOFF_S = 1.0
RUN_SHOW = Path(__file__).resolve().parent.parent / "run_show.py"


@dataclass(frozen=True)
class SuperviseOptions:
    show_args: tuple[str, ...]
    state: Path | None = None
    hang_seconds: float = 10.0
    start_seconds: float = 120.0  # model loading on a slow disk, a first-time font cache ...
    max_backoff: float = 60.0
    max_restarts: int | None = None  # tests: stop after this many restarts
    log_file: Path | None = None


def next_backoff(previous: float, ran_s: float, ceiling: float) -> float:
    """Seconds to wait before the next start: 1 after a run of STABLE_S or more, else double."""
    if ran_s >= STABLE_S or previous <= 0.0:
        return FIRST_BACKOFF_S
    return min(previous * 2.0, ceiling)


class Supervisor:
    """Runs the show until it ends cleanly (or the supervisor is told to stop)."""

    def __init__(self, opts: SuperviseOptions, sleep: Callable[[float], None] = time.sleep) -> None:
        if opts.hang_seconds <= 0 or opts.start_seconds <= 0:
            raise StartupError("--hang-seconds and --start-seconds must be more than 0")
        self.opts = opts
        self._sleep = sleep
        self.restarts = 0
        self.reasons: list[str] = []
        self._stopping = False
        self._child: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, str(RUN_SHOW), "show", *self.opts.show_args]
        if self.opts.state is not None:
            cmd += ["--state", str(self.opts.state), "--resume-state", str(self.opts.state)]
        return cmd

    def stop(self, *_: object) -> None:
        """SIGTERM/SIGINT: pass it on to the show and end after it."""
        self._stopping = True
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()

    def run(self) -> int:
        backoff = 0.0
        with tempfile.TemporaryDirectory(prefix="latent-stage-supervise-") as tmp:
            path = os.path.join(tmp, "notify")
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.bind(path)
                while True:
                    started = time.monotonic()
                    code, reason = self._run_once(sock, path)
                    if code == 0 or self._stopping:
                        self._say(
                            f"show ended ({reason}); supervisor done after {self.restarts} restart(s)", quiet=True
                        )
                        return 0 if code == 0 or self._stopping else code
                    if self.opts.max_restarts is not None and self.restarts >= self.opts.max_restarts:
                        self._say(
                            f"show {reason}; not restarted (--max-restarts {self.opts.max_restarts})", quiet=False
                        )
                        return 1
                    backoff = next_backoff(backoff, time.monotonic() - started, self.opts.max_backoff)
                    self.restarts += 1
                    self.reasons.append(reason)
                    self._say(f"show {reason}; restart {self.restarts} in {backoff:g} s", quiet=False)
                    self._sleep(backoff)
                    if self._stopping:
                        return 0

    def _run_once(self, sock: socket.socket, path: str) -> tuple[int, str]:
        """Start the show and watch it: (exit status, what happened)."""
        # The show reports its restarts in its HTTP status (engine.control.http.RESTARTS_ENV).
        env = dict(os.environ, NOTIFY_SOCKET=path, LATENT_STAGE_RESTARTS=str(self.restarts))
        env.pop("WATCHDOG_USEC", None)  # the show's heartbeat period is its default second
        self._drain(sock)
        child = self._child = subprocess.Popen(self.command(), env=env)  # noqa: S603 - our own interpreter and script
        self._say(f"show started (pid {child.pid})")
        ready, last = False, time.monotonic()
        while True:
            sock.settimeout(0.25)
            try:
                message = sock.recv(4096).decode(errors="replace")
                last = time.monotonic()
                if not ready and "READY=1" in message:
                    ready = True
                    self._say(f"show presenting frames (pid {child.pid})")
            except TimeoutError:
                pass
            code = child.poll()
            if code is not None:
                return code, _exit_reason(code)
            quiet = time.monotonic() - last
            limit = self.opts.hang_seconds if ready else self.opts.start_seconds
            if quiet > limit:
                what = "presented no frame" if ready else "did not present its first frame"
                self._kill(child)
                return -1, f"{what} for {quiet:.0f} s (pid {child.pid}, killed)"

    @staticmethod
    def _drain(sock: socket.socket) -> None:
        sock.settimeout(0.0)
        try:
            while sock.recv(4096):
                pass
        except (BlockingIOError, TimeoutError):
            pass

    @staticmethod
    def _kill(child: subprocess.Popen[bytes]) -> None:
        child.kill()  # SIGKILL: a hung (or stopped) process does not answer SIGTERM
        child.wait(timeout=30)

    def _say(self, text: str, quiet: bool = True) -> None:
        """One line to the log (a warning unless `quiet`) and to --log FILE."""
        log.log(logging.INFO if quiet else logging.WARNING, "supervise: %s", text)
        if self.opts.log_file is not None:
            try:
                with self.opts.log_file.open("a", encoding="utf-8") as fh:
                    fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")
            except OSError as e:
                log.warning("supervise: cannot append to %s (%s)", self.opts.log_file, e)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return "ended cleanly" if code == 0 else f"exited with status {code}"


def supervise(opts: SuperviseOptions) -> int:
    """Run the supervisor with SIGTERM/SIGINT passed on to the show; its exit status."""
    sup = Supervisor(opts)
    signal.signal(signal.SIGTERM, sup.stop)
    signal.signal(signal.SIGINT, sup.stop)
    return sup.run()


def split_show_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(supervisor args, show args) split at the first "--"."""
    args = list(argv)
    if "--" in args:
        i = args.index("--")
        return args[:i], args[i + 1 :]
    return args, []
