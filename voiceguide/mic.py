"""The microphone, full duplex: one capture for the whole session, our own endpointer, barge-in.

:class:`Capture` records 16 kHz mono from the moment the listener is made until it is closed
(``parec`` where PulseAudio/PipeWire is there, else a PyAudio stream with ALSA's and JACK's chatter
silenced), into a ring of 20 ms frames. :class:`Endpointer` (adaptive energy, with hysteresis) finds
phrases in it; each phrase keeps :data:`PRE_ROLL` seconds of audio before its onset, so the start of a
word said straight after the listening tone is never lost (the microphone was already open).

:class:`MicListener` runs the endpointer on one thread and the recogniser (``recognize(audio) -> Heard``)
on another, so recognising never holds up the endpointer. Answering sooner (issue 21): the grammar's own
search (:class:`voiceguide.asr.GrammarStream`) runs on each phrase as it arrives, and a phrase ends after
:data:`EARLY_PAUSE` of quiet once that reading is a whole command and has held (else after the full end
pause); after :data:`SPECULATE` of quiet the phrase so far is already handed to the recogniser, so its
reading is under way when the phrase ends. A phrase whose onset falls inside a listening turn is that
turn's answer (that turn's only). A phrase heard
at any other time (the guide talking) is a *barge-in* candidate: if it passes :meth:`MicListener._is_barge_in`
it calls ``on_barge_in`` (the shell passes ``speaker.stop``) and waits, marked ``during_speech``, to be
the next input (no listening tone then); anything else (a cough, the TV, the guide's own voice) is dropped.
With the in-process canceller (the default) a candidate may be any command but leaving (asked at a prompt) and a
bare number (the guide reads numbered lists); open text (a question, a remark) never cuts the guide, nor does a
reading the guide would not understand (not sure enough to act on or ask about: ``Dialog.takes``, handed on by the
session through :meth:`MicListener.judge_with`). Without it (PulseAudio's
canceller, which takes the listener's voice down with the echo, or none; or ``VOICEGUIDE_BARGE=keywords``) a candidate
must be one of :data:`FALLBACK_KEYWORDS` ("stop", "pause", "stop talking", "wait", "hold on"), never words the guide
has just said, and :data:`FALLBACK_MARGIN_DB` above the endpointer's bar (its leftover echo was heard as "wait" in a
test).

While a phrase is said over the guide, the guide lowers its voice by :data:`voiceguide.audio.DUCK_DB`
(:meth:`voiceguide.audio.Player.duck`), as voice assistants do, and brings it back :data:`DUCK_HOLD` after
the phrase ends without cutting it: the rest of the command, or the listener saying it again, is heard
over a quieter echo. It lowers only with the in-process canceller, once its double-talk check hears someone
other than the guide (with PulseAudio's canceller, lowering on level alone lowered it 8 times in 41 s of the
guide talking alone), and only once the canceller has learned the guide's echo and while the echo's timing is
confirmed (before that the guide's own first words lowered it in 7 of 31 rig runs). A phrase heard while the
guide was lowered for it may be any command when any command may cut the guide (``VOICEGUIDE_BARGE=any``),
whether or not the canceller has converged, once it has learned the level of the guide's echo (3 s of its voice):
before that its double-talk check takes the guide's first words for the listener, and they were read as commands
("chemotherapy options") that cut the guide; keywords only then. ``VOICEGUIDE_DUCK=off`` turns lowering off.

With the in-process canceller and ``VOICEGUIDE_ECHO_GATE=on`` the endpointer knows the guide's own voice: outside
a turn a frame counts as the listener's only when it stands :data:`ECHO_GATE_MARGIN` above what the guide's echo
alone leaves in it (:attr:`voiceguide.aec.EchoCanceller.echo_level`, learned from the reference and the output
while the guide talks alone), for a phrase's start and for its going on: a phrase over the guide starts when the
listener starts and ends when they stop, though the guide talks on (before, its echo held the phrase open up to
8 s and the command in it was dropped as too long). A phrase over the guide that the guide's voice explains at
some timing near its own (:data:`ECHO_PHRASE_SHARE`: its echo come through the filter) is never recognised.
Off by default: measured (benchmarks/bargein_bench.py, the 4 quiet rows, 44 commands, two tries, 2026-12-02
22:37-23:28 UTC, load 1-3, interleaved), gate on 33, 36, 34, 35 of 44 (three versions), gate off 38, 36, 36;
false barge-ins in the guide's speech alone 3 in 565 s on, 2 in 423 s off; median time to silence 86-187 ms
on, 118-358 ms off. The failure it mends (a phrase held open by the echo) was rare by then; most misses are
the recogniser rejecting a command said over the guide at full voice, or "skip".

With the in-process canceller converged, a command over the guide other than a pause or stop must stand
:data:`ECHO_CHECK_MARGIN` above what the guide's echo alone leaves after cancellation (``VOICEGUIDE_ECHO_CHECK=off``
turns it off): readings of the faint residual echo cut the guide otherwise.

Outside a turn a cheap gate comes first (:meth:`MicListener._worth_hearing`: length; in keyword mode,
level and the grammar's reading), so the guide's echo and the room do not keep the recogniser busy.

Echo cancellation (``VOICEGUIDE_AEC``: auto = :data:`AEC_DEFAULT`, pulse, inprocess, off): ``inprocess``
runs :class:`voiceguide.aec.EchoCanceller` (a linear filter and a residual echo suppressor, NumPy) on each microphone frame as it arrives, its
reference what the speaker's sink really played (:class:`voiceguide.audio.SinkMonitor`; the player's tap
without PulseAudio). ``pulse``: :class:`PulseEchoCancel` loads PulseAudio's ``module-echo-cancel`` (WebRTC AEC) for
the guide's own streams: the player plays into its sink and the capture records from its source, so the
guide's voice is cancelled from what the recogniser hears (measured 27-45 dB); it is unloaded on close.
Known limit, measured: while the guide talks this canceller also takes the listener's voice 25-50 dB
down, so commands said over it are mostly misheard. ``VOICEGUIDE_AEC=off`` skips cancellation;
``voiceguide doctor`` reports the mode.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from . import audio as A
from .content import Guide
from .errors import AudioDeviceUnavailable, EngineUnavailable, VoiceGuideError
from .intents import IntentParser, bare_stop
from .protocols import END_PAUSE, Audio, Heard, Silence, Speaker, UserInput

__all__ = ["Capture", "Endpointer", "MicListener", "PulseEchoCancel", "aec_mode", "quiet_alsa", "RATE",
           "PRE_ROLL", "FALLBACK_KEYWORDS"]

RATE = 16000
FRAME = 320  # samples: 20 ms
FRAME_S = FRAME / RATE
PRE_ROLL = 0.5
"""Seconds of audio kept before a phrase's onset."""
CUE_ECHO = 0.25
"""Seconds after the listening cue ends in which no phrase may start: its echo, late by the room's path and smeared by
a canceller still adapting. At 0.1 the cue's echo became a turn in a voice walk (2026-12-04, after a barge-in: onset
just past the mask, read as nothing) and the guide said "Sorry, I didn't catch that" to no one. An answer said at once
loses nothing: the phrase starts after the mask and keeps its pre-roll back to the cue's end."""
BARGE_PRE_ROLL = 0.15
"""Seconds kept before the onset of a phrase said over the guide: there they hold the guide's echo more
than the listener's first sound."""
RING_SECONDS = 30.0
TAIL = 5
"""Frames (0.1 s) kept after a phrase's last voiced frame."""
FALLBACK_KEYWORDS = frozenset({"stop", "pause", "stop talking", "wait", "hold on"})
"""Without echo cancellation, the only phrases that cut the guide's speech."""
FALLBACK_MARGIN_DB = 6.0
"""Without echo cancellation, how much louder than the endpointer's threshold a barge-in must be."""
BARGE_END_PAUSE = 0.2
"""Quiet that ends a phrase spoken over the guide (shorter than a turn's: stopping fast matters more)."""
BARGE_MARGIN = 2.0
"""Outside a turn a phrase must be this much (6 dB) louder than the 90th percentile of the last
:data:`RECENT` frames' levels: the residual of the guide's echo."""
RECENT = 75
AEC_WARMUP = 4.0
"""Seconds of the guide's speech the canceller hears before any command may cut it (it has not
adapted to the room before: measured, the first second of echo came through as 'where are we')."""
SPECULATE = 0.1
"""Quiet (seconds) after which the phrase so far is handed to the recogniser, in case it has ended, once
the grammar reads it as a whole command: when the endpointer then ends it there, its reading is ready or
on its way (speech going on drops it; a reading under way cannot be stopped, so pauses inside a command
that the grammar reads as unfinished, "tell me about ...", start none)."""
EARLY_PAUSE = 0.12
"""Quiet that ends a phrase at once (instead of the full end pause) when the grammar's reading of it, run on
the audio as it arrives, is a whole command and has held for :data:`STABLE` seconds."""
EARLY_PAUSE_PREFIX = 0.2
"""The same when the reading is also the start of a longer phrase of the guide ("repeat" of "repeat that",
"stop" of "stop talking"): the pause may be inside the command (measured: "repeat that" and "main menu"
were cut after their first word at 0.12 s on the rig)."""
STABLE = 0.08
BARGE_MAX_AGE = 1.0
"""Outside a turn, a phrase still waiting for the recogniser this long after it ended, with a later phrase
waiting behind it, is dropped unheard (:meth:`MicListener._too_late`): the guide's echo and the room must
not pile up ahead of a command (measured: with every loud phrase
recognised, silence came 1.1 s after the command, 3.2 s at worst, at load 8)."""
BARGE_MAX_LATE = 3.0
"""Outside a turn, the newest phrase (nothing waiting behind it) is dropped unheard only this long after it
ended: a command acted on late beats one dropped on a slow machine (measured: at load 4 the recogniser's
speculative reading of a phrase that then went on kept the thread busy, and a real "number two" over the
guide was dropped by :data:`BARGE_MAX_AGE` alone: 2 of 2 runs at load 4, 4 of 4 at load 7.5)."""
BARGE_MAX = 2.5
"""Outside a turn, a phrase with more voiced seconds than this is never recognised: no command is as long."""
CUT_INTENTS = frozenset({"pause", "stop"})
"""What the keyword phrases (:data:`FALLBACK_KEYWORDS`) mean: outside a turn in keyword mode, a phrase the
grammar reads as anything else is not recognised at all (the cheap gate before the hybrid)."""
BARGE_INTENTS_EXCLUDED = frozenset({"yes", "no", "none"})
"""Intents that never cut the guide: a yes or no only answers a question at the prompt."""
TALK_RING = 500
"""Frames (10 s) of the in-process canceller's double-talk verdicts (and echo levels) kept."""
ECHO_GATE_MARGIN = 1.4
"""Outside a turn, with the in-process canceller: a frame counts as the listener's voice only when it stands
this much (3 dB) above what the guide's echo alone leaves in it (:attr:`voiceguide.aec.EchoCanceller.echo_level`),
for a phrase's start and for its going on: a phrase over the guide ends when the listener stops, though
the guide talks on (``VOICEGUIDE_ECHO_GATE=on``; off, the default: the room's level alone)."""
ECHO_WORDS_HOLD = 1.5
"""Seconds after the guide stops playing an utterance during which a phrase made only of its words is taken for its
echo (the echo's tail and the loopback's latency are well within it; told by the speaker's clock,
``AudioSpeaker.said``, so a stalled microphone thread does not shorten it)."""
DUCK_HOLD = 3.0
"""Seconds the guide's voice stays lowered after a phrase said over it ends without cutting it: a listener
who was not understood says it again, over the quieter guide (people repeat within 1-3 s). Measured
(benchmarks/bargein_bench.py, the issue's 8 rows, 88 commands, said again 1.5 s after the first saying
ended, in-process canceller, any command; 2026-12-02): 1.5 s (the guide came back just as the second saying
began) 46/88 and 43/88 acted on within two tries; 2.5 s 51/88; 3.0 s 56/88 and 55/88 (quiet rooms 33 and
36 of 44, babble 23 and 19), no false barge-in in 4.5 min of guide speech each (docs/benchmarks.md)."""


