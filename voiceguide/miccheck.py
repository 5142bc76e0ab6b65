"""``voiceguide mic-check``: a spoken, hands-free check of the microphone and the room.

It measures the room's noise floor (a few seconds of quiet), asks the listener to say three
commands, measures how loud each one is over the noise (the signal-to-noise ratio, SNR), says what
it heard for each, and gives ONE plain tip: move closer, turn the TV down, use a headset, or "your
microphone sounds good". With ``--save`` it stores an endpointer threshold derived from the noise
floor in :func:`mic_settings_path` (``mic.json`` next to the state file), which the microphone
listener reads (:func:`load_mic_settings`).

Levels are RMS of 16-bit samples over 20 ms frames, given in dB below full scale (dBFS). A
command's level is the mean power of its frames within 30 dB of its loudest, less the noise floor's
power (so noise does not count as speech).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import audio as A
from .errors import AudioDeviceUnavailable, VoiceGuideError
from .files import atomic_write
from .state import load_mic_settings, mic_settings_path
from .protocols import Audio, Speaker

__all__ = ["CheckResult", "run_check", "choose_tip", "mic_settings_path", "load_mic_settings", "save_mic_settings",
           "COMMANDS", "TIPS", "register"]

RATE = 16000
FRAME = 320  # 20 ms
COMMANDS = ("next", "go back", "main menu")
"""What the listener is asked to say (every guide understands them)."""
TIPS = {
    "good": "Your microphone sounds good.",
    "closer": "Your voice is faint: move closer to the microphone, or speak up a little.",
    "tv": "The room is noisy: turn the TV or radio down, or move away from the noise.",
    "headset": "The guide has trouble hearing you here: use a headset microphone if you can.",
    "silent": "I heard nothing from the microphone: check that it is switched on and not muted, then move closer.",
}
GOOD_SNR = 15.0
"""dB: below this the guide often mishears (docs/benchmarks.md: 10 dB costs 10-25 points)."""
HEADSET_SNR = 5.0
"""dB: below this no change of room is likely enough: a headset."""
FAINT_SPEECH = -38.0
"""dBFS: speech quieter than this is faint (a normal voice half a metre away is about -30 to -20)."""
NOISY_ROOM = -50.0
"""dBFS: a noise floor louder than this is a noisy room (a quiet room is about -60 or below)."""


def db(rms: float) -> float:
    return float(20 * np.log10(max(rms, 1e-3) / 32768))


def frame_rms(pcm: bytes) -> np.ndarray:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    n = len(x) // FRAME
    return np.sqrt(np.mean(x[:n * FRAME].reshape(n, FRAME) ** 2, axis=1)) if n else np.zeros(0)


@dataclass
class Attempt:
    asked: str
    heard: str
    right: bool
    speech_db: float | None
    """The command's level (None: nothing heard)."""
    snr_db: float | None


@dataclass
class CheckResult:
    noise_db: float
    speech_db: float | None
    snr_db: float | None
    attempts: list[Attempt] = field(default_factory=list)
    tip: str = "good"
    threshold: float = 0.0
    """The endpointer threshold derived from the noise floor (RMS, 16-bit samples, 20 ms frames)."""

    @property
    def tip_text(self) -> str:
        return TIPS[self.tip]


def choose_tip(noise_db: float, speech_db: float | None, snr_db: float | None, right: int, asked: int) -> str:
    """One tip, the most useful first: nothing heard; a noisy room; faint speech; still misheard; good."""
    if speech_db is None or snr_db is None:
        return "silent"
    if snr_db < HEADSET_SNR:
        return "headset"
    if snr_db < GOOD_SNR:
        return "tv" if noise_db > NOISY_ROOM else "closer"
    if speech_db < FAINT_SPEECH:
        return "closer"
    if right * 2 < asked:  # loud and clear but misheard: the room's echo, a poor microphone
        return "headset"
    return "good"


def endpointer_threshold(noise_rms: float, speech_rms: float | None) -> float:
    """Three times the noise floor (10 dB over it), but never above the midpoint (in dB) of noise and
    speech, and never below 30."""
    t = 3.0 * noise_rms
    if speech_rms:
        t = min(t, float(np.sqrt(noise_rms * speech_rms)))
    return round(max(t, 30.0), 1)


