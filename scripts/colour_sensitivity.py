"""How much the patch distance and KID move when only the colours of the pictures change.

    .venv/bin/python scripts/colour_sensitivity.py DIR [--size 128] [--seed 5]

Prints one line per variant of DIR's pictures: other crops of the same pictures
(what a perfect generator scores), the crops with their chroma inverted around
the grey (every shape intact, anti-correlated colours), with chroma tripled
(saturated), and uniform noise (nothing intact). Each against 64 reference crops,
by the trainer's patch distance (engine/train/distance.py) and the report's KID
(engine/eval). Why: on the photos the patch distance rated a generator's saturated
colour noise as close as photo-like samples (docs/TRAINING.md, "The photos'
second seeds"); this shows how little a colour change alone costs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.eval.features import image_features  # noqa: E402
from engine.eval.metrics import kid  # noqa: E402
from engine.train.distance import sample_distance  # noqa: E402
from engine.train.images import load_image_folder, random_crops  # noqa: E402


def colour_sensitivity(folder: str, size: int, seed: int, n: int = 128) -> dict[str, tuple[float, float]]:
    """{variant: (patch distance, KID)} against 64 crops of the folder's pictures, all (N, 3, size, size)."""
    images, _ = load_image_folder(folder, size)
    gen = torch.Generator().manual_seed(seed)
    real = random_crops(images, 64, size, gen)
    other = random_crops(images, n, size, gen)
    grey = other.mean(1, keepdim=True)  # (N, 1, S, S): each pixel's mean of R, G, B
    variants = {
        "other crops": other,
        "chroma inverted": (2 * grey - other).clamp(-1, 1),
        "chroma x3": (grey + 3 * (other - grey)).clamp(-1, 1),
        "uniform noise": torch.rand(n, 3, size, size, generator=gen) * 2 - 1,
    }
    real_features = image_features(real)
    return {name: (sample_distance(x, real), kid(real_features, image_features(x))[0]) for name, x in variants.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="colour_sensitivity.py", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder of pictures")
    parser.add_argument("--size", type=int, default=128, help="crop side in px (default 128)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the crops and the noise (default 5)")
    args = parser.parse_args(argv[1:])
    torch.set_num_threads(2)
    for name, (distance, k) in colour_sensitivity(args.folder, args.size, args.seed).items():
        print(f"{name:16s} patch distance {distance:.4f}  KID {k:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
