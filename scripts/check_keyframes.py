"""Render a pictures scene offline twice and check what a keyframe scene promises; prints JSON.

    .venv/bin/python scripts/check_keyframes.py scenes/pictures_morph.toml [--fps 30]

- at every frame of each key's hold, the frame's PSNR against that key's own picture as the model
  draws it (a VAE: the reconstruction; a GAN: G of the projected latent) is >= 30 dB;
- in each travel between keys, the frame-to-frame change (mean absolute 8-bit levels) has no
  spike above 4 times that travel's median;
- the two renders are identical.
The scene must time its keys in seconds (hold_seconds / travel_seconds); one loop is rendered.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.files.scene import load_scene  # noqa: E402
from engine.stage.deck import load_scenes  # noqa: E402
from engine.stage.offline import render  # noqa: E402


def _frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(folder.glob("*.png"))])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 100.0 if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("scene", type=Path)
    p.add_argument("--fps", type=int, default=30)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the loader's lines (projection PSNRs) to stderr
    spec = load_scene(args.scene)
    if spec.path_kind != "pictures" or spec.beats_per_key is not None:
        raise SystemExit("the scene must be a pictures path timed in seconds")
    started = time.perf_counter()
    scene = load_scenes([spec], torch.device("cpu"))[0]  # encodes or projects (and caches) the pictures
    load_s = time.perf_counter() - started
    n, per_key = int(scene.path.period), spec.seconds_per_key  # type: ignore[attr-defined]
    hold = float(scene.path.hold) * per_key  # type: ignore[attr-defined]
    renders = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("a", "b"):
            render([spec], seconds=n * per_key, fps=args.fps, out=f"{tmp}/{name}/")
            renders.append(_frames(Path(tmp) / name))
    frames = renders[0]
    wants = []
    with torch.no_grad():
        for k in range(n):
            z = torch.from_numpy(scene.path.at(float(k))).unsqueeze(0)
            img = scene.generator(z)[0].float()
            wants.append(((img.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())
    change = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    keys = []
    for k in range(n):
        first, end = round(k * per_key * args.fps), round((k + 1) * per_key * args.fps)
        hold_end = round((k * per_key + hold) * args.fps)
        hold_psnr = min(_psnr(frames[i], wants[k]) for i in range(first, min(hold_end, len(frames))))
        travel = change[hold_end : min(end, len(change))]
        ratio = float(travel.max() / np.median(travel)) if len(travel) and np.median(travel) > 0 else float("nan")
        keys.append({"key": k + 1, "hold_min_psnr_db": round(hold_psnr, 2), "travel_spike_ratio": round(ratio, 3)})
    result = {
        "scene": str(args.scene),
        "frames": int(len(frames)),
        "fps": args.fps,
        "load_s": round(load_s, 2),
        "identical": bool(np.array_equal(renders[0], renders[1])),
        "keys": keys,
        "ok": bool(
            np.array_equal(renders[0], renders[1])
            and all(k["hold_min_psnr_db"] >= 30.0 and k["travel_spike_ratio"] <= 4.0 for k in keys)
        ),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
