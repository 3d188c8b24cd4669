"""SSRF guard: the server fetches or posts to user-supplied URLs (media links, tenants'
webhook endpoints) only when they resolve to public addresses."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    pass


def check_public_url(url: str, *, allowed_hosts: set[str] | None = None) -> None:
    """Raise UnsafeURL unless ``url`` is http(s) and every address its host resolves to is
    public. ``allowed_hosts`` (host or host:port) are trusted as configured, e.g. the emulator."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"{url!r} is not an http(s) URL")
    host = parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else host
    if allowed_hosts and (host in allowed_hosts or netloc in allowed_hosts):
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeURL(f"cannot resolve {host!r}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not address.is_global:
            raise UnsafeURL(f"{host!r} resolves to a non-public address ({address})")
