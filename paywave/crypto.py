"""Personal data at rest: Fernet encryption with rotatable keys, and blind indexes.

PAYWAVE_ENCRYPTION_KEYS lists Fernet keys newest first; the first encrypts and
all of them decrypt. A blind index is an HMAC-SHA256 of the normalized value
under PAYWAVE_BLIND_INDEX_KEY: equal inputs give equal hashes, so an encrypted
field can be found by exact value without being decrypted.
"""

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Every Fernet token starts with these characters (its version byte and the high bytes of
# its timestamp), which no JSON document does.
LEGACY_MARK = "gAAAAA"


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "PAYWAVE_ENCRYPTION_KEYS is empty: personal data cannot be stored."
        )
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.PAYWAVE_ENCRYPTION_KEYS))


def is_ciphertext(stored: str) -> bool:
    """Whether a stored value is one `encrypt` wrote."""
    return stored.startswith(LEGACY_MARK)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored value cannot be decrypted with any key in PAYWAVE_ENCRYPTION_KEYS."
        ) from exc


def blind_index(normalized: str) -> str:
    key = settings.PAYWAVE_BLIND_INDEX_KEY
    if not key:
        raise ImproperlyConfigured("PAYWAVE_BLIND_INDEX_KEY is empty.")
    return hmac.new(key.encode(), normalized.encode(), hashlib.sha256).hexdigest()
