"""Whether a GAN's discriminator still tells the pictures from the samples: its mean logits on both.

    .venv/bin/python scripts/d_logits.py OUT --data DIR [--samples 64] [--seed 123]

OUT is a `train gan --out` path: its state file (OUT.state.safetensors) holds D,
G and the config. Prints one JSON line: D's mean logit per path (the main path,
then the fast family's small and fine paths) on SAMPLES random crops of the pictures and on
SAMPLES of G's samples, plain and through the training augmentation. Why: on a
few pictures the sample distance falls, then climbs again (docs/TRAINING.md, "LeCam
against the climb"); a D that memorises the pictures shows real logits far above
the fakes', a D that has let go shows them equal. Checkpoint log lines show the
same as moving averages during training; this reads any state file afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.errors import ModelFileError, TrainSetupError  # noqa: E402
from engine.models.checkpoint import read_state  # noqa: E402
from engine.train.common import out_paths  # noqa: E402
from engine.train.gan import GanTrainOptions, _GanRun, diff_augment, per_path  # noqa: E402
from engine.train.images import random_crops  # noqa: E402


def d_logits(out: str, data: str, samples: int, seed: int) -> dict[str, Any]:
    """D's mean logits per path on real crops and G's samples, plain and augmented, for the run at `out`."""
    config = read_state(out_paths(Path(out))[2], "gan")[1]["config"]
    run = _GanRun(GanTrainOptions(data=data, out=out, device="cpu", resume=True, **config), torch.device("cpu"))
    run.resume()
    gen = torch.Generator().manual_seed(seed)
    result: dict[str, Any] = {"out": out, "step": run.step}
    with torch.no_grad():
        real = random_crops(run.images, samples, run.config.size, gen)  # (N, 3, S, S)
        fake = run.g(torch.randn(samples, run.config.latent_dim, generator=gen))
        for name, policy in (("plain", ()), ("augmented", run.opts.augment)):
            r, f = (per_path(run.d(diff_augment(x, gen, policy)), samples).mean(1) for x in (real, fake))  # (P,)
            result[name] = {"real": [round(v, 4) for v in r.tolist()], "fake": [round(v, 4) for v in f.tolist()]}
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="d_logits.py", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the training run's --out path (its state file is read)")
    parser.add_argument("--data", required=True, help="the folder of pictures it trained on")
    parser.add_argument("--samples", type=int, default=64, help="real crops and samples each (default 64)")
    parser.add_argument("--seed", type=int, default=123, help="seed of crops, latents and augmentation")
    args = parser.parse_args(argv[1:])
    try:
        print(json.dumps(d_logits(args.out, args.data, args.samples, args.seed)))
    except (ModelFileError, TrainSetupError) as err:
        print(f"d_logits.py: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
