"""Podcast export: episodes with chapters, transcripts, podcast loudness, cover art and feeds.

How it stays fast and incremental:

- every sentence is rendered once and cached with its measurements (length,
  true peak, K-weighted loudness in 10 ms steps; :mod:`voiceguide.render`), so
  an episode's loudness is computed from the cache and normalised with one
  computed gain: no analysis pass over the episode;
- every chapter (the introduction, each section, the sources) is a *segment*,
  and a segment is encoded in *pieces* of PIECE sentences (counted from the
  chapter's start), each piece its own encoder stream, cached by its content
  (sentences, pauses, gain, format, bitrate, channels); an episode's file is
  its pieces' frames joined, behind an ID3 tag (MP3) or remuxed with its
  chapters (M4A). Pieces join inside the pause after a sentence (an MP3 or
  ADTS stream's first frame needs nothing of the frames before it); each
  decoded piece is a whole number of codec frames with a known encoder delay
  at its start, so chapter and cue times stay exact, and the pause before a
  piece is shortened by that delay so the pause heard stays within a frame of
  the one chosen. Editing one sentence re-encodes one piece (a few seconds of
  audio, not the chapter); an unchanged run encodes nothing. A cold run
  encodes many pieces per ffmpeg process (a batch: its inputs and outputs
  are files in the work folder), and a piece encoded in a batch has the same
  bytes as the piece encoded alone;
- the gain of the last run is kept while it holds the episode within 0.5 LU of
  the target, so an edit does not change every segment's gain.

Every piece's true peak is measured *after encoding* (decoded, oversampled
4x); over -1.2 dBTP it is encoded again with a lower limiter ceiling.
Temporary files go in the output folder's hidden ``.work`` folder, emptied
at every start; finished files are moved into place, so a killed export never
leaves a half-written file where a good one was.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import errno
import hashlib
import html
import json
import os
import re
import textwrap
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import render
from .content import Guide, PodcastInfo, Section, load_guide
from .errors import ExportError
from .files import atomic_write
from .protocols import Audio  # noqa: F401  (part of the old interface)
from .render import RATE, Renderer, Stats  # noqa: F401  (Renderer and Stats: used from here by others)
from .render import ffmpeg as _ffmpeg  # noqa: F401
from .render import check_voice, cover_png  # noqa: F401  (cover_png: part of this module's interface)
from .render import progress as _progress
from .tts import ENGINES, split_sentences

__all__ = ["export", "Episode", "register", "show_of", "LOUDNESS", "TRUE_PEAK_LIMIT", "feed_xml", "cover_png"]

#: --loudness: (integrated loudness of the file, channels). Apple: -16 LUFS stereo; -19 LUFS mono.
LOUDNESS = {"mono": (-19.0, 1), "stereo": (-16.0, 2)}
MONO_TARGET = -19.0  # the single channel's loudness for both (a dual-mono stereo file reads +3 LU)
TRUE_PEAK_LIMIT = -1.0  # dBTP, measured after encoding
CEILING = -2.0  # dBTP: the limiter's first ceiling before encoding
CHECK = -1.2  # dBTP: a piece measured above this after encoding is encoded again, lower
GAIN_HOLD = 0.5  # LU: keep the last run's gain while it holds the episode this close to the target
CODEC_LOSS = 0.45  # LU: what encoding at podcast bitrates takes off (measured: 0.4-0.5 at 64 kbps); aimed above
RETRY = 0.8  # LU: an episode measured (after encoding) further than this from its target is encoded again
GAP_SENTENCE, GAP_TITLE, GAP_SECTION = 0.35, 0.6, 1.2
MAX_LINE = 65
SEGMENT_VERSION = "4"  # part of every piece's key (4: pieces of PIECE sentences)
PIECE = 4  # sentences per encoded piece (from each chapter's start): what an edited sentence re-encodes
BATCH = (20.0, 240.0, 48)  # a cold run's batches (one ffmpeg process each): seconds of audio, at least and at
# most (its input and output files in the work folder), and at most so many pieces (two open files each)
DISCLAIMER_NOTE = "General information, not medical advice."

FORMATS = {
    "mp3": {"codec": ["-c:a", "libmp3lame"], "mux": ["-f", "mp3", "-write_xing", "0", "-id3v2_version", "0"],
            "demux": "mp3", "frame": 1152, "delay": 1105, "mime": "audio/mpeg", "seg": "mp3"},
    "m4a": {"codec": ["-c:a", "aac"], "mux": ["-f", "adts"], "demux": "aac", "frame": 1024, "delay": 1024,
            "mime": "audio/x-m4a", "seg": "aac"},
}

NS = {"itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd", "podcast": "https://podcastindex.org/namespace/1.0",
      "atom": "http://www.w3.org/2005/Atom", "content": "http://purl.org/rss/1.0/modules/content/"}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
PODCAST_NAMESPACE_UUID = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")


@dataclass
class Cue:
    start: float
    end: float
    text: str


@dataclass
class Chapter:
    start: float
    title: str
    section: str | None = None


@dataclass
class Piece:
    """A few consecutive sentences of a segment: one encoder stream, cached by its content."""

    title: str  # the segment's
    texts: list[str]
    gaps: list[int]  # the pause after each sentence, in samples at RATE
    key: str = ""
    samples: int = 0  # decoded length at RATE (whole codec frames, the encoder's delay first)


@dataclass
class Segment:
    """One chapter's speech, encoded once (in pieces) and shared by every episode that holds it."""

    title: str
    section: str | None
    texts: list[str]
    pieces: list[Piece] = field(default_factory=list)

    @property
    def samples(self) -> int:  # decoded length at RATE
        return sum(p.samples for p in self.pieces)


