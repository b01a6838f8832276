"""Strict input fields: JSON types are not coerced, unknown fields are refused."""

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from django.conf import settings
from rest_framework import serializers

# Fields whose binding binds fields of their own: copied whole.
_CONTAINERS = (serializers.BaseSerializer, serializers.ListField, serializers.DictField)


def _copied(field: serializers.Field) -> serializers.Field:
    """copy.copy(field), without its pickling protocol's detour (a field has no state
    outside its __dict__)."""
    clone = object.__new__(type(field))
    clone.__dict__.update(field.__dict__)
    return clone


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare instead of silently dropping them."""

    unknown_field_message = "Unknown field."
    # Rules across fields that `validate` checks, as JSON Schema (2020-12) for the OpenAPI
    # schema's `allOf` (paywave.api.schema): what a client can know before sending.
    schema_rules: ClassVar[list[dict[str, Any]]] = []

    def get_fields(self) -> dict[str, serializers.Field]:
        """The declared fields, each a copy of its own to bind (as DRF's deep copy gives),
        a plain field copied as it is: DRF's deep copy builds every field again from its
        arguments (validators and all), about half of validating a payment's body. A
        field holding other fields (a nested serializer, a list or a map) is deep-copied."""
        return {
            name: copy.deepcopy(field) if isinstance(field, _CONTAINERS) else _copied(field)
            for name, field in self._declared_fields.items()
        }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [self.unknown_field_message] for name in unknown}
                )
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: no strings, floats or booleans."""

    default_error_messages = {"invalid": "A whole number is required."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: numbers are not turned into text. Its length is
    the length sent, as the schema's maxLength counts it, not the length once whitespace
    at either end is trimmed (Python's whitespace includes control characters)."""

    default_error_messages = {"invalid": "A string is required."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false and nothing else: no "true", 1 or "on"."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a JSON string: a number is not turned into UUID(int=...)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class StringMapField(serializers.DictField):
    """A flat map of strings to strings with bounded size (Stripe's metadata limits)."""

    default_error_messages = {
        "not_a_dict": "An object of string keys and string values is required.",
        "too_many_keys": "At most {max_keys} keys are allowed.",
        "bad_key": "Keys are 1 to {max_key_length} characters.",
        "bad_value": "Values are strings of at most {max_value_length} characters.",
    }

    def __init__(
        self,
        *,
        max_keys: int = 50,
        max_key_length: int = 40,
        max_value_length: int = 500,
        **kwargs: Any,
    ) -> None:
        self.max_keys = max_keys
        self.max_key_length = max_key_length
        self.max_value_length = max_value_length
        super().__init__(child=serializers.CharField(allow_blank=True), **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        if len(data) > self.max_keys:
            self.fail("too_many_keys", max_keys=self.max_keys)
        errors: dict[str, str] = {}
        for key, value in data.items():
            if not 1 <= len(key) <= self.max_key_length:
                errors[key] = self.error_messages["bad_key"].format(
                    max_key_length=self.max_key_length
                )
            elif not isinstance(value, str) or len(value) > self.max_value_length:
                errors[key] = self.error_messages["bad_value"].format(
                    max_value_length=self.max_value_length
                )
        if errors:
            raise serializers.ValidationError(errors)
        return dict(data)


class CurrencyField(StrictCharField):
    """An ISO 4217 code; which ones PayWave takes (PAYWAVE_CURRENCIES) the serializer checks,
    and the OpenAPI schema lists (paywave.api.schema)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=3, max_length=3, trim_whitespace=False, **kwargs)


class CountryField(StrictCharField):
    """An ISO 3166-1 alpha-2 code, checked by the serializer, listed in the OpenAPI schema."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=2, max_length=2, **kwargs)


class AmountField(StrictIntegerField):
    """Minor units, from 1 to PAYWAVE_MAX_AMOUNT (read when it validates, as the OpenAPI
    schema reads it when generated: paywave.api.schema)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        value = super().to_internal_value(data)
        maximum = settings.PAYWAVE_MAX_AMOUNT
        if value > maximum:
            raise serializers.ValidationError(f"Must be at most {maximum} minor units.")
        return value
