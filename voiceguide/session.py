"""The shell around the dialog core: speak effects, listen, turn input into events.

``run_session`` is the whole loop. Backends are chosen by name: ``text`` and
``speech`` speakers, ``keys`` and ``voice`` listeners (``auto`` picks speech and
voice where devices exist, and says in one line when it falls back). The text
speaker and keyboard listener here are real backends and also the test doubles.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Callable

from .content import Guide, load_guide
from .dialog import (DEFAULT_RATE, DEFAULT_VOLUME, KEYS, Dialog, Earcon, EndOfInput, Exit, Heard, Interrupted, Key,
                     Listen, NoInput, NoMatch, SavePosition, Say, SetRate, SetVolume, Start, State, key_intent)
from .errors import EngineUnavailable, VoiceGuideError
from .intents import Intent, IntentParser
from . import protocols as P
from .state import Saved, StateStore, default_state_path

__all__ = ["TextSpeaker", "KeyboardListener", "CombinedListener", "run_session", "to_event", "make_speaker",
           "make_listener", "register"]


# ---------------------------------------------------------------------- text backends


class TextSpeaker:
    """Prints each utterance as a plain line: screen-reader and braille friendly (no colour, no spinners)."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self.rate = DEFAULT_RATE
        self.volume = DEFAULT_VOLUME

    def speak(self, text: str) -> bool:
        self.stream.write(text + "\n")
        self.stream.flush()
        return True

    def stop(self) -> None:
        pass

    def set_rate(self, wpm: int) -> None:
        self.rate = wpm

    def set_volume(self, percent: int) -> None:
        self.volume = percent  # text has no loudness; the setting is kept, as the rate is

    def earcon(self, name: str) -> None:
        pass

    def prepare(self, texts) -> None:
        pass  # text appears at once

    def close(self) -> None:
        pass


class KeyboardListener:
    """Reads lines from a stream in a background thread.

    A line typed while the guide is talking calls ``on_input`` (the shell passes
    ``speaker.stop``) so speech stops at once, and is handled as the next input.
    """

    def __init__(self, stream: IO[str] | None = None, on_input: Callable[[], None] | None = None):
        self.stream = stream or sys.stdin
        self.on_input = on_input
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, name="voiceguide-keys", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.stream:
                self._lines.put(line.rstrip("\r\n"))
                if self.on_input:
                    self.on_input()
        except (OSError, ValueError):
            pass
        self._lines.put(None)

    def pending(self) -> bool:
        return not self._lines.empty()

    def listen(self, timeout: float | None) -> P.UserInput:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return P.Silence()
        if line is None:
            self._lines.put(None)  # stay ended
            return P.EndOfInput()
        return P.Heard(line, 1.0, "keys")

    def close(self) -> None:
        pass


class CombinedListener:
    """Voice and keys together: whichever comes first. Keys are checked between short listening windows."""

    def __init__(self, voice: P.Listener, keys: KeyboardListener, window: float = 1.0):
        self.voice, self.keys, self.window = voice, keys, window

    def listen(self, timeout: float | None) -> P.UserInput:
        deadline = None if timeout is None else time.monotonic() + timeout
        turn = getattr(self.voice, "turn", None)  # a microphone stays open for the whole turn
        with turn() if turn else nullcontext():
            hear = self.voice.hear if turn else self.voice.listen
            while True:
                if self.keys.pending():
                    return self.keys.listen(0)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return P.Silence()
                heard = hear(self.window if left is None else min(self.window, left))
                if not isinstance(heard, P.Silence):
                    return heard

    def close(self) -> None:
        self.voice.close()
        self.keys.close()


# ---------------------------------------------------------------------- the loop


def to_event(inp: P.UserInput, parser: IntentParser, state: State):
    """Turn raw input into a dialog event: a line of one key is a :class:`Key`; other text is parsed."""
    if isinstance(inp, P.EndOfInput):
        return EndOfInput()
    if isinstance(inp, P.Silence):
        return NoInput()
    raw = inp.text
    if inp.via == "voice" and not raw.strip():
        return NoMatch("")
    text = raw.strip()
    if state.awaiting_word and text:
        found = parser.parse(f"what does {text} mean")
        return Heard(found if found.intent == "define" else Intent("none", None, raw, 0.0))
    if inp.via == "keys" and (not text or len(text) == 1 or text.lower() in KEYS or (text.isascii() and text.isdigit())):
        return Key(raw if not text else text)
    return Heard(parser.parse(text))


