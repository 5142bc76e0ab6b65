"""The shell around the dialog core: speak effects, listen, turn input into events.

``run_session`` is the whole loop. Backends are chosen by name: ``text`` and
``speech`` speakers, ``keys`` and ``voice`` listeners (``auto`` picks speech and
voice where devices exist, and says in one line when it falls back). The text
speaker and keyboard listener here are real backends and also the test doubles.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import replace
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
    With ``eof_ends`` (keys only) the end of input ends the session; without it
    (beside a microphone) a keyboard that is closed, /dev/null or at its end is
    simply unavailable and the voice loop goes on.
    """

    def __init__(self, stream: IO[str] | None = None, on_input: Callable[[], None] | None = None,
                 eof_ends: bool = True):
        self.stream = stream if stream is not None else sys.stdin
        self.on_input = on_input
        self.eof_ends = eof_ends
        self.available = True
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, name="voiceguide-keys", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.stream:
                self._lines.put(line.rstrip("\r\n"))
                if self.on_input:
                    self.on_input()
        except (OSError, ValueError, TypeError, AttributeError):  # closed, or no stdin at all
            pass
        if self.eof_ends:
            self._lines.put(None)
        else:
            self.available = False  # nothing more will come: the voice goes on alone

    def pending(self) -> bool:
        return not self._lines.empty()

    def listen(self, timeout: float | None) -> P.UserInput:
        if not self.eof_ends and not self.available and self._lines.empty():
            if timeout is None:
                threading.Event().wait()  # pragma: no cover - only a microphone can answer now
            time.sleep(timeout or 0)
            return P.Silence()
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

    def barged_in(self) -> bool:
        """A command said over the guide (a barge-in) waits to be the next input."""
        return bool(getattr(self.voice, "barged_in", lambda: False)())

    def judge_with(self, takes) -> None:
        """How the guide judges a phrase heard over it, for the microphone (``MicListener.judge_with``)."""
        judge_with = getattr(self.voice, "judge_with", None)
        if judge_with is not None:
            judge_with(takes)

    def expect(self, answers) -> None:
        """The answers the open question expects, for the microphone's recogniser (``MicListener.expect``)."""
        expect = getattr(self.voice, "expect", None)
        if expect is not None:
            expect(answers)

    def listen(self, timeout: float | None) -> P.UserInput:
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.keys.pending():
            return self.keys.listen(0)
        if self.barged_in():
            return self.voice.listen(0)  # a barge-in: no listening cue
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
    by_voice = inp.via == "voice"
    readings = _readings(inp, parser) if by_voice else ()
    if by_voice and not raw.strip():
        # rejected by the recogniser: its readings may still be worth a question ("Gilteritinib?")
        return Heard(Intent("none", None, "", 0.0), by_voice=True, readings=readings) if readings else NoMatch("")
    text = raw.strip()
    if state.awaiting_word and text:
        found = parser.parse(f"what does {text} mean")
        return Heard(found if found.intent == "define" else Intent("none", None, raw, 0.0), by_voice=by_voice)
    if inp.via == "keys" and (not text or len(text) == 1 or text.lower() in KEYS or (text.isascii() and text.isdigit())):
        return Key(raw if not text else text)
    if getattr(inp, "kind", "command") == "open":
        # The recogniser found no command in clear speech: a question for the asker, never a command
        # guessed from a transcript ("where did I leave my glasses" is not "where am I"). Its readings
        # come along: with no answer in the content, a sure enough one is asked about, never acted on.
        return Heard(Intent("none", None, raw, 0.0), by_voice=by_voice, readings=readings)
    return Heard(parser.parse(text), by_voice=by_voice, readings=readings)


