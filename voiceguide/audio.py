"""Audio plumbing: WAV files, resampling, a player we control, earcons, device probes.

The player is what makes speech interruptible and lets the loop know when speech
has *really* ended (so the microphone never listens to the guide): each
utterance is played by a child ``paplay`` process (PulseAudio/PipeWire), which
exits only when the sound has drained and can be killed at once; where there is
no PulseAudio (macOS, Windows) the same interface is served by sounddevice.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import AudioDeviceUnavailable, AudioFormatError
from .protocols import Audio

__all__ = ["read_wav", "write_wav", "wav_bytes", "parse_wav", "resample", "concat", "silence", "rms", "earcon",
           "Player", "Played", "SinkMonitor", "probe_output", "probe_input"]


# ---------------------------------------------------------------------- WAV


def parse_wav(data: bytes, name: str = "audio") -> Audio:
    """16-bit PCM WAV bytes -> mono :class:`Audio` (channels are averaged)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getcomptype() != "NONE" or w.getsampwidth() != 2:
                raise AudioFormatError(f"{name}: expected 16-bit PCM WAV, got {8 * w.getsampwidth()}-bit "
                                       f"{w.getcomptype().lower()}")
            rate, channels = w.getframerate(), w.getnchannels()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{name}: not a readable WAV file ({exc})") from None
    samples = np.frombuffer(frames[: len(frames) // (2 * channels) * 2 * channels], dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    return Audio(samples.tobytes(), rate)


def read_wav(path: str | os.PathLike) -> Audio:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AudioFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_wav(_fix_streamed_header(data), str(path))


def _fix_streamed_header(data: bytes) -> bytes:
    """espeak-ng --stdout writes 0x7fffffff sizes (it streams); make them true."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        idx = data.find(b"data", 12)
        if idx > 0:
            size = len(data) - idx - 8
            data = (data[:4] + (len(data) - 8).to_bytes(4, "little") + data[8:idx + 4]
                    + size.to_bytes(4, "little") + data[idx + 8:])
    return data


def wav_bytes(audio: Audio) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio.sample_rate)
        w.writeframes(audio.pcm)
    return buf.getvalue()


def write_wav(path: str | os.PathLike, audio: Audio) -> None:
    Path(path).write_bytes(wav_bytes(audio))


def samples(audio: Audio) -> np.ndarray:
    return np.frombuffer(audio.pcm, dtype="<i2")


def resample(audio: Audio, rate: int) -> Audio:
    """Linear-interpolation resampling (ample for speech)."""
    if audio.sample_rate == rate or not audio.pcm:
        return Audio(audio.pcm, rate)
    x = samples(audio).astype(np.float32)
    n = int(round(len(x) * rate / audio.sample_rate))
    y = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)
    return Audio(np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes(), rate)


def silence(seconds: float, rate: int) -> Audio:
    return Audio(b"\0\0" * int(round(seconds * rate)), rate)


def concat(parts: list[Audio], rate: int) -> Audio:
    return Audio(b"".join(resample(p, rate).pcm for p in parts), rate)


def rms(audio: Audio) -> float:
    x = samples(audio).astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


def earcon(name: str, sample_rate: int = 22050) -> Audio:
    """Short generated cues: ``listening`` (two rising notes), ``nomatch`` (a low falling note)."""
    notes = {"listening": [(660, 0.07), (880, 0.09)], "nomatch": [(392, 0.09), (294, 0.14)]}.get(name)
    if notes is None:
        raise ValueError(f"unknown earcon {name!r}")
    out = []
    for freq, dur in notes:
        t = np.arange(int(sample_rate * dur)) / sample_rate
        tone = np.sin(2 * np.pi * freq * t) * 0.25
        ramp = np.minimum(1, np.minimum(t, dur - t) / 0.01)  # 10 ms fades: no clicks
        out.append(tone * ramp)
    pcm = (np.concatenate(out) * 32767).astype("<i2").tobytes()
    return Audio(pcm, sample_rate)


# ---------------------------------------------------------------------- devices


def env_switch(name: str, default: bool) -> bool:
    """An on/off setting from the environment: ``off``/``0``/``no`` turn it off, ``on``/``1``/``yes`` on, anything
    else (or unset) leaves ``default``."""
    value = os.environ.get(name, "").strip().lower()
    if value in {"off", "0", "no"}:
        return False
    if value in {"on", "1", "yes"}:
        return True
    return default


def _forced_off() -> bool:
    return os.environ.get("VOICEGUIDE_AUDIO", "").lower() in {"none", "off", "0"}


def _pulse_ok() -> bool:
    if not shutil.which("pactl") or not shutil.which("paplay"):
        return False
    try:
        return subprocess.run(["pactl", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


_PROBE = r"""
import os, sys
os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # PortAudio prints its own noise ("Error querying device -1")
kind = sys.argv[1]
try:
    import sounddevice as sd
except (ImportError, OSError):
    print("no-portaudio")
    sys.exit(0)
try:
    d = sd.query_devices(kind=kind)
    ok = d and d.get("max_%s_channels" % ("output" if kind == "output" else "input"), 0) > 0
except Exception:
    ok = False
print("ok" if ok else "none")
"""


def _portaudio_probe(kind: str) -> str | None:
    """Ask PortAudio in a child process: a broken configuration can abort the whole process."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, kind], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the audio probe failed ({exc})"
    if proc.returncode == 0 and proc.stdout.strip() == "ok":
        return None
    if proc.stdout.strip() == "no-portaudio":
        return f"no audio {kind}: PortAudio (sounddevice) is not installed"
    return f"no audio {kind} device found"


def probe_output() -> str | None:
    """None if sound can be played here, else a one-line reason."""
    if _forced_off():
        return "audio is switched off (VOICEGUIDE_AUDIO=none)"
    if _pulse_ok():
        return None
    return _portaudio_probe("output")


def probe_input() -> str | None:
    """None if a microphone can be recorded here, else a one-line reason."""
    if _forced_off():
        return "audio is switched off (VOICEGUIDE_AUDIO=none)"
    if _pulse_ok() and shutil.which("parec"):
        return None
    return _portaudio_probe("input")


# ---------------------------------------------------------------------- the player


@dataclass(frozen=True)
class Played:
    """A block of audio the :class:`Player` hands to the device: the reference an echo canceller needs."""

    pcm: bytes
    """Mono s16le samples, exactly as played (empty for an end marker)."""
    sample_rate: int
    """The clip's own rate (not resampled)."""
    t: float
    """``time.monotonic()`` when the block's first sample is handed to the device: the clip's start (just
    before its first write) + ``offset / sample_rate``; the device's own latency is not included."""
    clip: int
    """Serial number of the clip (one per :meth:`Player.play`): each clip is a new stream."""
    offset: int
    """Index of the block's first sample within its clip."""
    end: bool = False
    """End marker: the clip stopped (cut or played out) at ``t``; nothing of it plays after."""


class _Listeners:
    """Listeners told of every block played (the echo canceller's reference): :class:`Player` and
    :class:`SinkMonitor`. Their own lock, so a listener removed while blocks are told cannot deadlock."""

    _what = "player"

    def _init_listeners(self) -> None:
        self._listeners: list[Callable[[Played], None]] = []
        self._listeners_lock = threading.Lock()

    def add_listener(self, fn: Callable[[Played], None]) -> None:
        """Tell ``fn`` every block played from now on (see :class:`Played`)."""
        with self._listeners_lock:
            self._listeners = [*self._listeners, fn]

    def remove_listener(self, fn: Callable[[Played], None]) -> None:
        with self._listeners_lock:
            self._listeners = [f for f in self._listeners if f is not fn]

    def _tell(self, block: Played) -> None:
        for fn in self._listeners:  # a copy: add/remove replace the list
            try:
                fn(block)
            except Exception as exc:  # a broken listener must not stop the guide talking
                self.remove_listener(fn)
                print(f"voiceguide: a {self._what} listener failed and was removed ({type(exc).__name__}: {exc})",
                      file=sys.stderr, flush=True)


DUCK_DB = -20.0
"""How far :meth:`Player.duck` lowers the guide's voice while the listener may be talking over it."""


def sink_input_of(pid: int) -> dict | None:
    """The PulseAudio sink input of the process ``pid`` (paplay), as ``pactl -f json list sink-inputs`` has it
    (``index``, ``volume``, ...), or None."""
    try:
        out = subprocess.run(["pactl", "-f", "json", "list", "sink-inputs"], capture_output=True, text=True,
                             timeout=5).stdout
        inputs = json.loads(out or "[]")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    for item in inputs:
        if str((item.get("properties") or {}).get("application.process.id")) == str(pid):
            return item
    return None


class Player(_Listeners):
    """Plays one clip at a time; ``stop()`` cuts it at once; ``wait()`` tells whether it finished.

    Listeners (:meth:`add_listener`) are told every block played as :class:`Played`, and when a clip ends:
    the echo canceller's reference. They are called from the feeding thread (or the one calling
    :meth:`play`/:meth:`stop`), must not block, and one that raises is removed with a line on stderr.
    """

    def __init__(self, backend: str | None = None, latency_ms: int = 50):
        if backend is None:
            reason = probe_output()
            if reason:
                raise AudioDeviceUnavailable(reason)
            backend = "pulse" if _pulse_ok() else "sounddevice"
        self.backend = backend
        self.latency_ms = latency_ms
        self.device: str | None = None  # a PulseAudio sink to play into (the echo canceller's); None: the default
        self._proc: subprocess.Popen | None = None
        self._stopped = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._lock = threading.Lock()
        self._init_listeners()
        self._clip = 0
        self._clip_t0 = 0.0
        self._clip_rate = 0
        self._clip_fed = 0  # samples of the clip handed over so far
        self._ducked = False
        self._duck_lock = threading.Lock()  # volume changes in the order asked
        self._sink_input: tuple[int, int] | None = None  # (paplay's pid, its sink input's index)
        self.volume_changes = 0
        """Times the player's volume was really changed (ducked or restored): for tests and benchmarks."""

    @property
    def ducked(self) -> bool:
        """The guide's voice is lowered by :data:`DUCK_DB` (:meth:`duck`)."""
        return self._ducked

    def duck(self, on: bool) -> None:
        """Lower the guide's voice by :data:`DUCK_DB` (``on``) or bring it back, for the clip playing now and
        the clips after it, as a voice assistant does while the listener may be talking to it: what they say
        is then heard over a quieter echo. Returns at once (the change is made by ``pactl`` on a thread,
        about 20-50 ms later). PulseAudio only: elsewhere the flag is kept and nothing is changed."""
        with self._lock:
            if on == self._ducked:
                return
            self._ducked = on
            proc = self._proc if self.backend == "pulse" and not self._done.is_set() else None
        if proc is not None:
            threading.Thread(target=self._apply_volume, args=(proc,), daemon=True, name="voiceguide-duck").start()

    def _volume(self) -> int:
        """paplay's and pactl's raw volume (65536 = 100 %; the scale is cubic) for the ducked state now."""
        return int(round(65536 * 10 ** (DUCK_DB / 60))) if self._ducked else 65536

    def _apply_volume(self, proc: subprocess.Popen) -> None:
        with self._duck_lock:
            if proc is not self._proc or proc.poll() is not None:
                return  # that clip is over; the next starts at the volume of the moment
            index = self._sink_input[1] if self._sink_input and self._sink_input[0] == proc.pid else None
            for _ in range(10):  # paplay connects a few ms after it starts
                if index is not None:
                    break
                found = sink_input_of(proc.pid)
                index = None if found is None else int(found["index"])
                if index is None:
                    time.sleep(0.02)
            if index is None:
                return
            self._sink_input = (proc.pid, index)
            try:
                done = subprocess.run(["pactl", "set-sink-input-volume", str(index), str(self._volume())],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                return
            if done.returncode == 0:
                self.volume_changes += 1

    def _tell_end(self, clip: int) -> None:
        with self._lock:
            if clip != self._clip or not self._clip_rate:
                return
            rate, self._clip_rate = self._clip_rate, 0
            t = min(time.monotonic(), self._clip_t0 + self._clip_fed / rate)
        if self._listeners:
            self._tell(Played(b"", rate, t, clip, self._clip_fed, end=True))

    @property
    def is_playing(self) -> bool:
        return not self._done.is_set()

    def play(self, audio: Audio) -> None:
        """Start playing (returns at once)."""
        self.stop()
        self._stopped.clear()
        self._done.clear()
        with self._lock:
            self._clip += 1
            self._clip_rate, self._clip_fed = audio.sample_rate, 0
        clip = self._clip
        if self.backend == "pulse":
            self._proc = subprocess.Popen(
                ["paplay", "--raw", "--format=s16le", "--channels=1", f"--rate={audio.sample_rate}",
                 f"--volume={self._volume()}",
                 f"--latency-msec={self.latency_ms}", "--client-name=VoiceGuide", "--stream-name=speech",
                 *([f"--device={self.device}"] if self.device else [])],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._clip_t0 = time.monotonic()
            threading.Thread(target=self._feed, args=(self._proc, audio.pcm, clip, audio.sample_rate),
                             daemon=True).start()
        else:
            import sounddevice as sd  # lazily: only where there is no PulseAudio

            data = samples(audio)
            self._clip_t0 = time.monotonic()
            sd.play(data, audio.sample_rate, blocking=False)
            self._fed(audio.pcm, clip, audio.sample_rate)
            threading.Thread(target=self._sd_wait, args=(clip,), daemon=True).start()

    def _fed(self, pcm: bytes, clip: int, rate: int) -> None:
        """``pcm`` of ``clip`` has been handed to the device: tell the listeners."""
        if clip != self._clip:
            return  # a clip cut and replaced: its feeder is on its way out
        if not self._listeners:
            self._clip_fed += len(pcm) // 2
            return
        offset = self._clip_fed
        self._clip_fed += len(pcm) // 2
        self._tell(Played(pcm, rate, self._clip_t0 + offset / rate, clip, offset))

    def _feed(self, proc: subprocess.Popen, pcm: bytes, clip: int, rate: int) -> None:
        try:
            for i in range(0, len(pcm), 8192):
                if self._stopped.is_set():
                    break
                self._fed(pcm[i:i + 8192], clip, rate)
                proc.stdin.write(pcm[i:i + 8192])
            proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass
        proc.wait()
        self._tell_end(clip)
        self._done.set()

    def _sd_wait(self, clip: int) -> None:
        import sounddevice as sd

        sd.wait()
        self._tell_end(clip)
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until playback ends; True if it played to the end, False if stopped."""
        self._done.wait(timeout)
        return not self._stopped.is_set() and self._done.is_set()

    def stop(self) -> None:
        """Cut playback now (safe from any thread)."""
        if self._done.is_set():
            return
        self._stopped.set()
        self._tell_end(self._clip)
        if self.backend == "pulse" and self._proc is not None:
            try:
                self._proc.kill()
            except OSError:
                pass
        elif self.backend == "sounddevice":
            import sounddevice as sd

            sd.stop()
        self._done.wait(1.0)


class SinkMonitor(_Listeners):
    """What a PulseAudio sink really plays, recorded from its monitor source (``parec``), told to listeners
    as :class:`Played` blocks (16 kHz, 20 ms): the echo canceller's most exact reference.

    Measured on the rig (load 7-9): the player's own tap (:meth:`Player.add_listener`) is exact in its
    samples but not in its times: each clip's start lands up to 50 ms (cold: a second) off, and a clip can
    jump 40-70 ms mid-way when its stream underruns; the monitor shows those gaps as they were played.
    Times are estimated as :class:`voiceguide.mic.Capture` does (arrival less the audio received); a
    stream that stopped and went on (the sink suspended, samples lost) starts a new clip number, a backlog does
    not (:data:`GAP`). ``sink``: None for the default sink.
    Raises :class:`AudioDeviceUnavailable` where there is no PulseAudio.
    """

    _what = "sink-monitor"

    RATE = 16000
    BLOCK = 320
    GAP = 1.0
    """Seconds a block may arrive later than the stream's clock says before the stream may have stopped (the
    sink suspended, or samples lost). It is a new stream only if it stays that late while blocks come in real
    time (:data:`SETTLE`): a backlog delivered in a burst (this process or parec starved of the CPU) drains back
    to the clock and keeps it. Measured with Piper at load 2-3 (2026-12-03): stalls of 0.7-6 s; taking each as
    a new stream placed its whole backlog at its arrival, seconds late, and the canceller re-placed it block by
    block (a retired stream per 20 ms block, each rendered for every microphone frame after): the guide's echo
    went uncancelled for up to 2 s and the microphone fell further behind."""
    SETTLE = 1.0
    """Seconds of arrivals, all at least :data:`GAP` late by about the same amount (within :data:`DRAIN`), that
    make a new stream: a stream delivered no faster than it plays."""
    DRAIN = 0.2
    """Seconds the lateness must fall by to count as a backlog draining (this process catching up slowly)."""
    HOLD = 10.0
    """Seconds of audio since a suspected gap kept to be told again as the new stream."""

    def __init__(self, sink: str | None = None):
        if not _pulse_ok() or not shutil.which("parec"):
            raise AudioDeviceUnavailable("no PulseAudio sink monitor here (pactl/parec missing or no server)")
        device = f"{sink}.monitor" if sink else "@DEFAULT_MONITOR@"
        try:
            self._proc = subprocess.Popen(
                ["parec", "-d", device, "--raw", "--format=s16le", f"--rate={self.RATE}", "--channels=1",
                 "--latency-msec=10", "--client-name=VoiceGuide", "--stream-name=echo-reference"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise AudioDeviceUnavailable(f"cannot record the sink monitor: {exc}") from None
        self._init_listeners()
        self._reset_clock()
        self._thread = threading.Thread(target=self._read, daemon=True, name="voiceguide-sink-monitor")
        self._thread.start()

    def _reset_clock(self) -> None:
        self._clip, self._t0, self._offset = 0, 0.0, 0
        self._gap: dict | None = None  # a suspected stop: where, how late, the blocks since (to tell again)

    def _read(self) -> None:
        while True:
            chunk = self._proc.stdout.read(self.BLOCK * 2)
            if not chunk:
                return
            for block in self._arrive(chunk, time.monotonic()):
                self._tell(block)

    def _arrive(self, chunk: bytes, now: float) -> list[Played]:
        """The blocks to tell for ``chunk``, received at monotonic time ``now``. The stream's clock is its
        earliest arrival less the audio received before (as :class:`voiceguide.mic.Capture` keeps its own);
        a stream that goes on :data:`GAP` late for :data:`SETTLE` seconds is a new stream from where it first
        came late, told again with its new times (the canceller replaces what it had of it)."""
        n = len(chunk) // 2
        chunk = chunk[: n * 2]
        if self._clip == 0:
            self._clip, self._t0 = 1, now - n / self.RATE
        late = now - (self._t0 + (self._offset + n) / self.RATE)
        if late < 0:
            self._t0 += late
        out = []
        gap = self._gap
        if gap is None and late > self.GAP:
            gap = self._gap = {"offset": self._offset, "since": now, "late": late, "held": [], "t0": math.inf}
        if gap is not None:
            gap["held"].append(chunk)
            gap["t0"] = min(gap["t0"], now - (self._offset - gap["offset"] + n) / self.RATE)
            if late < self.GAP / 2 or self._offset - gap["offset"] > self.HOLD * self.RATE:
                self._gap = None  # a backlog, drained: the clock holds
            elif late < gap["late"] - self.DRAIN:
                gap["late"], gap["since"] = late, now  # draining, slowly: not yet a stream that stopped
            elif now - gap["since"] >= self.SETTLE:
                # as late as ever while blocks came in real time: the stream stopped and went on
                self._gap = None
                out.append(Played(b"", self.RATE, self._t0 + gap["offset"] / self.RATE, self._clip, gap["offset"],
                                  end=True))
                self._clip, self._t0, self._offset = self._clip + 1, gap["t0"], 0
                for c in gap["held"]:
                    out.append(Played(c, self.RATE, self._t0 + self._offset / self.RATE, self._clip, self._offset))
                    self._offset += len(c) // 2
                return out
        out.append(Played(chunk, self.RATE, self._t0 + self._offset / self.RATE, self._clip, self._offset))
        self._offset += n
        return out

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._thread.join(5)