@dataclass
class Episode:
    slug: str
    title: str
    description: str
    segments: list[Segment]
    number: int = 1
    section: Section | None = None
    gain: float = 0.0  # dB applied to the rendered speech
    loudness: float = 0.0  # the file's integrated loudness (LUFS): planned, then measured after encoding
    peak: float = 0.0  # its true peak (dBTP), measured after encoding
    cues: list[Cue] = field(default_factory=list)
    chapters: list[Chapter] = field(default_factory=list)
    duration: float = 0.0


def show_of(guide: Guide, **overrides) -> PodcastInfo:
    """Feed metadata: the guide's ``podcast:`` block (:class:`PodcastInfo`), then the command line's options
    over it (None or "" leaves a field as it is); the author defaults to the guide's authors, the owner's
    name to the author, and the base URL ends in a slash."""
    info = dataclasses.replace(guide.podcast or PodcastInfo(),
                               **{k: v for k, v in overrides.items() if v not in (None, "")})
    author = info.author or ", ".join(guide.authors) or "VoiceGuide"
    base = info.base_url + "/" if info.base_url and not info.base_url.endswith("/") else info.base_url
    return dataclasses.replace(info, author=author, owner_name=info.owner_name or author, base_url=base)


# ---------------------------------------------------------------------- the words of each chapter


def _intro(guide: Guide) -> list[str]:
    return [guide.title, guide.disclaimer, guide.reviewed_line()]


def _outro(guide: Guide) -> list[str]:
    lines = ["Sources."]
    for s in guide.sources:
        who = s.publisher or s.author
        lines.append(f"{s.title}. {who}." if who else f"{s.title}.")
    lines.append(f"That is the end of {guide.title}. Please talk with your care team about your own treatment.")
    return lines


def _section_texts(sec: Section) -> list[str]:
    return [sec.title, *split_sentences(sec.summary), *(s for p in sec.body for s in split_sentences(p))]


def plan(guide: Guide, per_section: bool) -> tuple[Episode, list[Episode]]:
    """The whole-guide episode and (with ``per_section``) one episode per section, each opening with
    the same spoken introduction (title, disclaimer, review date): the segments are shared."""
    intro = Segment("Introduction", None, _intro(guide))
    sections = [Segment(sec.title, sec.id, _section_texts(sec)) for sec in guide.walk()]
    outro = Segment("Sources", None, _outro(guide))
    full = Episode(guide.id, guide.title, guide.description or guide.title, [intro, *sections, outro])
    series = []
    if per_section:
        for n, (sec, seg) in enumerate(zip(guide.walk(), sections), 1):
            series.append(Episode(f"{guide.id}-{sec.id}", sec.title, sec.summary, [intro, seg], n, sec))
    return full, series


# ---------------------------------------------------------------------- loudness, from the cache


def _gap_samples(i: int) -> int:
    return int(round((GAP_TITLE if i == 0 else GAP_SENTENCE) * RATE))


def _segment_energy(seg: Segment, clips: dict[str, render.Clip]) -> np.ndarray:
    parts = []
    for i, text in enumerate(seg.texts):
        clip = clips[text]
        parts.append(np.asarray(clip.energy))
        pad = len(clip.energy) * render.STEP - clip.samples
        gap = _gap_samples(i) + (int(round(GAP_SECTION * RATE)) if i == len(seg.texts) - 1 else 0)
        parts.append(np.zeros(max(0, int(round((gap - pad) / render.STEP)))))
    return np.concatenate(parts) if parts else np.zeros(0)


def choose_gain(ep: Episode, clips: dict[str, render.Clip], candidates: list[float]) -> None:
    """Set ``ep.gain`` (dB) to bring the single channel to MONO_TARGET LUFS; keep the first candidate
    (an earlier run's gain, the whole guide's) that holds it within GAIN_HOLD LU."""
    loud = render.integrated_loudness(np.concatenate([_segment_energy(s, clips) for s in ep.segments]))
    for g in candidates:
        if g is not None and abs(loud + g - CODEC_LOSS - MONO_TARGET) <= GAIN_HOLD:
            ep.gain = float(g)
            break
    else:
        ep.gain = round(MONO_TARGET + CODEC_LOSS - loud, 2)
    ep.loudness = loud + ep.gain


# ---------------------------------------------------------------------- encoding segments


def _limit(x: np.ndarray, ceiling_db: float) -> np.ndarray:
    """Lookahead peak limiter: true peaks (4x oversampled) of ``x`` brought under ``ceiling_db``, the gain
    reduction spread over about 6 ms either side of each peak (min filter, then moving average)."""
    ceiling = 10 ** (ceiling_db / 20)
    env = render.peak_envelope(x)
    need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    if need.min() >= 1.0:
        return x
    return x * _smoothed_gain(need, 2 * int(0.003 * RATE) + 1)


def _smoothed_gain(need: np.ndarray, w: int) -> np.ndarray:
    """The moving mean of the moving minimum of ``need`` (both ``w`` wide, centred, the ends repeated),
    worked out only where it is below 1: within ``w - 1`` of a value below 1 (about 3 % of a sentence)."""
    n, r = len(need), w // 2
    gain = np.ones(n)
    low = np.flatnonzero(need < 1.0)
    if not len(low):
        return gain
    split = np.flatnonzero(np.diff(low) > 4 * r) + 1
    for a, b in zip(low[np.r_[0, split]], low[np.r_[split - 1, len(low) - 1]]):
        lo, hi = max(0, a - 2 * r), min(n, b + 2 * r + 1)  # where the gain is below 1
        s0, s1 = max(0, lo - 2 * r), min(n, hi + 2 * r)  # what it depends on
        gain[lo:hi] = _moving_mean(_moving_min(need[s0:s1], w), w)[lo - s0:hi - s0]
    return gain


