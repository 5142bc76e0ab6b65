"""Talking books: EPUB 3 with Media Overlays, and DAISY 2.02 full text and full audio.

Both are built from one plan of the guide: front matter (title, disclaimer, review
date), every section in reading order (its heading, summary and paragraphs), and
back matter (the sources). Every heading and sentence is one *clip*: an element id
in the text and a stretch of audio. A clip runs from the start of its speech to the
start of the next clip's speech (the pause after it belongs to it), so the clips of
one audio file follow each other with no gap and no overlap, and their times come
from the rendered sentences' sample counts.

Sentences are rendered by the podcast's renderer into the same cache (``OUT/.cache``),
which keeps each sentence's length and true peak beside its WAV: a podcast, an EPUB
and a DAISY book exported into one folder render the sentences they share once, and
timing a book reads no audio. Encoded MP3s are cached in ``OUT/.cache/mp3``, keyed by
their sentences' cache keys, pauses, gain and settings, so a warm export reads none.

Output is atomic: the book is built in a temporary folder inside the output folder
and renamed into place (the DAISY folder is swapped with the old one in one
``renameat2(RENAME_EXCHANGE)`` where Linux offers it), so a killed export leaves the
previous book whole; its temporary folder is removed by the next run.

* EPUB 3: ``OUT/<guide id>.epub`` (EPUB 3.2, checked with epubcheck): XHTML per top-level
  section with the section hierarchy as headings, a navigation document (table of
  contents, landmarks), a Media Overlay per content document, MP3 audio, a PLS lexicon
  and ``ssml:ph`` hints for the lexicon's words, accessibility metadata, a cover.
* DAISY 2.02: ``OUT/<guide id>-daisy202/``: ``ncc.html``, ``content.html``, one SMIL and
  one MP3 per section, ``master.smil``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from . import __version__, render
from .content import Guide, Section, load_guide
from .errors import ExportError
from .files import atomic_write
from .tts import get_engine, split_sentences

__all__ = ["FORMATS", "Book", "Unit", "Clip", "plan", "export_book", "cmd_export_book", "arpabet_to_ipa"]

FORMATS = ("epub3", "daisy202")
GAP_HEADING, GAP_SENTENCE, GAP_PARAGRAPH, GAP_UNIT = 0.6, 0.35, 0.6, 1.0
BITRATE = 64  # kbps: plain speech in mono (the podcast default too)
MP3_VERSION = "1"
PEAK = 0.89  # -1 dBFS: the loudest sample of the book after its one gain
GENERATOR = f"VoiceGuide {__version__}"
ACTIVE_CLASS = "-epub-media-overlay-active"
PLAYING_CLASS = "-epub-media-overlay-playing"

_BAD_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    """Text or attribute value, escaped for XML, with characters XML cannot hold removed."""
    return escape(_BAD_XML.sub("", str(text)), {'"': "&quot;"})


# ---------------------------------------------------------------------- the plan: units and clips


@dataclasses.dataclass
class Clip:
    id: str
    """The element id of this text in the content."""
    text: str
    """What is shown and spoken."""
    pause: float
    """Seconds of silence after the speech (part of the clip)."""
    begin: int = 0
    end: int = 0
    """Samples, within the unit's audio."""
    measured: object = None
    """The sentence's :class:`render.Clip` (cache key, length, true peak)."""


@dataclasses.dataclass
class Unit:
    """One heading and what it heads, up to the next heading: a DAISY SMIL, a seq in an EPUB overlay."""

    id: str
    title: str
    level: int
    role: str
    """``front``, ``body`` or ``back``."""
    doc: str
    """The EPUB content document holding it."""
    heading: Clip
    blocks: list
    """("p", [Clip], css class) or ("sources", [(Clip, url)])."""
    children: list = dataclasses.field(default_factory=list)
    length: int = 0
    """Samples of the unit's audio."""

    @property
    def clips(self) -> list[Clip]:
        out = [self.heading]
        for block in self.blocks:
            out += block[1] if block[0] == "p" else [c for c, _ in block[1]]
        return out


@dataclasses.dataclass
class Book:
    guide: Guide
    units: list[Unit]
    rate: int = 0
    bitrate: int = BITRATE
    gain: float = 1.0
    renderer: object = None

    @property
    def docs(self) -> list[str]:
        return list(dict.fromkeys(u.doc for u in self.units))

    def duration(self, units: list[Unit]) -> float:
        return sum(u.length for u in units) / self.rate


