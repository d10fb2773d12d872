"""The command line's flags, and the typed, frozen configs they become.

This module and engine.cli are the only ones that see argparse: `show_config`
turns a parsed `show` command into a ShowConfig (engine.config) once, and
`train_options` a parsed `train FAMILY` command into that family's options
(GanTrainOptions, NotesTrainOptions, TextTrainOptions), `eval_options` a parsed
`eval` command into EvalOptions (engine.eval.options); every module below
takes those. Flag defaults come from the config and options classes.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from engine.config import ShowConfig, StageConfig
from engine.control.learn import default_learn_file
from engine.control.midi_ports import API_NAMES
from engine.core.tempo import SOURCES
from engine.eval.options import EvalOptions
from engine.models.device import PRECISIONS
from engine.models.fastgan import UPSAMPLE_MODES
from engine.models.gan_arch import ARCHS, PRESET_NAMES
from engine.train.common import DEFAULT_MINUTES, SeqTrainOptions, TrainOptions
from engine.train.gan import KEEP_CHOICES, TRAIN_PRECISIONS, GanTrainOptions
from engine.train.notes import NotesTrainOptions
from engine.train.text import TextTrainOptions
from engine.train.vae import VAE_PRESETS, VaeTrainOptions

DEFAULTS = ShowConfig()


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _count(low: int, high: int):
    """An argparse type: a whole number from low to high."""

    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low}..{high}, got {value}")
        return value

    return parse


def _channel(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 16:
        raise argparse.ArgumentTypeError(f"expected a MIDI channel 1-16, got {text!r}")
    return n


def _size(text: str) -> tuple[int, int]:
    from engine.stage.layout import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_float(text: str) -> float:
    v = _number(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _positive_finite(text: str) -> float:
    """A training budget or interval: a positive number, not infinity."""
    v = _number(text)
    if not v > 0 or v == math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _seconds_over(low: float):
    """An argparse type: a number of seconds greater than `low` (a benchmark's length)."""

    def parse(text: str) -> float:
        v = _number(text)
        if not v > low or v == math.inf:
            raise argparse.ArgumentTypeError(f"expected a number of seconds > {low:g}, got {text!r}")
        return v

    return parse


def _positive_int(text: str) -> int:
    v = _whole(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return v


def _param_value(text: str) -> tuple[str, float]:
    address, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not address.startswith("/") or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected ADDRESS=NUMBER (e.g. /mixer/crossfade=0.5), got {text!r}")
    return address, number


def _send_spec(text: str) -> str:
    from engine.devices.senders import parse_send

    try:
        return parse_send(text).text
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _render_size(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in px, got {text!r}") from None
    if not 16 <= v <= 4096:
        raise argparse.ArgumentTypeError(f"expected a size from 16 to 4096 px, got {v}")
    return v


def _add_picture_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--size", type=_size, help="window or output size WxH (default: window 1280x720, render the model size)"
    )
    p.add_argument("--render-size", type=_render_size, help="the model's drawing size in px (default: its native size)")
    p.add_argument(
        "--aspect", choices=("fit", "fill", "stretch"), default="fit", help="square model on a non-square output"
    )
    p.add_argument("--fps", type=_positive_float, default=None, help="frames per second (show: 60, render: 30)")
    p.add_argument(
        "--setlist",
        type=Path,
        metavar="FILE",
        help="play a setlist (scenes/NAME.setlist.toml): its scenes, each for its dwell, faded from one to the "
        "next (show without --scene or --setlist plays scenes/default.setlist.toml)",
    )
    p.add_argument(
        "--two-decks",
        choices=("auto", "full", "half"),
        default=StageConfig.two_decks,
        help="when both decks show: run both models every frame (full), each every other frame (half), "
        "or half only while full would miss the frame rate (auto; a render always runs full unless told half)",
    )
    p.add_argument(
        "--presets",
        type=Path,
        default=StageConfig.presets,
        metavar="DIR",
        help="folder of presets (NAME.toml): recalled by /preset/recall, written by /preset/save "
        "(default: presets/ of the project)",
    )
    _add_device_args(p)


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto", help="where the model runs")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="model precision: auto = fp16 on CUDA where it keeps the picture (>= 40 dB PSNR), fp32 on the CPU",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="CPU threads for the model (default 1: see docs/BENCHMARKS.md)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_show.py", description="Latent Stage: live generative art engine")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors in the log")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    show = sub.add_parser("show", help="play scenes live in a window (or headless)")
    show.add_argument(
        "--scene",
        action="append",
        type=Path,
        help="scene file (repeatable; default: the setlist scenes/default.setlist.toml)",
    )
    _add_picture_args(show)
    show.add_argument("--fullscreen", action="store_true", help="fullscreen on the chosen display")
    show.add_argument("--display", type=int, help="display index, 0-based (default: the primary one)")
    show.add_argument(
        "--perform",
        action="store_true",
        help="perform mode: fullscreen on --display, no cursor, no screensaver, nothing over the output "
        "(the operator HUD opens on --hud-display, or with the H key)",
    )
    show.add_argument("--hud", action="store_true", help="open the operator HUD window at start (H toggles it)")
    show.add_argument("--hud-display", type=int, metavar="N", help="the display the HUD opens on (0-based)")
    show.add_argument("--headless", action="store_true", help="no window; still paced to --fps")
    show.add_argument("--no-vsync", action="store_true", help="pace with a timer even where vsync works")
    show.add_argument("--seconds", type=_positive_float, help="stop after this many seconds")
    show.add_argument("--stats", type=Path, help="write frame statistics JSON here when the show ends")
    show.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="save the show's state (params, decks, setlist item, tempo) here every 5 s and at exit, atomically",
    )
    show.add_argument(
        "--resume-state",
        type=Path,
        metavar="FILE",
        help="start from this saved state (none yet: start fresh; a bad one: start fresh, move it aside, say so)",
    )
    _add_log_file(show)
    show.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve GET /status (JSON) and POST /set, /verb here (e.g. 127.0.0.1:8080; another host than "
        "localhost opens it to the network, with a token)",
    )
    show.add_argument("--http-token", metavar="TOKEN", help="the token non-local clients must send (default: made up)")
    show.add_argument(
        "--hours",
        type=Path,
        metavar="FILE",
        help="opening hours (TOML): play while open, rest in black (no model running) while closed, "
        "with a fade at each edge; local time",
    )
    show.add_argument(
        "--set",
        dest="initial",
        type=_param_value,
        action="append",
        metavar="ADDRESS=VALUE",
        help="set a param before the first frame, e.g. --set /mixer/crossfade=0.5 (repeatable; "
        "recorded by --record-events like any input)",
    )
    record = "record every applied input event as JSON lines (replay with render --events)"
    show.add_argument("--record-events", type=Path, metavar="FILE", help=record)
    show.add_argument(
        "--send",
        action="append",
        type=_send_spec,
        metavar="SPEC",
        help="also send the frames to other video apps (repeatable): udp://HOST:PORT or srt://HOST:PORT "
        "(MPEG-TS, any player opens it), ndi[:NAME], syphon[:NAME] (macOS), spout[:NAME] (Windows), "
        "v4l2[:/dev/videoN] (Linux virtual camera); all but udp/srt need an extra: pip install '.[ndi]' etc.",
    )
    _add_control_args(show)
    _add_sound_args(show)

    render = sub.add_parser("render", help="render a scene offline to an mp4 or a PNG folder")
    render.add_argument(
        "--scene",
        action="append",
        type=Path,
        help="scene file (repeatable; default scenes/default.toml, or the --events log's scenes)",
    )
    _add_picture_args(render)
    render.add_argument("--seconds", type=_positive_float, help="length in seconds (default with --events: the log's)")
    replay = "replay a performance recorded with show --record-events, frame for frame"
    render.add_argument("--events", type=Path, metavar="FILE", help=replay)
    render.add_argument("--out", required=True, help="FILE.mp4, or DIR/ for a PNG sequence")
    render.add_argument(
        "--patch",
        action="append",
        type=Path,
        metavar="FILE",
        help="patch file whose LFO, beat and audio routes modulate the render (repeatable; "
        "default with --events: the recorded show's)",
    )

    _add_train_args(sub)
    _add_eval_args(sub)

    sub.add_parser("devices", help="list audio devices (with host API) and MIDI ports")

    sup = sub.add_parser(
        "supervise",
        help="run a show and restart it when it crashes or stops presenting frames: supervise [flags] -- <show flags>",
    )
    sup.add_argument("--state", type=Path, metavar="FILE", help="the show saves its state here; restarts resume it")
    sup.add_argument(
        "--hang-seconds",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="restart a show that presented no frame for this long (default 10)",
    )
    sup.add_argument(
        "--start-seconds",
        type=_positive_float,
        default=120.0,
        metavar="S",
        help="restart a show that has not presented its first frame after this long (default 120)",
    )
    sup.add_argument(
        "--max-backoff",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="the longest wait between restarts of a crash-looping show (default 60)",
    )
    sup.add_argument("--max-restarts", type=int, metavar="N", help="give up after N restarts (default: never)")
    sup.add_argument("--log", type=Path, metavar="FILE", help="append every start and restart, with its reason, here")
    _add_log_file(sup)
    sup.add_argument("show_args", nargs=argparse.REMAINDER, help="-- then the show's flags")

    params = sub.add_parser("params", help="list every OSC address: params (type, range, default) and verbs")
    params.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    params.add_argument(
        "--presets", type=Path, default=StageConfig.presets, metavar="DIR", help="the presets folder to list"
    )

    bench = sub.add_parser("bench", help="model forward vs whole-frame cost for every shipped scene")
    _add_device_args(bench)
    bench.add_argument("--frames", type=int, default=300, help="frames measured per scene")
    bench.add_argument("--json", type=Path, help="write the results as JSON here")
    bench.add_argument(
        "--control",
        action="store_true",
        help="input latency instead: OSC (and MIDI) send to the first presented frame that shows it",
    )
    bench.add_argument(
        "--messages",
        type=_count(10, 1_000_000),
        default=600,
        help="with --control: messages sent per transport (half to each address)",
    )
    bench.add_argument(
        "--sound",
        type=_seconds_over(3),
        metavar="SECONDS",
        help="sound instead: a show of --sound-scene through a JACK dummy server for SECONDS, "
        "recorded; underruns, note timing and pitch, MIDI note pairs",
    )
    bench.add_argument("--sound-scene", type=Path, metavar="FILE", help="scene for --sound (default scenes/verse.toml)")
    bench.add_argument(
        "--link",
        type=_seconds_over(2),
        metavar="SECONDS",
        help="Ableton Link instead: join a Link peer's session (another process) for SECONDS and "
        "measure the beat phase error of every presented frame (needs pip install .[link])",
    )
    bench.add_argument(
        "--models",
        action="store_true",
        help="GAN generators and VAE decoders instead: batch-1 forward time (median, p90) of the classic "
        "default, each fast preset and each VAE preset at 1 and 2 threads (--frames calls each)",
    )
    bench.add_argument(
        "--train",
        action="store_true",
        help="GAN training instead: ms per training step (one D and one G update) of the classic default, "
        "fast live and fast wide, in fp32 and, where the device has it natively, bf16 (--threads, --device)",
    )
    bench.add_argument(
        "--cuda-graph",
        choices=("on", "off"),
        default="on",
        help="with --models on CUDA: replay each generator as one CUDA graph, as a show does (on), or "
        "launch its kernels one by one (off), to measure what the graph saves",
    )
    bench.add_argument(
        "--keyframe-add",
        metavar="PICTURE",
        type=Path,
        help="a 30 s headless show of scenes/pictures_morph.toml with PICTURE added over OSC at "
        "10 s: its frame statistics and the frame where the new key shows (from a replay of its event log)",
    )
    bench.add_argument(
        "--soak",
        type=_seconds_over(0),
        metavar="MINUTES",
        help="endurance instead: a headless show cycling a setlist every 20 s under random OSC for MINUTES, "
        "sampling resident memory, threads, file handles and /ping every 10 s (Linux)",
    )
    bench.add_argument(
        "--osc-flood",
        type=_seconds_over(0),
        metavar="SECONDS",
        help="robustness instead: flood a headless show with 5,000 OSC messages/s plus 10,000 "
        "malformed datagrams for SECONDS and print what it kept up with",
    )
    return parser


