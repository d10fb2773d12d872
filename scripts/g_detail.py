"""Where a fast generator's fine detail goes: per up-block, the detail share of its maps and its noise strength.

    .venv/bin/python scripts/g_detail.py MODEL.safetensors [MODEL ...] [--samples 16] [--seed 0]

Prints one JSON line per model: for each up-block (side 8, 16, ... size px) the
share of its output maps' spectral energy at periods of 4 px or less (the eval
report's detail_share, taken per channel map), and the mean absolute noise
strength of its last conv; then the picture's own detail share. A report that
says blur (detail_ratio well below 1) does not say which layer gave the detail
up; this does: a block whose maps and noise strength fall to about 0 draws
nothing finer than the block below it, upsampled.
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

from engine.errors import ModelFileError  # noqa: E402
from engine.eval.metrics import detail_energy_share  # noqa: E402
from engine.models.checkpoint import load_generator  # noqa: E402
from engine.models.fastgan import FastGenerator  # noqa: E402


def _map_detail(maps: torch.Tensor) -> float:
    """Mean detail share of every channel map of (B, C, S, S), each taken as a grey picture."""
    b, c, s, _ = maps.shape
    return float(detail_energy_share(maps.float().reshape(b * c, 1, s, s)).mean())


def block_detail(g: FastGenerator, samples: int, seed: int) -> dict[str, Any]:
    """Per up-block: side (px), detail_share of its output maps, noise_strength (mean |s|); and the image's."""
    outs: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda _m, _i, out: outs.append(out)) for b in g.blocks]
    try:
        z = torch.randn(samples, g.config.latent_dim, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            image = g(z)  # (samples, 3, size, size)
    finally:
        for h in hooks:
            h.remove()
    blocks = [
        {
            "side": int(out.shape[-1]),
            "detail_share": round(_map_detail(out), 4),
            "noise_strength": round(float(block.layers[-1].strength.abs().mean()), 4),
        }
        for out, block in zip(outs, g.blocks)
    ]
    return {"blocks": blocks, "image_detail_share": round(float(detail_energy_share(image).mean()), 5)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="g_detail.py", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="fast-family GAN model files")
    parser.add_argument("--samples", type=int, default=16, help="latents drawn per model (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    args = parser.parse_args(argv[1:])
    for path in args.models:
        try:
            g, _ = load_generator(path)
        except ModelFileError as err:
            print(f"g_detail.py: {err}", file=sys.stderr)
            return 2
        if not isinstance(g, FastGenerator):
            msg = f"g_detail.py: {path} is a classic GAN; only --arch fast models have noisy up-blocks"
            print(msg, file=sys.stderr)
            return 2
        print(json.dumps({"model": str(path), **block_detail(g, args.samples, args.seed)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
