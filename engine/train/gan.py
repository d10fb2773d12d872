"""Train an image GAN on a small folder of images (as few as 4); see docs/TRAINING.md.

Two families (--arch): "fast" (engine.models.fastgan; its D also reconstructs the
real images it sees, an L1 loss added to D's real pass) and "classic"
(engine.models.gan); --preset picks the model size (engine.models.gan_arch).

Recipe (chosen to be stable on a handful of images and cheap on a CPU):
hinge loss; spectral-norm discriminator with a minibatch-stddev feature;
DiffAugment-style differentiable augmentation (colour, translation, cutout)
applied to real and fake images before D, so D cannot memorise the few real
images; Adam with betas (0, 0.99) (fast: FastGAN's (0.5, 0.999)); an exponential moving average (EMA) of the
generator weights, which is the generator that is sampled and shipped.

Outputs per checkpoint (first within 30 s, then every 60 s, and at the end):
NAME.state.safetensors (everything --resume needs, always the latest step);
NAME.safetensors (EMA generator, fp16) and NAME.png (4x4 grid from fixed
latents), which by default (--keep best) hold the checkpoint with the lowest
sample distance so far (each checkpoint also measures KID on the same samples,
logged and saved, not used to choose): on a few pictures the EMA generator's distance falls,
then often climbs again long before the budget ends (docs/TRAINING.md, "Which
checkpoint the model file keeps"). All written atomically, so a SIGKILL never
leaves a torn file.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from engine.errors import TrainSetupError
from engine.eval.features import image_features
from engine.eval.metrics import detail_energy_share, mmd2_unbiased, palette_spread
from engine.models.checkpoint import save_model
from engine.models.device import bf16_is_native
from engine.models.fastgan import FastDiscriminator, FastGenerator
from engine.models.gan_arch import (
    AnyGANConfig,
    build_discriminator,
    build_generator,
    gan_config_from_dict,
    preset_config,
)
from engine.train import dist
from engine.train.common import (
    TrainingParts,
    TrainOptions,
    check_resume_config,
    descend,
    equalized_param_groups,
    resolve_device,
    seeded,
    set_base_lr,
)
from engine.train.distance import sample_distance
from engine.train.images import load_image_folder, on_device, random_crops, save_image_grid
from engine.train.run import TrainRun

log = logging.getLogger(__name__)

GRID_SAMPLES = 16  # 4x4 PNG grid
EVAL_FAKE = 32  # generated samples per sample_distance (~0.2 s at 128 px on 2 cores)
EVAL_REAL = 64  # fixed real crops to compare against
_EVAL_SEED_OFFSET = 7919  # eval sets use their own seeds so they never move with training


AUGMENTS = ("color", "translation", "cutout")  # DiffAugment's parts, all on by default
TRAIN_PRECISIONS = ("fp32", "bf16", "auto")
KEEP_CHOICES = ("best", "last")  # which checkpoint the model file holds (--keep)
LECAM_DECAY = 0.99  # per step: the anchors remember D's mean logits over ~100 steps (Tseng et al. 2021)


def training_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of the training passes: bfloat16 for "bf16", and for "auto" where
    the device has it natively; float32 otherwise. Weights, optimiser state, the EMA
    generator and every saved file stay float32 whatever this says."""
    if precision == "bf16" or (precision == "auto" and bf16_is_native(device)):
        return torch.bfloat16
    return torch.float32


