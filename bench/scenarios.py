"""bench/scenarios.toml: [defaults] under every [load.NAME] and [chaos.NAME]."""

import tomllib
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).with_name("scenarios.toml")


def scenario(kind: str, name: str, path: Path = SCENARIOS) -> dict[str, Any]:
    data = tomllib.loads(path.read_text())
    known = data.get(kind, {})
    if name not in known:
        raise SystemExit(f"no [{kind}.{name}] in {path}; there are: {', '.join(known) or 'none'}")
    defaults, own = data.get("defaults", {}), known[name]
    env = {**defaults.get("env", {}), **own.get("env", {})}  # added to, not replaced
    return {**defaults, **own, "env": env, "name": name}


def names(kind: str, path: Path = SCENARIOS) -> list[str]:
    return list(tomllib.loads(path.read_text()).get(kind, {}))
