"""argparse that says a mistake in one line, by the command it belongs to: a misspelt
option names the command and the closest option (``did you mean``)."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, with mistakes said in one line by the command they belong to: a
    misspelled option names the command and the closest option (``did you mean``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        self.refuse_misspelt(list(sys.argv[1:] if args is None else args))
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            owner = self.commands.get(getattr(namespace, "command", None) or "", self)
            owner.error(unrecognized(extras, owner))
        return namespace

    def refuse_misspelt(self, argv: list[str]) -> None:
        """A long option the command does not have is said first, with the closest one,
        even when required options are missing too (argparse would name only those)."""
        command = next((token for token in argv if token in self.commands), None)
        if command is None:
            return
        owner = self.commands[command]
        options = [o for action in owner._actions for o in action.option_strings]
        for token in argv[argv.index(command) + 1 :]:
            if token == "--":
                return
            name = token.split("=")[0]
            # argparse takes any unambiguous prefix of an option: those are not mistakes.
            if name.startswith("--") and not any(o.startswith(name) for o in options):
                owner.error(unrecognized([token], owner))


def unrecognized(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """What the user typed that no option of ``parser`` takes, with the closest option."""
    first = extras[0]
    if not first.startswith("-"):
        return f"unexpected argument {first!r}"
    options = [o for action in parser._actions for o in action.option_strings]
    close = difflib.get_close_matches(first.split("=")[0], options, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]}?" if close else ""
    return f"unrecognized option {first}{hint}"
