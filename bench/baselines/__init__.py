"""Bench baselines: the bare stack PayWave is measured against (PAYWAVE_BENCH_BASELINES=true).

A DRF view that validates a payment-like body and inserts one row, and a Celery
task that does nothing, routed to the `payments` queue. Never installed unless
the setting is on; never in the Docker image (bench/ is in .dockerignore).
"""
