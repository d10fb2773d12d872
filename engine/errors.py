"""The exceptions that mean "this cannot start": the CLI prints them as one line.

Each carries a message that names the file, key or flag and what was expected.
"""

from __future__ import annotations


class StartupError(Exception):
    """A problem with a flag or the environment, found before the first frame."""


def startup_errors() -> tuple[type[BaseException], ...]:
    # Imported here, not at module level, so `engine.errors` stays import-light.
    from engine.models.checkpoint import ModelFileError
    from engine.devices.window import DisplayError
    from engine.files.scene import SceneError

    return (StartupError, SceneError, ModelFileError, DisplayError)
