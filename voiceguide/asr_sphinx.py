"""The pocketsphinx recognisers: the content grammar's two searches (:class:`PocketsphinxRecognizer`), the
same search on audio as it arrives (:class:`GrammarStream`, for early endpointing) and SpeechRecognition's plain
``recognize_sphinx`` (:class:`SphinxOpenRecognizer`, the benchmark's baseline). Part of :mod:`voiceguide.asr`."""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from . import audio as A
from .asr_base import RATE, _dither, _heard, _trim, guide_phrases
from .content import Guide
from .errors import EngineUnavailable
from .grammar import CompiledGrammar, compile_grammar
from .intents import Intent, IntentParser
from .protocols import Audio, Heard

__all__ = ["PocketsphinxRecognizer", "GrammarStream", "SphinxOpenRecognizer"]


def _model_dir() -> Path:
    try:
        import pocketsphinx
    except ImportError:
        raise EngineUnavailable("pocketsphinx is not installed (pip install pocketsphinx)") from None
    return Path(pocketsphinx.get_model_path())


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<I", len(data)) + data)
    stream.flush()


def _receive(stream):
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError("the grammar's process closed")
    (size,) = struct.unpack("<I", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the grammar's process closed")
    return pickle.loads(data)


def _serve() -> None:
    """The grammar's own process (:class:`_GrammarProcess`): the two searches, built as the recogniser builds
    them, decode what it is sent on stdin and answer on stdout, until stdin closes. It ends quietly when its
    parent goes away at any point (a command that fails on bad input exits while this one still starts)."""
    answers = sys.stdout
    try:
        _answer(sys.stdin.buffer, answers.buffer)
    except (EOFError, OSError, KeyboardInterrupt):
        pass
    try:
        answers.close()  # nothing left for the interpreter to flush into a closed pipe at exit
    except OSError:
        pass


def _answer(inp, out) -> None:
    from pocketsphinx import Config, Decoder

    sys.stdout = sys.stderr  # nothing else may write to the answers
    hmm, dict_text, commands_jsgf, jsgf = _receive(inp)
    P = PocketsphinxRecognizer
    with tempfile.TemporaryDirectory(prefix="voiceguide-asr-") as tmp:
        dict_file = Path(tmp) / "voiceguide.dict"
        dict_file.write_text(dict_text, encoding="utf-8")
        decoders = dict(zip(("commands", "garbage"), P._searches(Config, Decoder, Path(hmm), dict_file, commands_jsgf,
                                                                  jsgf)))
    _send(out, "ready")
    while True:
        which, pcm = _receive(inp)
        decoder = decoders[which]
        hyp, fit = P._read_search(decoder, which, pcm)
        _send(out, (hyp, fit, P._nbest_words(decoder, 20) if which == "commands" else None))


class _GrammarProcess:
    """The grammar's decodes in a process of their own. pocketsphinx decodes a whole utterance in one call
    (``process_raw(full_utt=True)``, for its batch CMN) and holds the GIL throughout: measured 2026-12-03, the
    microphone's thread (capture, echo canceller, endpointer) stopped 0.85 s while a 1 s recognition ran, so a
    command said meanwhile was heard that much later and the canceller's reference came in bursts. Here the
    calling thread waits on a pipe, without the GIL. One process per grammar, shared by its recognisers;
    ``VOICEGUIDE_GRAMMAR_PROCESS=off`` decodes in this process instead."""

    _shared: dict[tuple, "_GrammarProcess"] = {}
    _shared_lock = threading.Lock()
    KEEP = 3
    """Grammars' processes kept at once (the least recently started closed first)."""

    def __init__(self, key: tuple):
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([sys.executable, "-c", "from voiceguide.asr_sphinx import _serve; _serve()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=os.environ.copy())
        _send(self.proc.stdin, key)
        if _receive(self.proc.stdout) != "ready":
            raise OSError("the grammar's process did not start")

    @classmethod
    def get(cls, key: tuple) -> "_GrammarProcess":
        """The process for the grammar ``key`` (model path, dictionary text, the two searches' JSGF), started
        when there is none."""
        with cls._shared_lock:
            worker = cls._shared.get(key)
            if worker is None or worker.proc.poll() is not None:
                while len(cls._shared) >= cls.KEEP:
                    cls._shared.pop(next(iter(cls._shared))).close()
                worker = cls._shared[key] = cls(key)
            return worker

    def close(self) -> None:
        """Ends the process (its stdin closed: it returns) once a decode under way is answered."""
        with self.lock:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def decode(self, which: str, pcm: bytes) -> tuple:
        with self.lock:
            _send(self.proc.stdin, (which, pcm))
            return _receive(self.proc.stdout)


def _grammar_process_setting() -> bool:
    return A.env_switch("VOICEGUIDE_GRAMMAR_PROCESS", True)


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
        dict_text = self.grammar.dict_text()
        dict_file.write_text(dict_text, encoding="utf-8")
        self.commands, self.garbage = self._searches(Config, Decoder, hmm, dict_file, self.grammar.commands_jsgf,
                                                     self.grammar.jsgf)
        self.parser = IntentParser(guide)
        self._guide, self._hmm, self._dict_file = guide, hmm, dict_file
        self._last: tuple[str, str | None] | None = None
        self._remote: bool | None = None if _grammar_process_setting() else False  # None: not yet tried
        self._key = (str(hmm), dict_text, self.grammar.commands_jsgf, self.grammar.jsgf)
        if self._remote is None:  # started now, so the first phrase does not wait for it (0.5-1 s)
            threading.Thread(target=self._start_remote, daemon=True, name="voiceguide-grammar-start").start()
        self._remote_nbest: list[str] | None = None  # the last remote reading's N-best sentences
        self.lock = threading.RLock()
        """Held while the decoders are in use: a decoder serves one utterance at a time (two threads
        sharing one made pocketsphinx return no N-best list, and readings of another utterance)."""

    def stream(self, phrases: dict | None = None) -> "GrammarStream":
        """A commands search of its own, to run on audio as it arrives (:class:`GrammarStream`);
        ``phrases``: :func:`guide_phrases`, where the caller has them already."""
        return GrammarStream(self, phrases)

    @classmethod
    def _searches(cls, Config, Decoder, hmm: Path, dict_file: Path, commands_jsgf: str, jsgf: str) -> tuple:
        """The ``commands`` search (pocketsphinx's own wide beams) and the narrow ``garbage`` one, as this
        recogniser and the grammar's own process (:func:`_serve`) build them."""
        return (cls._decoder(Config, Decoder, hmm, dict_file, commands_jsgf, beam=None),
                cls._decoder(Config, Decoder, hmm, dict_file, jsgf, 1e-20, 3000))

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
        """The reading of one whole utterance, a function of ``pcm`` alone: the decoder's feature front end is
        rebuilt first (pocketsphinx carries its state from one utterance to the next; with ``cmn batch`` and
        ``remove_noise`` on, most likely the noise-removal estimate: resetting the cepstral mean with ``set_cmn``
        did not help, ``reinit_feat`` did), so a verdict does not depend on what was heard before (the same Piper
        "skip" was accepted on one read and rejected on the next). Costs about 0.03 ms."""
        decoder.reinit_feat()
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

    @classmethod
    def _read_search(cls, decoder, which: str, pcm: bytes) -> tuple[str, float | None]:
        """``decoder``'s reading of ``pcm`` and, for the ``commands`` search, its fit (:meth:`_fit`)."""
        hyp = cls._decode(decoder, pcm)
        if which != "commands":
            return hyp, None
        return hyp, cls._fit(decoder) if hyp else float("inf")

    def _start_remote(self) -> bool:
        """Whether the grammar's own process runs (started if need be); False from now on where it cannot."""
        try:
            _GrammarProcess.get(self._key)
            return True
        except (OSError, EOFError, pickle.PickleError):
            self._remote = False
            return False

    def _search(self, which: str, pcm: bytes) -> tuple[str, float | None]:
        """One search's reading of ``pcm`` and, for ``commands``, its fit: in the grammar's own process
        (:class:`_GrammarProcess`) where it runs, else here (its N-best then read from the decoder)."""
        if self._remote is None:
            self._remote = self._start_remote()
        if self._remote:
            try:
                hyp, fit, nbest = _GrammarProcess.get(self._key).decode(which, pcm)
                if which == "commands":
                    self._remote_nbest = nbest
                return hyp, fit
            except (OSError, EOFError, pickle.PickleError, ValueError):
                self._remote = False  # the process is gone: decode here from now on
        if which == "commands":
            self._remote_nbest = None
        return self._read_search(self.commands if which == "commands" else self.garbage, which, pcm)

    @staticmethod
    def _nbest_words(decoder, limit: int) -> list[str]:
        """The last reading's whole-sentence N-best paths' words (``limit`` looked at), best first."""
        out = []
        try:
            for n, _ in zip(decoder.nbest() or (), range(limit)):  # None when there is no lattice
                out.append(getattr(n, "hypstr", None) or "")  # pocketsphinx yields None for an empty path
        except (RuntimeError, ValueError, AttributeError, TypeError):  # no lattice (nothing decoded)
            return []
        return out

    def _hear(self, audio: Audio) -> tuple[Intent | None, float | None]:
        """What the commands search's reading means (None when it is out of grammar or silence), and
        its fit when the reading is accepted (None when it is unclear or out of grammar)."""
        pcm = _dither(_trim(A.resample(audio, RATE))).pcm
        words, fit = self._search("commands", pcm)
        meaning = self._meaning(words)
        self._last = (meaning.intent, meaning.target) if meaning is not None else None
        if meaning is None:
            return None, None
        if fit <= self.sure:
            return meaning, fit
        if fit > self.agreed:
            return meaning, None
        check, _ = self._search("garbage", pcm)
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
            sentences = (self._remote_nbest[:limit] if self._remote_nbest is not None
                         else self._nbest_words(self.commands, limit))
        for words in sentences:
            if not words:
                continue
            meaning = self._meaning(words)
            if meaning is not None and (meaning.intent, meaning.target) not in out:
                out.append((meaning.intent, meaning.target))
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
