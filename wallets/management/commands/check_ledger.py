from django.core.management.base import BaseCommand, CommandError

from paywave.observability.heartbeats import heartbeat_record
from wallets.integrity import ledger_problems
from wallets.tasks import check_ledger


class Command(BaseCommand):
    help = (
        "Check the ledger: every journal balances per currency, every account's balance is "
        "the sum of its entries and its last entry's balance_after, no wallet is negative. "
        "Exits non-zero, listing the problems, if any invariant is broken."
    )

    def handle(self, *args, **options) -> None:
        problems = ledger_problems()
        # As the daily task does: what /metrics (and the ledger alert) says is this answer.
        heartbeat_record(check_ledger.name, succeeded=True, result=len(problems))
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"ledger inconsistent: {len(problems)} problem(s)")
        self.stdout.write("ledger ok")