def _moving_min(x: np.ndarray, w: int) -> np.ndarray:
    """The minimum of each odd-width ``w`` window centred on each value of ``x``, the ends repeated beyond it
    (scipy.ndimage.minimum_filter1d, mode "nearest"; numpy only: loading scipy.ndimage takes 0.2-0.3 s of
    CPU, a large share of an edited sentence's re-export). Van Herk / Gil-Werman: running minima within
    blocks of ``w``, forwards and backwards; each window is the backward minimum of one block's tail and the
    forward minimum of the next block's head."""
    r = w // 2
    n = len(x)
    blocks = -(-(n + 2 * r) // w)
    padded = np.full(blocks * w, np.inf)
    padded[:r], padded[r:r + n], padded[r + n:n + 2 * r] = x[0], x, x[-1]
    grid = padded.reshape(blocks, w)
    forward = np.minimum.accumulate(grid, axis=1).ravel()
    backward = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(backward[:n], forward[w - 1:w - 1 + n])


def _moving_mean(x: np.ndarray, w: int) -> np.ndarray:
    """The mean of each odd-width ``w`` window centred on each value of ``x``, the ends repeated beyond it
    (scipy.ndimage.uniform_filter1d, mode "nearest"; numpy only). Running sums of ``x`` less its first
    value, so they stay small where ``x`` stays near it (a limiter's gain: mostly 1)."""
    r, base = w // 2, x[0]
    sums = np.concatenate([[0.0], np.cumsum(np.concatenate([np.zeros(r), x - base, np.full(r, x[-1] - base)]))])
    return base + (sums[w:] - sums[:-w]) / w


def piece_gaps(n: int, delay: int) -> list[list[int]]:
    """The pauses after a segment's ``n`` sentences (samples), cut into pieces of PIECE sentences. The pause
    after a piece's last sentence (not the segment's) is shortened by the encoder's ``delay``: the next
    piece's decoded audio starts with that much silence."""
    gaps = [_gap_samples(i) for i in range(n)]
    if gaps:
        gaps[-1] += int(round(GAP_SECTION * RATE))
    for end in range(PIECE - 1, n - 1, PIECE):
        gaps[end] -= delay
    return [gaps[i:i + PIECE] for i in range(0, n, PIECE)]


class Encoder:
    """Encodes segments, piece by piece, into ``cache/segments``, keyed by content; ``stats`` counts the
    pieces encoded and reused. ``work`` holds a batch's inputs and outputs while ffmpeg runs."""

    def __init__(self, renderer: Renderer, fmt: str, channels: int, bitrate: int, jobs: int, work: Path):
        self.renderer, self.fmt, self.channels, self.bitrate, self.jobs = renderer, fmt, channels, bitrate, jobs
        self.spec = FORMATS[fmt]
        self.dir = renderer.cache / "segments"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.stats = renderer.stats
        self.meta: dict[str, dict] = {}
        self._inner = 1  # threads within one batch: more when fewer batches than jobs are to be encoded

    def pieces(self, seg: Segment, clips, gain: float) -> list[Piece]:
        """The segment's pieces, each with its key."""
        out, first = [], 0
        for gaps in piece_gaps(len(seg.texts), self.spec["delay"]):
            texts = seg.texts[first:first + len(gaps)]
            raw = json.dumps([SEGMENT_VERSION, [clips[t].key for t in texts], gaps, round(gain, 3), self.fmt,
                              self.channels, self.bitrate, CEILING, CHECK])
            out.append(Piece(seg.title, texts, gaps, hashlib.sha256(raw.encode()).hexdigest()[:32]))
            first += len(gaps)
        return out

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.{self.spec['seg']}"

    def _cached(self, key: str) -> dict | None:
        try:
            meta = json.loads((self.dir / f"{key}.json").read_text())
            if self.path(key).stat().st_size == meta["bytes"] and meta["samples"] and meta["energy"]:
                return meta
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def loudness(self, ep: Episode) -> tuple[float, float]:
        """The episode's loudness (one channel, LUFS) and true peak (dBTP), measured on its decoded pieces."""
        keys = [p.key for s in ep.segments for p in s.pieces]
        energy = np.concatenate([np.asarray(self.meta[k]["energy"]) for k in keys])
        return render.integrated_loudness(energy), max(self.meta[k]["peak_dbtp"] for k in keys)

    def pcm(self, piece: Piece, clips, gain: float, ceiling_db: float | None = None) -> np.ndarray:
        """The piece's speech at ``gain`` with its pauses; with ``ceiling_db``, every sentence whose
        cached true peak at that gain is over the ceiling goes through the limiter (the others cannot
        reach it: the cache's peak is measured the same way). The limiter acts within 3 ms of a peak
        and sentences are apart by at least GAP_SENTENCE of silence, so limiting sentence by sentence
        is limiting the piece, on only the part that needs it."""
        return np.concatenate(self._parts(piece, clips, gain, ceiling_db, {}))

    def _parts(self, piece: Piece, clips, gain: float, ceiling_db: float | None, speech: dict,
               jobs: int = 1) -> list:
        """The piece's sentences (read into ``speech`` once, at ``gain``), limited, each followed by its
        pause; on ``jobs`` threads (numpy, soxr and scipy let go of the GIL while they work)."""
        scale = 10 ** (gain / 20)

        def one(i: int) -> np.ndarray:
            if i not in speech:
                speech[i] = self.renderer.samples(clips[piece.texts[i]]) * scale
            x = speech[i]
            if ceiling_db is not None and clips[piece.texts[i]].peak * scale > 10 ** (ceiling_db / 20):
                x = _limit(x, ceiling_db)
            return x

        if jobs > 1 and len(piece.texts) > 1:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                xs = list(pool.map(one, range(len(piece.texts))))
        else:
            xs = [one(i) for i in range(len(piece.texts))]
        parts = []
        for x, gap in zip(xs, piece.gaps):
            parts += [x, np.zeros(gap)]
        return parts

    def _codec(self, ys: list[tuple[str, np.ndarray]]) -> list[tuple[bytes, np.ndarray]]:
        """Encode each (name, speech) on its own encoder stream, all in one ffmpeg process, and decode
        each alone (a second one): [(encoded bytes, decoded samples × channels)]."""
        ff, spec = render.ffmpeg(), self.spec
        quiet = [ff, "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
        src = [self.work / f"{name}.f32" for name, _ in ys]
        enc = [self.work / f"{name}.{spec['seg']}" for name, _ in ys]
        dec = [self.work / f"{name}.dec" for name, _ in ys]
        try:
            for path, (_, y) in zip(src, ys):
                path.write_bytes(y.astype("<f4").tobytes())
            cmd = list(quiet)
            for path in src:
                cmd += ["-f", "f32le", "-ar", str(RATE), "-ac", "1", "-i", str(path)]
            for n, path in enumerate(enc):
                cmd += ["-map", f"{n}:a", *(["-af", "pan=stereo|c0=c0|c1=c0"] if self.channels == 2 else []),
                        *spec["codec"], "-b:a", f"{self.bitrate}k", *spec["mux"], str(path)]
            render.run(cmd)
            cmd = list(quiet)
            for path in enc:
                cmd += ["-f", spec["demux"], "-i", str(path)]
            for n, path in enumerate(dec):
                cmd += ["-map", f"{n}:a", "-f", "f32le", str(path)]
            render.run(cmd)
            return [(e.read_bytes(), np.fromfile(d, dtype="<f4").reshape(-1, self.channels))
                    for e, d in zip(enc, dec)]
        finally:
            for path in (*src, *enc, *dec):
                path.unlink(missing_ok=True)

    def _measure(self, decoded: np.ndarray) -> tuple[float, np.ndarray]:
        with ThreadPoolExecutor(max_workers=1) as side:  # the loudness beside the peak (on another core)
            loudness = side.submit(render.kweighted_energy, decoded[:, 0].astype(np.float64))
            peak = max(render.true_peak(decoded[:, c]) for c in range(self.channels))
            energy = loudness.result()
        return 20 * np.log10(max(peak, 1e-9)), energy

    def _encode(self, batch: list[tuple[Piece, dict, float]]) -> list[tuple[str, dict]]:
        """Encode a batch of pieces in one ffmpeg process; a piece over CHECK after encoding is encoded
        again (with the others still over it) with its ceiling lowered by what it was over, and more."""
        speech: dict[str, dict[int, np.ndarray]] = {p.key: {} for p, _, _ in batch}  # each sentence read once
        ceiling = {p.key: CEILING for p, _, _ in batch}
        todo, done = list(batch), []
        for _ in range(4):
            ys = [(p.key, np.concatenate(self._parts(p, clips, gain, ceiling[p.key], speech[p.key], self._inner)))
                  for p, clips, gain in todo]
            again = []
            for job, (data, decoded) in zip(todo, self._codec(ys)):
                p = job[0]
                peak_db, energy = self._measure(decoded)
                if peak_db > CHECK:
                    ceiling[p.key] -= peak_db - CHECK + 0.3
                    again.append(job)
                    continue
                meta = {"bytes": len(data), "samples": len(decoded), "peak_dbtp": round(float(peak_db), 2),
                        "energy": [float(f"{e:.6g}") for e in energy]}
                atomic_write(self.path(p.key), data)
                atomic_write(self.dir / f"{p.key}.json", json.dumps(meta).encode())
                done.append((p.key, meta))
            todo = again
            if not todo:
                return done
        raise ExportError(f"could not bring '{todo[0][0].title}' under {TRUE_PEAK_LIMIT} dBTP after encoding")

    def _batches(self, jobs: list[tuple[Piece, dict, float]]) -> list[list]:
        """The pieces to encode, in order, in batches of BATCH seconds of audio (four batches per job
        while there is enough to share, so the cores finish together) and BATCH pieces at most."""
        length = [sum(clips[t].samples for t in p.texts) + sum(p.gaps) for p, clips, _ in jobs]
        least, most, pieces = BATCH
        least = min(max(least, sum(length) / RATE / (4 * self.jobs)), most) * RATE
        batches: list[list] = []
        size = least
        for job, n in zip(jobs, length):
            if size >= least or len(batches[-1]) >= pieces:
                batches.append([])
                size = 0
            batches[-1].append(job)
            size += n
        return batches

    def encode(self, episodes: list[Episode], clips) -> None:
        """Give every segment of every episode its pieces, with their keys and decoded lengths, encoding
        the pieces not cached."""
        todo: dict[str, tuple] = {}
        for ep in episodes:
            segs = []
            for seg in ep.segments:
                s = Segment(seg.title, seg.section, seg.texts)  # episodes share a Segment, not its gain
                s.pieces = self.pieces(s, clips, ep.gain)
                for p in s.pieces:
                    if p.key not in self.meta and p.key not in todo:
                        cached = self._cached(p.key)
                        if cached is None:
                            todo[p.key] = (p, clips, ep.gain)
                        else:
                            self.meta[p.key] = cached
                            self.stats.reused += 1
                segs.append(s)
            ep.segments = segs
        batches = self._batches(list(todo.values()))
        self._inner = max(1, self.jobs // max(1, len(batches)))  # an edit: its one piece on every core
        for done in render.parallel_map(self._encode, batches, self.jobs):
            self.stats.encoded += len(done)
            self.meta.update(done)
        for ep in episodes:
            for s in ep.segments:
                for p in s.pieces:
                    p.samples = self.meta[p.key]["samples"]


# ---------------------------------------------------------------------- times: chapters and cues


def time_episode(ep: Episode, clips, fmt: str) -> None:
    """Chapters and cues from the clips' lengths and the pieces' decoded lengths (whole frames,
    with the encoder's delay at each piece's start)."""
    delay = FORMATS[fmt]["delay"]
    ep.cues, ep.chapters = [], []
    start = 0
    for n, seg in enumerate(ep.segments):
        ep.chapters.append(Chapter(0.0 if n == 0 else round((start + delay) / RATE, 3), seg.title, seg.section))
        for piece in seg.pieces:
            t = start + delay
            for text, gap in zip(piece.texts, piece.gaps):
                n_samples = clips[text].samples
                ep.cues.extend(_cues(t / RATE, (t + n_samples) / RATE, text))
                t += n_samples + gap
            start += piece.samples
    ep.duration = start / RATE


def _cues(start: float, end: float, text: str) -> list[Cue]:
    """One sentence -> cues of at most two lines of MAX_LINE characters, timed by share of characters."""
    lines = textwrap.wrap(text, MAX_LINE) or [text]
    groups = ["\n".join(lines[i:i + 2]) for i in range(0, len(lines), 2)]
    total = sum(len(g) for g in groups)
    out, t = [], start
    for g in groups:
        dur = (end - start) * len(g) / total
        out.append(Cue(round(t, 3), round(t + dur, 3), g))
        t += dur
    return out


# ---------------------------------------------------------------------- episode files


def _frames_id3(ep: Episode, guide: Guide, show: PodcastInfo, cover: bytes) -> list:
    from mutagen.id3 import APIC, CHAP, COMM, CTOC, TALB, TCON, TDRC, TIT2, TPE1, TCOP, CTOCFlags

    ends = [c.start for c in ep.chapters[1:]] + [ep.duration]
    ids = [f"chp{i}" for i in range(len(ep.chapters))]
    frames = [TIT2(encoding=3, text=[ep.title]), TPE1(encoding=3, text=[show.author]),
              TALB(encoding=3, text=[guide.title]), TDRC(encoding=3, text=[str(guide.last_reviewed.year)]),
              TCON(encoding=3, text=["Podcast"]),
              COMM(encoding=3, lang="eng", desc="", text=[f"{ep.description} {DISCLAIMER_NOTE}"])]
    if show.copyright:
        frames.append(TCOP(encoding=3, text=[show.copyright]))
    frames.append(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                       sub_frames=[TIT2(encoding=3, text=[ep.title])]))
    for cid, ch, end in zip(ids, ep.chapters, ends):
        frames.append(CHAP(element_id=cid, start_time=int(ch.start * 1000), end_time=int(end * 1000),
                           sub_frames=[TIT2(encoding=3, text=[ch.title])]))
    frames.append(APIC(encoding=3, mime="image/png", type=3, desc="Cover", data=cover))
    return frames


def id3_tag(frames: list) -> bytes:
    """An ID3v2.4 tag with ``frames`` stored in the order given (mutagen's own save sorts them by size,
    which shuffles the CHAP frames)."""
    from mutagen.id3._tags import save_frame
    from mutagen.id3._util import BitPaddedInt, ID3SaveConfig

    body = b"".join(save_frame(f, config=ID3SaveConfig(4, None)) for f in frames) + b"\0" * 256
    return b"ID3\x04\x00\x00" + BitPaddedInt.to_str(len(body), width=4, bits=7) + body


def _ffmetadata(ep: Episode, guide: Guide, show: PodcastInfo) -> str:
    e = _meta_escape
    lines = [";FFMETADATA1", f"title={e(ep.title)}", f"artist={e(show.author)}", f"album={e(guide.title)}",
             f"date={guide.last_reviewed.year}", f"comment={e(ep.description + ' ' + DISCLAIMER_NOTE)}",
             f"genre=Podcast"] + ([f"copyright={e(show.copyright)}"] if show.copyright else [])
    ends = [c.start for c in ep.chapters[1:]] + [ep.duration]
    for ch, end in zip(ep.chapters, ends):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={int(ch.start * 1000)}", f"END={int(end * 1000)}",
                  f"title={e(ch.title)}"]
    return "\n".join(lines) + "\n"


def _meta_escape(s: str) -> str:
    return re.sub(r"([=;#\\\n])", r"\\\1", s)


def write_audio(ep: Episode, path: Path, encoder: Encoder, guide: Guide, show: PodcastInfo, cover: bytes,
                work: Path) -> None:
    """Join the episode's encoded pieces into ``path`` with its tags and chapters."""
    joined = b"".join(encoder.path(p.key).read_bytes() for s in ep.segments for p in s.pieces)
    if encoder.fmt == "mp3":
        atomic_write(path, id3_tag(_frames_id3(ep, guide, show, cover)) + joined)
        return
    src, meta, art = work / f"{ep.slug}.aac", work / f"{ep.slug}.ffmeta", work / "cover.png"
    src.write_bytes(joined)
    meta.write_text(_ffmetadata(ep, guide, show), encoding="utf-8")
    art.write_bytes(cover)
    tmp = work / f"{ep.slug}.m4a"
    render.run([render.ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-f", "aac", "-i", str(src),
                "-i", str(meta), "-i", str(art), "-map", "0:a", "-map", "2:v", "-map_metadata", "1",
                "-map_chapters", "1", "-c", "copy", "-disposition:v:0", "attached_pic", "-movflags", "+faststart",
                "-f", "mp4", str(tmp)])
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    for f in (src, meta):
        f.unlink()


# ---------------------------------------------------------------------- transcripts, chapters, cover


def webvtt(ep: Episode) -> str:
    blocks = ["WEBVTT", ""]
    for c in ep.cues:
        blocks += [f"{render.clock(c.start)} --> {render.clock(c.end)}", c.text, ""]
    return "\n".join(blocks)


def srt(ep: Episode) -> str:
    blocks = []
    for i, c in enumerate(ep.cues, 1):
        blocks += [str(i), f"{render.clock(c.start, ',')} --> {render.clock(c.end, ',')}", c.text, ""]
    return "\n".join(blocks)


def chapters_json(ep: Episode) -> str:
    return json.dumps({"version": "1.2.0", "chapters": [{"startTime": round(c.start, 3), "title": c.title}
                                                         for c in ep.chapters]}, indent=2, ensure_ascii=False)


# ---------------------------------------------------------------------- feeds


_BAD_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _BAD_XML.sub("", text)


def _sub(parent, tag: str, body: str | None = None, **attrs) -> ET.Element:
    if ":" in tag:
        prefix, name = tag.split(":")
        tag = f"{{{NS[prefix]}}}{name}"
    el = ET.SubElement(parent, tag, {k: _clean(str(v)) for k, v in attrs.items()})
    if body is not None:
        el.text = _clean(body)
    return el


def podcast_guid(feed_url: str) -> str:
    """Podcasting 2.0 podcast:guid: UUIDv5 of the feed URL without its scheme and trailing slashes."""
    bare = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", feed_url).rstrip("/")
    return str(uuid.uuid5(PODCAST_NAMESPACE_UUID, bare))


def show_notes(guide: Guide, ep: Episode) -> str:
    """HTML show notes: the episode, the disclaimer, the review date, its sources as links, its chapters."""
    e = html.escape
    cited = ep.section.sources if ep.section is not None else tuple(s.id for s in guide.sources)
    items = []
    for sid in cited:
        s = guide.source(sid)
        who = ", ".join(x for x in (s.publisher, s.author) if x)
        name = f'<a href="{e(s.url)}">{e(s.title)}</a>' if s.url else e(s.title)
        items.append(f"<li>{name}{', ' + e(who) if who else ''}</li>")
    chapters = "".join(f"<li>{render.clock(c.start)[:8]} {e(c.title)}</li>" for c in ep.chapters)
    return (f"<p>{e(ep.description)}</p><p>{e(guide.disclaimer)}</p>"
            f"<p>{e(guide.reviewed_line())}</p>"
            f"<p>Chapters:</p><ul>{chapters}</ul><p>Sources:</p><ul>{''.join(items)}</ul>")


def feed_xml(guide: Guide, episodes: list[tuple[Episode, Path]], show: PodcastInfo, fmt: str, feed_name: str,
             title: str | None = None, kind: str = "episodic") -> bytes:
    """An RSS 2.0 podcast feed. With ``show.base_url`` every link is absolute (publishable);
    without it links are relative (a preview to open from the folder)."""
    base = show.base_url

    def url(name: str) -> str:
        return base + name if base else name

    feed_url = url(feed_name)
    rss = ET.Element("rss", {"version": "2.0"})
    ch = _sub(rss, "channel")
    title = title or guide.title
    link = show.link or base or "./"
    _sub(ch, "title", title)
    _sub(ch, "link", link)
    _sub(ch, "description", guide.description or guide.title)
    _sub(ch, "language", guide.language)
    if show.copyright:
        _sub(ch, "copyright", show.copyright)
    _sub(ch, "generator", "VoiceGuide")
    # dated the day the guide was last reviewed (never in the future: feed readers distrust that)
    pub = min(dt.datetime.combine(guide.last_reviewed, dt.time(0, 0), dt.timezone.utc),
              dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1))
    _sub(ch, "pubDate", email.utils.format_datetime(pub))
    if base:
        _sub(ch, "atom:link", href=feed_url, rel="self", type="application/rss+xml")
    img = _sub(ch, "image")
    _sub(img, "url", url("cover.png"))
    _sub(img, "title", title)
    _sub(img, "link", link)
    _sub(ch, "itunes:author", show.author)
    _sub(ch, "itunes:image", href=url("cover.png"))
    cat = _sub(ch, "itunes:category", text=show.category)  # the category is the text *attribute*
    if show.subcategory:
        _sub(cat, "itunes:category", text=show.subcategory)
    _sub(ch, "itunes:explicit", "true" if show.explicit else "false")
    _sub(ch, "itunes:type", kind)
    owner = _sub(ch, "itunes:owner")
    _sub(owner, "itunes:name", show.owner_name)
    if show.owner_email:
        _sub(owner, "itunes:email", show.owner_email)
    if show.owner_email:
        _sub(ch, "podcast:locked", "no", owner=show.owner_email)
    if base or show.guid:
        _sub(ch, "podcast:guid", show.guid if show.guid and feed_name == "feed.xml" else podcast_guid(feed_url))
    for ep, path in episodes:
        item = _sub(ch, "item")
        _sub(item, "title", ep.title)
        _sub(item, "itunes:title", ep.title)
        _sub(item, "description", ep.description)
        ET.SubElement(item, f"{{{NS['content']}}}encoded").text = _clean(show_notes(guide, ep))
        _sub(item, "guid", f"voiceguide:{ep.slug}", isPermaLink="false")
        # serial episodes get distinct dates a minute apart, in order, so every app sorts them alike
        when = pub if ep.section is None else pub + dt.timedelta(minutes=ep.number - 60)
        _sub(item, "pubDate", email.utils.format_datetime(when))
        _sub(item, "enclosure", url=url(path.name), length=str(path.stat().st_size), type=FORMATS[fmt]["mime"])
        _sub(item, "itunes:duration", render.clock(ep.duration, None))
        _sub(item, "itunes:episode", str(ep.number))
        _sub(item, "itunes:episodeType", "full")
        _sub(item, "itunes:explicit", "true" if show.explicit else "false")
        _sub(item, "itunes:image", href=url("cover.png"))
        _sub(item, "podcast:transcript", url=url(f"{ep.slug}.vtt"), type="text/vtt", language=guide.language)
        _sub(item, "podcast:transcript", url=url(f"{ep.slug}.srt"), type="application/x-subrip",
             language=guide.language)
        _sub(item, "podcast:chapters", url=url(f"{ep.slug}.chapters.json"), type="application/json+chapters")
    ET.indent(rss)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="utf-8")


