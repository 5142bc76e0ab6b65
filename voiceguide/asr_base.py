"""What every recogniser shares: the phrase's audio as they want it (16 kHz, trimmed, dithered), a
local model's path, the open-vocabulary engines' test of meaning, and the guide's phrases (:func:`guide_phrases`:
what the grammar spells out, which the hybrid rescoring, the grammar's stream and the content-trained check
all read). Part of :mod:`voiceguide.asr`, which re-exports it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import audio as A
from .content import Guide
from .errors import EngineUnavailable
from .grammar import CARRIERS, NOT_SPOKEN, NUMBER_CARRIERS, spoken_number
from .intents import COMMAND_PHRASES, IntentParser
from .protocols import Audio, Heard

__all__ = ["RATE", "guide_phrases"]

RATE = 16000


def _dither(audio: Audio) -> Audio:
    """Add noise of about one bit: digital silence (exact zeros, as synthetic voices produce) breaks
    the recogniser's log-energy features and its running cepstral mean."""
    x = np.frombuffer(audio.pcm, dtype="<i2").astype(np.int32)
    noise = np.random.default_rng(len(x)).integers(-2, 3, size=len(x))
    return Audio(np.clip(x + noise, -32768, 32767).astype("<i2").tobytes(), audio.sample_rate)


def _trim(audio: Audio, margin: float = 0.15) -> Audio:
    """The phrase without the quiet before and after it (``margin`` seconds kept on each side).

    A microphone phrase arrives with room sound around it, and the forced grammar search spends
    most of its time, and makes most of its mistakes, aligning commands against that quiet: trimming
    it made decoding 2-4 times faster and more accurate (docs/benchmarks.md). Speech is any 10 ms
    frame 6 dB above the room's level (the quietest tenth of frames) and within 40 dB of the loudest.
    """
    x = A.samples(audio).astype(np.float64)
    step = audio.sample_rate // 100
    n = len(x) // step
    if n < 10:
        return audio
    level = 10 * np.log10(np.mean(x[:n * step].reshape(n, step) ** 2, axis=1) + 1e-3)
    speech = np.flatnonzero(level > max(np.percentile(level, 10) + 6, np.percentile(level, 99) - 40))
    if len(speech) == 0:
        return audio
    keep = int(margin * 100)
    start, end = max(0, speech[0] - keep) * step, min(n, speech[-1] + 1 + keep) * step
    return Audio(audio.pcm[2 * start:2 * end], audio.sample_rate)


def _heard(parser: IntentParser, text: str) -> Heard:
    """What an open-vocabulary engine heard, kept only if it means something to the guide."""
    intent = parser.parse(text)
    return Heard(text if intent.intent != "none" else "", intent.confidence, "voice")


def _local_model(name: str, model_path: str | None) -> Path:
    path = model_path or os.environ.get("VOICEGUIDE_ASR_MODEL")
    if not path:
        raise EngineUnavailable(f"the {name} recogniser needs a local model: pass --model PATH or set "
                                f"VOICEGUIDE_ASR_MODEL (nothing is downloaded)")
    p = Path(path)
    if not p.exists():
        raise EngineUnavailable(f"{name} model not found: {p}")
    return p


def guide_phrases(guide: Guide, parser: IntentParser) -> dict[str, tuple[str, str | None]]:
    """Every way to say something to the guide that its grammar spells out, and its meaning:
    each name alone and after each carrier ("tell me about ..."), "what does ... mean", every
    command phrasing, and each menu number alone and after "number", "option" and the like."""
    said = set()
    for name in guide.names():
        said.update([name, f"what does {name} mean", *(f"{c} {name}" for c in CARRIERS)])
    for phrasings in COMMAND_PHRASES.values():
        said.update(p for p in phrasings if p not in NOT_SPOKEN)  # as the grammar: typed-only words
    for n in range(1, 13):
        number = spoken_number(n)
        said.update([number, *(f"{c} {number}" for c in NUMBER_CARRIERS)])
    out = {}
    for phrase in sorted(said):
        intent = parser.parse(phrase)
        if intent.intent != "none":
            out[phrase] = (intent.intent, intent.target)
    return out