def _add_train_args(sub: argparse._SubParsersAction) -> None:
    """`train FAMILY`: each family's flags, then the flags every family shares."""
    train = sub.add_parser("train", help="train a model from your own material")
    tsub = train.add_subparsers(dest="family", required=True, metavar="FAMILY")
    from engine.train import family_modules

    for name, module in family_modules().items():
        family = tsub.add_parser(name, help=module.HELP)
        _TRAIN_FAMILIES[name][0](family)
        _add_train_common_args(family)


def _add_eval_args(sub: argparse._SubParsersAction) -> None:
    """`eval MODEL`: the evaluation report (engine.eval)."""
    d = EvalOptions
    p = sub.add_parser("eval", help="evaluate a model: report.md with figures, numbers into the model file")
    p.add_argument("model", metavar="MODEL", help="a model file (NAME.safetensors) of any kind")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="its data: picture or MIDI folder, or the text file (default: the one the model file records, "
        "if that path exists here)",
    )
    p.add_argument("--out", metavar="DIR", help="report folder (default NAME.report beside NAME.safetensors)")
    p.add_argument(
        "--samples",
        type=_count(4, 100_000),
        default=d.samples,
        help=f"pictures, melodies or text passages to generate (default {d.samples})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of every random draw (default {d.seed})")
    _add_device_args(p)


