"""Audio export plumbing shared by the podcast and talking-book exports.

- :class:`Renderer`: every sentence rendered once and cached in ``OUT/.cache``
  by (text after pronunciations, engine, voice, rate, cache version); the cache
  keeps the engine's own WAV (``<key>.wav``) and, beside it, what was measured
  on it at :data:`RATE` (``<key>.json``: length, true peak, loudness in 10 ms
  steps), so loudness is known without reading the audio again.
- :func:`resample`: a band-limited resampler (libsoxr through ``soxr``, else scipy's polyphase
  filter), not linear interpolation; :func:`true_peak` oversamples 4x with the same library.
- :func:`run`: ffmpeg (or any tool) run so that it dies with us (Linux
  ``PR_SET_PDEATHSIG``), in its own process group (a terminal's Ctrl-C reaches
  only us, and we stop it), and a failure is one line.
- :func:`work_dir`: temporary files live in the output folder's hidden
  ``.work`` folder, emptied at the start and end of each run (never /tmp).
- :func:`progress`: the "Rendered i of n sentences" display.
"""

from __future__ import annotations

import json
import os
import hashlib
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from . import audio as A
from .errors import EngineUnavailable, ExportError
from .files import atomic_write
from .pronounce import apply
from .protocols import Audio

__all__ = ["RATE", "CACHE_VERSION", "Stats", "Clip", "Renderer", "resample", "run", "ffmpeg", "progress",
           "work_dir", "stop_all", "parallel_map", "kweighted_energy", "true_peak", "integrated_loudness", "STEP",
           "oversample4", "peak_envelope", "clock"]

RATE = 44100
CACHE_VERSION = "1"  # part of every sentence's key: bump to re-render everything
META_VERSION = 3  # the measurements beside each cached sentence (3: soxr resampler and true peak)
STEP = 441  # 10 ms at RATE: the loudness steps stored per sentence


@dataclass
class Stats:
    rendered: int = 0
    cached: int = 0
    encoded: int = 0  # audio pieces encoded (podcast: pieces of 4 sentences of a chapter)
    reused: int = 0  # audio pieces taken from the cache
    loudness: float | None = None  # LUFS of the main output, measured after encoding
    peak: float | None = None  # its true peak, dBTP


@dataclass(frozen=True)
class Clip:
    """What is known about one cached sentence at RATE without reading its audio."""

    key: str
    samples: int
    peak: float  # true peak (4x oversampled), linear, full scale = 1
    energy: tuple[float, ...]  # K-weighted sum of squares per 10 ms step (last step partial)

    @property
    def duration(self) -> float:
        return self.samples / RATE


# ---------------------------------------------------------------------- signal helpers


def resample(audio: Audio, rate: int) -> Audio:
    """Polyphase resampling (scipy.signal.resample_poly, Kaiser window): no images above the old Nyquist."""
    if audio.sample_rate == rate or not audio.pcm:
        return Audio(audio.pcm, rate)
    y = _resample_array(A.samples(audio).astype(np.float64), audio.sample_rate, rate)
    return Audio(np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes(), rate)


_FILTERS: dict[tuple[int, int], np.ndarray] = {}


def _soxr():
    """The soxr module (libsoxr, compiled) if installed, else None: then scipy does the same, slower."""
    try:
        import soxr
    except ImportError:
        return None
    return soxr


