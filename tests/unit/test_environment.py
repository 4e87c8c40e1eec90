"""Flags from the environment (``lifecycle.http.options.from_environment``), on parsers of
every kind of flag; the serve flags themselves are held in tests/integration/test_server_cli.py."""

from __future__ import annotations

import argparse

import pytest

from lifecycle.http.options import EnvironmentParser, environment_variable, from_environment


def _port(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number")
    return int(text)


def parser_with(environ: dict[str, str]) -> EnvironmentParser:
    parser = EnvironmentParser(prog="tool")
    parser.add_argument("--port", type=_port, default=8080, help="port (default %(default)s)")
    parser.add_argument("--level", choices=("info", "debug"), default="info")
    parser.add_argument("--ratio", type=float)
    parser.add_argument("--verbose", action="store_true", help="say more")
    parser.add_argument("--no-cache", dest="cache", action="store_false")
    parser.add_argument("--color", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--tag", action="append", type=_port)
    parser.add_argument("--name", nargs="+")
    from_environment(parser, environ)
    return parser


def parse(environ: dict[str, str], *argv: str) -> dict[str, object]:
    return vars(parser_with(environ).parse_args(list(argv)))


def usage_error(environ: dict[str, str], capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        parse(environ, *argv)
    assert caught.value.code == 2
    err: str = capsys.readouterr().err
    return err.splitlines()[-1]


DEFAULTS = {
    "port": 8080,
    "level": "info",
    "ratio": None,
    "verbose": False,
    "cache": True,
    "color": True,
    "tag": None,
    "name": None,
}


def test_without_variables_the_defaults_stand() -> None:
    assert parse({}) == DEFAULTS


def test_each_flag_comes_from_lifecycle_and_its_dest_in_capitals() -> None:
    environ = {
        "LIFECYCLE_PORT": "9090",
        "LIFECYCLE_LEVEL": "debug",
        "LIFECYCLE_RATIO": "0.5",
        "LIFECYCLE_VERBOSE": "yes",
        "LIFECYCLE_CACHE": "off",
        "LIFECYCLE_COLOR": "FALSE",
        "LIFECYCLE_TAG": "1, 2,3",
        "LIFECYCLE_NAME": "a,b",
    }
    assert parse(environ) == {
        "port": 9090,
        "level": "debug",
        "ratio": 0.5,
        "verbose": True,
        "cache": False,
        "color": False,
        "tag": [1, 2, 3],
        "name": ["a", "b"],
    }


def test_a_flag_on_the_command_line_wins_and_its_variable_is_not_read() -> None:
    environ = {
        "LIFECYCLE_PORT": "not a port",
        "LIFECYCLE_VERBOSE": "maybe",
        "LIFECYCLE_COLOR": "0",
        "LIFECYCLE_TAG": "1,2",
        "LIFECYCLE_NAME": "a",
    }
    parsed = parse(environ, "--port", "1", "--verbose", "--color", "--tag", "7", "--name", "z")
    assert (parsed["port"], parsed["verbose"], parsed["color"]) == (1, True, True)
    assert (parsed["tag"], parsed["name"]) == ([7], ["z"])
    assert type(parsed["tag"]) is list


def test_an_empty_variable_counts_as_unset() -> None:
    assert parse({"LIFECYCLE_PORT": "", "LIFECYCLE_VERBOSE": "", "LIFECYCLE_TAG": ""}) == DEFAULTS


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"LIFECYCLE_PORT": "http"}, "LIFECYCLE_PORT: 'http' is not a port number"),
        ({"LIFECYCLE_LEVEL": "loud"}, "LIFECYCLE_LEVEL: 'loud' is not one of info, debug"),
        ({"LIFECYCLE_RATIO": "half"}, "LIFECYCLE_RATIO: 'half' is not a valid float"),
        ({"LIFECYCLE_VERBOSE": "maybe"}, "LIFECYCLE_VERBOSE: 'maybe' is not one of 1, true"),
        ({"LIFECYCLE_TAG": "1,x"}, "LIFECYCLE_TAG: 'x' is not a port number"),
        ({"LIFECYCLE_TAG": "1,,2"}, "LIFECYCLE_TAG: '1,,2' has an empty item"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_variable(
    environ: dict[str, str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = usage_error(environ, capsys)
    assert line.startswith(f"tool: error: environment variable {words}"), line


def test_the_help_names_each_variable_and_the_built_in_default() -> None:
    parser = parser_with({"LIFECYCLE_PORT": "9090"})
    text = " ".join(parser.format_help().split())
    assert "port (default 8080) (env LIFECYCLE_PORT)" in text  # not the variable's value
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert f"(env {environment_variable(action)})" in text, action.dest


def test_a_flag_with_no_spelling_is_refused_while_the_parser_is_built() -> None:
    for kwargs in ({"action": "count"}, {"nargs": 2}, {"action": "append", "nargs": 2}):
        parser = EnvironmentParser(prog="tool")
        parser.add_argument("--x", **kwargs)
        with pytest.raises(TypeError, match="no spelling as an environment variable"):
            from_environment(parser, {})


def test_a_plain_parser_is_refused_it_would_not_read_the_variables() -> None:
    with pytest.raises(TypeError, match="EnvironmentParser"):
        from_environment(argparse.ArgumentParser(), {})


def test_a_subcommand_reads_its_variables_through_the_parent() -> None:
    parser = EnvironmentParser(prog="tool")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--port", type=_port, default=8080)
    from_environment(serve, {"LIFECYCLE_PORT": "9090"})
    sub.add_parser("other")
    assert parser.parse_args(["serve"]).port == 9090
    assert parser.parse_args(["serve", "--port", "1"]).port == 1
    assert not hasattr(parser.parse_args(["other"]), "port")


def test_a_required_flag_may_come_from_its_variable_instead() -> None:
    def parser(environ: dict[str, str]) -> EnvironmentParser:
        made = EnvironmentParser(prog="tool")
        made.add_argument("--store", required=True)
        from_environment(made, environ)
        return made

    assert parser({"LIFECYCLE_STORE": "memory://"}).parse_args([]).store == "memory://"
    assert parser({"LIFECYCLE_STORE": "memory://"}).parse_args(["--store", "x"]).store == "x"
    with pytest.raises(SystemExit):
        parser({}).parse_args([])
