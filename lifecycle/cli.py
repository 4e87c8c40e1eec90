"""The command line: `lifecycle serve | migrate | diagram | demo`. The only place that wires objects."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _version() -> str:
    """The installed distribution's name and version (the package's own when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from lifecycle.errors import DISTRIBUTION

    try:
        return f"{DISTRIBUTION} {version(DISTRIBUTION)}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        from lifecycle import __version__

        return f"{DISTRIBUTION} {__version__}"


def _parser() -> argparse.ArgumentParser:
    from lifecycle.http.options import (
        SERVE_DESCRIPTION,
        EnvironmentParser,
        add_serve_arguments,
        from_environment,
    )

    parser = EnvironmentParser(
        prog="lifecycle",
        description="Lifecycle engine for SageMaker-style inference experiments (shadow tests): "
        "an HTTP server that speaks SageMaker's API, the diagrams of its state machines, and "
        "a demonstration. `lifecycle COMMAND --help` describes each command.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=_version(),
        help="print the installed distribution and its version, and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="serve the SageMaker inference-experiment API (AWS JSON 1.1) over HTTP",
        description=SERVE_DESCRIPTION,
    )

    add_serve_arguments(serve)
    from_environment(serve)

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
    from_environment(migrate)  # LIFECYCLE_STORE names the store serve and migrate share

    diagram = sub.add_parser(
        "diagram",
        help="draw a machine from the transition tables",
        description="Draw the experiment or the variant machine from the transition tables the "
        "engine runs on (Mermaid, Graphviz DOT, SVG through Graphviz's dot, or a Markdown "
        "matrix), or check a directory of committed diagrams against the tables.",
    )
    diagram.add_argument(
        "--machine",
        help="experiment or variant (default: experiment; with --check, every machine)",
    )
    diagram.add_argument(
        "--format",
        dest="fmt",
        help="mermaid, dot, svg or matrix (default: mermaid; with --check, every format)",
    )
    diagram.add_argument("--output", help="write to this file instead of standard output")
    diagram.add_argument("--highlight", metavar="STATUS", help="mark one status")
    diagram.add_argument(
        "--check",
        metavar="DIR",
        help="compare DIR's diagrams with the tables (only --machine's or --format's files "
        "when given; README.md and rules.md belong to neither); exit 1 naming each file that "
        "differs and the command that rewrites them",
    )

    sub.add_parser(
        "demo",
        help="run one experiment from create to a promoting stop, printing each status",
        description="Run one shadow test in memory, from CreateInferenceExperiment to a stop "
        "that promotes the shadow variant, printing each status the experiment and its "
        "variants pass through.",
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
