"""Flags that also come from the environment: ``--settle-seconds`` from ``LIFECYCLE_SETTLE_SECONDS``.

:func:`from_environment` gives every flag of a parser (every flag it has when
called, so a flag added later gets its variable too) the variable
``LIFECYCLE_`` + its ``dest`` in capitals, and says so in the flag's help.
The parser must be an :class:`EnvironmentParser`, which reads the variables
of the flags that were not given once the command line is parsed:

- a flag on the command line wins, and its variable is then not read; a
  required flag may be left out when its variable is set;
- an empty variable counts as unset;
- the value goes through the flag's own type and choices, so it is checked
  exactly as the flag's would be, and a bad one is a usage error (exit 2)
  that names the variable;
- a boolean flag (``store_true``, ``store_false``, ``--x/--no-x``) reads
  ``1``, ``true``, ``yes``, ``on`` or ``0``, ``false``, ``no``, ``off``, in
  any case, as the value of its ``dest``;
- a repeatable flag (``append``, ``extend``, ``nargs="+"``) reads a
  comma-separated list, each item checked as one use of the flag.

The variables are read when :func:`from_environment` is called (``lifecycle``
builds its parser on each run), so a ``lifecycle diagram`` is never refused
for a bad serve variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ENV_PREFIX", "EnvironmentParser", "environment_variable", "from_environment"]

#: what every variable's name starts with
ENV_PREFIX = "LIFECYCLE_"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NOT_FLAGS = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


class _Unset(list[Any]):
    """The default of a flag whose variable is set: the flag was not given while the
    parsed value is still this very object. A list, so that a repeatable flag given
    on the command line appends to a copy of it instead of failing."""

    def __init__(self, variable: str, text: str) -> None:
        super().__init__()
        self.variable = variable
        self.text = text


def environment_variable(action: argparse.Action) -> str:
    """The variable that stands in for ``action``'s flag: ``LIFECYCLE_`` + its ``dest``."""
    return ENV_PREFIX + action.dest.upper()


def _kind(action: argparse.Action) -> str:
    """``bool``, ``list`` or ``one``: how a variable's text becomes the flag's value."""
    if isinstance(action, argparse.BooleanOptionalAction) or (
        action.nargs == 0 and isinstance(action.const, bool)
    ):
        return "bool"
    if action.nargs == 0:
        raise TypeError(
            f"{'/'.join(action.option_strings)} takes no value and is not a boolean flag: "
            "it has no spelling as an environment variable"
        )
    several = action.nargs not in (None, "?")
    if isinstance(action, argparse._AppendAction) and not isinstance(
        action, argparse._ExtendAction
    ):
        if several:
            raise TypeError(
                f"{'/'.join(action.option_strings)} repeats a flag of several values: "
                "it has no spelling as an environment variable"
            )
        return "list"
    if action.nargs in ("+", "*"):
        return "list"
    if several:
        raise TypeError(
            f"{'/'.join(action.option_strings)} takes nargs={action.nargs!r}: "
            "it has no spelling as an environment variable"
        )
    return "one"


def from_environment(
    parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None
) -> None:
    """Let every flag ``parser`` has also come from its variable (see the module's doc)."""
    if not isinstance(parser, EnvironmentParser):
        raise TypeError("from_environment() needs an EnvironmentParser, which reads the variables")
    environ = os.environ if environ is None else environ
    for action in parser._actions:
        if not action.option_strings or isinstance(action, _NOT_FLAGS):
            continue
        _kind(action)  # refuse, while the parser is built, a flag with no spelling
        variable = environment_variable(action)
        if action.help is not argparse.SUPPRESS:
            shown = str(action.default).replace("%", "%%")
            help_text = (action.help or "").replace("%(default)s", shown)
            action.help = f"{help_text} (env {variable})".lstrip()
        text = environ.get(variable, "")
        if text:
            action.default = _Unset(variable, text)
            action.required = False  # a required flag may come from its variable instead


class EnvironmentParser(argparse.ArgumentParser):
    """An ArgumentParser that, after parsing, reads the variables :func:`from_environment`
    gave to the flags that were not on the command line. Its subcommands' parsers are
    EnvironmentParsers too (argparse makes them of the parent's class)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        for action in self._actions:
            unset = action.default
            if not isinstance(unset, _Unset):
                continue
            variable, text = unset.variable, unset.text
            value = getattr(parsed, action.dest, None)
            if value is unset:  # not on the command line: the variable's value
                setattr(parsed, action.dest, self._from_text(action, variable, text))
            elif isinstance(value, _Unset):  # a repeatable flag given: its own values only
                setattr(parsed, action.dest, list(value))
        return parsed, rest

    def _from_text(self, action: argparse.Action, variable: str, text: str) -> Any:
        kind = _kind(action)
        if kind == "bool":
            word = text.strip().lower()
            if word not in _TRUE + _FALSE:
                self.error(
                    f"environment variable {variable}: {text!r} is not one of "
                    f"{', '.join(_TRUE)} (on) or {', '.join(_FALSE)} (off)"
                )
            return word in _TRUE
        if kind == "one":
            return self._one(action, variable, text)
        items = [item.strip() for item in text.split(",")]
        if "" in items:
            self.error(
                f"environment variable {variable}: {text!r} has an empty item; "
                "separate the values with single commas"
            )
        return [self._one(action, variable, item) for item in items]

    def _one(self, action: argparse.Action, variable: str, text: str) -> Any:
        """``text`` through the flag's type and choices, as if it followed the flag."""
        convert = action.type
        try:
            value = text if convert is None else convert(text)  # type: ignore[operator]
        except argparse.ArgumentTypeError as exc:
            self.error(f"environment variable {variable}: {exc}")
        except (TypeError, ValueError):
            name = getattr(convert, "__name__", "value")
            self.error(f"environment variable {variable}: {text!r} is not a valid {name}")
        if action.choices is not None and value not in action.choices:
            known = ", ".join(map(str, action.choices))
            self.error(f"environment variable {variable}: {text!r} is not one of {known}")
        return value
