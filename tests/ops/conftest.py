import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "paywave"


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


def chart_render(
    values: dict[str, Any] | None = None, namespace: str = "payments"
) -> list[dict[str, Any]]:
    """The chart rendered by real Helm (helm-python-sdk, offline) as release `paywave`:
    every manifest of every template, in the templates' order."""
    helm = ops_module("helm_python")
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="paywave", namespace=namespace, is_install=True)
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