def eval_options(args: argparse.Namespace) -> EvalOptions:
    """A parsed `eval` command as its options."""
    return EvalOptions(
        model=args.model, data=args.data, out=args.out, samples=args.samples, seed=args.seed, device=args.device
    )


def train_eval_options(options: TrainOptions, model: str) -> EvalOptions:
    """The evaluation `train` ends with: the model it wrote, against the data it trained on, on its device."""
    return EvalOptions(model=model, data=options.data, device=options.device)


def _add_log_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-file",
        type=Path,
        metavar="FILE",
        help="also write the log here, rotated at 10 MB with 5 old files kept (weeks unattended stay bounded)",
    )


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _add_gan_args(p: argparse.ArgumentParser) -> None:
    d = GanTrainOptions
    p.add_argument("--data", required=True, metavar="DIR", help="folder of .png/.jpg/.jpeg/.webp images")
    p.add_argument(
        "--arch",
        choices=ARCHS,
        default=d.arch,
        help=f"generator family: fast (FastGAN-like) or classic (default {d.arch})",
    )
    p.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default=d.preset,
        help="model size: live (128 px, 60 fps on a 2-core CPU), wide (128 px, wider top layers: "
        "truer colours, one deck at 60 fps on a CPU), hd (256 px, 30 fps on a CPU), "
        f"gpu (512 px, for a graphics card); --size/--channels/--min-channels override it (default {d.preset})",
    )
    p.add_argument("--size", type=int, default=d.size, help="image size: 64, 128, 256 or 512 (default: the preset's)")
    p.add_argument(
        "--latent-dim", type=int, default=d.latent_dim, help=f"latent vector length (default {d.latent_dim})"
    )
    p.add_argument("--channels", type=int, default=d.channels, help="feature maps at 4x4 (default: the preset's)")
    p.add_argument(
        "--min-channels", type=int, default=d.min_channels, help="feature maps at the top sizes (default: the preset's)"
    )
    p.add_argument(
        "--d-width",
        type=int,
        default=d.d_width,
        help="fast family: the discriminator's feature maps as a multiple of G's; training cost only, "
        "the show runs G alone (default: the preset's)",
    )
    p.add_argument(
        "--two-convs-up-to",
        type=int,
        default=d.two_convs_up_to,
        metavar="PX",
        help="fast family: blocks whose side is at most PX get a second 3x3 conv, the larger ones one "
        "(a power of two from 4 to the size; more detail, a slower forward pass) (default: the preset's)",
    )
    p.add_argument(
        "--d-small",
        type=int,
        default=d.d_small,
        metavar="PX",
        help="fast family: give the discriminator a second path that sees the image pooled to PX "
        "(a power of two from 8 to half the size; 0: none), so that G is judged on colours and layout "
        "apart from texture; training cost only (default: the preset's, 1/8 of the size)",
    )
    p.add_argument(
        "--d-rgb-kernel",
        type=int,
        default=d.d_rgb_kernel,
        choices=(1, 3),
        help="fast family: side of the discriminator's first conv at full size; 3 gives it two 3x3 layers "
        "on the finest detail before it pools; training cost only (default: the preset's, 3)",
    )
    p.add_argument(
        "--d-top-convs",
        type=int,
        default=d.d_top_convs,
        choices=(1, 2),
        help="fast family: 3x3 convs in each discriminator block at 128 px and above; training cost only (default 1)",
    )
    p.add_argument(
        "--d-fine",
        type=int,
        default=d.d_fine,
        choices=(0, 1),
        help="fast family: 1 gives the discriminator a third path that judges the finest band alone "
        "(the picture minus its 2x blur) at full size; training cost only (default: the preset's, 1)",
    )
    p.add_argument(
        "--upsample",
        default=d.upsample,
        choices=UPSAMPLE_MODES,
        help="fast family: how the generator doubles its maps' side; bicubic blurs less than bilinear, "
        "nearest (FastGAN's) leaves 2x2 blocks (default bilinear)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=d.batch,
        help="images per step and process; under torchrun the global batch is this x the number of "
        "processes (default 8 for fast, 16 for classic)",
    )
    p.add_argument("--lr", type=float, default=d.lr, help="discriminator Adam learning rate (default 2e-4)")
    p.add_argument(
        "--lr-g", type=float, default=d.lr_g, help="generator learning rate (default: lr for fast, lr / 4 for classic)"
    )
    p.add_argument("--ema", type=float, default=d.ema, help=f"EMA decay of G weights (default {d.ema:g})")
    p.add_argument(
        "--augment",
        type=_comma_list,
        default=d.augment,
        metavar="LIST",
        help=f"DiffAugment's parts, a comma list of color, translation, cutout (default {','.join(d.augment)})",
    )
    p.add_argument(
        "--palette-floor",
        type=float,
        default=d.palette_floor,
        metavar="W",
        help="weight of G's penalty when its samples' mean colours vary less than the pictures' "
        "(0 = off; default: 1 for fast, 0 for classic)",
    )
    p.add_argument(
        "--detail-floor",
        type=float,
        default=d.detail_floor,
        metavar="W",
        help="weight of G's penalty when its samples hold less fine detail (periods of 4 px or less) "
        "than the pictures: against blur (0 = off; default: 1 for fast, 0 for classic)",
    )
    p.add_argument(
        "--detail-ceiling",
        type=float,
        default=d.detail_ceiling,
        metavar="R",
        help="with --detail-floor: also push back when the samples hold more than R times the pictures' "
        f"fine detail: against grain (0 = no ceiling; default {d.detail_ceiling:g})",
    )
    p.add_argument(
        "--lecam",
        type=float,
        default=d.lecam,
        metavar="W",
        help="weight of LeCam regularisation in D's loss: keeps D's real and fake logits near each "
        "other's recent averages; on the paintings it delayed the low point rather than removing the "
        f"climb after it (docs/TRAINING.md) (0 = off; default {d.lecam:g})",
    )
    p.add_argument(
        "--keep",
        choices=KEEP_CHOICES,
        default=d.keep,
        help="which checkpoint the model file and grid hold: the one with the lowest sample distance so far "
        "(best) or the latest (last); the state file for --resume always holds the latest "
        f"(default {d.keep})",
    )
    p.add_argument(
        "--precision",
        choices=TRAIN_PRECISIONS,
        default=d.precision,
        help="the training passes' arithmetic: fp32, bf16 (autocast; weights and files stay fp32), or auto "
        f"(bf16 where the CPU has AMX or AVX512-BF16, or on a CUDA GPU with bf16) (default {d.precision})",
    )


