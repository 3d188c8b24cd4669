"""Connection set-up for PostgreSQL.

Django reads every ``timestamptz`` value through a Python subclass of psycopg's pure-Python
loader (it re-stamps the time zone on each value), which costs about ten times what psycopg's
C loader does: a conversation list reads close to 300 timestamps per request, a status batch
several per message. When the connection's time zone is UTC (``USE_TZ`` with no database
``TIME_ZONE``, which is how Parley runs) the C loader already answers in ``timezone.utc``, so
:func:`use_fast_timestamptz_loader` registers a loader that hands each value to it directly.
"""

from __future__ import annotations

import datetime
from typing import Any

TIMESTAMPTZ = "timestamptz"


def _utc_loader_class() -> type:
    import psycopg
    from psycopg import adapt, pq

    # The C implementation when psycopg[binary] is installed, psycopg's Python one otherwise;
    # both answer in the connection's time zone.
    native = psycopg.adapters.get_loader(psycopg.adapters.types[TIMESTAMPTZ].oid, pq.Format.TEXT)

    class UtcTimestamptzLoader(adapt.Loader):
        # Django's create_cursor() compares this with the connection's time zone and only
        # registers its own loader on the cursor when they differ.
        timezone = datetime.UTC

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._native = native(oid, context)
            # psycopg calls ``loader.load`` per value: the native loader's own method, with no
            # Python frame in between.
            self.load = self._native.load  # type: ignore[method-assign]

        def load(self, data: Any) -> datetime.datetime:  # the instance attribute above wins
            return self._native.load(data)

    return UtcTimestamptzLoader


_LOADER: type | None = None


def use_fast_timestamptz_loader(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: on a PostgreSQL connection whose time zone is UTC,
    load ``timestamptz`` with psycopg's native loader."""
    global _LOADER
    if connection.vendor != "postgresql" or connection.timezone is not datetime.UTC:
        return
    # Django sets the session's TimeZone to its timezone_name when they differ; the native
    # loader follows the session, so only a UTC session may use it.
    if connection.connection.info.parameter_status("TimeZone") != "UTC":
        return
    if _LOADER is None:
        _LOADER = _utc_loader_class()
    connection.connection.adapters.register_loader(TIMESTAMPTZ, _LOADER)