@dataclass(frozen=True)
class GanTrainOptions(TrainOptions):
    """Everything train_gan needs; the `train gan` flags (engine.flags) take their defaults from here.

    arch picks the family ("fast": engine.models.fastgan, "classic": engine.models.gan),
    preset the model size (engine.models.gan_arch.PRESETS); size, channels and
    min_channels left None take the preset's values, given ones override them.
    """

    arch: str = "fast"
    preset: str = "live"
    size: int | None = None
    latent_dim: int = 128
    channels: int | None = None
    min_channels: int | None = None
    d_width: int | None = None  # fast only: D's width as a multiple of G's; None = the preset's
    two_convs_up_to: int | None = None  # fast only: blocks up to this side (px) get a second conv; None = preset's
    d_small: int | None = None  # fast only: side (px) of D's whole-picture path, 0 none; None = the preset's
    d_rgb_kernel: int | None = None  # fast only: side of D's first conv (1 or 3); None = the preset's (3)
    d_top_convs: int | None = None  # fast only: convs per D block at >= 128 px (1 or 2); None = 1
    d_fine: int | None = None  # fast only: 1 = D's path on the finest band (FastDiscriminator); None = the preset's (1)
    upsample: str | None = None  # fast only: how G's blocks double the side; None = "bilinear"
    batch: int | None = None  # images per step; None = 8 for fast (as FastGAN), 16 for classic
    lr: float = 2e-4  # discriminator
    lr_g: float | None = None  # generator; None = lr for fast (as FastGAN), lr / 4 for classic (TTUR)
    ema: float = 0.999
    augment: tuple[str, ...] = AUGMENTS  # DiffAugment's parts (engine.train.gan.diff_augment)
    precision: str = "auto"  # "bf16": G's and D's passes under bfloat16 autocast (see training_dtype)
    palette_floor: float | None = None  # weight of palette_floor_loss; None = 1 for fast, 0 (off) for classic
    # Weight of detail_floor_loss (docs/TRAINING.md, "The detail floor"); None = 1 for fast, 0 (off) for classic.
    detail_floor: float | None = None
    detail_ceiling: float = 0.0  # detail ratio above which detail_floor_loss also pushes back; 0 = no ceiling
    keep: str = "best"  # model file and grid: the lowest sample distance so far ("best") or the latest ("last")
    lecam: float = 0.0  # weight of lecam_loss in D's loss; 0 = off

    def _floor_weight(self, given: float | None) -> float:
        """A floor's weight: as given, else 1 for the fast family and 0 (off) for the classic."""
        if given is not None:
            return given
        return 1.0 if self.arch == "fast" else 0.0

    def palette_weight(self) -> float:
        return self._floor_weight(self.palette_floor)

    def detail_weight(self) -> float:
        # The fast family's default since the twelfth session: in all five pairs at equal time
        # (two VMs, both folders) the floor lowered the patch distance (docs/TRAINING.md).
        return self._floor_weight(self.detail_floor)

    def batch_size(self) -> int:
        # Fast: FastGAN's 8. At equal CPU time twice the updates of 16 drew the paintings
        # closer (8-minute probe, one thread: patch distance 0.126 against 0.188).
        if self.batch is not None:
            return self.batch
        return 8 if self.arch == "fast" else 16

    def generator_lr(self) -> float:
        if self.lr_g is not None:
            return self.lr_g
        return self.lr if self.arch == "fast" else self.lr / 4.0

    def gan_config(self) -> AnyGANConfig:
        """The model config these options ask for; ValueError naming the bad field."""
        return preset_config(
            self.arch,
            self.preset,
            size=self.size,
            latent_dim=self.latent_dim,
            channels=self.channels,
            min_channels=self.min_channels,
            d_width=self.d_width,
            two_convs_up_to=self.two_convs_up_to,
            d_small=self.d_small,
            d_rgb_kernel=self.d_rgb_kernel,
            d_top_convs=self.d_top_convs,
            d_fine=self.d_fine,
            upsample=self.upsample,
        )


HELP = "a GAN from a folder of images (png/jpg/webp)"
DISTRIBUTED = True  # runs under torchrun (engine.train.dist); notes and text train in one process