def _add_vae_args(p: argparse.ArgumentParser) -> None:
    d = VaeTrainOptions
    p.add_argument("--data", required=True, metavar="DIR", help="folder of .png/.jpg/.jpeg/.webp pictures")
    p.add_argument(
        "--preset",
        choices=tuple(VAE_PRESETS),
        default=d.preset,
        help=f"model size: live (128 px, 60 fps on a 2-core CPU), hd (256 px), gpu (512 px) (default {d.preset})",
    )
    p.add_argument("--size", type=int, default=d.size, help="picture size: 64, 128, 256 or 512 (default: the preset's)")
    p.add_argument("--latent-channels", type=int, default=d.latent_channels, help="latent maps (default: the preset's)")
    p.add_argument(
        "--latent-side", type=int, default=d.latent_side, help="latent map side in px (default: the preset's)"
    )
    p.add_argument(
        "--channels", type=int, default=d.channels, help="feature maps at the latent side (default: the preset's)"
    )
    p.add_argument("--batch", type=int, default=d.batch, help=f"crops per step (default {d.batch})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak Adam learning rate (default {d.lr:g})")
    p.add_argument(
        "--kl",
        type=float,
        default=d.kl,
        help=f"KL weight per picture value: small = sharper, large = smoother in-betweens (default {d.kl:g})",
    )
    p.add_argument(
        "--adv",
        type=float,
        default=d.adv,
        help=f"adversarial weight, adaptive as in VQGAN; 0 = off (default {d.adv:g})",
    )
    p.add_argument(
        "--adv-start",
        type=float,
        default=d.adv_start,
        help=f"share of the budget before the patch discriminator starts (default {d.adv_start:g})",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=d.holdout,
        help=f"share of the pictures held out for evaluation, never trained on (default {d.holdout:g})",
    )


