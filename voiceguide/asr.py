"""Speech input: offline recognisers behind one interface, and a microphone listener.

The default recogniser is pocketsphinx 5's own ``Decoder`` searching a JSGF
grammar compiled from the content pack (:mod:`voiceguide.grammar`), with every
lexicon word in its dictionary. Out-of-grammar speech is rejected twice over: it
falls into the grammar's garbage path, and whatever survives must still mean
something to the intent parser. Never a wrong confident guess.

Engines, chosen by name: ``pocketsphinx`` (default), ``sphinx-open``
(SpeechRecognition's plain ``recognize_sphinx``, the baseline the benchmark
compares against), and ``vosk`` / ``whisper`` when the user points at a local
model (``--model PATH`` or ``VOICEGUIDE_ASR_MODEL``); nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import audio as A
from .content import Guide, load_guide
from .errors import AudioDeviceUnavailable, EngineUnavailable, VoiceGuideError
from .grammar import CompiledGrammar, compile_grammar
from .intents import Intent, IntentParser
from .protocols import END_PAUSE, Audio, Heard, Silence, Speaker, UserInput

__all__ = ["PocketsphinxRecognizer", "SphinxOpenRecognizer", "VoskRecognizer", "WhisperRecognizer", "RECOGNIZERS",
           "get_recognizer", "MicListener", "register"]

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

    def _hear(self, audio: Audio) -> tuple[Intent, float] | None:
        """The meaning of the phrase and its fit, or None when it is out of grammar, unclear, or silence."""
        pcm = _dither(_trim(A.resample(audio, RATE))).pcm
        meaning = self._meaning(self._decode(self.commands, pcm))
        if meaning is None:
            return None
        fit = self._fit(self.commands)
        if fit <= self.sure:
            return meaning, fit
        if fit > self.agreed:
            return None
        check = self._decode(self.garbage, pcm)
        if self.grammar.accepts(check):
            other = self._meaning(check)
            agreed = other is not None and (other.intent, other.target) == (meaning.intent, meaning.target)
            limit = self.agreed if agreed else self.sure
        else:  # no complete path is no evidence either way; a path of everyday words is evidence against
            limit = self.unconfirmed if not check or not self.grammar.is_garbage(check) else self.sure
        return (meaning, fit) if fit <= limit else None

    def transcribe(self, audio: Audio) -> str:
        """The in-grammar words heard, or "" when the phrase is out of grammar, unclear, or silence."""
        heard = self._hear(audio)
        return heard[0].text if heard else ""

    def recognize(self, audio: Audio) -> Heard:
        """What the phrase means; the confidence falls from 1 as the fit worsens (0.5 at the ``agreed`` limit)."""
        heard = self._hear(audio)
        if heard is None:
            return Heard("", 0.0, "voice")
        meaning, fit = heard
        return Heard(meaning.text, round(min(meaning.confidence, 1 - fit / (2 * self.agreed)), 3), "voice")


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


class WhisperRecognizer:
    """faster-whisper with a model folder the user already has."""

    name = "whisper"

    def __init__(self, guide: Guide, model_path: str | None = None):
        model = _local_model("whisper", model_path)
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise EngineUnavailable("faster-whisper is not installed (pip install faster-whisper)") from None
        self.model = WhisperModel(str(model), device="cpu", compute_type="int8", local_files_only=True)
        self.parser = IntentParser(guide)

    def recognize(self, audio: Audio) -> Heard:
        x = np.frombuffer(A.resample(audio, RATE).pcm, dtype="<i2").astype(np.float32) / 32768
        segments, _ = self.model.transcribe(x, language="en")
        text = " ".join(s.text for s in segments).strip()
        return _heard(self.parser, text)


RECOGNIZERS = {"pocketsphinx": PocketsphinxRecognizer, "sphinx-open": SphinxOpenRecognizer,
               "vosk": VoskRecognizer, "whisper": WhisperRecognizer}


def get_recognizer(guide: Guide, name: str = "pocketsphinx", model_path: str | None = None):
    if name not in RECOGNIZERS:
        raise EngineUnavailable(f"unknown recogniser {name!r}: choose from {', '.join(RECOGNIZERS)}")
    return RECOGNIZERS[name](guide, model_path)


# ---------------------------------------------------------------------- the microphone


class MicListener:
    """Listens on the default microphone through SpeechRecognition (PyAudio/PortAudio).

    Calibrates for room noise with a floor, endpoints quickly (``end_pause`` seconds of
    quiet end a phrase: :data:`~voiceguide.protocols.END_PAUSE` by default), plays the "listening" cue
    before it opens the microphone, and only ever listens after the guide has finished
    speaking. Within a :meth:`turn` the microphone stays open between :meth:`hear` calls.
    """

    def __init__(self, recognizer, speaker: Speaker | None = None, *, device_index: int | None = None,
                 end_pause: float = END_PAUSE):
        try:
            import speech_recognition as sr
        except ImportError:
            raise EngineUnavailable("SpeechRecognition is not installed") from None
        try:
            import pyaudio  # noqa: F401
        except ImportError:
            raise AudioDeviceUnavailable("PyAudio is not installed (pip install 'voiceguide[mic]')") from None
        self.sr = sr
        self.recognizer = recognizer
        self.speaker = speaker
        self.ears = sr.Recognizer()
        self.ears.pause_threshold = end_pause
        self.ears.non_speaking_duration = min(0.3, end_pause)
        self.ears.phrase_threshold = 0.15
        self.ears.dynamic_energy_threshold = True
        self.mic = sr.Microphone(device_index=device_index, sample_rate=RATE)
        self._calibrated = False
        self._source = None
        self.on_speech_end = None  # for the end-to-end latency benchmark

    @classmethod
    def create(cls, guide: Guide, *, speaker: Speaker | None = None, engine: str = "pocketsphinx",
               model_path: str | None = None, end_pause: float = END_PAUSE) -> "MicListener":
        reason = A.probe_input()
        if reason:
            raise AudioDeviceUnavailable(reason)
        return cls(get_recognizer(guide, engine, model_path), speaker, end_pause=end_pause)

    def listen(self, timeout: float | None) -> UserInput:
        """One listening turn: the cue, then up to ``timeout`` seconds for speech to start."""
        with self.turn():
            return self.hear(timeout)

    @contextmanager
    def turn(self):
        """Open the microphone for one turn: the listening cue once (it has finished before the
        microphone opens, so the guide never hears itself), room-noise calibration once per session."""
        if self.speaker is not None:
            self.speaker.earcon("listening")
        try:
            with self.mic as source:
                if not self._calibrated:
                    self.ears.adjust_for_ambient_noise(source, duration=0.5)
                    self.ears.energy_threshold = max(self.ears.energy_threshold, 150)
                    self._calibrated = True
                self._source = source
                try:
                    yield self
                finally:
                    self._source = None
        except OSError as exc:
            raise AudioDeviceUnavailable(f"the microphone stopped working ({exc})") from None

    def hear(self, timeout: float | None) -> UserInput:
        """Within a :meth:`turn`: wait up to ``timeout`` seconds for speech, then recognise the phrase."""
        try:
            data = self.ears.listen(self._source, timeout=timeout, phrase_time_limit=8)
        except self.sr.WaitTimeoutError:
            return Silence()
        except OSError as exc:
            raise AudioDeviceUnavailable(f"the microphone stopped working ({exc})") from None
        if self.on_speech_end:
            self.on_speech_end()
        pcm = data.get_raw_data(convert_rate=RATE, convert_width=2)
        return self.recognizer.recognize(Audio(pcm, RATE))

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------- command


def register(sub, formatter) -> None:
    p = sub.add_parser("recognize", help="recognise spoken commands in WAV files",
                       description="Recognise each WAV file (16-bit PCM, any rate) and print what it means: with "
                                   "--json one JSON object per file, in order, with intent, target, text and "
                                   "confidence. Out-of-grammar speech gives intent none.", formatter_class=formatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--engine", choices=list(RECOGNIZERS), default="pocketsphinx", help="recogniser (default pocketsphinx)")
    p.add_argument("--model", metavar="PATH", help="local model folder (vosk, whisper) or acoustic model (pocketsphinx)")
    p.add_argument("--content", metavar="PATH", help="content pack whose names to listen for")
    p.set_defaults(func=cmd_recognize)


def cmd_recognize(args) -> int:
    guide = load_guide(args.content)
    for f in args.files:  # check every file before loading the engine
        if not Path(f).is_file():
            raise VoiceGuideError(f"{f}: no such file")
    engine = get_recognizer(guide, args.engine, args.model)
    parser = IntentParser(guide)
    for f in args.files:
        heard = engine.recognize(A.read_wav(f))
        intent = parser.parse(heard.text) if heard.text else Intent("none", None, "", 0.0)
        row = {"intent": intent.intent, "target": intent.target, "text": heard.text,
               "confidence": round(min(intent.confidence, heard.confidence) if heard.text else 0.0, 3)}
        if args.json:
            print(json.dumps({"file": f, **row}, ensure_ascii=False), flush=True)
        else:
            target = f" {row['target']}" if row["target"] else ""
            print(f"{f}: {row['intent']}{target} ({row['text'] or 'nothing recognised'})", flush=True)
    return 0