def _validate(opts: GanTrainOptions) -> None:
    fast_only = (
        ("--d-width", opts.d_width),
        ("--two-convs-up-to", opts.two_convs_up_to),
        ("--d-small", opts.d_small),
        ("--d-rgb-kernel", opts.d_rgb_kernel),
        ("--d-top-convs", opts.d_top_convs),
        ("--d-fine", opts.d_fine),
        ("--upsample", opts.upsample),
    )
    for flag, value in fast_only:
        if value is not None and opts.arch != "fast":
            raise TrainSetupError(f"{flag} applies to --arch fast only, not {opts.arch}")
    try:
        opts.gan_config()
    except ValueError as exc:  # the config names the flag's dest (size, latent_dim ...): a setup error
        raise TrainSetupError(str(exc)) from None
    if opts.batch_size() < 1:
        raise TrainSetupError(f"--batch must be at least 1, got {opts.batch_size()}")
    for flag, lr in (("--lr", opts.lr), ("--lr-g", opts.generator_lr())):
        if not 0.0 < lr < 1.0:
            raise TrainSetupError(f"{flag} must be between 0 and 1, got {lr}")
    bad = [a for a in opts.augment if a not in AUGMENTS]
    if bad or len(set(opts.augment)) != len(opts.augment):
        raise TrainSetupError(f"--augment takes a comma list of {', '.join(AUGMENTS)} (each once), got {opts.augment}")
    if not 0.0 <= opts.ema < 1.0:
        raise TrainSetupError(f"--ema must be in [0, 1), got {opts.ema}")
    if not 0.0 <= opts.palette_weight() <= 100.0:
        raise TrainSetupError(f"--palette-floor must be from 0 (off) to 100, got {opts.palette_weight()}")
    if not 0.0 <= opts.detail_weight() <= 100.0:
        raise TrainSetupError(f"--detail-floor must be from 0 (off) to 100, got {opts.detail_weight():g}")
    if opts.keep not in KEEP_CHOICES:
        raise TrainSetupError(f"--keep must be one of {', '.join(KEEP_CHOICES)}, got {opts.keep!r}")
    if not 0.0 <= opts.lecam <= 100.0:
        raise TrainSetupError(f"--lecam must be from 0 (off) to 100, got {opts.lecam:g}")
    ceiling = opts.detail_ceiling
    if ceiling != 0.0 and not 1.0 <= ceiling <= 100.0:
        raise TrainSetupError(f"--detail-ceiling must be 0 (none) or a ratio from 1 to 100, got {ceiling:g}")
    if ceiling and not opts.detail_weight():
        raise TrainSetupError("--detail-ceiling needs --detail-floor W > 0: W weighs both sides")
    if opts.precision not in TRAIN_PRECISIONS:
        raise TrainSetupError(f"--precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {opts.precision!r}")


def palette_floor_loss(fake: torch.Tensor, real_spread: float) -> tuple[torch.Tensor, float]:
    """G's penalty for samples whose colours vary less than the pictures', and that ratio.

    relu(1 - spread(fake) / real_spread): 0 once a batch's mean colours are as far
    apart as the pictures' crops are, so it never pushes past the data. Why: the
    fast family's samples drifted to one shared palette, each a blend of all the
    paintings' colours (30 minutes on the paintings, four runs: the report's
    diversity_palette 0.054-0.063 against the crops' 0.111; the classic's 0.105-0.106,
    the fast's after 600 steps 0.113), and DiffAugment's random brightness, saturation
    and contrast hide exactly that from D. With it: 0.124-0.134 (docs/TRAINING.md,
    "The palette floor"). fake: (B, 3, S, S) G's output before augmentation.
    """
    return _floor(palette_spread(fake), real_spread)


def _floor(measured: torch.Tensor, real: float, ceiling: float = 0.0) -> tuple[torch.Tensor, float]:
    """relu(1 - measured / real) (0-dim) and that ratio: the shape every floor in G's loss shares;
    ceiling > 0 adds relu(ratio - ceiling), a push back from above."""
    ratio = measured / max(real, 1e-6)
    loss = F.relu(1.0 - ratio)
    if ceiling > 0.0:
        loss = loss + F.relu(ratio - ceiling)
    return loss, float(ratio.detach())


def detail_floor_loss(fake: torch.Tensor, real_share: float, ceiling: float = 0.0) -> tuple[torch.Tensor, float]:
    """G's penalty for samples with less fine detail than the pictures, and that ratio.

    relu(1 - share(fake) / real_share), share = the batch's mean detail_energy_share
    (spectral energy at periods of 4 px or less, the report's detail_ratio in
    training): 0 once the batch holds as much detail as the pictures' crops.
    Why: on the photos the fast G's 64 and 128 px blocks gave up their noise and
    drew blur (detail_ratio 0.007-0.04; scripts/g_detail.py). A frequency term
    needs no pretrained network. fake: (B, 3, S, S) G's output before augmentation.

    ceiling > 0 adds relu(ratio - ceiling): the floor alone let the photos
    overshoot into grain (detail_ratio 1.8-2.7, tenth session) because D did not
    push back, so the band [1, ceiling] holds it from both sides.
    """
    return _floor(detail_energy_share(fake, keep_grad=True).mean(), real_share, ceiling)


