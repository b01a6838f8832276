# One image for api, worker, beat and flower; the command differs per service.
FROM python:3.11-slim AS build
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PAYWAVE_VAR_DIR=/var/lib/paywave
RUN useradd --create-home --uid 10001 paywave \
    && mkdir -p /var/lib/paywave && chown paywave /var/lib/paywave
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
WORKDIR /app
COPY --chown=paywave . .
# Static files are collected at build time; these placeholder values only let settings load.
RUN DJANGO_SETTINGS_MODULE=config.settings.local DJANGO_SECRET_KEY=collectstatic-only \
    PAYWAVE_ENCRYPTION_KEYS=unused PAYWAVE_BLIND_INDEX_KEY=unused \
    python manage.py collectstatic --noinput --verbosity 0 \
    && chown -R paywave /var/lib/paywave
USER paywave
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--access-logfile", "-", "--no-control-socket"]
