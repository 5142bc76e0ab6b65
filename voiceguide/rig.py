"""Virtual audio devices for tests and benchmarks: a private PulseAudio server.

:class:`Pulse` starts ``pulseaudio`` on a private socket with:
- ``vg_speaker``: a null sink, the default output; its monitor is recorded to prove sound came out;
- ``vg_micfeed`` + ``vg_mic``: a null sink whose monitor is remapped as the default *source*, so
  whatever is played into ``vg_micfeed`` is what a program hears from its microphone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .audio import read_wav, resample
from .errors import AudioDeviceUnavailable
from .protocols import Audio

__all__ = ["Pulse", "Recorder", "private_pulse", "log_records", "room_noise", "samples", "frame_rms", "loud_times", "RATE"]

RATE = 16000


def log_records(log: Path) -> list[dict]:
    """The records a running session has written so far to its ``--log`` (JSON lines); none yet if no file."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def samples(audio: Audio) -> np.ndarray:
    """The audio at :data:`RATE`, as floats."""
    return np.frombuffer(resample(audio, RATE).pcm, "<i2").astype(np.float64)


def frame_rms(audio: Audio) -> np.ndarray:
    """The RMS of each whole 20 ms frame of ``audio`` (at :data:`RATE`)."""
    x = samples(audio)
    n = len(x) // 320
    return np.sqrt((x[: n * 320].reshape(n, 320) ** 2).mean(axis=1))


def loud_times(audio: Audio, threshold: float = 300.0) -> list[float]:
    """Start times (seconds) of the 20 ms frames of ``audio`` whose RMS is above ``threshold``."""
    return [i * 0.02 for i in np.flatnonzero(frame_rms(audio) > threshold)]


BABBLE = ["People were queueing outside the bakery before dawn.", "He painted the fence a pale shade of green.",
          "The match was postponed because of the storm.", "She keeps her bicycle in the hallway."]
"""Unrelated sentences: summed, they make the babble of a room with the radio on."""


