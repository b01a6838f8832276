import json

from django.core.management.base import BaseCommand, CommandError

from paywave.api.keys import api_key_create
from paywave.models import ApiClient


class Command(BaseCommand):
    help = "Make a new secret API key for a wallet app and print it once, as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("client", help="the wallet app's name")
        parser.add_argument("--name", default="", help="what the key is for (shown in the admin)")

    def handle(self, *args, client: str, name: str, **options) -> None:
        found = ApiClient.objects.filter(name=client).first()
        if found is None:
            raise CommandError(f"no wallet app named {client!r}")
        _, raw = api_key_create(client=found, name=name)
        self.stdout.write(json.dumps({"client": client, "api_key": raw}))
