"""Model files: safetensors weights plus a JSON metadata header. Data, never code.

A model file holds the tensors of one model (fp16 by default, to keep shipped
files small) and string metadata under ``__metadata__``:

    format   FORMAT_VERSION ("1")
    kind     one of KINDS ("gan", "vae", "notes", "text")
    config   JSON: the constructor config of the model (e.g. GANConfig.to_dict(); a gan's "arch" picks its class)
    data     JSON: a summary of the training data
    metrics  JSON: evaluation numbers (e.g. sample distance; `run_show.py eval` adds its
             numbers as eval_* keys with update_metrics)
    steps    decimal int: training steps
    torch    torch.__version__ that wrote the file

Files are only ever read with safetensors (never torch.load / pickle: a .pt
pickle runs arbitrary code when loaded) and every failure becomes a
ModelFileError naming the file and what was expected. Writes are atomic
(engine.files.atomic: temp file in the same folder, fsync, os.replace), so a crash or SIGKILL while saving
leaves either the old file or the new one, never a torn one.

Training-state files (for --resume) use the same container with their own
metadata (format, kind "<family>-state", state JSON, torch) and full precision.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import safetensors
import safetensors.torch
import torch

from engine.errors import ModelFileError  # defined with the other startup errors; imported from here too
from engine.files.atomic import atomic_write_bytes
from engine.models.gan_arch import AnyGenerator, build_generator, gan_config_from_dict
from engine.models.vae import VAE, VAEConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"
KINDS = ("gan", "vae", "notes", "text")
_STATE_SUFFIX = "-state"
_MODEL_KEYS = ("format", "kind", "config", "data", "metrics", "steps")
_JSON_KEYS = ("config", "data", "metrics")
_CONFIG_NAMES = {"gan": "GAN", "vae": "VAE"}  # how error messages name a kind's config, where not the kind itself

PathLike = str | os.PathLike[str]
M = TypeVar("M", bound=torch.nn.Module)


def _prepare(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """CPU, contiguous, independent copies; floating tensors cast to `dtype` if given.

    clone(): safetensors refuses tensors that share storage (views, tied weights).
    """
    out = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensor '{name}' is a {type(t).__name__}, expected a torch.Tensor")
        t = t.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[name] = t.contiguous().clone()
    return out


def save_model(
    path: PathLike,
    tensors: Mapping[str, torch.Tensor],
    *,
    kind: str,
    config: Mapping[str, Any],
    data: Mapping[str, Any],
    metrics: Mapping[str, Any],
    steps: int,
    dtype: torch.dtype = torch.float16,
) -> None:
    """Atomically write a model file (tensors cast to `dtype`, metadata as above)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    metadata = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "config": json.dumps(dict(config), sort_keys=True),
        "data": json.dumps(dict(data), sort_keys=True),
        "metrics": json.dumps(dict(metrics), sort_keys=True),
        "steps": str(int(steps)),
        "torch": torch.__version__,
    }
    payload = safetensors.torch.save(_prepare(tensors, dtype), metadata=metadata)
    atomic_write_bytes(path, payload)