def _para(prefix: str, text: str, start: int, cls: str = "") -> tuple:
    sentences = split_sentences(text) or [text]
    clips = [Clip(f"{prefix}-{start + i}", s, GAP_SENTENCE) for i, s in enumerate(sentences)]
    clips[-1].pause = GAP_PARAGRAPH
    return ("p", clips, cls)


def plan(guide: Guide) -> Book:
    """The book's units in reading order, their clips not yet timed."""
    units: list[Unit] = []
    front = Unit("front", guide.title, 1, "front", "front", Clip("front-title", guide.title, GAP_HEADING),
                 [_para("front", guide.disclaimer, 1, "disclaimer")])
    front.blocks.append(_para("front", guide.reviewed_line(), len(front.clips), "reviewed"))
    if guide.authors:
        front.blocks.append(_para("front", f"By {', '.join(guide.authors)}.", len(front.clips), "authors"))
    units.append(front)

    def add(sec: Section, level: int, doc: str) -> Unit:
        unit = Unit(sec.id, sec.title, min(level, 6), "body", doc, Clip(f"h-{sec.id}", sec.title, GAP_HEADING), [])
        n = 1
        for i, text in enumerate((sec.summary, *sec.body)):
            block = _para(f"t-{sec.id}", text, n, "summary" if i == 0 else "")
            n += len(block[1])
            unit.blocks.append(block)
        units.append(unit)
        unit.children = [add(child, level + 1, doc) for child in sec.children]
        return unit

    for sec in guide.sections:
        add(sec, 1, f"sec-{sec.id}")
    sources = []
    for n, s in enumerate(guide.sources, 1):
        who = s.publisher or s.author
        sources.append((Clip(f"source-{n}", f"{s.title}. {who}." if who else f"{s.title}.", GAP_SENTENCE), s.url))
    if sources:
        sources[-1][0].pause = GAP_PARAGRAPH
    back = Unit("back", "Sources", 1, "back", "back", Clip("h-sources", "Sources", GAP_HEADING), [("sources", sources)])
    back.blocks.append(_para("back", f"That is the end of {guide.title}. "
                                     "Please talk with your care team about your own treatment.", 1, "closing"))
    units.append(back)
    for u in units:
        u.clips[-1].pause = GAP_UNIT
    return Book(guide, units)


# ---------------------------------------------------------------------- rendering and timing


def time_book(book: Book, measured: dict) -> None:
    """Lay each unit's clips end to end from the sentences' measured lengths (``render.Clip``: the cache's
    JSON beside each WAV, so a warm export reads no audio); one gain for the book, from the true peaks."""
    rate = book.rate = render.RATE
    peak = max((m.peak for m in measured.values()), default=0.0)
    book.gain = min(4.0, PEAK / peak) if peak > 0 else 1.0
    for unit in book.units:
        pos = 0
        for clip in unit.clips:
            clip.measured = measured[clip.text]
            clip.begin = pos
            pos += clip.measured.samples + int(round(clip.pause * rate))
            clip.end = pos
        unit.length = pos


def _pcm(book: Book, units: list[Unit]) -> bytes:
    """The units' audio: each sentence from the cache at the book's gain, then its pause."""
    parts = []
    for u in units:
        for c in u.clips:
            x = book.renderer.samples(c.measured) * (32768 * book.gain)
            parts += [x, np.zeros(c.end - c.begin - len(x))]
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype("<i2").tobytes()


def _encode(book: Book, units: list[Unit], title: str, dest: Path, cache: Path) -> None:
    """MP3 of the units' audio at ``dest``, from the cache when the same sentences, pauses, gain and
    settings were encoded before (the key is built without reading any audio)."""
    spec = [MP3_VERSION, book.bitrate, book.rate, f"{book.gain:.6f}", title,
            [[c.measured.key, c.measured.samples, c.end - c.begin] for u in units for c in u.clips]]
    key = hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:32]
    cached = cache / f"{key}.mp3"
    if not cached.exists():
        tmp = cache / f".{key}.{os.getpid()}.part.mp3"
        try:
            render.run([render.ffmpeg("to export talking books"), "-hide_banner", "-nostats", "-loglevel", "error",
                        "-y", "-f", "s16le",
                        "-ar", str(book.rate), "-ac", "1", "-i", "pipe:0", "-c:a", "libmp3lame",
                        "-b:a", f"{book.bitrate}k", "-metadata", f"title={title}", str(tmp)], input=_pcm(book, units))
            os.replace(tmp, cached)
        finally:
            tmp.unlink(missing_ok=True)
    try:
        os.link(cached, dest)
    except OSError:
        shutil.copyfile(cached, dest)


