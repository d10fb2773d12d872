"""Keyframes from pictures: scene keys, bad pictures, the latent cache, offline renders that hold
on each picture (VAE) or on its projection (GAN)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import SceneError
from engine.files.scene import load_scene
from engine.models.checkpoint import load_image_model
from engine.stage import keyframes
from engine.stage.deck import load_scenes
from engine.stage.keyframes import KeyCache, PictureError, decode_picture, read_picture_bytes
from engine.stage.offline import render
from tests.conftest import make_tiny_gan, make_tiny_vae

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


@pytest.fixture()
def pictures(tmp_path: Path) -> list[Path]:
    """Four different pictures (stripes, a disc, a gradient, noise), not square, not 64 px."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    yy, xx = np.mgrid[0:90, 0:120]
    arrays = [
        np.stack([(xx // 10 % 2) * 255, yy * 2, np.full_like(xx, 60)], -1),
        np.stack([((xx - 60) ** 2 + (yy - 45) ** 2 < 900) * 230, np.full_like(xx, 30), yy * 2], -1),
        np.stack([xx * 2, 255 - xx * 2, np.full_like(xx, 128)], -1),
        np.random.default_rng(0).integers(0, 255, (90, 120, 3)),
    ]
    files = []
    for i, arr in enumerate(arrays):
        files.append(folder / f"{i}.png")
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(files[-1])
    return files


@pytest.fixture()
def vae_file(tmp_path: Path) -> Path:
    return make_tiny_vae(tmp_path / "vae.safetensors")


def _scene(tmp_path: Path, model: Path, path_table: str, name: str = "s.toml") -> Path:
    file = tmp_path / name
    file.write_text(f'model = "{model}"\nseed = 3\n[path]\nkind = "pictures"\n{path_table}')
    return file


# -- scene files -------------------------------------------------------------------------------


def test_scene_lists_files_and_folders_and_times_hold_and_travel(tmp_path: Path, vae_file: Path, pictures) -> None:
    folder = pictures[0].parent
    spec = load_scene(_scene(tmp_path, vae_file, f'pictures = ["{pictures[3]}", "{folder}"]\nhold_seconds = 1.5\n'))
    assert spec.pictures == (pictures[3], *pictures)  # a folder: its pictures, sorted
    assert spec.seconds_per_key == pytest.approx(4.5)  # hold 1.5 + the default travel 3
    assert spec.path_settings["hold"] == pytest.approx(1.5 / 4.5)
    beats = load_scene(_scene(tmp_path, vae_file, f'pictures = "{folder}"\nhold_beats = 4\ntravel_beats = 4\n'))
    assert beats.beats_per_key == 8.0 and beats.path_settings["hold"] == 0.5
    keyframes_kind = tmp_path / "k.toml"
    keyframes_kind.write_text(
        f'model = "{vae_file}"\n[path]\nkind = "keyframes"\nhold_seconds = 1\ntravel_seconds = 3\n'
    )
    assert load_scene(keyframes_kind).path_settings["hold"] == 0.25


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ("", "key 'path.pictures': expected a list of picture files or folders (the key is missing)"),
        ('pictures = ["nowhere.png"]', "key 'path.pictures[0]': expected an existing picture file or folder"),
        ("pictures = []", "key 'path.pictures': expected a picture file or folder, or a non-empty list"),
        ("pictures = [3]", "key 'path.pictures[0]': expected a path to a picture file or folder"),
        ('pictures = ["EMPTY"]', "expected a folder holding .png/.jpg/.jpeg/.webp pictures"),
        ('pictures = ["P"]\nhold_seconds = 1\nseconds_per_key = 2', "expected only one"),
        ('pictures = ["P"]\nhold_seconds = 1\nhold_beats = 2', "expected only one"),
        ('pictures = ["P"]\nhold_seconds = -1', "key 'path.hold_seconds': expected seconds from 0"),
        ('pictures = ["P"]\nhold = 0.5\nhold_seconds = 1', "key 'path.hold': expected either the share hold"),
        ('pictures = ["P"]\nkeys = 4', "key 'path.keys': expected one of the settings of path kind 'pictures'"),
    ],
)
def test_bad_picture_scenes_name_file_and_key(
    tmp_path: Path, vae_file: Path, pictures, table: str, needle: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    table = table.replace("EMPTY", str(tmp_path / "empty")).replace('"P"', f'"{pictures[0]}"')
    file = _scene(tmp_path, vae_file, table + "\n")
    with pytest.raises(SceneError) as info:
        load_scene(file)
    assert str(file) in str(info.value) and needle in str(info.value)


def test_pictures_key_needs_the_pictures_kind(tmp_path: Path, vae_file: Path, pictures) -> None:
    file = tmp_path / "w.toml"
    file.write_text(f'model = "{vae_file}"\n[path]\nkind = "walk"\npictures = ["{pictures[0]}"]\n')
    with pytest.raises(SceneError, match=r"key 'path.pictures': expected kind = \"pictures\""):
        load_scene(file)


# -- bad pictures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is a folder, expected a picture file"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "cannot be decoded as an image"),
        (lambda p: Image.new("RGB", (1, 1)).save(p, format="PNG"), "is 1x1 px; keyframe pictures need at least 16"),
    ],
)
def test_unusable_pictures_are_one_clear_error(tmp_path: Path, make, needle: str) -> None:
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(PictureError, match=needle) as info:
        decode_picture(path, read_picture_bytes(path), 64)
    assert str(path) in str(info.value)


