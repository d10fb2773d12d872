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


class FrameRenderer:
    """z (latent_dim,) -> model -> (render, render, 3) uint8 written into a caller buffer."""

    def __init__(self, device: torch.device, render_size: int | None = None) -> None:
        self.device = device
        self.render_size = render_size  # None: each model's native size
        self._z: torch.Tensor | None = None  # (1, latent_dim) on device
        self._z_host = torch.empty((1, 0))  # (1, latent_dim) float32, pinned on CUDA: z's upload buffer
        self._last: torch.Tensor | None = None  # (1, 3, S, S) float in [-1, 1], last model output
        self._staging: torch.Tensor | None = None  # (S, S, 3) uint8, pinned host memory on CUDA
        self._scaled: torch.Tensor | None = None  # (S, S, 3) float32 on device, conversion scratch
        self._u8: torch.Tensor | None = None  # (S, S, 3) uint8 on the GPU, the frame before its copy

    def output_size(self, native: int) -> int:
        return self.render_size or native

    @torch.inference_mode()
    def forward(self, model: torch.nn.Module, z: np.ndarray) -> None:
        """Run the model on z (latent_dim,) float32; keeps the result for convert()."""
        if self._z is None or self._z.shape[1] != z.shape[0]:
            self._z = torch.empty((1, z.shape[0]), dtype=torch.float32, device=self.device)
            # On CUDA z goes through pinned memory: an upload from pageable memory would first wait
            # for the GPU's stream (a host sync). The last frame's convert() synced already, so
            # the pinned buffer is free to overwrite.
            self._z_host = torch.empty((1, z.shape[0]), dtype=torch.float32, pin_memory=self.device.type == "cuda")
        if self.device.type == "cpu":
            self._z[0].copy_(torch.from_numpy(z))
        else:
            self._z_host[0].copy_(torch.from_numpy(z))
            self._z.copy_(self._z_host, non_blocking=True)
        out = model(self._z)  # (1, 3, S, S) in [-1, 1]
        if self.render_size and out.shape[-1] != self.render_size:
            out = F.interpolate(out, size=(self.render_size, self.render_size), mode="bilinear", align_corners=False)
        self._last = out

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
        torch.cuda.current_stream(self.device).synchronize()  # the one sync per frame, before present
        np.copyto(out, self._staging.numpy())

    def reset(self) -> None:
        """Forget the held frame (e.g. after a scene switch while frozen)."""
        self._last = None
