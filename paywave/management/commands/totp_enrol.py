import io

import segno
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from paywave.api.errors import ApplicationError
from paywave.services import staff_totp_enrol


class Command(BaseCommand):
    help = (
        "Enrol a TOTP device (authenticator app) for a staff user and print its otpauth:// "
        "URI and QR code once. Run it where only that staff member sees the output."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="a staff user")
        parser.add_argument("--name", default="authenticator", help="the device's name")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="remove the user's TOTP devices first (a lost or new phone)",
        )
        parser.add_argument("--no-qr", action="store_true", help="print the URI only")

    def handle(self, *args, username: str, name: str, replace: bool, no_qr: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        try:
            device = staff_totp_enrol(user=user, name=name, replace=replace)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        uri = device.config_url
        self.stdout.write(f"TOTP device {name!r} enrolled for {username}. Scan, or enter:")
        self.stdout.write(uri)
        if not no_qr:
            picture = io.StringIO()
            segno.make(uri, error="m").terminal(out=picture, compact=True)
            self.stdout.write(picture.getvalue(), ending="")
        self.stdout.write("The admin asks for the app's 6-digit code after the password.")
