"""Reachability of the database and the broker, for /healthz."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection


def check_database() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # reported, not swallowed: the caller turns it into a 503
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    scheme = url.split("://", 1)[0]
    started = time.perf_counter()
    if scheme == "filesystem":
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        ok = folder.is_dir() and _writable(folder)
        result: dict[str, Any] = {"ok": ok, "transport": scheme}
        if not ok:
            result["error"] = f"broker folder {folder} is missing or not writable"
        return result
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return {"ok": False, "transport": scheme, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "transport": scheme, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _writable(folder: Path) -> bool:
    probe = folder / ".healthz"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True