def test_a_corrupt_picture_in_a_scene_stops_the_load_naming_scene_and_picture(tmp_path: Path, vae_file, pictures):
    pictures[2].write_bytes(b"not a picture at all")
    file = _scene(tmp_path, vae_file, f'pictures = "{pictures[0].parent}"\n')
    with pytest.raises(SceneError) as info:
        load_scenes([load_scene(file)], CPU)
    message = str(info.value)
    assert message.startswith(f"{file}: key 'path.pictures': picture '{pictures[2]}' cannot be decoded")


# -- the cache ---------------------------------------------------------------------------------


def test_latents_are_cached_by_content(tmp_path: Path, vae_file: Path, pictures, monkeypatch) -> None:
    file = _scene(tmp_path, vae_file, f'pictures = "{pictures[0].parent}"\n')
    calls: list[str] = []
    original = keyframes.PictureEncoder._encode

    def counting(self, view, name):  # type: ignore[no-untyped-def]
        calls.append(name)
        return original(self, view, name)

    monkeypatch.setattr(keyframes.PictureEncoder, "_encode", counting)
    first = load_scenes([load_scene(file)], CPU)[0].path.at(0.0)
    assert calls == ["0.png", "1.png", "2.png", "3.png"]
    cache = tmp_path / "vae.keyframes.safetensors"
    assert cache.exists()
    again = load_scenes([load_scene(file)], CPU)[0].path.at(0.0)
    assert calls == ["0.png", "1.png", "2.png", "3.png"] and np.array_equal(first, again)  # all from the cache
    Image.new("RGB", (40, 40), (9, 9, 9)).save(pictures[1])  # a changed picture is encoded afresh
    load_scenes([load_scene(file)], CPU)
    assert calls[4:] == ["1.png"]
    cache.write_bytes(b"torn")  # an unreadable cache only costs time
    load_scenes([load_scene(file)], CPU)
    assert len(calls) == 9
    assert len(KeyCache(vae_file)._latents) == 4


# -- renders -----------------------------------------------------------------------------------


def _frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(folder.glob("*.png"))])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 100.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _reconstruction(model_file: Path, picture: Path) -> np.ndarray:
    model, _ = load_image_model(model_file)
    view = decode_picture(picture, picture.read_bytes(), 64)
    with torch.no_grad():
        img = model(model.encode(view))[0]  # type: ignore[operator]
    return ((img.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def test_a_vae_scene_holds_on_each_picture_and_morphs_smoothly(tmp_path: Path, vae_file: Path, pictures) -> None:
    fps, hold, travel = 10, 1.0, 2.0
    file = _scene(
        tmp_path, vae_file, f'pictures = "{pictures[0].parent}"\nhold_seconds = {hold}\ntravel_seconds = {travel}\n'
    )
    outs = []
    for name in ("a", "b"):
        render([load_scene(file)], seconds=12.0, fps=fps, out=str(tmp_path / name) + "/")
        outs.append(_frames(tmp_path / name))
    frames = outs[0]
    assert np.array_equal(frames, outs[1]), "a second render differs"
    per_key = round((hold + travel) * fps)
    for k, picture in enumerate(pictures):
        recon = _reconstruction(vae_file, picture)
        for i in range(k * per_key, k * per_key + round(hold * fps)):  # every frame of the hold
            assert _psnr(frames[i], recon) >= 30.0, (k, i)
    change = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))  # (T-1,) levels
    for k in range(len(pictures)):  # each travel on its own: pictures lie at different distances
        travel_change = change[k * per_key + round(hold * fps) : (k + 1) * per_key]
        assert travel_change.min() > 0.0, k
        assert travel_change.max() <= 4.0 * np.median(travel_change), (k, travel_change)


