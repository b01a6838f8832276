"""Date and time formats for people (the admin): to the second, with the time zone.

Backoff waits and retries are seconds apart; Django's own "Jan. 15, 2026, 10:04 a.m."
would hide them. Machine-facing output (the API, logs) is ISO 8601 and never reads these.
"""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
