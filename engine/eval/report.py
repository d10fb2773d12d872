"""`run_show.py eval MODEL`: measure a model, write report.md with PNG figures, record the numbers.

The report goes to a folder beside the model (NAME.report/ for
NAME.safetensors, or --out): report.md (header, a table of numbers with their
meaning and which direction is better, the figures embedded by relative
links) and the figures as PNG. The same numbers, rounded to 6 significant
digits once, go into the model file's `metrics` metadata as eval_* keys
(engine.models.checkpoint.update_metrics rewrites the file atomically, tensors
untouched), so what the report says and what the file says are equal.

Kinds: "gan" and "vae" through engine.models.checkpoint.load_image_model (engine.eval.images;
a VAE's report adds its reconstructions, engine.eval.recon); "notes" and "text" through engine.models.seq
(engine.eval.seq).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from engine.errors import EvalSetupError, TrainSetupError
from engine.eval import figures
from engine.eval.features import feature_net_version
from engine.eval.images import ROWS as IMAGE_ROWS
from engine.eval.images import ImageEval, evaluate_generator
from engine.eval.options import REPORT_SUFFIX, EvalOptions
from engine.eval.recon import ROWS as RECON_ROWS
from engine.eval.recon import evaluate_reconstructions
from engine.eval.seq import NOTE_ROWS, TEXT_ROWS, SeqEval, evaluate_notes, evaluate_text
from engine.files.atomic import atomic_write_bytes
from engine.models.checkpoint import load_image_model, read_model, update_metrics
from engine.models.device import resolve_device
from engine.models.seq import load_seq_model
from engine.models.vae import VAE
from engine.train.images import load_image_folder
from engine.train.midi_data import load_midi_folder
from engine.train.text import read_text_file

log = logging.getLogger(__name__)

IMAGE_KINDS = ("gan", "vae")
META_PREFIX = "eval_"  # metrics keys the report writes: eval_kid, eval_precision, ...

WHY_RANDOM = (
    "Feature-space numbers (KID, precision/recall, density/coverage, feature diversity) use a fixed random "
    "convolutional network (engine/eval/features.py): no pretrained network (Inception, VGG, CLIP) can be "
    "downloaded here, and random conv features still capture texture statistics (Ustyuzhaninov et al. 2016; "
    "SWAG, Wang et al. 2021). They compare colour, texture and edges at several scales, not objects. They are "
    "only comparable between reports with the same feature-net version string."
)
NOVELTY = (
    "Novelty: a picture's nearest distance is the smallest RMS pixel difference (0..1 scale, at the model's "
    "size) to any picture in a memory bank: every training picture whole (its largest centred square) and "
    "mirrored, plus random crops drawn as the trainer draws them. Held-apart real crops (not in the bank) show "
    "what copies of the training material score; samples far above them are new pictures (or poor ones: read "
    "it with the fidelity numbers)."
)


@dataclass
class EvalResult:
    """Where the report went and what it says (numbers as rounded in the report and the metadata)."""

    kind: str
    report: Path
    figures: list[Path]
    numbers: dict[str, float]
    metrics: dict[str, Any]  # the model file's metrics after the update


@dataclass
class _Parts:
    """What one kind's evaluation gives the report."""

    numbers: dict[str, float]
    rows: Mapping[str, tuple[str, str]]
    figures: list[tuple[str, str, Image.Image]]  # (file name, heading, picture)
    header: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def rounded(value: float) -> float:
    """6 significant digits: the one rounding the report and the metadata share."""
    return float(f"{float(value):.6g}")


def report_folder(model: str | os.PathLike[str], out: str | os.PathLike[str] | None) -> Path:
    """--out, or NAME.report beside NAME.safetensors."""
    if out is not None:
        return Path(out)
    path = Path(model)
    return path.with_name(path.stem + REPORT_SUFFIX)


def resolve_data(opts: EvalOptions, meta: Mapping[str, Any]) -> Path:
    """--data if given (it must exist), else the data the model file records if that path exists here."""
    if opts.data is not None:
        path = Path(opts.data)
        if not path.exists():
            raise EvalSetupError(f"--data '{path}' does not exist")
        return path
    recorded = meta["data"].get("folder") or meta["data"].get("file")
    tried = [Path(recorded), Path(opts.model).parent / recorded] if isinstance(recorded, str) and recorded else []
    for path in tried:
        if path.exists():
            log.info("evaluating against %s (the data the model file records)", path)
            return path
    where = f" (tried {', '.join(repr(str(p)) for p in tried)})" if tried else ""
    raise EvalSetupError(
        f"model file '{opts.model}' records its data as {recorded!r}, which is not a path that exists here{where}; "
        "give --data (a picture or MIDI folder, or the text file)"
    )