def _encode_all(book: Book, jobs: list[tuple[list[Unit], str, Path]], cache: Path, workers: int) -> None:
    """Encode in parallel; on Ctrl-C or an error, running encoders are killed and queued ones dropped."""
    cache.mkdir(parents=True, exist_ok=True)
    for _ in render.parallel_map(lambda job: _encode(book, job[0], job[1], job[2], cache), jobs, workers):
        pass


# ---------------------------------------------------------------------- shared text helpers

_ARPABET_IPA = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "B": "b", "CH": "tʃ", "D": "d", "DH": "ð",
    "EH": "ɛ", "ER": "ɝ", "EY": "eɪ", "F": "f", "G": "ɡ", "HH": "h", "IH": "ɪ", "IY": "i", "JH": "dʒ", "K": "k",
    "L": "l", "M": "m", "N": "n", "NG": "ŋ", "OW": "oʊ", "OY": "ɔɪ", "P": "p", "R": "ɹ", "S": "s", "SH": "ʃ",
    "T": "t", "TH": "θ", "UH": "ʊ", "UW": "u", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}


def arpabet_to_ipa(phones: str) -> str:
    """CMU ARPAbet (stress digits allowed) to IPA; '' if any phone is unknown."""
    out = []
    for p in phones.split():
        ipa = _ARPABET_IPA.get(p.rstrip("012").upper())
        if ipa is None:
            return ""
        out.append(ipa)
    return "".join(out)


class _Hints:
    """Wraps the lexicon's words in ``ssml:ph`` spans (whole words, as the speech does)."""

    def __init__(self, guide: Guide):
        self.ipa = {e.word.lower(): arpabet_to_ipa(e.phones) for e in guide.lexicon if e.phones}
        self.ipa = {w: p for w, p in self.ipa.items() if p}
        words = sorted(self.ipa, key=len, reverse=True)
        self.pattern = (re.compile(rf"(?<![\w-])(?:{'|'.join(map(re.escape, words))})(?![\w-])", re.IGNORECASE)
                        if words else None)

    def markup(self, text: str) -> str:
        if not self.pattern:
            return _x(text)
        out, last = [], 0
        for m in self.pattern.finditer(text):
            out.append(_x(text[last:m.start()]))
            out.append(f'<span ssml:alphabet="ipa" ssml:ph="{_x(self.ipa[m.group(0).lower()])}">'
                       f"{_x(m.group(0))}</span>")
            last = m.end()
        out.append(_x(text[last:]))
        return "".join(out)


