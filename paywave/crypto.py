"""The old path of paywave.encryption.crypto, kept because existing migrations import it."""

from paywave.encryption.crypto import decrypt, encrypt, is_ciphertext

__all__ = ["decrypt", "encrypt", "is_ciphertext"]
