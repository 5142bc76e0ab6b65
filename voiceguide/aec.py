"""In-process linear echo cancellation with the reference the guide itself plays (NumPy only).

The reference comes from :class:`~voiceguide.audio.SinkMonitor` (what the sink really played, where
PulseAudio is there) or from the :class:`~voiceguide.audio.Player`'s tap; either tells
:meth:`EchoCanceller.add_reference` every block as :class:`~voiceguide.audio.Played` (samples, rate, the
monotonic time they played). The microphone side passes each 20 ms frame to :meth:`EchoCanceller.process`
with the monotonic time of its first sample and gets the frame back with the guide's echo taken out.

- **Delay.** Every 0.1 s, GCC-PHAT (whitened cross-correlation) of the last 0.4 s of microphone against
  the reference as placed, within +-60 ms, with a sub-sample peak; a shift of more than a third of a
  sample moves the reference. Where the echo is not found there for 0.4 s (or at first), it is searched
  within 0.5 s, then 2 s. A new clip (a sentence; the sink monitor's stream re-placed after its clock slipped) is
  measured on its own reference while the clip before it is still in the window, which would otherwise confirm the
  old timing for it. The reference is interpolated (windowed sinc, 512-phase table) straight from
  its own rate onto the microphone's 16 kHz grid at that exact delay. Measured on the rig at load 8-10,
  the player's clip times are 0-50 ms off (a second on paplay's cold start) and jump 40-70 ms mid-clip
  when its stream underruns: hence the tracking, and the sink monitor as the better reference.
- **Filter.** A partitioned-block frequency-domain adaptive filter (PBFDAF, constrained, NLMS step
  normalised per bin): 10 ms blocks, ``tail_ms`` of echo tail (default 160 ms) after an 8 ms lead. It
  adapts only while the delay was confirmed in the last 0.15 s; after a delay jump the filter of the last
  good stretch is put back (the room did not change, only the timing).
- **Double talk.** Adaptation is frozen while the microphone is not explained by the echo: the smoothed
  magnitude-squared coherence between the microphone and the aligned reference (or the filter's echo
  estimate, whichever is higher) over 300-3400 Hz falls below :data:`DTD_COHERENCE`, held
  :data:`DTD_HOLD` seconds.
- **Residual echo suppression** (on by default, :data:`SUPPRESS`; ``EchoCanceller(suppress=False)`` for
  the linear filter alone). After the linear filter, per 50 Hz bin of each 10 ms block (Hann window over
  20 ms): the residual echo's power is taken as ``leak x |Y|^2`` (``Y`` the filter's own echo estimate),
  the leak learned per band from blocks without double talk while the delay holds, as speex does: the
  covariance of the output's and the estimate's power fluctuations over the estimate's variance
  (:data:`RES_LEAK`; blind to steady room noise, which a plain power ratio counted as echo). For
  :data:`RES_JUMP_HOLD` after a detected jump in the echo's timing, the echo estimate held over the last
  blocks counts whole (:data:`RES_JUMP_WEIGHT`). Gain ``sqrt(1 - beta R/E)`` on powers smoothed over
  time and frequency, floor :data:`RES_FLOOR_DB`, applied by a causal minimum-phase filter cross-faded
  block to block (no added latency) and never louder than its input block.
- **What the echo alone leaves** (:attr:`EchoCanceller.echo_level`, for the microphone's near-end voice gate,
  ``VOICEGUIDE_ECHO_GATE=on``, off by default): the reference's power envelope times a running 90th percentile
  of the output's power over it, learned from frames of the guide alone (the raw echo path's where the filter
  is known to miss: a clip not yet confirmed, a timing jump, a late reference). :meth:`EchoCanceller.echo_share`:
  how much of a phrase the guide's voice explains within 0.3 s of its placed timing.

Measured (docs/benchmarks.md, "Echo cancellation, in-process"): 30-40 dB on a synthetic sparse echo after
8 s of speech; on the PulseAudio rig at load 7-9, 9-14 dB (quiet room) with the sink monitor, 2-5 dB with
the player's tap, where PulseAudio's WebRTC module reaches 28-39 dB but takes the listener down 6-23 dB
(median) with the echo. Commands recognised over the guide: 37/88 with the monitor, 15/88 with the tap,
2/88 WebRTC, 1/88 raw. Short of the 20 dB goal: after each jump in the echo path's timing 0.1-0.3 s
goes uncancelled, and the loaded rig jumps every few seconds. With the residual suppressor (2026-12-02
13:49-14:54 UTC, new recordings replayed, load 2-7): commands right 40/88 against 33/88 for the linear
filter alone on the same recordings (41 and 32 in the tuning runs: the recogniser's state carries from
phrase to phrase), 1-4 dB more echo taken, the listener 0.1-0.8 dB down (median), 0.27 ms more per 20 ms
frame (0.92 ms in all, load 1.4). Not better in every condition (3 of 8 lost one command). Tried and
not shipped: the leak as a power ratio (33/88: room babble counted as echo), over-suppression whenever the
delay is unconfirmed (23/88), a decision-directed Wiener gain (32/88).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

__all__ = ["EchoCanceller", "cancel", "estimate_delay", "RATE", "FRAME"]

RATE = 16000
FRAME = 320
"""Samples per frame given to :meth:`EchoCanceller.process` (20 ms)."""
BLOCK = 160
"""The adaptive filter's block (10 ms)."""
LEAD = 128
"""Samples of the filter before the measured delay (8 ms): room for a delay found a little late."""
DTD_COHERENCE = 0.55
DTD_HOLD = 0.12
TAPS = 16
"""Windowed-sinc interpolation taps for placing the reference on the microphone's grid."""
PROP = -1.0
STEP_FLOOR = 1.0
"""Proportionate update (IPNLMS over partitions): -1 is plain NLMS. Measured: 0.5 was unstable with a fixed
step and floored at 15 dB with a variable one; plain reaches 45 dB on a synthetic echo."""
SILENT = 1.0
TRACK_WINDOW = 0.4
TRACK_EVERY = 0.1
TRACK_RANGE = 0.06
QUALITY = 8.0
REANCHOR = 0.01
"""Seconds a reference block's time may stray from its stream's clock before the stream is re-placed."""
KEEP = 6
"""Seconds of a reference stream kept before what is being heard now (up to twice that)."""
"""GCC-PHAT peak over the correlation's RMS needed to trust a delay."""
"""Reference power (per sample, int16 scale) below which a block counts as silence."""

