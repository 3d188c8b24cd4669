"""Django's PostgreSQL backend with a health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before a request first uses
it, by running ``SELECT 1``: a round trip to the server on every request, which on the API's
send was a third as much as the send's own statement. Here a connection is taken as usable when
the server has sent nothing since the last answer: an idle session hears from the server only
when it is being ended (a restart, ``pg_terminate_backend``, an idle timeout), so a socket with
nothing to read is alive as far as anyone can tell without asking. When there is something to
read it may still be harmless (a notice, a parameter change, a TLS session ticket), so Django's
own ``SELECT 1`` decides then.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper


class DatabaseWrapper(PostgresDatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            heard = poller.poll(0)
        except (OSError, ValueError):
            return False
        return True if not heard else super().is_usable()
