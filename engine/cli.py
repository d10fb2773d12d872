"""Command line: show, render, train, eval, bench, params, devices.

Each command returns its report as text; `run()` returns (exit status, stdout
text, stderr text) and the entry point (run_show.py, also the `latent-stage`
console script) is the only place that prints: the engine logs. Startup
problems (bad scene, model file, flag, display) end with one `error: ...`
line naming the culprit and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
PREVIEW_SECONDS = 10.0  # show with no display: the length of the file rendered instead (unless --seconds)
log = logging.getLogger("engine.cli")


def _specs(paths: Sequence[Path] | None):
    from engine.files.scene import DEFAULT_SCENE, load_scene

    return [load_scene(p) for p in (paths or [DEFAULT_SCENE])]


def _setlist_and_specs(setlist: Path | None, scenes: Sequence[Path] | None, default: bool):
    """(the setlist or None, the scenes to load): a setlist's scenes first, then --scene's
    (each file once); with neither and `default`, the shipped default setlist."""
    from engine.files.setlist import DEFAULT_SETLIST, load_setlist

    if setlist is None and not scenes and default:
        setlist = DEFAULT_SETLIST
    if setlist is None:
        return None, _specs(scenes)
    spec = load_setlist(setlist)
    files = {p.resolve(): p for p in [*spec.scene_files, *(scenes or [])]}
    return spec, _specs(list(files.values()))


def _device(name: str):
    from engine.models.device import resolve_device  # here: torch loads only for the commands that run a model

    return resolve_device(name)


def _placement(args: argparse.Namespace):
    """The --device and --precision flags resolved: (torch.device, "fp32" | "fp16")."""
    from engine.models.device import resolve_precision

    device = _device(args.device)
    return device, resolve_precision(args.precision, device)


def cmd_render(args: argparse.Namespace) -> str:
    from engine.core.eventlog import load_event_log
    from engine.errors import StartupError
    from engine.stage.offline import render

    events = load_event_log(args.events) if args.events else None
    if events is None and args.seconds is None:
        raise StartupError("render needs --seconds (or --events FILE)")
    played = args.setlist or (events.setlist if events is not None else None)
    setlist, specs = _setlist_and_specs(played, args.scene or (events.scenes if events is not None else None), False)
    device, precision = _placement(args)
    fps = int(round(args.fps or (events.fps if events is not None else 30)))
    if events is not None and abs(fps - events.fps) > 1e-6:
        # Events keep their show time: a set recorded at 60 fps renders at 30 or 120.
        log.info("events recorded at %g fps, rendered at %d fps: each lands on its show time", events.fps, fps)
        events = events.at_fps(fps)
    res = render(
        specs,
        seconds=args.seconds,
        fps=fps,
        out=args.out,
        size=args.size,
        aspect=args.aspect,
        render_size=args.render_size,
        device=device,
        precision=precision,
        events=events,
        patches=args.patch,
        presets=args.presets,
        two_decks=args.two_decks,
        setlist=setlist,
    )
    sound = " with sound" if res.audio else ""
    return f"rendered {res.frames} frames ({res.size[0]}x{res.size[1]}, {res.fps} fps){sound} to {res.out}"


def cmd_show(args: argparse.Namespace) -> str:
    from engine.stage.live import no_display_reason, run_live

    setlist, specs = _setlist_and_specs(args.setlist, args.scene, True)
    device, precision = _placement(args)
    reason = None if args.headless else no_display_reason(args.display)
    if reason is not None:
        from engine.control.http import parse_http
        from engine.stage.offline import render

        if args.http:
            parse_http(args.http)  # a bad value is still the startup error it would be live
        out = Path("out") / "show-preview.mp4"
        out.parent.mkdir(exist_ok=True)
        seconds = args.seconds or PREVIEW_SECONDS
        notice = f"{reason}: rendering {seconds:g} s of '{specs[0].name}' to a file instead"
        if args.http:
            notice += f" (--http {args.http} is not served while rendering)"
        log.warning("%s ...", notice)
        res = render(
            specs[:1],
            seconds=seconds,
            fps=30,
            out=str(out),
            size=args.size,
            aspect=args.aspect,
            render_size=args.render_size,
            device=device,
            precision=precision,
        )
        return f"{notice}\nwrote {res.out.resolve()} ({res.frames} frames, {res.size[0]}x{res.size[1]})"
    from engine.flags import show_config

    config = show_config(args, device=str(device), precision=precision)
    summary = run_live(config, specs, setlist)
    from engine.core.stats import format_summary

    if config.stats is None:
        return format_summary(summary)
    config.stats.write_text(json.dumps(summary, indent=2) + "\n")
    return f"{format_summary(summary)}\nstats written to {config.stats}"


def cmd_train(args: argparse.Namespace) -> str:
    from engine.errors import TrainSetupError
    from engine.flags import train_eval_options, train_options
    from engine.train import dist, family_modules

    # The trainer's setup checks (data folder, flags, resume state) raise TrainSetupError, a StartupError.
    trainer = family_modules()[args.family]
    if dist.launched() and not getattr(trainer, "DISTRIBUTED", False):
        raise TrainSetupError(
            f"only `train gan` and `train vae` support torchrun (WORLD_SIZE {os.environ.get('WORLD_SIZE')}); "
            f"run `train {args.family}` as one plain process"
        )
    options = train_options(args)
    progress = sys.stderr.isatty() or bool(os.environ.get("LS_PROGRESS"))
    with dist.process_group(options.device):  # torchrun's group (engine.train.dist); a no-op otherwise
        summary = trainer.train(options, progress=progress)
    # Under torchrun rank 0 reports (and evaluates); the others' summaries would repeat it.
    if not dist.is_writer():
        return ""
    if not args.no_eval:  # every trained model ends with its evaluation report
        from engine.eval.report import evaluate

        result = evaluate(train_eval_options(options, summary["paths"]["model"]))
        summary["report"] = str(result.report)
        summary["eval"] = result.numbers
    return json.dumps(summary, indent=2, default=str)


def cmd_eval(args: argparse.Namespace) -> str:
    from engine.eval.report import evaluate, format_result
    from engine.flags import eval_options

    return format_result(evaluate(eval_options(args)))


def cmd_bench(args: argparse.Namespace) -> str:
    if args.control:
        from engine.bench.control import bench_control, format_result
        from engine.files.scene import DEFAULT_SCENE

        res = bench_control(DEFAULT_SCENE, _device(args.device), args.messages)
        return _report(format_result(res), res, args.json)
    if args.osc_flood is not None:
        return _bench_flood(args)
    if args.soak is not None:
        from engine.bench.soak import format_soak, soak

        result = soak(args.soak)
        return _report(format_soak(result), result, args.json)
    if args.keyframe_add is not None:
        return _bench_keyframe_add(args)
    if args.link is not None:
        return _bench_link(args)
    if args.models:
        from engine.bench.models import bench_models, format_models

        device, precision = _placement(args)
        rows = bench_models(device, precision, frames=args.frames, graphs=args.cuda_graph == "on")
        return _report(format_models(rows), rows, args.json)
    if args.train:
        from engine.bench.train import bench_train, format_train

        rows = bench_train(_device(args.device))
        return _report(format_train(rows), rows, args.json)
    if args.sound is not None:
        from engine.bench.sound import SOUND_SCENE, bench_sound, format_sound

        res = bench_sound(args.sound_scene or SOUND_SCENE, args.sound)
        return _report(format_sound(res), res, args.json)
    from engine.bench.frames import bench_scenes, format_rows

    device, precision = _placement(args)
    rows = bench_scenes(device, frames=args.frames, precision=precision)
    return _report(format_rows(rows), rows, args.json)


def _bench_link(args: argparse.Namespace) -> str:
    from engine.bench.link import bench_link, format_link
    from engine.control.tempo_sync import _import_aalink
    from engine.files.scene import DEFAULT_SCENE

    _import_aalink()  # a clear message when the optional extra is missing
    res = bench_link(DEFAULT_SCENE, _device(args.device), args.link)
    return _report(format_link(res), res, args.json)


def _bench_flood(args: argparse.Namespace) -> str:
    from engine.bench.flood import flood_bench, format_flood

    result = flood_bench(args.osc_flood)
    return _report(format_flood(result), result, args.json)


def _bench_keyframe_add(args: argparse.Namespace) -> str:
    from engine.bench.keyframes import format_keyframe_add, keyframe_add_bench
    from engine.errors import StartupError
    from engine.files import REPO_ROOT

    scene = REPO_ROOT / "scenes" / "pictures_morph.toml"
    if not args.keyframe_add.is_file():
        raise StartupError(f"--keyframe-add: '{args.keyframe_add}' is not a picture file")
    result = keyframe_add_bench(scene, args.keyframe_add)
    return _report(format_keyframe_add(result), result, args.json)


def _report(text: str, data: Any, path: Path | None) -> str:
    """A benchmark's table; with --json its data is also written there."""
    if not path:
        return text
    path.write_text(json.dumps(data, indent=2) + "\n")
    return f"{text}\nresults written to {path}"


