"""SSRF guard: the server fetches or posts to URLs it was given (inbound media links, tenants'
webhook endpoints) only when they resolve to public addresses."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    pass


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(value.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def blocked_reason(address: str) -> str | None:
    """Why ``address`` is not a public address (``"loopback"``, ``"private"``, …), or None."""
    ip = _address(address)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "non-public"
    return None


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
        reason = blocked_reason(str(info[4][0]))
        if reason:
            raise UnsafeURL(f"{host!r} resolves to a {reason} address ({info[4][0]})")