def per_path(logits: torch.Tensor, batch: int) -> torch.Tensor:
    """D's logits (P*B,), path-major (the fast D's main path's B, then its small and fine paths' B) -> (P, B) fp32."""
    return logits.float().view(-1, batch)


def lecam_loss(real: torch.Tensor, fake: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """LeCam regularisation of D (Tseng et al. 2021), 0-dim: mean relu(real - fake anchor)^2
    + mean relu(real anchor - fake)^2 per D path, summed over the paths (as the hinge is).

    real, fake: D's logits per path (P, B) (per_path); anchors (2, P): moving averages
    of D's mean real (row 0) and fake (row 1) logits.
    Why: the published remedy for a D that comes to know a few pictures by heart (its
    real logits running away from its fake ones). Measured on the paintings it
    delayed the sample distance's low point instead of removing the climb after it,
    and D's logits showed why: there D lets go (real and fake logits meet) rather
    than pulling away (docs/TRAINING.md, "LeCam against the climb"). Off by default.
    """
    on_real = F.relu(real - anchors[1, :, None]).square().mean(dim=1)
    on_fake = F.relu(anchors[0, :, None] - fake).square().mean(dim=1)
    return (on_real + on_fake).sum()


def diff_augment(x: torch.Tensor, gen: torch.Generator, policy: tuple[str, ...] = AUGMENTS) -> torch.Tensor:
    """Differentiable colour, translation and cutout (Zhao et al. 2020), those in `policy`;
    x: (B, C, H, W).

    Gradients flow through to G, so G is trained to fool D on augmented
    images while D never sees an unaugmented image and cannot memorise 4 pictures.
    The random draws are the same whatever the policy (one stream per run).
    """
    b, _, h, w = x.shape
    r = torch.rand(b, 7, generator=gen).to(device=x.device, dtype=x.dtype)
    if "color" in policy:
        x = x + (r[:, 0] - 0.5).view(b, 1, 1, 1)  # brightness
        mean_c = x.mean(dim=1, keepdim=True)
        x = (x - mean_c) * (2.0 * r[:, 1]).view(b, 1, 1, 1) + mean_c  # saturation
        mean_all = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean_all) * (r[:, 2] + 0.5).view(b, 1, 1, 1) + mean_all  # contrast
    if "translation" in policy:
        x = _translate(x, r[:, 3], r[:, 4], ratio=0.125)
    return _cutout(x, r[:, 5], r[:, 6], ratio=0.5) if "cutout" in policy else x


def _translate(x: torch.Tensor, ry: torch.Tensor, rx: torch.Tensor, ratio: float) -> torch.Tensor:
    """Shift each image by up to ratio*side pixels, zero fill; ry, rx: (B,) in [0, 1)."""
    b, c, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (ry * (2 * sy + 1)).long().clamp_(max=2 * sy)  # (B,) in [0, 2*sy]
    dx = (rx * (2 * sx + 1)).long().clamp_(max=2 * sx)
    padded = F.pad(x, (sx, sx, sy, sy))  # (B, C, H + 2sy, W + 2sx)
    rows = torch.arange(h, device=x.device).view(1, h) + dy.view(b, 1)  # (B, H)
    cols = torch.arange(w, device=x.device).view(1, w) + dx.view(b, 1)  # (B, W)
    out = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * sx))  # (B, C, H, W+2sx)
    return out.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))  # (B, C, H, W)


def _cutout(x: torch.Tensor, ry: torch.Tensor, rx: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero one square of side ratio*side per image, centred anywhere; ry, rx: (B,) in [0, 1)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    y0 = (ry * h).long() - ch // 2  # (B,) top edge, may be off-image
    x0 = (rx * w).long() - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h)
    xs = torch.arange(w, device=x.device).view(1, w)
    in_y = (ys >= y0.view(b, 1)) & (ys < (y0 + ch).view(b, 1))  # (B, H)
    in_x = (xs >= x0.view(b, 1)) & (xs < (x0 + cw).view(b, 1))  # (B, W)
    keep = ~(in_y.view(b, h, 1) & in_x.view(b, 1, w))  # (B, H, W)
    return x * keep.unsqueeze(1).to(x.dtype)


