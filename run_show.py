#!/usr/bin/env python3
"""Latent Stage entry point: `python run_show.py show|render|train|bench|params|devices ...`.

The one place that prints: engine.cli.run() returns each command's report and
its errors as text; the engine itself only logs (to stderr).
"""

from __future__ import annotations

import signal
import sys
from typing import Sequence

from engine.cli import run


def main(argv: Sequence[str] | None = None) -> int:
    code, out, err = run(argv)
    if out:
        print(out, flush=True)
    if err:
        print(err, file=sys.stderr)
    return code


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `run_show.py params | head` ends quietly
    sys.exit(main())
