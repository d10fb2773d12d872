#!/usr/bin/env python3
"""Latent Stage entry point: `python run_show.py show|render|train|eval|bench|params|devices ...`.

The one place that prints: engine.cli.run() returns each command's report and
its errors as text; the engine itself only logs (to stderr).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from engine.cli import run


def main(argv: Sequence[str] | None = None) -> int:
    code, out, err = run(argv)
    if out:
        try:
            print(out, flush=True)
        except BrokenPipeError:  # `latent-stage params | head`: the reader has gone, end quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    if err:
        print(err, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
