from celery import shared_task

from paywave.observability.alerts import AlertKind, operator_alert

from .integrity import ledger_problems


@shared_task(name="wallets.check_ledger", ignore_result=True)
def check_ledger() -> int:
    """Daily (beat): an operator alert when a ledger invariant is broken."""
    problems = ledger_problems()
    if problems:
        operator_alert(
            AlertKind.LEDGER_INCONSISTENT,
            f"The ledger is inconsistent: {len(problems)} problem(s).",
            problems=problems,
        )
    return len(problems)
