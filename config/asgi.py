import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_asgi_application()

# As runserver does: a failed system check (e.g. a stored value whose encryption key was
# removed) stops the process before it serves anything.
from paywave.encryption.checks import refuse_to_start_on_errors  # noqa: E402

refuse_to_start_on_errors()