def cmd_devices(args: argparse.Namespace) -> str:
    from engine.devices.audio_devices import list_devices

    return list_devices()


def cmd_params(args: argparse.Namespace) -> str:
    from engine.core.space import build_space, params_json, params_table
    from engine.files.preset import load_presets

    space = build_space()
    presets = load_presets(args.presets)
    if args.json:
        rows = params_json(space) + [
            {"address": "/preset/recall", "type": "preset", "name": p.name, "index": i + 1, "decks": _decks(p)}
            for i, p in enumerate(presets[n] for n in sorted(presets))
        ]
        return json.dumps(rows, indent=2)
    lines = [f"presets in {args.presets} (/preset/recall NAME or number):"]
    lines += [f"  {i + 1} {name}: {_decks(presets[name])}" for i, name in enumerate(sorted(presets))] or ["  none yet"]
    return params_table(space) + "\n\n" + "\n".join(lines)


def _decks(preset: Any) -> str:
    return ", ".join(f"deck {d} {s.scene!r}" for d, s in preset.decks.items()) or "params only"


LOG_BYTES = 10 * 1024 * 1024  # a log file rotates at this size ...
LOG_BACKUPS = 5  # ... and keeps this many old ones: at most 60 MB of logs, however long the show runs


def _rotating_log(path: Path) -> None:
    """The log also goes to `path`, rotated (logging.handlers.RotatingFileHandler)."""
    from logging.handlers import RotatingFileHandler

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def _set_threads(n: int | None) -> None:
    """One intra-op thread by default: on a 2-core machine a second OpenMP thread
    saves little and, when anything else wants a core, its spin-waits stall a
    frame by 100+ ms (measured; see docs/BENCHMARKS.md)."""
    import torch

    torch.set_num_threads(n or 1)


