from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from paywave.services import api_client_ensure, staff_user_ensure


class Command(BaseCommand):
    help = "Sandbox only: the demo wallet app (demo/demo) and a staff user (admin/admin)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--if-sandbox",
            action="store_true",
            help="outside sandbox mode, do nothing instead of failing",
        )

    def handle(self, *args, if_sandbox: bool = False, **options) -> None:
        if not settings.PAYWAVE_SANDBOX:
            if if_sandbox:
                self.stdout.write("sandbox mode is off: no demo accounts seeded")
                return
            raise CommandError("refusing to seed well-known passwords outside sandbox mode")
        api_client_ensure(name="demo", password="demo")  # noqa: S106 (sandbox demo)
        staff_user_ensure(username="admin", password="admin")  # noqa: S106 (sandbox demo)
        self.stdout.write("seeded wallet app demo/demo and staff user admin/admin")
