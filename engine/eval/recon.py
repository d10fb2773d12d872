"""How well a VAE reconstructs pictures it was trained on and pictures it never saw.

Each picture is taken at its whole view (engine.train.images.whole_pictures: the largest
centred square at the model's size), encoded to its posterior mean and decoded: that is
the frame a scene shows when it holds on the picture as a keyframe.

Held-out pictures are the ones the model file names under data.held_out (the trainer's
--holdout), when the folder evaluated is the one it trained on; against any other folder
every picture is unseen. The baseline a held-out PSNR must beat is the PSNR of predicting
each held-out picture by the mean picture of the seen ones (of the other unseen ones, when
none was seen): what a model that learned nothing about the picture would score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engine.eval.metrics import psnr, ssim
from engine.models.vae import VAE
from engine.train.images import whole_pictures

ROWS: dict[str, tuple[str, str]] = {
    "held_psnr": ("held-out pictures: mean PSNR (dB) of their reconstructions", "higher"),
    "held_ssim": ("held-out pictures: mean SSIM of their reconstructions", "higher, 1 = same"),
    "mean_picture_psnr": ("held-out pictures: mean PSNR (dB) of the seen pictures' mean picture", "-"),
    "held_gain_db": ("held_psnr - mean_picture_psnr", "higher; >= 3 dB"),
    "train_psnr": ("training pictures: mean PSNR (dB) of their reconstructions", "higher"),
    "train_ssim": ("training pictures: mean SSIM of their reconstructions", "higher, 1 = same"),
}
_CHUNK = 16


@dataclass
class ReconEval:
    numbers: dict[str, float]  # ROWS' keys
    views: torch.Tensor  # (P, 3, S, S) pictures, held-out first
    recons: torch.Tensor  # (P, 3, S, S) their reconstructions
    captions: list[str]


@torch.inference_mode()
def reconstruct(vae: VAE, views: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Posterior-mean reconstructions (N, 3, S, S) float32 on the CPU of views (N, 3, S, S)."""
    outs = [vae(vae.encode(part.to(device))).float().cpu() for part in views.split(_CHUNK)]
    return torch.cat(outs).clamp_(-1.0, 1.0)


def evaluate_reconstructions(
    vae: VAE, pictures: list[torch.Tensor], names: Sequence[str], held_out: Sequence[str], device: torch.device
) -> ReconEval:
    """The ROWS numbers and the pairs figure's pictures; `held_out` names the unseen pictures
    (all of them, when evaluating another folder)."""
    size = vae.config.size
    views = whole_pictures(pictures, size)
    held = torch.tensor([n in held_out for n in names], dtype=torch.bool)
    recons = reconstruct(vae, views, device)
    scores, similarity = psnr(recons, views), ssim(recons, views)
    seen = ~held
    numbers = {k: float("nan") for k in ROWS}
    if held.any():
        if seen.any():
            means = views[seen].mean(dim=0, keepdim=True).expand(int(held.sum()), -1, -1, -1)
        else:  # leave-one-out: each unseen picture against the mean of the other unseen ones
            total = views.sum(dim=0, keepdim=True)
            means = (total - views) / max(len(views) - 1, 1)
        baseline = float(psnr(means, views[held]).mean())
        numbers |= {
            "held_psnr": float(scores[held].mean()),
            "held_ssim": float(similarity[held].mean()),
            "mean_picture_psnr": baseline,
            "held_gain_db": float(scores[held].mean()) - baseline,
        }
    if seen.any():
        numbers |= {"train_psnr": float(scores[seen].mean()), "train_ssim": float(similarity[seen].mean())}
    order = torch.cat([held.nonzero().flatten(), seen.nonzero().flatten()])
    captions = [
        f"{'held out' if held[i] else 'trained'}: {float(scores[i]):.1f} dB, SSIM {float(similarity[i]):.2f}"
        for i in order.tolist()
    ]
    return ReconEval(numbers, views[order], recons[order], captions)
