import importlib
import os
from types import ModuleType

import pytest


def ops_module(name: str) -> ModuleType:
    """A requirements-ops.txt package: required on CI, skipped where it is not installed."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(name)
    return pytest.importorskip(name, reason="pip install -r requirements-ops.txt (make test does)")
