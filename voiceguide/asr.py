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

One module per recogniser, re-exported here: :mod:`voiceguide.asr_sphinx` (pocketsphinx, its stream,
sphinx-open), :mod:`voiceguide.asr_whisper`, :mod:`voiceguide.asr_hybrid`, and what they share in
:mod:`voiceguide.asr_base`. This module keeps the small Vosk wrapper, the factory and the command.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import audio as A
# The private names below are re-exported for callers that imported them from here before the split.
from .asr_base import RATE, _heard, _local_model, _trim, guide_phrases  # noqa: F401
from .asr_hybrid import CALIBRATION_FILE, FEATURES, Calibration, Evidence, HybridRecognizer, unexplained
from .asr_sphinx import GrammarStream, PocketsphinxRecognizer, SphinxOpenRecognizer, _model_dir  # noqa: F401
from .asr_whisper import Transcript, WhisperRecognizer, _first_phrase, _packaged_whisper_model  # noqa: F401
from .content import Guide, load_guide
from .errors import EngineUnavailable, VoiceGuideError
from .intents import Intent, IntentParser
from .protocols import Audio, Heard

__all__ = ["PocketsphinxRecognizer", "GrammarStream", "SphinxOpenRecognizer", "VoskRecognizer", "WhisperRecognizer",
           "Transcript", "HybridRecognizer", "Evidence", "Calibration", "FEATURES", "CALIBRATION_FILE", "unexplained",
           "guide_phrases", "RECOGNIZERS", "DEFAULT", "get_recognizer", "register"]


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


RECOGNIZERS = {"pocketsphinx": PocketsphinxRecognizer, "sphinx-open": SphinxOpenRecognizer,
               "vosk": VoskRecognizer, "whisper": WhisperRecognizer, "hybrid": HybridRecognizer}


DEFAULT = "auto"
"""``hybrid`` where Whisper is installed, else ``pocketsphinx``."""


def get_recognizer(guide: Guide, name: str = DEFAULT, model_path: str | None = None, *, notice=None):
    """The recogniser called ``name``, built once. ``auto`` falls back to the grammar alone when
    Whisper is missing, and tells ``notice`` (a callable taking one line) why."""
    if not isinstance(guide, Guide) or not isinstance(name, str):
        raise TypeError(f"get_recognizer(guide, name): a Guide and a recogniser's name, not {type(guide).__name__} "
                        f"and {type(name).__name__}")
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
    audios = [A.read_wav(f) for f in args.files]  # a file that is no WAV fails here, before any engine starts
    engine = get_recognizer(guide, args.engine, args.model, notice=lambda line: print(line, file=sys.stderr))
    parser = IntentParser(guide)
    for f, audio in zip(args.files, audios):
        heard = engine.recognize(audio)
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
