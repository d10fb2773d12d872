"""A single-producer single-consumer ring of float32 audio blocks, without locks.

The storage is preallocated, (slots, frames, channels) float32, with one view
per slot made up front, so neither side allocates arrays. Two counters hand
blocks over: `written` is only ever changed by the producer, after the block's
samples are in place; `read` only by the consumer, after it has copied the
block out. Each side only reads the other's counter, and a Python int
attribute store is atomic under the interpreter lock, so a block is never seen
half-written and a slot is never overwritten while it is being copied.

Playback: the producer thread renders into `write_slot()` and `publish()`es;
the sound card callback `read_into(outdata)`s. Capture is the mirror image:
the input callback `write_from(indata)`s and the analysis thread `read_slot()`s
and `release()`s.

Pure module (numpy only).
"""

from __future__ import annotations

import numpy as np


class BlockRing:
    def __init__(self, slots: int, frames: int, channels: int) -> None:
        if slots < 1 or frames < 1 or channels < 1:
            raise ValueError(f"slots, frames and channels must be >= 1, got {slots}, {frames}, {channels}")
        self.slots, self.frames, self.channels = slots, frames, channels
        self._buf = np.zeros((slots, frames, channels), dtype=np.float32)
        self._views = [self._buf[i] for i in range(slots)]  # (frames, channels) each
        self.written = 0  # blocks published, ever (producer side only)
        self.read = 0  # blocks consumed, ever (consumer side only)

    def ready(self) -> int:
        """Blocks published and not yet consumed."""
        return self.written - self.read

    def free(self) -> int:
        return self.slots - (self.written - self.read)

    # -- producer side ---------------------------------------------------------------------------------
    def write_slot(self) -> np.ndarray | None:
        """The (frames, channels) view to fill next, or None when the ring is full."""
        if self.written - self.read >= self.slots:
            return None
        return self._views[self.written % self.slots]

    def publish(self) -> None:
        """Hand the block filled through write_slot() to the consumer."""
        self.written += 1

    def write_from(self, block: np.ndarray) -> bool:
        """Copy a whole block in and publish it; False (nothing copied) when full."""
        slot = self.write_slot()
        if slot is None:
            return False
        np.copyto(slot, block)
        self.written += 1
        return True

    # -- consumer side ---------------------------------------------------------------------------------
    def read_into(self, out: np.ndarray) -> bool:
        """Copy the oldest ready block into out and consume it; False when none is ready."""
        if self.written == self.read:
            return False
        np.copyto(out, self._views[self.read % self.slots])
        self.read += 1
        return True

    def read_slot(self) -> np.ndarray | None:
        """A view of the oldest ready block (valid until release()), or None."""
        if self.written == self.read:
            return None
        return self._views[self.read % self.slots]

    def release(self) -> None:
        """Consume the block returned by read_slot()."""
        self.read += 1
