"""The command line: plain help for screen readers, errors as one line, every command present."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from voiceguide.cli import build_parser, main
from voiceguide.errors import ContentError, VoiceGuideError

EXPECTED = ["run", "validate", "outline", "parse", "recognize", "say", "voices", "export", "doctor"]
BOX = re.compile(r"[\u2500-\u257f\u2580-\u259f{}]")


def cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voiceguide", *args], capture_output=True, text=True,
                          input=input, timeout=120)


def test_every_command_is_registered():
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    assert set(EXPECTED) <= set(choices), sorted(set(EXPECTED) - set(choices))


@pytest.mark.parametrize("command", [None, *EXPECTED])
def test_help_is_plain_lines(command):
    proc = cli(*([command] if command else []), "--help")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "usage: voiceguide" in text
    assert not BOX.search(text), f"box drawing or brace lists in help: {BOX.findall(text)}"
    assert "\x1b[" not in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_errors_are_caught_once_and_printed_on_one_line(capsys, monkeypatch):
    parser = build_parser()

    def boom(args):
        raise ContentError("pack/guide.yaml", 3, "title", "expected non-empty text")

    monkeypatch.setattr("voiceguide.cli.build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["validate"].set_defaults(func=boom)
    assert main(["validate"]) == ContentError.exit_code
    err = capsys.readouterr().err
    assert err == "voiceguide: pack/guide.yaml:3: title: expected non-empty text\n"


def test_error_messages_are_single_line():
    assert str(VoiceGuideError("two\nlines")) == "two lines"


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0 and re.match(r"voiceguide \d+\.\d+\.\d+", proc.stdout)


def test_bare_options_run_the_guide():
    # `voiceguide --text` is `voiceguide run --text`: it starts the guide and ends cleanly at EOF.
    proc = cli("--text", "--state", "/dev/null/nope-state.json", input="")
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "the guide said nothing"


def _all_helps():
    parser = build_parser()
    yield None, parser, parser.format_help()
    for name, command in parser._subparsers._group_actions[0].choices.items():
        yield name, command, command.format_help()


def test_help_starts_with_a_plain_description_and_examples_not_a_usage_block():
    for name, parser, text in _all_helps():
        first = text.strip().splitlines()[0]
        assert not first.lower().startswith("usage"), name
        assert text.index("Examples:") < text.index("usage:"), name


def test_help_describes_every_argument_splits_no_word_and_spells_recognize_one_way():
    import argparse

    for name, parser, text in _all_helps():
        for action in parser._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
        lines = text.splitlines()
        for line in lines:
            assert not re.search(r"[A-Za-z]-$", line.rstrip()), f"{name}: a word split at a hyphen: {line!r}"
        assert "recognis" not in text.lower(), name


def test_top_level_help_names_text_mode():
    assert "--text" in build_parser().format_help()


@pytest.mark.parametrize("args", [["export", "--format", "nope"], ["run", "--rate"], ["say", "--bogus", "x"]])
def test_a_mistyped_option_is_one_line_not_a_usage_block(args):
    proc = cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voiceguide") and "--help" in lines[0], proc.stderr
    assert "usage:" not in proc.stderr and "Traceback" not in proc.stderr


def test_get_recognizer_with_its_arguments_swapped_says_so_in_one_short_line():
    from voiceguide.asr import get_recognizer
    from voiceguide.content import load_guide

    with pytest.raises(TypeError) as err:
        get_recognizer("hybrid", load_guide(None))
    message = str(err.value)
    assert "\n" not in message and len(message) < 200, message
    assert "get_recognizer(guide, name)" in message
