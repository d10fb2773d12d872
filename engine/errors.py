"""The exceptions that mean "this cannot start": the CLI prints them as one line.

Every one is a `StartupError`, so the CLI catches that alone and ends with one
`error: ...` line and exit status 2, no traceback. Each carries a message that
names the file, key or flag and what was expected.

A leaf module: it imports nothing from the engine, so any module may raise
these without an import cycle. The older homes of these names (scene, patch,
checkpoint, window, params, event log) import them from here.
"""

from __future__ import annotations


class StartupError(Exception):
    """A problem with a flag, a file or the environment, found before the first frame."""


# The second base class of some errors below is the one they had before they moved
# here: callers that catch ValueError or RuntimeError keep working.


class SceneError(StartupError, ValueError):
    """A scene file that cannot be played; the message names file, key, expectation."""


class PatchError(StartupError):
    """A patch (or MIDI learn) file that cannot be used; names file, route, key, expectation."""


class ModelFileError(StartupError):
    """A model or state file is missing, unreadable or not what was expected."""


class DisplayError(StartupError, RuntimeError):
    """The requested display does not exist or there is no display at all."""


class ParamError(StartupError, ValueError):
    """A param definition or lookup that cannot be honoured (startup-time)."""


class EventLogError(StartupError):
    """An event log that cannot be replayed; the message names file and line."""


class TrainSetupError(StartupError, ValueError):
    """A `train` flag, data folder or --resume state that training cannot start from."""


class EvalSetupError(StartupError, ValueError):
    """An `eval` model, flag or data folder that the evaluation report cannot start from."""


__all__ = [
    "StartupError",
    "SceneError",
    "PatchError",
    "ModelFileError",
    "DisplayError",
    "ParamError",
    "EventLogError",
    "TrainSetupError",
    "EvalSetupError",
]


class DeviceError(StartupError, ValueError):
    """`--device` names a device this machine does not have."""
