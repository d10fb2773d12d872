"""Keyframes from pictures: read and check a picture, turn it into a latent, cache the result.

A "pictures" scene (engine.files.scene) names picture files; when the scene loads, each
becomes a latent of the scene's model:
- a VAE encodes the picture's whole view (its largest centred square at the model's size)
  to its posterior mean, which the decoder draws as the picture's reconstruction;
- a GAN has no encoder: the picture is projected, a latent found by optimisation whose
  picture is close to it (engine.stage.projection), and the log says how close (PSNR).

Latents are cached beside the model in NAME.keyframes.safetensors, one tensor per picture,
named by a hash of the model file's bytes, the picture file's bytes and the method: a
changed picture or a retrained model is encoded afresh, a scene that loads again starts at
once. The cache is an optimisation only: a cache that cannot be read is ignored (and
rewritten), one that cannot be written (a read-only folder) is skipped with one warning.
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from PIL import Image, UnidentifiedImageError

from engine.files.atomic import atomic_write_bytes
from engine.train.images import to_rgb, whole_pictures

log = logging.getLogger(__name__)

MIN_PICTURE_SIDE = 16  # px: smaller pictures carry nothing to show (a 1x1 pixel, a favicon)
CACHE_SUFFIX = ".keyframes.safetensors"
MAX_PICTURE_BYTES = 256 * 2**20  # a keyframe picture larger than this is refused, not read into memory


class PictureError(ValueError):
    """A keyframe picture that cannot be used; the message names the file and why."""


def read_picture_bytes(path: Path) -> bytes:
    """The picture file's bytes; PictureError if it is missing, a folder or unreadable."""
    if not path.exists():
        raise PictureError(f"picture '{path}' does not exist")
    if path.is_dir():
        raise PictureError(f"picture '{path}' is a folder, expected a picture file (.png/.jpg/.jpeg/.webp)")
    try:
        if path.stat().st_size > MAX_PICTURE_BYTES:
            raise PictureError(f"picture '{path}' is larger than {MAX_PICTURE_BYTES >> 20} MB")
        return path.read_bytes()
    except OSError as exc:
        raise PictureError(f"picture '{path}' cannot be read ({exc.strerror or exc})") from None


def decode_picture(path: Path, raw: bytes, size: int) -> torch.Tensor:
    """The picture's whole view (1, 3, size, size) in [-1, 1]; PictureError if it is not a usable picture."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            rgb = to_rgb(img)
    except UnidentifiedImageError:
        raise PictureError(
            f"picture '{path}' cannot be decoded as an image (not a format Pillow reads: png, jpg, webp, ...)"
        ) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise PictureError(f"picture '{path}' cannot be decoded as an image ({exc})") from None
    w, h = rgb.size
    if min(w, h) < MIN_PICTURE_SIDE:
        raise PictureError(
            f"picture '{path}' is {w}x{h} px; keyframe pictures need at least {MIN_PICTURE_SIDE} px on each side"
        )
    arr = torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)  # (3, H, W)
    return whole_pictures([arr], size)


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (the model file: part of every cache key)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class KeyCache:
    """Latents by content key, in one safetensors file beside the model (see the module doc)."""

    def __init__(self, model_path: Path) -> None:
        self.path = model_path.with_name(model_path.name.removesuffix(".safetensors") + CACHE_SUFFIX)
        self._latents: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()  # the live adder's thread and the loader may both write
        self._write_failed = False
        if self.path.exists():
            try:
                self._latents = dict(safetensors.torch.load(self.path.read_bytes()))
            except Exception as exc:  # noqa: BLE001 - any unreadable cache is only a slower start
                log.warning("keyframe cache %s unreadable (%s); it will be rewritten", self.path, exc)

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            t = self._latents.get(key)
        return None if t is None else t.numpy().astype(np.float32)

    def put(self, key: str, latent: np.ndarray) -> None:
        """Remember a latent and rewrite the file (atomically)."""
        with self._lock:
            self._latents[key] = torch.from_numpy(np.asarray(latent, dtype=np.float32).copy())
            payload = safetensors.torch.save(dict(self._latents), metadata={"format": "keyframes-1"})
            try:
                atomic_write_bytes(self.path, payload)
            except OSError as exc:
                if not self._write_failed:
                    log.warning(
                        "keyframe cache %s not written (%s); pictures are encoded at every load", self.path, exc
                    )
                self._write_failed = True


Project = Callable[[torch.Tensor, str], tuple[np.ndarray, float]]  # (view (1,3,S,S), name) -> (latent, PSNR dB)


class PictureEncoder:
    """Pictures -> latents (N, latent_dim) for one model, cached: `project` for a GAN, None for a
    VAE (its encoder)."""

    def __init__(
        self, model: torch.nn.Module, model_path: Path, device: torch.device, project: Project | None, method: str
    ) -> None:
        self.model = model  # the eager float32 model (not the traced one the frame loop plays)
        config: Any = model.config  # a VAE's or either GAN family's: .size
        self.size = int(config.size)
        self.device = device
        self.project = project
        self.method = method  # part of every cache key: how the latent was found
        self.cache = KeyCache(model_path)
        self.model_digest = file_digest(model_path)
        self._lock = threading.Lock()  # one encode at a time: the loader, then the live adder's thread

    def key(self, raw: bytes) -> str:
        h = hashlib.sha256()
        for part in (self.model_digest.encode(), self.method.encode(), hashlib.sha256(raw).digest()):
            h.update(part)
        return h.hexdigest()[:40]

    def encode_file(self, path: Path) -> np.ndarray:
        """One picture's latent (latent_dim,) float32; PictureError if the picture is unusable."""
        raw = read_picture_bytes(path)
        key = self.key(raw)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        view = decode_picture(path, raw, self.size)
        with self._lock:
            latent = self._encode(view, path.name)
        self.cache.put(key, latent)
        return latent

    def encode_files(self, paths: Sequence[Path]) -> np.ndarray:
        """Every picture's latent, (N, latent_dim) float32, in order."""
        return np.stack([self.encode_file(p) for p in paths])

    @torch.inference_mode(False)
    def _encode(self, view: torch.Tensor, name: str) -> np.ndarray:
        if self.project is None:  # a VAE: its encoder's posterior mean
            with torch.no_grad():
                latent = self.model.encode(view.to(self.device)).float().cpu()[0]  # type: ignore[operator]
            return latent.numpy().astype(np.float32)
        projected, _ = self.project(view, name)  # a GAN; its PSNR is in the log
        return projected


