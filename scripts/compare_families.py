"""Train both GAN families for the same wall time on each folder, one run after the other,
and write a table of their evaluation reports plus side-by-side sample grids.

    .venv/bin/python scripts/compare_families.py --minutes 10 --out out/compare-10
        [--data ../shared/data/images/paintings --data pictures/photos] [--threads 2] [--reuse]

Nothing else should run on the machine meanwhile: the runs are compared at equal wall time.
Writes OUT/<arch>-<folder>.safetensors (+ .png grid, .report/), OUT/compare.md and
OUT/<folder>-grids.png (classic left, fast right).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.models.checkpoint import read_model  # noqa: E402

ARCHS = ("classic", "fast")
DEFAULT_DATA = (REPO.parent / "shared/data/images/paintings", REPO / "pictures/photos")
# The numbers the table shows, in order, when the report has them (lower is better unless noted).
KEYS = tuple(
    "eval_" + k
    for k in (
        "sample_distance",
        "kid",
        "precision",
        "recall",
        "coverage",
        "axis_ratio",
        "diversity_features",
        "nearest_ratio",
        "walk_jump_ratio",
    )
)


def train(arch: str, data: Path, out: Path, minutes: float, threads: int, reuse: bool = False) -> Path:
    model = out / f"{arch}-{data.name}"
    if reuse and model.with_suffix(".safetensors").exists():
        print(f"reusing {model}.safetensors (--reuse)", flush=True)
        return model.with_suffix(".safetensors")
    cmd = [sys.executable, str(REPO / "run_show.py"), "train", "gan", "--arch", arch, "--data", str(data)]
    cmd += ["--out", str(model), "--minutes", f"{minutes:g}", "--threads", str(threads)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return model.with_suffix(".safetensors")


def side_by_side(left: Path, right: Path, dest: Path) -> None:
    a, b = Image.open(left), Image.open(right)
    gap = 16
    canvas = Image.new("RGB", (a.width + gap + b.width, max(a.height, b.height)), (255, 255, 255))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + gap, 0))
    canvas.save(dest)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, action="append")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reuse", action="store_true", help="keep runs whose model file OUT already holds")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for data in args.data or DEFAULT_DATA:
        models = {arch: train(arch, data, args.out, args.minutes, args.threads, args.reuse) for arch in ARCHS}
        metrics = {arch: read_model(path, "gan")[1] for arch, path in models.items()}
        side_by_side(*(m.with_suffix(".png") for m in models.values()), args.out / f"{data.name}-grids.png")
        for arch in ARCHS:
            meta = metrics[arch]
            rows.append({"data": data.name, "arch": arch, "steps": meta["steps"], **meta["metrics"]})
    keys = [k for k in KEYS if any(k in r for r in rows)]
    lines = [
        f"# GAN families at {args.minutes:g} minutes each ({args.threads} threads)",
        "",
        "| folder | family | steps | " + " | ".join(k.removeprefix("eval_") for k in keys) + " |",
        "|" + "---|" * (3 + len(keys)),
    ]
    for r in rows:
        cells = [f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, "-")) for k in keys]
        lines.append(f"| {r['data']} | {r['arch']} | {r['steps']} | " + " | ".join(cells) + " |")
    (args.out / "compare.md").write_text("\n".join(lines) + "\n")
    (args.out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
