"""The GPU frame path: CUDA graphs, the one-sync frame, fp16. The CUDA tests skip without a GPU
(CI has none; scripts/cuda_check.sh runs them where one is lent); the CPU-side logic is tested here
with a fake model that behaves like a graph replay (one output buffer, overwritten per call)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models.gan_arch import build_generator, preset_config
from engine.stage.deck import frozen, with_precision
from engine.stage.frame import FrameRenderer
from engine.stage.graphs import GraphedGenerator, graphed
from engine.stage.mixer import mix_of

CUDA = torch.device("cuda")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class _OneBuffer(GraphedGenerator):
    """Like a CUDA graph: every call writes its picture into the same tensor and returns it."""

    def __init__(self) -> None:
        torch.nn.Module.__init__(self)  # no capture: there is no GPU here
        self.out = torch.zeros((1, 3, 4, 4))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out.fill_(float(z[0, 0]))


def test_a_model_that_reuses_its_output_leaves_each_deck_its_own_picture() -> None:
    model, r = _OneBuffer(), FrameRenderer(torch.device("cpu"))
    r.set_size(4)
    r.forward(model, np.full(2, -1.0, np.float32), slot=0)  # deck a: black
    r.forward(model, np.full(2, 1.0, np.float32), slot=1)  # deck b: white, same model and buffer
    r.compose(mix_of(0.5, 0, 0))
    out = np.zeros((4, 4, 3), np.uint8)
    r.convert(1.0, out)
    assert 120 <= int(out[0, 0, 0]) <= 135  # half black, half white: deck a's picture was not overwritten


def test_graphed_is_the_model_itself_off_cuda() -> None:
    gen = build_generator(preset_config("fast", "live"))
    assert graphed(gen, 128, torch.device("cpu")) is gen


def _played(precision: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    config = preset_config("fast", "live")
    eager = build_generator(config).to(CUDA).eval().requires_grad_(False)
    played, _ = with_precision(eager, config.latent_dim, CUDA, precision)
    return frozen(played, config.latent_dim, CUDA), eager


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_graph_replays_the_stream_bit_for_bit(precision: str) -> None:
    stream, _ = _played(precision)
    g = graphed(stream, 128, CUDA)
    assert isinstance(g, GraphedGenerator)
    with torch.inference_mode():
        for seed in range(3):
            z = torch.randn((1, 128), generator=torch.Generator().manual_seed(seed)).to(CUDA)
            assert torch.equal(g(z), stream(z))


@needs_cuda
def test_the_cuda_frame_makes_no_hidden_host_sync_and_matches_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    stream, eager = _played("fp32")
    g = graphed(stream, 128, CUDA)
    r = FrameRenderer(CUDA)
    r.set_size(128)
    z = np.random.default_rng(0).standard_normal(128).astype(np.float32)
    out = np.zeros((128, 128, 3), np.uint8)
    r.forward(g, z, slot=0)
    r.forward(g, -z, slot=1)
    r.compose(mix_of(0.5, 0, 0))
    r.convert(1.0, out)  # warm: the buffers are allocated once, here
    waits = []
    real_wait = r._wait_for_copy

    def counted_wait() -> None:  # the frame's one explicit sync, let through and counted
        torch.cuda.set_sync_debug_mode(0)
        try:
            real_wait()
        finally:
            torch.cuda.set_sync_debug_mode("error")
        waits.append(1)

    monkeypatch.setattr(r, "_wait_for_copy", counted_wait)
    torch.cuda.set_sync_debug_mode("error")  # any other sync (a pageable copy, .item()) raises
    try:
        for _ in range(3):
            r.forward(g, z, slot=0)
            r.forward(g, -z, slot=1)
            r.compose(mix_of(0.5, 0, 0))
            r.convert(1.0, out)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len(waits) == 3  # one host sync per frame, no more
    cpu = FrameRenderer(torch.device("cpu"))
    cpu.set_size(128)
    cpu_model = eager.cpu()
    ref = np.zeros_like(out)
    cpu.forward(cpu_model, z, slot=0)
    cpu.forward(cpu_model, -z, slot=1)
    cpu.compose(mix_of(0.5, 0, 0))
    cpu.convert(1.0, ref)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2  # GPU and CPU arithmetic differ by a level or so
