"""The command line: `lifecycle serve | diagram | demo`. The only place that wires objects."""

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
    if args.command == "diagram":
        from lifecycle.diagrams import run

        return run(args.machine, args.fmt, args.output, args.highlight, args.check)
    from lifecycle._demo import run_demo

    return run_demo()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
