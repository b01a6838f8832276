from typing import Any

from django.db import models

from paywave import crypto


class EncryptedTextField(models.TextField):
    """Text encrypted with Fernet in the database, plain in Python.

    The ciphertext differs on every save, so the column cannot be filtered on:
    search through a blind-index column beside it.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)
