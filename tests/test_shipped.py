"""Everything that ships is built and run: every scene, every model file in trained/."""

import json

import torch
from safetensors import safe_open

from engine.core.clock import FixedClock
from engine.core.events import EventQueue
from engine.core.space import build_registry
from engine.files.scene import load_scene, shipped_scenes
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.show import Show
from tests.conftest import REPO
from tests.fakes import FakeOutput

TRAINED = REPO / "trained"


def test_every_shipped_scene_plays_frames():
    specs = [load_scene(p) for p in shipped_scenes()]
    scenes = load_scenes(specs, torch.device("cpu"))
    out = FakeOutput(keys={2: ["next"], 4: ["next"]})
    show = Show(scenes, build_registry(), EventQueue(), FrameRenderer(torch.device("cpu")), out, FixedClock(30))
    show.run(frames=6)
    assert out.presents == 6 and show.scene_index == 2 % len(scenes)
    assert all(f.std() > 5 for f in out.frames), "a shipped scene drew a flat picture"


def test_trained_folder_is_small_safe_and_documented():
    files = sorted(TRAINED.glob("*.safetensors"))
    local = (".state.safetensors", ".keyframes.safetensors")  # resume states, the keyframe cache
    files = [f for f in files if not f.name.endswith(local)]
    assert files, "no shipped model in trained/"
    # What ships: resume states, keyframe caches and temp files stay local (.gitignore), so they do not count.
    shipped = [p for p in TRAINED.iterdir() if p.is_file() and not p.name.endswith(local) and ".tmp" not in p.name]
    total = sum(p.stat().st_size for p in shipped)
    assert total < 30 * 1024 * 1024
    assert not [p for p in TRAINED.iterdir() if p.suffix in {".pt", ".pth", ".pkl", ".ckpt"}]
    samples = {"gan": ".png", "vae": ".png", "notes": ".mid", "text": ".txt"}  # each family's sample beside its model
    for f in files:
        with safe_open(str(f), framework="pt") as sf:
            meta = sf.metadata()
            dtypes = {sf.get_slice(k).get_dtype() for k in sf.keys()}
        assert f.with_suffix(samples[meta["kind"]]).is_file(), f"{f.name} has no samples beside it"
        assert {"format", "kind", "config", "data", "metrics", "steps", "torch"} <= set(meta)
        assert dtypes == {"F16"}, dtypes
        metrics = json.loads(meta["metrics"])
        if meta["kind"] == "gan":
            assert metrics["sample_distance"] < metrics["sample_distance_start"]
        elif meta["kind"] == "vae":  # pictures it never saw: 3 dB better than their mean picture
            assert metrics["eval_held_gain_db"] >= 3.0 and json.loads(meta["data"])["held_out"]
        else:  # notes and text: better than the simple baseline on held-out data
            assert metrics["val_loss"] < metrics["baseline_loss"]