SUPPRESS = True
"""Residual echo suppression after the linear filter by default (``EchoCanceller(suppress=...)``)."""
RES_FLOOR_DB = -20.0
"""The suppressor's lowest gain per bin."""
RES_BETA = 1.0
"""Over-subtraction of the estimated residual echo's power (1: exactly the estimate)."""
RES_JUMP_HOLD = 0.4
"""Seconds after a detected jump in the echo's timing (or while the delay is unconfirmed) that the
suppressor also takes the timing-robust echo estimate (the linear echo estimate, held over
:data:`RES_SPREAD_DECAY`) as residual: there the linear filter is known to miss."""
RES_JUMP_WEIGHT = 1.0
RES_ON_LOST = False
"""Also over-suppress while the delay is unconfirmed (the tracker lost the echo: a jump beyond its range,
or the listener's voice hiding the echo from it)."""
"""Share of that timing-robust estimate counted as residual after a jump."""
RES_DT_WEIGHT = 0.0
"""Share of it counted as residual the rest of the time (0: only the learned leak)."""
RES_SPREAD_DECAY = 0.8
"""Per 10 ms block: how slowly the timing-robust echo estimate lets go of a loud bin."""
RES_TAIL_DECAY = 0.5
"""Per 10 ms block: the residual estimate's own release (the echo's tail beyond the filter)."""
LEAK_MIN, LEAK_MAX = 0.003, 1.0
RES_GAIN = "sub"
"""The gain rule: ``sub`` (power subtraction, sqrt(1 - beta R/E)) or ``dd`` (Wiener gain on a
decision-directed signal-to-echo ratio, smoother over time: less musical noise)."""
RES_DD = 0.8
"""The decision-directed ratio's memory per block."""
RES_LEAK = "cov"
"""How the leak is learned: ``ratio`` (the output's power over the echo estimate's, per band) or ``cov``
(speex's way: the covariance of their power fluctuations over the echo estimate's variance, blind to
steady room noise in the output)."""
RES_BANDS = (0, 6, 12, 20, 32, 48, 72, 104, 161)
"""Bins (50 Hz each) of the bands the leak is learned in."""

ECHO_RETURN_START_DB = 0.0
"""The echo return (output power over the reference's, dB) assumed before any is learned (the first frame of
the guide's voice then sets it): the echo as loud as the reference."""
ECHO_RETURN_QUANTILE = 0.9
"""The share of the guide's frames (no double talk) whose output the learned echo return is above."""
ECHO_RETURN_STEP_DB = (2.0, 0.3)
"""Its step up per frame while learning (the first :data:`ECHO_RETURN_FAST` seconds of the guide's speech,
then); the step down is ``step * (1 - q) / q``, so it settles at the quantile."""
ECHO_RETURN_FAST = 3.0
ECHO_RETURN_OUTLIER_DB = 3.0
"""A frame this far above the learned echo return (the listener, most likely, where the double-talk check
missed it) moves it up at a tenth of the step."""
ECHO_HOLD = 0.6
"""Per 20 ms frame: how slowly the reference's power envelope lets go (the echo's tail), after it has held its
peak over the last :data:`ECHO_SPAN` frames: on the rig the echo came up to 60 ms after the reference as
placed, at the start of each clip."""
ECHO_SPAN = 4
ECHO_LATE = 0.5
"""A live reference stream whose newest sample is up to this many seconds short of the frame being heard is
late (the sink monitor delivers in bursts under load): its echo cannot be cancelled, and the bar for that
frame is the raw echo path's over the reference's peak of the last :data:`ECHO_PEAK` seconds."""
ECHO_PEAK = 0.5
ECHO_LAGS = 0.3
"""Seconds either side of the placed reference that :meth:`EchoCanceller.echo_quality` searches."""
ECHO_LOUD = 1e4
"""Reference power (int16 scale, RMS 100) above which a frame teaches the echo return."""


def _err(message: str) -> ValueError:
    return ValueError(f"echo canceller: {message}")


