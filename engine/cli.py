"""Command line: show, render, train, bench, params, devices.

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
from pathlib import Path
from typing import Any, Sequence

EXIT_USAGE = 2
PREVIEW_SECONDS = 10.0  # show with no display: the length of the file rendered instead (unless --seconds)
log = logging.getLogger("engine.cli")


def _size(text: str) -> tuple[int, int]:
    from engine.stage.layout import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _render_size(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in px, got {text!r}") from None
    if not 16 <= v <= 4096:
        raise argparse.ArgumentTypeError(f"expected a size from 16 to 4096 px, got {v}")
    return v


def _add_picture_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=_size, help="window or output size WxH (default: window 1280x720, render the model size)")
    p.add_argument("--render-size", type=_render_size, help="the model's drawing size in px (default: its native size)")
    p.add_argument("--aspect", choices=("fit", "fill", "stretch"), default="fit", help="square model on a non-square output")
    p.add_argument("--fps", type=_positive_float, default=None, help="frames per second (show: 60, render: 30)")
    _add_device_args(p)


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto", help="where the model runs")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the model (default 1: see docs/BENCHMARKS.md)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_show.py", description="Latent Stage: live generative art engine")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors in the log")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    show = sub.add_parser("show", help="play scenes live in a window (or headless)")
    show.add_argument("--scene", action="append", type=Path, help="scene file (repeatable; default scenes/default.toml)")
    _add_picture_args(show)
    show.add_argument("--fullscreen", action="store_true", help="fullscreen on the chosen display")
    show.add_argument("--display", type=int, help="display index, 0-based (default: the primary one)")
    show.add_argument("--headless", action="store_true", help="no window; still paced to --fps")
    show.add_argument("--no-vsync", action="store_true", help="pace with a timer even where vsync works")
    show.add_argument("--seconds", type=_positive_float, help="stop after this many seconds")
    show.add_argument("--stats", type=Path, help="write frame statistics JSON here when the show ends")
    show.add_argument("--record-events", type=Path, metavar="FILE",
                      help="record every applied input event as JSON lines (replay with render --events)")
    from engine.control import add_control_args

    add_control_args(show)
    from engine.devices.audio_out import add_audio_args
    from engine.devices.midi_out import add_args as add_notes_args

    add_audio_args(show)
    add_notes_args(show)

    render = sub.add_parser("render", help="render a scene offline to an mp4 or a PNG folder")
    render.add_argument("--scene", action="append", type=Path,
                        help="scene file (repeatable; default scenes/default.toml, or the --events log's scenes)")
    _add_picture_args(render)
    render.add_argument("--seconds", type=_positive_float, help="length in seconds (default with --events: the log's)")
    render.add_argument("--events", type=Path, metavar="FILE",
                        help="replay a performance recorded with show --record-events, frame for frame")
    render.add_argument("--out", required=True, help="FILE.mp4, or DIR/ for a PNG sequence")
    render.add_argument("--patch", action="append", type=Path, metavar="FILE",
                        help="patch file whose LFO, beat and audio routes modulate the render (repeatable; "
                             "default with --events: the recorded show's)")

    train = sub.add_parser("train", help="train a model from your own material")
    tsub = train.add_subparsers(dest="family", required=True, metavar="FAMILY")
    from engine.train import family_modules

    for name, module in family_modules().items():
        module.add_args(tsub.add_parser(name, help=module.HELP))

    sub.add_parser("devices", help="list audio devices (with host API) and MIDI ports")

    params = sub.add_parser("params", help="list every OSC address: params (type, range, default) and verbs")
    params.add_argument("--json", action="store_true", help="print a JSON list instead of a table")

    bench = sub.add_parser("bench", help="model forward vs whole-frame cost for every shipped scene")
    _add_device_args(bench)
    bench.add_argument("--frames", type=int, default=300, help="frames measured per scene")
    bench.add_argument("--json", type=Path, help="write the results as JSON here")
    bench.add_argument("--control", action="store_true",
                       help="input latency instead: OSC (and MIDI) send to the first presented frame that shows it")
    bench.add_argument("--messages", type=int, default=600,
                       help="with --control: messages sent per transport (half to each address)")
    bench.add_argument("--sound", type=float, metavar="SECONDS",
                       help="sound instead: a show of --sound-scene through a JACK dummy server for SECONDS, "
                            "recorded; underruns, note timing and pitch, MIDI note pairs")
    bench.add_argument("--sound-scene", type=Path, metavar="FILE", help="scene for --sound (default scenes/verse.toml)")
    bench.add_argument("--link", type=float, metavar="SECONDS",
                       help="Ableton Link instead: join a Link peer's session (another process) for SECONDS and "
                            "measure the beat phase error of every presented frame (needs pip install .[link])")
    bench.add_argument("--osc-flood", type=float, metavar="SECONDS",
                       help="robustness instead: flood a headless show with 5,000 OSC messages/s plus 10,000 "
                            "malformed datagrams for SECONDS and print what it kept up with")
    return parser


def _specs(paths: Sequence[Path] | None):
    from engine.files.scene import DEFAULT_SCENE, load_scene

    return [load_scene(p) for p in (paths or [DEFAULT_SCENE])]


def _device(name: str):
    from engine.errors import StartupError
    from engine.train.common import resolve_device

    try:
        return resolve_device(name)
    except ValueError as e:
        raise StartupError(str(e)) from None


def cmd_render(args: argparse.Namespace) -> str:
    from engine.errors import StartupError
    from engine.core.eventlog import load_event_log
    from engine.stage.offline import render

    events = load_event_log(args.events) if args.events else None
    if events is None and args.seconds is None:
        raise StartupError("render needs --seconds (or --events FILE)")
    specs = _specs(args.scene or (events.scenes if events is not None else None))
    fps = int(round(args.fps or (events.fps if events is not None else 30)))
    if events is not None and abs(fps - events.fps) > 1e-6:
        raise StartupError(f"--fps {fps}: the event log {args.events} was recorded at {events.fps:g} fps; "
                           "replay it at that rate (frame for frame)")
    res = render(
        specs, seconds=args.seconds, fps=fps, out=args.out, size=args.size,
        aspect=args.aspect, render_size=args.render_size, device=_device(args.device), events=events,
        patches=args.patch,
    )
    sound = " with sound" if res.audio else ""
    return f"rendered {res.frames} frames ({res.size[0]}x{res.size[1]}, {res.fps} fps){sound} to {res.out}"


def cmd_show(args: argparse.Namespace) -> str:
    from engine.stage.live import no_display_reason, run_live

    specs = _specs(args.scene)
    reason = None if args.headless else no_display_reason(args.display)
    if reason is not None:
        from engine.stage.offline import render

        out = Path("out") / "show-preview.mp4"
        out.parent.mkdir(exist_ok=True)
        seconds = args.seconds or PREVIEW_SECONDS
        notice = f"{reason}: rendering {seconds:g} s of '{specs[0].name}' to a file instead"
        log.warning("%s ...", notice)
        res = render(specs[:1], seconds=seconds, fps=30, out=str(out), size=args.size, aspect=args.aspect,
                     render_size=args.render_size, device=_device(args.device))
        return f"{notice}\nwrote {res.out.resolve()} ({res.frames} frames, {res.size[0]}x{res.size[1]})"
    summary = run_live(args, specs, _device(args.device))
    from engine.core.stats import format_summary

    if not args.stats:
        return format_summary(summary)
    args.stats.write_text(json.dumps(summary, indent=2) + "\n")
    return f"{format_summary(summary)}\nstats written to {args.stats}"


def cmd_train(args: argparse.Namespace) -> str:
    from engine.train import family_modules

    # The trainer's setup checks (data folder, flags, resume state) raise TrainSetupError, a StartupError.
    trainer = family_modules()[args.family]
    summary = trainer.train_from_args(args, progress=sys.stderr.isatty() or bool(os.environ.get("LS_PROGRESS")))
    return json.dumps(summary, indent=2, default=str)


def cmd_bench(args: argparse.Namespace) -> str:
    if args.control:
        from engine.bench.control import format_result, run_bench_control

        res = run_bench_control(args)
        return _report(format_result(res), res, args.json)
    if args.osc_flood is not None:
        return _bench_flood(args)
    if args.link is not None:
        return _bench_link(args)
    if args.sound is not None:
        from engine.bench.sound import SOUND_SCENE, bench_sound, format_sound

        if not args.sound > 3:
            raise SystemExit("error: --sound: expected a number of seconds > 3")
        res = bench_sound(args.sound_scene or SOUND_SCENE, args.sound)
        return _report(format_sound(res), res, args.json)
    from engine.bench.frames import bench_scenes, format_rows

    rows = bench_scenes(_device(args.device), frames=args.frames)
    return _report(format_rows(rows), rows, args.json)


def _bench_link(args: argparse.Namespace) -> str:
    from engine.bench.link import bench_link, format_link
    from engine.control.tempo_sync import _import_aalink
    from engine.files.scene import DEFAULT_SCENE

    if not args.link > 2:
        raise SystemExit("error: --link: expected a number of seconds > 2")
    _import_aalink()  # a clear message when the optional extra is missing
    res = bench_link(DEFAULT_SCENE, _device(args.device), args.link)
    return _report(format_link(res), res, args.json)


def _bench_flood(args: argparse.Namespace) -> str:
    from engine.bench.flood import flood_bench, format_flood

    if not args.osc_flood > 0:
        raise SystemExit("error: --osc-flood: expected a number of seconds > 0")
    result = flood_bench(args.osc_flood)
    return _report(format_flood(result), result, args.json)


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

    space = build_space()
    return json.dumps(params_json(space), indent=2) if args.json else params_table(space)


def _set_threads(n: int | None) -> None:
    """One intra-op thread by default: on a 2-core machine a second OpenMP thread
    saves little and, when anything else wants a core, its spin-waits stall a
    frame by 100+ ms (measured; see docs/BENCHMARKS.md)."""
    import torch

    if n is not None and n < 1:
        raise SystemExit("error: --threads must be at least 1")
    torch.set_num_threads(n or 1)


COMMANDS = {"show": cmd_show, "render": cmd_render, "train": cmd_train, "bench": cmd_bench, "params": cmd_params,
            "devices": cmd_devices}


def run(argv: Sequence[str] | None = None) -> tuple[int, str, str]:
    """Run one command: (exit status, text for stdout, text for stderr)."""
    # One BLAS thread for numpy (set before numpy loads): the sequence models' streaming
    # stepper (engine.models.seq.Stepper) does small matrix-vector products, which took
    # 5-8 ms with OpenBLAS's default threads while the other core was busy, 0.08 ms with
    # one (measured on the 2-core machine, docs/TEXT.md).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname).1s %(name)s: %(message)s",
    )
    from engine.errors import StartupError

    if getattr(args, "threads", "absent") != "absent":
        _set_threads(args.threads)

    try:
        return 0, COMMANDS[args.command](args), ""
    except StartupError as e:  # all of them: scene, patch, model, display, flag (engine.errors)
        return EXIT_USAGE, "", f"error: {e}"
    except KeyboardInterrupt:
        return 130, "", "interrupted"
