"""The command line: `lifecycle serve | diagram | demo`. The only place that wires objects."""

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
    if args.command == "diagram":
        from lifecycle.diagrams import run

        return run(args.machine, args.fmt, args.output, args.highlight, args.check)
    from lifecycle._demo import run_demo

    return run_demo()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