def estimate_delay(mic: np.ndarray, ref: np.ndarray, lo: int, hi: int) -> tuple[float, float]:
    """The lag (samples, fractional) at which ``ref`` best explains ``mic`` (``mic[k + lag] ~ ref[k]``),
    searched over ``lo <= lag <= hi``, by GCC-PHAT; and the peak's quality (its height over the RMS of
    the correlation in the range; above about 6 it is trustworthy)."""
    n = 1 << int(math.ceil(math.log2(len(mic) + len(ref) + 1)))
    M = np.fft.rfft(mic, n)
    R = np.fft.rfft(ref, n)
    cross = M * np.conj(R)
    mag = np.abs(cross)
    band = np.zeros(len(cross), bool)
    band[int(200 * n / RATE):int(6000 * n / RATE)] = True
    band &= np.abs(R) > 1e-3 * np.abs(R).max()
    cross = np.where(band, cross / (mag + 1e-12), 0.0)
    cc = np.fft.irfft(cross, n)
    lags = np.arange(lo, hi + 1)
    vals = cc[lags % n]
    i = int(np.argmax(vals))
    peak = vals[i]
    if len(vals) > 40 and not 16 <= i < len(vals) - 16:
        return float(lags[i]), 0.0  # at the edge of the range: the true peak is outside it
    frac = 0.0
    if 0 < i < len(vals) - 1:
        a, b, c = vals[i - 1], vals[i], vals[i + 1]
        den = a - 2 * b + c
        if den < 0:
            frac = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    spread = float(np.sqrt(np.mean(vals ** 2))) + 1e-12
    return float(lags[i] + frac), float(peak / spread)


@dataclass
class _Clip:
    rate: int
    t0: float
    chunks: list = field(default_factory=list)
    n: int = 0
    end: float = math.inf
    """Clip time (seconds from t0) after which nothing plays."""
    delay: float | None = None
    """Seconds from the nominal time to the microphone; None until measured."""
    verified: bool = False
    """Its delay has been measured (not only taken from the clip before)."""
    data: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    base: int = 0
    """Index in the clip of ``data[0]`` (a long stream, such as a sink monitor, keeps its last seconds only)."""

    held: int = 0
    """Samples in ``data`` (the rest of it is room to grow)."""

    def samples(self) -> tuple[np.ndarray, int]:
        """The samples held and the index of the first (call under the canceller's lock)."""
        if self.chunks:
            more = sum(len(c) for c in self.chunks)
            if self.held + more > len(self.data):
                grown = np.zeros(max(2 * len(self.data), self.held + more, 4096), np.float32)
                grown[:self.held] = self.data[:self.held]
                self.data = grown
            for c in self.chunks:
                self.data[self.held:self.held + len(c)] = c
                self.held += len(c)
            self.chunks = []
        return self.data[:self.held], self.base

    def forget_before(self, t: float) -> None:
        """Drop the samples played more than :data:`KEEP` seconds before clip time ``t`` (under the lock)."""
        drop = int((t - KEEP) * self.rate) - self.base
        if drop > KEEP * self.rate:  # in big steps: copying is not free
            self.samples()
            drop = min(drop, self.held)
            self.data = self.data[drop:self.held].copy()
            self.held -= drop
            self.base += drop


PHASES = 512
"""Fractional positions the interpolation kernel is tabulated at (1/512 sample apart)."""
_TABLES: dict[float, np.ndarray] = {}


