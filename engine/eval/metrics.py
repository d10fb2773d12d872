"""The numbers of the evaluation report, as pure functions of tensors (no files, no models).

Feature-space metrics take feature vectors (N, D) (engine.eval.features):
- kid: Kernel Inception Distance (Binkowski et al. 2018) in our features: the
  unbiased estimate of MMD^2 with the cubic polynomial kernel
  k(x, y) = (x . y / D + 1)^3, averaged over random subsets (mean and std).
  About 0 when both sets come from one distribution; it may dip below 0.
- prdc: precision, recall, density and coverage (Naeem et al. 2020) from
  k-nearest-neighbour balls: a point's ball reaches its k-th nearest neighbour
  in its own set.
- mean_pairwise_distance: the diversity of a set.

Pixel-space metrics take images (N, 3, S, S) in [-1, 1]; pixel distances are
RMS differences on the 0..1 scale (0 = the same picture, 1 = black vs white).
psnr and ssim (Wang et al. 2004: 11-tap Gaussian window, sigma 1.5, per channel)
compare pictures on the 0..1 scale; ssim is differentiable, so the VAE trainer
uses it as a loss term too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

K_NEIGHBOURS = 5
KID_SUBSETS = 20
AXIS_BAND = 1  # frequency bins either side of each axis counted as "on the axis"
DETAIL_PERIOD = 4  # px: detail_energy_share counts periods this short or shorter (1/4 cycle per px and up)
_QUERY_CHUNK = 64


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS, seed: int = 0) -> tuple[float, float]:
    """(mean, std) over `subsets` random subsets of the unbiased MMD^2; real (N, D), fake (M, D).

    Each subset draws m = min(N, M) / 2 points (at most 100) of each set without
    replacement (independent draws for the two sets; half, so that subsets differ
    and the std says how much the estimate moves); lower is better.
    """
    x, y = real.double(), fake.double()
    m = min(len(x) // 2, len(y) // 2, 100)
    if m < 2:
        raise ValueError(f"kid needs at least 4 points in each set, got {len(x)} and {len(y)}")
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        a = x[torch.randperm(len(x), generator=gen)[:m]]  # (m, D)
        b = y[torch.randperm(len(y), generator=gen)[:m]]
        values.append(mmd2_unbiased(a, b))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=False))


def mmd2_unbiased(real: torch.Tensor, fake: torch.Tensor) -> float:
    """The unbiased MMD^2 of two feature sets (N, D) and (M, D), N, M >= 2, with KID's cubic kernel.

    One estimate on all points (kid averages it over subsets); the trainer's checkpoints use it
    on their 32 samples and 64 crops.
    """
    x, y = real.double(), fake.double()
    d = x.shape[1]
    kxx, kyy, kxy = ((p @ q.T / d + 1.0) ** 3 for p, q in ((x, x), (y, y), (x, y)))  # (N, N), (M, M), (N, M)
    n, m = len(x), len(y)
    same = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(same - 2.0 * kxy.mean())


def _kth_radius(points: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    dist = torch.cdist(points, points)  # (N, N), zero diagonal
    return dist.sort(dim=1).values[:, k]  # column 0 is the point itself


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = K_NEIGHBOURS) -> dict[str, float]:
    """Precision, recall, density, coverage of fake (M, D) against real (N, D), k-NN balls.

    precision: share of fakes inside some real ball (fakes look real).
    recall: share of reals inside some fake ball (the fakes cover the reals' variety).
    density: mean number of real balls holding a fake, divided by k (about 1 for a
    fake set like the real one; above 1 when fakes crowd where reals are dense).
    coverage: share of reals whose own ball holds a fake. All higher is better.
    k is lowered to len - 1 of the smaller set when that is smaller.
    """
    x, y = real.double(), fake.double()
    k = min(k, len(x) - 1, len(y) - 1)
    if k < 1:
        raise ValueError(f"prdc needs at least 2 points in each set, got {len(x)} and {len(y)}")
    r_real, r_fake = _kth_radius(x, k), _kth_radius(y, k)  # (N,), (M,)
    cross = torch.cdist(x, y)  # (N, M)
    inside_real = cross <= r_real.unsqueeze(1)  # (N, M): fake j in real i's ball
    return {
        "precision": float(inside_real.any(dim=0).double().mean()),
        "recall": float((cross <= r_fake.unsqueeze(0)).any(dim=1).double().mean()),
        "density": float(inside_real.double().sum(dim=0).mean() / k),
        "coverage": float((cross.min(dim=1).values <= r_real).double().mean()),
    }


def mean_pairwise_distance(points: torch.Tensor) -> float:
    """Mean Euclidean distance over all pairs i < j of points (N, D); 0 for fewer than 2."""
    n = len(points)
    if n < 2:
        return 0.0
    dist = torch.cdist(points.double(), points.double())  # (N, N)
    return float(dist.sum() / (n * (n - 1)))


def pixel_vectors(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, S, S) in [-1, 1] -> (N, 3 * S * S) on the 0..1 scale, float32."""
    return ((images.detach().float().cpu() + 1.0) * 0.5).flatten(1)


def pixel_pairwise_rms(images: torch.Tensor) -> float:
    """Mean RMS pixel difference (0..1 scale) over all pairs of images (N, 3, S, S)."""
    v = pixel_vectors(images)
    return mean_pairwise_distance(v) / math.sqrt(v.shape[1]) if len(v) else 0.0


def palette_spread(images: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance (0..1 scale, averaged over R, G, B) between the mean colours of every
    two images (N, 3, S, S) in [-1, 1]: how far apart the pictures' palettes are (0 for N < 2).
    A float32 scalar tensor, differentiable: the GAN trainer uses it as a loss term too."""
    n = images.shape[0]
    if n < 2:
        return images.new_zeros((), dtype=torch.float32)
    colours = images.float().mean(dim=(2, 3)) * 0.5  # (N, 3) on the 0..1 scale
    return torch.pdist(colours, p=1.0).mean() / 3.0  # pdist: the N(N-1)/2 pairs i < j, L1 over R, G, B


def nearest_rms(queries: torch.Tensor, bank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image, the RMS pixel distance (0..1 scale) to its nearest bank image and that
    image's index; queries (N, 3, S, S), bank (K, 3, S, S), both in [-1, 1] -> ((N,), (N,) int64)."""
    b = pixel_vectors(bank)  # (K, P)
    b2 = (b * b).sum(dim=1)  # (K,)
    dims = b.shape[1]
    dists, index = [], []
    for part in queries.split(_QUERY_CHUNK):
        q = pixel_vectors(part)  # (n, P)
        # |q - b|^2 = |q|^2 + |b|^2 - 2 q.b, one matrix product for the whole bank.
        sq = ((q * q).sum(dim=1, keepdim=True) + b2.unsqueeze(0) - 2.0 * q @ b.T).clamp_min(0.0)  # (n, K)
        best = sq.min(dim=1)
        dists.append((best.values / dims).sqrt())
        index.append(best.indices)
    return torch.cat(dists), torch.cat(index)


def _spectra(images: torch.Tensor, keep_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windowed power spectra (N, S, S) of images (N, 3, S, S) and their bin indices |fy| (S, 1), |fx| (1, S).

    Per image: grayscale (mean of RGB) minus its mean, times a 2-D Hann window
    (so the picture's edges do not leak energy onto the axes), 2-D FFT power.
    fp32. keep_grad: on the images' device with their autograd graph (a training
    loss); otherwise detached, on the CPU (the report).
    """
    x = images.float() if keep_grad else images.detach().float().cpu()
    gray = x.mean(dim=1)  # (N, S, S)
    h, w = gray.shape[1:]
    gray = gray - gray.mean(dim=(1, 2), keepdim=True)
    hann = [torch.hann_window(n, periodic=False, device=gray.device) for n in (h, w)]
    power = torch.fft.fft2(gray * torch.outer(*hann)).abs().square()  # (N, S, S)
    fy = torch.fft.fftfreq(h, device=gray.device).mul(h).round().abs().view(h, 1)  # (S, 1) bin index
    fx = torch.fft.fftfreq(w, device=gray.device).mul(w).round().abs().view(1, w)
    return power, fy, fx


def axis_energy_share(images: torch.Tensor) -> torch.Tensor:
    """(N,) share of each image's spectral energy on the horizontal and vertical frequency axes.

    Spectra as in _spectra. Only frequencies at radius >= max(2, S / 16) bins
    count: DC and the coarse layout (periods above 16 px) are left out, because
    at small radii the axis band covers most of each frequency ring whatever the
    picture shows. Of those, the ones within AXIS_BAND bins of either axis are
    "on the axes". Stripes and plaid put their energy there: a striped image
    scores near 1, texture without a preferred direction far less (the test's:
    below 0.3).
    """
    power, fy, fx = _spectra(images)
    counted = (fy.square() + fx.square()).sqrt() >= max(2.0, min(power.shape[1:]) / 16.0)  # (S, S)
    on_axis = counted & ((fy <= AXIS_BAND) | (fx <= AXIS_BAND))
    total = (power * counted).sum(dim=(1, 2)).clamp_min(1e-12)
    return (power * on_axis).sum(dim=(1, 2)) / total


def detail_energy_share(images: torch.Tensor, keep_grad: bool = False) -> torch.Tensor:
    """(N,) share of each image's spectral energy (DC left out) at periods of DETAIL_PERIOD px or less.

    Spectra as in _spectra (keep_grad as there: the training's detail floor
    differentiates it); a frequency counts as detail at radius >= S / DETAIL_PERIOD
    bins. Sharp edges and fine brushwork put energy there; a blurred picture has
    little, a grainy one (pixel noise) much. Against the real crops' share it
    tells blur (well below) from grain (well above).
    """
    power, fy, fx = _spectra(images, keep_grad)
    radius = (fy.square() + fx.square()).sqrt()  # (S, S) in bins
    detail = radius >= min(power.shape[1:]) / DETAIL_PERIOD
    total = (power * (radius > 0)).sum(dim=(1, 2)).clamp_min(1e-12)
    return (power * detail).sum(dim=(1, 2)) / total


def frame_changes(frames: torch.Tensor) -> torch.Tensor:
    """(T - 1,) mean absolute pixel change (0..1 scale) between consecutive frames (T, 3, S, S)."""
    f = frames.detach().float().cpu()
    return (f[1:] - f[:-1]).abs().mul(0.5).flatten(1).mean(dim=1)


def change_stats(changes: torch.Tensor) -> dict[str, float]:
    """Median, 99th percentile and worst frame-to-frame change, and worst / median (1 = even steps).

    A walk that is smooth changes by about the same amount every frame; one jump
    (a fold in the generator's latent space) shows as a worst / median far above 1.
    """
    c = changes.double()
    median, worst = float(c.median()), float(c.max())
    ratio = 1.0 if worst == 0.0 else min(worst / median, 1e6) if median > 0.0 else 1e6
    return {"median": median, "p99": float(torch.quantile(c, 0.99)), "max": worst, "ratio": ratio}


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """Total variation distance (0 = equal, 1 = disjoint) between two histograms of counts (same bins)."""
    p, q = p.double(), q.double()
    if float(p.sum()) <= 0 or float(q.sum()) <= 0:
        return 1.0
    return float(0.5 * (p / p.sum() - q / q.sum()).abs().sum())


_SSIM_TAPS, _SSIM_SIGMA = 11, 1.5
_SSIM_C1, _SSIM_C2 = 0.01**2, 0.03**2  # for a data range of 1


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) PSNR in dB between pictures (N, 3, S, S) in [-1, 1], on the 0..1 scale (capped at 100 dB)."""
    mse = (a.float() - b.float()).mul(0.5).square().flatten(1).mean(dim=1)
    return (10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp_max(100.0)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) mean SSIM between pictures (N, C, H, W) in [-1, 1] (1 = the same); differentiable."""
    x, y = (a.float() + 1.0) * 0.5, (b.float() + 1.0) * 0.5  # 0..1
    c = x.shape[1]
    t = torch.arange(_SSIM_TAPS, dtype=torch.float32, device=x.device) - (_SSIM_TAPS - 1) / 2.0
    g = torch.exp(-(t * t) / (2.0 * _SSIM_SIGMA**2))
    g = g / g.sum()
    window = (g.view(-1, 1) * g.view(1, -1)).expand(c, 1, _SSIM_TAPS, _SSIM_TAPS).contiguous()

    def blur(v: torch.Tensor) -> torch.Tensor:  # valid Gaussian blur per channel: (N, C, H-10, W-10)
        return F.conv2d(v, window, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    num = (2.0 * mx * my + _SSIM_C1) * (2.0 * cov + _SSIM_C2)
    den = (mx * mx + my * my + _SSIM_C1) * (vx + vy + _SSIM_C2)
    return (num / den).flatten(1).mean(dim=1)