ECHO_PHRASE_SHARE = 0.4
"""With the gate on, a phrase over the guide of which the guide's voice explains this share at some timing near
its placed one (:meth:`voiceguide.aec.EchoCanceller.echo_share`) is its own echo that the filter missed, never
recognised. Measured offline (synthetic echo): the guide's voice come through 0.87-0.88, a command over the
cancelled echo 0.01, the cancelled echo alone 0.04-0.21. On the rig (2026-12-02) it did not separate them:
the guide alone 0.51 and 0.74, sayings of a real "stop talking" 0.42 and 0.64."""


ECHO_CHECK_MARGIN = 3.0
"""With the in-process canceller converged, a phrase over the guide read as a command that is not a pause or stop
(:data:`CUT_INTENTS`) cuts the guide only when at least :data:`ECHO_CHECK_FRAMES` of its frames stand this much
(9.5 dB) above what the guide's echo alone leaves in them (:attr:`voiceguide.aec.EchoCanceller.echo_level`) and
above the endpointer's bar: a reading of the faint residual echo after the canceller ("speed it up", "about a
cure", "okay go back", seen on the rig) is not the listener's voice (``VOICEGUIDE_ECHO_CHECK=off`` turns it off).
Not before the canceller has converged: its echo level is then the echo's own, and a real "faster" stood above
twice it in only 4 frames. Measured (benchmarks/bargein_bench.py, the 4 quiet rows, 44 commands, two tries,
2026-12-03 05:01-06:04 UTC, load 1.2-4.5): on, 38, 36, 37 of 44 acted on, no false barge-in in 419 s of the guide
alone; off (old code, or lowering rule only), 34, 35, 35, 35, false barge-ins 3 in 567 s ("the one", "bye",
"okay go back"). Traced, converged, commands other than pause/stop: about 45 real ones stood 3 (one "next", which
it dropped: acted on at its second saying), 5 (five), 6 (three), 9-35 (the rest) frames; the guide's echo read as
a command stood 0 ("okay go back", "10") and 2 ("repeat that", cutting the guide just before a "hold on").
``VOICEGUIDE_MIC_TRACE=1`` prints each candidate's count."""
ECHO_CHECK_FRAMES = 5
ECHO_CHECK_FLOOR = 10 ** (FALLBACK_MARGIN_DB / 20)
"""And every command over the guide, a pause or stop too, has its loudest frame this much (6 dB, as in keyword mode)
above the endpointer's bar, converged or not: the guide's own voice come through the canceller faintly was read as
"relapse please" (a definition), 8 of its frames 3x above the canceller's estimate of that echo, its peak under twice
the bar (traced in a session on the rig, 2026-12-03), and as "wait" (peak 1.8x the bar: a CI rehearsal of the 30 s
guide-alone test, 2026-12-03); commands said over the guide peaked 10-60 times the bar there. The bar here is the
endpointer's own (:attr:`_Job.room`: the room), not the higher one the guide's talk sets outside a turn
(:data:`BARGE_MARGIN` over the recent levels): in 10 dB babble that one stood near the commands' own level, and real
commands peaking 1.1-2.0x it were all dropped (babble rows 12/44 acted on; against the room's bar, 18 and 24/44 in two
runs; quiet rows 35/44, then 33 and 37; no false barge-in in 272 s of the guide alone in any run; bargein_bench,
2026-12-04). Only for a phrase the guide was lowered for (the canceller heard someone other than the guide): every
phrase those runs gained was; the guide's echo read as "it's fine" in a voice walk (peak 1.3x the bar, 3.4x the
room's) and the CI's false "wait" were not, and they still face the higher bar (in quiet rooms too the guide's
residual echo raises it, up to 6x the room's)."""


def _echo_check_setting() -> bool:
    """``VOICEGUIDE_ECHO_CHECK`` (on by default): :data:`ECHO_CHECK_MARGIN`."""
    return A.env_switch("VOICEGUIDE_ECHO_CHECK", True)


def _echo_gate_setting() -> bool:
    """``VOICEGUIDE_ECHO_GATE=on``: the near-end voice gate (:data:`ECHO_GATE_MARGIN`). Off by default: measured
    on the rig it did not raise the commands acted on (module docstring)."""
    return A.env_switch("VOICEGUIDE_ECHO_GATE", False)


def _duck_setting() -> bool:
    """``VOICEGUIDE_DUCK`` (on by default; off: the guide never lowers its voice while the listener talks)."""
    return A.env_switch("VOICEGUIDE_DUCK", True)


# ---------------------------------------------------------------------- quiet terminal

_ALSA_HANDLER = None  # kept alive: ALSA calls it for as long as the library is loaded


def quiet_alsa() -> None:
    """Silence ALSA's and JACK's error chatter (``ALSA lib pcm.c:… Unknown PCM``, ``jack server is not
    running``) for this process: ALSA through ``snd_lib_error_set_handler``, JACK by never starting a server."""
    global _ALSA_HANDLER
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    if _ALSA_HANDLER is not None:
        return
    name = ctypes.util.find_library("asound")
    if not name:
        return
    try:
        lib = ctypes.cdll.LoadLibrary(name)
    except OSError:
        return
    proto = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
    _ALSA_HANDLER = proto(lambda *args: None)
    lib.snd_lib_error_set_handler(_ALSA_HANDLER)