def _readings(inp: P.Heard, parser: IntentParser) -> tuple[tuple[Intent, float], ...]:
    """The recogniser's N-best as intents with their calibrated scores, one per meaning, best first.
    Empty when the recogniser gives no scores: the dialog then acts on what it heard, as typed text."""
    out: dict[tuple, tuple[Intent, float]] = {}
    for phrase, score in getattr(inp, "nbest", ()) or ():
        intent = parser.parse(phrase)
        if intent.intent == "none":
            continue
        key = (intent.intent, intent.target)
        if key not in out or score > out[key][1]:
            out[key] = (intent, float(score))
    if out and inp.text.strip() and getattr(inp, "kind", "command") == "command":
        decided = parser.parse(inp.text.strip())  # the recogniser's own reading is always among them
        key = (decided.intent, decided.target)
        if decided.intent != "none" and key not in out:
            out[key] = (decided, max(0.0, min(1.0, float(inp.confidence))))
    return tuple(sorted(out.values(), key=lambda r: -r[1]))


class _Log:
    """The ``--log`` file. It must never stop the guide: a log that cannot be opened or written is
    reported in one line and the guide carries on without it."""

    def __init__(self, path: str | None):
        self.path, self.fh = path, None
        if not path:
            return
        if os.path.isdir(path):
            self._give_up("it is a folder")
            return
        try:
            self.fh = open(path, "a", encoding="utf-8")
        except OSError as exc:
            self._give_up((exc.strerror or "it cannot be opened").lower())

    def _give_up(self, why: str) -> None:
        if self.fh is not None:
            try:
                self.fh.close()
            except OSError:
                pass
        self.fh = None
        _notice(f"voiceguide: cannot write the log to {self.path} ({why}); carrying on without a log.")

    def write(self, role: str, text: str, state: State, **extra) -> None:
        """One JSON line: time, role (guide, user or listen), text, the dialog state, and extras."""
        if not self.fh:
            return
        rec = {"t": round(time.time(), 3), "role": role, "text": text,
               "state": {"section": state.section, "para": state.para, "rate": state.rate, "volume": state.volume,
                         "paused": state.paused, "asking": state.asking, "no_input": state.no_input,
                         "no_match": state.no_match}}
        rec.update(extra)
        try:
            self.fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.fh.flush()
        except OSError as exc:
            self._give_up((exc.strerror or "writing failed").lower())

    def close(self) -> None:
        if self.fh:
            try:
                self.fh.close()
            except OSError:
                pass


def run_session(guide: Guide, speaker: P.Speaker, listener: P.Listener, *, store: StateStore | None = None,
                timeout: float | None = 10.0, rate: int | None = None, log_path: str | None = None,
                saved: Saved | None = None, voice: str | None = None, volume: int | None = None) -> int:
    """Run the guide until the listener leaves; return the exit status.

    The core loop: perform the dialog's effects in order; ``Listen`` (always
    last) waits for input, which becomes the next event. Speech cut short
    becomes an ``Interrupted`` event naming the cut utterance.
    """
    dialog, parser, log = Dialog(guide, timeout=timeout, asker=_make_asker(guide)), IntentParser(guide), _Log(log_path)
    if saved is None and store is not None:
        saved = store.load()
    start_rate = rate or (saved.rate if saved and saved.rate else DEFAULT_RATE)
    start_volume = volume or (saved.volume if saved and saved.volume else DEFAULT_VOLUME)
    event = Start(resume_to=saved.section if saved else None, rate=start_rate, volume=start_volume,
                  resume_para=saved.para if saved else 0, resume_sentence=saved.sentence if saved else 0)
    state = State()
    now = [state]  # the state the guide is in while it speaks, for the microphone's recognition thread
    judge_with = getattr(listener, "judge_with", None)
    if judge_with is not None:  # a phrase over the guide cuts it only if the guide would act on it or ask about it
        judge_with(lambda heard: dialog.takes(now[0], to_event(heard, parser, now[0])))
    saved_ok, left = True, False  # the last save worked; the dialog said goodbye
    try:
        while True:
            began = time.monotonic()  # the input is taken: a stop of the speaker after this is a new input's
            state, effects = dialog.step(state, event)
            now[0] = state
            cause, event = type(event).__name__, None
            expect = getattr(listener, "expect", None)  # the microphone hears an answer against the answers alone
            if expect is not None:
                expect(dialog.answers(state))
            for effect in effects:
                if isinstance(effect, Say):
                    if effect.unsaved and not saved_ok:  # say the truth: the place was not kept
                        effect = Say(effect.unsaved, effect.kind)
                    log.write("guide", effect.text, state, kind=effect.kind, event=cause)
                    barged = getattr(listener, "barged_in", None)  # a command said between two utterances
                    stopped = getattr(speaker, "stopped_at", None)  # a key typed between two (it found nothing to stop)
                    if ((barged is not None and barged()) or (stopped is not None and stopped >= began)
                            or not speaker.speak(effect.text)):  # cut short: the rest of this turn is not said
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
                    saved_ok = store.save(effect.section, effect.rate, voice, effect.volume, effect.para,
                                          effect.sentence) is not False
                elif isinstance(effect, Exit):
                    left = True
                    return effect.status
                elif isinstance(effect, Listen):
                    speaker.prepare(dialog.likely_replies(state))
                    event = _listen(listener, effect.timeout, parser, state, log)
            if event is None:  # the dialog always ends a turn with Listen or Exit; be safe anyway
                event = _listen(listener, None, parser, state, log)
    except KeyboardInterrupt:  # Ctrl-C: keep the place, say so in one line, leave
        left = True
        kept = _keep_place(dialog, state, store, voice)
        _notice("voiceguide: stopped. " + ("Your place is kept." if kept else "I could not save your place."))
        return 130
    finally:  # any other way out (SIGTERM, a lost audio device, an error): keep the place first
        if not left:
            _keep_place(dialog, state, store, voice)
        log.close()


