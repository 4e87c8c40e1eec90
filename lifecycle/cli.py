"""The command line: `lifecycle serve | migrate | diagram | demo`. The only place that wires objects."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifecycle", description="Lifecycle engine for inference experiments (shadow tests)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="serve the SageMaker inference-experiment API (AWS JSON 1.1) over HTTP"
    )
    from lifecycle.http.options import add_serve_arguments

    add_serve_arguments(serve)

    migrate = sub.add_parser(
        "migrate",
        help="bring a store's schema to this build's version (serve does it too as it starts)",
        description=(
            "Apply the store's pending schema migrations, forward only, each step in a "
            "transaction under a lock that other replicas wait for, and print the version "
            "before and after. Run it before a deploy whose servers open the store with "
            "?migrate=false. Exits 1, changing nothing, on a schema newer than this build "
            "knows or a database that holds something else."
        ),
    )
    migrate.add_argument(
        "--store",
        required=True,
        metavar="URL",
        help="sqlite:///path or postgresql://...[?schema=NAME], as serve takes it",
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="print the steps that would run; run none"
    )

    diagram = sub.add_parser("diagram", help="draw a machine from the transition tables")
    diagram.add_argument(
        "--machine", default="experiment", help="experiment or variant (default: experiment)"
    )
    diagram.add_argument(
        "--format",
        dest="fmt",
        default="mermaid",
        help="mermaid, dot, svg or matrix (default: mermaid)",
    )
    diagram.add_argument("--output", help="write to this file instead of standard output")
    diagram.add_argument("--highlight", metavar="STATUS", help="mark one status")
    diagram.add_argument(
        "--check",
        metavar="DIR",
        help="compare DIR's diagrams with the tables; exit 1 naming each file that differs",
    )

    sub.add_parser(
        "demo", help="run one experiment from create to a promoting stop, printing each status"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        from lifecycle.http.serve import run_serve

        return run_serve(args)
    if args.command == "migrate":
        return _migrate(args.store, dry_run=args.dry_run)
    if args.command == "diagram":
        from lifecycle.diagrams import run

        return run(args.machine, args.fmt, args.output, args.highlight, args.check)
    from lifecycle._demo import run_demo

    return run_demo()


def _migrate(url: str, *, dry_run: bool) -> int:
    from lifecycle.errors import LifecycleError
    from lifecycle.stores import migrate_store

    try:
        report = migrate_store(url, dry_run=dry_run)
    except (LifecycleError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