def _kernel(frac: np.ndarray, cutoff: float) -> np.ndarray:
    """Windowed-sinc weights for taps -TAPS/2+1..TAPS/2 around each fractional position (from a table)."""
    table = _TABLES.get(cutoff)
    if table is None:
        k = np.arange(-TAPS // 2 + 1, TAPS // 2 + 1)
        u = k[None, :] - (np.arange(PHASES + 1) / PHASES)[:, None]
        w = 0.5 + 0.5 * np.cos(np.pi * np.clip(u / (TAPS / 2), -1, 1))
        table = _TABLES[cutoff] = cutoff * np.sinc(cutoff * u) * w
    return table[np.rint(frac * PHASES).astype(int)]


class EchoCanceller:
    """Linear acoustic echo canceller (module docstring). :meth:`add_reference` from any thread;
    :meth:`process` from one thread, frames in order."""

    def __init__(self, *, tail_ms: float = 160.0, max_delay_ms: float = 2000.0, mu: float = 0.5,
                 suppress: bool | None = None):
        if not 20 <= tail_ms <= 1000:
            raise _err(f"tail_ms must be 20-1000, got {tail_ms}")
        self.tail_ms, self.max_delay, self.mu = tail_ms, max_delay_ms / 1000, mu
        self.suppress = SUPPRESS if suppress is None else bool(suppress)
        self.P = int(math.ceil((tail_ms / 1000 * RATE + LEAD) / BLOCK))
        self.N = 2 * BLOCK
        self.bins = self.N // 2 + 1
        self._lock = threading.Lock()
        self._clips: dict = {}
        self._retired = 0
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget the filter, the delays and the clock."""
        with self._lock:
            self._clips.clear()
        self._W = np.zeros((self.P, self.bins), complex)
        self._X = np.zeros((self.P, self.bins), complex)
        self._xprev = np.zeros(BLOCK)
        self._pxx = np.full(self.bins, 1.0)
        self._S = {k: np.zeros(self.bins, complex if k in ("xd", "yd") else float)
                   for k in ("xx", "dd", "yy", "xd", "yd")}
        self._xhist = np.zeros(2 * BLOCK + LEAD)  # aligned reference, for the coherence without the lead
        self._n = 0  # samples processed
        self._n_ring = 0
        self._t_anchor: float | None = None
        self._n_anchor = 0
        self._mic = np.zeros(int((self.max_delay + 1.7) * RATE))  # the microphone's recent past
        self._last_delay: float | None = None
        self.last_quality = 0.0
        self._lost = 0
        self._aligned_until = -1
        self._W_good = np.zeros((self.P, self.bins), complex)
        self._short_erle = 0.0
        self._sd = self._se = 0.0
        self._dt_until = -1
        self._bad = 0
        self._e_pow = self._d_pow = 0.0
        self.delay_ms: float | None = None
        self.double_talk = False
        self.echo_active = False
        self.erle_db = 0.0
        self.converged = False
        # residual echo suppressor
        nb = self.bins
        self._r_eprev = np.zeros(BLOCK)
        self._r_yprev = np.zeros(BLOCK)
        self._r_E2 = np.zeros(nb)
        self._r_R = np.zeros(nb)
        self._r_spread = np.zeros(nb)
        self._r_sE = np.zeros(len(RES_BANDS) - 1)
        self._r_sY = np.zeros(len(RES_BANDS) - 1)
        self._r_mE = np.zeros(len(RES_BANDS) - 1)
        self._r_mY = np.zeros(len(RES_BANDS) - 1)
        self._r_prio = np.zeros(nb)
        self.leak = np.full(len(RES_BANDS) - 1, 0.1)
        """The learned share of the linear echo estimate's power left in the output, per band."""
        self._r_H = None  # the last block's filter (None: unity)
        self._r_jump_until = -1
        self._r_y = np.zeros(BLOCK)  # the linear echo estimate of the block just processed
        self.suppression_db = 0.0
        """The last block's suppression (power, dB, over the band 300-3400 Hz)."""
        # what the echo alone leaves in the output: the near-end voice detector's bar
        self._env = 0.0
        self._env_span = [0.0] * ECHO_SPAN
        self._env_peak = [0.0] * int(ECHO_PEAK * RATE / FRAME)
        self._taught = [0, 0]  # frames that taught the raw and the output echo return
        self.unsure = False
        """The filter is known to miss in the last frame (:attr:`raw_return_db`)."""
        self.raw_return_db = ECHO_RETURN_START_DB
        """The same for the microphone before cancellation (the echo path alone): the bar where the filter is
        known to miss, in a clip whose delay is not yet confirmed or after a jump in the echo's timing (measured
        on the rig: the first 80 ms of a sentence came through almost whole)."""
        self.echo_return_db = ECHO_RETURN_START_DB
        """Learned: the output's power over the reference envelope's, at :data:`ECHO_RETURN_QUANTILE` of the
        guide's frames without double talk (what is left of its echo after cancellation and suppression)."""
        self.echo_level = 0.0
        """The last frame's output RMS (int16 scale) that the guide's echo alone would reach (at the quantile):
        the output standing above it holds someone else's voice. 0 while the guide is silent, and until the
        echo return has been learned from :data:`ECHO_RETURN_FAST` seconds of the guide's voice (measured on
        the rig: a bar learned over fewer, while the filter was still converging, was the whole echo's, and the
        first command said 1.5-3.5 s into the guide's first sentence was lost in all 4 rows)."""

    # ------------------------------------------------------------------ reference side

    def add_reference(self, block) -> None:
        """A :class:`voiceguide.audio.Played` block (or end marker): store it at its time."""
        with self._lock:
            clip = self._clips.get(block.clip)
            if clip is None:
                if block.end:
                    return
                if block.sample_rate <= 0:
                    raise _err(f"reference sample rate must be positive, got {block.sample_rate}")
                clip = self._clips[block.clip] = _Clip(block.sample_rate, block.t - block.offset / block.sample_rate)
            if block.end:
                clip.end = min(clip.end, block.t - clip.t0)
                return
            slip = block.t - (clip.t0 + block.offset / clip.rate)
            if abs(slip) > REANCHOR and block.offset >= clip.n:
                # the stream's own clock slipped (a sink monitor delivering a backlog under load): what
                # follows is placed by its own time; the part before ends where it begins
                clip.end = min(clip.end, block.t - clip.t0)
                self._retired += 1
                self._clips[("retired", self._retired)] = clip
                clip = self._clips[block.clip] = _Clip(clip.rate, block.t - block.offset / clip.rate, n=block.offset,
                                                       base=block.offset, delay=clip.delay)
            x = np.frombuffer(block.pcm, "<i2").astype(np.float32)
            if block.offset > clip.n:  # a gap: zeros
                clip.chunks.append(np.zeros(block.offset - clip.n, np.float32))
                clip.n = block.offset
            if block.offset < clip.n:
                x = x[clip.n - block.offset:]
            clip.chunks.append(x)
            clip.n += len(x)

    def attach(self, player) -> None:
        player.add_listener(self.add_reference)

    def detach(self, player) -> None:
        player.remove_listener(self.add_reference)

    def _render(self, t: float, n: int, lead: int = LEAD, delay: float | None = None, which: bool = False,
                only: list | None = None):
        """The reference as the microphone hears it at ``t`` .. ``t + n/RATE`` (without the room),
        ``lead`` samples early, each clip at its delay (or ``delay``); zeros where nothing plays. With
        ``which``, also the clips heard in it; with ``only``, those clips alone."""
        out = np.zeros(n)
        heard = []
        if only is None:
            with self._lock:
                only = list(self._clips.values())
        for c in only:
            d = delay if delay is not None else c.delay if c.delay is not None else self._last_delay
            if d is None:
                continue
            start = t - d - c.t0 + lead / RATE  # clip time of the first output sample
            if start > c.n / c.rate + 0.01 or start + n / RATE < -0.01 or start > c.end:
                continue
            with self._lock:
                x, first = c.samples()
            pos = (start + np.arange(n) / RATE) * c.rate - first
            base = np.floor(pos).astype(int)
            frac = pos - base
            idx = base[:, None] + np.arange(-TAPS // 2 + 1, TAPS // 2 + 1)[None, :]
            if not len(x):
                continue
            if idx[0, 0] >= 0 and idx[-1, -1] < len(x):
                vals = x[idx]
            else:
                vals = np.where((idx >= 0) & (idx < len(x)), x.take(idx, mode="clip"), 0.0)
            y = (vals * _kernel(frac, 1.0 if c.rate == RATE else min(1.0, 0.95 * RATE / c.rate))).sum(axis=1)
            y[(pos + first) / c.rate > c.end] = 0.0
            out += y
            if y.any():
                heard.append(c)
        return (out, heard) if which else out

    # ------------------------------------------------------------------ delay

    def _mic_past(self, t: float, n: int) -> np.ndarray | None:
        """``n`` microphone samples from time ``t`` (own clock), if still held and already heard."""
        now = self._t_of(self._n_ring)
        end_back = int(round((now - t) * RATE))  # samples from t to now
        if end_back < n or end_back > len(self._mic):
            return None
        i = len(self._mic) - end_back
        return self._mic[i:i + n]

    def _search(self, base: float | None, lo: float, hi: float, only: list | None = None) -> tuple[float, float, list]:
        """GCC-PHAT over the last :data:`TRACK_WINDOW`: the offset in ``lo..hi`` seconds by which the
        microphone lags the reference placed with delay ``base`` (None: each clip's own); its quality; and
        the clips heard in the window (``only``: the reference of those clips alone)."""
        end = self._t_of(self._n_ring) - max(hi, 0.0)
        n = int(TRACK_WINDOW * RATE)
        ref, clips = self._render(end - TRACK_WINDOW, n, lead=0, delay=base, which=True, only=only)
        if float(np.mean(ref ** 2)) < 1e4:
            return 0.0, 0.0, []
        mic = self._mic_past(end - TRACK_WINDOW + lo, int(round((TRACK_WINDOW + hi - lo) * RATE)))
        if mic is None or float(np.mean(mic ** 2)) < 1e3:
            return 0.0, 0.0, []
        lag, quality = estimate_delay(mic, ref, 0, int(round((hi - lo) * RATE)))
        self.last_quality = quality
        return lo + lag / RATE, quality, clips

    def _track(self) -> None:
        """Keep the reference aligned with the microphone: each clip starts at the last known delay; the
        delay is re-measured every :data:`TRACK_EVERY` (every 0.1 s while a new clip is unverified) within
        +-:data:`TRACK_RANGE` of it and corrected by more than a third of a sample; where the echo is not
        found near it for a second, over the whole range. The rig's echo path drifts (25 ppm) and jumps
        10-20 ms now and then, and each clip's start is off its nominal time by up to 50 ms under load."""
        if self._last_delay is None or self._lost >= 4:
            d, q, clips = self._search(0.0, -0.05, 0.5)
            if q < QUALITY and (self._lost >= 4 or self._last_delay is None):
                d, q, clips = self._search(0.0, -0.05, self.max_delay)
            if q >= QUALITY:
                for c in clips:
                    c.delay, c.verified = d, True
                self._last_delay, self._lost = d, 0
                self.delay_ms = d * 1000
            elif clips:
                self._lost += 1
            return
        off, q, clips = self._search(None, -TRACK_RANGE, TRACK_RANGE)
        if not clips:
            return
        fresh = [c for c in clips if not c.verified]
        if fresh and len(fresh) < len(clips):
            # a new clip beside one already placed: its timing is measured on its own audio. The window is
            # then mostly the clip before it, whose timing it would confirm for the new one, which can be
            # 10 ms off (traced on the rig under load: each new sentence's echo uncancelled for 0.2 s while
            # counted as sure, the guide's own voice taken for a listener and lowered for, read as a command)
            off, q, clips = self._search(None, -TRACK_RANGE, TRACK_RANGE, only=fresh)
            if not clips or q < QUALITY:
                return  # too little of it heard yet: it stays unverified (unsure); not counted as the echo lost
        if q < QUALITY:
            self._lost += 1
            return
        self._lost = 0
        if abs(off) > 0.001:  # a jump (the stream restarted, or an underrun): the filter from before it still fits
            self._W[:] = self._W_good
            self._r_jump_until = self._n + int(RES_JUMP_HOLD * RATE)
        self._aligned_until = self._n + int(TRACK_EVERY * 1.5 * RATE)
        for c in clips:
            d = (c.delay if c.delay is not None else self._last_delay)
            if abs(off) > 0.33 / RATE:
                d += off
            c.delay, c.verified = d, True
            self._last_delay = d
        self.delay_ms = self._last_delay * 1000
        if abs(off) <= 0.001 and self._short_erle >= 10.0:
            self._W_good = self._W.copy()

    def _forget_old(self, now: float) -> None:
        with self._lock:
            for c in self._clips.values():
                c.forget_before(now - c.t0 - self.max_delay)
            for k in [k for k, c in self._clips.items()
                      if c.t0 + min(c.end, c.n / c.rate) + (c.delay or self._last_delay or 0) + 0.5 + self.max_delay < now]:
                del self._clips[k]

    # ------------------------------------------------------------------ microphone side

    def _t_of(self, n: int) -> float:
        return (self._t_anchor or 0.0) + (n - self._n_anchor) / RATE

    def process(self, frame: bytes, t: float) -> bytes:
        """One 20 ms frame (640 bytes of s16le at 16 kHz) captured from monotonic time ``t``: the frame
        with the echo taken out."""
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise _err(f"frame must be bytes (s16le), got {type(frame).__name__}")
        if len(frame) != FRAME * 2:
            raise _err(f"frame must be {FRAME * 2} bytes ({FRAME} samples at 16 kHz), got {len(frame)}")
        if self._t_anchor is None or abs(t - self._t_of(self._n)) > 0.02:
            self._t_anchor, self._n_anchor = float(t), self._n
        d = np.frombuffer(frame, "<i2").astype(np.float64)
        self._mic = np.roll(self._mic, -FRAME)
        self._mic[-FRAME:] = d
        self._n_ring = self._n + FRAME  # the ring ends here
        t0 = self._t_of(self._n)
        if self._n % (int(TRACK_EVERY * RATE) // FRAME * FRAME) == 0:
            self._track()
            self._forget_old(t0)
        ref, clips = self._render(t0, FRAME, which=True)
        late = self._reference_late(t0)
        unsure = late or self._n < self._r_jump_until or any(not c.verified for c in clips)
        out = np.empty(FRAME)
        for b in range(0, FRAME, BLOCK):
            self._r_y = np.zeros(BLOCK)
            lin = self._block(d[b:b + BLOCK], ref[b:b + BLOCK])
            out[b:b + BLOCK] = self._suppress(lin, self._r_y) if self.suppress else lin
        self._n += FRAME
        self._echo_return(float(np.mean(ref * ref)), float(np.mean(d * d)), float(np.mean(out * out)), unsure, late)
        if not self.echo_active and not self._X.any():
            return bytes(frame)
        return np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()

    @property
    def learned(self) -> bool:
        """The echo return has been learned (:attr:`echo_level` is given)."""
        return self._taught[1] * FRAME >= ECHO_RETURN_FAST * RATE

    def echo_share(self, out: np.ndarray, t: float) -> float:
        """How much of ``out`` (output samples heard from monotonic time ``t``) the guide's voice explains at its
        best timing within :data:`ECHO_LAGS` of where the reference is placed: the largest squared normalised
        correlation with the reference (0-1; 0 where the guide was silent). The guide's own voice that the
        filter missed (its timing jumped, its reference came late) comes through nearly whole; a listener
        over the cancelled echo shares little with it."""
        m = int(ECHO_LAGS * RATE)
        out = np.asarray(out, float)
        n = len(out)
        ref = self._render(t - ECHO_LAGS, n + 2 * m, lead=0)
        e_out = float(out.dot(out))
        if n < FRAME or float(np.mean(ref ** 2)) < ECHO_LOUD or e_out <= 0:
            return 0.0
        size = 1 << int(math.ceil(math.log2(len(ref) + n)))
        cc = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(out, size)), size)[:2 * m + 1]
        c = np.concatenate([[0.0], np.cumsum(ref * ref)])
        e_ref = c[n:n + 2 * m + 1] - c[:2 * m + 1]
        ok = e_ref > 1e-6 * float(e_ref.max()) + 1.0  # lags where the guide is silent explain nothing
        if not ok.any():
            return 0.0
        return float(min(1.0, np.max(cc[ok] * cc[ok] / (e_out * e_ref[ok]))))

    def _reference_late(self, t0: float) -> bool:
        """A live reference stream has not yet delivered what the microphone hears in the frame from ``t0``."""
        with self._lock:
            clips = list(self._clips.values())
        for c in clips:
            d = c.delay if c.delay is not None else self._last_delay
            if d is None or c.end != math.inf:
                continue
            short = t0 + FRAME / RATE - d - c.t0 - c.n / c.rate
            if 0 < short < ECHO_LATE:
                return True
        return False

    def _echo_return(self, ref_pow: float, mic_pow: float, out_pow: float, unsure: bool, late: bool = False) -> None:
        """Near-end voice detection's bar for this frame (:attr:`echo_level`): the reference's power envelope
        (held over the echo's tail) times the echo return learned from frames of the guide alone (the raw
        echo path's where the filter is known to miss)."""
        self._env_span = self._env_span[1:] + [ref_pow]
        self._env = max(max(self._env_span), ECHO_HOLD * self._env)
        self._env_peak = self._env_peak[1:] + [self._env]
        if late:  # the reference is not here yet: the guide may be as loud as it was lately
            self._env = max(self._env_peak)
        if self._env > ECHO_LOUD and not self.double_talk and not late:
            n = self._taught
            up = ECHO_RETURN_STEP_DB[0 if n[0] * FRAME < ECHO_RETURN_FAST * RATE else 1]
            self.raw_return_db = _quantile_step(self.raw_return_db, 10 * math.log10((mic_pow + 1.0) / self._env),
                                                up, not n[0])
            n[0] += 1
            if not unsure:
                up = ECHO_RETURN_STEP_DB[0 if n[1] * FRAME < ECHO_RETURN_FAST * RATE else 1]
                self.echo_return_db = _quantile_step(self.echo_return_db,
                                                     10 * math.log10((out_pow + 1.0) / self._env), up, not n[1])
                n[1] += 1
        self.unsure = unsure
        ret = max(self.raw_return_db, self.echo_return_db) if unsure else self.echo_return_db
        self.echo_level = math.sqrt(self._env * 10 ** (ret / 10)) if self.learned and self._env > 1.0 else 0.0

    def _block(self, d: np.ndarray, x: np.ndarray) -> np.ndarray:
        N, L = self.N, BLOCK
        xx = np.concatenate([self._xprev, x])
        self._xprev = x
        Xn = np.fft.rfft(xx)
        self._X = np.roll(self._X, 1, axis=0)
        self._X[0] = Xn
        self._xhist = np.concatenate([self._xhist[L:], x])
        px = float(np.mean(x * x))
        self.echo_active = px > SILENT or float(np.mean(self._xhist ** 2)) > SILENT
        if not self._X.any():
            return d
        Y = (self._W * self._X).sum(axis=0)
        y = np.fft.irfft(Y, N)[L:]
        self._r_y = y
        e = d - y
        # double talk: is the microphone explained by the echo?
        Dn = np.fft.rfft(np.concatenate([self._dprev if hasattr(self, "_dprev") else np.zeros(L), d]))
        self._dprev = d
        Xa = np.fft.rfft(self._xhist[:2 * L])  # the reference without the lead: as the microphone block hears it
        Yf = np.fft.rfft(np.concatenate([self._yprev if hasattr(self, "_yprev") else np.zeros(L), y]))
        self._yprev = y
        a = 0.8
        S = self._S
        S["xx"] = a * S["xx"] + (1 - a) * np.abs(Xa) ** 2
        S["dd"] = a * S["dd"] + (1 - a) * np.abs(Dn) ** 2
        S["yy"] = a * S["yy"] + (1 - a) * np.abs(Yf) ** 2
        S["xd"] = a * S["xd"] + (1 - a) * Xa * np.conj(Dn)
        S["yd"] = a * S["yd"] + (1 - a) * Yf * np.conj(Dn)
        band = slice(6, 69)  # 300-3400 Hz
        w = S["dd"][band]
        coh_x = float((np.abs(S["xd"][band]) ** 2 / (S["xx"][band] * S["dd"][band] + 1e-9)).dot(w) / (w.sum() + 1e-9))
        coh_y = float((np.abs(S["yd"][band]) ** 2 / (S["yy"][band] * S["dd"][band] + 1e-9)).dot(w) / (w.sum() + 1e-9))
        pd, pe = float(np.mean(d * d)), float(np.mean(e * e))
        loud_ref = px > 100.0
        if loud_ref and max(coh_x, coh_y) < DTD_COHERENCE and pd > 100.0:
            self._dt_until = self._n + int(DTD_HOLD * RATE)
        self.double_talk = self._n < self._dt_until
        # adapt (constrained NLMS per bin)
        # per-bin power over the filter's whole window, rising at once with an onset (after espeak's exact
        # silences a slow average would make the step many times too big)
        self._pxx = 0.9 * self._pxx + 0.1 * np.abs(Xn) ** 2
        if loud_ref and not self.double_talk:
            a3 = 0.8
            self._sd, self._se = a3 * self._sd + (1 - a3) * pd, a3 * self._se + (1 - a3) * pe
            self._short_erle = 10 * math.log10((self._sd + 1e-9) / (self._se + 1e-9))
        if loud_ref and not self.double_talk and self._n < self._aligned_until:
            E = np.fft.rfft(np.concatenate([np.zeros(L), e]))
            # proportionate steps (IPNLMS over partitions): the partitions holding the echo learn fastest
            norm = (np.abs(self._W) ** 2).sum(axis=1)
            share = (1 - PROP) / (2 * self.P) + (1 + PROP) * norm / (2 * norm.sum() + 1e-9)
            # smaller steps as the echo goes down (less misadjustment), full steps while it is still loud
            step = self.mu * min(1.0, max(STEP_FLOOR, 4 * self._e_pow / (self._d_pow + 1e-9)))
            G = (step * share[:, None]) * np.conj(self._X) * E / (self._pxx + 1e-3 + 1e2 * L)
            g = np.fft.irfft(G, N, axis=1)
            g[:, L:] = 0.0
            self._W += np.fft.rfft(g, N, axis=1)
            # echo-only statistics
            a2 = 0.95
            self._d_pow = a2 * self._d_pow + (1 - a2) * pd
            self._e_pow = a2 * self._e_pow + (1 - a2) * pe
            self.erle_db = 10 * math.log10((self._d_pow + 1e-9) / (self._e_pow + 1e-9))
            self.converged = self.delay_ms is not None and self.erle_db >= 10.0
        if pe > 2 * pd and pd > 0:  # never louder than the microphone: a diverged filter
            self._bad += 1
            if self._bad > 25 and not self.double_talk:
                self._W[:] = 0
                self._bad = 0
            return d
        self._bad = 0
        return e

    # ------------------------------------------------------------------ residual echo suppression

    def _suppress(self, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The residual echo suppressor on one block of the linear filter's output ``e`` (its echo
        estimate ``y``): a gain per bin, applied by a causal (minimum-phase) filter, so no latency."""
        L, N = BLOCK, self.N
        win = _hann(N)
        ee = np.concatenate([self._r_eprev, e])
        yy = np.concatenate([self._r_yprev, y])
        self._r_eprev, self._r_yprev = e, y
        if not y.any() and self._r_H is None and not self._r_R.any():
            return e
        E2 = np.abs(np.fft.rfft(ee * win)) ** 2
        Y2 = np.abs(np.fft.rfft(yy * win)) ** 2
        # learn the leak per band from echo-only blocks while the delay holds (as speex does, from the
        # output's and the echo estimate's powers; here their ratio over the band, slowly)
        if (self.echo_active and not self.double_talk and self._n < self._aligned_until
                and self._n >= self._r_jump_until):
            eb = np.add.reduceat(E2, RES_BANDS[:-1])
            yb = np.add.reduceat(Y2, RES_BANDS[:-1])
            a = 0.98
            if RES_LEAK == "cov":
                self._r_mE = a * self._r_mE + (1 - a) * eb
                self._r_mY = a * self._r_mY + (1 - a) * yb
                dy = yb - self._r_mY
                self._r_sE = a * self._r_sE + (1 - a) * (eb - self._r_mE) * dy
                self._r_sY = a * self._r_sY + (1 - a) * dy * dy
            else:
                self._r_sE = a * self._r_sE + (1 - a) * eb
                self._r_sY = a * self._r_sY + (1 - a) * yb
            ok = self._r_sY > 1e-3 * (self._r_sY.max() + 1e-9)
            self.leak = np.where(ok, np.clip(self._r_sE / (self._r_sY + 1e-9), LEAK_MIN, LEAK_MAX), self.leak)
        leak = np.repeat(self.leak, np.diff(RES_BANDS))
        self._r_spread = np.maximum(Y2, RES_SPREAD_DECAY * self._r_spread)
        trusted = self._n >= self._r_jump_until and (self._n < self._aligned_until or not RES_ON_LOST)
        w = RES_DT_WEIGHT if trusted else RES_JUMP_WEIGHT
        R = np.maximum(leak * Y2, w * self._r_spread)
        self._r_R = np.maximum(R, RES_TAIL_DECAY * self._r_R)
        self._r_E2 = 0.5 * self._r_E2 + 0.5 * E2
        Rs, Es = _smooth(self._r_R), _smooth(self._r_E2)
        floor = 10 ** (RES_FLOOR_DB / 20)
        if RES_GAIN == "dd":
            post = Es / (RES_BETA * Rs + 1e-3)
            prio = RES_DD * self._r_prio + (1 - RES_DD) * np.maximum(post - 1.0, 0.0)
            G = np.clip(prio / (1.0 + prio), floor, 1.0)
            self._r_prio = G * G * post
        else:
            G = np.sqrt(np.clip(1.0 - RES_BETA * Rs / (Es + 1e-3), floor ** 2, 1.0))
        band = slice(6, 69)
        self.suppression_db = float(10 * np.log10((G[band] ** 2).dot(E2[band]) / (E2[band].sum() + 1e-9) + 1e-12))
        if G.min() > 0.999:
            H = None
        else:
            H = _min_phase(G, N, L)
        old = self._r_H
        self._r_H = H
        if H is None and old is None:
            return e
        F = np.fft.rfft(np.concatenate([ee[:L], e]))
        new = np.fft.irfft(F * H, N)[L:] if H is not None else e
        if old is None:
            was = e
        else:
            was = np.fft.irfft(F * old, N)[L:]
        out = was + _ramp(L) * (new - was)
        pe, po = float(e.dot(e)), float(out.dot(out))
        if po > pe:  # the filter's tail carried a louder block into a quieter one: never louder than its input
            out *= math.sqrt(pe / po)
        return out


def _quantile_step(q: float, r: float, up: float, first: bool) -> float:
    """One step of a running :data:`ECHO_RETURN_QUANTILE` of ``r`` (dB): up by ``up`` when above it, down so
    that it settles there; a value far above (:data:`ECHO_RETURN_OUTLIER_DB`) moves it a tenth as much."""
    if first:
        return r
    if r > q + ECHO_RETURN_OUTLIER_DB:
        return q + 0.1 * up
    p = ECHO_RETURN_QUANTILE
    return q + up if r > q else q - up * (1 - p) / p


_HANN: dict[int, np.ndarray] = {}


def _hann(n: int) -> np.ndarray:
    w = _HANN.get(n)
    if w is None:
        w = _HANN[n] = np.hanning(n + 1)[:n]
    return w


_RAMPS: dict[int, np.ndarray] = {}


def _ramp(n: int) -> np.ndarray:
    r = _RAMPS.get(n)
    if r is None:
        r = _RAMPS[n] = (np.arange(n) + 0.5) / n
    return r


def _smooth(x: np.ndarray) -> np.ndarray:
    """Over frequency: [1 2 1]/4 twice (edges held)."""
    for _ in range(2):
        p = np.concatenate([x[:1], x, x[-1:]])
        x = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
    return x


def _min_phase(G: np.ndarray, n: int, taps: int) -> np.ndarray:
    """The spectrum (``n``-point rfft) of a causal filter of at most ``taps`` taps whose magnitude is
    about ``G`` (minimum phase, by folding the real cepstrum)."""
    c = np.fft.irfft(np.log(np.maximum(G, 1e-4)), n)
    c[1:n // 2] *= 2.0
    c[n // 2 + 1:] = 0.0
    h = np.fft.irfft(np.exp(np.fft.rfft(c, n)), n)
    h[taps:] = 0.0
    return np.fft.rfft(h, n)


def cancel(mic: np.ndarray, ref: np.ndarray, rate: int = RATE, **kw) -> np.ndarray:
    """Offline: cancel ``ref`` (played; same clock, same length or longer) from ``mic``, both 1-D at 16 kHz
    int16 scale. Returns the cleaned microphone signal (float64)."""
    from .audio import Played

    if rate != RATE:
        raise _err(f"works at {RATE} Hz only, got {rate}")
    mic, ref = np.asarray(mic, float), np.asarray(ref, float)
    if mic.ndim != 1 or ref.ndim != 1:
        raise _err(f"mic and ref must be 1-D (mono), got shapes {mic.shape} and {ref.shape}")
    aec = EchoCanceller(**kw)
    pcm = np.clip(np.round(ref), -32768, 32767).astype("<i2").tobytes()
    aec.add_reference(Played(pcm, RATE, 0.0, 1, 0))
    n = len(mic) // FRAME * FRAME
    m16 = np.clip(np.round(mic[:n]), -32768, 32767).astype("<i2")
    out = [np.frombuffer(aec.process(m16[i:i + FRAME].tobytes(), i / RATE), "<i2") for i in range(0, n, FRAME)]
    return np.concatenate(out).astype(float) if out else np.zeros(0)