def pls(guide: Guide) -> str:
    """The lexicon as a W3C Pronunciation Lexicon (PLS 1.0): IPA from its phones, its respelling as alias."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<lexicon xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" version="1.0" alphabet="ipa" '
             f'xml:lang="{_x(guide.language)}">']
    for e in guide.lexicon:
        ipa = arpabet_to_ipa(e.phones) if e.phones else ""
        if not ipa and not e.say:
            continue
        spellings = dict.fromkeys([e.word, e.word.lower(), e.word[:1].upper() + e.word[1:]])
        lines.append("  <lexeme>" + "".join(f"<grapheme>{_x(g)}</grapheme>" for g in spellings)
                     + (f"<phoneme>{_x(ipa)}</phoneme>" if ipa else "")
                     + (f"<alias>{_x(e.say)}</alias>" if e.say else "") + "</lexeme>")
    lines.append("</lexicon>")
    return "\n".join(lines) + "\n"


def _secs(samples: int, rate: int) -> str:
    return f"{samples / rate:.3f}"


def _identifier(guide: Guide) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'voiceguide:{guide.id}')}"


def _creators(guide: Guide) -> list[str]:
    return list(guide.authors) or ["VoiceGuide"]


def _narrator(engine: str, voice: str | None) -> str:
    return f"synthetic speech ({engine}{', voice ' + voice if voice else ''})"


# ---------------------------------------------------------------------- EPUB 3

CSS = f"""body {{ font-family: serif; line-height: 1.5; margin: 1em; }}
h1, h2, h3, h4, h5, h6 {{ font-family: sans-serif; line-height: 1.2; }}
p.summary {{ font-weight: bold; }}
p.disclaimer {{ border-left: 0.3em solid #c90; padding-left: 0.6em; }}
.cover {{ text-align: center; }}
.cover img {{ max-width: 100%; max-height: 95vh; }}
.{ACTIVE_CLASS} {{ background-color: #ffe066; color: #000; }}
"""

_XHTML_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" \
xmlns:ssml="http://www.w3.org/2001/10/synthesis" xml:lang="{lang}" lang="{lang}">
<head>
<meta charset="UTF-8"/>
<title>{title}</title>
<link rel="stylesheet" type="text/css" href="css/book.css"/>
<link rel="pronunciation" type="application/pls+xml" hreflang="{lang}" href="lexicon.pls"/>
</head>
"""


def _blocks_html(unit: Unit, hints: _Hints) -> list[str]:
    out = [f'<h{unit.level} id="{unit.heading.id}">{hints.markup(unit.heading.text)}</h{unit.level}>']
    for block in unit.blocks:
        if block[0] == "p":
            cls = f' class="{block[2]}"' if block[2] else ""
            out.append(f"<p{cls}>" + " ".join(f'<span id="{c.id}">{hints.markup(c.text)}</span>' for c in block[1])
                       + "</p>")
        else:
            items = []
            for clip, url in block[1]:
                link = f' <a href="{_x(url)}">{_x(url)}</a>' if url else ""
                items.append(f'<li><span id="{clip.id}">{hints.markup(clip.text)}</span>{link}</li>')
            out.append("<ol>" + "".join(items) + "</ol>")
    return out


def _epub_section(unit: Unit, hints: _Hints, top: bool) -> list[str]:
    kind = ' epub:type="chapter"' if top else ""
    out = [f'<section id="s-{unit.id}"{kind} aria-labelledby="{unit.heading.id}">', *_blocks_html(unit, hints)]
    for child in unit.children:
        out += _epub_section(child, hints, False)
    return out + ["</section>"]


def _epub_doc(book: Book, doc: str, hints: _Hints) -> str:
    g = book.guide
    units = [u for u in book.units if u.doc == doc]
    head = _XHTML_HEAD.format(lang=_x(g.language), title=_x(units[0].title))
    if doc == "front":
        u = units[0]
        body = ['<body epub:type="frontmatter">', f'<section id="s-front" epub:type="titlepage" '
                f'aria-labelledby="{u.heading.id}">', *_blocks_html(u, hints)]
        body.append("</section>")
    elif doc == "back":
        u = units[0]
        body = ['<body epub:type="backmatter">', f'<section id="s-back" epub:type="bibliography" '
                f'aria-labelledby="{u.heading.id}">', *_blocks_html(u, hints), "</section>"]
    else:
        body = ['<body epub:type="bodymatter">', *_epub_section(units[0], hints, True)]
    return head + "\n".join(body) + "\n</body>\n</html>\n"


def _epub_smil(book: Book, doc: str) -> tuple[str, float]:
    units = [u for u in book.units if u.doc == doc]
    offsets, pos = {}, 0
    for u in units:
        offsets[u.id] = pos
        pos += u.length
    audio = f"../audio/{doc}.mp3"

    def seq(u: Unit, indent: str) -> list[str]:
        kind = {"front": "titlepage", "back": "bibliography"}.get(u.role, "chapter" if u.level == 1 else "")
        kind = f' epub:type="{kind}"' if kind else ""
        out = [f'{indent}<seq id="seq-{u.id}" epub:textref="../{doc}.xhtml#s-{u.id}"{kind}>']
        for c in u.clips:
            b, e = offsets[u.id] + c.begin, offsets[u.id] + c.end
            out.append(f'{indent}  <par id="par-{c.id}"><text src="../{doc}.xhtml#{c.id}"/>'
                       f'<audio src="{audio}" clipBegin="{_secs(b, book.rate)}s" clipEnd="{_secs(e, book.rate)}s"/>'
                       f"</par>")
        for child in u.children:
            out += seq(child, indent + "  ")
        return out + [f"{indent}</seq>"]

    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<smil xmlns="http://www.w3.org/ns/SMIL" xmlns:epub="http://www.idpf.org/2007/ops" version="3.0">',
             "  <body>", *seq(units[0], "    "), "  </body>", "</smil>"]
    return "\n".join(lines) + "\n", pos / book.rate


def _nav(book: Book) -> str:
    g = book.guide

    def entries(units: list[Unit]) -> str:
        items = []
        for u in units:
            sub = f"<ol>{entries(u.children)}</ol>" if u.children else ""
            items.append(f'<li><a href="{u.doc}.xhtml#s-{u.id}">{_x(u.title)}</a>{sub}</li>')
        return "".join(items)

    tops = [u for u in book.units if u.role != "body" or u.level == 1 and u.doc == f"sec-{u.id}"]
    first_body = next(u for u in book.units if u.role == "body")
    head = _XHTML_HEAD.format(lang=_x(g.language), title="Contents")
    return head + "\n".join([
        "<body>",
        '<nav epub:type="toc" id="toc" aria-labelledby="toc-title">',
        '<h1 id="toc-title">Contents</h1>',
        f"<ol>{entries(tops)}</ol>",
        "</nav>",
        '<nav epub:type="landmarks" id="landmarks" hidden="hidden">',
        "<h2>Landmarks</h2>",
        "<ol>",
        '<li><a epub:type="cover" href="cover.xhtml">Cover</a></li>',
        '<li><a epub:type="titlepage" href="front.xhtml">Title page</a></li>',
        '<li><a epub:type="toc" href="nav.xhtml#toc">Contents</a></li>',
        f'<li><a epub:type="bodymatter" href="{first_body.doc}.xhtml">Start of content</a></li>',
        '<li><a epub:type="bibliography" href="back.xhtml">Sources</a></li>',
        "</ol>",
        "</nav>",
        "</body>",
        "</html>",
    ]) + "\n"


def _cover_xhtml(book: Book) -> str:
    g = book.guide
    return _XHTML_HEAD.format(lang=_x(g.language), title=_x(g.title)) + (
        '<body epub:type="cover">\n<section class="cover" epub:type="cover">\n'
        f'<img src="images/cover.png" alt="{_x(g.title)}"/>\n</section>\n</body>\n</html>\n')


def _opf(book: Book, durations: dict[str, float], engine: str, voice: str | None) -> str:
    g = book.guide
    meta = [f'<dc:identifier id="pub-id">{_identifier(g)}</dc:identifier>',
            f"<dc:title>{_x(g.title)}</dc:title>",
            f"<dc:language>{_x(g.language)}</dc:language>",
            *[f"<dc:creator>{_x(c)}</dc:creator>" for c in _creators(g)],
            f"<dc:date>{g.last_reviewed.isoformat()}</dc:date>"]
    if g.description:
        meta.append(f"<dc:description>{_x(g.description)}</dc:description>")
    meta.append(f'<meta property="dcterms:modified">{g.last_reviewed.isoformat()}T00:00:00Z</meta>')
    for mode in ("textual", "auditory", "visual"):
        meta.append(f'<meta property="schema:accessMode">{mode}</meta>')
    for suff in ("textual", "auditory", "textual,auditory"):
        meta.append(f'<meta property="schema:accessModeSufficient">{suff}</meta>')
    for feat in ("synchronizedAudioText", "tableOfContents", "readingOrder", "structuralNavigation",
                 "alternativeText", "ttsMarkup"):
        meta.append(f'<meta property="schema:accessibilityFeature">{feat}</meta>')
    meta.append('<meta property="schema:accessibilityHazard">none</meta>')
    meta.append('<meta property="schema:accessibilitySummary">Every heading and sentence of the text is read aloud '
                "and highlighted as it is spoken (Media Overlays). The sections are headings in order, listed in "
                "the table of contents. Drug names carry pronunciation hints. The cover image has a text "
                "alternative; there are no other images, no sounds beyond the narration, no flashing.</meta>")
    total_ms = 0
    for doc, secs in durations.items():
        ms = int(round(secs * 1000))
        total_ms += ms
        meta.append(f'<meta property="media:duration" refines="#mo-{doc}">{render.clock(ms / 1000, hours=1)}</meta>')
    meta.append(f'<meta property="media:duration">{render.clock(total_ms / 1000, hours=1)}</meta>')
    meta.append(f'<meta property="media:narrator">{_x(_narrator(engine, voice))}</meta>')
    meta.append(f'<meta property="media:active-class">{ACTIVE_CLASS}</meta>')
    meta.append(f'<meta property="media:playback-active-class">{PLAYING_CLASS}</meta>')

    items = ['<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>',
             '<item id="cover" href="cover.xhtml" media-type="application/xhtml+xml"/>',
             '<item id="cover-image" href="images/cover.png" media-type="image/png" properties="cover-image"/>',
             '<item id="css" href="css/book.css" media-type="text/css"/>',
             '<item id="lexicon" href="lexicon.pls" media-type="application/pls+xml"/>']
    for doc in book.docs:
        items += [f'<item id="{doc}" href="{doc}.xhtml" media-type="application/xhtml+xml" media-overlay="mo-{doc}"/>',
                  f'<item id="mo-{doc}" href="smil/{doc}.smil" media-type="application/smil+xml"/>',
                  f'<item id="audio-{doc}" href="audio/{doc}.mp3" media-type="audio/mpeg"/>']
    spine = ['<itemref idref="cover"/>', '<itemref idref="front"/>', '<itemref idref="nav"/>',
             *[f'<itemref idref="{d}"/>' for d in book.docs if d != "front"]]
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="pub-id" '
        f'xml:lang="{_x(g.language)}">',
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">', *meta, "</metadata>",
        "<manifest>", *items, "</manifest>",
        "<spine>", *spine, "</spine>",
        "</package>"]) + "\n"


CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="EPUB/package.opf" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""


def write_epub(book: Book, dest: Path, work: Path, cache: Path, workers: int, engine: str, voice: str | None,
               cover: bytes) -> None:
    g = book.guide
    hints = _Hints(g)
    (work / "audio").mkdir(parents=True)
    jobs = []
    for doc in book.docs:
        units = [u for u in book.units if u.doc == doc]
        jobs.append((units, f"{g.title}: {units[0].title}", work / "audio" / f"{doc}.mp3"))
    _encode_all(book, jobs, cache, workers)
    files: dict[str, bytes] = {"EPUB/css/book.css": CSS.encode(), "EPUB/lexicon.pls": pls(g).encode(),
                               "EPUB/images/cover.png": cover, "EPUB/nav.xhtml": _nav(book).encode(),
                               "EPUB/cover.xhtml": _cover_xhtml(book).encode()}
    durations = {}
    for doc in book.docs:
        files[f"EPUB/{doc}.xhtml"] = _epub_doc(book, doc, hints).encode()
        smil, durations[doc] = _epub_smil(book, doc)
        files[f"EPUB/smil/{doc}.smil"] = smil.encode()
    files["EPUB/package.opf"] = _opf(book, durations, engine, voice).encode()
    stamp = (g.last_reviewed.year, g.last_reviewed.month, g.last_reviewed.day, 0, 0, 0)
    part = work / dest.name
    with zipfile.ZipFile(part, "w") as z:
        info = zipfile.ZipInfo("mimetype", stamp)
        z.writestr(info, "application/epub+zip", compress_type=zipfile.ZIP_STORED)  # first, uncompressed
        for name, data in [("META-INF/container.xml", CONTAINER.encode()), *sorted(files.items())]:
            z.writestr(zipfile.ZipInfo(name, stamp), data, compress_type=zipfile.ZIP_DEFLATED)
        for doc in book.docs:
            z.writestr(zipfile.ZipInfo(f"EPUB/audio/{doc}.mp3", stamp), (work / "audio" / f"{doc}.mp3").read_bytes(),
                       compress_type=zipfile.ZIP_STORED)
    os.chmod(part, 0o644)
    os.replace(part, dest)


# ---------------------------------------------------------------------- DAISY 2.02

_DAISY_DOCTYPE = ('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
                  '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">')
_SMIL_DOCTYPE = '<!DOCTYPE smil PUBLIC "-//W3C//DTD SMIL 1.0//EN" "http://www.w3.org/TR/REC-smil/SMIL10.dtd">'


def _daisy_names(book: Book) -> dict[str, str]:
    return {u.id: f"s{i:04d}" for i, u in enumerate(book.units, 1)}


def _ncc(book: Book, names: dict[str, str], files: int, engine: str, voice: str | None) -> str:
    g = book.guide
    total = book.duration(book.units)
    depth = max(u.level for u in book.units)
    meta = {
        "dc:title": g.title, "dc:creator": ", ".join(_creators(g)), "dc:date": g.last_reviewed.isoformat(),
        "dc:format": "Daisy 2.02", "dc:identifier": _identifier(g), "dc:language": g.language,
        "dc:publisher": ", ".join(_creators(g)), "ncc:charset": "utf-8", "ncc:generator": GENERATOR,
        "ncc:multimediaType": "audioFullText", "ncc:setInfo": "1 of 1", "ncc:tocItems": str(len(book.units)),
        "ncc:totalTime": render.clock(total, None), "ncc:depth": str(depth), "ncc:files": str(files),
        "ncc:footnotes": "0",
        "ncc:pageFront": "0", "ncc:pageNormal": "0", "ncc:pageSpecial": "0", "ncc:maxPageNormal": "0",
        "ncc:prodNotes": "0", "ncc:sidebars": "0", "ncc:narrator": _narrator(engine, voice),
        "ncc:sourceDate": g.last_reviewed.isoformat(), "ncc:producedDate": g.last_reviewed.isoformat(),
    }
    lines = ['<?xml version="1.0" encoding="utf-8"?>', _DAISY_DOCTYPE,
             f'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="{_x(g.language)}" lang="{_x(g.language)}">',
             "<head>", f"<title>{_x(g.title)}</title>",
             '<meta http-equiv="Content-type" content="text/html; charset=utf-8"/>',
             *[f'<meta name="{k}" content="{_x(v)}"/>' for k, v in meta.items()], "</head>", "<body>"]
    for n, u in enumerate(book.units, 1):  # links go to the heading's <text> in its par, as players expect
        cls = ' class="title"' if n == 1 else ""
        lines.append(f'<h{u.level} id="ncc-{n}"{cls}><a href="{names[u.id]}.smil#txt-{u.heading.id}">'
                     f"{_x(u.title)}</a></h{u.level}>")
    return "\n".join(lines + ["</body>", "</html>"]) + "\n"


def _daisy_content(book: Book) -> str:
    g = book.guide
    lines = ['<?xml version="1.0" encoding="utf-8"?>', _DAISY_DOCTYPE,
             f'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="{_x(g.language)}" lang="{_x(g.language)}">',
             "<head>", f"<title>{_x(g.title)}</title>",
             '<meta http-equiv="Content-type" content="text/html; charset=utf-8"/>',
             f'<meta name="dc:title" content="{_x(g.title)}"/>', f'<meta name="dc:identifier" content="{_identifier(g)}"/>',
             f'<meta name="dc:format" content="Daisy 2.02"/>', "</head>", "<body>"]
    plain = _Hints.__new__(_Hints)
    plain.pattern = None
    for u in book.units:
        lines += _blocks_html(u, plain)
    return "\n".join(lines + ["</body>", "</html>"]) + "\n"


def _daisy_smil(book: Book, u: Unit, name: str, elapsed: float) -> str:
    g = book.guide
    dur = u.length / book.rate
    head = ['<?xml version="1.0" encoding="utf-8"?>', _SMIL_DOCTYPE, "<smil>", "<head>",
            '<meta name="dc:format" content="Daisy 2.02"/>', f'<meta name="dc:title" content="{_x(g.title)}"/>',
            f'<meta name="dc:identifier" content="{_identifier(g)}"/>', f'<meta name="title" content="{_x(u.title)}"/>',
            f'<meta name="ncc:generator" content="{GENERATOR}"/>',
            f'<meta name="ncc:totalElapsedTime" content="{render.clock(elapsed, hours=1)}"/>',
            f'<meta name="ncc:timeInThisSmil" content="{render.clock(dur, hours=1)}"/>',
            '<layout><region id="txtView"/></layout>', "</head>", "<body>",
            f'<seq dur="{dur:.3f}s">']
    for c in u.clips:
        head.append(f'<par endsync="last" id="par-{c.id}"><text src="content.html#{c.id}" id="txt-{c.id}"/>'
                    f'<audio src="{name}.mp3" clip-begin="npt={_secs(c.begin, book.rate)}s" '
                    f'clip-end="npt={_secs(c.end, book.rate)}s" id="aud-{c.id}"/></par>')
    return "\n".join(head + ["</seq>", "</body>", "</smil>"]) + "\n"


def _master(book: Book, names: dict[str, str]) -> str:
    g = book.guide
    lines = ['<?xml version="1.0" encoding="utf-8"?>', _SMIL_DOCTYPE, "<smil>", "<head>",
             '<meta name="dc:format" content="Daisy 2.02"/>', f'<meta name="dc:title" content="{_x(g.title)}"/>',
             f'<meta name="dc:identifier" content="{_identifier(g)}"/>',
             f'<meta name="ncc:generator" content="{GENERATOR}"/>',
             f'<meta name="ncc:timeInThisSmil" content="{render.clock(book.duration(book.units), hours=1)}"/>',
             '<layout><region id="txtView"/></layout>', "</head>", "<body>"]
    for u in book.units:
        lines.append(f'<ref src="{names[u.id]}.smil" title="{_x(u.title)}" id="ms-{names[u.id]}"/>')
    return "\n".join(lines + ["</body>", "</smil>"]) + "\n"


def write_daisy(book: Book, folder: Path, cache: Path, workers: int, engine: str, voice: str | None) -> None:
    g = book.guide
    names = _daisy_names(book)
    _encode_all(book, [([u], f"{g.title}: {u.title}", folder / f"{names[u.id]}.mp3") for u in book.units],
                cache, workers)
    elapsed = 0.0
    for u in book.units:
        atomic_write(folder / f"{names[u.id]}.smil", _daisy_smil(book, u, names[u.id], elapsed).encode())
        elapsed += u.length / book.rate
    atomic_write(folder / "content.html", _daisy_content(book).encode())
    atomic_write(folder / "master.smil", _master(book, names).encode())
    files = 3 + 2 * len(book.units)  # ncc.html, content.html, master.smil, a SMIL and an MP3 per section
    atomic_write(folder / "ncc.html", _ncc(book, names, files, engine, voice).encode())


# ---------------------------------------------------------------------- the job: atomic output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(out: Path) -> None:
    """Remove the temporary folders and half-encoded MP3s of exports that were killed (their process is gone)."""
    for p in out.glob(".*.tmp-*"):
        m = re.search(r"\.tmp-(\d+)-", p.name)
        if m and p.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
    for p in (out / ".cache" / "mp3").glob(".*.part.mp3"):
        m = re.search(r"\.(\d+)\.part\.mp3$", p.name)
        if m and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)


