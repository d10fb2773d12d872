"""How fast a generator can learn the finest detail, apart from the GAN game: regress fixed z onto real crops.

    .venv/bin/python scripts/g_fit_probe.py --data DIR [--arch fast|classic] [--preset wide]
        [--upsample bilinear|bicubic|nearest] [--minutes 4] [--threads 2] [--every 200]

Builds the preset's generator, draws 16 fixed latents and 16 fixed random crops of
the pictures (the trainer's multi-scale crops), and trains G alone with Adam on the
L1 distance between its outputs and those crops (bf16 autocast, the trainer's
equalized learning rate, 1e-3). Every `--every` steps and at the end it prints one
JSON line: the step, seconds, the L1 loss and the sample distance's pyramid levels
(finest first) of G's 16 outputs against 64 other crops. The first line gives the
same levels for the 16 target crops themselves: what a G that had learned them
would score.

Why: on the photos the fast family's samples lacked edges at every setting tried
in the GAN (docs/TRAINING.md). This asks whether G can draw them quickly at all:
with L1 a G that blurs is visible as a high finest level at a low loss.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.models.fastgan import UPSAMPLE_MODES, FastGenerator  # noqa: E402
from engine.models.gan import Generator  # noqa: E402
from engine.models.gan_arch import ARCHS, PRESET_NAMES, preset_config  # noqa: E402
from engine.train.common import equalized_param_groups  # noqa: E402
from engine.train.distance import sample_distance_levels  # noqa: E402
from engine.train.images import load_image_folder, random_crops  # noqa: E402

TARGETS = 16  # latents and target crops
REFERENCE = 64  # crops the outputs are measured against


def _levels(images: torch.Tensor, reference: torch.Tensor) -> list[float]:
    return [round(v, 4) for v in sample_distance_levels(images, reference)]


def probe(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    overrides = {"upsample": args.upsample} if args.arch == "fast" else {}
    config = preset_config(args.arch, args.preset, **overrides)
    pictures, _ = load_image_folder(args.data, config.size)
    crops = torch.Generator().manual_seed(args.seed + 1)
    reference = random_crops(pictures, REFERENCE, config.size, crops)
    targets = random_crops(pictures, TARGETS, config.size, crops)
    g: torch.nn.Module = FastGenerator(config) if args.arch == "fast" else Generator(config)  # type: ignore[arg-type]
    if isinstance(g, FastGenerator):
        g.set_training_noise(torch.Generator().manual_seed(args.seed + 2))
    z = torch.randn(TARGETS, config.latent_dim)
    opt = torch.optim.Adam(equalized_param_groups(g, 1e-3), betas=(0.5, 0.999))
    print(json.dumps({"targets": True, "levels": _levels(targets, reference)}), flush=True)
    start, step = time.perf_counter(), 0

    def report() -> None:
        g.eval()
        with torch.no_grad():
            out = g(z)
        g.train()
        line = {"step": step, "seconds": round(time.perf_counter() - start, 1)}
        line |= {"l1": round(F.l1_loss(out, targets).item(), 4), "levels": _levels(out, reference)}
        print(json.dumps(line), flush=True)

    while time.perf_counter() - start < args.minutes * 60.0:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = g(z)
        loss = F.l1_loss(out.float(), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % args.every == 0:
            report()
    report()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of pictures")
    p.add_argument("--arch", default="fast", choices=ARCHS)
    p.add_argument("--preset", default="wide", choices=PRESET_NAMES)
    p.add_argument("--upsample", default="bilinear", choices=UPSAMPLE_MODES, help="fast family only")
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--every", type=int, default=200, help="steps between report lines")
    p.add_argument("--seed", type=int, default=0)
    probe(p.parse_args())


if __name__ == "__main__":
    main()
