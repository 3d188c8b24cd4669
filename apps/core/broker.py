"""Celery's filesystem transport (the embedded broker of ``make run`` and the SQLite tests),
with each message written whole before any reader can see it.

kombu's own ``_put`` creates the message file and then writes it; a worker polling the folder
may take the file in between, read nothing, and stop with "Unrecoverable error:
JSONDecodeError", losing the message. Here the message is written under a name the readers
skip (they take only ``<time>_<uuid>.<queue>.msg``) and renamed into place, which is atomic.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")  # no reader takes this name
        try:
            with open(partial, "wb", buffering=0) as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
