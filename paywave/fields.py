import json
from typing import Any

from django import forms
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


class EncryptedJSONField(models.TextField):
    """A JSON value (dict, list, ...) encrypted as text; None is SQL NULL.

    A value that is not ciphertext is read as plain JSON: rows a release before this
    column was encrypted wrote (the migration encrypted those it found; a rolling
    upgrade may add a few).
    """

    empty_strings_allowed = False

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(crypto.decrypt(value) if crypto.is_ciphertext(value) else value)

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return crypto.encrypt(json.dumps(value, separators=(",", ":")))

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj))

    def formfield(self, **kwargs: Any) -> Any:
        return super(models.TextField, self).formfield(**{"form_class": forms.JSONField, **kwargs})