def _keep_place(dialog: Dialog, state: State, store: StateStore | None, voice: str | None) -> bool:
    """Save where the listener is, on a way out the dialog did not choose; False if it was not saved."""
    if store is None or state == State():  # nothing happened yet: keep last time's place as it is
        return store is not None
    place = dialog.position(state)
    return store.save(place.section, place.rate, voice, place.volume, place.para, place.sentence) is not False


def _make_asker(guide: Guide):
    """The questions collaborator (voiceguide.ask), if it is there: a missing module never breaks the loop."""
    try:
        from .ask import Asker
    except ImportError:
        return None
    try:
        return Asker(guide)
    except VoiceGuideError as exc:
        _notice(f"voiceguide: questions are unavailable ({exc}); commands still work.")
        return None


def _listen(listener: P.Listener, timeout: float | None, parser: IntentParser, state: State, log: _Log):
    log.write("listen", "", state, timeout=timeout)  # the turn opens (a microphone hears all along: barge-in)
    inp = listener.listen(timeout)
    event = to_event(inp, parser, state)
    barged = isinstance(event, Heard) and getattr(inp, "during_speech", False)
    if barged and "during_speech" in getattr(Heard, "__dataclass_fields__", {}):
        event = replace(event, during_speech=True)  # said over the guide, which it cut
    intent = event.intent if isinstance(event, Heard) else key_intent(event.key) if isinstance(event, Key) else None
    log.write("user", getattr(inp, "text", ""), state, event=type(event).__name__,
              intent=intent.to_json() if intent else None,
              key=getattr(event, "key", None), via=getattr(inp, "via", None),
              **({"during_speech": True} if barged else {}),
              **({"readings": [[r.intent, r.target, round(sc, 3)] for r, sc in event.readings]}
                 if getattr(event, "readings", ()) else {}))
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


def _warm(warm) -> None:
    try:
        warm()
    except Exception:  # getting ready early is a nicety: the first turn then does it
        pass


def make_listener(kind: str, guide: Guide, speaker: P.Speaker, *, engine: str | None = None,
                  end_pause: float = P.END_PAUSE, state_path=None) -> P.Listener:
    """``state_path``: the state file (``--state``); the microphone reads ``voiceguide mic-check``'s saved
    threshold from beside it."""
    if kind == "keys":
        return KeyboardListener(on_input=speaker.stop)  # the end of input saves and leaves
    try:
        from .mic import MicListener

        mic = MicListener.create(guide, speaker=speaker, engine=engine or "auto", end_pause=end_pause, notice=_notice,
                                 state_path=state_path)
        mic.on_barge_in = speaker.stop  # a command said over the guide cuts its speech at once
        warm = getattr(mic.recognizer, "warm", None)
        if warm is not None:  # while the welcome plays: the first turn is then as quick as the others
            threading.Thread(target=_warm, args=(warm,), daemon=True, name="voiceguide-warm").start()
    except (EngineUnavailable, ImportError) as exc:
        if kind == "voice":
            raise EngineUnavailable(f"cannot listen: {exc}. Try --input keys, or run 'voiceguide doctor'.") from None
        _notice(f"No microphone found; using the keyboard. ({exc})")
        return KeyboardListener(on_input=speaker.stop)
    # beside a microphone, no terminal is needed: stdin at /dev/null, closed or ended leaves voice going
    return CombinedListener(mic, KeyboardListener(on_input=speaker.stop, eof_ends=False))


