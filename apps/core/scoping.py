"""Tenant scope: which tenant the current code runs for.

The scope lives in a ContextVar, so it is per thread and per asyncio task. It is entered
explicitly (``tenant_scope``) from the URL (``tenant_member_required``), an API key, a task's
``tenant_id`` (``with_tenant_scope``) or a webhook's provider id -- never from "the current tenant"
kept in a session, which is a UI preference and can drift.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TypeVar

_current_tenant_id: ContextVar[int | None] = ContextVar("parley_tenant_id", default=None)

F = TypeVar("F", bound=Callable[..., Any])


class TenantScopeError(RuntimeError):
    """A tenant-owned table was queried with no tenant in scope."""


def _tenant_pk(tenant_or_id: Any) -> int:
    pk = getattr(tenant_or_id, "pk", tenant_or_id)
    if pk is None or isinstance(pk, bool) or not isinstance(pk, int):
        raise TenantScopeError(f"tenant_scope needs a saved tenant or its integer id, got {tenant_or_id!r}")
    return pk


def current_tenant_id() -> int | None:
    return _current_tenant_id.get()


def require_tenant_id() -> int:
    tenant_id = _current_tenant_id.get()
    if tenant_id is None:
        raise TenantScopeError(
            "No tenant in scope. Enter one with tenant_scope(tenant), or query explicitly with "
            ".for_tenant(tenant) / .unscoped()."
        )
    return tenant_id


def enter_tenant_scope(tenant_or_id: Any) -> Token:
    """For interfaces that cannot wrap a block (DRF's initial/finalize_response); pair with
    exit_tenant_scope(token)."""
    return _current_tenant_id.set(_tenant_pk(tenant_or_id))


def exit_tenant_scope(token: Token) -> None:
    _current_tenant_id.reset(token)


@contextmanager
def tenant_scope(tenant_or_id: Any) -> Iterator[int]:
    token = _current_tenant_id.set(_tenant_pk(tenant_or_id))
    try:
        yield _current_tenant_id.get()
    finally:
        _current_tenant_id.reset(token)


def with_tenant_scope(arg: str = "tenant_id") -> Callable[[F], F]:
    """Decorate a task (or any function) whose keyword argument ``arg`` names the tenant."""

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if arg not in kwargs:
                raise TenantScopeError(f"{func.__qualname__} must be called with {arg}=<tenant id>")
            with tenant_scope(kwargs[arg]):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