def _add_notes_args(p: argparse.ArgumentParser) -> None:
    d = NotesTrainOptions
    p.add_argument("--data", required=True, metavar="DIR", help="folder of .mid/.midi files (searched recursively)")
    _add_seq_size_args(p, d, ("GRU units per layer", "GRU layers", "token embedding size", "dropout"))
    p.add_argument("--batch", type=int, default=d.batch, help=f"windows per step (default {d.batch})")
    p.add_argument("--seq-len", type=int, default=d.seq_len, help=f"tokens per window (default {d.seq_len})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr:g})")
    p.add_argument(
        "--transpose",
        type=int,
        default=d.transpose,
        help=f"random transposition of up to +-N semitones (default {d.transpose}; 0 = off)",
    )


def _add_text_args(p: argparse.ArgumentParser) -> None:
    d = TextTrainOptions
    p.add_argument("--data", required=True, metavar="FILE", help="a plain text file (UTF-8 or Latin-1)")
    _add_seq_size_args(
        p, d, ("GRU state size", "stacked GRU layers", "character embedding size", "dropout, for long trainings")
    )
    p.add_argument(
        "--seq",
        type=int,
        default=d.seq,
        help=f"characters per truncated-BPTT step; the state carries over (default {d.seq})",
    )
    p.add_argument("--batch", type=int, default=d.batch, help=f"parallel text streams per step (default {d.batch})")
    p.add_argument("--lr", type=float, default=d.lr, help="peak Adam learning rate (default 2e-3)")
    p.add_argument(
        "--sample-chars",
        type=int,
        default=d.sample_chars,
        help=f"length of the sample written to PATH.txt (default {d.sample_chars})",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=d.temperature,
        help=f"sampling temperature of PATH.txt (default {d.temperature:g})",
    )


