"""Child processes in another system's layer (tests/shims/sitecustomize.py): Windows' or macOS's features."""

from __future__ import annotations

import os
from pathlib import Path

SHIMS = Path(__file__).resolve().parent / "shims"
SYSTEM_ENV = "BATCHGEN_TEST_SYSTEM"


def layer_env(system: str | None = None, **settings: str) -> dict[str, str]:
    """The environment that puts a child in ``system``'s layer (by default the one ``.ci/run`` names in
    ``$BATCHGEN_TEST_SYSTEM``, none if unset) with the shim's other ``settings`` (``BATCHGEN_TEST_...``)."""
    system = os.environ.get(SYSTEM_ENV, "") if system is None else system
    if not system and not settings:
        return {}
    path = os.pathsep.join(filter(None, [str(SHIMS), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, SYSTEM_ENV: system, **settings}
