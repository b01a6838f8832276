"""`make run`'s embedded broker: kombu's filesystem transport, each message written whole.

kombu's own (5.7) creates a queue's `.msg` file, then writes the message into it. A
worker that lists the folder between the two moves the file and reads it empty, and
dies on the JSON (`Unrecoverable error: JSONDecodeError`), stopping `make run` with it:
a few payments retried at once were enough. Here a message is written under a name no
consumer reads (`.part`) and renamed into the queue when whole; a rename within one
folder is atomic.

config/celery_app.py makes it the transport of every `filesystem://` URL.
"""

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    # kombu's stubs type this method two ways (filesystem's and its base's): kombu's own.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        # kombu's name (its order is the queue's), so its _get finds the file once renamed.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        whole = os.path.join(self.data_folder_out, name)
        partial = whole + PARTIAL_SUFFIX
        try:
            with open(partial, "wb", buffering=0) as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, whole)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {whole!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