class _Log:
    def __init__(self, path: str | None):
        self.fh = open(path, "a", encoding="utf-8") if path else None

    def write(self, role: str, text: str, state: State, **extra) -> None:
        """One JSON line: time, role (guide, user or listen), text, the dialog state, and extras."""
        if not self.fh:
            return
        rec = {"t": round(time.time(), 3), "role": role, "text": text,
               "state": {"section": state.section, "para": state.para, "rate": state.rate, "volume": state.volume,
                         "paused": state.paused, "asking": state.asking, "no_input": state.no_input,
                         "no_match": state.no_match}}
        rec.update(extra)
        self.fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.fh.flush()

    def close(self) -> None:
        if self.fh:
            self.fh.close()


def run_session(guide: Guide, speaker: P.Speaker, listener: P.Listener, *, store: StateStore | None = None,
                timeout: float | None = 10.0, rate: int | None = None, log_path: str | None = None,
                saved: Saved | None = None, voice: str | None = None, volume: int | None = None) -> int:
    """Run the guide until the listener leaves; return the exit status.

    The core loop: perform the dialog's effects in order; ``Listen`` (always
    last) waits for input, which becomes the next event. Speech cut short
    becomes an ``Interrupted`` event naming the cut utterance.
    """
    dialog, parser, log = Dialog(guide, timeout=timeout), IntentParser(guide), _Log(log_path)
    if saved is None and store is not None:
        saved = store.load()
    start_rate = rate or (saved.rate if saved and saved.rate else DEFAULT_RATE)
    start_volume = volume or (saved.volume if saved and saved.volume else DEFAULT_VOLUME)
    event = Start(resume_to=saved.section if saved else None, rate=start_rate, volume=start_volume)
    state = State()
    try:
        while True:
            state, effects = dialog.step(state, event)
            cause, event = type(event).__name__, None
            for effect in effects:
                if isinstance(effect, Say):
                    log.write("guide", effect.text, state, kind=effect.kind, event=cause)
                    if not speaker.speak(effect.text):  # cut short: the rest of this turn is not said
                        log.write("guide", "(interrupted)", state, event="Interrupted")
                        event = Interrupted(effect.text)
                        break
                elif isinstance(effect, Earcon):
                    speaker.earcon(effect.name)
                elif isinstance(effect, SetRate):
                    speaker.set_rate(effect.wpm)
                elif isinstance(effect, SetVolume):
                    speaker.set_volume(effect.percent)
                elif isinstance(effect, SavePosition) and store:
                    store.save(effect.section, effect.rate, voice, effect.volume)
                elif isinstance(effect, Exit):
                    return effect.status
                elif isinstance(effect, Listen):
                    speaker.prepare(dialog.likely_replies(state))
                    event = _listen(listener, effect.timeout, parser, state, log)
            if event is None:  # the dialog always ends a turn with Listen or Exit; be safe anyway
                event = _listen(listener, None, parser, state, log)
    finally:
        log.close()


def _listen(listener: P.Listener, timeout: float | None, parser: IntentParser, state: State, log: _Log):
    log.write("listen", "", state, timeout=timeout)  # the microphone opens only now, after speech has ended
    inp = listener.listen(timeout)
    event = to_event(inp, parser, state)
    intent = event.intent if isinstance(event, Heard) else key_intent(event.key) if isinstance(event, Key) else None
    log.write("user", getattr(inp, "text", ""), state, event=type(event).__name__,
              intent=intent.to_json() if intent else None,
              key=getattr(event, "key", None), via=getattr(inp, "via", None))
    return event


# ---------------------------------------------------------------------- choosing backends


