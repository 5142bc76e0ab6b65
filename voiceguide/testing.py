"""Test doubles shipped with the package: real, simple implementations of the Protocols.

``ScriptedListener`` answers from a list; ``RecordingSpeaker`` keeps what was said
and can pretend to be cut short. The text speaker and keyboard listener in
``voiceguide.session`` are real backends and serve as doubles too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

from .protocols import Audio, EndOfInput, Heard, Silence, UserInput

__all__ = ["ScriptedListener", "RecordingSpeaker", "FramesCapture"]


class ScriptedListener:
    """Returns scripted inputs: a string is typed input, ``None`` is silence; then end of input."""

    def __init__(self, inputs: Iterable[str | None | UserInput], via: str = "keys"):
        self._inputs = list(inputs)
        self.via = via
        self.timeouts: list[float | None] = []

    def listen(self, timeout: float | None) -> UserInput:
        self.timeouts.append(timeout)
        if not self._inputs:
            return EndOfInput()
        item = self._inputs.pop(0)
        if item is None:
            return Silence()
        if isinstance(item, str):
            return Heard(item, 1.0, self.via)  # type: ignore[arg-type]
        return item

    def close(self) -> None:
        pass


@dataclass
class RecordingSpeaker:
    """Keeps every utterance and can pretend to be cut short.

    ``cut_at``: utterance numbers (0-based) that report an interruption;
    ``cut_texts``: utterances that report one the first time they are said.
    """

    said: list[str] = field(default_factory=list)
    earcons: list[str] = field(default_factory=list)
    rates: list[int] = field(default_factory=list)
    volumes: list[int] = field(default_factory=list)
    cut_at: set[int] = field(default_factory=set)
    cut_texts: set[str] = field(default_factory=set)
    stopped: int = 0
    prepared: list[list[str]] = field(default_factory=list)
    """What the shell asked to get ready before each listening turn."""

    def speak(self, text: str) -> bool:
        self.said.append(text)
        if text in self.cut_texts:
            self.cut_texts.discard(text)
            return False
        return (len(self.said) - 1) not in self.cut_at

    def stop(self) -> None:
        self.stopped += 1

    def set_rate(self, wpm: int) -> None:
        self.rates.append(wpm)

    def set_volume(self, percent: int) -> None:
        self.volumes.append(percent)

    def earcon(self, name: str) -> None:
        self.earcons.append(name)

    def prepare(self, texts) -> None:
        self.prepared.append(list(texts))

    def close(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "\n".join(self.said)


class FramesCapture:
    """A microphone capture that plays ``pcm`` (16 kHz s16le) in real time, 20 ms frames: the microphone
    listener without a sound server (stands in for :class:`voiceguide.mic.Capture`)."""

    def __init__(self, pcm: bytes):
        self.frames = [pcm[i:i + 640] for i in range(0, len(pcm) // 640 * 640, 640)]
        self.count, self.closed, self.t0 = 0, False, time.monotonic()

    def frame_at(self, t):
        return 0

    def read(self, index, timeout=None):
        if index >= len(self.frames):  # the room goes quiet (the listener may still be recognising)
            time.sleep(min(timeout or 0.05, 0.05))
            return None
        time.sleep(max(0.0, self.t0 + index * 0.02 - time.monotonic()))
        self.count = max(self.count, index + 1)
        return self.frames[index]

    def audio(self, start, end):
        return Audio(b"".join(self.frames[max(0, start):end]), 16000)

    def close(self):
        self.closed = True
