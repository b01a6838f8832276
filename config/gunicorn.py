"""gunicorn's settings for the api: `--config python:config.gunicorn` (make run, the image).

The command line gives the rest (bind, workers, threads). Here: gunicorn's own lines
(starting, listening, booting a worker, a worker timing out) are written as PayWave's
JSON lines on stdout, through the same masking filter as every other line, instead of
gunicorn's plain text. Its loggers propagate to the root logger: in the master that is
the handler below; in each worker, once Django has loaded, it is settings.LOGGING's
(stdout, and Logstash when LOGSTASH_HOST is set). No access log: paywave.observability.middleware
writes one line per request.
"""

import os

from gunicorn.glogging import Logger

_level = os.environ.get("LOG_LEVEL", "INFO").upper()
_plain = os.environ.get("LOG_FORMAT", "json") == "plain"

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask": {"()": "paywave.observability.log_masking.MaskingFilter"}},
    "formatters": {
        "json": {"()": "paywave.observability.log_format.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain" if _plain else "json",
            "filters": ["mask"],
        },
        "nowhere": {"class": "logging.NullHandler"},
    },
    "root": {"level": _level, "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": _level, "handlers": [], "propagate": True},
        # A log config turns gunicorn's access log on: this turns it off again.
        "gunicorn.access": {"handlers": ["nowhere"], "propagate": False},
    },
}


class NoAccessLineLogger(Logger):
    """gunicorn's logger without its access line.

    With a log config gunicorn builds the line for every request (its fields and their
    format) before handing it to `gunicorn.access`, which drops it: 2 % of the api's CPU
    for a payment, for nothing.
    """

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        return None


# (A logger class of our own also keeps gunicorn from switching to its statsd logger for
# --statsd-host: metrics are Prometheus's here.)
logger_class = "config.gunicorn.NoAccessLineLogger"