def room_noise(kind: str, snr_db: float, speech: list[Audio], voices: list, seconds: float = 300.0) -> Audio:
    """``seconds`` of room noise at 16 kHz, ``snr_db`` below the mean power of ``speech``: ``white``
    noise, or ``babble`` (the :data:`BABBLE` sentences, each spoken by one of ``voices`` in turn,
    offset in time and summed)."""
    from .tts import render

    n = int(RATE * seconds)
    if kind == "white":
        noise = np.random.default_rng(7).normal(0, 1, n)
    elif kind == "babble":
        noise = sum(np.roll(np.resize(samples(render(t, engine=voices[i % len(voices)])), n), 7919 * i)
                    for i, t in enumerate(BABBLE))
    else:
        raise ValueError(f"unknown room noise {kind!r}: white or babble")
    power = np.mean([np.mean(samples(a) ** 2) for a in speech])
    noise = noise * np.sqrt(power / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return Audio(np.clip(noise, -32768, 32767).astype("<i2").tobytes(), RATE)


class Recorder:
    """Records a source to raw 16 kHz mono PCM in the background.

    Times are measured in the sample domain (frame index / rate from the start of
    the recording): parec delivers data in bursts, so arrival times mean little.
    :attr:`t0` places sample 0 on the monotonic clock: each chunk arrives *after* its last
    sample was captured, so the earliest (arrival - samples so far / rate) is the best estimate.
    """

    def __init__(self, device: str):
        self.proc = subprocess.Popen(["parec", "-d", device, "--raw", "--format=s16le", f"--rate={RATE}",
                                      "--channels=1", "--latency-msec=20"], stdout=subprocess.PIPE)
        self.started = time.monotonic()
        self.data = bytearray()
        self.t0 = float("inf")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            chunk = self.proc.stdout.read(640)
            if not chunk:
                return
            self.data += chunk
            self.t0 = min(self.t0, time.monotonic() - len(self.data) / 2 / RATE)

    def stop(self) -> Audio:
        """Wait until the recording has caught up with the clock, then end it."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if len(self.data) / 2 / RATE >= time.monotonic() - self.started - 0.25:
                break
            time.sleep(0.05)
        self.proc.terminate()
        self.proc.wait(5)
        self._thread.join(5)
        return self.audio

    @property
    def audio(self) -> Audio:
        return Audio(bytes(self.data[: len(self.data) // 2 * 2]), RATE)

    def loud_times(self, threshold: float = 300.0) -> list[float]:
        """Start times (seconds into the recording) of the 20 ms frames whose RMS is above ``threshold``."""
        return loud_times(self.audio, threshold)


class Pulse:
    def __init__(self, root: Path):
        self.root = root
        self.socket = root / "native"
        self.env = {"PULSE_SERVER": f"unix:{self.socket}", "XDG_RUNTIME_DIR": str(root)}
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
             "--log-target=stderr", "--log-level=error",
             "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             "-L", "module-null-sink sink_name=vg_speaker",
             "-L", "module-null-sink sink_name=vg_micfeed",
             "-L", "module-remap-source master=vg_micfeed.monitor source_name=vg_mic"],
            env={**os.environ, **self.env, "HOME": str(root)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):
            if self.pactl("info").returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("PulseAudio did not start: " + self.proc.stderr.read(2000).decode(errors="replace"))
        self.pactl("set-default-sink", "vg_speaker")
        self.pactl("set-default-source", "vg_mic")

    def pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env={**os.environ, **self.env}, capture_output=True, text=True)

    def record_speaker(self) -> Recorder:
        return Recorder("vg_speaker.monitor")

    def record_mic(self) -> Recorder:
        return Recorder("vg_mic")

    def echo_path(self, gain_db: float = 0.0, latency_ms: int = 50) -> str:
        """The room's echo: what the speaker plays reaches the microphone ``latency_ms`` later (20-80 ms
        here), ``gain_db`` louder (a ``module-loopback`` from the speaker's monitor into the mic feed,
        with the listener's commands still mixed in). Returns the module id for :meth:`remove_echo_path`.
        A gain above 0 dB is applied in software (PulseAudio allows volumes over 100%)."""
        proc = self.pactl("load-module", "module-loopback", "source=vg_speaker.monitor", "sink=vg_micfeed",
                          f"latency_msec={latency_ms}", "source_dont_move=true", "sink_dont_move=true",
                          "sink_input_properties=media.name=vg_echo", "remix=true")
        if proc.returncode != 0:
            raise RuntimeError(f"module-loopback did not load: {proc.stderr.strip()}")
        module = proc.stdout.strip()
        for _ in range(50):
            inputs = json.loads(self.pactl("--format=json", "list", "sink-inputs").stdout or "[]")
            mine = [i for i in inputs if str(i.get("owner_module")) == module]
            if mine:
                self.pactl("set-sink-input-volume", str(mine[0]["index"]), f"{gain_db:+.1f}dB")
                return module
            time.sleep(0.1)
        raise RuntimeError("module-loopback made no sink input")

    def remove_echo_path(self, module: str) -> None:
        self.pactl("unload-module", module)

    def play_into_mic(self, audio: Audio | str | os.PathLike, wait: bool = True) -> subprocess.Popen:
        if not isinstance(audio, Audio):
            audio = read_wav(audio)
        proc = subprocess.Popen(["paplay", "-d", "vg_micfeed", "--raw", "--format=s16le", "--channels=1",
                                 f"--rate={audio.sample_rate}"], stdin=subprocess.PIPE,
                                env={**os.environ, **self.env})
        def feed() -> None:  # paplay reads in real time: a long sound would block the caller
            try:
                proc.stdin.write(audio.pcm)
                proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass  # killed before the end

        if wait:
            feed()
            proc.wait(60 + audio.duration)
        else:
            threading.Thread(target=feed, daemon=True).start()
        return proc

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def private_pulse():
    """A private PulseAudio server for the ``with`` block; this process and its children use it.

    Raises :class:`voiceguide.errors.AudioDeviceUnavailable` when PulseAudio is not installed.
    """
    if not shutil.which("pulseaudio") or not shutil.which("parec"):
        raise AudioDeviceUnavailable("PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils)")
    root = Path(tempfile.mkdtemp(prefix="vg-pulse-"))
    server = Pulse(root)
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.close()
        shutil.rmtree(root, ignore_errors=True)