def cmd_supervise(args: argparse.Namespace) -> str:
    from engine.supervise import SuperviseOptions, supervise

    show_args = list(args.show_args)
    if show_args[:1] == ["--"]:
        show_args = show_args[1:]
    opts = SuperviseOptions(
        show_args=tuple(show_args),
        state=args.state,
        hang_seconds=args.hang_seconds,
        start_seconds=args.start_seconds,
        max_backoff=args.max_backoff,
        max_restarts=args.max_restarts,
        log_file=args.log,
    )
    if supervise(opts) != 0:
        from engine.errors import StartupError

        raise StartupError(f"supervise: the show could not be kept running ({opts.max_restarts} restarts; see the log)")
    return "supervisor done"


COMMANDS = {
    "show": cmd_show,
    "render": cmd_render,
    "train": cmd_train,
    "eval": cmd_eval,
    "bench": cmd_bench,
    "params": cmd_params,
    "devices": cmd_devices,
    "supervise": cmd_supervise,
}


def run(argv: Sequence[str] | None = None) -> tuple[int, str, str]:
    """Run one command: (exit status, text for stdout, text for stderr)."""
    # One BLAS thread for numpy (set before numpy loads): the sequence models' streaming
    # stepper (engine.models.seq.Stepper) does small matrix-vector products, which took
    # 5-8 ms with OpenBLAS's default threads while the other core was busy, 0.08 ms with
    # one (measured on the 2-core machine, docs/TEXT.md).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from engine.flags import build_parser

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname).1s %(name)s: %(message)s"
    )
    from engine.errors import StartupError

    log_file = getattr(args, "log_file", None)
    if log_file is not None:
        try:
            _rotating_log(log_file)
        except OSError as e:
            return EXIT_USAGE, "", f"error: --log-file {log_file}: cannot write ({e.strerror or e})"
    _set_threads(getattr(args, "threads", None))  # params and devices have no --threads: the default

    try:
        return 0, COMMANDS[args.command](args), ""
    except StartupError as e:  # all of them: scene, patch, model, display, flag (engine.errors)
        return EXIT_USAGE, "", f"error: {e}"
    except KeyboardInterrupt:
        return 130, "", "interrupted"
