"""Model forward pass and the conversion to a presentable uint8 frame.

Hot path, once per frame. Everything it needs is allocated when the frame
size changes, not per frame: the latent input tensor, the last model output,
and on CUDA a pinned upload buffer for z, a uint8 frame on the GPU and a pinned
host staging buffer, so each frame crosses the bus once each way in async
copies, followed by the single sync a present needs anyway.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.stage.graphs import GraphedGenerator
from engine.stage.mixer import Mix, compose


class _Slot:
    """One deck's input and output buffers: z on the device (and its pinned upload buffer on
    CUDA) and the deck's last picture."""

    def __init__(self) -> None:
        self.z: torch.Tensor | None = None  # (1, latent_dim) on device
        self.z_host = torch.empty((1, 0))  # (1, latent_dim) float32, pinned on CUDA: z's upload buffer
        self.last: torch.Tensor | None = None  # (1, 3, S, S) in [-1, 1], the deck's last model output
        self.own: torch.Tensor | None = None  # (1, 3, S, S): the picture copied out of a CUDA graph's buffer


class FrameRenderer:
    """z (latent_dim,) -> model -> (render, render, 3) uint8 written into a caller buffer.

    Each deck renders into its own slot; `compose` makes the frame from the slots (one
    deck alone: its picture as it is; two: engine.stage.mixer.compose), `convert` writes it.
    """

    def __init__(self, device: torch.device, render_size: int | None = None) -> None:
        self.device = device
        self.render_size = render_size  # None: each model's native size
        self._slots = [_Slot(), _Slot()]  # deck a's, deck b's
        self._last: torch.Tensor | None = None  # (1, 3, S, S) float in [-1, 1], the composed frame
        self._mixed: torch.Tensor | None = None  # (1, 3, S, S) float32, the composition's buffer
        self._staging: torch.Tensor | None = None  # (S, S, 3) uint8, pinned host memory on CUDA
        self._scaled: torch.Tensor | None = None  # (S, S, 3) float32 on device, conversion scratch
        self._u8: torch.Tensor | None = None  # (S, S, 3) uint8 on the GPU, the frame before its copy
        self.size = 0  # the composed frame's side in px (set_size)

    def output_size(self, native: int) -> int:
        return self.render_size or native

    def set_size(self, size: int) -> None:
        """The side of the composed frame: a deck's picture of another size is scaled to it."""
        self.size = size

    @torch.inference_mode()
    def forward(self, model: torch.nn.Module, z: np.ndarray, slot: int = 0) -> None:
        """Run the model on z (latent_dim,) float32 into a deck's slot; the frame is composed
        from the slots by compose() (deck a alone needs no compose())."""
        while slot >= len(self._slots):
            self._slots.append(_Slot())
        s = self._slots[slot]
        if s.z is None or s.z.shape[1] != z.shape[0]:
            s.z = torch.empty((1, z.shape[0]), dtype=torch.float32, device=self.device)
            # On CUDA z goes through pinned memory: an upload from pageable memory would first wait
            # for the GPU's stream (a host sync). The last frame's convert() synced already, so
            # the pinned buffer is free to overwrite.
            s.z_host = torch.empty((1, z.shape[0]), dtype=torch.float32, pin_memory=self.device.type == "cuda")
        if self.device.type == "cpu":
            s.z[0].copy_(torch.from_numpy(z))
        else:
            s.z_host[0].copy_(torch.from_numpy(z))
            s.z.copy_(s.z_host, non_blocking=True)
        out = model(s.z)  # (1, 3, S, S) in [-1, 1]
        if isinstance(model, GraphedGenerator):
            # A CUDA graph's output buffer is overwritten by its next replay, which may be the
            # other deck's: the deck keeps its own copy (one device copy, no host sync).
            if s.own is None or s.own.shape != out.shape or s.own.dtype != out.dtype:
                s.own = torch.empty_like(out)
            out = s.own.copy_(out)
        side = self.size or self.render_size
        if side and out.shape[-1] != side:
            out = F.interpolate(out.float(), size=(side, side), mode="bilinear", align_corners=False)
        s.last = out
        if slot == 0:  # deck a alone; with a mixer, compose() makes the frame next
            self._last = out

    @torch.inference_mode()
    def compose(self, mix: Mix) -> None:
        """The frame from the slots' pictures as `mix` says (a picture that is not visible is
        not read; a visible slot that has none yet counts as black)."""
        a, b = self._slots[0].last, self._slots[1].last
        visible = mix.visible
        if not visible[1] or (mix.weights == (1.0, 0.0) and mix.share == 0.0):
            self._last = a
            return
        if not visible[0] or (mix.weights == (0.0, 1.0) and mix.share == 0.0):
            self._last = b
            return
        if a is None or b is None:
            self._last = a if b is None else b
            return
        if self._mixed is None or self._mixed.shape != a.shape:
            self._mixed = torch.empty(a.shape, dtype=torch.float32, device=a.device)
        self._last = compose(a, b, mix, self._mixed)

    def has_picture(self, slot: int) -> bool:
        """Whether a deck's slot holds a picture (it may skip a forward pass at half rate)."""
        return slot < len(self._slots) and self._slots[slot].last is not None

    @property
    def has_frame(self) -> bool:
        return self._last is not None

    @torch.inference_mode()
    def convert(self, gain: float, out: np.ndarray) -> None:
        """Write the last output, times gain (0..1), into out (S, S, 3) uint8."""
        if self._last is None:
            out.fill(0)
            return
        # [-1, 1] -> [0, 255] with the gain folded into one multiply-add; +0.5 rounds on the cast.
        scale = 127.5 * gain
        src = self._last[0].permute(1, 2, 0)  # (3, S, S) -> (S, S, 3) view
        if self._scaled is None or self._scaled.shape != src.shape:
            self._scaled = torch.empty(src.shape, dtype=torch.float32, device=self._last.device)
        # An fp16 model's output (HalfGenerator) is scaled into the float32 scratch directly.
        img = torch.mul(src, scale, out=self._scaled).add_(scale + 0.5).clamp_(0.0, 255.0)
        if self.device.type == "cpu":
            torch.from_numpy(out).copy_(img)  # float -> uint8 cast fused into the copy
            return
        if self._u8 is None or self._u8.shape != img.shape:
            self._u8 = torch.empty(img.shape, dtype=torch.uint8, device=img.device)
            self._staging = torch.empty(img.shape, dtype=torch.uint8, pin_memory=True)
        assert self._staging is not None  # allocated with _u8
        self._u8.copy_(img)  # the uint8 cast on the GPU, into the buffer allocated once
        self._staging.copy_(self._u8, non_blocking=True)  # 1 byte per channel crosses the bus
        self._wait_for_copy()
        np.copyto(out, self._staging.numpy())

    def _wait_for_copy(self) -> None:
        """The one host sync per frame: the staging copy must have landed before numpy reads it."""
        torch.cuda.current_stream(self.device).synchronize()

    def reset(self, slot: int | None = None) -> None:
        """Forget the held frame and a slot's picture (all: None), e.g. after a scene switch
        while frozen."""
        self._last = None
        for i, s in enumerate(self._slots):
            if slot is None or i == slot:
                s.last = None
