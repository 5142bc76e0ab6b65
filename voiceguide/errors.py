"""The whole VoiceGuide exception tree, in one place.

Every error a user can cause or meet derives from :class:`VoiceGuideError`.
The CLI catches that base class once and prints ``voiceguide: <message>`` on a
single line, with the error's ``exit_code``; nothing else ever reaches the user
as a traceback.

::

    VoiceGuideError                 exit 2
    ├── ContentError                 exit 1  file:line: field: message
    ├── StateError                   exit 2  position/preferences file trouble
    ├── EngineUnavailable            exit 3  a TTS/ASR engine, model or tool is missing
    │   └── AudioDeviceUnavailable   exit 3  no speaker/microphone usable
    ├── AudioFormatError             exit 2  a WAV file we cannot read
    └── ExportError                  exit 4  podcast export failed (ffmpeg, disk, permissions)
"""

from __future__ import annotations

__all__ = [
    "VoiceGuideError",
    "ContentError",
    "StateError",
    "EngineUnavailable",
    "AudioDeviceUnavailable",
    "AudioFormatError",
    "ExportError",
]


class VoiceGuideError(Exception):
    """Base class: a one-line, user-facing message."""

    exit_code = 2

    def __str__(self) -> str:  # always one line
        return " ".join(str(self.args[0] if self.args else "").split())


class ContentError(VoiceGuideError):
    """A content pack problem, located by file, line and field."""

    exit_code = 1

    def __init__(self, path: str, line: int | None, field: str, message: str):
        super().__init__(message)
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        field = f" {self.field}:" if self.field else ""
        return " ".join(f"{where}:{field} {self.message}".split())


class StateError(VoiceGuideError):
    """The saved-position/preferences file cannot be written."""


class EngineUnavailable(VoiceGuideError):
    """A speech engine, model, voice or external tool is not usable here."""

    exit_code = 3


class AudioDeviceUnavailable(EngineUnavailable):
    """No usable audio output or input device."""


class AudioFormatError(VoiceGuideError):
    """An audio file that is not 16-bit PCM WAV (or is unreadable)."""


class ExportError(VoiceGuideError):
    """The podcast export could not be completed."""

    exit_code = 4
