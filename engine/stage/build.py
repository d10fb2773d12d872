"""The one builder: a show from (stage config, clock, output) and its loaded scenes.

The live show, the offline render and every benchmark build their Show here, so
they run the same loop with the same address space, tempo and renderer.
"""

from __future__ import annotations

import torch

from engine.config import StageConfig
from engine.core.clock import Clock, Pacer
from engine.core.events import EventQueue
from engine.core.space import build_space
from engine.core.stats import FrameStats
from engine.core.tempo import Tempo
from engine.files.preset import load_presets
from engine.files.setlist import SetlistSpec
from engine.stage.deck import LoadedScene
from engine.stage.frame import FrameRenderer
from engine.stage.presets import PresetBank
from engine.stage.show import Output, Show


def build_show(
    config: StageConfig,
    clock: Clock,
    output: Output,
    scenes: list[LoadedScene],
    *,
    pacer: Pacer | None = None,
    stats: FrameStats | None = None,
    strict: bool = False,
    setlist: SetlistSpec | None = None,
) -> Show:
    """A show of `scenes` (loaded on `config.device`) presenting to `output`, timed by `clock`
    (paced by `pacer` where no vsync paces it); `strict` re-raises frame errors (offline);
    `setlist` plays its items on time (its scenes must be among `scenes`)."""
    space = build_space(config.decks)
    tempo = Tempo(space.registry, config.tempo_source)
    renderer = FrameRenderer(torch.device(config.device), config.render_size)
    # Offline (strict) a replayed save stays in memory: a render never writes presets.
    presets = PresetBank(config.presets, load_presets(config.presets), write=not strict)
    show = Show(
        scenes,
        space.registry,
        EventQueue(),
        renderer,
        output,
        clock,
        pacer=pacer,
        stats=stats,
        strict=strict,
        tempo=tempo,
        space=space,
        presets=presets,
    )
    show.two_decks = config.two_decks
    if setlist is not None:
        show.use_setlist(setlist)
    return show
