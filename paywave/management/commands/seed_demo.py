from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from paywave.api.keys import TEST_PREFIX, api_key_ensure
from paywave.services import api_client_ensure, staff_user_ensure

# The sandbox demo wallet app's API key: well known, like its password, and refused
# outside the sandbox with the rest of the seed.
DEMO_API_KEY = TEST_PREFIX + "demo_wallet_app_sandbox_key_never_use_in_prod"


class Command(BaseCommand):
    help = (
        "Sandbox only: the demo wallet app (demo/demo, and its API key) and a staff user "
        "(admin/admin)."
    )

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
        demo = api_client_ensure(name="demo", password="demo")  # noqa: S106 (sandbox demo)
        api_key_ensure(client=demo, raw=DEMO_API_KEY, name="sandbox demo")
        staff_user_ensure(username="admin", password="admin")  # noqa: S106 (sandbox demo)
        self.stdout.write(
            f"seeded wallet app demo/demo (API key {DEMO_API_KEY}) and staff user admin/admin"
        )