class KeyframeAdder:
    """Pictures added during a show (/deck/<d>/keyframe/add "path"), turned into keys off the frame loop.

    `submit` returns at once: a worker thread reads, decodes and encodes (or projects) the
    picture and leaves (token, latent) for `ready` to collect; the deck splices the key in at
    its path's next loop boundary. A picture that cannot be used is one warning in the log
    and a count (`failed`); the show goes on. At most QUEUE_LIMIT adds wait; more are dropped
    and counted. With `synchronous` (offline renders, which must give the same frames every
    time) the work is done inside submit instead, so a key joins at the same frame every run.
    """

    QUEUE_LIMIT = 8

    def __init__(self, synchronous: bool = False) -> None:
        self.synchronous = synchronous
        self.failed = 0
        self.dropped = 0
        self._todo: queue.Queue[tuple[object, PictureEncoder, Path] | None] = queue.Queue(self.QUEUE_LIMIT)
        self._done: queue.SimpleQueue[tuple[object, np.ndarray]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, token: object, encoder: PictureEncoder, path: Path) -> None:
        """Start turning `path` into a key for `token` (the scene it joins)."""
        if self.synchronous:
            self._work(token, encoder, path)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="keyframe-adder", daemon=True)
            self._thread.start()
        try:
            self._todo.put_nowait((token, encoder, path))
        except queue.Full:
            self.dropped += 1
            log.warning("keyframe add of '%s' dropped: %d pictures are still being encoded", path, self.QUEUE_LIMIT)

    def ready(self) -> list[tuple[object, np.ndarray]]:
        """The keys finished since the last call, oldest first (never blocks)."""
        out: list[tuple[object, np.ndarray]] = []
        while not self._done.empty():  # checked first: the frame loop calls this every frame
            out.append(self._done.get_nowait())
        return out

    def close(self) -> None:
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join(timeout=5.0)
            self._thread = None

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            self._work(*item)

    def _work(self, token: object, encoder: PictureEncoder, path: Path) -> None:
        try:
            latent = encoder.encode_file(path)
        except PictureError as exc:
            self.failed += 1
            log.warning("keyframe add: %s; the show goes on without it", exc)
            return
        except Exception:  # noqa: BLE001 - whatever a picture does, the show goes on
            self.failed += 1
            log.exception("keyframe add of '%s' failed; the show goes on without it", path)
            return
        log.info("keyframe '%s' encoded; it joins at the next loop boundary", path.name)
        self._done.put((token, latent))