def test_a_gan_scene_projects_its_pictures_and_holds_on_them(tmp_path: Path, pictures, caplog) -> None:
    gan = make_tiny_gan(tmp_path / "gan.safetensors")
    file = _scene(
        tmp_path,
        gan,
        f'pictures = ["{pictures[0]}", "{pictures[1]}", "{pictures[2]}"]\nhold_seconds = 1\ntravel_seconds = 1\n',
    )
    with caplog.at_level(logging.INFO, logger="engine.stage.projection"):
        scene = load_scenes([load_scene(file)], CPU)[0]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("projected")]
    assert len(lines) == 3 and all(" dB against the picture" in line for line in lines)
    model, _ = load_image_model(gan)
    render([load_scene(file)], seconds=6.0, fps=10, out=str(tmp_path / "g") + "/")
    frames = _frames(tmp_path / "g")
    for k in range(3):
        z = torch.from_numpy(scene.path.at(float(k))).unsqueeze(0)
        with torch.no_grad():
            want = ((model(z)[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        assert _psnr(frames[k * 20 + 5], want) >= 30.0


# -- live: hold, travel, scrub, jump, add --------------------------------------------------------


def _live_show(tmp_path: Path, model: Path, pictures: list[Path], strict: bool, fps: int = 10):
    from engine.core.clock import FixedClock
    from engine.core.events import EventQueue
    from engine.core.space import build_registry
    from engine.stage.frame import FrameRenderer
    from engine.stage.show import Show
    from tests.fakes import FakeOutput

    table = (
        f"pictures = [{', '.join(f'{chr(34)}{p}{chr(34)}' for p in pictures)}]\nhold_seconds = 1\ntravel_seconds = 1\n"
    )
    scenes = load_scenes([load_scene(_scene(tmp_path, model, table))], CPU)
    out, reg, q = FakeOutput(None), build_registry(), EventQueue()
    show = Show(scenes, reg, q, FrameRenderer(CPU), out, FixedClock(fps), strict=strict)
    return show, out, reg, q


def _is(frame: np.ndarray, recon: np.ndarray) -> bool:
    return _psnr(frame, recon) >= 30.0


def test_hold_and_travel_params_retime_the_loop_live(tmp_path: Path, vae_file: Path, pictures) -> None:
    show, out, reg, q = _live_show(tmp_path, vae_file, pictures[:3], strict=True)
    assert (reg.get("/deck/a/hold"), reg.get("/deck/a/travel")) == (1.0, 1.0)  # the scene's times
    recon = [_reconstruction(vae_file, p) for p in pictures[:3]]
    show.run(frames=10)  # 1 s: the hold on key 1, then the travel starts
    assert _is(out.frames[9], recon[0]) and not _is(out.frames[-1], recon[1])
    reg.set("/deck/a/hold", 3.0)
    reg.set("/deck/a/travel", 0.5)
    show.run(frames=60)
    changes = np.abs(np.diff(np.stack(out.frames).astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert changes[10:16].min() > 0.0  # the travel under way goes on (new times apply from the next key)
    on_key = [i for i, f in enumerate(out.frames) if _is(f, recon[1])]
    held = [i for i in on_key if np.array_equal(out.frames[i], out.frames[on_key[len(on_key) // 2]])]
    assert 29 <= len(held) <= 31, held  # then 3 s standing still on key 2 at 10 fps


def test_scrub_and_jump_move_the_picture(tmp_path: Path, vae_file: Path, pictures) -> None:
    from engine.core.events import Event

    show, out, reg, q = _live_show(tmp_path, vae_file, pictures[:3], strict=True)
    recon = [_reconstruction(vae_file, p) for p in pictures[:3]]
    reg.set("/deck/a/speed", 0.0)  # stand still: only the controls move it
    q.put(Event("verb", "/deck/a/keyframe", 3.0))
    show.run(frames=2)
    assert _is(out.frames[-1], recon[2])
    q.put(Event("verb", "/deck/a/keyframe", "1.png"))  # by the picture's file name
    show.run(frames=2)
    assert _is(out.frames[-1], recon[1])
    reg.set("/deck/a/scrub", 0.0)
    reg.set("/deck/a/scrub", 2.0 / 3.0)  # two thirds of a 3-key loop: key 3
    show.run(frames=2)
    assert _is(out.frames[-1], recon[2])
    before = reg.rejected
    for bad in (0.0, 9.0, "nope.png", 1.5):
        q.put(Event("verb", "/deck/a/keyframe", bad))
    show.run(frames=1)
    assert reg.rejected == before + 4 and _is(out.frames[-1], recon[2])  # counted, nothing moved


@pytest.mark.parametrize("strict", [True, False])
def test_a_picture_added_live_joins_at_the_loop_boundary(tmp_path: Path, vae_file: Path, pictures, strict) -> None:
    from engine.core.events import Event

    show, out, reg, q = _live_show(tmp_path, vae_file, pictures[:2], strict=strict)
    added = _reconstruction(vae_file, pictures[3])
    show.run(frames=5)
    q.put(Event("verb", "/deck/a/keyframe/add", str(pictures[3])))
    show.run(frames=1)
    if not strict:  # the worker thread encodes it meanwhile
        deadline = time.monotonic() + 10.0
        while not show.deck.adder._done.qsize() and time.monotonic() < deadline:
            time.sleep(0.01)
    show.run(frames=100)  # the 2-key loop ends at 4 s, then key 1 and the new key (held from 6 s)
    scene = show.deck.scene
    assert scene is not None and scene.path.period == 3.0
    appears = [i for i, f in enumerate(out.frames) if _is(f, added)]
    assert appears and appears[0] >= 56 and len(appears) >= 10, appears  # not before its turn, then held


def test_bad_pictures_added_live_are_one_warning_each(tmp_path: Path, vae_file, pictures, caplog) -> None:
    from engine.core.events import Event

    show, out, reg, q = _live_show(tmp_path, vae_file, pictures[:2], strict=True)
    (tmp_path / "folder.png").mkdir()
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    with caplog.at_level(logging.WARNING):
        for bad in ("missing.png", str(tmp_path / "folder.png"), str(tiny), str(tmp_path / "s.toml")):
            q.put(Event("verb", "/deck/a/keyframe/add", bad))
        show.run(frames=3)
    lines = [r.getMessage() for r in caplog.records if "keyframe add" in r.getMessage()]
    assert len(lines) == 4, lines
    assert "does not exist" in lines[0] and "is a folder" in lines[1] and "1x1 px" in lines[2]
    assert "cannot be decoded" in lines[3]
    assert show.deck.adder.failed == 4 and out.presents == 3
    assert show.deck.scene is not None and show.deck.scene.path.period == 2.0


def test_projection_settings_on_a_vae_scene_are_a_clear_error(tmp_path: Path, vae_file: Path, pictures) -> None:
    file = _scene(tmp_path, vae_file, f'pictures = "{pictures[0].parent}"\nproject_steps = 300\n')
    with pytest.raises(SceneError) as info:
        load_scenes([load_scene(file)], CPU)
    assert str(info.value).startswith(f"{file}: key 'path.project_steps': expected no projection settings with a VAE")


def test_pads_can_add_and_jump_keyframes_through_a_patch(tmp_path: Path) -> None:
    from engine.core.space import build_registry
    from engine.files.patch import load_patch

    patch = tmp_path / "pads.toml"
    patch.write_text(
        '[[route]]\nsource = { type = "midi", note = 36 }\nverb = "/deck/a/keyframe/add"\nmode = "trigger"\n'
        'value = "~/pictures/new.jpg"\n'
        '[[route]]\nsource = { type = "midi", note = 37 }\nverb = "/deck/a/keyframe"\nmode = "trigger"\nvalue = 2\n'
    )
    routes = load_patch(patch, build_registry()).routes
    assert [(r.verb, r.value) for r in routes] == [
        ("/deck/a/keyframe/add", "~/pictures/new.jpg"),
        ("/deck/a/keyframe", 2),
    ]
