"""Where settings come from: the environment, then `.env`; where PayWave keeps its files."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("PAYWAVE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
