import importlib
import os
import shutil
from types import ModuleType

import pytest


def ops_module(name: str) -> ModuleType:
    """A requirements-ops.txt package: required on CI, skipped where it is not installed."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(name)
    return pytest.importorskip(name, reason="pip install -r requirements-ops.txt (make test does)")


def debian_tool(name: str, package: str) -> str:
    """The path of a Debian package's command: required on CI, skipped where it is missing."""
    if path := shutil.which(name):
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but no `{name}` on PATH: apt-get install {package} (make test does)")
    pytest.skip(f"needs `{name}`: apt-get install {package} (make test does)")