# ---------------------------------------------------------------------- the job


_LEFTOVER = re.compile(r"^\.(.+\.(mp3|m4a|vtt|srt|json|png|xml))(\.part\.\w+|\.[A-Za-z0-9_]{8})$")


def clean_leftovers(out: Path) -> int:
    """Remove what a killed run left: hidden temporary files beside the outputs and in the cache,
    and the work folder. Returns how many files were removed."""
    n = 0
    for folder, pattern in ((out, _LEFTOVER), (out / ".cache", re.compile(r"^\..+\.[A-Za-z0-9_]{8}$")),
                            (out / ".cache" / "segments", re.compile(r"^\..+\.[A-Za-z0-9_]{8}$"))):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_file() and pattern.match(p.name):
                p.unlink(missing_ok=True)
                n += 1
    return n


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".voiceguide-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise ExportError(f"--out {out}: is not a folder") from None
        raise ExportError(f"{out}: cannot write there ({exc.strerror or exc})") from None


def export(guide: Guide, out: Path, *, engine: str = "espeak", voice: str | None = None, rate: int = 175,
           fmt: str = "mp3", base_url: str | None = None, per_section: bool = False, jobs: int | None = None,
           progress=None, loudness: str = "mono", bitrate: int | None = None, show: PodcastInfo | None = None,
           say=print) -> Stats:
    """Write the podcast into ``out``; returns the counts of sentences rendered and pieces encoded."""
    render.ffmpeg()
    check_out(out)
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    show = show or show_of(guide)
    if base_url:
        show = dataclasses.replace(show, base_url=base_url if base_url.endswith("/") else base_url + "/")
    target, channels = LOUDNESS[loudness]
    bitrate = bitrate or (64 if channels == 1 else 128)
    jobs = jobs or os.cpu_count() or 2
    tts = check_voice(engine, voice) if voice else engine  # built only if a sentence must be rendered
    clean_leftovers(out)
    renderer = Renderer(tts, voice, rate, guide.lexicon, out / ".cache", jobs, progress or _progress())
    manifest_path = out / ".cache" / "episodes.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    work = render.work_dir(out)
    try:
        full, series = plan(guide, per_section)
        episodes = [full, *series]
        clips = renderer.clips([t for ep in episodes for s in ep.segments for t in s.texts])
        choose_gain(full, clips, [manifest.get(full.slug, {}).get("gain")])
        for ep in series:
            choose_gain(ep, clips, [full.gain, manifest.get(ep.slug, {}).get("gain")])
        encoder = Encoder(renderer, fmt, channels, bitrate, jobs, work)
        encoder.encode(episodes, clips)
        for ep in episodes:  # measured after encoding: far off (a voice unlike the codec loss assumed)? again
            loud, _ = encoder.loudness(ep)
            if abs(loud - MONO_TARGET) > RETRY:
                ep.gain = round(ep.gain + MONO_TARGET - loud, 2)
                encoder.encode([ep], clips)
            loud, ep.peak = encoder.loudness(ep)
            ep.loudness = loud + 10 * np.log10(channels)
        renderer.stats.loudness, renderer.stats.peak = full.loudness, full.peak
        cover = cover_png(guide.title, out / ".cache")
        if not _same(out / "cover.png", cover):
            atomic_write(out / "cover.png", cover)
        written: list[tuple[Episode, Path]] = []
        for ep in episodes:
            time_episode(ep, clips, fmt)
            path = out / f"{ep.slug}.{fmt}"
            key = hashlib.sha256(json.dumps([[p.key for s in ep.segments for p in s.pieces], fmt, ep.title,
                                             ep.description, show.author, show.copyright, guide.title,
                                             str(guide.last_reviewed), hashlib.sha256(cover).hexdigest(),
                                             [(c.start, c.title) for c in ep.chapters]]).encode()).hexdigest()
            old = manifest.get(ep.slug, {})
            if not (old.get("key") == key and path.is_file() and path.stat().st_size == old.get("bytes")):
                write_audio(ep, path, encoder, guide, show, cover, work)
            manifest[ep.slug] = {"key": key, "bytes": path.stat().st_size, "gain": ep.gain}
            for name, text in ((f"{ep.slug}.vtt", webvtt(ep)), (f"{ep.slug}.srt", srt(ep)),
                               (f"{ep.slug}.chapters.json", chapters_json(ep))):
                if not _same(out / name, text.encode()):
                    atomic_write(out / name, text.encode())
            written.append((ep, path))
        data = json.dumps(manifest, indent=1).encode()
        if not _same(manifest_path, data):
            atomic_write(manifest_path, data)
        feeds = [("feed.xml", written[:1], guide.title, "episodic")]
        if per_section:
            feeds.append(("sections.xml", written[1:], f"{guide.title}: section by section", "serial"))
        for name, items, title, kind in feeds:
            shown = name if show.base_url else f"preview-{name}"
            data = feed_xml(guide, items, show, fmt, name, title, kind)
            if not _same(out / shown, data):  # (its dates are the review's, not the run's)
                atomic_write(out / shown, data)
        if not show.base_url:
            say(f"Note: no feed.xml: a publishable feed needs the address the files will be served from "
                f"(--base-url URL, or base_url in guide.yaml's podcast: block); preview-feed.xml has relative "
                f"links, for local listening only.")
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ExportError(f"the disk is full while writing to {out}") from None
        raise ExportError(f"{out}: {exc.strerror or exc}") from None
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return renderer.stats


