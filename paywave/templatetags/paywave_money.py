"""`{% load paywave_money %}{{ payment.amount|money:payment.currency }}` -> "88.00 BRL"."""

from django import template

from paywave.values.money_text import money_display

register = template.Library()


@register.filter
def money(amount: int | None, currency: str) -> str:
    return money_display(amount, currency)
