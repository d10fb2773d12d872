"""Offline training: data loading, one trainer per model family, sample metrics.

Each family is a module `engine.train.<family>` with:
  HELP: str                                  one line for `train --help`
  add_args(parser) -> None                   its flags plus add_common_args(parser)
  train_from_args(ns, progress: bool) -> dict   train; ValueError for bad setup; returns a summary
The CLI builds `train <family>` from FAMILIES; families whose module is not
there yet are left out.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

FAMILIES: tuple[str, ...] = ("gan", "notes", "text")


def family_modules() -> dict[str, ModuleType]:
    """family name -> its trainer module, for the families that exist."""
    out = {}
    for name in FAMILIES:
        module = f"{__name__}.{name}"
        if importlib.util.find_spec(module) is not None:
            out[name] = importlib.import_module(module)
    return out