@contextmanager
def _stderr_to_null():
    """fd 2 to /dev/null for the block (JACK's client library writes straight to it during PortAudio's init)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


# ---------------------------------------------------------------------- echo cancellation


def _pactl(*args: str, timeout: float = 10) -> subprocess.CompletedProcess | None:
    if not shutil.which("pactl"):
        return None
    try:
        return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


AEC_METHOD = "webrtc"
AEC_ARGS = {"webrtc": "analog_gain_control=0 digital_gain_control=0"}
"""module-echo-cancel's canceller and its arguments (``VOICEGUIDE_AEC_METHOD``/``_ARGS`` override them)."""


class PulseEchoCancel:
    """PulseAudio's ``module-echo-cancel`` (``aec_method=webrtc``) loaded for the guide's own streams.

    Play into :attr:`sink`, record from :attr:`source`; :meth:`close` unloads it. :meth:`load` returns
    None where the sound server does not offer it.
    """

    def __init__(self, module: str, sink: str, source: str):
        self.module, self.sink, self.source = module, sink, source

    @classmethod
    def load(cls) -> "PulseEchoCancel | None":
        if not A._pulse_ok():
            return None
        _unload_stale()
        tag = f"voiceguide_{os.getpid()}_{threading.get_ident() % 100000}"
        sink, source = f"{tag}_ec_sink", f"{tag}_ec_source"
        method = os.environ.get("VOICEGUIDE_AEC_METHOD", AEC_METHOD)
        args = os.environ.get("VOICEGUIDE_AEC_ARGS", AEC_ARGS.get(method, ""))
        proc = _pactl("load-module", "module-echo-cancel", f"aec_method={method}", f"sink_name={sink}",
                      f"source_name={source}", "rate=16000", "channels=1",
                      *([f'aec_args="{args}"'] if args else []),
                      "sink_properties=device.description=VoiceGuide-echo-cancelled",
                      "source_properties=device.description=VoiceGuide-echo-cancelled")
        if proc is None or proc.returncode != 0 or not proc.stdout.strip().isdigit():
            return None
        return cls(proc.stdout.strip(), sink, source)

    def close(self) -> None:
        _pactl("unload-module", self.module)


