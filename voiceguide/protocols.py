"""Protocols and the small value types shared between domains.

Backends (text, file, espeak, pyttsx3, piper, keyboard, microphone…) implement
these; the dialog shell only ever talks to the Protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Protocol, Sequence, runtime_checkable

__all__ = [
    "Audio",
    "Voice",
    "Heard",
    "Silence",
    "EndOfInput",
    "UserInput",
    "TTSEngine",
    "Speaker",
    "Listener",
    "END_PAUSE",
]

END_PAUSE = 0.3
"""Seconds of quiet that end a spoken phrase, by default: short, for a quick turn (``--end-pause``)."""


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit little-endian PCM audio."""

    pcm: bytes
    """Raw samples, 2 bytes each."""
    sample_rate: int
    """Samples per second."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.pcm) / 2 / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class Voice:
    """A voice a TTS backend offers."""

    id: str
    """What ``--voice`` takes (unique within its backend)."""
    name: str
    """Human-readable name."""
    language: str
    """BCP 47 / ISO 639 language tag, e.g. ``en-us``."""
    backend: str
    """The backend that provides it (``espeak``, ``pyttsx3``, ``piper``)."""


@dataclass(frozen=True)
class Heard:
    """Something the listener said or typed."""

    text: str
    """Recognised or typed text; empty when speech was heard but rejected."""
    confidence: float = 1.0
    """0..1; typed input is 1.0."""
    via: Literal["voice", "keys"] = "keys"
    """Where it came from."""
    during_speech: bool = False
    """Said over the guide's speech (a barge-in, which cut it), not at the listening prompt."""
    kind: Literal["command", "open"] = "command"
    """``open``: no command was recognised, but the speech was clear: ``text`` is the open-vocabulary
    transcript (a question for the dialog to answer, never to be acted on as a command)."""
    nbest: tuple[tuple[str, float], ...] = ()
    """Speech: the readings, one per meaning, best first, each (a phrase with that meaning, score 0..1
    calibrated on the development corpus: how often a reading with that score was right). Empty for keys."""


@dataclass(frozen=True)
class Silence:
    """No input before the no-input timeout."""


@dataclass(frozen=True)
class EndOfInput:
    """The input stream ended (EOF on stdin): end the session cleanly."""


UserInput = Heard | Silence | EndOfInput


@runtime_checkable
class TTSEngine(Protocol):
    """Turns text into audio. Built once; engines import lazily inside."""

    name: str

    def voices(self) -> list[Voice]:
        """The voices usable here."""
        ...

    def synthesize(self, text: str, *, voice: str | None = None, rate: int = 175) -> Audio:
        """Render one utterance (already lexicon-applied) at ``rate`` words per minute."""
        ...


@runtime_checkable
class Speaker(Protocol):
    """Says things to the listener (aloud, as text, or into a file)."""

    def speak(self, text: str) -> bool:
        """Say ``text``; block until done. Return False if it was interrupted."""
        ...

    def stop(self) -> None:
        """Cut current speech at once (safe from another thread)."""
        ...

    def set_rate(self, wpm: int) -> None:
        """Words per minute, 80..450."""
        ...

    def set_volume(self, percent: int) -> None:
        """Loudness of speech and cues, percent of full loudness (1..100)."""
        ...

    def earcon(self, name: str) -> None:
        """Play a short cue: ``listening`` or ``nomatch``."""
        ...

    def prepare(self, texts: Sequence[str]) -> None:
        """While the listener thinks: get ready to say any of ``texts`` at once (render their first
        sentences ahead). Work it may drop at any time, or not do at all; returns at once."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Listener(Protocol):
    """Gets the listener's next input. A microphone may also offer ``barged_in()`` (a command said over the guide
    waits) and ``expect(answers)`` (the answers the open question expects); the session uses them where present."""

    def listen(self, timeout: float | None) -> UserInput:
        """Wait up to ``timeout`` seconds (None: forever) for input."""
        ...

    def close(self) -> None: ...


AudioChunks = Iterator[Audio]
