"""The ``voiceguide`` command: one parser, one place where errors are caught.

Each domain module registers its own subcommands through a ``register(sub)``
function listed in :data:`COMMAND_MODULES`; a handler takes the parsed
arguments and returns an exit status. Every :class:`VoiceGuideError` is caught
here, once, and printed as a single line.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import textwrap

from . import __version__
from .errors import VoiceGuideError

#: modules that contribute subcommands, in the order --help lists them
COMMAND_MODULES = [
    "voiceguide.session",   # run (the default)
    "voiceguide.content_cli",  # validate, outline
    "voiceguide.intents",   # parse
    "voiceguide.ask",       # ask
    "voiceguide.asr",       # recognize
    "voiceguide.train_recognizer",  # train-recognizer
    "voiceguide.miccheck",  # mic-check
    "voiceguide.tts",       # say, voices
    "voiceguide.podcast",   # export
    "voiceguide.doctor",    # doctor
]

DESCRIPTION = """\
VoiceGuide: a spoken guide to patient-education content. It reads short
summaries aloud and you choose where to go by voice or by keys.
Run it with no command to start the guide; add --text for keys in and plain
text out, for screen readers and braille displays.
"""

#: examples shown right after each command's description (a screen reader meets them before the usage line)
EXAMPLES = {
    None: ["voiceguide                  start the guide: speech where devices exist, else text",
           "voiceguide --text           keys in, plain text out, no time limits",
           "voiceguide doctor           what works on this machine, and what to install"],
    "validate": ["voiceguide validate                 check the shipped guide",
                 "voiceguide validate content/aml     check a pack folder"],
    "outline": ["voiceguide outline", "voiceguide outline --json"],
    "parse": ['voiceguide parse "what\'s Xospata" "hold on"', 'voiceguide parse --json "number two"'],
    "ask": ['voiceguide ask "how long does a transplant take"'],
    "recognize": ["voiceguide recognize command.wav", "voiceguide recognize --json a.wav b.wav"],
    "train-recognizer": ["voiceguide train-recognizer", "voiceguide train-recognizer --content my-pack"],
    "say": ['voiceguide say "Hello there."', 'voiceguide say --out hello.wav "Hello there."'],
    "voices": ["voiceguide voices"],
    "doctor": ["voiceguide doctor", "voiceguide doctor --strict"],
    "mic-check": ["voiceguide mic-check", "voiceguide mic-check --text --save"],
    "export": ["voiceguide export --out podcast", "voiceguide export --format epub3 --out book"],
}

#: arguments a module registered without a description (every argument is described in --help)
ARGUMENT_HELP = {
    ("recognize", "files"): "one or more WAV files, each holding one spoken command",
    ("say", "text"): "the text to speak; quote it if it has spaces",
}

#: one spelling across every help text (American, as the command is named: recognize)
_SPELLING = {"recognise": "recognize", "recogniser": "recognizer", "recognised": "recognized",
             "recognising": "recognizing"}
_SPELLING_RE = re.compile(r"\b(" + "|".join(_SPELLING) + r")(s?)\b", re.IGNORECASE)


def _spell(text: str) -> str:
    def fix(m: re.Match) -> str:
        word = _SPELLING[m.group(1).lower()]
        return (word[:1].upper() + word[1:] if m.group(1)[0].isupper() else word) + m.group(2)
    return _SPELLING_RE.sub(fix, text)


class _PlainFormatter(argparse.HelpFormatter):
    """Plain lines that read well through a screen reader: no box drawing, no braces lists, no word
    split across lines (not even at a hyphen), one spelling of recognize; indented lines (examples) kept."""

    def _split_lines(self, text, width):
        text = _spell(self._whitespace_matcher.sub(" ", text).strip())
        return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)

    def _fill_text(self, text, width, indent):
        out = []
        for line in _spell(text).splitlines():
            if line.startswith("  ") or not line.strip():
                out.append(indent + line.rstrip())
            else:
                out.append(textwrap.fill(line.strip(), width, initial_indent=indent, subsequent_indent=indent,
                                         break_long_words=False, break_on_hyphens=False))
        return "\n".join(out)

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


class _PlainParser(argparse.ArgumentParser):
    """Help in the order a screen reader should meet it: what it does, examples, then the usage line
    and the options (argparse puts a line of brackets first)."""

    def format_help(self) -> str:
        formatter = self._get_formatter()
        formatter.add_text(self.description)
        formatter.add_text(self.epilog)
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        for group in self._action_groups:
            formatter.start_section(group.title)
            formatter.add_text(group.description)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        return formatter.format_help()

    def error(self, message: str):
        """A mistyped option is one plain line and where to find help, not a usage block of brackets."""
        self.exit(2, f"{self.prog}: {message}. For help, say: {self.prog} --help\n")


def _examples(name: str | None, epilog: str | None) -> str | None:
    lines = EXAMPLES.get(name) or ([f"voiceguide {name}", f"voiceguide {name} --help"] if name else None)
    if not lines:
        return epilog
    if epilog and "Examples" in epilog:
        return epilog
    text = "Examples:\n" + "\n".join("  " + line for line in lines)
    return f"{text}\n\n{epilog}" if epilog else text


def build_parser() -> argparse.ArgumentParser:
    parser = _PlainParser(
        prog="voiceguide", description=DESCRIPTION, formatter_class=_PlainFormatter,
        epilog=_examples(None, None) + "\n\nFor help on one command, say: voiceguide COMMAND --help",
    )
    parser.add_argument("--version", action="version", version=f"voiceguide {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                help="what to do (default: run, which starts the guide)")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a domain not built yet must not break the others
            if exc.name != name:
                raise
            continue
        module.register(sub, _PlainFormatter)
    for name, command in sub.choices.items():
        command.epilog = _examples(name, command.epilog)
        for action in command._actions:
            if action.help is None:
                action.help = ARGUMENT_HELP.get((name, action.dest), action.dest.replace("_", " "))
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
