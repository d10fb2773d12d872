#!/usr/bin/env python3
"""Latent Stage entry point: `python run_show.py show|render|train|bench ...`."""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