def _notice(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_speaker(kind: str, guide: Guide, *, engine: str | None, voice: str | None, rate: int,
                 earcons: bool, volume: float = 1.0) -> P.Speaker:
    if kind == "text":
        return TextSpeaker()
    try:
        from .tts import AudioSpeaker

        return AudioSpeaker.create(guide, engine=engine, voice=voice, rate=rate, earcons=earcons, volume=volume)
    except (EngineUnavailable, ImportError) as exc:
        if kind == "speech":
            raise EngineUnavailable(f"cannot speak: {exc}. Try --output text, or run 'voiceguide doctor'.") from None
        _notice(f"No speaker found; using text output. ({exc}) Run 'voiceguide doctor' for help.")
        return TextSpeaker()


def make_listener(kind: str, guide: Guide, speaker: P.Speaker, *, engine: str | None = None,
                  end_pause: float = P.END_PAUSE) -> P.Listener:
    keys = KeyboardListener(on_input=speaker.stop)
    if kind == "keys":
        return keys
    try:
        from .asr import MicListener

        mic = MicListener.create(guide, speaker=speaker, engine=engine or "auto", end_pause=end_pause, notice=_notice)
    except (EngineUnavailable, ImportError) as exc:
        if kind == "voice":
            raise EngineUnavailable(f"cannot listen: {exc}. Try --input keys, or run 'voiceguide doctor'.") from None
        _notice(f"No microphone found; using the keyboard. ({exc})")
        return keys
    return CombinedListener(mic, keys)


def register(sub, formatter) -> None:
    p = sub.add_parser("run", help="start the guide (the default command)",
                       description="Start the guide. It speaks and listens where it can, and falls back to "
                                   "text and keys, saying so.", formatter_class=formatter)
    p.add_argument("--content", metavar="PATH", help="content pack folder (default: the shipped guide)")
    p.add_argument("--text", action="store_true", help="keys in, plain text out: for screen readers and braille")
    p.add_argument("--input", choices=["auto", "voice", "keys"], default="auto", help="how you answer (default auto)")
    p.add_argument("--output", choices=["auto", "speech", "text"], default="auto", help="how the guide talks (default auto)")
    p.add_argument("--engine", metavar="NAME", help="speech engine: espeak, pyttsx3 or piper")
    p.add_argument("--asr", metavar="NAME", help="recogniser: auto (default: hybrid where Whisper is installed, else pocketsphinx), "
                                                    "hybrid, pocketsphinx, whisper or vosk")
    p.add_argument("--voice", metavar="VOICE", help="voice name (see: voiceguide voices)")
    p.add_argument("--rate", type=int, metavar="WPM", help="speaking rate in words per minute, 80 to 450")
    p.add_argument("--timeout", default="10", metavar="SECONDS",
                   help="how long to wait for an answer before asking again, or off (default 10)")
    p.add_argument("--volume", type=int, metavar="PERCENT",
                   help="loudness of speech, 1 to 100 (default: as last time, else 100; say louder or quieter to change it)")
    p.add_argument("--end-pause", type=float, default=P.END_PAUSE, metavar="SECONDS",
                   help=f"how long a quiet gap ends what you say, 0.2 to 2 (default {P.END_PAUSE}; raise it if the guide "
                        "cuts you off mid-phrase)")
    p.add_argument("--no-earcons", action="store_true", help="no listening and didn't-catch-that tones")
    p.add_argument("--log", metavar="FILE", help="write every turn as a JSON line to FILE")
    p.add_argument("--state", metavar="FILE", help="where your place and preferences are kept")
    p.set_defaults(func=cmd_run)


def _timeout(value: str) -> float | None:
    if value.strip().lower() in {"off", "none", "never", "0"}:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise VoiceGuideError(f"--timeout: expected a number of seconds or 'off', got {value!r}") from None
    if seconds < 0:
        raise VoiceGuideError("--timeout: must not be negative")
    return seconds


def cmd_run(args) -> int:
    guide = load_guide(args.content)
    timeout = _timeout(args.timeout)
    if args.rate is not None and not 80 <= args.rate <= 450:
        raise VoiceGuideError(f"--rate: {args.rate} is outside 80 to 450 words per minute")
    if args.volume is not None and not 1 <= args.volume <= 100:
        raise VoiceGuideError(f"--volume: {args.volume} is outside 1 to 100")
    if not 0.2 <= args.end_pause <= 2:
        raise VoiceGuideError(f"--end-pause: {args.end_pause} is outside 0.2 to 2 seconds")
    output, inp = ("text", "keys") if args.text else (args.output, args.input)
    store = StateStore(Path(args.state) if args.state else default_state_path(), guide.id)
    saved = store.load()
    rate = args.rate or saved.rate or DEFAULT_RATE
    volume = args.volume or saved.volume or DEFAULT_VOLUME
    speaker = make_speaker(output, guide, engine=args.engine, voice=args.voice or saved.voice, rate=rate,
                           earcons=not args.no_earcons, volume=volume / 100)
    if isinstance(speaker, TextSpeaker) and inp == "auto":
        inp = "keys"
    listener = make_listener(inp, guide, speaker, engine=args.asr, end_pause=args.end_pause)
    try:
        return run_session(guide, speaker, listener, store=store, timeout=timeout, rate=args.rate,
                           log_path=args.log, saved=saved, voice=args.voice, volume=args.volume)
    finally:
        listener.close()
        speaker.close()
