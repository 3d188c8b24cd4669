"""The table ``python -m bench`` prints and the ``var/bench/<name>.json`` files it writes."""

from __future__ import annotations

import json
import math
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import Figure, Result
from .procs import BENCH_DIR, Environment

HEADER = ("benchmark", "figure", "value", "floor", "ratio", "target", "ok")


def number(value: float | int | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 100:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _ok(figure: Figure) -> str:
    if figure.ok is None:
        return ""
    return "✓" if figure.ok else "MISS"


def rows(results: list[Result]) -> list[tuple[str, ...]]:
    out = []
    for result in results:
        if not result.figures:
            out.append((result.benchmark, "(no figures: broken)", "", "", "", "", "BROKEN"))
        for figure in result.figures:
            floor = number(figure.floor) if figure.floor is not None else ""
            if floor and figure.floor_name:
                floor = f"{floor} ({figure.floor_name})"
            ratio = f"{figure.ratio:.2f}" if figure.ratio is not None and not math.isnan(figure.ratio) else ""
            out.append((result.benchmark, figure.name, number(figure.value, figure.unit), floor, ratio,
                        figure.target, _ok(figure)))
    return out


def table(results: list[Result]) -> str:
    body = rows(results)
    widths = [max(len(cells[i]) for cells in [HEADER, *body]) for i in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(HEADER), separator, *(line(cells) for cells in body)])


def _clean(value: Any) -> Any:
    """JSON without NaN (which strict parsers refuse)."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(result: Result, *, environment: Environment, quick: bool, started_at: datetime,
               duration_s: float) -> Path:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{result.benchmark}.json"
    document = {
        "benchmark": result.benchmark,
        "started_at": started_at.astimezone(UTC).isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 1),
        "quick": quick,
        "environment": {**environment.describe(), "python": sys.version.split()[0], "machine": platform.platform()},
        "params": result.params,
        "figures": [figure.as_dict() for figure in result.figures],
        "misses": [figure.name for figure in result.misses],
        "broken": result.broken,
        "details": result.details,
    }
    path.write_text(json.dumps(_clean(document), indent=2, default=str) + "\n")
    return path


def broken_banner(results: list[Result]) -> str:
    lines = []
    for result in results:
        for reason in result.broken:
            lines.append(f"!!! BROKEN {result.benchmark}: {reason}")
    if not lines:
        return ""
    bar = "!" * 78
    return "\n".join([bar, *lines, bar])
