# One image for the api, the Celery workers, beat, Flower and the gateway simulators:
# the command differs per service (docker-compose.yml, helm/paywave).

# --- build: wheels for every runtime dependency (compilers stay in this stage) -----
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

# --- runtime ---------------------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PAYWAVE_VAR_DIR=/var/lib/paywave
RUN useradd --create-home --uid 10001 --user-group paywave \
    && mkdir -p /var/lib/paywave/beat /tmp/prometheus \
    && chown -R paywave:paywave /var/lib/paywave /tmp/prometheus
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/* && rm -rf /wheels
WORKDIR /app
# The code belongs to root: the app user can read it, not change it.
COPY . .
# Static files are collected at build time; these placeholder values only let settings load.
RUN DJANGO_SETTINGS_MODULE=config.settings.local DJANGO_SECRET_KEY=collectstatic-only \
    PAYWAVE_ENCRYPTION_KEYS=unused PAYWAVE_BLIND_INDEX_KEY=unused \
    python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /var/lib/paywave/broker /var/lib/paywave/cache /var/lib/paywave/*.sqlite3* \
    && chown -R paywave:paywave /var/lib/paywave
USER 10001:10001
# api 8000, Flower 5555, simulators 8900, worker metrics 9808
EXPOSE 8000 5555 8900 9808
# The api's check; the other services set their own (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# Requests are logged as JSON by paywave.observability.middleware, so gunicorn keeps no
# access log; gunicorn's own lines are JSON too (config/gunicorn.py).
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", \
     "--threads", "4", "--worker-tmp-dir", "/dev/shm", "--no-control-socket", \
     "--config", "python:config.gunicorn"]