def _open_checked(path: PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load all tensors and raw metadata, turning every failure into ModelFileError."""
    p = Path(path)
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "not found"
        raise ModelFileError(f"model file '{p}' {what}; expected a .safetensors file")
    try:
        with safetensors.safe_open(str(p), framework="pt") as fh:
            metadata = fh.metadata() or {}
        tensors = safetensors.torch.load_file(str(p))
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"model file '{p}' is not a valid safetensors model file (truncated or another format?): {exc}"
        ) from exc
    return tensors, metadata


def _check_header(path: PathLike, metadata: Mapping[str, str], required: tuple[str, ...]) -> None:
    missing = [k for k in required if k not in metadata]
    if missing:
        raise ModelFileError(
            f"model file '{path}' lacks metadata key(s) {missing}; expected a Latent Stage "
            f"model file with {list(required)}"
        )
    if metadata["format"] != FORMAT_VERSION:
        raise ModelFileError(
            f"model file '{path}' has format version {metadata['format']!r}; this engine "
            f"reads format {FORMAT_VERSION!r}"
        )


def _decode_json(path: PathLike, metadata: Mapping[str, str], key: str) -> dict[str, Any]:
    try:
        value = json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"model file '{path}': metadata '{key}' is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ModelFileError(f"model file '{path}': metadata '{key}' must be a JSON object, got {type(value).__name__}")
    return value


def read_model(path: PathLike, expect_kind: str | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a model file; returns (tensors as stored, decoded metadata).

    Decoded metadata: format, kind, torch (str), config/data/metrics (dict), steps (int).
    `expect_kind` None accepts any known kind.
    """
    if expect_kind is not None and expect_kind not in KINDS:
        raise ValueError(f"unknown model kind {expect_kind!r}; expected one of {KINDS}")
    tensors, raw = _open_checked(path)
    _check_header(path, raw, _MODEL_KEYS)
    kind = raw["kind"]
    if kind not in KINDS:
        raise ModelFileError(f"model file '{path}' holds unknown kind {kind!r}; expected one of {KINDS}")
    if expect_kind is not None and kind != expect_kind:
        raise ModelFileError(f"model file '{path}': expected kind '{expect_kind}', file holds '{kind}'")
    meta: dict[str, Any] = {"format": raw["format"], "kind": kind, "torch": raw.get("torch", "")}
    for key in _JSON_KEYS:
        meta[key] = _decode_json(path, raw, key)
    try:
        meta["steps"] = int(raw["steps"])
    except ValueError as exc:
        raise ModelFileError(f"model file '{path}': metadata 'steps' must be an integer, got {raw['steps']!r}") from exc
    return tensors, meta


def update_metrics(path: PathLike, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `extra` into a model file's `metrics` and rewrite the file atomically; returns the new metrics.

    The tensors are written back exactly as stored (same names, dtypes and values) and every other
    metadata entry is kept as it was, so only `metrics` changes (the evaluation report, engine.eval,
    records its numbers this way). ModelFileError if the file is not a readable model file.
    """
    tensors, raw = _open_checked(path)
    _check_header(path, raw, _MODEL_KEYS)
    metrics = _decode_json(path, raw, "metrics")
    metrics.update(extra)
    metadata = {**raw, "metrics": json.dumps(metrics, sort_keys=True)}
    atomic_write_bytes(path, safetensors.torch.save(_prepare(tensors, None), metadata=metadata))
    return metrics


def check_tensors(path: PathLike, tensors: Mapping[str, torch.Tensor], model: torch.nn.Module) -> None:
    """Raise ModelFileError naming the first tensor (in model order) that does not fit `model`."""
    expected = model.state_dict()
    for name, want in expected.items():
        if name not in tensors:
            missing = sum(1 for n in expected if n not in tensors)
            raise ModelFileError(f"model file '{path}' lacks tensor '{name}' ({missing} missing)")
        if tuple(tensors[name].shape) != tuple(want.shape):
            raise ModelFileError(
                f"model file '{path}': tensor '{name}' has shape {tuple(tensors[name].shape)}, "
                f"expected {tuple(want.shape)} for the config in the file"
            )
    unexpected = [n for n in tensors if n not in expected]
    if unexpected:
        raise ModelFileError(
            f"model file '{path}' has unexpected tensor '{unexpected[0]}' for this model ({len(unexpected)} unexpected)"
        )


def load_module(
    path: PathLike,
    kind: str,
    build: Callable[[dict[str, Any]], M],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    rename: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> tuple[M, dict[str, Any]]:
    """Build the module a model file of `kind` describes; eval mode, no gradients.

    `build` turns the file's config dict into an untrained module; its ValueError
    or TypeError means the config is bad and becomes a ModelFileError naming the
    file. `rename` maps the file's tensor names to the module's, where a
    family's files name them otherwise. Weights are read with safetensors only
    (read_model), never unpickled.
    """
    tensors, meta = read_model(path, expect_kind=kind)
    if rename is not None:
        tensors = rename(tensors)
    try:
        model = build(meta["config"])
    except (ValueError, TypeError) as exc:
        name = _CONFIG_NAMES.get(kind, kind)
        raise ModelFileError(f"model file '{path}': bad {name} config: {exc}") from exc
    check_tensors(path, tensors, model)
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    model = model.to(device=torch.device(device), dtype=dtype).eval()
    model.requires_grad_(False)
    return model, meta


def load_generator(
    path: PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[AnyGenerator, dict[str, Any]]:
    """Build the GAN generator a model file describes; eval mode, no gradients.

    The config's "arch" picks the family (engine.models.gan_arch): "classic" when
    absent (older files), "fast" for engine.models.fastgan; eval mode means a
    fast generator adds its fixed noise maps, so a held z gives a still frame.
    """
    return load_module(path, "gan", lambda config: build_generator(gan_config_from_dict(config)), device, dtype)


def load_vae(
    path: PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[VAE, dict[str, Any]]:
    """Build the VAE (encoder and decoder) a model file of kind "vae" describes; eval mode, no gradients."""
    return load_module(path, "vae", lambda config: VAE(VAEConfig.from_dict(config)), device, dtype)


IMAGE_KINDS = ("gan", "vae")


def load_image_model(
    path: PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[AnyGenerator | VAE, dict[str, Any]]:
    """A picture model of either kind: forward(z (B, latent_dim)) -> (B, 3, S, S), with .config.size
    and .config.latent_dim; the file's kind picks the loader (ModelFileError for another kind)."""
    _, meta = read_model(path, None)
    if meta["kind"] == "vae":
        return load_vae(path, device, dtype)
    if meta["kind"] != "gan":
        raise ModelFileError(
            f"model file '{path}': expected a picture model (kind gan or vae), file holds '{meta['kind']}'"
        )
    return load_generator(path, device, dtype)


def save_state(path: PathLike, tensors: Mapping[str, torch.Tensor], *, kind: str, state: Mapping[str, Any]) -> None:
    """Atomically write a training-state file: full-precision tensors + JSON `state`."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    metadata = {
        "format": FORMAT_VERSION,
        "kind": kind + _STATE_SUFFIX,
        "state": json.dumps(dict(state), sort_keys=True),
        "torch": torch.__version__,
    }
    payload = safetensors.torch.save(_prepare(tensors, None), metadata=metadata)
    atomic_write_bytes(path, payload)


def read_state(path: PathLike, expect_kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a training-state file written by save_state; returns (tensors, state dict)."""
    tensors, raw = _open_checked(path)
    _check_header(path, raw, ("format", "kind", "state"))
    if raw["kind"] != expect_kind + _STATE_SUFFIX:
        raise ModelFileError(
            f"state file '{path}': expected kind '{expect_kind}{_STATE_SUFFIX}', file holds '{raw['kind']}'"
        )
    return tensors, _decode_json(path, raw, "state")
