"""Shared fixtures: tiny model files made on the fly (tests never need trained/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may open a real window or sound device unless it starts its own Xvfb.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

# Nor join a JACK server it did not start: every JACK client (PortAudio's JACK host API,
# python-rtmidi, jack_lsp, a show in a subprocess) opens the server JACK_DEFAULT_SERVER
# names when it opens, so with a desktop's server running (jackd, pipewire-jack) a test
# process would otherwise play into it and keep a client there. Here it names no server;
# engine.bench.jackserver.dummy_server points it at a private one for as long as it runs.
os.environ["JACK_DEFAULT_SERVER"] = f"latent-stage-tests-{os.getpid()}-no-server"
os.environ["JACK_NO_START_SERVER"] = "1"  # and no client may start one (libjack's autostart)

REPO = Path(__file__).resolve().parent.parent


def make_tiny_gan(path: Path, size: int = 64, latent_dim: int = 16, seed: int = 0) -> Path:
    import torch

    from engine.models.checkpoint import save_model
    from engine.models.gan import GANConfig, Generator

    torch.manual_seed(seed)
    cfg = GANConfig(size=size, latent_dim=latent_dim, channels=32, min_channels=8)
    gen = Generator(cfg)
    save_model(path, gen.state_dict(), kind="gan", config=cfg.to_dict(), data={"folder": "test"}, metrics={}, steps=0)
    return path


def make_tiny_vae(path: Path, size: int = 64, seed: int = 0, data: dict | None = None) -> Path:
    """An untrained kind "vae" model (4 x 4 x 4 latent): it encodes and decodes, which is all the
    keyframe plumbing needs (a key's frame is the picture's reconstruction, trained or not)."""
    import torch

    from engine.models.checkpoint import save_model
    from engine.models.vae import VAE, VAEConfig

    torch.manual_seed(seed)
    cfg = VAEConfig(size=size, latent_channels=4, latent_side=4, channels=32, min_channels=8)
    vae = VAE(cfg)
    meta = data or {"folder": "test", "held_out": []}
    save_model(path, vae.state_dict(), kind="vae", config=cfg.to_dict(), data=meta, metrics={}, steps=0)
    return path


def _make_tiny_seq(path: Path, vocab, seed: int, data: dict) -> Path:
    import torch

    from engine.models.seq import SeqConfig, SeqModel, save_seq_model

    torch.manual_seed(seed)
    save_seq_model(path, SeqModel(SeqConfig(vocab, embed=8, hidden=24, layers=1)), data=data, metrics={}, steps=0)
    return path


def make_tiny_notes(path: Path, seed: int = 0) -> Path:
    """An untrained (random) kind "notes" model: it still plays notes, which is all the
    show's plumbing needs."""
    from engine.models.notes import NoteVocab

    return _make_tiny_seq(path, NoteVocab(), seed, {"folder": "test"})


def make_tiny_text(path: Path, seed: int = 0) -> Path:
    """An untrained kind "text" model over letters, space and newline."""
    from engine.models.text import CharVocab

    return _make_tiny_seq(path, CharVocab("abcdefghijklmnopqrstuvwxyz \n"), seed, {"file": "test"})


@pytest.fixture
def seq_scene(tmp_path: Path, scene_file):
    """A scene with a melody and text (tiny untrained models); returns a function(extra) -> path."""
    make_tiny_notes(tmp_path / "notes.safetensors")
    make_tiny_text(tmp_path / "text.safetensors")

    def write(extra: str = "", name: str = "seq.toml", notes: str = "") -> Path:
        """`notes` goes into [notes]; `extra` after [text] (text keys, then other tables)."""
        return scene_file(
            'name = "seq"\n[notes]\nmodel = "notes.safetensors"\n'
            + notes
            + '[text]\nmodel = "text.safetensors"\nrate = 30.0\n'
            + extra,
            name=name,
        )

    return write


@pytest.fixture
def tiny_gan(tmp_path: Path) -> Path:
    return make_tiny_gan(tmp_path / "tiny.safetensors")


@pytest.fixture
def scene_file(tmp_path: Path, tiny_gan: Path):
    """Write a scene TOML next to the tiny model; returns a function(text) -> path."""

    def write(body: str = "", name: str = "scene.toml", model: str = "tiny.safetensors") -> Path:
        p = tmp_path / name
        p.write_text(f'model = "{model}"\n' + body)
        return p

    return write


@pytest.fixture()
def one_torch_thread():
    """Tiny models gain nothing from 2 threads, and on a loaded 2-core machine OpenMP
    spin-waiting made the training tests 10x slower (modules opt in with usefixtures)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process_and_open_no_socket(request, monkeypatch):
    """A test that starts a subprocess or uses a network socket must be marked integration
    (`pytest -m "not integration"` is the quick, deterministic unit suite); unmarked, it fails
    here, naming what it started."""
    if request.node.get_closest_marker("integration") is not None:
        yield
        return
    import socket
    import subprocess

    def popen(self, args, *a, **kw):
        pytest.fail(f"a unit test started a subprocess ({args!r}): mark it @pytest.mark.integration", pytrace=False)

    def guard(name):
        real = getattr(socket.socket, name)

        def call(self, *a, **kw):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                pytest.fail(
                    f"a unit test used a network socket (socket.{name}{a!r}): mark it @pytest.mark.integration",
                    pytrace=False,
                )
            return real(self, *a, **kw)

        return call

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
    for name in ("bind", "connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, guard(name))
    yield


def two_scene_files(folder: Path, speed: float | None = None) -> list[Path]:
    """Scenes "a" and "b" of two different tiny models (seeds 1 and 2), standing still when
    `speed` is 0 (their path speed's default)."""
    paths = []
    for seed, name in enumerate(("a", "b"), start=1):
        make_tiny_gan(folder / f"{name}.safetensors", seed=seed)
        body = f'model = "{name}.safetensors"\nname = "{name}"\n'
        if speed is not None:
            body += f"[params.speed]\ndefault = {speed}\n"
        (folder / f"{name}.toml").write_text(body)
        paths.append(folder / f"{name}.toml")
    return paths


def start_show(command: list[str]):
    """A show process (stderr captured) that has logged "show running"; (process, its stderr
    lines so far). The caller kills it."""
    import subprocess
    import threading

    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started, lines = threading.Event(), []

    def watch() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "show running" in line:
                started.set()

    threading.Thread(target=watch, daemon=True).start()
    if not started.wait(60):
        proc.kill()
        raise AssertionError("the show did not start:\n" + "".join(lines))
    return proc, lines
