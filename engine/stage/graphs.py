"""A batch-1 generator replayed as one CUDA graph.

At batch 1 a 128-256 px generator is a few dozen small kernels, and on a GPU the
time goes to launching them (a few microseconds each, from Python through
TorchScript), not to running them. A CUDA graph records the launches once and
replays them with one call, so the frame loop pays one launch per forward pass.

The graph reads its input from, and writes its output to, tensors it owns: the
caller's z is copied in (device to device, 1 x latent_dim floats) and the picture
comes back in the graph's own output buffer, overwritten by the next replay. Two
decks playing the same model would share that buffer, so the frame renderer copies
a GraphedGenerator's output into the deck's own buffer (engine.stage.frame).

Kept only where it gives the stream's output bit for bit; any failure to capture
(an op that cannot be captured, an old driver) leaves the model as it was.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

_WARMUP_CALLS = 3  # before capture, on a side stream: lets cuDNN pick its kernels outside the graph


class GraphedGenerator(torch.nn.Module):
    """z (1, latent_dim) float32 on the GPU -> the generator's (1, 3, S, S) picture, one graph replay.

    The returned tensor is the graph's static output: valid until the next call."""

    def __init__(self, gen: torch.nn.Module, latent_dim: int, device: torch.device) -> None:
        super().__init__()
        self.gen = gen
        self.static_z = torch.zeros((1, latent_dim), dtype=torch.float32, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(_WARMUP_CALLS):
                gen(self.static_z)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            self.static_out = gen(self.static_z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.static_z.copy_(z)  # the caller's z may be any (1, latent_dim) tensor on the device
        self.graph.replay()
        return self.static_out


def graphed(gen: torch.nn.Module, latent_dim: int, device: torch.device) -> torch.nn.Module:
    """`gen` as a CUDA graph on a CUDA device where that gives its pictures bit for bit; else `gen`."""
    if device.type != "cuda":
        return gen
    try:
        g = GraphedGenerator(gen, latent_dim, device)
        z = torch.randn((2, latent_dim), generator=torch.Generator().manual_seed(0)).to(device)
        with torch.inference_mode():
            same = all(torch.equal(g(z[i : i + 1]).clone(), gen(z[i : i + 1])) for i in range(2))
    except Exception as e:  # noqa: BLE001 - any capture failure means: play the stream as before
        log.info("generator not captured as a CUDA graph (%s: %s)", type(e).__name__, e)
        return gen
    if not same:
        log.info("generator not captured as a CUDA graph (its replay differs from the stream)")
        return gen
    return g
