"""What `run_show.py eval` (and the evaluation at the end of `train`) is asked to do.

A leaf module (no torch): engine.flags builds EvalOptions from the `eval` flags
and takes the flags' defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SAMPLES = 128  # pictures, melodies or text passages generated
REPORT_SUFFIX = ".report"  # trained/NAME.safetensors -> trained/NAME.report/


@dataclass(frozen=True)
class EvalOptions:
    """model: the model file. data: its data folder (or text file); None = the one the
    model file records, if that path exists here. out: the report folder; None =
    NAME.report beside NAME.safetensors. samples: how many pictures, melodies or
    passages to generate. seed: every random draw of the evaluation (latents, crops,
    subsets) derives from it, so two runs with the same seed measure alike."""

    model: str
    data: str | None = None
    out: str | None = None
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    device: str = "auto"
