"""Every lexicon entry, spoken with the lexicon applied, comes back from the recogniser as itself."""

from __future__ import annotations

import pytest

from voiceguide.asr import PocketsphinxRecognizer
from voiceguide.content import default_content_path, load_guide, normalize
from voiceguide.errors import EngineUnavailable
from voiceguide.intents import IntentParser
from voiceguide.tts import PiperEngine, get_engine, render

GUIDE = load_guide(default_content_path())
# entries a listener would say to the guide (names in the grammar)
NAMES = set(GUIDE.names())
ENTRIES = [e for e in GUIDE.lexicon if normalize(e.word) in NAMES or GUIDE.term(e.word)]


PARSER = IntentParser(GUIDE)


def meaning(text: str):
    got = PARSER.parse(text)
    return got.intent, got.target


def round_trip(engine, recognizer) -> tuple[float, list]:
    """Speak each entry (lexicon applied), recognise it, and expect what the word itself means back."""
    misses = []
    for entry in ENTRIES:
        heard = recognizer.transcribe(render(entry.word, engine=engine, lexicon=GUIDE.lexicon, rate=150))
        if not heard or meaning(heard) != meaning(entry.word):
            misses.append((entry.word, heard))
    return 1 - len(misses) / len(ENTRIES), misses


@pytest.fixture(scope="module")
def recognizer():
    return PocketsphinxRecognizer(GUIDE)


def test_there_are_entries_to_check():
    assert len(ENTRIES) >= 25


def test_round_trip_with_the_neural_voice(recognizer):
    try:
        engine = PiperEngine(variation=0.0)  # repeatable speech: Piper otherwise samples noise
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    rate, misses = round_trip(engine, recognizer)
    print(f"piper lexicon round trip: {rate:.0%}, misses: {misses}")
    assert rate >= 0.35, misses  # measured 47%
    assert not [m for m in misses if m[1]], "a miss must be 'not caught', never another word"


def test_round_trip_with_espeak(recognizer):
    rate, misses = round_trip(get_engine("espeak"), recognizer)
    print(f"espeak lexicon round trip: {rate:.0%}, misses: {misses}")
    assert rate >= 0.3, misses  # measured 38%
    assert not [m for m in misses if m[1]], "a miss must be 'not caught', never another word"
