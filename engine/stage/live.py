"""The live show: a window (or headless window), the live clock, signals, stats."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from engine.config import ShowConfig
from engine.control import close_controls, control_stats, start_controls
from engine.control.http import HttpControl, StatusPublisher, parse_http, show_status
from engine.core.clock import LiveClock, Pacer
from engine.core.events import Event
from engine.core.stats import FrameStats
from engine.devices.notify import Notifier
from engine.devices.senders import close_senders, open_senders, send_hook, senders_stats
from engine.errors import StartupError
from engine.files.scene import SceneSpec
from engine.files.schedule import load_schedule
from engine.files.setlist import SetlistSpec
from engine.seq.layer import start_live_seq
from engine.stage.build import build_show
from engine.stage.deck import load_scenes
from engine.stage.hours import OpeningHours
from engine.stage.hud import WarningTail
from engine.stage.show import Show
from engine.stage.state import StateSaver, restore

log = logging.getLogger(__name__)

DEFAULT_WINDOW = (1280, 720)


def no_display_reason(display: int | None) -> str | None:
    """Why no window can open here, or None when one can.

    An explicitly requested display that does not exist is a startup error,
    not a reason to fall back to a file.
    """
    from engine.devices.window import DisplayError, has_display

    if has_display():
        return None
    if display is not None:
        raise DisplayError(f"--display {display}: no display is available on this machine (DISPLAY is not set)")
    if sys.platform.startswith("linux"):
        return "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return "no display found"


def _install_signal_handlers(show: Show) -> None:
    def stop(signum: int, _frame: Any) -> None:
        log.info("%s received: ending the show", signal.Signals(signum).name)
        show.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def run_live(config: ShowConfig, specs: list[SceneSpec], setlist: SetlistSpec | None = None) -> dict[str, Any]:
    """Open the output, play the scenes until Esc/--seconds/a signal; return the stats summary."""
    fps = config.fps
    device = torch.device(config.stage.device)
    if config.headless and (config.fullscreen or config.display is not None):
        raise StartupError("--headless cannot be combined with --fullscreen or --display")
    # A bad --send fails before the window and models; the window before seconds of model loading.
    senders = open_senders(config.send, fps)
    http_at = parse_http(config.http) if config.http else None
    started = time.monotonic()
    schedule = load_schedule(config.hours) if config.hours is not None else None
    output = _open_output(config, vsync=config.vsync and not config.headless)
    try:
        scenes = load_scenes(specs, device, config.stage.precision)  # all models in memory before the first frame
        # Vsync paces only when the display refreshes at the requested rate.
        pacer = None if output.vsync_active else Pacer(fps)
        stats = FrameStats(fps)
        clock = LiveClock()
        show = build_show(config.stage, clock, output, scenes, pacer=pacer, stats=stats, setlist=setlist)
        if schedule is not None:
            show.hours = OpeningHours(schedule)
        if config.resume_state is not None:
            restore(show, config.resume_state)
        saver = StateSaver(config.state) if config.state is not None else None
        if saver is not None:
            show.frame_hooks.append(saver)
        _queue_initial(config, show)
        first_frame = _FirstFrame(show)
        if senders:  # after each present: the frame to every --send (no hook without one)
            show.frame_hooks.append(send_hook(senders))
        notifier = Notifier()  # READY=1 and a heartbeat from the frame loop to systemd or `supervise`
        show.frame_hooks.append(notifier)
        _install_signal_handlers(show)
        _warm_up(show)
        controls = start_controls(config, show)
        recorder = seq = hud = http = None
        try:
            hud = _start_hud(config, show, controls)
            seq = start_live_seq(config, show, lambda: clock.origin)
            if http_at is not None:
                http = _start_http(config, show, http_at, started, controls, seq)
            recorder = _start_recorder(config, show, specs, setlist)
            log.info(
                "show running on %s: %d scene(s), %s fps, %s",
                device,
                len(scenes),
                fps,
                "vsync" if pacer is None else "timer-paced",
            )
            show.run(seconds=config.seconds)
        finally:
            if recorder is not None:
                recorder.close(end_frame=show.frame_count)
            if seq is not None:
                seq.close()
            if hud is not None:
                hud.close()
            if http is not None:
                http.close()
            if saver is not None:
                saver.close(show)
            notifier.close()
            close_controls(controls)
    finally:
        close_senders(senders)
        output.close()
    summary = stats.summary()
    summary.update(senders_stats(senders))
    summary.update(control_stats(controls))
    summary["queue_max"] = show.queue.max_depth
    if recorder is not None:
        summary.update(recorder.stats())
    if seq is not None:
        summary.update(seq.stats())
    if first_frame.seconds is not None:
        summary["first_frame_s"] = round(first_frame.seconds, 3)
    seconds = max(show.t, 1e-9)
    if show.hours is not None:
        summary["hours"] = {"open": show.hours.open, "rested_frames": show.hours.rested_frames}
    if show.autopilot is not None:
        summary["setlist"] = {"item": show.autopilot.index + 1, "changes": show.autopilot.changes}
    summary["deck_model_fps"] = {d.name: round(n / seconds, 2) for d, n in zip(show.decks, show.deck_forwards)}
    summary["frame_errors"] = show.frame_errors
    summary["hook_errors"] = show.hook_errors
    summary["rejected"] = show.registry.rejected  # applied events refused: NaN, no such scene, a wrong type
    summary["device"] = str(device)
    summary["threads"] = torch.get_num_threads()
    return summary


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc: interpreter start and imports
    included), or None where that cannot be read."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: start time in ticks
    except (OSError, ValueError, IndexError):
        return None


class _FirstFrame:
    """Logs how long the process took to present its first frame (a frame hook that leaves)."""

    def __init__(self, show: Show) -> None:
        self.seconds: float | None = None
        show.frame_hooks.append(self)

    def __call__(self, show: Show) -> None:
        show.frame_hooks.remove(self)
        self.seconds = process_age_s()
        if self.seconds is not None:
            log.info("first frame %.2f s after the process started", self.seconds)


def _start_http(
    config: ShowConfig, show: Show, at: tuple[str, int], started: float, controls: list, seq: Any
) -> HttpControl:
    """--http: the status, control page and inputs over HTTP (engine.control.http)."""
    tail = WarningTail()
    logging.getLogger().addHandler(tail)
    publisher = StatusPublisher(
        lambda: show_status(
            show,
            started,
            lambda: control_stats(controls),
            extra=seq.audio_stats if seq is not None else None,  # audio underruns
            warnings=tail.lines,
        )
    )
    show.frame_hooks.append(publisher)
    detach = lambda: logging.getLogger().removeHandler(tail)  # noqa: E731 - one line, read once
    return HttpControl(show, *at, publisher, config.http_token, on_close=detach)


def _start_hud(config: ShowConfig, show: Show, controls: list) -> Any:
    """The operator HUD (a second window; the H key or /show/hud shows it); none headless."""
    if config.headless:
        return None
    from engine.devices.hud import HudWindow

    hud = HudWindow(lambda: control_stats(controls), display=config.hud_display, visible=config.hud)
    show.provide("hud", hud)
    show.frame_hooks.append(hud.frame_hook)
    return hud


def _queue_initial(config: ShowConfig, show: Show) -> None:
    """--set ADDRESS=VALUE: queued for the first frame (so an event log records them)."""
    for address, value in config.initial:
        if address not in show.registry:
            raise StartupError(f"--set {address}={value:g}: no such param (run_show.py params lists them)")
        show.queue.put(Event("set", address, value, 0.0, "cli"))


def _start_recorder(config: ShowConfig, show: Show, specs: list[SceneSpec], setlist: SetlistSpec | None):
    """--record-events FILE: every applied input event, with its frame, as JSON lines."""
    from engine.core.eventlog import EventRecorder

    path = config.record_events
    if path is None:
        return None
    recorder = EventRecorder(
        path,
        fps=config.fps,
        scenes=[s.file for s in specs],
        tempo_source=show.tempo.source,
        patches=list(config.patch),
        presets=config.stage.presets,
        setlist=setlist.file if setlist is not None else None,
    )
    recorder.attach(show)
    log.info("recording input events to %s", path)
    return recorder


def _open_output(config: ShowConfig, vsync: bool):
    """The window; reopened without vsync when the display's refresh rate is not --fps."""
    from engine.devices.window import VideoOutput

    def open_(vsync_: bool) -> VideoOutput:
        return VideoOutput(
            (64, 64),  # resized to the first scene's frames by Show
            window_size=config.size or (None if config.fullscreen else DEFAULT_WINDOW),
            fullscreen=config.fullscreen,
            display=config.display,
            vsync=vsync_,
            aspect=config.aspect,
            headless=config.headless,
            title="Latent Stage",
        )

    output = open_(vsync)
    rate = output.refresh_rate
    fps = config.fps
    if output.vsync_active and abs(rate - fps) > 1.0:
        log.info("display refreshes at %s Hz, not %s fps: pacing by timer instead of vsync", rate or "unknown", fps)
        output.close()
        output = open_(False)
    return output


def _warm_up(show: Show) -> None:
    """Run each scene's model a few times so first-call costs stay out of the show."""
    for sc in show.scenes:
        z = torch.zeros((1, sc.latent_dim), device=show.renderer.device)
        with torch.inference_mode():
            for _ in range(3):
                sc.generator(z)