def evaluate(opts: EvalOptions) -> EvalResult:
    """Measure the model, write the report folder, record the numbers in the model file."""
    if opts.samples < 4:
        raise EvalSetupError(f"--samples must be at least 4, got {opts.samples}")
    _, meta = read_model(opts.model, None)  # ModelFileError: missing, not a model file, unknown kind
    data = resolve_data(opts, meta)
    device = resolve_device(opts.device)
    try:
        if meta["kind"] in IMAGE_KINDS:
            parts = _image_parts(opts, data, device, meta)
        elif meta["kind"] == "notes":
            parts = _notes_parts(opts, data, meta)
        else:
            parts = _text_parts(opts, data)
    except TrainSetupError as exc:  # the data readers' messages name the folder or file (the text one, the flag)
        raise EvalSetupError(str(exc) if str(exc).startswith("--data") else f"--data: {exc}") from None
    numbers = {k: rounded(parts.numbers[k]) for k in parts.rows}
    folder = report_folder(opts.model, opts.out)
    written = []
    for name, _, picture in parts.figures:
        figures.save_png(picture, folder / name)
        written.append(folder / name)
    extra: dict[str, Any] = {META_PREFIX + k: v for k, v in numbers.items()}
    extra |= {META_PREFIX + "samples": opts.samples, META_PREFIX + "seed": opts.seed, META_PREFIX + "data": data.name}
    extra |= {META_PREFIX + k: v for k, v in parts.meta.items()}
    report = folder / "report.md"
    atomic_write_bytes(report, _markdown(opts, meta, data, parts, numbers).encode("utf-8"))
    metrics = update_metrics(opts.model, extra)
    log.info("evaluation report: %s", report)
    return EvalResult(meta["kind"], report, written, numbers, metrics)


def _image_parts(opts: EvalOptions, data: Path, device: torch.device, meta: Mapping[str, Any]) -> _Parts:
    module, _ = load_image_model(opts.model, device=device)
    size, latent_dim = int(module.config.size), int(module.config.latent_dim)
    pictures, scan = load_image_folder(data, size)
    generate = lambda z: module(z.to(device)).float().cpu()  # (B, latent_dim) -> (B, 3, S, S) on the CPU
    result = evaluate_generator(generate, latent_dim, pictures, size, opts.samples, opts.seed)
    version = feature_net_version(size)
    parts = _Parts(
        numbers=result.numbers,
        rows=IMAGE_ROWS,
        figures=_image_figures(result),
        header={"pictures": str(len(pictures)), "feature net": version},
        notes=[WHY_RANDOM, NOVELTY],
        meta={"feature_net": version},
    )
    if isinstance(module, VAE):
        _add_reconstructions(parts, module, pictures, scan.names, data, meta, device)
    return parts


def _add_reconstructions(
    parts: _Parts,
    vae: VAE,
    pictures: list[torch.Tensor],
    names: list[str],
    data: Path,
    meta: Mapping[str, Any],
    device: torch.device,
) -> None:
    """A VAE's report also says how it reconstructs its pictures, seen and held out (engine.eval.recon)."""
    recorded = meta["data"]
    own = data.resolve().name == recorded.get("folder")
    held = list(recorded.get("held_out", [])) if own else list(names)
    result = evaluate_reconstructions(vae, pictures, names, held, device)
    present = {k: v for k, v in result.numbers.items() if math.isfinite(v)}
    parts.numbers |= present
    parts.rows = {**{k: RECON_ROWS[k] for k in present}, **parts.rows}
    parts.header["held out"] = ", ".join(held) if own else "every picture (not the folder it trained on)"
    figure = figures.pairs_figure(result.views, result.recons, result.captions)
    parts.figures.insert(0, ("reconstructions.png", "Pictures (left) and their reconstructions (right)", figure))
    parts.notes.insert(
        0,
        "Reconstructions: each picture's largest centred square, encoded to its posterior mean and decoded "
        "(the frame a scene holds on that picture). The baseline for held-out pictures is the mean picture of "
        "the seen ones: held_gain_db is how far the model beats predicting a picture it never saw by it.",
    )


