"""Time from a prompt being issued to its first audio sample reaching the player; render speed."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from voiceguide.content import load_guide  # noqa: E402
from voiceguide.errors import EngineUnavailable  # noqa: E402
from voiceguide.tts import AudioSpeaker, get_engine, render, split_sentences  # noqa: E402

PROMPT = "Gilteritinib is sold as Xospata. It targets the FLT3 gene."
LONG = " ".join(load_guide().section("overview").body)


class NullPlayer:
    """Receives audio like the real player, without a sound device, and notes when the first sample came."""

    def __init__(self):
        self.first = None

    def play(self, audio):
        if self.first is None:
            self.first = time.perf_counter()

    def wait(self, timeout=None):
        return True

    def stop(self):
        pass


def first_sample(engine, text, lexicon) -> float:
    player = NullPlayer()
    speaker = AudioSpeaker(engine, player, lexicon=lexicon)
    t0 = time.perf_counter()
    speaker.speak(text)
    return (player.first - t0) * 1000


def main() -> None:
    lexicon = load_guide().lexicon
    rows = ["| engine | first sample, short prompt (median ms) | first sample, 8-sentence text (median ms) | render speed (x real time) |",
            "|---|---|---|---|"]
    for name in ("espeak", "pyttsx3", "piper"):
        try:
            engine = get_engine(name)
        except EngineUnavailable as exc:
            rows.append(f"| {name} | not available: {exc} | | |")
            continue
        first_sample(engine, PROMPT, lexicon)  # warm up
        short = statistics.median(first_sample(engine, PROMPT, lexicon) for _ in range(7))
        long = statistics.median(first_sample(engine, LONG, lexicon) for _ in range(5))
        t0 = time.perf_counter()
        total = sum(render(s, engine=engine, lexicon=lexicon).duration for s in split_sentences(LONG))
        speed = total / (time.perf_counter() - t0)
        rows.append(f"| {name} | {short:.0f} | {long:.0f} | {speed:.0f}x |")
    record("Speech output (TTS latency, pronunciation round trip)",
           "Time from `speak()` being called to the first rendered sentence reaching the player "
           "(the player adds the device latency, 50 ms requested from PulseAudio). Goal for espeak: < 150 ms.\n\n"
           + "\n".join(rows)
           + "\n\nLexicon round trip (each lexicon entry spoken with the lexicon applied, recognised, same meaning "
             "back): see tests/test_lexicon_roundtrip.py; measured 59% with the Piper voice and 35% with espeak-ng "
             "(34 entries).")


if __name__ == "__main__":
    main()
