"""Train a VAE (engine.models.vae) on a folder of pictures; see docs/TRAINING.md, "The VAE family".

Data: every picture of the folder; --holdout (10 % by default, at least one picture when
there are two or more) is set aside by a seeded draw and never trained on. The model file
names them, and `eval` reports their reconstruction PSNR and SSIM against the baseline of
predicting each by the training pictures' mean picture. Training batches are multi-scale
random crops of the training pictures (engine.train.images.random_crops), so a handful of
pictures still gives many different views; a picture on stage is shown at its whole view
(its largest centred square), which the crops include at their largest scale.

Loss per step, on pictures in [-1, 1]:
- reconstruction: L1 + SSIM_WEIGHT * (1 - SSIM). L1 alone is content with blur; SSIM
  compares local means, contrasts and structure, so edges and texture are paid for. No
  perceptual network (LPIPS needs downloaded VGG weights, which cannot be had here).
- KL to N(0, I), summed over the latent and divided by the picture's 3 * S * S values,
  times --kl. That is the ELBO of a Laplace decoder with scale --kl (in [-1, 1] units),
  so --kl trades sharp reconstructions (small) against a latent space whose in-between
  points decode to pictures (large). The weight rises linearly from 0 over the first
  KL_WARMUP of the budget (warm-up): early on the decoder learns to use the latent before
  the KL term pushes the posteriors towards the prior, which is what keeps latents in use
  (posterior collapse). No free bits: at these weights the KL term is small against the
  reconstruction and every latent channel stays in use (the trainer logs the active
  dimensions, those whose mean KL exceeds ACTIVE_NATS, at each checkpoint).
- adversarial, from --adv-start of the budget on (0 disables): a small spectral-norm patch
  discriminator with hinge loss sees real crops and reconstructions, and the decoder's
  hinge loss is weighted adaptively as in VQGAN (Esser et al. 2021): --adv times the ratio
  of the reconstruction loss's gradient norm to the adversarial loss's at the decoder's
  last layer, so the adversarial term sharpens without overruling the reconstruction.

Outputs per checkpoint, as for the GAN: NAME.safetensors (fp16), NAME.png (rows: held-out
pictures then training pictures, their reconstructions, and samples from the prior),
NAME.state.safetensors; all atomic. Runs in one process on the CPU or a GPU, or under
torchrun (engine.train.dist) as the GAN trainer does: each rank draws its own crops, rank 0
writes and evaluates.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.errors import TrainSetupError
from engine.eval.metrics import psnr, ssim
from engine.models.checkpoint import save_model
from engine.models.vae import VAE, VAE_PRESETS, VAEConfig, vae_preset_config

__all__ = ["VAE_PRESETS", "VaeTrainOptions", "train_vae"]
from engine.train import dist
from engine.train.common import (
    TrainingParts,
    TrainOptions,
    check_resume_config,
    resolve_device,
    seeded,
    set_base_lr,
    warmup_cosine,
)
from engine.train.images import load_image_folder, on_device, random_crops, save_image_grid, whole_pictures
from engine.train.run import TrainRun

log = logging.getLogger(__name__)

HELP = "a VAE from a folder of pictures (png/jpg/webp): keyframes from the artist's own pictures"

SSIM_WEIGHT = 0.5
KL_WARMUP = 0.2  # of the budget: the KL weight's linear rise from 0
ACTIVE_NATS = 0.01  # a latent dimension is in use when its mean KL exceeds this
LR_SCHEDULE = (100, 0.1)  # warm-up steps, final lr as a fraction of --lr (warmup_cosine)
GRID_COLUMNS = 8
ADAPTIVE_MAX = 1e4  # the VQGAN clamp of the adaptive weight
_EVAL_SEED_OFFSET = 7919


@dataclass(frozen=True)
class VaeTrainOptions(TrainOptions):
    """Everything train_vae needs; the `train vae` flags (engine.flags) take their defaults from here."""

    preset: str = "live"
    size: int | None = None
    latent_channels: int | None = None
    latent_side: int | None = None
    channels: int | None = None
    batch: int = 16
    lr: float = 1e-3
    kl: float = 0.05
    adv: float = 0.1
    adv_start: float = 0.5
    holdout: float = 0.1

    def vae_config(self) -> VAEConfig:
        """The model config these options ask for; ValueError naming the bad field."""
        return vae_preset_config(
            self.preset,
            size=self.size,
            latent_channels=self.latent_channels,
            latent_side=self.latent_side,
            channels=self.channels,
        )


def _validate(opts: VaeTrainOptions) -> None:
    if opts.preset not in VAE_PRESETS:
        raise TrainSetupError(f"--preset must be one of {list(VAE_PRESETS)}, got {opts.preset!r}")
    try:
        opts.vae_config()
    except ValueError as exc:
        raise TrainSetupError(str(exc)) from None
    checks = (
        ("--batch", opts.batch, 1, 4096),
        ("--lr", opts.lr, 1e-7, 1.0),
        ("--kl", opts.kl, 0.0, 100.0),
        ("--adv", opts.adv, 0.0, 100.0),
        ("--adv-start", opts.adv_start, 0.0, 1.0),
        ("--holdout", opts.holdout, 0.0, 0.5),
    )
    for flag, value, lo, hi in checks:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
            raise TrainSetupError(f"{flag} must be from {lo:g} to {hi:g}, got {value}")


def split_holdout(names: list[str], fraction: float, seed: int) -> list[int]:
    """Indices (sorted) of the pictures held out: round(fraction * N), at least 1 when N >= 2 and
    fraction > 0, never all; a seeded draw, so the same folder and seed give the same split."""
    n = len(names)
    if n < 2 or fraction <= 0.0:
        return []
    count = min(max(1, round(fraction * n)), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 104729))
    return sorted(int(i) for i in order[:count])


class PatchDiscriminator(nn.Module):
    """(B, 3, S, S) -> patch logits (B, 1, S/8, S/8): three strided 4x4 spectral-norm convs and a
    3x3 one. Each logit sees about a 46 px patch: it judges texture and edges, not layout."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for w in (width, width * 2, width * 4):
            layers += [spectral_norm(nn.Conv2d(c, w, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c = w
        layers.append(spectral_norm(nn.Conv2d(c, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img)


class _Autoencode(nn.Module):
    """The training pass through forward(), so DistributedDataParallel (which syncs gradients of
    what its forward() ran) sees encoder and decoder: real (B, 3, S, S) and eps (B, D) ->
    (reconstruction (B, 3, S, S), posterior mean (B, D), log-variance (B, D))."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, real: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar = self.vae.posterior(real)
        return self.vae(mean + eps * torch.exp(0.5 * logvar)), mean, logvar


class _VaeRun(TrainRun[VaeTrainOptions]):
    """Model, discriminator, optimisers, the picture split and the fixed evaluation views."""

    KIND = "vae"
    SAMPLE = ".png"

    def __init__(self, opts: VaeTrainOptions, device: torch.device) -> None:
        super().__init__(opts, device)
        self.config = opts.vae_config()
        pictures, self.scan = load_image_folder(opts.data, self.config.size)
        held = split_holdout(self.scan.names, opts.holdout, opts.seed)
        self.held_names = [self.scan.names[i] for i in held]
        self.train_pictures = [p for i, p in enumerate(pictures) if i not in held]
        self.crop_source = on_device(self.train_pictures, device)
        self.held_pictures = [pictures[i] for i in held]
        self.vae, self.disc = seeded(opts.seed, lambda: (VAE(self.config).to(device), PatchDiscriminator().to(device)))
        self.autoencode: nn.Module = _Autoencode(self.vae)  # DDP-wrapped under torchrun (train_vae)
        self.opt = torch.optim.Adam(self.vae.parameters(), lr=opts.lr, betas=(0.9, 0.99))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=opts.lr, betas=(0.5, 0.99))
        self.gen = torch.Generator().manual_seed(dist.rank_seed(opts.seed))  # each rank its own crops
        self.items_per_step = opts.batch
        self.last: dict[str, float] = {}
        self.scores: dict[str, float] = {}
        self.distance_start = self.distance = math.nan
        self._make_eval_sets(opts.seed)

    def _make_eval_sets(self, seed: int) -> None:
        self.eval_seed = seed
        s = self.config.size
        self.train_views = whole_pictures(self.train_pictures, s)  # (P, 3, S, S)
        self.held_views = whole_pictures(self.held_pictures, s) if self.held_pictures else self.train_views[:0]
        gen = torch.Generator().manual_seed(seed + _EVAL_SEED_OFFSET)
        self.eval_crops = random_crops(self.train_pictures, 32, s, gen)
        self.grid_z = torch.randn(GRID_COLUMNS, self.config.latent_dim, generator=gen)

    # -- one step ------------------------------------------------------------------------------

    def train_step(self, fraction: float = 0.0) -> tuple[float, float]:
        """One VAE (and, after --adv-start, one discriminator) update; returns (loss, recon)."""
        opts = self.opts
        set_base_lr(self.opt, opts.lr * warmup_cosine(self.step, fraction, *LR_SCHEDULE))
        real = random_crops(self.crop_source, opts.batch, self.config.size, self.gen)  # on the device
        eps = torch.randn((opts.batch, self.config.latent_dim), generator=self.gen).to(self.device)
        recon, mean, logvar = self.autoencode(real, eps)  # (B, 3, S, S), (B, D), (B, D)
        rec = F.l1_loss(recon, real) + SSIM_WEIGHT * (1.0 - ssim(recon, real).mean())
        kl_dims = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)  # (B, D) nats
        kl = kl_dims.sum(dim=1).mean() / real[0].numel()  # nats per picture value
        beta = opts.kl * min(1.0, fraction / KL_WARMUP)
        loss = rec + beta * kl
        adversarial = opts.adv > 0.0 and fraction >= opts.adv_start
        if adversarial:
            self.disc.requires_grad_(False)
            g_adv = -self.disc(recon).mean()
            self.disc.requires_grad_(True)
            loss = loss + opts.adv * self._adaptive_weight(rec, g_adv) * g_adv
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if adversarial:
            d_loss = F.relu(1.0 - self.disc(real)).mean() + F.relu(1.0 + self.disc(recon.detach())).mean()
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        self.step += 1
        self.last = {"rec": float(rec.detach()), "kl": float(kl_dims.sum(dim=1).mean().detach())}
        return float(loss.detach()), self.last["rec"]

    def _adaptive_weight(self, rec: torch.Tensor, g_adv: torch.Tensor) -> torch.Tensor:
        """VQGAN's: ||grad rec|| / ||grad adv|| at the decoder's last conv weight, clamped, no gradient."""
        last = self.vae.decoder.to_rgb.weight
        g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
        g_g = torch.autograd.grad(g_adv, last, retain_graph=True)[0]
        return (g_rec.norm() / (g_g.norm() + 1e-4)).clamp(0.0, ADAPTIVE_MAX).detach()

    # -- measuring and writing ------------------------------------------------------------------

    @torch.no_grad()
    def reconstruct(self, views: torch.Tensor) -> torch.Tensor:
        """Posterior-mean reconstructions (N, 3, S, S) on the CPU, in chunks of 16."""
        self.vae.eval()
        try:
            outs = [self.vae(self.vae.encode(v.to(self.device))).float().cpu() for v in views.split(16)]
        finally:
            self.vae.train()
        return torch.cat(outs) if outs else views[:0]

    def measure(self) -> float:
        """Mean L1 of the training crops' reconstructions (lower is better); fills self.scores."""
        crops = self.eval_crops
        l1 = float(F.l1_loss(self.reconstruct(crops), crops))
        self.scores = {"train_psnr": float(psnr(self.reconstruct(self.train_views), self.train_views).mean())}
        if len(self.held_views):
            held = self.reconstruct(self.held_views)
            self.scores["held_psnr"] = float(psnr(held, self.held_views).mean())
            self.scores["held_ssim"] = float(ssim(held, self.held_views).mean())
        self.scores["active_dims"] = float(self.active_dims())
        return l1

    @torch.no_grad()
    def active_dims(self) -> int:
        """Latent dimensions whose mean KL over the training crops exceeds ACTIVE_NATS."""
        self.vae.eval()
        try:
            mean, logvar = self.vae.posterior(self.eval_crops.to(self.device))
        finally:
            self.vae.train()
        kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)  # (N, D)
        return int((kl.mean(dim=0) > ACTIVE_NATS).sum())

    def grid(self) -> torch.Tensor:
        """Rows of GRID_COLUMNS: pictures (held-out first), their reconstructions, prior samples."""
        views = torch.cat([self.held_views, self.train_views])[:GRID_COLUMNS]
        with torch.no_grad():
            self.vae.eval()
            try:
                samples = self.vae(self.grid_z.to(self.device)).float().cpu()
            finally:
                self.vae.train()
        pad = GRID_COLUMNS - len(views)
        blank = torch.full((pad, *views.shape[1:]), -1.0)
        return torch.cat([views, blank, self.reconstruct(views), blank, samples])

    def checkpoint(self) -> None:
        self.distance = self.measure()
        save_image_grid(self.grid(), self.sample_path, nrow=GRID_COLUMNS)
        save_model(
            self.model_path,
            self.vae.state_dict(),
            kind=self.KIND,
            config=self.config.to_dict(),
            data=self.data_summary(),
            metrics=self.metrics(),
            steps=self.step,
        )
        self.save_training_state()
        held = f", held-out PSNR {self.scores['held_psnr']:.2f} dB" if "held_psnr" in self.scores else ""
        log.info(
            "checkpoint at step %d: recon L1 %.4f, training PSNR %.2f dB%s, %d/%d latent dims in use -> %s",
            self.step,
            self.distance,
            self.scores["train_psnr"],
            held,
            int(self.scores["active_dims"]),
            self.config.latent_dim,
            self.model_path,
        )

    def data_summary(self) -> dict[str, Any]:
        return {
            "folder": Path(self.opts.data).resolve().name,
            "images": self.scan.loaded,
            "skipped": self.scan.skipped,
            "held_out": self.held_names,
            "split_seed": self.opts.seed,
        }

    def metrics(self) -> dict[str, float]:
        return {
            "recon_l1_start": round(self.distance_start, 6),
            "recon_l1": round(self.distance, 6),
            **{k: round(v, 4) for k, v in self.scores.items()},
            "images_per_s": round(self.rate, 2),
        }

    def bar_fields(self, losses: tuple[float, float]) -> dict[str, str]:
        return {"loss": f"{losses[0]:.4f}", "rec": f"{losses[1]:.4f}", "kl": f"{self.last.get('kl', 0.0):.0f}"}

    def state_parts(self) -> TrainingParts:
        return {"vae": self.vae, "disc": self.disc}, {"opt": self.opt, "opt_d": self.opt_d}, self.gen

    def state_meta(self) -> dict[str, Any]:
        return {
            "seed": self.eval_seed,
            "config": self.config.to_dict(),
            "held_out": self.held_names,
            "recon_l1_start": self.distance_start,
            "recon_l1": self.distance,
        }

    def resume(self) -> None:
        tensors, state = self.read_resume()
        check_resume_config(
            self.state_path, state, self.config.to_dict(), "--preset/--size/--latent-channels/--latent-side/--channels"
        )
        if state.get("held_out") != self.held_names:
            raise TrainSetupError(
                f"--resume: '{self.state_path}' held out {state.get('held_out')} but this folder and --seed/--holdout "
                f"hold out {self.held_names}; resume with the same --data, --seed and --holdout"
            )
        self.load_training_state(tensors, state)
        self.distance_start = float(state["recon_l1_start"])
        self.distance = float(state.get("recon_l1", math.nan))
        log.info("resuming from step %d (%s, %.0f s trained so far)", self.step, self.state_path, self.total_seconds)

    def title(self) -> str:
        return f"vae {self.config.size}px"

    def outcome(self) -> str:
        held = f", held-out PSNR {self.scores['held_psnr']:.2f} dB" if "held_psnr" in self.scores else ""
        return f"{self.rate:.1f} img/s, recon L1 {self.distance_start:.4f} -> {self.distance:.4f}{held}"

    def results(self) -> dict[str, Any]:
        return {
            "images_per_s": round(self.rate, 2),
            "recon_l1_start": self.distance_start,
            "recon_l1": self.distance,
            **self.scores,
            "held_out": self.held_names,
            "paths": self.paths(),
            "images": self.scan.loaded,
            "skipped": self.scan.skipped,
            "skipped_names": list(self.scan.skipped_names),
        }


def train_vae(opts: VaeTrainOptions, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a VAE; returns a summary dict (see docs/TRAINING.md)."""
    _validate(opts)
    device = dist.local_device(resolve_device(opts.device))  # cuda:LOCAL_RANK under torchrun
    run = _VaeRun(opts, device)
    run.warn_skipped(run.scan.skipped_names)
    if not run.train_pictures:
        raise TrainSetupError(f"image folder '{opts.data}': no picture left to train on after the hold-out")
    if opts.resume:
        run.resume()
    else:
        run.distance_start = run.distance = run.start_fresh()
    # Under torchrun: DDP after the resume, so every rank starts from rank 0's weights.
    run.autoencode, run.disc = dist.wrap(run.autoencode, device), dist.wrap(run.disc, device)
    log.info(
        "training VAE %s on %d picture(s) from %s (held out: %s), device %s, batch %d per process",
        run.config.to_dict(),
        len(run.train_pictures),
        opts.data,
        ", ".join(run.held_names) or "none",
        device,
        opts.batch,
    )
    return run.train(progress)


train = train_vae  # the family interface engine.cli calls (engine.train)
DISTRIBUTED = True  # runs under torchrun (engine.train.dist)