def _resample_array(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling. With soxr (libsoxr, "VHQ": 28-bit precision, images above the old Nyquist
    about -63 dB on white noise when doubling the rate, as the scipy filter below): about 10x faster than
    scipy's polyphase filter with a 64-zero-crossing Kaiser (beta 8) low-pass cut at 95 % of the lower
    Nyquist, which is used when soxr is not installed (scipy's default 10-crossing filter leaves about 1 %
    of white noise's energy above the old Nyquist). Both give ``ceil(len(x) * dst / src)`` samples."""
    soxr = _soxr()
    if soxr is not None:
        y = soxr.resample(np.asarray(x, dtype=np.float64), src, dst, quality="VHQ")
        n = -(-len(x) * dst // src)
        return y if len(y) == n else np.concatenate([y, np.zeros(n - len(y))])[:n]
    from scipy.signal import firwin, resample_poly

    g = gcd(src, dst)
    up, down = dst // g, src // g
    h = _FILTERS.get((up, down))
    if h is None:
        h = _FILTERS[(up, down)] = firwin(2 * 64 * max(up, down) + 1, 0.95 / max(up, down),
                                          window=("kaiser", 8.0))  # resample_poly scales it by up
    return resample_poly(x, up, down, window=h)


def _k_filter(rate: int):
    """ITU-R BS.1770 K-weighting as second-order sections at ``rate`` (libebur128's formulation)."""
    f0, gain, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = np.tan(np.pi * f0 / rate)
    vh = 10 ** (gain / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = np.tan(np.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    highpass = [1, -2, 1, 1, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


FFT_BUDGET = 60 * RATE  # samples K-weighted by FFT before scipy.signal is loaded instead (see kweighted_energy)
_KW_LOCK = threading.Lock()
_KW = {"sosfilt": None, "fft_samples": 0}
_K_IMPULSE: dict[int, np.ndarray] = {}


def _sosfilt(n: int):
    """scipy's ``sosfilt`` when it is loaded, or when this process has K-weighted so much by FFT (``n`` more
    samples now) that loading it pays; else None."""
    with _KW_LOCK:
        if _KW["sosfilt"] is None and ("scipy.signal" in sys.modules or _KW["fft_samples"] + n > FFT_BUDGET):
            from scipy.signal import sosfilt

            _KW["sosfilt"] = sosfilt
        if _KW["sosfilt"] is None:
            _KW["fft_samples"] += n
        return _KW["sosfilt"]


def _k_impulse(rate: int) -> np.ndarray:
    """The K-weighting filter's impulse response, to where it is below 1e-15 (``rate / 4`` samples and
    more, a power of two): from its frequency response on a grid 8 times as long (so aliasing is nil)."""
    h = _K_IMPULSE.get(rate)
    if h is None:
        n = 1 << int(np.ceil(np.log2(rate / 4)))
        z = np.exp(-1j * np.pi * np.arange(4 * n + 1) / (4 * n))  # z^-1 on the rfft grid of 8n points
        resp = np.ones(len(z), dtype=complex)
        for b0, b1, b2, a0, a1, a2 in _k_filter(rate):
            resp *= (b0 + b1 * z + b2 * z * z) / (a0 + a1 * z + a2 * z * z)
        h = _K_IMPULSE[rate] = np.fft.irfft(resp, 8 * n)[:n]
    return h


def _k_weight_fft(x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` through the K-weighting filter from rest, as ``sosfilt`` does (the same to about 1e-13 of full
    scale), by overlap-add FFT convolution with its impulse response: numpy only."""
    h = _k_impulse(rate)
    n, size = len(h), 4 * len(h)
    block = size - n
    blocks = -(-len(x) // block)
    padded = np.zeros(blocks * block)
    padded[:len(x)] = x
    out = np.fft.irfft(np.fft.rfft(padded.reshape(blocks, block), size, axis=1) * np.fft.rfft(h, size), size,
                       axis=1)
    y = out[:, :block].copy()
    y[1:, :n] += out[:-1, block:]
    return y.ravel()[:len(x)]


def kweighted_energy(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """K-weighted sum of squares per 10 ms step of ``x`` (floats, full scale 1).

    The filter is scipy's ``sosfilt`` (about 7 ns a sample) once scipy.signal is loaded; loading it takes
    0.4-0.7 s of CPU, most of the time an edited sentence's re-export takes, so until this process has
    K-weighted FFT_BUDGET samples (a minute of audio) it is an FFT convolution with the filter's impulse
    response instead (about 45 ns a sample, numpy only)."""
    x = np.asarray(x, dtype=np.float64)
    sosfilt = _sosfilt(len(x))
    y = sosfilt(_k_filter(rate), x) if sosfilt is not None else _k_weight_fft(x, rate)
    step = rate // 100
    whole = len(y) // step * step
    head = y[:whole].reshape(-1, step)
    energy = np.einsum("ij,ij->i", head, head)
    if whole < len(y):
        energy = np.append(energy, np.dot(y[whole:], y[whole:]))
    return energy


def integrated_loudness(energy: np.ndarray, rate: int = RATE) -> float:
    """Gated integrated loudness (LUFS, BS.1770-4) of a mono signal from its 10 ms K-weighted energies.

    Blocks are 400 ms with 75 % overlap, as the standard says; only the block edges are rounded
    to 10 ms. A dual-mono stereo file of the same channel reads 3 LU louder."""
    step = rate // 100
    if len(energy) < 40:
        energy = np.concatenate([energy, np.zeros(40 - len(energy))])
    csum = np.concatenate([[0.0], np.cumsum(energy)])
    starts = np.arange(0, len(energy) - 40 + 1, 10)
    z = (csum[starts + 40] - csum[starts]) / (40 * step)
    loud = -0.691 + 10 * np.log10(np.maximum(z, 1e-20))
    z = z[loud > -70]
    if not len(z):
        return -70.0
    rel = -0.691 + 10 * np.log10(z.mean()) - 10
    z = z[-0.691 + 10 * np.log10(z) > rel]
    return float(-0.691 + 10 * np.log10(z.mean()))


def oversample4(x: np.ndarray) -> np.ndarray:
    """``x`` oversampled 4x (float32; soxr "HQ" if installed, else scipy's polyphase filter): 4 * len(x) values."""
    soxr = _soxr()
    if soxr is not None:
        y = soxr.resample(np.asarray(x, dtype=np.float32), 1, 4, quality="HQ")
    else:
        from scipy.signal import resample_poly

        y = resample_poly(x, 4, 1).astype(np.float32)
    n = 4 * len(x)
    return y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), np.float32)])


def true_peak(x: np.ndarray) -> float:
    """Peak of ``x`` oversampled 4x (floats, full scale 1): the BS.1770 true-peak estimate."""
    if not len(x):
        return 0.0
    y = oversample4(x)
    return float(max(np.abs(x).max(), y.max(), -y.min()))


def peak_envelope(x: np.ndarray) -> np.ndarray:
    """For each sample of ``x``, the largest magnitude of the 4x-oversampled signal in its sample period
    (and of the sample itself): what a true-peak limiter must keep under its ceiling."""
    if not len(x):
        return np.zeros(0)
    y = oversample4(x)
    y = np.abs(y, out=y).reshape(-1, 4)
    env = np.maximum(np.maximum(y[:, 0], y[:, 1]), np.maximum(y[:, 2], y[:, 3]))
    return np.maximum(env, np.abs(x))


def clock(seconds: float, sep: str | None = ".", hours: int = 2) -> str:
    """A time as hours, minutes and seconds, for every export's timestamps: ``01:02:03.456`` (WebVTT;
    SRT wants ``sep=","``; SMIL clock values ``hours=1``: ``1:02:03.456``); with ``sep=None``, whole
    seconds, rounded (``01:02:03``: itunes:duration, DAISY's ncc:totalTime)."""
    if sep is None:
        s = int(round(seconds))
        return f"{s // 3600:0{hours}d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:0{hours}d}:{m:02d}:{s:02d}{sep}{ms:03d}"


# ---------------------------------------------------------------------- rendering with a cache


def batch_tuned(engine, jobs: int = 2):
    """``engine``, set up once for rendering many sentences on ``jobs`` threads: an engine that renders
    in-process (Piper: onnxruntime) gets ``jobs`` copies of its voice, one thread each, without spin-waiting
    (:meth:`voiceguide.tts.PiperEngine.batch`); engines that run a program per sentence need nothing."""
    batch = getattr(engine, "batch", None)
    if batch is None or getattr(engine, "_batch_tuned", False):
        return engine
    try:
        batch(max(1, jobs))
        engine._batch_tuned = True
    except Exception:  # noqa: BLE001  (an engine that cannot be tuned still works as it was)
        pass
    return engine


class Renderer:
    """Renders sentences through ``engine`` (an engine object, or its name: built on first use),
    caching each one in ``cache``. ``progress(i, n)`` is called as sentences are ready."""

    def __init__(self, engine, voice: str | None, rate: int, lexicon, cache: Path, jobs: int, progress):
        self._engine = engine if isinstance(engine, str) else batch_tuned(engine, jobs)
        self.engine_name = engine if isinstance(engine, str) else engine.name
        self.voice, self.rate, self.lexicon = voice, rate, lexicon
        self.cache, self.jobs, self.progress = cache, max(1, int(jobs)), progress
        self.stats = Stats()
        self._lock = threading.Lock()
        cache.mkdir(parents=True, exist_ok=True)

    @property
    def engine(self):
        with self._lock:
            if isinstance(self._engine, str):
                from .tts import get_engine

                self._engine = batch_tuned(get_engine(self._engine), self.jobs)
            return self._engine

    def key(self, text: str) -> str:
        spoken = apply(text, self.lexicon)
        raw = json.dumps([CACHE_VERSION, spoken, self.engine_name, self.voice, self.rate])
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def _wav(self, key: str) -> Path:
        return self.cache / f"{key}.wav"

    def _read(self, key: str) -> Audio | None:
        path = self._wav(key)
        if path.exists():
            try:
                return A.read_wav(path)
            except Exception:  # a damaged cache file is simply rendered again
                return None
        return None

    def _synth(self, text: str, key: str) -> Audio:
        audio = self.engine.synthesize(apply(text, self.lexicon), voice=self.voice, rate=self.rate)
        atomic_write(self._wav(key), A.wav_bytes(audio))
        with self._lock:
            self.stats.rendered += 1
        return audio

    # -- measured clips: what the podcast needs to plan an episode without reading audio

    def _clip_from_meta(self, key: str) -> Clip | None:
        try:
            meta = json.loads((self.cache / f"{key}.json").read_text())
            if meta.get("v") != META_VERSION or not self._wav(key).exists():
                return None
            return Clip(key, int(meta["samples"]), float(meta["peak"]), tuple(meta["energy"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _measure(self, key: str, audio: Audio) -> Clip:
        x = A.samples(resample(audio, RATE)).astype(np.float64) / 32768
        energy = kweighted_energy(x)
        clip = Clip(key, len(x), true_peak(x), tuple(float(f"{e:.6g}") for e in energy))
        atomic_write(self.cache / f"{key}.json", json.dumps(
            {"v": META_VERSION, "samples": clip.samples, "peak": clip.peak, "energy": clip.energy}).encode())
        return clip

    def _clip(self, text: str) -> Clip:
        key = self.key(text)
        clip = self._clip_from_meta(key)
        if clip is not None:
            with self._lock:
                self.stats.cached += 1
            return clip
        audio = self._read(key)
        if audio is None:
            audio = self._synth(text, key)
        else:
            with self._lock:
                self.stats.cached += 1
        return self._measure(key, audio)

    def clips(self, texts: list[str]) -> dict[str, Clip]:
        """Every distinct text -> its :class:`Clip`, rendering and measuring only what is missing."""
        unique = list(dict.fromkeys(texts))
        out: dict[str, Clip] = {}
        todo = []
        for text in unique:  # the quick pass: what is cached and measured already
            clip = self._clip_from_meta(self.key(text))
            if clip is None:
                todo.append(text)
            else:
                out[text] = clip
        self.stats.cached += len(out)
        for i, (text, clip) in enumerate(zip(todo, parallel_map(self._clip, todo, self.jobs)), len(out) + 1):
            out[text] = clip
            self.progress(i, len(unique))
        return {t: out[t] for t in unique}

    def samples(self, clip: Clip) -> np.ndarray:
        """A cached clip's audio at RATE as floats (full scale 1)."""
        audio = self._read(clip.key)
        if audio is None:
            raise ExportError(f"the cached sentence {clip.key} disappeared from {self.cache} during the export")
        return A.samples(resample(audio, RATE)).astype(np.float64) / 32768


# ---------------------------------------------------------------------- running tools


def ffmpeg(purpose: str = "for podcast export") -> str:
    exe = shutil.which("ffmpeg")
    if not exe:
        raise ExportError(f"ffmpeg is not installed; it is needed {purpose} "
                          "(Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)")
    return exe


def _die_with_parent() -> list[str]:
    """A prefix that makes the command die with the thread that starts it (Linux PR_SET_PDEATHSIG, set by
    util-linux's setpriv before it execs the command). Not a preexec_fn: Python code run between fork and
    exec can deadlock when other threads hold locks, and a stuck child blocks Popen for ever."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def run(cmd: list[str], input: bytes | None = None, what: str = "ffmpeg") -> bytes:
    """Run ``cmd`` (feeding ``input``), return its stdout; raise ExportError with one line if it fails.

    The child is killed if we die (even by SIGKILL: PR_SET_PDEATHSIG, tied to the calling thread,
    which waits here for it), and sits in its own process group so a terminal's Ctrl-C reaches only
    us; on KeyboardInterrupt or any other exception it is killed before the exception goes on."""
    if _STOPPING.is_set():
        raise KeyboardInterrupt
    try:
        proc = subprocess.Popen([*_PREFIX, *cmd], stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise ExportError(f"cannot run {what}: {exc.strerror or exc}") from None
    with _LIVE_LOCK:
        _LIVE.add(proc)
        if _STOPPING.is_set():
            proc.kill()
    try:
        out, err = proc.communicate(input)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    if _STOPPING.is_set():
        raise KeyboardInterrupt
    if proc.returncode != 0:
        text = err.decode(errors="replace")
        tail = (text.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        if "No space left" in text:
            raise ExportError(f"the disk is full ({tail})")
        raise ExportError(f"{what} failed: {tail}")
    return out


_PREFIX = _die_with_parent()
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def stop_all() -> None:
    """Kill every tool :func:`run` started that is still running, and start no more (Ctrl-C)."""
    with _LIVE_LOCK:
        _STOPPING.set()
        for proc in list(_LIVE):
            try:
                proc.kill()
            except OSError:
                pass


def parallel_map(fn, items: list, jobs: int):
    """``fn`` over ``items`` on ``jobs`` threads, results in order (a generator). On Ctrl-C or an
    error, queued work is dropped and running tools are killed before the exception goes on."""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = [pool.submit(fn, item) for item in items]
        for f in futures:
            yield f.result()
    except BaseException:
        if not isinstance(sys.exc_info()[1], GeneratorExit):
            stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        _STOPPING.clear()
        raise
    pool.shutdown(wait=True)


def work_dir(out: Path) -> Path:
    """``out/.work``, empty: temporary files of this run (left-overs of a killed run are removed)."""
    work = out / ".work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    return work


def progress(stream=sys.stderr):
    """A ``progress(i, n)`` callable: a tqdm bar on a terminal, else a line every 25 sentences."""
    if stream.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        if tqdm:
            bar = {}

            def update(i, n):
                if "b" not in bar:
                    bar["b"] = tqdm(total=n, initial=i - 1, desc="Rendering", unit="sentence")
                bar["b"].update(1)
                if i == n:
                    bar["b"].close()
            return update

    def plain(i, n):
        if i == n or i % 25 == 0:
            print(f"Rendered {i} of {n} sentences.", file=stream, flush=True)
    return plain


# ---------------------------------------------------------------------- shared by the exports


def check_voice(engine: str, voice: str | None):
    """The engine, built; a one-line error if ``voice`` is not one of its voices."""
    from .tts import get_engine

    tts = get_engine(engine)
    if voice:
        voices = tts.voices()
        ids = {v.id for v in voices}
        if voice not in ids and voice.split("+")[0] not in ids:
            names = ", ".join(sorted(ids))
            if len(names) > 200:
                names = names[:200].rsplit(",", 1)[0] + ", ... (all: voiceguide voices --engine " + engine + ")"
            raise EngineUnavailable(f"--voice {voice}: {engine} has no such voice; its voices here: {names}")
    return tts


COVER_VERSION = "1"  # part of the cached cover's name: bump when the drawing changes


def cover_png(title: str, cache: Path | None = None) -> bytes:
    """The cover art (1400 x 1400 PNG) with ``title`` drawn on it; kept in ``cache`` (drawing and
    compressing it took 0.1-0.8 s, a large share of a re-run)."""
    cached = cache / f"cover-{hashlib.sha256(json.dumps([COVER_VERSION, title]).encode()).hexdigest()[:16]}.png" \
        if cache is not None else None
    if cached is not None:
        try:
            return cached.read_bytes()
        except OSError:
            pass
    data = _draw_cover(title)
    if cached is not None:
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, data)
    return data


def _draw_cover(title: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    size = 1400
    img = Image.new("RGB", (size, size), (16, 52, 84))
    draw = ImageDraw.Draw(img)
    font = None
    for candidate in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "DejaVuSans-Bold.ttf", "Arial Bold.ttf"):
        try:
            font = ImageFont.truetype(candidate, 110)
            break
        except OSError:
            continue
    if font is None:
        font = ImageFont.load_default(size=110)
    import textwrap

    lines = textwrap.wrap(title, 18)
    y = (size - len(lines) * 140) // 2
    for line in lines:
        w = draw.textlength(line, font=font)
        draw.text(((size - w) / 2, y), line, font=font, fill=(255, 255, 255))
        y += 140
    draw.rectangle([100, size - 160, size - 100, size - 150], fill=(255, 196, 0))
    import io

    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()
