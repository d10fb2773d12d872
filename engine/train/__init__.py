"""Offline training: data loading, one trainer per model family, sample metrics.

Each family is a module `engine.train.<family>` with:
  HELP: str                                     one line for `train --help`
  train(options, progress: bool) -> dict        train; TrainSetupError for bad setup; returns a summary
  DISTRIBUTED: bool (optional)                  True if it trains under torchrun (engine.train.dist)
Its options are a frozen dataclass there (GanTrainOptions, ...; the shared fields in
engine.train.common). The CLI builds `train <family>` from FAMILIES, its flags and the
options they become in engine.flags; families whose module is not there yet are left out.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

FAMILIES: tuple[str, ...] = ("gan", "vae", "notes", "text")


def family_modules() -> dict[str, ModuleType]:
    """family name -> its trainer module, for the families that exist."""
    out = {}
    for name in FAMILIES:
        module = f"{__name__}.{name}"
        if importlib.util.find_spec(module) is not None:
            out[name] = importlib.import_module(module)
    return out