class _Mic:
    """Frames from :class:`voiceguide.mic.Capture` (the guide's own microphone capture)."""

    def __init__(self, capture):
        self.capture = capture
        self.index = capture.count

    def skip(self) -> None:
        """Forget what was heard so far (the guide's own prompt)."""
        self.index = self.capture.count

    def frames(self, seconds: float):
        """Yield up to ``seconds`` of 20 ms frames as they arrive."""
        for _ in range(int(seconds * RATE / FRAME)):
            frame = self.capture.read(self.index, timeout=2.0)
            if frame is None:
                raise AudioDeviceUnavailable("the microphone stopped giving sound")
            self.index += 1
            yield frame

    def record(self, seconds: float) -> bytes:
        return b"".join(self.frames(seconds))

    def phrase(self, threshold: float, wait: float = 6.0, end_pause: float = 0.6, longest: float = 5.0) -> bytes | None:
        """The first phrase (3 of 5 frames above ``threshold``, ended by ``end_pause`` below it) within ``wait`` s."""
        recent: list[bytes] = []
        frames: list[bytes] = []
        quiet = waited = 0
        for frame in self.frames(wait + longest):
            loud = frame_rms(frame)[0] > threshold
            if not frames:
                waited += 1
                recent = (recent + [frame])[-5:]
                if sum(frame_rms(f)[0] > threshold for f in recent) >= 3:
                    frames = list(recent)
                elif waited * FRAME / RATE >= wait:
                    return None
                continue
            frames.append(frame)
            quiet = 0 if loud else quiet + 1
            if quiet * FRAME / RATE >= end_pause or len(frames) * FRAME / RATE >= longest:
                return b"".join(frames[:len(frames) - quiet])
        return b"".join(frames) if frames else None


def _speech_rms(pcm: bytes, noise_rms: float) -> float | None:
    """The phrase's active speech level: the mean power, less the noise's, of its frames within 30 dB
    of its loudest (as ITU-T P.56 measures speech, roughly), as an RMS."""
    power = frame_rms(pcm) ** 2 - noise_rms ** 2
    if len(power) == 0 or power.max() <= 0:
        return None
    return float(np.sqrt(np.mean(power[power > power.max() / 1000])))


def run_check(speaker: Speaker, capture, recognize: Callable[[Audio], object], parse: Callable[[str], tuple], *,
              quiet_seconds: float = 3.0, commands=COMMANDS, wait: float = 6.0,
              before_start: Callable[[], None] | None = None) -> CheckResult:
    """The check, spoken through ``speaker``; ``capture`` is a running :class:`voiceguide.mic.Capture`;
    ``recognize(audio)`` gives a :class:`~voiceguide.protocols.Heard`; ``parse(text)`` its meaning."""
    mic = _Mic(capture)
    speaker.speak("Microphone check.")
    if before_start is not None:
        before_start()
    speaker.speak(f"First, please stay quiet for {quiet_seconds:.0f} seconds, while I listen to the room.")
    mic.skip()
    quiet = mic.record(quiet_seconds)
    levels = frame_rms(quiet)
    noise_rms = float(np.sqrt(np.mean(levels ** 2))) if len(levels) else 0.0
    detect = max(2.5 * noise_rms, 30.0)  # what counts as the listener speaking, during the check
    attempts: list[Attempt] = []
    for i, command in enumerate(commands):
        speaker.speak(f"{'Now' if i == 0 else 'Next'}, please say: {command}.")
        mic.skip()
        pcm = mic.phrase(detect, wait=wait)
        if pcm is None:
            speaker.speak("I heard nothing.")
            attempts.append(Attempt(command, "", False, None, None))
            continue
        s = _speech_rms(pcm, noise_rms)
        pre = int(0.3 * RATE) * 2  # the recogniser gets a little room sound before the phrase, as from the listener
        heard = recognize(Audio(quiet[-pre:] + pcm + quiet[:pre], RATE))
        text = getattr(heard, "text", "") if getattr(heard, "kind", "command") == "command" else ""
        right = bool(text) and parse(text) == parse(command)
        speaker.speak(f"I heard: {text}." if text else "I did not catch that.")
        snr = db(s) - db(noise_rms) if s else None
        attempts.append(Attempt(command, text, right, db(s) if s else None, snr))
    speech = [10 ** (a.speech_db / 10) for a in attempts if a.speech_db is not None]
    speech_db = float(10 * np.log10(np.mean(speech))) if speech else None
    noise_db = db(noise_rms)
    snr_db = speech_db - noise_db if speech_db is not None else None
    right = sum(a.right for a in attempts)
    tip = choose_tip(noise_db, speech_db, snr_db, right, len(attempts))
    result = CheckResult(round(noise_db, 1), None if speech_db is None else round(speech_db, 1),
                         None if snr_db is None else round(snr_db, 1), attempts, tip,
                         endpointer_threshold(noise_rms, 32768 * 10 ** (speech_db / 20) if speech_db is not None else None))
    if snr_db is not None:
        speaker.speak(f"Your voice is {snr_db:.0f} decibels above the room's sound. I understood {right} of "
                      f"{len(attempts)}.")
    speaker.speak(result.tip_text)
    return result


