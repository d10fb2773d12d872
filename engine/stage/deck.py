"""A deck plays one scene at a time: latent path time, live offsets, the model.

`load_scenes` loads every scene of a show (and each distinct model once)
before the first frame, so switching scenes never stalls a frame. A `Deck`
turns the registry's `/deck/<name>/...` params and the frame's dt into a
latent vector z (1, latent_dim) in a preallocated tensor.

Two params are made for modulation (docs/MODULATION.md): `pulse` kicks z
along one more fixed direction (orthogonal to the eight latent offsets) and
springs back, and `motion` is extra path speed, so it accumulates into the
path time and the walk never jumps back.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from engine.core.events import Event
from engine.core.latent import HOLD_MAX, KeyframeLoop, LatentPath, latent_directions, make_path, picture_path, slerp
from engine.core.params import Registry
from engine.core.ratelog import first_and_every
from engine.core.space import LATENT_OFFSETS, pick_index
from engine.errors import SceneError
from engine.files.scene import SceneSpec
from engine.models.checkpoint import load_image_model
from engine.models.vae import VAE
from engine.stage import projection
from engine.stage.graphs import graphed
from engine.stage.keyframes import KeyframeAdder, PictureEncoder, PictureError

log = logging.getLogger(__name__)

# A beat step larger than this in one frame (or a backwards one) is a jump of the
# tempo's position (MIDI start, song position), not playing: the path re-aligns.
MAX_BEAT_STEP = 1.0
# The pulse direction is row LATENT_OFFSETS of the scene's direction set (latent_directions
# is prefix-stable), so it is orthogonal to every /latent/<i> offset.
PULSE_ROW = LATENT_OFFSETS
# fp16 plays only if its frames stay this close to fp32's (PSNR in dB over 8-bit levels):
# at 40 dB the error is about 2.5 levels RMS, below what a projector shows.
HALF_MIN_PSNR = 40.0
_HALF_CHECK_LATENTS = 8


@dataclass
class LoadedScene:
    spec: SceneSpec
    generator: torch.nn.Module
    size: int  # native output side in px
    latent_dim: int
    path: LatentPath
    directions: np.ndarray  # (LATENT_OFFSETS, latent_dim) float32, orthonormal rows
    tau: float = 0.0  # path time in keyframes; kept per scene so a scene resumes where it left
    precision: str = "fp32"  # what the generator runs at: "fp32" or "fp16" (CUDA)
    encoder: PictureEncoder | None = None  # "pictures" scenes: turns a picture added live into a key
    pending_keys: list[np.ndarray] = field(default_factory=list)  # added live, join at the next loop boundary


@dataclass
class _Model:
    """One model file as a show loaded it: the played module, the eager one, and what it plays at."""

    played: torch.nn.Module  # traced / fp16 as chosen: what the frame loop runs
    eager: torch.nn.Module  # float32, untraced: encodes and projects keyframe pictures
    size: int
    latent_dim: int
    precision: str
    encoders: dict[int, PictureEncoder] = field(default_factory=dict)  # by projection steps ("pictures" scenes)


def load_scenes(specs: list[SceneSpec], device: torch.device, precision: str = "fp32") -> list[LoadedScene]:
    """Load each scene's model (once per distinct file) and build its path; `precision` "fp16"
    runs a model at half precision where that keeps its picture (with_precision). A "pictures"
    scene's keys are its pictures encoded (VAE) or projected (GAN) here, before the first frame;
    a picture that cannot be used is a SceneError naming the scene and the picture."""
    models: dict[Path, _Model] = {}
    scenes = []
    for spec in specs:
        if spec.model not in models:
            models[spec.model] = _load_model(spec.model, device, precision)
        m = models[spec.model]
        path, encoder = _scene_path(spec, m, device)
        scenes.append(
            LoadedScene(
                spec=spec,
                generator=m.played,
                size=m.size,
                latent_dim=m.latent_dim,
                path=path,
                encoder=encoder,
                directions=latent_directions(m.latent_dim, LATENT_OFFSETS, spec.seed + 1).astype(np.float32),
                precision=m.precision,
            )
        )
    return scenes


def _load_model(file: Path, device: torch.device, precision: str) -> _Model:
    eager, meta = load_image_model(file, device=str(device), dtype=torch.float32)
    dim = int(eager.config.latent_dim)
    played, used = with_precision(eager, dim, device, precision, file.name)
    log.info(
        "loaded %s (%s %s px, trained %s steps, %s)", file.name, meta["kind"], eager.config.size, meta["steps"], used
    )
    return _Model(graphed(frozen(played, dim, device), dim, device), eager, int(eager.config.size), dim, used)


def _scene_path(spec: SceneSpec, m: _Model, device: torch.device) -> tuple[LatentPath, PictureEncoder | None]:
    """The scene's path and, for a "pictures" path, the encoder its keys came from (a picture
    added live goes the same way)."""
    if spec.path_kind != "pictures":
        return make_path(spec.path_kind, m.latent_dim, spec.seed, **spec.path_settings), None
    steps = spec.path_settings.get("project_steps")
    if isinstance(m.eager, VAE) and steps is not None:
        raise SceneError(
            f"{spec.file}: key 'path.project_steps': expected no projection settings with a VAE model "
            f"('{spec.model.name}' encodes its pictures; projection is for GAN models)"
        )
    steps = int(steps if steps is not None else projection.STEPS)
    if steps not in m.encoders:  # one per projection length: the length is part of the cache key
        vae = isinstance(m.eager, VAE)
        # Seed 0 for every scene: a picture projects alike wherever it is named (one cache entry).
        project = None if vae else partial(projection.project, m.eager, steps=steps)
        method = "vae-mean-v1" if vae else f"gan-projection-v1-{steps}"
        m.encoders[steps] = PictureEncoder(m.eager, spec.model, device, project, method)
    encoder = m.encoders[steps]
    try:
        keys = encoder.encode_files(spec.pictures)
    except PictureError as exc:
        raise SceneError(f"{spec.file}: key 'path.pictures': {exc}") from None
    log.info("%s: %d picture keyframe(s) from %s", spec.name, len(keys), ", ".join(p.name for p in spec.pictures))
    return picture_path(keys, **{k: v for k, v in spec.path_settings.items() if k != "project_steps"}), encoder


class HalfGenerator(torch.nn.Module):
    """A generator at fp16 behind the float32 interface: z (B, latent_dim) float32 ->
    (B, 3, S, S) fp16. The frame converter takes fp16 as it is (FrameRenderer.convert)."""

    def __init__(self, half: torch.nn.Module) -> None:
        super().__init__()
        self.half_model = half

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.half_model(z.half())


@torch.inference_mode()
def half_psnr(full: torch.nn.Module, half: torch.nn.Module, latent_dim: int, device: torch.device) -> float:
    """PSNR in dB of `half`'s frames against `full`'s over fixed latents, both as 8-bit
    levels (what the screen gets); inf when they agree exactly."""
    z = torch.randn((_HALF_CHECK_LATENTS, latent_dim), generator=torch.Generator().manual_seed(0)).to(device)

    def levels(img: torch.Tensor) -> torch.Tensor:  # (B, 3, S, S) in [-1, 1] -> float levels 0..255
        return ((img.float().clamp(-1, 1) + 1.0) * 127.5).round()

    mse = float(((levels(full(z)) - levels(half(z))) ** 2).mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def with_precision(
    gen: torch.nn.Module, latent_dim: int, device: torch.device, precision: str, name: str = "model"
) -> tuple[torch.nn.Module, str]:
    """The generator to play at `precision` ("fp32" or "fp16") and the precision it plays at:
    fp16 only if half_psnr >= HALF_MIN_PSNR, else fp32 with a warning naming the model."""
    if precision != "fp16":
        return gen, "fp32"
    half = HalfGenerator(copy.deepcopy(gen).half()).eval()
    psnr = half_psnr(gen, half, latent_dim, device)
    if psnr < HALF_MIN_PSNR:
        log.warning("%s stays at fp32: at fp16 its frames differ by %.1f dB PSNR (< %g)", name, psnr, HALF_MIN_PSNR)
        return gen, "fp32"
    log.info("%s plays at fp16 (%.1f dB PSNR against fp32)", name, psnr)
    return half, "fp16"


def frozen(gen: torch.nn.Module, latent_dim: int, device: torch.device) -> torch.nn.Module:
    """The generator traced and frozen by TorchScript (weights folded into one graph): on the
    2-core CPU the 128 px forward pass went from 6.6 to 5.9 ms median and its p99 from 8.6 to
    6.8 ms. Kept only if it gives the eager model's output bit for bit; else the eager model.
    torch.jit is deprecated (torch 2.13 warns; torch.compile needs a C compiler and tens of
    seconds at startup): when it is gone or fails, the eager model plays, a little slower."""
    if device.type == "cuda":
        # On CUDA one graph replay is what pays (fp16 classic 128 px: 3.4 ms eager, 0.35 ms as a
        # graph, on an H200), and there the frozen graph's folded convolutions pick other cuDNN
        # kernels, so it never matched the eager output bit for bit: the graph captures the eager model.
        return gen
    z = torch.randn((2, latent_dim), generator=torch.Generator().manual_seed(0)).to(device)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the traced shape check; torch.jit's deprecation notice
            traced = torch.jit.freeze(torch.jit.trace(gen, z[:1]).eval())
            same = all(torch.equal(traced(z[i : i + 1]), gen(z[i : i + 1])) for i in range(2))
    except Exception as e:  # noqa: BLE001 - any failure (or a torch without jit) means: stay eager
        log.info("generator kept eager (tracing failed: %s)", e)
        return gen
    if not same:
        log.info("generator kept eager (the traced one differs)")
        return gen
    return traced


class Deck:
    """One playing scene and the params that steer it, under /deck/<name>/."""

    def __init__(self, name: str, registry: Registry) -> None:
        self.name = name
        self.registry = registry
        self.base = f"/deck/{name}"
        self.scene: LoadedScene | None = None
        self._z_np = np.zeros((0,), np.float32)
        self._offset_z = np.zeros((0,), np.float32)
        self._offsets = np.zeros((LATENT_OFFSETS,), np.float32)
        self._offset_addrs = [f"{self.base}/latent/{i}" for i in range(1, LATENT_OFFSETS + 1)]
        self._truncation_addr = f"{self.base}/truncation"
        self._last_beat: float | None = None  # tempo beat at the last advance (beat-timed scenes)
        self._align_modulus: float | None = None  # set: align the path's phase on the next advance
        self._pulse_dir = np.zeros((0,), np.float32)  # unit direction the pulse kicks along
        self._pulse_in = 0.0  # the pulse param at the last advance (a rise kicks)
        self._pulse_peak = 0.0  # sigma, the last kick's height
        self._pulse_age = math.inf  # seconds since the last kick
        self._hold_addr, self._travel_addr = f"{self.base}/hold", f"{self.base}/travel"
        self._scrub_addr = f"{self.base}/scrub"
        self._scrub_seen = 0.0  # the scrub value last applied: a change moves the path
        self._segment = 0  # the key the path last left (floor of tau): the hold share changes there
        # Pictures added live (/deck/<d>/keyframe/add); the show sets a synchronous one offline.
        self.adder = KeyframeAdder()
        self.keyframe_misses = 0  # keyframe verbs that named no key or hit a scene without keys
        # A preset recall's slerp: from this path point (latent_dim,) to the path's, over glide_total s.
        self._glide_from: np.ndarray | None = None
        self._glide_t, self._glide_total = 0.0, 0.0

    @property
    def playing(self) -> LoadedScene:
        """The loaded scene (a show loads one into every deck before its first frame)."""
        assert self.scene is not None, "Deck used before Deck.load()"  # programming error, not input
        return self.scene

    @property
    def scene_name(self) -> str:
        return self.scene.spec.name if self.scene is not None else ""

    def load(self, scene: LoadedScene) -> None:
        """Make `scene` the playing one and reset the deck params to its defaults."""
        self.scene = scene
        self._glide_from = None
        self._z_np = np.zeros((scene.latent_dim,), np.float32)
        self._offset_z = np.zeros((scene.latent_dim,), np.float32)
        self._pulse_dir = _pulse_direction(scene)
        self._pulse_in, self._pulse_peak, self._pulse_age = 0.0, 0.0, math.inf
        timing = _key_timing(scene)
        for p in self.registry:
            if p.address.startswith(self.base + "/"):
                name = p.address[len(self.base) + 1 :]
                s = scene.spec.params.get(name)
                lo, hi, default = (s.lo, s.hi, s.default) if s else (p.hard_lo, p.hard_hi, p.default)
                if s is None and name in timing:  # the scene's own hold and travel times
                    default = min(max(timing[name], lo), hi)
                self.registry.configure(p.address, default=default, lo=lo, hi=hi)
        self._scrub_seen = self.registry.get(self._scrub_addr)
        self._latch_hold(scene, now=True)
        # A beat-timed scene starts with its keyframe boundaries on multiples of beats_per_key.
        self._align_modulus = scene.spec.beats_per_key

    def glide_to(self, position: float, seconds: float) -> None:
        """Move the path to `position` (path time in keys); with `seconds` > 0 the latent
        slerps there from where it stands (a preset recall's morph)."""
        sc = self.playing
        if seconds > 0.0:
            self._glide_from = sc.path.at(sc.tau).astype(np.float32)
            self._glide_t, self._glide_total = 0.0, seconds
        else:
            self._glide_from = None
        sc.tau = max(position, 0.0)

    def advance(self, dt: float, master_speed: float, beat: float = 0.0) -> None:
        """Move along the path at the deck's and the master speed: by dt seconds, or, for
        a beat-timed scene, by the tempo's beats since the last frame (`beat` in beats).
        Keys added live join when the path passes its loop's end; a moved scrub moves it."""
        sc = self.scene
        if sc is None:
            return
        self._spring(dt)
        if self._glide_from is not None:
            self._glide_t += max(dt, 0.0)
        self._collect_keys()
        before = sc.tau
        self._step(sc, dt, master_speed, beat)
        self._latch_hold(sc)
        self._scrub(sc)
        if sc.pending_keys:
            self._splice(sc, before)

    def _step(self, sc: LoadedScene, dt: float, master_speed: float, beat: float) -> None:
        get = self.registry.get
        # motion adds to the deck's speed (both >= 0), so it only ever moves the path on.
        speed = (get(f"{self.base}/speed") + get(f"{self.base}/motion")) * master_speed
        length = self._key_length(sc)  # seconds, or beats for a beat-timed scene, per key
        if sc.spec.beats_per_key is None:
            sc.tau += dt * speed / length
            return
        last, self._last_beat = self._last_beat, beat
        step = None if last is None else beat - last
        if step is None or not 0.0 <= step <= MAX_BEAT_STEP:
            self._align_modulus = self._align_modulus or min(length, 1.0)
        if self._align_modulus is not None:
            sc.tau = _aligned(sc.tau * length, beat, self._align_modulus) / length
            self._align_modulus = None
            return
        sc.tau += step * speed / length  # type: ignore[operator]  # step is set when last is

    def _key_length(self, sc: LoadedScene) -> float:
        """Seconds (or beats) per key: hold + travel on a keyframe path, else the scene's own."""
        if isinstance(sc.path, KeyframeLoop):
            return self.registry.get(self._hold_addr) + self.registry.get(self._travel_addr)
        return sc.spec.beats_per_key or sc.spec.seconds_per_key

    def _latch_hold(self, sc: LoadedScene, now: bool = False) -> None:
        """The hold share from the hold and travel params, taken on at each key (or `now`): a
        share changed mid-travel would move the picture back into the hold, a visible jump."""
        segment = math.floor(sc.tau)
        if isinstance(sc.path, KeyframeLoop) and (now or segment != self._segment):
            hold, travel = self.registry.get(self._hold_addr), self.registry.get(self._travel_addr)
            sc.path.hold = min(hold / (hold + travel), HOLD_MAX)
        self._segment = segment

    def _scrub(self, sc: LoadedScene) -> None:
        value = self.registry.get(self._scrub_addr)
        if value == self._scrub_seen:
            return
        self._scrub_seen = value
        if isinstance(sc.path, KeyframeLoop):
            period = sc.path.period
            sc.tau = math.floor(sc.tau / period) * period + min(value, 1.0 - 1e-9) * period

    def _collect_keys(self) -> None:
        for token, latent in self.adder.ready():
            if isinstance(token, LoadedScene):
                token.pending_keys.append(latent)

    def _splice(self, sc: LoadedScene, before: float) -> None:
        """Keys added live join once the path has passed its loop's end, where it stands on key 0
        in the old loop and in the new (no jump); they go in right after key 0, so the first
        new picture is the next one the path travels to."""
        path = sc.path
        if not isinstance(path, KeyframeLoop):
            sc.pending_keys.clear()
            return
        period = path.period
        if math.floor(sc.tau / period) <= math.floor(before / period):
            return
        offset = sc.tau - math.floor(sc.tau / period) * period
        for i, key in enumerate(sc.pending_keys):
            path = path.with_key(key, at=1 + i)
        log.info("%s: %d key(s) joined the loop, now %d", sc.spec.name, len(sc.pending_keys), int(path.period))
        sc.pending_keys.clear()
        sc.path, sc.tau = path, offset

    # Verbs of owner "keys" (engine.core.space.VERBS).
    def goto_keyframe(self, ev: Event) -> None:
        """Jump (cut) to key k: a 1-based number or digit string, or a picture's file name."""
        sc = self.scene
        if not self._mine(ev) or sc is None:
            return
        index = _key_index(sc, ev.value)
        if index is None:
            self._miss(f"no keyframe {ev.value!r} in scene {sc.spec.name!r}")
            return
        assert isinstance(sc.path, KeyframeLoop)  # _key_index found a key
        period = sc.path.period
        sc.tau = math.floor(sc.tau / period) * period + index

    def add_keyframe(self, ev: Event) -> None:
        """Encode a picture file off the frame loop; it joins the playing pictures scene's loop."""
        sc = self.scene
        if not self._mine(ev) or sc is None:
            return
        if sc.encoder is None or not isinstance(ev.value, str):
            self._miss(f"keyframe/add: scene {sc.spec.name!r} has no pictures path to add {ev.value!r} to")
            return
        self.adder.submit(sc, sc.encoder, _picture_file(ev.value, sc.spec.file))

    def _mine(self, ev: Event) -> bool:
        if ev.address.startswith(self.base + "/"):
            return True
        self.registry.rejected += 1  # another deck's verb (the show routes each to its deck)
        return False

    def _miss(self, why: str) -> None:
        self.registry.rejected += 1
        self.keyframe_misses += 1
        if first_and_every(self.keyframe_misses, 100):
            log.warning("%s (%d such requests so far); the show goes on", why, self.keyframe_misses)

    def _spring(self, dt: float) -> None:
        """Pulse: a rise of the param above the current kick restarts the kick at that
        height; the kick then falls back to 0 in pulse_decay seconds."""
        x = self.registry.get(f"{self.base}/pulse")
        self._pulse_age += max(dt, 0.0)
        if x > self._pulse_in and x > self.pulse:
            self._pulse_peak, self._pulse_age = x, 0.0
        self._pulse_in = x

    @property
    def pulse(self) -> float:
        """The kick's current height in sigma: peak * (1 - age/decay)^2, a quick
        fall that settles gently and reaches 0 exactly at the decay time."""
        decay = self.registry.get(f"{self.base}/pulse_decay")
        left = 1.0 - self._pulse_age / decay if decay > 0.0 else 0.0
        return self._pulse_peak * left * left if left > 0.0 else 0.0

    def hold(self, beat: float) -> None:
        """The path stands still (freeze); when it moves again it re-takes the beat's phase."""
        self._last_beat = beat
        sc = self.scene
        if sc is not None and sc.spec.beats_per_key is not None and self._align_modulus is None:
            self._align_modulus = min(sc.spec.beats_per_key, 1.0)

    @property
    def offsets(self) -> np.ndarray:
        """The latent offsets (LATENT_OFFSETS,) the last latent() used (read-only view)."""
        view = self._offsets.view()
        view.flags.writeable = False
        return view

    def latent(self) -> np.ndarray:
        """z (latent_dim,) float32 for the current frame: truncation * path + offsets + pulse."""
        sc = self.scene
        assert sc is not None, "Deck.latent() before Deck.load()"  # programming error, not input
        get = self.registry.get
        for i, a in enumerate(self._offset_addrs):
            self._offsets[i] = get(a)
        point = sc.path.at(sc.tau)
        if self._glide_from is not None:  # a preset recall's morph: slerp from where it stood
            done = min(self._glide_t / self._glide_total, 1.0)
            point = slerp(self._glide_from, point, done * done * (3.0 - 2.0 * done))  # smoothstep ease
            if done >= 1.0:
                self._glide_from = None
        np.multiply(point, get(self._truncation_addr), out=self._z_np)
        np.dot(self._offsets, sc.directions, out=self._offset_z)  # (8,) @ (8, dim) -> (dim,)
        self._z_np += self._offset_z
        kick = self.pulse
        if kick > 0.0 and self._pulse_dir.size == self._z_np.size:
            self._z_np += np.multiply(self._pulse_dir, kick, out=self._offset_z)  # scratch: no allocation
        return self._z_np


def _key_timing(scene: LoadedScene) -> dict[str, float]:
    """The scene's hold and travel times per key (seconds, or beats when beat-timed)."""
    length = scene.spec.beats_per_key or scene.spec.seconds_per_key
    share = scene.path.hold if isinstance(scene.path, KeyframeLoop) else 0.0
    return {"hold": share * length, "travel": (1.0 - share) * length}


def _key_index(scene: LoadedScene, value: object) -> int | None:
    """0-based key of a keyframe verb's argument (1-based number or digits, or a picture's name or
    stem); keys added live have no name."""
    if not isinstance(scene.path, KeyframeLoop):
        return None
    pictures = [(p.name, p.stem) for p in scene.spec.pictures]
    keys = [pictures[i] if i < len(pictures) else () for i in range(int(scene.path.period))]
    return pick_index(value, keys)


def _picture_file(value: str, scene_file: Path) -> Path:
    """A picture path sent live: absolute, or relative to the show's folder, then to the scene's."""
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return p
    beside = scene_file.parent / p
    return beside if beside.exists() else p


def _pulse_direction(scene: LoadedScene) -> np.ndarray:
    """The scene's pulse direction (latent_dim,): the next row of its offset directions."""
    dim = scene.latent_dim
    if dim <= PULSE_ROW:  # too few dimensions for a ninth orthogonal axis: kick along the first
        return scene.directions[0].astype(np.float32)
    return latent_directions(dim, PULSE_ROW + 1, scene.spec.seed + 1)[PULSE_ROW].astype(np.float32)


def _aligned(path_beats: float, beat: float, modulus: float) -> float:
    """path_beats moved by less than modulus/2 so that path_beats == beat (mod modulus)."""
    shift = (beat - path_beats + modulus / 2.0) % modulus - modulus / 2.0
    return path_beats + shift