def register(sub, formatter) -> None:
    p = sub.add_parser("run", help="start the guide (the default command)",
                       description="Start the guide. It speaks and listens where it can, and falls back to "
                                   "text and keys, saying so. Your place is kept when you leave, and offered "
                                   "next time.", formatter_class=formatter,
                       epilog="Examples:\n  voiceguide                 speech in and out where devices exist\n"
                              "  voiceguide --text          keys in, plain text out, no time limits\n"
                              "  voiceguide --rate 250      faster speech\n"
                              "  voiceguide --timeout off   never ask again while waiting for you")
    p.add_argument("--content", metavar="PATH", help="content pack folder (default: the shipped guide)")
    p.add_argument("--text", action="store_true",
                   help="keys in, plain text out, and no time limit unless --timeout is given: for screen readers "
                        "and braille")
    p.add_argument("--input", choices=["auto", "voice", "keys"], default="auto",
                   help="how you answer: by voice, by keys, or auto (voice where a microphone works; default auto)")
    p.add_argument("--output", choices=["auto", "speech", "text"], default="auto",
                   help="how the guide talks: speech, text, or auto (speech where a speaker works; default auto)")
    p.add_argument("--engine", metavar="NAME", help="speech engine: espeak, pyttsx3 or piper")
    p.add_argument("--asr", metavar="NAME", help="speech recognizer: auto (default: hybrid where Whisper is installed, else pocketsphinx), "
                                                    "hybrid, pocketsphinx, whisper or vosk")
    p.add_argument("--voice", metavar="VOICE", help="voice name (see: voiceguide voices)")
    p.add_argument("--rate", type=int, metavar="WPM", help="speaking rate in words per minute, 80 to 450")
    p.add_argument("--timeout", default=None, metavar="SECONDS",
                   help="how long to wait for an answer before asking again, or off (default 10; with --text, off)")
    p.add_argument("--volume", type=int, metavar="PERCENT",
                   help="loudness of speech, 1 to 100 (default: as last time, else 100; say louder or quieter to change it)")
    p.add_argument("--end-pause", type=float, default=P.END_PAUSE, metavar="SECONDS",
                   help=f"how long a quiet gap ends what you say, 0.2 to 2 (default {P.END_PAUSE}; raise it if the guide "
                        "cuts you off mid-phrase)")
    p.add_argument("--no-earcons", action="store_true", help="no listening and didn't-catch-that tones")
    p.add_argument("--log", metavar="FILE",
                   help="write every turn as a JSON line to FILE (if it cannot be written, the guide says so and "
                        "carries on)")
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


class _Terminated(SystemExit):
    """SIGTERM: leave like Ctrl-C (the place is kept by run_session on the way out), status 143."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated(143)


def cmd_run(args) -> int:
    guide = load_guide(args.content)
    text_mode = args.text or (args.output == "text" and args.input in ("auto", "keys"))
    # a braille reader may take minutes: no time limit in text mode unless one is asked for
    timeout = _timeout(args.timeout) if args.timeout is not None else (None if text_mode else 10.0)
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
    listener = make_listener(inp, guide, speaker, engine=args.asr, end_pause=args.end_pause, state_path=args.state)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run_session(guide, speaker, listener, store=store, timeout=timeout, rate=args.rate,
                           log_path=args.log, saved=saved, voice=args.voice, volume=args.volume)
    finally:
        listener.close()
        speaker.close()