# ---------------------------------------------------------------------- saved settings


def save_mic_settings(result: CheckResult, path: Path) -> None:
    data = {"endpointer_threshold": result.threshold, "noise_floor_dbfs": result.noise_db,
            "speech_dbfs": result.speech_db, "snr_db": result.snr_db, "measured": dt.datetime.now().isoformat(timespec="seconds")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
    except OSError as exc:
        raise VoiceGuideError(f"{path}: cannot save the microphone settings ({exc.strerror or exc})") from None


# ---------------------------------------------------------------------- command


def register(sub, formatter) -> None:
    p = sub.add_parser("mic-check", help="check your microphone and room, by voice",
                       description="A spoken check of the microphone: a few seconds of quiet to measure the room, "
                                   "then three commands to say. It says what it heard, how far your voice is above "
                                   "the room's sound, and one tip.", formatter_class=formatter)
    p.add_argument("--text", action="store_true", help="print what the guide says instead of speaking it")
    p.add_argument("--keys", action="store_true", help="wait for Enter before starting (for keyboard users)")
    p.add_argument("--save", action="store_true",
                   help="save the listening threshold from the measured room noise, for the guide to use")
    p.add_argument("--state", metavar="FILE", help="the state file (voiceguide run --state); mic.json goes beside it")
    p.add_argument("--quiet-seconds", type=float, default=3.0, metavar="S", help="how long to measure the room (default 3)")
    p.add_argument("--engine", metavar="NAME", help="speech engine: espeak, pyttsx3 or piper")
    p.add_argument("--voice", metavar="VOICE", help="voice name")
    p.add_argument("--asr", default="auto", metavar="NAME", help="speech recognizer (default auto)")
    p.add_argument("--content", metavar="PATH", help="content pack (default: the shipped guide)")
    p.add_argument("--json", action="store_true", help="also print the measurements as one JSON line")
    p.set_defaults(func=cmd_mic_check)


def cmd_mic_check(args) -> int:
    from .asr import get_recognizer
    from .content import load_guide
    from .intents import IntentParser
    from .mic import Capture
    from .session import make_speaker

    if not 0.5 <= args.quiet_seconds <= 30:
        raise VoiceGuideError("--quiet-seconds must be between 0.5 and 30")
    reason = A.probe_input()
    if reason:
        raise AudioDeviceUnavailable(f"no microphone: {reason}")
    guide = load_guide(args.content)
    parser = IntentParser(guide)
    speaker = make_speaker("text" if args.text else "auto", guide, engine=args.engine, voice=args.voice, rate=175,
                           earcons=False)
    recognizer = get_recognizer(guide, args.asr, notice=lambda line: print(line, file=sys.stderr))
    capture = Capture()
    try:
        def enter() -> None:
            speaker.speak("Press Enter to start.")
            sys.stdin.readline()

        result = run_check(speaker, capture, recognizer.recognize, lambda t: (lambda i: (i.intent, i.target))(parser.parse(t)),
                           quiet_seconds=args.quiet_seconds, before_start=enter if args.keys else None)
    finally:
        capture.close()
        speaker.close()
    if args.save:
        path = mic_settings_path(Path(args.state) if args.state else None)
        save_mic_settings(result, path)
        print(f"Saved the listening threshold ({result.threshold:g}) in {path}", file=sys.stderr)
    if args.json:
        print(json.dumps({**asdict(result), "tip_text": result.tip_text}))
    return 0
