from celery import shared_task


@shared_task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """Nothing: what the payments worker costs per task before PayWave's work."""