def _unload_stale() -> None:
    """Unload cancellers left by guides that were killed before they could unload theirs."""
    proc = _pactl("list", "modules", "short")
    for line in (proc.stdout.splitlines() if proc and proc.returncode == 0 else []):
        m = re.match(r"(\d+)\s+module-echo-cancel\s+.*sink_name=voiceguide_(\d+)_", line)
        if m and not _alive(int(m.group(2))):
            _pactl("unload-module", m.group(1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's: alive
    return True


def _barge_any(inprocess: bool) -> bool:
    """Whether any command (not only :data:`FALLBACK_KEYWORDS`) may cut the guide where its echo is
    cancelled: with the in-process canceller by default (it keeps the listener's voice), never by default with
    PulseAudio's WebRTC canceller (it takes the listener's voice down with the echo while the guide talks, and
    the recogniser's readings of what is left made false barge-ins: docs/benchmarks.md, Barge-in).
    ``VOICEGUIDE_BARGE=any`` or ``keywords`` decides it either way."""
    value = os.environ.get("VOICEGUIDE_BARGE", "").strip().lower()
    return value == "any" or (value != "keywords" and inprocess)


AEC_DEFAULT = "inprocess"
"""What ``VOICEGUIDE_AEC=auto`` (the default) means: ``inprocess`` (:class:`voiceguide.aec.EchoCanceller` on the
microphone frames, with the guide's own output as reference) or ``pulse`` (PulseAudio's module-echo-cancel where it
loads); either falls back to none. The in-process canceller keeps the listener's voice (within 1 dB; WebRTC's takes
it 23-58 dB down in double talk), so with it any command may cut the guide: issue 15's barge-in. Measured
(benchmarks/bargein_bench.py --aec auto --commands all, quiet rows, 44 commands, two tries, 2026-12-03, load 4-8):
35 of 44 acted on, no false barge-in in 141 s; the real session driven by keys with the echo path and nobody talking
(benchmarks/session_false_barge.py, 0 and +6 dB): 1 false turn in 628 s ("elaborate", asked about, not acted on).
PulseAudio's canceller was the default until then ("number three" said straight after the listening tone was lost
with the in-process one in 2026-12-02's measurement; that test now passes with it): with it 0 of 40 keywords were
acted on over the guide (2026-12-02)."""
AEC_CHOICES = ("auto", "pulse", "inprocess", "off")


def _aec_setting() -> str:
    """``VOICEGUIDE_AEC``: auto, pulse, inprocess or off (a clear error for anything else)."""
    value = os.environ.get("VOICEGUIDE_AEC", "auto").strip().lower() or "auto"
    if value in {"off", "none", "0", "no"}:
        return "off"
    if value in {"in-process", "in_process", "linear"}:
        return "inprocess"
    if value not in AEC_CHOICES:
        raise VoiceGuideError(f"VOICEGUIDE_AEC={value!r} is not one of {', '.join(AEC_CHOICES)}")
    return value


def _aec_kind(setting: str) -> str:
    return AEC_DEFAULT if setting == "auto" else setting


def aec_mode() -> str:
    """Which echo cancellation barge-in would use here, as one line (for ``voiceguide doctor``)."""
    try:
        kind = _aec_kind(_aec_setting())
    except VoiceGuideError as exc:
        return f"none ({exc})"
    cuts = "any command" if _barge_any(kind == "inprocess") else "only " + ", ".join(sorted(FALLBACK_KEYWORDS))
    if kind == "inprocess":
        try:
            from .aec import EchoCanceller  # noqa: F401
        except ImportError as exc:
            return f"none available (the in-process canceller did not load: {exc}): barge-in takes only " \
                + ", ".join(sorted(FALLBACK_KEYWORDS))
        source = "the speaker's monitor" if A._pulse_ok() and shutil.which("parec") else "the player's output"
        return f"in-process linear echo canceller (reference: {source}): barge-in takes {cuts}"
    ec = PulseEchoCancel.load() if kind == "pulse" else None
    if ec is not None:
        ec.close()
        return f"PulseAudio module-echo-cancel (WebRTC): barge-in takes {cuts}"
    return ("none available (no PulseAudio module-echo-cancel): barge-in takes only "
            + ", ".join(sorted(FALLBACK_KEYWORDS)) if kind == "pulse" else
            "off (VOICEGUIDE_AEC=off): barge-in takes only " + ", ".join(sorted(FALLBACK_KEYWORDS)))


# ---------------------------------------------------------------------- capture


class Capture:
    """16 kHz mono capture, running until :meth:`close`, kept as a ring of 20 ms frames.

    Frame ``i`` is the ``i``-th 20 ms of the recording; :meth:`frame_at` places a monotonic time on
    that clock (sample 0's time is estimated as in :class:`voiceguide.rig.Recorder`: the earliest
    arrival less the audio received so far).
    """

    def __init__(self, device: str | None = None, backend: str | None = None, process=None):
        self.process = process
        """``process(frame, t) -> frame`` applied to each 20 ms frame as it arrives (``t``: the monotonic
        time of its first sample), before anyone reads it: the in-process echo canceller."""
        if backend is None:
            backend = "pulse" if A._pulse_ok() and shutil.which("parec") else "pyaudio"
        self.backend = backend
        self._frames: list[bytes] = []
        self._base = 0  # index of self._frames[0]
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self.t0 = float("inf")
        self._partial = b""
        self._proc = self._pa = self._stream = None
        if backend == "pulse":
            cmd = ["parec", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1", "--latency-msec=20",
                   "--client-name=VoiceGuide", "--stream-name=microphone"]
            if device:
                cmd[1:1] = ["-d", device]
            try:
                self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            except OSError as exc:
                raise AudioDeviceUnavailable(f"cannot record: {exc}") from None
            threading.Thread(target=self._read_parec, daemon=True, name="voiceguide-capture").start()
        else:
            quiet_alsa()
            try:
                import pyaudio
            except ImportError:
                raise AudioDeviceUnavailable("PyAudio is not installed (pip install 'voiceguide[mic]')") from None
            with _stderr_to_null():
                self._pa = pyaudio.PyAudio()
            try:
                self._stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=RATE, input=True,
                                             frames_per_buffer=FRAME, stream_callback=self._callback)
            except OSError as exc:
                self._pa.terminate()
                raise AudioDeviceUnavailable(f"cannot open the microphone ({exc})") from None

    def _read_parec(self) -> None:
        while True:
            chunk = self._proc.stdout.read(FRAME * 2)
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            self._add(chunk)

    def _callback(self, data, frames, info, status):
        import pyaudio

        self._add(data)
        return None, pyaudio.paContinue

    def _add(self, data: bytes) -> None:
        now = time.monotonic()
        data = self._partial + data
        whole = len(data) // (FRAME * 2) * FRAME * 2
        self._partial = data[whole:]
        count = self._count + whole // (FRAME * 2)
        t0 = min(self.t0, now - (count * FRAME + len(self._partial) // 2) / RATE)
        frames = [data[i:i + FRAME * 2] for i in range(0, whole, FRAME * 2)]
        if self.process is not None:  # outside the lock: readers never wait for the canceller
            frames = [self.process(f, t0 + (self._count + k) * FRAME_S) for k, f in enumerate(frames)]
        with self._cond:
            self._frames.extend(frames)
            self._count = count
            self.t0 = t0
            extra = len(self._frames) - int(RING_SECONDS / FRAME_S)
            if extra > 0:
                del self._frames[:extra]
                self._base += extra
            self._cond.notify_all()

    @property
    def count(self) -> int:
        """Frames captured so far."""
        return self._count

    def frame_at(self, t: float) -> int:
        """The frame index captured at monotonic time ``t``."""
        if self.t0 == float("inf"):
            return self._count
        return max(0, int((t - self.t0) / FRAME_S))

    def read(self, index: int, timeout: float | None = None) -> bytes | None:
        """Frame ``index``, waiting up to ``timeout`` for it; None if not there (or closed). Frames
        already dropped from the ring read as silence."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._count > index or self._closed, timeout):
                return None
            if self._count <= index:
                return None
            if index < self._base:
                return b"\0" * FRAME * 2
            return self._frames[index - self._base]

    def audio(self, start: int, end: int) -> Audio:
        """Frames ``start`` to ``end`` (exclusive) as :class:`Audio`."""
        with self._cond:
            start = max(start, self._base)
            end = min(end, self._count)
            pcm = b"".join(self._frames[start - self._base:end - self._base]) if end > start else b""
        return Audio(pcm, RATE)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._stream is not None:
            try:
                self._stream.stop_stream()
                self._stream.close()
            finally:
                self._pa.terminate()


# ---------------------------------------------------------------------- endpointer


def frame_level(frame: bytes) -> float:
    x = np.frombuffer(frame, "<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


class Endpointer:
    """Adaptive energy endpointer over 20 ms frames.

    The noise floor follows quiet frames (down fast, up slowly, never while a phrase is on); a frame
    is voiced above ``max(min_level, floor * ratio)``. A phrase starts when 3 of 5 frames are voiced
    and ends after ``end_pause`` seconds below 0.6 of the threshold and below ``room_ratio`` times the
    room's loud moments (the 90th percentile of the last ``room_window`` seconds before the onset), or
    at ``max_phrase`` seconds; once half a second of room is known, a voiced frame must also stand above
    those loud moments. The floor follows the room's dips: in babble, whose loud moments stand
    well above its dips, a phrase judged by the floor alone never ended before ``max_phrase`` (8 s,
    seen in the noisy-room test with babble 20 dB below the command).
    :meth:`push` returns ``("onset", index)`` and ``("end", index)`` events (index: the first voiced
    frame; the frame after the last voiced one).
    """

    def __init__(self, end_pause: float = END_PAUSE, *, ratio: float = 3.0, min_level: float = 150.0,
                 max_phrase: float = 8.0, room_ratio: float = 1.5, room_window: float = 2.0):
        self.end_pause, self.ratio, self.min_level, self.max_phrase = end_pause, ratio, min_level, max_phrase
        self.room_ratio = room_ratio
        self.floor: float | None = None
        self.in_phrase = False
        self.onset = 0
        self.last_voiced = 0
        self._recent: list[tuple[int, bool]] = []
        self._room: deque[float] = deque(maxlen=max(1, int(room_window / FRAME_S)))
        self._end_level = 0.0

    @property
    def threshold(self) -> float:
        return max(self.min_level, (self.floor or 0.0) * self.ratio)

    def _room_level(self) -> float:
        """``room_ratio`` times the room's loud moments: the 90th percentile of the recent frame levels."""
        return self.room_ratio * float(np.percentile(self._room, 90))

    def end_now(self) -> tuple[str, int]:
        """End the phrase here (early endpointing): ``("end", index)`` as :meth:`push` would give it."""
        self.in_phrase = False
        return "end", self.last_voiced + 1

    def push(self, index: int, level: float, end_pause: float | None = None,
             threshold: float | None = None, echo: float = 0.0) -> tuple[str, int] | None:
        """One frame's RMS ``level``; ``end_pause`` and ``threshold`` (at least the adaptive one)
        override the defaults for this frame. ``echo``: a level the frame must also pass to be voiced, for
        a phrase's start and its going on (what the guide's echo alone would leave in it); a frame
        below it only for that reason does not teach the floor."""
        if self.floor is None:
            self.floor = level
        thr = max(self.threshold, threshold or 0.0)
        if not self.in_phrase:
            # voiced: above the floor's threshold and, once the room is known, above its loud moments
            room = self._room_level() if len(self._room) >= 25 else 0.0
            loud = level > max(thr, room)
            voiced = loud and level > echo
            if not loud:  # the floor learns from quiet only
                rate = 0.2 if level < self.floor else 0.01
                self.floor += rate * (level - self.floor)
            self._recent = (self._recent + [(index, voiced)])[-5:]
            self._room.append(level)
            if sum(v for _, v in self._recent) >= 3:
                self.in_phrase = True
                self.onset = next(i for i, v in self._recent if v)
                self.last_voiced = index
                self._recent = []
                self._end_level = room
                return "onset", self.onset
            return None
        if level > max(0.6 * thr, self._end_level, echo):
            self.last_voiced = index
        pause = self.end_pause if end_pause is None else end_pause
        if (index - self.last_voiced) * FRAME_S >= pause or (index - self.onset) * FRAME_S >= self.max_phrase:
            self.in_phrase = False
            return "end", self.last_voiced + 1
        return None


# ---------------------------------------------------------------------- the listener


_DIGITS = dict(enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                         "fifteen sixteen seventeen eighteen nineteen twenty".split()))


def _smoothed(pcm: bytes, width: int = 5) -> np.ndarray:
    """RMS level of each 20 ms frame, over ``width`` frames around it."""
    x = np.frombuffer(pcm[: len(pcm) // (FRAME * 2) * FRAME * 2], "<i2").astype(np.float64)
    if not len(x):
        return np.zeros(0)
    power = (x.reshape(-1, FRAME) ** 2).mean(axis=1)
    return np.sqrt(np.convolve(power, np.ones(width) / width, mode="same"))


def _words(text: str) -> str:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return " ".join(_DIGITS.get(int(w), w) if w.isdigit() else w for w in words)


def _echoes(heard: str, said: list[str], in_order: bool = False) -> bool:
    """Every word of ``heard`` is in what the guide has just said, or its letters run together in it
    ("good bye" in "Goodbye."): most likely its own voice. With ``in_order``, only the words as one run in it: a
    number with its carrier ("number three") over a list the guide reads ("Say a number: 1, ...; 3, Gilteritinib")
    has every word in it, and a listener answering early, as people do, was ignored twice (voice walk, 2026-12-04)."""
    words = set(_words(heard).split())
    if not words:
        return False
    if in_order:
        return any(f" {_words(heard)} " in f" {_words(t)} " for t in said)
    if words <= set(" ".join(_words(t) for t in said).split()):
        return True
    return "".join(_words(heard).split()) in "".join("".join(_words(t).split()) for t in said)


def saved_threshold(state_path=None) -> float | None:
    """The endpointer threshold ``voiceguide mic-check --save`` measured from the room's noise floor
    (``mic.json`` beside the state file at ``state_path``, the default state file's when None), or None
    when none was saved or it makes no sense: the endpointer's own lower bound then (150)."""
    from .state import load_mic_settings, mic_settings_path

    data = load_mic_settings(mic_settings_path(state_path))
    return float(data["endpointer_threshold"]) if data else None


class _Job:
    """One phrase, or a speculative reading of one, for the recognition thread."""

    def __init__(self, start: int, end: int, in_turn: bool, speech_end: int, level: float, final: bool):
        self.start, self.end, self.in_turn, self.speech_end, self.level = start, end, in_turn, speech_end, level
        self.final = final
        """The endpointer has ended the phrase here (else speculative: speech may go on)."""
        self.stale = False
        """Speech went on after it: not the phrase's reading."""
        self.heard: Heard | None = None
        self.audio: Audio | None = None
        self.delivered = False
        self.serial = 0
        """The number of the turn its onset fell in."""
        self.lowered = False
        """The guide's voice was lowered for it (someone other than the guide was talking)."""
        self.other = True
        """The in-process canceller's double-talk check heard someone other than the guide in one of its frames (set
        when the job is made; lowering needs it too, and lowering on: ``VOICEGUIDE_DUCK``)."""
        self.learned: bool | None = None
        self.converged: bool | None = None
        """The in-process canceller's state when the phrase ended (None: no such canceller). A reading that comes
        late (a loaded machine) is judged by what the canceller knew during the phrase, not after: in a CI rehearsal
        (2026-12-04, load ~6) the guide's first words, heard before the canceller had learned the echo, were read
        "go to the next one" and, judged once it had converged, passed as the listener's."""
        self.room = level
        """The endpointer's own bar at the onset (:attr:`Endpointer.threshold`: its least level, or the room's quiet
        frames times its ratio), without the bar the guide's echo adds outside a turn (:data:`BARGE_MARGIN`)."""
        self.lock = threading.Lock()


class MicListener:
    """A :class:`~voiceguide.protocols.Listener` on a continuous capture, with barge-in (module docstring).

    Within a :meth:`turn` (the listening cue, then the turn is open) :meth:`hear` returns the turn's
    answer; :meth:`listen` is one whole turn. :meth:`barged_in` is True when a barge-in waits: the next
    :meth:`listen` returns it at once, without the cue.
    """

    takes = None
    """Whether the guide would act on a phrase heard over it, or ask about it (``Dialog.takes``; set by
    :meth:`judge_with`): a phrase it would not understand does not cut it (:meth:`_is_barge_in`). None: every
    command may. (A class attribute: tests build listeners without ``__init__``.)"""

    def __init__(self, recognizer, speaker: Speaker | None = None, *, guide: Guide | None = None,
                 device: str | None = None, end_pause: float = END_PAUSE, echo_cancel: str = "auto",
                 capture_backend: str | None = None, min_level: float | None = None):
        self.recognizer = recognizer
        self.speaker = speaker
        self.parser = IntentParser(guide) if guide is not None else None
        self.end_pause = end_pause
        self.on_barge_in = None  # called (from the worker thread) when a command is heard over the guide
        self.on_speech_end = None  # for the end-to-end latency benchmark
        self.on_segment = None  # (kind, heard, start_frame, end_frame) for benchmarks and tests
        if os.environ.get("VOICEGUIDE_MIC_TRACE"):  # a line per phrase heard, on stderr: for tuning
            self.on_segment = lambda kind, heard, a, b: print(
                f"mic: {kind} {heard.text!r} {a * FRAME_S:.2f}-{b * FRAME_S:.2f}s bar {self._onset_level:.0f} "
                f"peak {max(frame_level(f) for f in self._frames(a, b)):.0f} conf {heard.confidence:.2f} playing "
                f"{bool(getattr(getattr(speaker, 'player', None), 'is_playing', False))}", file=sys.stderr, flush=True)
        self.echo: PulseEchoCancel | None = None
        self.aec = None  # voiceguide.aec.EchoCanceller when cancelling in process
        self._talk = np.zeros(TALK_RING, dtype=bool)  # its double-talk verdict on frame i, at i % TALK_RING
        self._echo = np.zeros(TALK_RING)  # its echo level (what the guide's echo alone leaves) on frame i
        self._talked = 0  # frames it has processed: the next one's index (the capture's frame count)
        self._reference = None  # what feeds it: a SinkMonitor, or the player itself
        trace = os.environ.get("VOICEGUIDE_AEC_TRACE")
        try:
            self._aec_trace = open(trace, "w", encoding="utf-8") if trace else None
        except OSError as exc:
            raise VoiceGuideError(f"VOICEGUIDE_AEC_TRACE: cannot write {trace} ({exc.strerror})") from None
        """``VOICEGUIDE_AEC_TRACE=FILE``: the in-process canceller's state for every microphone frame, one tab-separated
        line each (frame, seconds, level in, level out, echo level, delay ms, double talk, unsure, converged, ERLE dB):
        how a false barge-in was traced to a new sentence placed 10 ms off (docs/benchmarks.md)."""
        kind = _aec_kind(echo_cancel)
        player = getattr(speaker, "player", None)
        if kind == "pulse":
            self.echo = PulseEchoCancel.load()
            if self.echo is None and echo_cancel == "pulse":
                raise AudioDeviceUnavailable("PulseAudio module-echo-cancel could not be loaded")
        elif kind == "inprocess" and player is not None:
            self._start_aec(player, required=echo_cancel == "inprocess")
        if self.echo is not None and player is not None:
            player.device = self.echo.sink  # the guide plays through the canceller's sink
        self.mode = "aec" if self.echo is not None or self.aec is not None else "keywords"
        try:
            self.capture = Capture(self.echo.source if self.echo else device, capture_backend,
                                   process=self._cancel if self.aec is not None else None)
        except BaseException:
            self._unload_echo()
            raise
        self.endpointer = Endpointer(end_pause, **({"min_level": min_level} if min_level else {}))
        self._turn_from: int | None = None  # frame from which onsets belong to the open turn
        self._serial = 0  # the open (or last) turn's number: a phrase's answer goes to its own turn only
        self._onset_serial = 0
        self._mask: tuple[int, int] = (-1, -1)  # frames of the listening cue: no onset there
        self._cut = 0  # the last cue's end: no phrase of its turn starts earlier
        self._onset_in_turn, self._onset_level, self._onset_room = False, 0.0, 0.0
        self._failed: BaseException | None = None
        self._player = getattr(speaker, "player", None)
        self._played = 0  # frames heard while the guide played: the canceller adapts over the first seconds
        self.echo_check = _echo_check_setting() and self.aec is not None
        """A command over the guide (not a pause or stop) must stand above its echo (:data:`ECHO_CHECK_MARGIN`)."""
        self.echo_gate = _echo_gate_setting() and self.aec is not None
        """Outside a turn, frames count as speech only above the guide's echo level (:data:`ECHO_GATE_MARGIN`)."""
        self.duck = _duck_setting() and hasattr(self._player, "duck") and self.aec is not None
        """Lower the guide's voice while a phrase is said over it (:data:`DUCK_HOLD`, ``VOICEGUIDE_DUCK``): with
        the in-process canceller only, whose double-talk check tells the listener from the guide's echo.
        Measured with PulseAudio's canceller, lowering on the phrase's level alone: 8 times in 41 s of the
        guide talking with no one else (docs/benchmarks.md)."""
        self._duck_until: int | None = None  # frame after which a lowered guide is brought back
        self._may_duck = False  # the phrase going on is over the guide and has not lowered it yet
        self.ducks = 0
        """Phrases over the guide that lowered its voice (for benchmarks)."""
        self._warned = False
        self._results: queue.Queue = queue.Queue()  # (kind, UserInput, turn number)
        self._busy = threading.Event()  # a phrase with onset in the open turn is being heard
        self._stop = threading.Event()
        self.early = A.env_switch("VOICEGUIDE_MIC_EARLY", True)
        """Early endpointing, speculative readings and the gate (``VOICEGUIDE_MIC_EARLY=off``: the full
        end pause, one reading per phrase, every phrase recognised; for side-by-side measurement)."""
        self._stream = None
        self.endpoints: deque[tuple[int, int]] = deque(maxlen=50)
        """Each phrase's end: (the frame after its last voiced one, the frame at which it was ended)."""
        self._jobs: queue.Queue = queue.Queue()  # _Job, None to end
        self._recogniser = threading.Thread(target=self._recognise, daemon=True, name="voiceguide-asr")
        self._recogniser.start()
        self._worker = threading.Thread(target=self._work, daemon=True, name="voiceguide-mic")
        self._worker.start()

    def _cancel(self, frame: bytes, t: float) -> bytes:
        """The in-process canceller on one microphone frame; its double-talk verdict kept per frame."""
        out = self.aec.process(frame, t)
        n = self._talked  # the capture calls this once per frame, in order, from frame 0
        # its verdict counts once it has learned the echo and while the echo's timing is confirmed: before that
        # (the guide's first seconds, a timing jump, a late reference) the guide's own echo looks like someone else
        self._talk[n % TALK_RING] = bool(self.aec.double_talk) and not self.aec.unsure and self.aec.learned
        self._echo[n % TALK_RING] = self.aec.echo_level
        self._talked = n + 1
        if self._aec_trace is not None:
            self._aec_trace.write(f"{n}\t{n * FRAME_S:.2f}\t{frame_level(frame):.0f}\t{frame_level(out):.0f}\t"
                                  f"{self.aec.echo_level:.0f}\t{getattr(self.aec, 'delay_ms', None) or 0.0:.1f}\t"
                                  f"{int(self.aec.double_talk)}\t{int(self.aec.unsure)}\t{int(self.aec.converged)}\t"
                                  f"{getattr(self.aec, 'erle_db', 0.0):.1f}\n")
        return out

    def _double_talk(self, lo: int, hi: int) -> bool:
        """The in-process canceller found the microphone not explained by the guide's echo (someone else
        talking) in a frame of ``lo``-``hi`` (only the last :data:`TALK_RING` frames are kept)."""
        n = self._talked
        lo, hi = max(lo, n - TALK_RING, 0), min(hi, n)
        return any(self._talk[i % TALK_RING] for i in range(lo, hi))

    def _start_aec(self, player, required: bool) -> None:
        """The in-process canceller, its reference the speaker's sink monitor (what really played) where
        PulseAudio is there, else the player's own output (its tap)."""
        try:
            from .aec import EchoCanceller

            self.aec = EchoCanceller()
            try:
                self._reference = A.SinkMonitor(getattr(player, "device", None))
            except AudioDeviceUnavailable:
                self._reference = player
            self.aec.attach(self._reference)
        except (ImportError, AttributeError, OSError) as exc:
            self.aec = self._reference = None
            if required:
                raise AudioDeviceUnavailable(f"the in-process echo canceller could not start ({exc})") from None

    @classmethod
    def create(cls, guide: Guide, *, speaker: Speaker | None = None, engine: str = "auto",
               model_path: str | None = None, end_pause: float = END_PAUSE, notice=None,
               echo_cancel: str | None = None, state_path=None) -> "MicListener":
        """``echo_cancel``: ``auto`` (:data:`AEC_DEFAULT`, else keywords only), ``pulse`` (PulseAudio's
        canceller or an error), ``inprocess`` (ours or an error), ``off``; default from ``VOICEGUIDE_AEC``.
        The endpointer's threshold is the one ``voiceguide mic-check --save`` measured, where it saved one
        beside ``state_path`` (:func:`saved_threshold`)."""
        from .asr import get_recognizer  # asr never imports mic: no cycle

        echo_cancel = echo_cancel or _aec_setting()

        reason = A.probe_input()
        if reason:
            raise AudioDeviceUnavailable(reason)
        return cls(get_recognizer(guide, engine, model_path, notice=notice), speaker, guide=guide,
                   end_pause=end_pause, echo_cancel=echo_cancel, min_level=saved_threshold(state_path))

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        try:
            self._endpoint()
        except BaseException as exc:  # never deaf in silence: hear() reports it
            self._failed = exc
            self._busy.clear()
            raise
        finally:
            self._jobs.put(None)

    def _make_stream(self):
        """The grammar's search to run on phrases as they arrive (early endpointing, the cheap gate),
        where the recogniser has one and ``VOICEGUIDE_MIC_EARLY`` is not off."""
        maker = getattr(self.recognizer, "stream", None)
        if not self.early or maker is None:
            return None
        try:
            return maker()
        except Exception:  # no early endpointing, but still a microphone
            return None

    def _endpoint(self) -> None:
        """The endpointer thread: frames in, phrases out to the recognition thread (:meth:`_recognise`);
        it never waits for a recogniser, so it never falls behind the microphone."""
        ep, cap = self.endpointer, self.capture
        stream = self._stream = self._make_stream()
        index = cap.count
        start = index
        recent: list[float] = []  # levels of the last RECENT frames
        bar = None
        job: _Job | None | bool = None  # the phrase's speculative reading (False: gated out)
        reading, since, peak = None, 0, 0.0
        speculate, early, early_prefix, stable = (round(x / FRAME_S) for x in (SPECULATE, EARLY_PAUSE,
                                                                               EARLY_PAUSE_PREFIX, STABLE))
        goes_on = False
        while not self._stop.is_set():
            frame = cap.read(index, timeout=0.5)
            if frame is None:
                if cap.closed:
                    return
                continue
            if self._player is not None and self._player.is_playing:
                self._played += 1
            level = frame_level(frame)
            turn_from = self._turn_from  # read once: the shell's thread opens and closes turns meanwhile
            serial = self._serial
            in_turn = turn_from is not None and index >= turn_from
            # Outside a turn the guide may be talking: what is left of its echo sets the bar (a phrase
            # must be BARGE_MARGIN louder than the loudest tenth of the RECENT frames before it).
            if not ep.in_phrase:
                bar = None if in_turn or len(recent) < 10 else BARGE_MARGIN * float(np.percentile(recent, 90))
            i = index
            if self._duck_until is not None and not ep.in_phrase and i >= self._duck_until:
                self._unduck()
            echo = 0.0
            if self.echo_gate and not in_turn and self._talked - TALK_RING < i < self._talked:
                echo = ECHO_GATE_MARGIN * float(self._echo[i % TALK_RING])
            event = ep.push(i, level, None if in_turn else BARGE_END_PAUSE, bar, echo)
            recent = (recent + [level])[-RECENT:]
            index += 1
            if event is not None and event[0] == "onset":
                at = event[1]
                self._onset_level = max(ep.threshold, bar or 0.0)
                self._onset_room = ep.threshold
                lo, hi = self._mask
                if lo <= at < hi:  # the listening cue (or its echo): not speech
                    ep.in_phrase = False
                    continue
                self._onset_in_turn = in_turn and at >= turn_from
                pre = PRE_ROLL if self._onset_in_turn else BARGE_PRE_ROLL
                start = max(at - int(pre / FRAME_S), self._cut if at >= self._cut else 0)
                self._onset_serial = serial
                self._may_duck = not self._onset_in_turn and self.duck and self._player.is_playing
                self._duck_now(at, i)
                if self._onset_in_turn:
                    self._busy.set()
                job, reading, since, peak = None, None, i, 0.0
                if stream is not None:
                    stream.start()
                    stream.feed(cap.audio(start, i + 1).pcm)
                continue
            if event is None:
                if not ep.in_phrase:
                    continue
                self._duck_now(i - 2, i)
                peak = max(peak, level)
                if stream is not None:
                    stream.feed(frame)
                quiet = i - ep.last_voiced
                if quiet == 0:  # speech goes on: a speculative reading is not this phrase's
                    if isinstance(job, _Job):
                        job.stale = True
                    job = None
                    continue
                if stream is not None:
                    words = stream.reading()
                    meaning = stream.meaning(words)
                    if meaning != reading:
                        reading, since = meaning, i
                    if meaning is not None:
                        goes_on = stream.may_go_on(words)
                if quiet >= speculate and job is None and (stream is None or reading is not None):
                    # the same frames the phrase has if it ends here: up to TAIL after its last voiced one
                    job = self._submit(start, min(i + 1, ep.last_voiced + 1 + TAIL), ep, peak, reading,
                                       final=False) or False
                # over the guide a longer phrase of the same start cuts it just the same: no wait for it
                wait = early_prefix if goes_on and self._onset_in_turn else early
                if not (stream is not None and reading is not None and i - since >= stable and quiet >= wait):
                    continue
                event = ep.end_now()  # early endpointing: the grammar's reading is whole and stable
            # the phrase has ended
            at = event[1]
            self.endpoints.append((at, i))
            self._may_duck = False
            if self._duck_until is not None:
                self._duck_until = i + round(DUCK_HOLD / FRAME_S)
            if stream is not None:
                stream.stop()
            if self._onset_in_turn and self.on_speech_end:
                self.on_speech_end()
            if isinstance(job, _Job) and not job.stale and job.speech_end == at:
                self._finalize(job)
            else:
                if isinstance(job, _Job):
                    job.stale = True
                if self._submit(start, at + TAIL, ep, peak, reading, final=True, speech_end=at) is None \
                        and self._onset_in_turn:
                    self._busy.clear()
            job = None

    def _submit(self, start: int, end: int, ep: "Endpointer", peak: float, reading, *, final: bool,
                speech_end: int | None = None) -> "_Job | None":
        """Hand frames ``start``-``end`` to the recognition thread; None when a phrase outside a turn
        cannot be a barge-in (:meth:`_worth_hearing`): it is dropped unheard."""
        in_turn = self._onset_in_turn
        speech_end = ep.last_voiced + 1 if speech_end is None else speech_end
        if not in_turn and not self._worth_hearing(speech_end - ep.onset, peak, reading):
            if final and self.on_segment:
                words = " ".join(str(w) for w in (reading or ()) if w)
                self.on_segment("gated", Heard(words, 0.0, "voice"), start, end)
            return None
        if not in_turn and self._own_echo(start, end):
            if final and self.on_segment:
                self.on_segment("echo", Heard("", 0.0, "voice"), start, end)
            return None
        job = _Job(start, end, in_turn, speech_end, self._onset_level, final)
        job.room = self._onset_room
        job.serial = self._onset_serial
        job.lowered = self._lowered()
        job.other = job.lowered or (self.aec is not None and self._double_talk(start, speech_end))
        if self.aec is not None:
            job.learned, job.converged = bool(self.aec.learned), bool(self.aec.converged)
        self._jobs.put(job)
        return job

    def _worth_hearing(self, voiced: int, peak: float, reading) -> bool:
        """The cheap gate before the recogniser, for a phrase outside a turn: short enough to be a
        command; in keyword mode, :data:`FALLBACK_MARGIN_DB` above the bar and read by the grammar as a
        pause or stop (:data:`CUT_INTENTS`); with any command allowed, read by the grammar as a whole
        command that may cut the guide. Measured (in-process canceller, Piper commands, echo 0 dB, 6 each,
        load 8-9): with the grammar's reading asked, 2 of 6 acted on, silence 350 ms after the command
        (394 worst); level only, 4 of 6 but 1,090 ms (3,227): every loud stretch of echo kept the
        recogniser busy; level only with :data:`BARGE_MAX_AGE`, 2 of 6, 654 ms (1,081)."""
        if voiced * FRAME_S > BARGE_MAX:
            return False
        if self._stream is None or not self.early:
            return True
        lowered = self._lowered()
        if self._any_command(lowered):
            # lowered: someone other than the guide talked (the canceller says): the recogniser decides
            return lowered or (reading is not None and reading[0] not in BARGE_INTENTS_EXCLUDED)
        return (peak > self._onset_level * 10 ** (FALLBACK_MARGIN_DB / 20)
                and reading is not None and reading[0] in CUT_INTENTS)

    def _own_echo(self, start: int, end: int) -> bool:
        """With the near-end gate, a phrase over the guide that is its own voice come through the canceller
        (:data:`ECHO_PHRASE_SHARE`): the gate ends such a burst soon, so it would be short enough to recognise."""
        if not self.echo_gate or not self.aec.learned or not (self._player is not None and self._player.is_playing):
            return False
        pcm = self.capture.audio(start, end).pcm
        out = np.frombuffer(pcm, "<i2").astype(np.float64)
        share = self.aec.echo_share(out, self.capture.t0 + start * FRAME_S)
        if os.environ.get("VOICEGUIDE_MIC_TRACE"):
            print(f"mic: echo share {share:.2f} {start * FRAME_S:.2f}-{end * FRAME_S:.2f}s", file=sys.stderr, flush=True)
        return share >= ECHO_PHRASE_SHARE

    def _lowered(self) -> bool:
        """The guide's voice is lowered for the phrase going on (or just ended) over it."""
        return bool(self.duck and self._player.ducked)

    def _any_command(self, lowered: bool | None = None, job: "_Job | None" = None) -> bool:
        """Whether any command may cut the guide now: any command allowed (:func:`_barge_any`), with the echo cancelled
        and the canceller adapted (in process: it says so; PulseAudio's: :data:`AEC_WARMUP`), or the guide
        lowered for the phrase once the in-process canceller has learned the echo's level
        (:attr:`voiceguide.aec.EchoCanceller.learned`, 3 s of the guide's voice). Before that its double-talk
        check takes the guide's own first words for someone else: traced on the rig (2026-12-03), the guide's
        first sentence, lowered, was read as "chemotherapy options (drug, one)" and cut the guide in 3 of the
        8 rows' first trials, over the listener's "pause"; keywords only then. Once it has converged, any command only
        when its double-talk check heard someone else in the phrase (:attr:`_Job.other`), lowered for or not."""
        if self.mode != "aec" or not _barge_any(self.aec is not None):
            return False
        if lowered is None:
            lowered = self._lowered()
        learned, converged = self._canceller_state(job)
        if lowered and (self.aec is None or learned):
            return True  # lowered for this phrase: the canceller heard someone other than the guide
        if self.aec is not None:
            # converged, and its double-talk check heard someone else in the phrase: in the 30 s guide-alone test (a
            # fresh-clone CI run, then a local run) the guide's own voice, heard by the converged canceller as its echo
            # alone, was read "where are we" (0.47) and "lower the volume" (1.00) and cut the guide; of 117 commands
            # the bench saw cut it, none was heard that way
            return converged and (job is None or getattr(job, "other", True))
        return self._played >= AEC_WARMUP / FRAME_S

    def _finalize(self, job: "_Job") -> None:
        """The endpointer ended the phrase where ``job`` reads it: deliver its reading now, or as soon
        as the recognition thread has it."""
        with job.lock:
            job.final = True
            ready = job.heard is not None and not job.delivered
            job.delivered = job.delivered or ready
        if ready:
            self._deliver(job)

    def _recognise(self) -> None:
        """The recognition thread: one phrase at a time, newest speculation skipped when speech went on."""
        try:
            while True:
                job = self._jobs.get()
                if job is None or self._stop.is_set():
                    return
                if job.stale:
                    continue
                if not job.in_turn and self._too_late(job):
                    if job.final and self.on_segment:
                        self.on_segment("too late", Heard("", 0.0, "voice"), job.start, job.end)
                    continue  # a command over the guide heard this late would cut it too late: drop it
                audio = self.capture.audio(job.start, job.end)
                try:
                    heard = self.recognizer.recognize(audio)
                except Exception as exc:  # one bad phrase must not leave the guide deaf
                    if not self._warned:
                        print(f"voiceguide: the recogniser failed on a phrase ({type(exc).__name__}: {exc})",
                              file=sys.stderr, flush=True)
                        self._warned = True
                    heard = Heard("", 0.0, "voice")
                with job.lock:
                    job.heard, job.audio = heard, audio
                    ready = job.final and not job.delivered and not job.stale
                    job.delivered = job.delivered or ready
                if ready:
                    self._deliver(job)
        except BaseException as exc:
            self._failed = exc
            self._busy.clear()
            raise

    def _too_late(self, job: "_Job") -> bool:
        """A phrase over the guide waited too long for the recogniser: over :data:`BARGE_MAX_AGE` with a
        later phrase waiting behind it (the room and the echo must not pile up ahead of a command), or over
        :data:`BARGE_MAX_LATE` whatever waits. The newest phrase is the listener's last word: a slow
        machine acts on it late rather than not at all."""
        age = (self.capture.count - job.end) * FRAME_S
        if age <= BARGE_MAX_AGE:
            return False
        with self._jobs.mutex:
            behind = any(j is not None and not j.stale and j.start > job.start for j in self._jobs.queue)
        return behind or age > BARGE_MAX_LATE

    def _frames(self, start: int, end: int) -> list[bytes]:
        pcm = self.capture.audio(start, end).pcm
        return [pcm[i:i + FRAME * 2] for i in range(0, len(pcm), FRAME * 2)] or [b""]

    def _deliver(self, job: "_Job") -> None:
        """A phrase's reading: the turn's answer, or a barge-in, or nothing."""
        heard, start, end = job.heard, job.start, job.end
        if job.in_turn:
            if self.on_segment:
                self.on_segment("turn", heard, start, end)
            self._results.put(("turn", heard, job.serial))
            self._busy.clear()
            return
        barge = self._is_barge_in(heard, job.audio, job.level, job.lowered, job.start, job)
        if not barge or not self._above_echo(job, heard):
            if not barge and heard.text and os.environ.get("VOICEGUIDE_MIC_TRACE"):
                self._above_echo(job, heard)  # the trace line only
            if self.on_segment:
                self.on_segment("ignored", heard, start, end)
            return
        if self.on_barge_in:
            self.on_barge_in()
        self._unduck()  # what the guide says next (the answer) is at full voice
        if self.on_segment:
            self.on_segment("barge-in", heard, start, end)
        self._results.put(("barge-in", replace(heard, during_speech=True), job.serial))

    def _saying(self, start: int | None) -> list[str]:
        """The guide's utterances (``AudioSpeaker.said``) playing when the phrase began at frame ``start``, or ended
        less than :data:`ECHO_WORDS_HOLD` before. Told by the speaker's clock, not by when this thread read a frame:
        behind the microphone (a stall of the GIL or the machine), the state read then is not the frame's."""
        said = getattr(self.speaker, "said", None) or []
        if start is None:
            return [text for text, _ in said]
        began = self.capture.t0 + start * FRAME_S
        return [text for text, ended in said if ended is None or ended >= began - ECHO_WORDS_HOLD]

    def _is_barge_in(self, heard: Heard, audio: Audio, level: float | None = None, lowered: bool = False,
                     start: int | None = None, job: "_Job | None" = None) -> bool:
        """A phrase heard outside a turn cuts the guide only if it is a command (module docstring). Words the guide
        is saying, or said up to :data:`ECHO_WORDS_HOLD` before the phrase (frame ``start``) began, never do: its own
        echo. Words of an utterance it finished earlier may: it names commands in its prompts ("say back to return to
        the main menu") and a listener's "main menu" said over the next passage was dropped when every word of its
        last three utterances counted (voice walks, 2026-12-03). Letting such a phrase through when it stood above
        the canceller's echo estimate instead let the guide's own "Say continue" resume it after a pause.

        A reading the guide would not understand (:attr:`takes`: not sure enough to act on or ask about) does not cut
        it: cut, the guide would only say it did not understand. In fresh-clone CI runs its own voice did so twice:
        between two menu items, not lowered for, read "where are we" (0.47; a cheap command the guide only does at
        0.9); and, lowered for (the canceller, not yet converged, took it for someone else), "go back to" (0.29).
        Of 57 commands the bench saw cut the guide, 1 was such a reading (a "faster" at 0.57)."""
        text = heard.text.strip()
        if not text or self.parser is None or heard.kind != "command":
            return False  # open text (a question, a remark) is no command: it never cuts the guide
        intent = self.parser.parse(text)
        if intent.intent in BARGE_INTENTS_EXCLUDED:
            return False
        if intent.intent == "stop" and not bare_stop(text):
            return False  # leaving is asked at a prompt; over the guide "bye" was the guide's own echo (rig, 3 times)
        if _echoes(text, self._saying(start), in_order=intent.intent == "number"):
            return False  # the guide is saying (or has just said) these words: its own echo
        if intent.intent == "number" and not re.search(r"[a-z]", re.sub(r"\d", "", text.lower())):
            return False  # a bare number over the guide: the recogniser's reading of its echo, measured
        if self.takes is not None and not self._takes(heard):
            if os.environ.get("VOICEGUIDE_MIC_TRACE"):
                print(f"mic: not cut for {text!r} ({heard.confidence:.2f}, lowered {lowered}): the guide would not "
                      f"understand it", file=sys.stderr, flush=True)
            return False
        if self._any_command(lowered, job):
            return True
        if _words(text) not in FALLBACK_KEYWORDS:
            return False
        levels = [frame_level(audio.pcm[i:i + FRAME * 2]) for i in range(0, len(audio.pcm), FRAME * 2)]
        bar = self._onset_level if level is None else level
        return bool(levels) and max(levels) > bar * 10 ** (FALLBACK_MARGIN_DB / 20)

    def _takes(self, heard: Heard) -> bool:
        """:attr:`takes`, on the recognition thread: a judge that fails lets the phrase through (as without one)."""
        try:
            return bool(self.takes(heard))
        except Exception:
            return True

    def _stand(self, job: "_Job", margin: float = ECHO_CHECK_MARGIN) -> int:
        """How many frames of ``job`` (up to its last voiced one) stand :data:`ECHO_CHECK_MARGIN` above the echo
        level the canceller gave for them, and above the endpointer's bar (frames older than :data:`TALK_RING`:
        their level alone)."""
        n = self._talked
        count = 0
        for i, frame in zip(range(job.start, job.speech_end), self._frames(job.start, job.speech_end)):
            echo = float(self._echo[i % TALK_RING]) if n - TALK_RING < i < n else 0.0
            count += frame_level(frame) > max(margin * echo, job.level)
        return count

    def _canceller_state(self, job: "_Job | None") -> tuple[bool, bool]:
        """(learned, converged): the in-process canceller's state when ``job``'s phrase ended (:attr:`_Job.converged`),
        else now."""
        if job is not None and getattr(job, "converged", None) is not None:
            return bool(job.learned), bool(job.converged)
        return bool(getattr(self.aec, "learned", True)), bool(getattr(self.aec, "converged", False))

    def _above_echo(self, job: "_Job", heard: Heard) -> bool:
        """A command over the guide that is not a pause or stop stands above the guide's echo left after
        cancellation (:data:`ECHO_CHECK_MARGIN`); always True without the in-process canceller, before it has
        learned the echo's level, or with ``VOICEGUIDE_ECHO_CHECK=off``."""
        learned, converged = self._canceller_state(job)
        if self.aec is None or not learned or self.parser is None:
            return True
        stand = self._stand(job)
        peak = max((frame_level(f) for f in self._frames(job.start, job.speech_end)), default=0.0)
        if os.environ.get("VOICEGUIDE_MIC_TRACE"):
            print(f"mic: stands above the echo in {stand} frames (x1.4 {self._stand(job, 1.4)}, x2 {self._stand(job, 2.0)}, "
                  f"x4 {self._stand(job, 4.0)}; peak {peak / max(job.level, 1e-9):.1f}x the bar, "
                  f"{peak / max(job.room, 1e-9):.1f}x the room's; lowered {job.lowered}, other {job.other}, "
                  f"converged {converged}, "
                  f"erle {getattr(self.aec, 'erle_db', 0.0):.1f}) {job.start * FRAME_S:.2f}-{job.speech_end * FRAME_S:.2f}s "
                  f"{heard.text!r}", file=sys.stderr, flush=True)
        if not self.echo_check:
            return True
        if peak < (job.room if job.lowered else job.level) * ECHO_CHECK_FLOOR:
            return False  # faint: the guide's own voice come through the canceller (a pause or stop too)
        if self.parser.parse(heard.text).intent in CUT_INTENTS:
            return True
        return not converged or stand >= ECHO_CHECK_FRAMES

    def _duck_now(self, lo: int, hi: int) -> None:
        """Lower the guide for the phrase going on over it, once the canceller hears someone other than the
        guide in frames ``lo``-``hi`` (its double-talk verdict lags the onset by a few frames)."""
        if not self._may_duck or not self._double_talk(lo, hi + 1):
            return
        self._may_duck = False
        self._duck_until = 1 << 62  # lowered until the phrase has ended and DUCK_HOLD has passed
        if not self._player.ducked:
            self.ducks += 1
        self._player.duck(True)

    def _unduck(self) -> None:
        self._duck_until = None
        if self.duck and self._player.ducked:
            self._player.duck(False)

    # ------------------------------------------------------------------ Listener

    def expect(self, answers) -> None:
        """The answers the guide's open question expects (``Dialog.answers``): handed to the recogniser, which hears
        an unsure phrase against them alone (``HybridRecognizer.expect``); recognisers without it ignore them."""
        expect = getattr(self.recognizer, "expect", None)
        if expect is not None:
            expect(answers)

    def judge_with(self, takes) -> None:
        """``takes(heard)``: whether the guide would act on a phrase heard over it, or ask about it (:attr:`takes`)."""
        self.takes = takes

    def barged_in(self) -> bool:
        """A barge-in waits to be the next input."""
        return any(kind == "barge-in" for kind, _, _ in list(self._results.queue))

    def listen(self, timeout: float | None) -> UserInput:
        """One listening turn: a waiting barge-in at once; else the cue, then up to ``timeout`` seconds
        for speech to start."""
        if self.barged_in():
            return self.hear(0)
        with self.turn():
            return self.hear(timeout)

    @contextmanager
    def turn(self):
        """Open a listening turn: the cue (masked from the endpointer: it is no answer), then every
        phrase starting from the cue's end belongs to the turn. The microphone was open all along."""
        cap = self.capture
        lo = cap.frame_at(time.monotonic())
        self._cut = lo
        self._serial += 1
        self._unduck()  # the cue and the turn at full voice
        if self.speaker is not None:
            self._mask = (lo, 1 << 62)  # set before the cue plays: the worker may be ahead of us
            self._turn_from = lo
            self.speaker.earcon("listening")
            done = time.monotonic()
            self._cut = cap.frame_at(done)  # a phrase starts no earlier than the cue's end
            self._mask = (lo, cap.frame_at(done + CUE_ECHO))  # + the cue's echo
            if os.environ.get("VOICEGUIDE_MIC_TRACE"):
                print(f"mic: turn opens {lo * FRAME_S:.2f}s, cue to {self._cut * FRAME_S:.2f}s", file=sys.stderr, flush=True)
        else:
            self._turn_from = lo
        try:
            yield self
        finally:
            self._turn_from = None

    def hear(self, timeout: float | None) -> UserInput:
        """The next input: a barge-in first; within a :meth:`turn`, the turn's answer if speech starts
        within ``timeout`` seconds (a phrase already started is waited for)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for i, (kind, inp, _) in enumerate(list(self._results.queue)):
                if kind == "barge-in":
                    with self._results.mutex:
                        del self._results.queue[i]
                    return inp
            try:
                kind, inp, serial = self._results.get(timeout=0.05)
                if kind == "turn" and (self._turn_from is None or serial != self._serial):
                    continue  # its turn is over (a phrase that went on after its turn's answer, say)
                return inp
            except queue.Empty:
                pass
            if self.capture.closed or self._failed is not None:
                raise AudioDeviceUnavailable(f"the microphone stopped working ({self._failed or 'capture ended'})")
            if deadline is not None and time.monotonic() >= deadline and not self._busy.is_set():
                return Silence()

    def close(self) -> None:
        self._stop.set()
        self.capture.close()
        self._worker.join(5)
        self._jobs.put(None)
        self._recogniser.join(5)
        self._unload_echo()
        trace, self._aec_trace = self._aec_trace, None
        if trace is not None:
            trace.close()

    def _unload_echo(self) -> None:
        if self.aec is not None and self._reference is not None:
            self.aec.detach(self._reference)
            if self._reference is not getattr(self.speaker, "player", None):
                self._reference.close()
            self._reference = None
        if self.echo is not None:
            player = getattr(self.speaker, "player", None)
            if player is not None and getattr(player, "device", None) == self.echo.sink:
                player.stop()
                player.device = None
            self.echo.close()
            self.echo = None