def _add_seq_size_args(p: argparse.ArgumentParser, d: type[SeqTrainOptions], helps: tuple[str, ...]) -> None:
    """--hidden, --layers, --embed, --dropout: the sequence network's size (SeqTrainOptions), with
    the family's defaults `d` and its words for each (`helps`, in that order)."""
    for (flag, kind), text in zip((("hidden", int), ("layers", int), ("embed", int), ("dropout", float)), helps):
        default = getattr(d, flag)
        p.add_argument(f"--{flag}", type=kind, default=default, help=f"{text} (default {default:g})")


def _add_train_common_args(p: argparse.ArgumentParser) -> None:
    """--out, --minutes | --steps, --resume, --device, --seed, --threads, --checkpoint-every."""
    d = TrainOptions
    p.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="output name: PATH.safetensors (model), samples beside it (PATH.png for gan, .mid for notes, "
        ".txt for text), PATH.state.safetensors (training state for --resume)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--minutes",
        type=_positive_finite,
        default=d.minutes,
        help=f"train for this many wall-clock minutes (default {DEFAULT_MINUTES:g} if no --steps)",
    )
    budget.add_argument("--steps", type=_positive_int, default=d.steps, help="train for this many steps")
    p.add_argument(
        "--resume", action="store_true", help="continue from PATH.state.safetensors; the budget counts anew from there"
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default=d.device,
        help=f"auto = cuda if available, else cpu (default {d.device})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="CPU threads for torch (default 1: on 2 cores a second thread was no faster, "
        "and up to 5x slower while anything else ran; docs/TEXT.md)",
    )
    p.add_argument(
        "--no-eval",
        action="store_true",
        help="skip the evaluation report (run_show.py eval PATH.safetensors) that training ends with",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_positive_finite,
        default=d.checkpoint_every_s,
        metavar="SECONDS",
        help=f"write model, sample grid and state this often (default {d.checkpoint_every_s:g}; the first "
        f"within {d.first_checkpoint_s:g} s or this interval, whichever is shorter)",
    )


# family -> (its flags, its options class)
_TRAIN_FAMILIES: dict[str, tuple[Callable[[argparse.ArgumentParser], None], type[TrainOptions]]] = {
    "gan": (_add_gan_args, GanTrainOptions),
    "vae": (_add_vae_args, VaeTrainOptions),
    "notes": (_add_notes_args, NotesTrainOptions),
    "text": (_add_text_args, TextTrainOptions),
}


def _add_control_args(show: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    show.add_argument(
        "--tempo-source",
        choices=SOURCES,
        default=d.stage.tempo_source,
        help="where the beat comes from: internal (/tempo/bpm, tap tempo), midi (MIDI clock in), "
        "link (Ableton Link; needs pip install .[link])",
    )
    g = show.add_argument_group("OSC")
    g.add_argument(
        "--osc-port",
        type=_count(0, 65535),
        default=d.osc_port,
        help=f"UDP port for OSC input (default {d.osc_port}; 0 = off)",
    )
    g.add_argument(
        "--osc-host",
        default=d.osc_host,
        help="address to listen on (default 127.0.0.1; 0.0.0.0 opens OSC to the network)",
    )
    g.add_argument(
        "--osc-allow",
        metavar="CIDR[,CIDR]",
        default=None,
        help="accept OSC only from these networks, e.g. 192.168.1.0/24,127.0.0.1/32",
    )
    g.add_argument(
        "--osc-out",
        metavar="HOST:PORT",
        action="append",
        default=None,
        help="send feedback and status here (repeatable)",
    )
    g.add_argument(
        "--oscquery-port",
        type=_count(0, 65535),
        default=d.oscquery_port,
        help=f"HTTP port of the OSCQuery discovery document (default {d.oscquery_port}; 0 = off)",
    )
    g.add_argument("--oscquery-host", default=d.oscquery_host, help="address the OSCQuery server listens on")
    g = show.add_argument_group("MIDI and patches")
    g.add_argument(
        "--midi-in",
        action="append",
        default=[],
        metavar="NAME",
        help="MIDI input port to open: a substring of its name, or 'all' (repeatable; waited for if absent)",
    )
    g.add_argument(
        "--midi-api",
        choices=sorted(API_NAMES),
        help="MIDI system (default: $MIDO_BACKEND, else JACK when the audio output uses JACK or, with no "
        "audio device, a JACK server runs, else python-rtmidi's default)",
    )
    g.add_argument(
        "--patch",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="patch file mapping controls to params (repeatable; later files win)",
    )
    g.add_argument(
        "--learn-save",
        type=Path,
        metavar="FILE",
        help=f"where MIDI learn saves bindings, loaded at start (default {default_learn_file()})",
    )
    g.add_argument(
        "--notes-prime",
        action="store_true",
        help="notes played on --midi-in that no patch route uses prime the scene's melody: "
        "play a phrase, and the model continues from it",
    )
    g.add_argument(
        "--midi-feedback",
        metavar="NAME",
        help="MIDI output port (substring) that receives feedback for routes with feedback = true",
    )


def _add_sound_args(show: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    g = show.add_argument_group("audio")
    g.add_argument(
        "--audio-device",
        metavar="DEVICE",
        help="output device: part of its name, its index, or a host API such as jack or alsa "
        "(default: JACK when a JACK server runs, else the system default)",
    )
    g.add_argument(
        "--sample-rate",
        type=_count(8000, 384000),
        metavar="HZ",
        help="sample rate (default: the JACK server's rate under JACK, else 48000)",
    )
    # Whole-number flags whose defaults are the config's: (flag, low, high, metavar, help).
    for flag, low, high, metavar, text in (
        ("--block-size", 16, 8192, "FRAMES", f"frames per audio block (default {d.block_size}: 5.3 ms at 48 kHz)"),
        (
            "--audio-latency",
            1,
            64,
            "BLOCKS",
            f"blocks rendered ahead of the sound card (default {d.audio_latency}: 21 ms at 256 frames, 48 kHz)",
        ),
        ("--synth-voices", 1, 64, "N", f"synth polyphony (default {d.synth_voices})"),
    ):
        default = getattr(d, flag[2:].replace("-", "_"))
        g.add_argument(flag, type=_count(low, high), default=default, metavar=metavar, help=text)
    g.add_argument("--no-audio", action="store_true", help="no sound output")
    g.add_argument(
        "--audio-in",
        metavar="DEVICE",
        help="analyse this input (name part, index or host API; 'auto' for the default) "
        "into level, band and onset features",
    )
    g = show.add_argument_group("generated notes")
    g.add_argument(
        "--notes-out",
        metavar="NAME",
        help="MIDI output port (substring of its name) for the generated notes; waited for if absent",
    )
    g.add_argument(
        "--notes-channel",
        type=_channel,
        default=d.notes_channel,
        metavar="N",
        help=f"MIDI channel of the generated notes, 1-16 (default {d.notes_channel})",
    )
    g.add_argument(
        "--note-log",
        type=Path,
        metavar="FILE",
        help="write every generated note as a JSON line {t, pitch, velocity, duration}",
    )


def show_config(args: argparse.Namespace, device: str, precision: str = "fp32") -> ShowConfig:
    """A parsed `show` command as its config (`device` already resolved: "cpu" or "cuda").
    Each field comes from the flag of the same dest; repeatable flags become tuples."""
    values = {f.name: getattr(args, f.name) for f in fields(ShowConfig) if hasattr(args, f.name)}
    values.update({name: tuple(values[name] or ()) for name in ("osc_out", "midi_in", "patch", "initial", "send")})
    stage = StageConfig(
        device=device,
        render_size=args.render_size,
        tempo_source=args.tempo_source,
        precision=precision,
        presets=args.presets,
        two_decks=args.two_decks,
    )
    fps = float(args.fps or DEFAULTS.fps)
    perform = getattr(args, "perform", False)
    hud = values.get("hud", False) or (perform and values.get("hud_display") is not None)
    fullscreen = args.fullscreen or perform
    return ShowConfig(
        **{**values, "stage": stage, "fps": fps, "vsync": not args.no_vsync, "hud": hud, "fullscreen": fullscreen}
    )


def train_options(args: argparse.Namespace) -> TrainOptions:
    """A parsed `train FAMILY` command as that family's options: each field from the flag of
    the same dest (fields without a flag keep their defaults). The first checkpoint comes
    within 30 s, or sooner when --checkpoint-every is shorter."""
    cls = _TRAIN_FAMILIES[args.family][1]
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    every = args.checkpoint_every
    return cls(**values, checkpoint_every_s=every, first_checkpoint_s=min(every, cls.first_checkpoint_s))
