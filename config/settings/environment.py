"""Where settings come from: the environment, then `.env`; where PayWave keeps its files."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)


def env_bool_or(name: str, default: bool) -> bool:
    """A yes/no setting; unset or empty (as config/env.example lists the optional ones)
    is `default`, where django-environ would read an empty value as False."""
    return env.bool(name) if env.str(name, default="") else default


VAR_DIR = Path(env.str("PAYWAVE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
