"""A private JACK server on the dummy driver: real JACK MIDI and audio with no
hardware, for benchmarks and integration tests.

Each server gets a unique name (exported as JACK_DEFAULT_SERVER, which every
JACK client of this process then joins), so parallel runs never meet.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TOOLS = ("jackd", "jack_wait")


def missing_tools(extra: tuple[str, ...] = ()) -> list[str]:
    """The JACK command line tools (and `extra` ones) not on PATH."""
    return [t for t in TOOLS + extra if shutil.which(t) is None]


@contextlib.contextmanager
def dummy_server(rate: int = 48000, period: int = 256, log_file: Path | None = None) -> Iterator[str]:
    """Start `jackd -d dummy` at `rate` Hz with `period` frames per block; yield its name.

    Raises RuntimeError (with jackd's last output) when it does not come up in 10 s.
    """
    name = f"ls-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_AUDIO_RESERVATION")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_AUDIO_RESERVATION"] = "1"  # no D-Bus device reservation on headless machines
    with contextlib.ExitStack() as stack:
        if log_file is None:
            log_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "jackd.log"
        log = stack.enter_context(open(log_file, "w"))
        command = ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(rate), "-p", str(period)]
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        ok = False
        try:
            ok = subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True, timeout=15).returncode == 0
            if not ok:
                log.flush()
                raise RuntimeError("the JACK dummy server did not start: " + log_file.read_text()[-300:])
            yield name
        finally:
            _stop(proc)
            if ok and proc.returncode != 0:  # killed under us (a test of a server that dies): not by our SIGINT
                _reclaim(command, log)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)  # jackd shuts down cleanly on SIGINT
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _reclaim(command: list[str], log: IO[str]) -> None:
    """Free the registry slot of a server that was killed: JACK keeps at most 8 servers in
    /dev/shm/jack-shm-registry and frees a dead one's slot only when a server of the same
    name starts again, so every killed server would otherwise leave the machine one fewer
    ("Too many servers already active" after a few runs)."""
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    subprocess.run(["jack_wait", "-w", "-t", "5"], capture_output=True, timeout=10)
    _stop(proc)