def _exchange(new: Path, dest: Path) -> Path | None:
    """Put folder ``new`` at ``dest``; return where the old ``dest`` now is (to remove), if there was one."""
    if not dest.exists():
        os.rename(new, dest)
        return None
    if not dest.is_dir():
        raise ExportError(f"{dest} is in the way: it is a file, not a talking book folder")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None and renameat2(-100, os.fsencode(new), -100, os.fsencode(dest), 2) == 0:
        return new  # AT_FDCWD, RENAME_EXCHANGE: the two names swapped in one step
    old = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-old")
    os.rename(dest, old)
    os.rename(new, dest)
    return old


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".voiceguide-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ExportError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def book_path(guide: Guide, out: Path, fmt: str) -> Path:
    """Where ``export_book`` puts the book: ``OUT/<id>.epub`` or the folder ``OUT/<id>-daisy202``."""
    return out / (f"{guide.id}.epub" if fmt == "epub3" else f"{guide.id}-daisy202")


def export_book(guide: Guide, out: Path, fmt: str, *, engine: str = "espeak", voice: str | None = None,
                rate: int = 165, jobs: int | None = None, bitrate: int = BITRATE, progress=None):
    """Write the talking book in ``fmt`` (``epub3`` or ``daisy202``) into ``out``; returns the renderer's stats."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown talking book format {fmt!r}: choose {' or '.join(FORMATS)}")
    render.ffmpeg("to export talking books")
    _check_out(out)
    _clean_stale(out)
    workers = jobs or os.cpu_count() or 2
    cache = out / ".cache"
    from .render import check_voice

    renderer = render.Renderer(check_voice(engine, voice) if voice else get_engine(engine), voice, rate,
                               guide.lexicon, cache, workers, progress or render.progress())
    dest = book_path(guide, out, fmt)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-{os.getpid()}-", dir=out))
    try:
        book = plan(guide)
        book.bitrate, book.renderer = bitrate, renderer
        time_book(book, renderer.clips([c.text for u in book.units for c in u.clips]))
        if fmt == "epub3":
            from .render import cover_png

            write_epub(book, dest, work, cache / "mp3", workers, engine, voice, cover_png(guide.title, cache))
        else:
            folder = work / dest.name
            folder.mkdir()
            write_daisy(book, folder, cache / "mp3", workers, engine, voice)
            old = _exchange(folder, dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ExportError(f"the disk is full while writing to {out}") from None
        raise ExportError(f"{out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return renderer.stats


NAMES = {"epub3": "EPUB 3 talking book", "daisy202": "DAISY 2.02 talking book"}


def cmd_export_book(args) -> int:
    """``voiceguide export --format epub3|daisy202``: called from the export command."""
    if not 80 <= args.rate <= 450:
        raise ExportError(f"--rate: {args.rate} is outside 80 to 450 words per minute")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise ExportError(f"--jobs: {args.jobs} must be 1 or more")
    for opt in ("base_url", "per_section", "author", "owner_name", "owner_email", "copyright", "link"):
        if getattr(args, opt, None):
            raise ExportError(f"--{opt.replace('_', '-')} is for podcasts, not talking books")
    bitrate = getattr(args, "bitrate", None) or BITRATE
    if not 32 <= bitrate <= 320:
        raise ExportError(f"--bitrate: {bitrate} is outside 32 to 320 kbps")
    guide = load_guide(args.content)
    out = Path(args.out)
    stats = export_book(guide, out, args.format, engine=args.engine, voice=args.voice, rate=args.rate,
                        jobs=args.jobs, bitrate=bitrate)
    print(f"{NAMES[args.format]} written to {book_path(guide, out, args.format)}: rendered {stats.rendered} "
          f"sentences, {stats.cached} from the cache.")
    return 0
