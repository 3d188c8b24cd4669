"""page / per_page pagination that never counts the whole table: it reads one row more than
the page to know whether another page exists."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


class PageParams(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=100_000, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=MAX_PER_PAGE, default=DEFAULT_PER_PAGE)


def paginate(queryset: QuerySet, *, page: int, per_page: int) -> tuple[list[Any], bool]:
    start = (page - 1) * per_page
    rows = list(queryset[start:start + per_page + 1])
    return rows[:per_page], len(rows) > per_page


def page_body(data: list[Any], *, page: int, per_page: int, has_more: bool) -> dict[str, Any]:
    return {"data": data, "page": page, "per_page": per_page, "has_more": has_more,
            "next_page": page + 1 if has_more else None}
