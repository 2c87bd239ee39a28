"""``samdyn sweep`` and ``samdyn show``: the command-line face of :mod:`samdyn.sweep`.

``samdyn sweep SPEC.toml [--out STORE] [--workers N | --scheduler ADDR] [--dry-run] [--set KEY=VALUE]``
runs (or resumes) a sweep with a progress bar and prints a summary; ``samdyn show STORE`` describes
a store. Exit codes: 0 done, 2 bad spec, store or usage (nothing was computed), 1 the run failed,
130 interrupted (rerun to resume).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from .. import checks

__all__ = ["register", "default_store"]



def default_store(spec_path) -> Path:
    """``out/sweeps/<spec file stem>``."""
    return Path("out") / "sweeps" / Path(spec_path).stem


def register(subparsers) -> None:
    """Add the ``sweep`` and ``show`` commands to the ``samdyn`` parser's subparsers."""
    p = subparsers.add_parser("sweep", help="run a sweep spec (TOML) into a resumable store",
                              description=__doc__.splitlines()[2])
    p.add_argument("spec", help="the sweep spec, a TOML file (see README: Sweeps)")
    p.add_argument("--out", help="store folder (default out/sweeps/<spec name>); rerun to resume")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=checks.cli_positive_int, metavar="N", help="start a local Dask cluster of N processes")
    where.add_argument("--scheduler", metavar="ADDR", help="use a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--dry-run", action="store_true", help="print grid size, chunks, memory and time; compute nothing")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value, e.g. --set run.steps=100 (VALUE is TOML); repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_sweep)
    s = subparsers.add_parser("show", help="describe a sweep store: dims, coords, provenance, completion")
    s.add_argument("store", help="the store folder")
    s.set_defaults(func=_show)


def _error(command: str, err: BaseException) -> None:
    print(f"samdyn {command}: {err}", file=sys.stderr)


def _sweep(args) -> int:
    from . import driver, executors, spec as spec_mod

    try:
        spec = spec_mod.load(args.spec, overrides=args.set)
        if args.dry_run:
            print(driver.describe(spec))
            return 0
        executor = None
        if args.workers or args.scheduler:
            executor = executors.Dask(workers=args.workers, scheduler=args.scheduler)
        out = args.out or default_store(args.spec)
        from .plan import make_plan
        from .store import Store

        Store.create_or_open(out, spec, make_plan(spec))  # a store of another spec is refused before any compute
    except spec_mod.SpecError as err:
        _error("sweep", err)
        return 2
    except Exception as err:  # noqa: BLE001 - e.g. a store path that cannot be written
        _error("sweep", f"failed: {type(err).__name__}: {err}")
        return 1
    try:
        summary = driver.run(spec, out, executor=executor, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"samdyn sweep: interrupted; finished chunks are kept in {out}: rerun the same command to resume",
              file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - any failure of the run: report it, exit 1
        traceback.print_exc()
        _error("sweep", f"failed: {type(err).__name__}: {err}")
        return 1
    print(summary)
    return 0


def _show(args) -> int:
    from . import driver
    from .store import StoreError

    if not Path(args.store).is_dir():
        _error("show", f"no such store folder {args.store!r}")
        return 2
    try:
        print(driver.show(args.store))
    except StoreError as err:
        _error("show", err)
        return 2
    return 0
