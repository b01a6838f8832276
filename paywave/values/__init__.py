"""Plain values the whole project shares: money, countries, tax ids, card numbers."""