class _GanRun(TrainRun[GanTrainOptions]):
    """Models, optimisers, data and fixed evaluation sets of one training run."""

    KIND = "gan"
    SAMPLE = ".png"  # a 4x4 grid

    def __init__(self, opts: GanTrainOptions, device: torch.device) -> None:
        super().__init__(opts, device)
        self.config = opts.gan_config()
        self.images, self.scan = load_image_folder(opts.data, self.config.size)
        self.crop_source = on_device(self.images, device)
        self.g, self.d = seeded(
            opts.seed, lambda: (build_generator(self.config).to(device), build_discriminator(self.config).to(device))
        )
        # Eval mode: the fast family's EMA generator then adds its fixed noise maps, as
        # it will in the show, so the grid and the measured samples are what ships.
        self.ema_g = copy.deepcopy(self.g).requires_grad_(False).eval()
        # Crops, latents, augmentation, G's noise; under torchrun each rank draws its own (engine.train.dist).
        self.gen = torch.Generator().manual_seed(dist.rank_seed(opts.seed))
        if isinstance(self.g, FastGenerator):
            self.g.set_training_noise(self.gen)
        # Classic: betas (0, 0.99), no momentum, as its recipe was tuned (docs/TRAINING.md).
        # Fast: FastGAN's (0.5, 0.999) with equal learning rates for G and D; the
        # reconstruction loss keeps D's features general, so D does not need a faster
        # G held back by TTUR, and momentum smooths G's noisier per-pixel-noise gradients.
        betas = (0.5, 0.999) if isinstance(self.g, FastGenerator) else (0.0, 0.99)
        self.opt_g = torch.optim.Adam(equalized_param_groups(self.g, opts.generator_lr()), betas=betas)
        self.opt_d = torch.optim.Adam(equalized_param_groups(self.d, opts.lr), betas=betas)
        self.recon = math.nan  # the fast D's last reconstruction L1 loss
        self.palette = math.nan  # the last batch's palette spread / the pictures' (palette_floor_loss)
        self.detail = math.nan  # the last batch's detail share / the pictures' (detail_floor_loss)
        self.distance_start = math.nan
        self.distance = math.nan  # the latest checkpoint's sample distance
        self.kid = math.nan  # the latest checkpoint's KID (its samples and crops in the report's features)
        self.kept = (math.nan, -1)  # (sample distance, step) of the checkpoint the model file holds; none yet
        self.kept_kid = math.nan  # and its KID
        # Moving averages (2, paths) of D's mean real (row 0) and fake (row 1) logits; None before D's first step.
        self.logit_means: torch.Tensor | None = None
        self.batch = opts.batch_size()
        self.items_per_step = self.batch  # images
        self.dtype = training_dtype(opts.precision, device)
        self._make_eval_sets(opts.seed)

    def _make_eval_sets(self, seed: int) -> None:
        self.eval_seed = seed
        gen = torch.Generator().manual_seed(seed + _EVAL_SEED_OFFSET)
        self.grid_z = torch.randn(GRID_SAMPLES, self.config.latent_dim, generator=gen)
        self.eval_z = torch.randn(EVAL_FAKE, self.config.latent_dim, generator=gen)
        self.eval_real = random_crops(self.images, EVAL_REAL, self.config.size, gen)
        self.real_spread = float(palette_spread(self.eval_real))  # fixed per run: 64 crops, not a noisy batch
        self.real_detail = float(detail_energy_share(self.eval_real).mean())  # the same crops
        self.real_features = image_features(self.eval_real)  # (EVAL_REAL, 672), for the checkpoints' KID
        # What EVAL_FAKE more crops of the pictures score: the floor under the sample distance (two
        # crop sets of the same pictures are not 0 apart), so a log reader sees how much is left.
        held_apart = random_crops(self.images, EVAL_FAKE, self.config.size, gen)
        self.distance_real = sample_distance(held_apart, self.eval_real, seed=seed)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, chunk: int = 16) -> torch.Tensor:
        """EMA generator samples (N, 3, S, S) on the CPU, in chunks to bound memory."""
        outs = [self.ema_g(part.to(self.device)).float().cpu() for part in z.split(chunk)]
        return torch.cat(outs).contiguous()

    def measure(self) -> float:
        """The sample distance of EVAL_FAKE samples against the fixed crops; also sets self.kid from
        the same samples (the two see different faults: docs/TRAINING.md, "The photos' second seeds")."""
        fake = self.generate(self.eval_z)  # (EVAL_FAKE, 3, S, S)
        self.kid = mmd2_unbiased(self.real_features, image_features(fake))
        return sample_distance(fake, self.eval_real, seed=self.eval_seed)

    def bar_fields(self, losses: tuple[float, float]) -> dict[str, str]:
        fields = {"d_loss": f"{losses[0]:.3f}", "g_loss": f"{losses[1]:.3f}", "img_s": f"{self.rate:.1f}"}
        if not math.isnan(self.recon):
            fields["rec"] = f"{self.recon:.3f}"
        short = {"palette": "pal", "detail": "det"}
        fields |= {short[name]: f"{value:.2f}" for name, value in self.floor_ratios().items()}
        return fields

    def train_step(self, fraction: float = 0.0) -> tuple[float, float]:
        """One D update and one G update on the same fake batch; returns (d_loss, g_loss)."""
        b, s = self.batch, self.config.size
        real = random_crops(self.crop_source, b, s, self.gen)  # (B, 3, S, S) on the device
        z = torch.randn(b, self.config.latent_dim, generator=self.gen).to(self.device)
        aug = self.opts.augment
        with self._autocast():
            fake = self.g(z)  # (B, 3, S, S)
            # Hinge loss for D; real and fake pass D separately so minibatch-stddev
            # groups never mix real and fake images. Logits and losses in fp32.
            real_logits, recon = self._real_pass(diff_augment(real, self.gen, aug))
            fake_logits = self.d(diff_augment(fake.detach(), self.gen, aug)).float()
        # Per image, summed over D's paths: logits are (B,), or (P*B,) with the fast D's small and fine paths.
        d_loss = (F.relu(1.0 - real_logits.float()).sum() + F.relu(1.0 + fake_logits).sum()) / b + recon
        real_paths, fake_paths = per_path(real_logits, b), per_path(fake_logits, b)  # (P, B) each
        anchors = self._track_logits(real_paths, fake_paths)
        if self.opts.lecam > 0.0:
            d_loss = d_loss + self.opts.lecam * lecam_loss(real_paths, fake_paths, anchors)
        descend(self.opt_d, d_loss)
        # G update against the freshly updated D; D's weights get no gradients.
        self.d.requires_grad_(False)
        with self._autocast():
            g_loss = -self.d(diff_augment(fake, self.gen, aug)).float().sum() / b
        weight = self.opts.palette_weight()
        if weight > 0.0:
            floor, self.palette = palette_floor_loss(fake, self.real_spread)
            g_loss = g_loss + weight * floor
        weight = self.opts.detail_weight()
        if weight > 0.0:
            floor, self.detail = detail_floor_loss(fake, self.real_detail, self.opts.detail_ceiling)
            g_loss = g_loss + weight * floor
        descend(self.opt_g, g_loss)
        self.d.requires_grad_(True)
        self._update_ema()
        self.step += 1
        return float(d_loss.detach()), float(g_loss.detach())

    @torch.no_grad()
    def _track_logits(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """self.logit_means (2, P) moved towards this batch's mean real and fake logits (P, B) (the
        first batch sets them, so they start at D's own scale); lecam_loss's anchors. Tracked
        with LeCam off too: their gap, in every checkpoint's log line, shows D pulling away or letting go."""
        means = torch.stack([real.mean(1), fake.mean(1)])
        if self.logit_means is None:
            self.logit_means = means
        else:
            self.logit_means.lerp_(means, 1.0 - LECAM_DECAY)
        return self.logit_means

    def _autocast(self) -> torch.autocast:
        # Backward runs outside the context (as torch recommends), in the dtypes the forward chose.
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16)

    def _real_pass(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        """D's logits (B,) for augmented reals (B, 3, S, S), and the fast D's reconstruction loss
        (L1 of the whole image and of one random quarter, weight 1 as in FastGAN; 0 for classic)."""
        if not isinstance(dist.unwrap(self.d), FastDiscriminator):
            return self.d(real), 0.0
        quadrant = int(torch.randint(4, (1,), generator=self.gen))
        logits, recon = self.d(real, quadrant)  # through forward(): DDP syncs the decoders' gradients
        recon = recon.float()
        self.recon = float(recon.detach())
        return logits, recon

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up: early on the EMA would mostly remember the random init.
        beta = min(self.opts.ema, (1.0 + self.step) / (10.0 + self.step))
        ema_p: list[torch.Tensor] = list(self.ema_g.parameters())
        g_p: list[torch.Tensor] = list(self.g.parameters())
        torch._foreach_lerp_(ema_p, g_p, 1.0 - beta)
        for eb, b in zip(self.ema_g.buffers(), self.g.buffers()):
            eb.copy_(b)

    def checkpoint(self) -> None:
        """Measure; write the model file and grid if this checkpoint is kept (--keep); always
        write the state file (each atomic)."""
        self.distance = self.measure()
        # Nothing kept yet (or a NaN kept): keep this one, so a model file exists; a NaN distance
        # never replaces a number.
        keep = self.opts.keep == "last" or math.isnan(self.kept[0]) or self.distance < self.kept[0]
        if keep:
            self.kept, self.kept_kid = (self.distance, self.step), self.kid
            save_image_grid(self.generate(self.grid_z), self.sample_path, nrow=4)
            save_model(
                self.model_path,
                self.ema_g.state_dict(),
                kind="gan",
                config=self.config.to_dict(),
                data=self.data_summary(),
                metrics=self.metrics(),
                steps=self.step,
            )
        self.save_training_state()
        # The floors' last ratios and D's logit averages too: the progress bar is not in a log file.
        extras = "" if math.isnan(self.kid) else f", KID {self.kid:+.4f}"
        extras += "".join(f", {name} {value:.2f}" for name, value in self.floor_ratios().items())
        if self.logit_means is not None:  # D's paths (main first): real and fake logits' moving averages
            real, fake = ("/".join(f"{float(v):+.2f}" for v in row) for row in self.logit_means)
            extras += f", D real {real} fake {fake}"
        where = str(self.model_path) if keep else f"not kept (best {self.kept[0]:.4f} at step {self.kept[1]})"
        log.info(
            "checkpoint at step %d: sample distance %.4f (start %.4f, real crops %.4f)%s -> %s",
            self.step,
            self.distance,
            self.distance_start,
            self.distance_real,
            extras,
            where,
        )

    def floor_ratios(self) -> dict[str, float]:
        """The floors in use: the last training batch's palette spread and detail share over the pictures'."""
        ratios = {"palette": self.palette, "detail": self.detail}
        return {name: value for name, value in ratios.items() if not math.isnan(value)}

    def data_summary(self) -> dict[str, Any]:
        return {"folder": Path(self.opts.data).resolve().name, "images": self.scan.loaded, "skipped": self.scan.skipped}

    def metrics(self) -> dict[str, float]:
        found = {
            "sample_distance_start": round(self.distance_start, 6),
            "sample_distance": round(self.kept[0], 6),  # the model file's own, not the latest step's
            "sample_distance_real": round(self.distance_real, 6),  # held-apart crops: the floor
            "images_per_s": round(self.rate, 2),
        }
        if not math.isnan(self.kept_kid):
            found["sample_kid"] = round(self.kept_kid, 6)
        return found

    def state_parts(self) -> TrainingParts:
        modules = {"g": self.g, "d": self.d, "ema": self.ema_g}
        return modules, {"opt_g": self.opt_g, "opt_d": self.opt_d}, self.gen

    def state_meta(self) -> dict[str, Any]:
        return {
            "seed": self.eval_seed,
            "config": self.config.to_dict(),
            "batch": self.batch,
            "lr": self.opts.lr,
            "lr_g": self.opts.generator_lr(),
            "ema": self.opts.ema,
            "augment": ",".join(self.opts.augment),
            "palette_floor": self.opts.palette_weight(),
            "detail_floor": self.opts.detail_weight(),
            "detail_ceiling": self.opts.detail_ceiling,
            "lecam": self.opts.lecam,
            "logit_means": None if self.logit_means is None else self.logit_means.tolist(),
            "sample_distance_start": self.distance_start,
            "sample_distance": self.distance,
            "sample_kid": self.kid,
            "kept_distance": self.kept[0],
            "kept_step": self.kept[1],
            "kept_kid": self.kept_kid,
            "data": self.data_summary(),
        }

    def resume(self) -> None:
        """Load the state file; ValueError if it is missing or was trained differently."""
        tensors, state = self.read_resume()
        try:  # state files from before the fast family have no "arch": that means classic
            state = {**state, "config": gan_config_from_dict(state.get("config", {})).to_dict()}
        except ValueError as exc:
            raise TrainSetupError(f"--resume: '{self.state_path}' holds a bad GAN config: {exc}") from None
        flags = (
            "--arch/--preset/--size/--latent-dim/--channels/--min-channels/--d-width/--two-convs-up-to/--d-small"
            "/--d-rgb-kernel/--d-top-convs/--d-fine/--upsample"
        )
        check_resume_config(self.state_path, state, self.config.to_dict(), flags)
        self.load_training_state(tensors, state)
        self._set_lr()
        self.distance_start = float(state["sample_distance_start"])
        self.distance = float(state.get("sample_distance", math.nan))
        # State files from before --keep: their model file held the latest checkpoint.
        self.kept = (float(state.get("kept_distance", self.distance)), int(state.get("kept_step", self.step)))
        self.kid = float(state.get("sample_kid", math.nan))  # state files from before it have none
        self.kept_kid = float(state.get("kept_kid", math.nan))
        means = state.get("logit_means")  # state files from before LeCam have none: they start again
        self.logit_means = None if means is None else torch.tensor(means, device=self.device)
        self._make_eval_sets(int(state.get("seed", self.opts.seed)))
        log.info(
            "resuming from step %d (%s, %.0f s trained so far, sample distance %.4f)",
            self.step,
            self.state_path,
            self.total_seconds,
            self.distance,
        )

    def title(self) -> str:
        return f"gan {self.config.arch} {self.config.size}px"

    def outcome(self) -> str:
        kept = f", model file: step {self.kept[1]} ({self.kept[0]:.4f})" if self.kept[1] != self.step else ""
        return f"{self.rate:.1f} img/s, sample distance {self.distance_start:.4f} -> {self.distance:.4f}{kept}"

    def results(self) -> dict[str, Any]:
        return {
            "images_per_s": round(self.rate, 2),
            "sample_distance_start": self.distance_start,
            "sample_distance": self.distance,
            "sample_distance_real": self.distance_real,  # held-apart real crops: the floor
            "kept_step": self.kept[1],  # the step the model file holds (--keep)
            "kept_distance": self.kept[0],
            "paths": self.paths(),
            "images": self.scan.loaded,
            "skipped": self.scan.skipped,
            "skipped_names": list(self.scan.skipped_names),
        }

    def _set_lr(self) -> None:
        # --lr on the resume command wins over the saved one (lets you anneal by hand).
        set_base_lr(self.opt_g, self.opts.generator_lr())
        set_base_lr(self.opt_d, self.opts.lr)


def _start(opts: GanTrainOptions) -> _GanRun:
    _validate(opts)
    device = dist.local_device(resolve_device(opts.device))  # cuda:LOCAL_RANK under torchrun
    run = _GanRun(opts, device)
    run.warn_skipped(run.scan.skipped_names)
    if opts.resume:
        run.resume()
    else:
        run.distance_start = run.distance = run.start_fresh()  # untrained G, before step 0
    # Under torchrun: DDP after the resume, so every rank starts from rank 0's weights; the EMA
    # generator stays a plain module (only rank 0 samples and saves it).
    run.g, run.d = dist.wrap(run.g, device), dist.wrap(run.d, device)
    log.info(
        "training GAN %s on %d image(s) from %s, device %s, batch %d, %s (--precision %s)",
        json.dumps(run.config.to_dict()),
        run.scan.loaded,
        opts.data,
        device,
        run.batch,
        "bf16" if run.dtype == torch.bfloat16 else "fp32",
        opts.precision,
    )
    return run


def train_gan(opts: GanTrainOptions, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a GAN; returns a summary dict (see docs/TRAINING.md)."""
    return _start(opts).train(progress)


train = train_gan  # the family interface engine.cli calls (engine.train)
