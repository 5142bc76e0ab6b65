"""The ``voiceguide`` command: one parser, one place where errors are caught.

Each domain module registers its own subcommands through a ``register(sub)``
function listed in :data:`COMMAND_MODULES`; a handler takes the parsed
arguments and returns an exit status. Every :class:`VoiceGuideError` is caught
here, once, and printed as a single line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import VoiceGuideError

#: modules that contribute subcommands, in the order --help lists them
COMMAND_MODULES = [
    "voiceguide.session",   # run (the default)
    "voiceguide.content_cli",  # validate, outline
    "voiceguide.intents",   # parse
    "voiceguide.asr",       # recognize
    "voiceguide.tts",       # say, voices
    "voiceguide.podcast",   # export
    "voiceguide.doctor",    # doctor
]

DESCRIPTION = """\
VoiceGuide: a spoken guide to patient-education content. It reads short
summaries aloud and you choose where to go by voice or by keys.
Run it with no command to start the guide.
"""


class _PlainFormatter(argparse.HelpFormatter):
    """Plain lines that read well through a screen reader: no box drawing, no braces lists."""

    def _format_action_invocation(self, action):  # "-r, --rate WPM" rather than "-r WPM, --rate WPM"
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return ", ".join(action.option_strings) + " " + metavar

    def _metavar_formatter(self, action, default_metavar):  # choices as "auto|voice|keys", not "{auto,voice,keys}"
        if action.metavar is None and action.choices is not None and not isinstance(action.choices, dict):
            result = "|".join(map(str, action.choices))
            return lambda size: (result,) * size if size else result
        return super()._metavar_formatter(action, default_metavar)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voiceguide", description=DESCRIPTION, formatter_class=_PlainFormatter,
        epilog="For help on one command, say: voiceguide COMMAND --help",
    )
    parser.add_argument("--version", action="version", version=f"voiceguide {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a domain not built yet must not break the others
            if exc.name != name:
                raise
            continue
        module.register(sub, _PlainFormatter)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()
    if not argv or (argv[0] not in commands and argv[0] not in {"-h", "--help", "--version"}):
        argv.insert(0, "run")
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VoiceGuideError as exc:
        print(f"voiceguide: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("voiceguide: stopped.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
