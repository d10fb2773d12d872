"""Files the artist writes (scenes, patches) -> validated objects; their value checks are
engine.core.checks."""

from pathlib import Path

# The repository: a model path in a scene is tried next to the scene, then here (where trained/ is).
REPO_ROOT = Path(__file__).resolve().parents[2]  # engine/files/__init__.py -> the repository
