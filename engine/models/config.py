"""Model configs from stored dicts: the one check every family's config dataclass shares.

Configs come back from model-file metadata (JSON) and scene files, so a typo'd
or stray key must stop with a message naming it rather than fall back to a
default; each family's ``from_dict`` calls `config_from_dict` with its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, Protocol, TypeVar


class _Config(Protocol):
    def validate(self) -> None: ...


C = TypeVar("C", bound=_Config)


def config_from_dict(cls: type[C], data: Mapping[str, Any], name: str) -> C:
    """Build and validate the dataclass `cls` from `data`; ValueError naming `name` and the key.

    Unknown keys are an error, missing keys take the field's default, and a
    field without a default is required.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{name} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {name} key(s) {unknown}; expected some of {sorted(known)}")
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default is MISSING and f.default_factory is MISSING and f.name not in data:
            raise ValueError(f"{name} lacks '{f.name}'")
    config = cls(**dict(data))
    config.validate()
    return config
