"""Write a local `.env` with freshly generated secrets, keeping any already there.

`make run` calls this so a fresh clone starts without anyone inventing keys; the
file is git-ignored and never leaves the machine.
"""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

GENERATORS = {
    "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "PAYWAVE_ENCRYPTION_KEYS": lambda: Fernet.generate_key().decode(),
    "PAYWAVE_BLIND_INDEX_KEY": lambda: secrets.token_urlsafe(32),
    "PAYWAVE_JWT_SIGNING_KEY": lambda: secrets.token_urlsafe(50),
    "FLOWER_BASIC_AUTH": lambda: f"flower:{secrets.token_urlsafe(12)}",
}


def ensure_dotenv(path: Path) -> list[str]:
    existing = path.read_text().splitlines() if path.exists() else []
    present = {line.split("=", 1)[0].strip() for line in existing if "=" in line}
    added = [name for name in GENERATORS if name not in present]
    if added:
        lines = existing + [f"{name}={GENERATORS[name]()}" for name in added]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
    return added


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    for name in ensure_dotenv(target):
        print(f"generated {name} in {target}")
