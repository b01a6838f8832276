import json
import re

from django.core.management.base import BaseCommand, CommandError

from paywave.api.errors import ApplicationError
from paywave.api.keys import api_key_create
from paywave.services import api_client_create

_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,100}")


class Command(BaseCommand):
    help = (
        "Create a wallet app account and print its credentials as JSON: a secret API key "
        "(Authorization: Bearer <api_key>), and a username and password for JWTs."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="account name, also the username for /api/v1/auth/token")

    def handle(self, *args, name: str, **options) -> None:
        if not _NAME.fullmatch(name):
            raise CommandError("name: 1-100 letters, digits and _.@+- only")
        try:
            client, password = api_client_create(name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        _, api_key = api_key_create(client=client, name="created with the account")
        self.stdout.write(json.dumps({"username": name, "password": password, "api_key": api_key}))
