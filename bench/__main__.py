"""``python -m bench [NAME ...] [--quick] [-p NAME.KEY=VALUE ...]`` (``make bench``).

Chooses PostgreSQL + Redis when they answer on 127.0.0.1 (else SQLite + the filesystem broker
under ``var/bench/``), creates a fresh database, runs the benchmarks one after the other, prints
a table and writes ``var/bench/<name>.json``. Exit status: 0 when every benchmark measured
(missed targets included -- a benchmark is a measurement), 1 when one broke (a process died,
work was lost, a wait timed out), 130 when interrupted. Logs of every process: var/bench/logs/.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import datetime
from types import ModuleType
from typing import Any

from . import BENCHMARKS, BenchmarkBroken, Result, load
from .procs import (
    LOG_DIR,
    SCRUBBED,
    Context,
    cpu_shares,
    cpu_snapshot,
    migrate,
    reset_state,
    select_environment,
)
from .report import broken_banner, table, write_json

# Above this share of the machine used by processes the bench did not start, say so.
FOREIGN_CPU_WARNING = 0.05


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run, in the order given (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every step")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="override a benchmark parameter, e.g. -p intake.statuses_per_post=100")
    parser.add_argument("--database", choices=("auto", "postgresql", "sqlite"), default="auto")
    parser.add_argument("--broker", choices=("auto", "redis", "filesystem"), default="auto")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their parameters, run nothing")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if len(set(args.names)) != len(args.names):
        parser.error("a benchmark is named twice")
    return args


def _coerce(default: Any, text: str) -> Any:
    if isinstance(default, bool):
        if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"not a boolean: {text!r}")
        return text.lower() in ("1", "true", "yes")
    return type(default)(text)


def _params(modules: dict[str, ModuleType], overrides: list[str], quick: bool) -> dict[str, dict[str, Any]]:
    params = {name: {**module.PARAMS, **(module.QUICK if quick else {})} for name, module in modules.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        name, dot, param = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"-p wants NAME.KEY=VALUE, got {item!r}")
        if name not in modules:
            raise SystemExit(f"-p {item}: {name!r} is not among the benchmarks being run ({', '.join(modules)})")
        if param not in modules[name].PARAMS:
            raise SystemExit(f"-p {item}: {name} has no parameter {param!r} ({', '.join(modules[name].PARAMS)})")
        try:
            params[name][param] = _coerce(modules[name].PARAMS[param], text)
        except ValueError as exc:
            raise SystemExit(f"-p {item}: {exc}") from None
    return params


def _use_environment(env: dict[str, str]) -> None:
    """This process becomes one of the run's Django processes (same settings as the others)."""
    for key in SCRUBBED:
        os.environ.pop(key, None)
    os.environ.update(env)
    import django

    django.setup()


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    names = args.names or list(BENCHMARKS)
    environment = select_environment(database=args.database, broker=args.broker)
    signal.signal(signal.SIGTERM, _terminate)
    if args.list:
        _use_environment(environment.env)
        for name in BENCHMARKS:
            module = load(name)
            print(f"{name}: {module.SUMMARY}")
            for key, default in module.PARAMS.items():
                quick = f" (--quick: {module.QUICK[key]})" if key in module.QUICK else ""
                print(f"    {name}.{key} = {default}{quick}")
        return 0

    header = "\n".join(f"{key}: {value}" for key, value in environment.describe().items())
    print(header)
    reset_state(environment)
    _use_environment(environment.env)
    modules = {name: load(name) for name in names}
    params = _params(modules, args.param, args.quick)
    print("migrating a fresh database ...", flush=True)
    migrate(environment)
    ctx = Context(environment=environment, quick=args.quick)

    results: list[Result] = []
    try:
        for name in names:
            print(f"\n== {name}{' (quick)' if args.quick else ''}: {modules[name].SUMMARY}", flush=True)
            cpu = cpu_snapshot()
            started_at, started = datetime.now().astimezone(), time.monotonic()
            try:
                result = modules[name].run(ctx, params[name])
            except BenchmarkBroken as exc:
                result = Result(benchmark=name, params=params[name], broken=[str(exc)])
            shares = cpu_shares(cpu)
            result.details["machine_cpu_shares"] = shares
            foreign = shares["foreign"]
            if foreign > FOREIGN_CPU_WARNING:
                warning = (f"other processes used {foreign:.0%} of the machine's CPU during this benchmark: "
                           "its figures are low")
                result.details["warning"] = warning
                print(f"   WARNING: {warning}", flush=True)
            path = write_json(result, environment=environment, quick=args.quick, started_at=started_at,
                              duration_s=time.monotonic() - started)
            results.append(result)
            print(f"   done in {time.monotonic() - started:.0f} s -> {path}", flush=True)
            for process, line in result.details.get("processes", {}).items():
                print(f"   {process}: {line}")
    except KeyboardInterrupt:
        print("\ninterrupted; every process the bench started has been stopped", file=sys.stderr)
        if results:
            print(table(results))
        return 130

    print(f"\n{header}\n")
    print(table(results))
    misses = [f"{r.benchmark}: {f.name}" for r in results for f in r.misses]
    if misses:
        print(f"\nMISSED TARGETS ({len(misses)}): " + "; ".join(misses))
    for result in results:
        if "warning" in result.details:
            print(f"WARNING {result.benchmark}: {result.details['warning']}")
    banner = broken_banner(results)
    if banner:
        print("\n" + banner, file=sys.stderr)
        print(f"logs: {LOG_DIR}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