def _image_figures(result: ImageEval) -> list[tuple[str, str, Image.Image]]:
    left, right, captions = result.pairs
    walk = result.walk[torch.linspace(0, len(result.walk) - 1, 16).round().long()]  # 16 frames along the walk
    stats = result.numbers
    return [
        ("samples.png", "Samples", figures.picture(result.samples[:64], 8)),
        (
            "nearest_pairs.png",
            "The closest samples (left of each pair) and their nearest bank picture",
            figures.pairs_figure(left, right, captions),
        ),
        (
            "nearest_hist.png",
            "Nearest distances to the bank: samples vs held-apart real crops",
            figures.histogram(
                {"samples": result.nearest, "real crops": result.nearest_real},
                20,
                "distance to the nearest training picture or crop",
                "RMS pixel difference (0..1)",
            ),
        ),
        ("walk.png", "A slerp walk through latent space (16 of its frames)", figures.picture(walk, 8)),
        (
            "walk_change.png",
            "Frame-to-frame change along the walk",
            figures.line_chart(
                result.changes.tolist(),
                "mean absolute pixel change between consecutive walk frames",
                "frame",
                "change (0..1)",
                {"median": stats["walk_change_median"]},
            ),
        ),
    ]


def _notes_parts(opts: EvalOptions, data: Path, meta: Mapping[str, Any]) -> _Parts:
    model, _ = load_seq_model(opts.model, "notes")
    split_seed = meta["data"].get("split_seed")
    notes = []
    if not isinstance(split_seed, int):
        split_seed = 0
        notes.append(
            "The model file does not record its held-out split seed (written before it was recorded): "
            "seed 0 was used, which matches only if it was trained with --seed 0."
        )
    notes.append(
        "The note trainer transposes its windows by up to --transpose semitones (5 by default), so a model "
        "spreads over more keys than the data: the pitch histogram is smoother and pitch_tv larger than the "
        "interval and duration distances, which transposition does not change."
    )
    result = evaluate_notes(model, load_midi_folder(data), split_seed, opts.samples, opts.seed)
    return _seq_parts(result, NOTE_ROWS, {"held-out split seed": str(split_seed)}, notes)


def _text_parts(opts: EvalOptions, data: Path) -> _Parts:
    model, _ = load_seq_model(opts.model, "text")
    return _seq_parts(evaluate_text(model, read_text_file(data).text, opts.samples, opts.seed), TEXT_ROWS, {}, [])


def _seq_parts(
    result: SeqEval, rows: Mapping[str, tuple[str, str]], header: dict[str, str], notes: list[str]
) -> _Parts:
    charts = [
        (f"{c.name}.png", c.title, figures.bar_chart(c.labels, c.series, c.title, c.xlabel, "share"))
        for c in result.charts
    ]
    notes = [*notes, f"A generated sample:\n\n```\n{result.excerpt}\n```"]
    return _Parts(numbers=result.numbers, rows=rows, figures=charts, header=header, notes=notes)


def _markdown(opts: EvalOptions, meta: Mapping[str, Any], data: Path, parts: _Parts, numbers: dict[str, float]) -> str:
    config = json.dumps(meta["config"], sort_keys=True)
    if len(config) > 300:  # a text model's vocabulary
        config = config[:300] + " ..."
    config = config.replace("`", "'").replace("|", "\\|")  # a vocabulary may hold either; keep the table whole
    header = {
        "kind": meta["kind"],
        "config": f"`{config}`",
        "steps": str(meta["steps"]),
        "data": f"`{data}`",
        "samples": f"{opts.samples} (seed {opts.seed})",
        **parts.header,
    }
    header.setdefault("feature net", "none (no picture features for this kind)")
    lines = [f"# Evaluation report: `{opts.model}`", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in header.items()]
    lines += ["", "## Numbers", "", "| metric | value | better | meaning |", "|---|---|---|---|"]
    lines += [f"| {k} | {numbers[k]:.6g} | {parts.rows[k][1]} | {parts.rows[k][0]} |" for k in parts.rows]
    lines += ["", f"The model file's metrics hold the same numbers as `{META_PREFIX}<metric>`.", ""]
    lines += ["## Figures", ""]
    for name, heading, _ in parts.figures:
        lines += [f"### {heading}", "", f"![{heading}]({name})", ""]
    if parts.notes:
        lines += ["## How to read it", ""] + [p + "\n" for p in parts.notes]
    return "\n".join(lines).rstrip() + "\n"


def format_result(result: EvalResult) -> str:
    """What the CLI prints: where the report is, then the numbers."""
    width = max(len(k) for k in result.numbers)
    lines = [f"{k:<{width}}  {v:.6g}" for k, v in result.numbers.items()]
    return "\n".join([f"evaluation report: {result.report}", *lines])
