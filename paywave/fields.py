"""The old path of paywave.encryption.fields, kept because existing migrations name it."""

from paywave.encryption.fields import EncryptedJSONField, EncryptedTextField

__all__ = ["EncryptedJSONField", "EncryptedTextField"]
