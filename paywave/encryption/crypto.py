"""Personal data at rest: Fernet encryption with rotatable keys, and blind indexes.

PAYWAVE_ENCRYPTION_KEYS lists Fernet keys newest first; the first encrypts and
all of them decrypt. A stored value is `<key id>:<Fernet token>`: the key id (8 hex
characters of a hash of the key, which reveals nothing of the key) names the key
that encrypted it, so which keys are still in use can be read from the values'
first characters without decrypting anything (see paywave/encryption/columns.py).
Values written before key ids existed are a bare Fernet token; any configured key
that opens one is used.

A blind index is an HMAC-SHA256 of the normalized value under
PAYWAVE_BLIND_INDEX_KEY: equal inputs give equal hashes, so an encrypted field can
be found by exact value without being decrypted.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_ID_LENGTH = 8
# What a stored value starts with: "<key id>:". Every Fernet token starts with LEGACY_MARK
# (its version byte and the high bytes of its timestamp), which is never a key id.
KEY_PREFIX_LENGTH = KEY_ID_LENGTH + 1
LEGACY_MARK = "gAAAAA"
_KEY_PREFIX = re.compile(rf"[0-9a-f]{{{KEY_ID_LENGTH}}}:")


class UndecryptableValue(ImproperlyConfigured):
    """A stored value no configured key opens: a key was removed too early, or it is not ours."""


def key_id(key: str) -> str:
    """The id stored with every value the key encrypts."""
    return hashlib.sha256(b"paywave-encryption-key-id\0" + key.encode()).hexdigest()[:KEY_ID_LENGTH]


@dataclass(frozen=True)
class _Keyring:
    ids: tuple[str, ...]  # newest first: ids[0] encrypts
    by_id: dict[str, Fernet]
    any_key: MultiFernet  # for values written before key ids


@lru_cache(maxsize=4)
def _keyring_for(keys: tuple[str, ...]) -> _Keyring:
    if not keys:
        raise ImproperlyConfigured(
            "PAYWAVE_ENCRYPTION_KEYS is empty: personal data cannot be stored."
        )
    try:
        fernets = [Fernet(key.encode()) for key in keys]
    except ValueError as exc:
        raise ImproperlyConfigured(
            "PAYWAVE_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc
    ids = tuple(key_id(key) for key in keys)
    if len(set(ids)) != len(ids):
        raise ImproperlyConfigured("PAYWAVE_ENCRYPTION_KEYS lists the same key twice.")
    return _Keyring(
        ids=ids, by_id=dict(zip(ids, fernets, strict=True)), any_key=MultiFernet(fernets)
    )


def _keyring() -> _Keyring:
    return _keyring_for(tuple(settings.PAYWAVE_ENCRYPTION_KEYS))


def configured_key_ids() -> tuple[str, ...]:
    """The ids of PAYWAVE_ENCRYPTION_KEYS, newest (the one that encrypts) first."""
    return _keyring().ids


def stored_key_id(stored: str) -> str | None:
    """The id of the key a stored value was encrypted with; None if it names none."""
    return stored[:KEY_ID_LENGTH] if _KEY_PREFIX.match(stored) else None


def is_ciphertext(stored: str) -> bool:
    """Whether a stored value is one `encrypt` wrote (with a key id, or from before them)."""
    return stored_key_id(stored) is not None or stored.startswith(LEGACY_MARK)


def encrypt(plaintext: str) -> str:
    ring = _keyring()
    token = ring.by_id[ring.ids[0]].encrypt(plaintext.encode()).decode()
    return f"{ring.ids[0]}:{token}"


def decrypt(stored: str) -> str:
    ring = _keyring()
    kid = stored_key_id(stored)
    try:
        if kid is None:
            return ring.any_key.decrypt(stored.encode()).decode()
        fernet = ring.by_id.get(kid)
        if fernet is None:
            raise UndecryptableValue(
                f"A stored value is encrypted with key {kid}, which is not in "
                "PAYWAVE_ENCRYPTION_KEYS."
            )
        return fernet.decrypt(stored[KEY_PREFIX_LENGTH:].encode()).decode()
    except InvalidToken as exc:
        raise UndecryptableValue(
            "A stored value cannot be decrypted with any key in PAYWAVE_ENCRYPTION_KEYS."
        ) from exc


def reencrypt(stored: str) -> str:
    """The same plaintext under the newest key."""
    return encrypt(decrypt(stored))


def blind_index(normalized: str) -> str:
    key = settings.PAYWAVE_BLIND_INDEX_KEY
    if not key:
        raise ImproperlyConfigured("PAYWAVE_BLIND_INDEX_KEY is empty.")
    return hmac.new(key.encode(), normalized.encode(), hashlib.sha256).hexdigest()
