"""Parley's benchmarks: ``make bench`` / ``python -m bench [NAME ...] [--quick]``.

Each benchmark is a module in this package with

* ``SUMMARY``: one line for ``--list``;
* ``PARAMS``: its parameters and their defaults, ``QUICK``: the overrides for ``--quick``
  (``-p NAME.KEY=VALUE`` overrides either from the command line);
* ``run(ctx, params) -> Result``: start the processes it needs through ``ctx.processes()``,
  load, measure, and return its figures. Every figure that has a floor carries it, because this
  machine's speed drifts and the ratio is what counts (design.md, "Targets").

Benchmark modules import Django models at module level, so they are imported only after
``bench.__main__`` has chosen the database and broker and set Django up. To add a benchmark,
write the module and add one line to :data:`BENCHMARKS`.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

# name -> module; run in this order when no names are given.
BENCHMARKS: dict[str, str] = {
    "intake": "bench.intake",
    "send": "bench.send",
    "api": "bench.api",
    "inbox": "bench.inbox",
    "campaign": "bench.campaign",
}


def load(name: str) -> ModuleType:
    module = importlib.import_module(BENCHMARKS[name])
    for attribute in ("SUMMARY", "PARAMS", "QUICK", "run"):
        if not hasattr(module, attribute):
            raise TypeError(f"benchmark module {module.__name__} has no {attribute}")
    unknown = set(module.QUICK) - set(module.PARAMS)
    if unknown:
        raise TypeError(f"{module.__name__}.QUICK names unknown parameters: {sorted(unknown)}")
    return module


class BenchmarkBroken(RuntimeError):
    """The benchmark could not measure what it set out to (a process died, work was lost, a
    wait timed out). Unlike a missed target, this makes ``python -m bench`` exit non-zero."""


@dataclass
class Figure:
    """One row of the table. ``ok`` is None for figures that have no target (information)."""

    name: str
    value: float | int | None
    unit: str = ""
    floor: float | int | None = None
    floor_name: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    benchmark: str
    params: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    # Everything else worth keeping in the JSON file: raw measurements, process layout, timings.
    details: dict[str, Any] = field(default_factory=dict)
    # Why the measurement itself is not trustworthy (lost work, ...); empty when it is.
    broken: list[str] = field(default_factory=list)

    def add(self, name: str, value: float | int | None, unit: str = "", *, floor: float | int | None = None,
            floor_name: str = "", target: str = "", ok: bool | None = None, ratio: float | None = None) -> Figure:
        if ratio is None and floor not in (None, 0) and value is not None:
            ratio = value / floor
        figure = Figure(name=name, value=value, unit=unit, floor=floor, floor_name=floor_name, ratio=ratio,
                        target=target, ok=ok)
        self.figures.append(figure)
        return figure

    @property
    def misses(self) -> list[Figure]:
        return [f for f in self.figures if f.ok is False]
