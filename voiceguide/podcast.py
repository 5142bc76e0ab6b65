"""Podcast export: an episode with chapters, transcripts, podcast loudness, cover art and a feed.

Every sentence is rendered once and cached by (text after pronunciations,
engine, voice, rate, format version), so editing one section re-renders only
its changed sentences. Rendering runs in parallel; transcripts and chapters take
their times from the rendered audio itself. Every output file is written to a
temporary name and moved into place, so a killed export never leaves a
half-written file where a good one was, and the next run picks up the cache.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import audio as A
from .content import Guide, Section, load_guide
from .errors import ExportError
from .files import atomic_write
from .pronounce import apply
from .protocols import Audio
from .render import RATE, Renderer, Stats
from .render import ffmpeg as _ffmpeg
from .render import progress as _progress
from .tts import ENGINES, get_engine, split_sentences

__all__ = ["export", "Episode", "register", "LOUDNESS_TARGET", "TRUE_PEAK"]

LOUDNESS_TARGET = -19.0  # LUFS: the podcast standard for mono (-16 for stereo)
TRUE_PEAK = -1.5  # dBTP target, leaving margin under the -1 dBTP limit
GAP_SENTENCE, GAP_TITLE, GAP_SECTION = 0.35, 0.6, 1.2
MAX_LINE = 65

NS = {"itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd", "podcast": "https://podcastindex.org/namespace/1.0",
      "atom": "http://www.w3.org/2005/Atom"}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


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
class Episode:
    slug: str
    title: str
    description: str
    audio: Audio
    cues: list[Cue] = field(default_factory=list)
    chapters: list[Chapter] = field(default_factory=list)


# ---------------------------------------------------------------------- building episodes


def _intro(guide: Guide) -> list[str]:
    d = guide.last_reviewed
    return [guide.title, guide.disclaimer, f"This guide was last reviewed on {d.strftime('%B')} {d.day}, {d.year}."]


def _outro(guide: Guide) -> list[str]:
    lines = ["Sources."]
    for s in guide.sources:
        who = s.publisher or s.author
        lines.append(f"{s.title}. {who}." if who else f"{s.title}.")
    lines.append(f"That is the end of {guide.title}. Please talk with your care team about your own treatment.")
    return lines


def _section_texts(sec: Section) -> list[str]:
    return [sec.title, *split_sentences(sec.summary), *(s for p in sec.body for s in split_sentences(p))]


def _assemble(slug: str, title: str, description: str, parts: list[tuple[str, str | None, list[str]]],
              audio_for: dict[str, Audio]) -> Episode:
    """parts: (chapter title, section id, sentences). Times come from the rendered samples."""
    pcm = bytearray()
    cues: list[Cue] = []
    chapters: list[Chapter] = []

    def now() -> float:
        return len(pcm) / 2 / RATE

    for n, (chapter, section_id, sentences) in enumerate(parts):
        if n:
            pcm += A.silence(GAP_SECTION, RATE).pcm
        chapters.append(Chapter(now(), chapter, section_id))
        for i, text in enumerate(sentences):
            start = now()
            pcm += audio_for[text].pcm
            cues.extend(_cues(start, now(), text))
            pcm += A.silence(GAP_TITLE if i == 0 else GAP_SENTENCE, RATE).pcm
    return Episode(slug, title, description, Audio(bytes(pcm), RATE), cues, chapters)


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


def build_episodes(guide: Guide, renderer: Renderer, per_section: bool) -> list[Episode]:
    parts: list[tuple[str, str | None, list[str]]] = [("Introduction", None, _intro(guide))]
    for sec in guide.walk():
        parts.append((sec.title, sec.id, _section_texts(sec)))
    parts.append(("Sources", None, _outro(guide)))
    texts = [t for _, _, ts in parts for t in ts]
    audio_for = renderer.render_all(texts)
    episodes = [_assemble(guide.id, guide.title, guide.description or guide.title, parts, audio_for)]
    if per_section:
        for title, sid, ts in parts[1:-1]:
            sec = guide.section(sid)
            episodes.append(_assemble(f"{guide.id}-{sid}", f"{guide.title}: {title}", sec.summary,
                                      [(title, sid, ts)], audio_for))
    return episodes


# ---------------------------------------------------------------------- encoding


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        if "No space left" in proc.stderr:
            raise ExportError(f"the disk is full ({tail})")
        raise ExportError(f"ffmpeg failed: {tail}")
    return proc


def encode(episode: Episode, out: Path, fmt: str, work: Path) -> None:
    """Loudness-normalise (two-pass loudnorm) and encode mono speech, with chapters."""
    ffmpeg = _ffmpeg()
    wav = work / f"{episode.slug}.wav"
    wav.write_bytes(A.wav_bytes(episode.audio))
    first = _run([ffmpeg, "-hide_banner", "-nostats", "-i", str(wav), "-af",
                  f"loudnorm=I={LOUDNESS_TARGET}:TP={TRUE_PEAK}:LRA=11:print_format=json", "-f", "null", "-"])
    m = re.search(r"\{[^{}]*\"input_i\"[^{}]*\}", first.stderr)
    if not m:
        raise ExportError("ffmpeg loudnorm gave no measurement")
    meas = json.loads(m.group(0))
    af = (f"loudnorm=I={LOUDNESS_TARGET}:TP={TRUE_PEAK}:LRA=11:measured_I={meas['input_i']}:"
          f"measured_TP={meas['input_tp']}:measured_LRA={meas['input_lra']}:measured_thresh={meas['input_thresh']}:"
          f"offset={meas['target_offset']}:linear=true,aresample={RATE}")
    tmp = out.with_name(f".{out.name}.part{out.suffix}")
    codec = ["-c:a", "libmp3lame", "-b:a", "64k"] if fmt == "mp3" else ["-c:a", "aac", "-b:a", "64k"]
    cmd = [ffmpeg, "-hide_banner", "-nostats", "-y", "-i", str(wav)]
    if fmt == "m4a":
        meta = work / f"{episode.slug}.ffmeta"
        meta.write_text(_ffmetadata(episode), encoding="utf-8")
        cmd += ["-i", str(meta), "-map_metadata", "1", "-map_chapters", "1", "-map", "0:a"]
    cmd += ["-af", af, "-ac", "1", "-ar", str(RATE), *codec, "-metadata", f"title={episode.title}", str(tmp)]
    try:
        _run(cmd)
        if fmt == "mp3":
            _id3_chapters(tmp, episode)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def _ffmetadata(ep: Episode) -> str:
    lines = [";FFMETADATA1", f"title={_meta_escape(ep.title)}"]
    ends = [c.start for c in ep.chapters[1:]] + [ep.audio.duration]
    for ch, end in zip(ep.chapters, ends):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={int(ch.start * 1000)}", f"END={int(end * 1000)}",
                  f"title={_meta_escape(ch.title)}"]
    return "\n".join(lines) + "\n"


def _meta_escape(s: str) -> str:
    return re.sub(r"([=;#\\\n])", r"\\\1", s)


def _id3_chapters(path: Path, ep: Episode) -> None:
    from mutagen.id3 import CHAP, CTOC, ID3, TIT2, CTOCFlags, ID3NoHeaderError

    try:
        tags = ID3(str(path))
    except ID3NoHeaderError:
        tags = ID3()
    tags.delall("CHAP")
    tags.delall("CTOC")
    ends = [c.start for c in ep.chapters[1:]] + [ep.audio.duration]
    ids = [f"chp{i}" for i in range(len(ep.chapters))]
    tags.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                  sub_frames=[TIT2(text=[ep.title])]))
    for cid, ch, end in zip(ids, ep.chapters, ends):
        tags.add(CHAP(element_id=cid, start_time=int(ch.start * 1000), end_time=int(end * 1000),
                      sub_frames=[TIT2(text=[ch.title])]))
    tags.add(TIT2(text=[ep.title]))
    tags.save(str(path), v2_version=4)


# ---------------------------------------------------------------------- transcripts, chapters, cover, feed


def _ts(t: float, sep: str) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def webvtt(ep: Episode) -> str:
    blocks = ["WEBVTT", ""]
    for c in ep.cues:
        blocks += [f"{_ts(c.start, '.')} --> {_ts(c.end, '.')}", c.text, ""]
    return "\n".join(blocks)


def srt(ep: Episode) -> str:
    blocks = []
    for i, c in enumerate(ep.cues, 1):
        blocks += [str(i), f"{_ts(c.start, ',')} --> {_ts(c.end, ',')}", c.text, ""]
    return "\n".join(blocks)


def chapters_json(ep: Episode) -> str:
    return json.dumps({"version": "1.2.0", "chapters": [{"startTime": round(c.start, 3), "title": c.title}
                                                         for c in ep.chapters]}, indent=2, ensure_ascii=False)


def cover_png(title: str) -> bytes:
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
    lines = textwrap.wrap(title, 18)
    y = (size - len(lines) * 140) // 2
    for line in lines:
        w = draw.textlength(line, font=font)
        draw.text(((size - w) / 2, y), line, font=font, fill=(255, 255, 255))
        y += 140
    draw.rectangle([100, size - 160, size - 100, size - 150], fill=(255, 196, 0))
    import io

    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


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


def feed_xml(guide: Guide, episodes: list[tuple[Episode, Path]], base_url: str | None, fmt: str) -> bytes:
    def url(name: str) -> str:
        return f"{base_url.rstrip('/')}/{name}" if base_url else name

    rss = ET.Element("rss", {"version": "2.0"})
    ch = _sub(rss, "channel")
    _sub(ch, "title", guide.title)
    _sub(ch, "description", guide.description or guide.title)
    _sub(ch, "language", guide.language)
    _sub(ch, "link", base_url or "./")
    author = ", ".join(guide.authors) or "VoiceGuide"
    _sub(ch, "itunes:author", author)
    _sub(ch, "itunes:summary", guide.description or guide.title)
    _sub(ch, "itunes:image", href=url("cover.png"))
    cat = _sub(ch, "itunes:category", text="Health & Fitness")
    _sub(cat, "itunes:category", text="Medicine")  # the category is the text *attribute*
    _sub(ch, "itunes:explicit", "false")
    _sub(ch, "itunes:type", "serial")
    owner = _sub(ch, "itunes:owner")
    _sub(owner, "itunes:name", author)
    _sub(ch, "podcast:locked", "no")
    _sub(ch, "generator", "VoiceGuide")
    pub = email.utils.format_datetime(dt.datetime.combine(guide.last_reviewed, dt.time(12, 0), dt.timezone.utc))
    _sub(ch, "pubDate", pub)
    mime = "audio/mpeg" if fmt == "mp3" else "audio/x-m4a"
    for n, (ep, path) in enumerate(episodes, 1):
        item = _sub(ch, "item")
        _sub(item, "title", ep.title)
        _sub(item, "description", ep.description)
        _sub(item, "guid", f"voiceguide:{ep.slug}", isPermaLink="false")
        _sub(item, "pubDate", pub)
        _sub(item, "enclosure", url=url(path.name), length=str(path.stat().st_size), type=mime)
        secs = int(round(ep.audio.duration))
        _sub(item, "itunes:duration", f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}")
        _sub(item, "itunes:episode", str(n))
        _sub(item, "itunes:explicit", "false")
        _sub(item, "podcast:transcript", url=url(f"{ep.slug}.vtt"), type="text/vtt", language=guide.language)
        _sub(item, "podcast:transcript", url=url(f"{ep.slug}.srt"), type="application/x-subrip",
             language=guide.language)
        _sub(item, "podcast:chapters", url=url(f"{ep.slug}.chapters.json"), type="application/json+chapters")
    ET.indent(rss)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="utf-8")


# ---------------------------------------------------------------------- the job


def export(guide: Guide, out: Path, *, engine: str = "espeak", voice: str | None = None, rate: int = 175,
           fmt: str = "mp3", base_url: str | None = None, per_section: bool = False, jobs: int | None = None,
           progress=None) -> Stats:
    _ffmpeg()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".voiceguide-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ExportError(f"{out}: cannot write there ({exc.strerror or exc})") from None
    tts = get_engine(engine)
    renderer = Renderer(tts, voice, rate, guide.lexicon, out / ".cache", jobs or os.cpu_count() or 2,
                        progress or _progress())
    try:
        episodes = build_episodes(guide, renderer, per_section)
        with tempfile.TemporaryDirectory(prefix="voiceguide-export-") as work:
            written = []
            for ep in episodes:
                audio_path = out / f"{ep.slug}.{fmt}"
                encode(ep, audio_path, fmt, Path(work))
                atomic_write(out / f"{ep.slug}.vtt", webvtt(ep).encode())
                atomic_write(out / f"{ep.slug}.srt", srt(ep).encode())
                atomic_write(out / f"{ep.slug}.chapters.json", chapters_json(ep).encode())
                written.append((ep, audio_path))
        atomic_write(out / "cover.png", cover_png(guide.title))
        atomic_write(out / "feed.xml", feed_xml(guide, written, base_url, fmt))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ExportError(f"the disk is full while writing to {out}") from None
        raise ExportError(f"{out}: {exc.strerror or exc}") from None
    return renderer.stats


def register(sub, formatter) -> None:
    p = sub.add_parser("export", help="write the guide as a podcast: episodes, chapters, transcripts, feed",
                       description="Write a publishable podcast into DIR: feed.xml, the episode audio with chapters, "
                                   "WebVTT and SRT transcripts, a chapters file and cover art. Audio is cached per "
                                   "sentence, so a second run only renders what changed.", formatter_class=formatter)
    p.add_argument("--content", metavar="PATH", help="content pack folder (default: the shipped guide)")
    p.add_argument("--out", metavar="DIR", default="podcast", help="output folder (default: podcast)")
    p.add_argument("--engine", choices=[e for e in ENGINES if e != "silent"], default="espeak", help="speech engine")
    p.add_argument("--voice", metavar="VOICE", help="voice (see: voiceguide voices)")
    p.add_argument("--rate", type=int, default=165, metavar="WPM", help="words per minute (default 165)")
    p.add_argument("--format", choices=["mp3", "m4a", "epub3", "daisy202"], default="mp3",
                   help="podcast audio format (default mp3), or a talking book: epub3 (DIR/<id>.epub, EPUB 3 with "
                        "Media Overlays) or daisy202 (the folder DIR/<id>-daisy202)")
    p.add_argument("--base-url", metavar="URL", help="where the files will be published (default: relative links)")
    p.add_argument("--per-section", action="store_true", help="also write one episode per section")
    p.add_argument("--jobs", type=int, metavar="N", help="parallel renders (default: all cores)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    if args.format in ("epub3", "daisy202"):  # talking books: voiceguide/talkingbook.py
        from .talkingbook import cmd_export_book

        return cmd_export_book(args)
    if not 80 <= args.rate <= 450:
        raise ExportError(f"--rate: {args.rate} is outside 80 to 450 words per minute")
    guide = load_guide(args.content)
    out = Path(args.out)
    stats = export(guide, out, engine=args.engine, voice=args.voice, rate=args.rate, fmt=args.format,
                   base_url=args.base_url, per_section=args.per_section, jobs=args.jobs)
    print(f"Podcast written to {out}: rendered {stats.rendered} sentences, {stats.cached} from the cache.")
    return 0
