"""Model fields whose values are encrypted at rest (paywave/encryption/crypto.py).

Every encrypted column is found by its field class (`EncryptedField`): key rotation,
the key report and the startup check walk the app registry for them
(paywave/encryption/columns.py). Each one needs a `key_id_index` in its model's
Meta, which the startup check reads its key ids through; the check itself
refuses a model that lacks one.
"""

import json
from typing import Any

from django import forms
from django.db import models
from django.db.models.functions import Substr

from paywave.encryption import crypto


class EncryptedField:
    """What every encrypted field is; the ciphertext differs on every save, so the column
    cannot be filtered on (search through a blind-index column beside it)."""

    # Whether a stored value that is not ciphertext is read as it is (see EncryptedJSONField).
    reads_plaintext = False


class EncryptedTextField(EncryptedField, models.TextField):
    """Text encrypted with Fernet in the database, plain in Python."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)


class EncryptedJSONField(EncryptedField, models.TextField):
    """A JSON value (dict, list, ...) encrypted as text; None is SQL NULL.

    A value that is not ciphertext is read as plain JSON: rows a release before this
    column was encrypted wrote (the migration encrypted those it found; a rolling
    upgrade may add a few). The startup check warns about them and
    `manage.py rotate_encryption_keys` encrypts them.
    """

    empty_strings_allowed = False
    reads_plaintext = True
    # Any JSON value in and out, not TextField's str (django-stubs reads these two names).
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

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


def key_id_expression(field_name: str) -> Substr:
    """A stored value's first characters: `<key id>:` (paywave/encryption/crypto.py)."""
    return Substr(field_name, 1, crypto.KEY_PREFIX_LENGTH)


def key_id_index(field_name: str, *, name: str) -> models.Index:
    """The index on an encrypted column's key id: the startup check lists the key ids in
    use by walking it, a few index probes however big the table."""
    return models.Index(key_id_expression(field_name), name=name)