def _same(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def register(sub, formatter) -> None:
    p = sub.add_parser("export", help="write the guide as a podcast: episodes, chapters, transcripts, feed",
                       description="Write a podcast into DIR: the episode audio with chapters and tags, WebVTT "
                                   "and SRT transcripts, a chapters file, cover art, and feed.xml (which needs "
                                   "the address the files will be served from: --base-url, or base_url in the "
                                   "guide's podcast: block). Sentences and encoded chapters are cached, so a "
                                   "second run only does what changed.", formatter_class=formatter)
    p.add_argument("--content", metavar="PATH", help="content pack folder (default: the shipped guide)")
    p.add_argument("--out", metavar="DIR", default="podcast", help="output folder (default: podcast)")
    p.add_argument("--engine", choices=[e for e in ENGINES if e != "silent"], default="espeak", help="speech engine")
    p.add_argument("--voice", metavar="VOICE", help="voice (see: voiceguide voices)")
    p.add_argument("--rate", type=int, default=165, metavar="WPM", help="words per minute (default 165)")
    p.add_argument("--format", choices=["mp3", "m4a", "epub3", "daisy202"], default="mp3",
                   help="podcast audio format (default mp3), or a talking book: epub3 (DIR/<id>.epub, EPUB 3 with "
                        "Media Overlays) or daisy202 (the folder DIR/<id>-daisy202)")
    p.add_argument("--base-url", metavar="URL", help="where the files will be published (default: base_url in "
                                                     "the guide's podcast: block; without one, only a preview feed)")
    p.add_argument("--per-section", action="store_true",
                   help="also write one episode per section, in their own feed (sections.xml)")
    p.add_argument("--loudness", choices=list(LOUDNESS), default="mono",
                   help="mono: -19 LUFS, one channel (default); stereo: -16 LUFS, two channels (Apple's target)")
    p.add_argument("--bitrate", type=int, metavar="KBPS", help="audio bitrate (default 64 mono, 128 stereo)")
    p.add_argument("--author", metavar="NAME", help="the show's author (default: from the guide)")
    p.add_argument("--owner-name", metavar="NAME", help="the feed owner's name (default: from the guide)")
    p.add_argument("--owner-email", metavar="EMAIL", help="the feed owner's e-mail (default: from the guide)")
    p.add_argument("--copyright", metavar="TEXT", help="copyright line (default: from the guide)")
    p.add_argument("--link", metavar="URL", help="the show's web page (default: from the guide, else the base URL)")
    p.add_argument("--jobs", type=int, metavar="N", help="parallel renders and encodes (default: all cores)")
    p.set_defaults(func=cmd_export)


def _check_url(option: str, url: str | None) -> None:
    if url and not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+(/\S*)?$", url):
        raise ExportError(f"{option} {url}: expected an http:// or https:// address")


def cmd_export(args) -> int:
    if args.format in ("epub3", "daisy202"):  # talking books: voiceguide/talkingbook.py
        from .talkingbook import cmd_export_book

        return cmd_export_book(args)
    if not 80 <= args.rate <= 450:
        raise ExportError(f"--rate: {args.rate} is outside 80 to 450 words per minute")
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        raise ExportError(f"--jobs: {args.jobs} is not a number of parallel jobs from 1 to 64")
    if args.bitrate is not None and not 32 <= args.bitrate <= 320:
        raise ExportError(f"--bitrate: {args.bitrate} is outside 32 to 320 kbps")
    _check_url("--base-url", args.base_url)
    _check_url("--link", args.link)
    if args.owner_email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", args.owner_email):
        raise ExportError(f"--owner-email {args.owner_email}: expected an e-mail address")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: is not a folder")
    guide = load_guide(args.content)
    show = show_of(guide, base_url=args.base_url, author=args.author, owner_name=args.owner_name,
                   owner_email=args.owner_email, copyright=args.copyright, link=args.link)
    stats = export(guide, out, engine=args.engine, voice=args.voice, rate=args.rate, fmt=args.format,
                   per_section=args.per_section, jobs=args.jobs, loudness=args.loudness, bitrate=args.bitrate,
                   show=show)
    print(f"Podcast written to {out}: rendered {stats.rendered} sentences, {stats.cached} from the cache; "
          f"encoded {stats.encoded} audio pieces, {stats.reused} from the cache; {stats.loudness:.1f} LUFS, "
          f"true peak {stats.peak:.1f} dBTP (measured after encoding).")
    return 0
