"""Content packs: load, validate and navigate a guide.

A pack is a folder::

    guide.yaml            metadata, sources, order of top-level sections
    sections/<id>.yaml    one file per top-level section (children nested inside)
    glossary.yaml         optional: plain definitions
    lexicon.yaml          optional: pronunciations, shared by TTS and ASR

YAML is read with ``yaml.safe_load`` only (a ``!!python/...`` tag is an error,
never executed). Line numbers come from ``yaml.compose`` on the same text, so
every problem is reported as ``file:line: field: message``.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from .errors import ContentError

__all__ = [
    "Source",
    "Section",
    "GlossaryEntry",
    "LexiconEntry",
    "PodcastInfo",
    "Guide",
    "load_guide",
    "validate",
    "default_content_path",
    "normalize",
    "MAX_SUMMARY_WORDS",
    "ARPABET",
    "Replies",
    "REPLY_KINDS",
]

MAX_SUMMARY_WORDS = 60
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)


def normalize(text: str) -> str:
    """Lower-case, punctuation to spaces, collapse white space: how names are matched."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[^a-z0-9']+", " ", text)
    text = text.replace("'", "")
    return " ".join(text.split())


# ----------------------------------------------------------------------------- readability

MAX_SUMMARY_GRADE = 8.0
"""Highest Flesch-Kincaid grade a summary may have (see :func:`reading_grade`)."""

#: vowel pairs said as two syllables: me-di-a, tri-al (not spe-cial, A-sian), ra-di-o (not na-tion),
#: gra-du-al, me-di-um, i-de-a, al-lo-ge-ne-ic
_TWO_VOWELS = re.compile(r"(?<![ctgs])i(?=a)|(?<=[ctgs])i(?=a(?![ln]))|(?<![tscxg])i(?=o)|u(?=a)|i(?=u)"
                         r"|e(?=a$)|e(?=ic$)")


def count_syllables(word: str) -> int:
    """Syllables in one English word, by rule (no pronouncing dictionary is installed).

    The method: lower-case letters only; words of three letters or fewer are one
    syllable; a silent final ``e`` is dropped (not ``-le`` after a consonant,
    not ``-ee``), as are the silent ``e`` of ``-es`` (not after s, x, z, ch, sh,
    c, g) and of ``-ed`` (not after t, d); a ``y`` that starts the word is a
    consonant; then each run of vowels (a e i o u y) is one syllable, plus one
    for vowel pairs said as two (``ia`` as in leukemia and trial but not
    special, ``io`` as in radio but not nation, ``ua``, ``iu``, a final ``ea``
    as in idea, a final ``eic`` as in allogeneic). A number counts one syllable
    per digit. Never less than one. On 110 common and medical words counted by
    hand it is right on 107 (video, sometimes and create are one off).
    """
    w = word.lower()
    digits = sum(ch.isdigit() for ch in w)
    w = re.sub(r"[^a-z]", "", w)
    if not w:
        return max(1, digits) if digits else 0
    if len(w) <= 3:
        return 1 + digits
    if w.endswith("es") and not re.search(r"(?:[sxzcg]|ch|sh)es$", w):
        w = w[:-2]
    elif w.endswith("ed") and not re.search(r"[td]ed$", w):
        w = w[:-2]
    elif w.endswith("e") and not w.endswith("ee") and not re.search(r"[^aeiouy]le$", w):
        w = w[:-1]
    if w.startswith("y"):
        w = w[1:]
    n = len(re.findall(r"[aeiouy]+", w)) + len(_TWO_VOWELS.findall(w))
    return max(1, n) + digits


def reading_grade(text: str, plain_words: set[str] | frozenset[str] = frozenset()) -> float:
    """Flesch-Kincaid grade level of ``text``: 0.39 x words per sentence + 11.8 x syllables per word - 15.59.

    Sentences end at ``.``, ``!`` or ``?`` (at least one sentence). Words are
    runs of letters and digits (a hyphen or apostrophe inside keeps a word
    whole: ``G-CSF``, ``Ara-C``). Syllables come from :func:`count_syllables`.
    Words in ``plain_words`` (already normalised: the guide passes every
    lexicon word, i.e. drug, brand and gene names and spelled abbreviations,
    which no plainer word can replace) count as one word of two syllables.
    """
    sentences = max(1, len(re.findall(r"[.!?]+(?:\s|$)", text.strip())))
    words = re.findall(r"[A-Za-z0-9]+(?:['\u2019-][A-Za-z0-9]+)*", text)
    if not words:
        return 0.0
    syllables = sum(2 if normalize(w) in plain_words else count_syllables(w) for w in words)
    return 0.39 * len(words) / sentences + 11.8 * syllables / len(words) - 15.59


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Source:
    id: str
    """Stable id sections cite."""
    title: str
    publisher: str = ""
    author: str = ""
    url: str = ""
    date: str = ""
    """When the source was published, updated or read, as written in guide.yaml (e.g. "2026-06-03")."""
    note: str = ""
    """How the source was used or read (e.g. "read in a copy that names NCI as its source")."""

    @property
    def spoken(self) -> str:
        """How to say the source aloud: publisher, then title."""
        return f"{self.publisher}, {self.title}" if self.publisher else self.title


@dataclass(frozen=True)
class Review:
    """What checking the guide has had: when, by whom (a role), how, and against which sources."""

    date: _dt.date
    by: str
    """Who checked it, as a role ("the VoiceGuide engineering team, who are not clinicians")."""
    kind: str
    """What was done, as it reads after "It was ...": "checked line by line against ..."."""
    sources: tuple[str, ...] = ()
    """Ids of the sources it was checked against."""
    clinical: bool = False
    """True only when a clinician has reviewed the guide."""


@dataclass(frozen=True)
class Section:
    id: str
    """Stable, unique across the guide."""
    title: str
    summary: str
    """Short, spoken in menus (under 60 words)."""
    body: tuple[str, ...]
    """Short paragraphs, read one at a time."""
    aliases: tuple[str, ...] = ()
    """Other things a listener may say to get here."""
    terms: tuple[str, ...] = ()
    """Glossary terms this section uses."""
    sources: tuple[str, ...] = ()
    """Source ids the facts come from."""
    children: tuple["Section", ...] = ()
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class GlossaryEntry:
    term: str
    definition: str
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class LexiconEntry:
    word: str
    """The word as written (matched case-insensitively, whole words only)."""
    say: str
    """A respelling any TTS engine reads correctly."""
    phones: str = ""
    """CMU ARPAbet phones (no stress digits) for the recogniser's dictionary."""
    espeak: str = ""
    """Optional espeak-ng phoneme string, used by espeak backends instead of ``say``."""


#: the replies a pack's replies.yaml must give (voiceguide/ask.py says them)
REPLY_KINDS = ("advice", "support", "unknown")


@dataclass(frozen=True)
class Replies:
    """What the guide says to questions its content does not answer (``replies.yaml``)."""

    advice: str
    """Questions about one's own treatment, dose, stopping a drug, prognosis: sends them to the care team."""
    support: str
    """Fear and distress: a kind reply and where to find support."""
    unknown: str
    """The guide does not cover it; ``{topics}`` is filled in with the nearest sections' titles."""
    synonyms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(the pack's word, (words listeners use instead, ...)), normalised."""


@dataclass(frozen=True)
class PodcastInfo:
    """The optional ``podcast:`` block of guide.yaml: what a published feed needs (voiceguide/podcast.py)."""

    base_url: str = ""
    """Where the exported files will be served (http or https); without it no publishable feed is written."""
    author: str = ""
    owner_name: str = ""
    owner_email: str = ""
    """Directories mail this address to verify ownership: the producer's own, never a patient's."""
    copyright: str = ""
    link: str = ""
    """The show's web page (default: base_url)."""
    guid: str = ""
    """podcast:guid (default: UUIDv5 of the feed URL, as Podcasting 2.0 says)."""
    category: str = "Health & Fitness"
    subcategory: str = "Medicine"
    explicit: bool = False


@dataclass(frozen=True)
class Guide:
    id: str
    title: str
    language: str
    last_reviewed: _dt.date
    disclaimer: str
    sources: tuple[Source, ...]
    sections: tuple[Section, ...]
    """Top-level sections, in order."""
    glossary: tuple[GlossaryEntry, ...] = ()
    lexicon: tuple[LexiconEntry, ...] = ()
    replies: Replies | None = None
    """From the optional replies.yaml (None when the pack has none)."""
    authors: tuple[str, ...] = ()
    description: str = ""
    adapted_from: str = ""
    review: Review | None = None
    drugs: tuple[str, ...] = ()
    """Drug names (generic and brand) the guide may name; each named one needs a lexicon and a glossary entry."""
    path: str = ""
    podcast: PodcastInfo | None = None
    """From the optional ``podcast:`` block of guide.yaml."""
    _index: dict[str, Section] = field(default_factory=dict, repr=False, compare=False)
    _parents: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for sec, parent in _walk_with_parent(self.sections, None):
            self._index[sec.id] = sec
            self._parents[sec.id] = parent

    # navigation -------------------------------------------------------------
    def walk(self) -> Iterator[Section]:
        """Every section, depth first, in reading order."""
        return (s for s, _ in _walk_with_parent(self.sections, None))

    def section(self, section_id: str) -> Section:
        return self._index[section_id]

    def __contains__(self, section_id: object) -> bool:
        return section_id in self._index

    def parent(self, section_id: str) -> Section | None:
        pid = self._parents.get(section_id)
        return self._index[pid] if pid else None

    def siblings(self, section_id: str) -> tuple[Section, ...]:
        parent = self.parent(section_id)
        return parent.children if parent else self.sections

    def path_to(self, section_id: str) -> list[Section]:
        """From the top-level section down to ``section_id``."""
        out: list[Section] = []
        sid: str | None = section_id
        while sid:
            out.append(self._index[sid])
            sid = self._parents.get(sid)
        return out[::-1]

    def term(self, name: str) -> GlossaryEntry | None:
        key = normalize(name)
        for entry in self.glossary:
            if key == normalize(entry.term) or key in (normalize(a) for a in entry.aliases):
                return entry
        return None

    def source(self, source_id: str) -> Source:
        return next(s for s in self.sources if s.id == source_id)

    def sources_for(self, section_id: str | None = None) -> list[Source]:
        """The sources of one section, in the order it lists them; with no section, every source of the guide."""
        if section_id is None:
            return list(self.sources)
        return [self.source(sid) for sid in self.section(section_id).sources]

    def sources_sentence(self, section_id: str | None = None) -> str:
        """A spoken sentence naming the sources of a section, or of the whole guide."""
        srcs = self.sources_for(section_id)
        names = "; ".join(s.spoken for s in srcs)
        if section_id is None:
            return f"This guide draws on {len(srcs)} sources: {names}."
        return f"{self.section(section_id).title} is based on: {names}."

    def reviewed_line(self) -> str:
        """The short spoken review date, saying what kind of check it was: never a clinical review that did not happen."""
        if self.review is not None and not self.review.clinical:
            return f"Last checked against its sources on {_spoken_date(self.review.date)}; not reviewed by a clinician."
        return f"Last reviewed {_spoken_date(self.last_reviewed)}."

    def review_sentence(self) -> str:
        """A spoken sentence saying what checking the guide has had, by whom, when, and what it was not."""
        r = self.review
        if r is None:
            return (f"This guide was last reviewed on {_spoken_date(self.last_reviewed)}. "
                    "No record says who reviewed it. It has not been reviewed by a clinician.")
        against = len(r.sources)
        out = f"This guide was last checked on {_spoken_date(r.date)}, by {r.by}. It was {r.kind}"
        out += f", {against} sources in all." if against else "."
        if not r.clinical:
            out += " It has not been reviewed by a clinician."
        return out

    def names(self) -> dict[str, tuple[str, str]]:
        """Every speakable name -> (``"section"``, id) or (``"term"``, term).

        Built from ids, titles and aliases of sections, then glossary terms and
        aliases. Validation guarantees a name leads to one section and to one
        term; where a section and a term share a name, the section wins here
        (use :meth:`term` for definitions).
        """
        out: dict[str, tuple[str, str]] = {}
        for sec in self.walk():
            for name in (sec.id.replace("-", " "), sec.title, *sec.aliases):
                out.setdefault(normalize(name), ("section", sec.id))
        for entry in self.glossary:
            for name in (entry.term, *entry.aliases):
                out.setdefault(normalize(name), ("term", entry.term))
        out.pop("", None)
        return out


def _spoken_date(d: _dt.date) -> str:
    return f"{d.strftime('%B')} {d.day}, {d.year}"


def _walk_with_parent(sections, parent):
    for sec in sections:
        yield sec, parent
        yield from _walk_with_parent(sec.children, sec.id)


def default_content_path() -> Path:
    """The pack to use when none is named: $VOICEGUIDE_CONTENT, the repo's, or the bundled one."""
    env = os.environ.get("VOICEGUIDE_CONTENT")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "content" / "aml", here / "_content" / "aml"):
        if (candidate / "guide.yaml").is_file():
            return candidate
    return here.parent / "content" / "aml"


# ----------------------------------------------------------------------------- loading


class _File:
    """One parsed YAML file: its data plus a map from key path to line number."""

    def __init__(self, path: Path, display: str, errors: list[ContentError]):
        self.path = path
        self.display = display
        self.data: Any = None
        self.lines: dict[tuple, int] = {}
        self.ok = False
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            errors.append(ContentError(display, None, "", "file not found"))
            return
        except IsADirectoryError:
            errors.append(ContentError(display, None, "", "is a folder, expected a YAML file"))
            return
        except UnicodeDecodeError as exc:
            errors.append(ContentError(display, None, "", f"not UTF-8 text ({exc.reason})"))
            return
        except OSError as exc:
            errors.append(ContentError(display, None, "", f"cannot read: {exc.strerror or exc}"))
            return
        try:
            self.data = yaml.safe_load(text)
        except yaml.constructor.ConstructorError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            tag = ""
            if exc.problem and "tag" in exc.problem:
                m = re.search(r"tag '([^']+)'", exc.problem)
                tag = m.group(1).replace("tag:yaml.org,2002:", "!!") if m else ""
            errors.append(
                ContentError(display, line, "yaml", f"tag {tag or '(unknown)'} is not allowed: content is data only")
            )
            return
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            errors.append(ContentError(display, line, "yaml", f"syntax error: {problem}"))
            return
        if self.data is None:
            errors.append(ContentError(display, 1, "", "file is empty"))
            return
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        self._map_lines(node, ())
        self.ok = True

    def _map_lines(self, node, prefix: tuple) -> None:
        self.lines.setdefault(prefix, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                kp = prefix + (key.value,)
                self.lines[kp] = key.start_mark.line + 1
                self._map_lines(value, kp)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._map_lines(item, prefix + (i,))

    def line(self, keypath: tuple) -> int | None:
        while keypath and keypath not in self.lines:
            keypath = keypath[:-1]
        return self.lines.get(keypath)


def _fieldname(keypath: tuple) -> str:
    out = ""
    for k in keypath:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


class _Checker:
    """Collects every problem in a pack, then builds the Guide if there were none."""

    def __init__(self, root: Path):
        self.root = root
        self.errors: list[ContentError] = []

    def err(self, f: _File, keypath: tuple, message: str, field: str | None = None) -> None:
        self.errors.append(ContentError(f.display, f.line(keypath), field or _fieldname(keypath), message))

    def open(self, rel: str) -> _File:
        return _File(self.root / rel, os.path.join(self.display_root, rel), self.errors)

    @property
    def display_root(self) -> str:
        return str(self.root)

    # shape helpers ----------------------------------------------------------
    def mapping(self, f, kp, value, required: set[str], optional: set[str]) -> bool:
        if not isinstance(value, dict):
            self.err(f, kp, f"expected a mapping of fields, got {_typename(value)}", _fieldname(kp) or "(top)")
            return False
        for key in value:
            if key not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                self.err(f, kp + (key,), f"unknown field (allowed: {allowed})")
        for key in sorted(required):
            if key not in value:
                self.err(f, kp, f"required field '{key}' is missing", _fieldname(kp + (key,)))
        return True

    def text(self, f, kp, value, *, required=True) -> str:
        if value is None and not required:
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            self.err(f, kp, f"expected non-empty text, got {_typename(value)}")
            return ""
        return " ".join(value.split())

    def texts(self, f, kp, value, *, required=False) -> tuple[str, ...]:
        if value is None:
            if required:
                self.err(f, kp, "expected a list of text")
            return ()
        if not isinstance(value, list):
            self.err(f, kp, f"expected a list, got {_typename(value)}")
            return ()
        if required and not value:
            self.err(f, kp, "list is empty")
        return tuple(self.text(f, kp + (i,), v) for i, v in enumerate(value))

    # the pack --------------------------------------------------------------
    def run(self) -> "Guide | None":
        if not self.root.exists():
            self.errors.append(ContentError(str(self.root), None, "", "content pack not found"))
            return None
        if self.root.is_file():
            self.errors.append(ContentError(str(self.root), None, "", "expected a content pack folder containing guide.yaml"))
            return None
        g = self.open("guide.yaml")
        if not g.ok:
            return None
        meta = g.data
        if not self.mapping(
            g, (), meta,
            {"id", "title", "language", "last_reviewed", "disclaimer", "sources", "sections"},
            {"authors", "description", "adapted_from", "podcast", "review", "drugs"},
        ):
            return None
        gid = self.text(g, ("id",), meta.get("id"))
        if gid and not ID_RE.match(gid):
            self.err(g, ("id",), "ids use lowercase letters, digits and hyphens")
        title = self.text(g, ("title",), meta.get("title"))
        language = self.text(g, ("language",), meta.get("language"))
        if language and not re.match(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", language):
            self.err(g, ("language",), "expected an ISO 639 code such as 'en' or 'en-US'")
        reviewed = meta.get("last_reviewed")
        if isinstance(reviewed, str):
            try:
                reviewed = _dt.date.fromisoformat(reviewed)
            except ValueError:
                reviewed = None
        if not isinstance(reviewed, _dt.date):
            if "last_reviewed" in meta:
                self.err(g, ("last_reviewed",), "expected a date as YYYY-MM-DD")
            reviewed = _dt.date(1970, 1, 1)
        disclaimer = self.text(g, ("disclaimer",), meta.get("disclaimer"))
        authors = self.texts(g, ("authors",), meta.get("authors"))
        description = self.text(g, ("description",), meta.get("description"), required=False)
        podcast = self.podcast(g, meta["podcast"]) if "podcast" in meta else None

        sources: list[Source] = []
        raw_sources = meta.get("sources")
        if "sources" in meta and (not isinstance(raw_sources, list) or not raw_sources):
            self.err(g, ("sources",), "expected a non-empty list of sources")
            raw_sources = []
        for i, s in enumerate(raw_sources or []):
            kp = ("sources", i)
            if not self.mapping(g, kp, s, {"id", "title"}, {"publisher", "author", "url", "date", "note"}):
                continue
            sid = self.text(g, kp + ("id",), s.get("id"))
            if sid in {x.id for x in sources}:
                self.err(g, kp + ("id",), f"duplicate source id '{sid}'")
            sources.append(Source(
                sid, self.text(g, kp + ("title",), s.get("title")),
                self.text(g, kp + ("publisher",), s.get("publisher"), required=False),
                self.text(g, kp + ("author",), s.get("author"), required=False),
                self.text(g, kp + ("url",), s.get("url"), required=False),
                self.text(g, kp + ("date",), s.get("date"), required=False),
                self.text(g, kp + ("note",), s.get("note"), required=False),
            ))
        self.source_ids = {s.id for s in sources}
        adapted = self.text(g, ("adapted_from",), meta.get("adapted_from"), required=False)
        if adapted and adapted not in self.source_ids:
            self.err(g, ("adapted_from",), f"unknown source '{adapted}'")
        review = self.review(g, meta)
        drugs = self.texts(g, ("drugs",), meta.get("drugs"))

        self.seen_ids: dict[str, str] = {}
        self.term_refs: list[tuple[_File, tuple, str]] = []
        self.claims: list[tuple[str, str, _File, tuple]] = []
        self.prose: list[tuple[_File, tuple, str]] = []
        sections: list[Section] = []
        order = meta.get("sections")
        if "sections" in meta and (not isinstance(order, list) or not order):
            self.err(g, ("sections",), "expected a non-empty list of section ids")
            order = []
        for i, sid in enumerate(order or []):
            if not isinstance(sid, str) or not ID_RE.match(sid):
                self.err(g, ("sections", i), f"expected a section id, got {sid!r}")
                continue
            sf = self.open(f"sections/{sid}.yaml")
            if not sf.ok:
                continue
            sec = self.section(sf, (), sf.data)
            if sec is None:
                continue
            if sec.id != sid:
                self.err(sf, ("id",), f"id '{sec.id}' does not match its file name and guide.yaml entry '{sid}'")
            sections.append(sec)

        glossary = self.glossary()
        replies = self.replies()
        lexicon = self.lexicon()
        self.check_names()
        self.check_terms(glossary)
        self.check_readability(lexicon)
        self.check_drugs(g, drugs, glossary, lexicon)
        guide = None
        if not self.errors:
            guide = Guide(
                id=gid, title=title, language=language, last_reviewed=reviewed, disclaimer=disclaimer,
                sources=tuple(sources), sections=tuple(sections), glossary=glossary, lexicon=lexicon,
                authors=authors, description=description, adapted_from=adapted, review=review, drugs=drugs,
                path=str(self.root),
                replies=replies, podcast=podcast,
            )
            self.check_lexicon_used(guide)
        return None if self.errors else guide

    def podcast(self, g: _File, data: Any) -> "PodcastInfo | None":
        kp = ("podcast",)
        fields = {"base_url", "author", "owner", "copyright", "link", "guid", "category", "subcategory", "explicit"}
        if not self.mapping(g, kp, data, set(), fields):
            return None
        out: dict[str, Any] = {}
        for name in ("base_url", "link"):
            if name in data:
                url = self.text(g, kp + (name,), data[name])
                if url and not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+(/\S*)?$", url):
                    self.err(g, kp + (name,), f"expected an http:// or https:// address, got '{url}'")
                out[name] = url
        for name in ("author", "copyright", "category", "subcategory"):
            if name in data:
                out[name] = self.text(g, kp + (name,), data[name])
        if "guid" in data:
            guid = self.text(g, kp + ("guid",), data["guid"])
            if guid and not re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", guid):
                self.err(g, kp + ("guid",), "expected a UUID such as ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
            out["guid"] = guid
        if "explicit" in data:
            if not isinstance(data["explicit"], bool):
                self.err(g, kp + ("explicit",), f"expected true or false, got {_typename(data['explicit'])}")
            else:
                out["explicit"] = data["explicit"]
        owner = data.get("owner")
        if "owner" in data and self.mapping(g, kp + ("owner",), owner, {"name", "email"}, set()):
            out["owner_name"] = self.text(g, kp + ("owner", "name"), owner.get("name"))
            email = self.text(g, kp + ("owner", "email"), owner.get("email"))
            if email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
                self.err(g, kp + ("owner", "email"), f"expected an e-mail address, got '{email}'")
            out["owner_email"] = email
        return PodcastInfo(**out)

    def section(self, f: _File, kp: tuple, data: Any) -> Section | None:
        if not self.mapping(f, kp, data, {"id", "title", "summary", "body", "sources"},
                            {"aliases", "terms", "children"}):
            return None
        sid = self.text(f, kp + ("id",), data.get("id"))
        if sid and not ID_RE.match(sid):
            self.err(f, kp + ("id",), f"'{sid}' is not a valid id (lowercase letters, digits and hyphens)")
        if sid in self.seen_ids:
            self.err(f, kp + ("id",), f"duplicate id '{sid}' (first used at {self.seen_ids[sid]})")
        elif sid:
            self.seen_ids[sid] = f"{f.display}:{f.line(kp + ('id',))}"
        target = f"section '{sid}'"
        self.claims.append((sid.replace("-", " "), target, f, kp + ("id",)))
        title = self.text(f, kp + ("title",), data.get("title"))
        self.claims.append((title, target, f, kp + ("title",)))
        aliases = self.texts(f, kp + ("aliases",), data.get("aliases"))
        self.claims += [(a, target, f, kp + ("aliases", i)) for i, a in enumerate(aliases)]
        summary = self.text(f, kp + ("summary",), data.get("summary"))
        self.prose.append((f, kp + ("title",), title))
        self.prose.append((f, kp + ("summary",), summary))
        words = len(summary.split())
        if words > MAX_SUMMARY_WORDS:
            self.err(f, kp + ("summary",), f"summary has {words} words; keep it under {MAX_SUMMARY_WORDS} (it is spoken in menus)")
        body = self.texts(f, kp + ("body",), data.get("body"), required="body" in data)
        self.prose += [(f, kp + ("body", i), b) for i, b in enumerate(body)]
        srcs = self.texts(f, kp + ("sources",), data.get("sources"), required="sources" in data)
        for i, s in enumerate(srcs):
            if s and s not in self.source_ids:
                self.err(f, kp + ("sources", i), f"unknown source '{s}' (not listed in guide.yaml)")
        terms = self.texts(f, kp + ("terms",), data.get("terms"))
        for i, t in enumerate(terms):
            self.term_refs.append((f, kp + ("terms", i), t))
        children: list[Section] = []
        raw_children = data.get("children")
        if raw_children is not None and not isinstance(raw_children, list):
            self.err(f, kp + ("children",), f"expected a list of sections, got {_typename(raw_children)}")
            raw_children = []
        for i, c in enumerate(raw_children or []):
            child = self.section(f, kp + ("children", i), c)
            if child is not None:
                children.append(child)
        return Section(
            id=sid, title=title, summary=summary, body=body, aliases=aliases, terms=terms, sources=srcs,
            children=tuple(children), file=f.display, line=f.line(kp) or 0,
        )

    def glossary(self) -> tuple[GlossaryEntry, ...]:
        if not (self.root / "glossary.yaml").exists():
            return ()
        f = self.open("glossary.yaml")
        if not f.ok or not self.mapping(f, (), f.data, {"terms"}, set()):
            return ()
        raw = f.data.get("terms")
        if not isinstance(raw, list):
            self.err(f, ("terms",), "expected a list of terms")
            return ()
        out: list[GlossaryEntry] = []
        seen: set[str] = set()
        for i, t in enumerate(raw):
            kp = ("terms", i)
            if not self.mapping(f, kp, t, {"term", "definition"}, {"aliases", "sources"}):
                continue
            term = self.text(f, kp + ("term",), t.get("term"))
            if normalize(term) in seen:
                self.err(f, kp + ("term",), f"duplicate glossary term '{term}'")
            seen.add(normalize(term))
            srcs = self.texts(f, kp + ("sources",), t.get("sources"))
            for j, s in enumerate(srcs):
                if s and s not in self.source_ids:
                    self.err(f, kp + ("sources", j), f"unknown source '{s}' (not listed in guide.yaml)")
            aliases = self.texts(f, kp + ("aliases",), t.get("aliases"))
            target = f"glossary term '{term}'"
            self.claims.append((term, target, f, kp + ("term",)))
            self.claims += [(a, target, f, kp + ("aliases", j)) for j, a in enumerate(aliases)]
            out.append(GlossaryEntry(term, self.text(f, kp + ("definition",), t.get("definition")), aliases, srcs))
        return tuple(out)

    def replies(self) -> Replies | None:
        """replies.yaml: every kind in :data:`REPLY_KINDS`, non-empty plain spoken text; synonyms."""
        if not (self.root / "replies.yaml").exists():
            return None
        f = self.open("replies.yaml")
        if not f.ok or not self.mapping(f, (), f.data, {"replies"}, {"synonyms"}):
            return None
        raw = f.data.get("replies")
        if not self.mapping(f, ("replies",), raw, set(REPLY_KINDS), set()):
            return None
        texts = {}
        for kind in REPLY_KINDS:
            kp = ("replies", kind)
            text = texts[kind] = self.text(f, kp, raw.get(kind)) if kind in raw else ""
            plain = text.replace("{topics}", "", 1) if kind == "unknown" else text
            bad = sorted(set(re.findall(r"[<>{}\[\]*_#|`~^\\]", plain)))
            if bad:
                self.err(f, kp, f"not plain spoken text (has {' '.join(bad)}); write it as it is said")
            elif re.search(r"https?:|www\.", plain):
                self.err(f, kp, "not plain spoken text (a web address); say where to find it in words")
            if kind == "unknown" and text and "{topics}" not in text:
                self.err(f, kp, "must contain {topics}, where the nearest topics are named")
            if len(text.split()) > 80:
                self.err(f, kp, f"has {len(text.split())} words; keep a reply under 80 (it is spoken)")
        synonyms: list[tuple[str, tuple[str, ...]]] = []
        raw_syn = f.data.get("synonyms")
        if raw_syn is not None and not isinstance(raw_syn, dict):
            self.err(f, ("synonyms",), f"expected a mapping of a guide word to the words listeners use, got {_typename(raw_syn)}")
            raw_syn = {}
        for word, said in (raw_syn or {}).items():
            kp = ("synonyms", word)
            if not normalize(str(word)):
                self.err(f, kp, "expected a word or phrase")
                continue
            said = self.texts(f, kp, said, required=True)
            synonyms.append((normalize(str(word)), tuple(normalize(s) for s in said if normalize(s))))
        if any(not texts[k] for k in REPLY_KINDS):
            return None
        return Replies(texts["advice"], texts["support"], texts["unknown"], tuple(synonyms))

    def lexicon(self) -> tuple[LexiconEntry, ...]:
        if not (self.root / "lexicon.yaml").exists():
            self.lexicon_file = None
            return ()
        f = self.lexicon_file = self.open("lexicon.yaml")
        if not f.ok or not self.mapping(f, (), f.data, {"entries"}, set()):
            return ()
        raw = f.data.get("entries")
        if not isinstance(raw, list):
            self.err(f, ("entries",), "expected a list of entries")
            return ()
        out: list[LexiconEntry] = []
        seen: set[str] = set()
        for i, e in enumerate(raw):
            kp = ("entries", i)
            if not self.mapping(f, kp, e, {"word", "say"}, {"phones", "espeak"}):
                continue
            word = self.text(f, kp + ("word",), e.get("word"))
            if word.lower() in seen:
                self.err(f, kp + ("word",), f"duplicate lexicon entry '{word}'")
            seen.add(word.lower())
            phones = self.text(f, kp + ("phones",), e.get("phones"), required=False).upper()
            bad = [p for p in phones.split() if p not in ARPABET]
            if bad:
                self.err(f, kp + ("phones",), f"unknown ARPAbet phone(s) {', '.join(bad)} (no stress digits)")
            out.append(LexiconEntry(word, self.text(f, kp + ("say",), e.get("say")), phones,
                                    self.text(f, kp + ("espeak",), e.get("espeak"), required=False)))
        return tuple(out)

    def review(self, g: _File, meta: dict) -> Review | None:
        """guide.yaml ``review``: date, by (a role), kind (what was done), sources checked against, clinical."""
        if "review" not in meta:
            return None
        kp = ("review",)
        r = meta.get("review")
        if not self.mapping(g, kp, r, {"date", "by", "kind"}, {"sources", "clinical"}):
            return None
        date = r.get("date")
        if isinstance(date, str):
            try:
                date = _dt.date.fromisoformat(date)
            except ValueError:
                date = None
        if not isinstance(date, _dt.date):
            if "date" in r:
                self.err(g, kp + ("date",), "expected a date as YYYY-MM-DD")
            date = _dt.date(1970, 1, 1)
        srcs = self.texts(g, kp + ("sources",), r.get("sources"))
        for i, sid in enumerate(srcs):
            if sid and sid not in self.source_ids:
                self.err(g, kp + ("sources", i), f"unknown source '{sid}' (not listed in guide.yaml sources)")
        clinical = r.get("clinical", False)
        if not isinstance(clinical, bool):
            self.err(g, kp + ("clinical",), f"expected true or false, got {_typename(clinical)}")
            clinical = False
        return Review(date, self.text(g, kp + ("by",), r.get("by")), self.text(g, kp + ("kind",), r.get("kind")),
                      srcs, clinical)

    def check_readability(self, lexicon: tuple[LexiconEntry, ...]) -> None:
        """Every summary reads at Flesch-Kincaid grade MAX_SUMMARY_GRADE or below (method: :func:`reading_grade`)."""
        plain = _plain_words(lexicon)
        for f, kp, text in self.prose:
            if kp[-1] != "summary" or not text:
                continue
            grade = reading_grade(text, plain)
            if grade > MAX_SUMMARY_GRADE:
                self.err(f, kp, f"reading grade {grade:.1f} is above {MAX_SUMMARY_GRADE:g} (Flesch-Kincaid, "
                                "syllables by rule, lexicon words as two syllables): use shorter sentences "
                                "and plainer words")

    def check_drugs(self, g: _File, drugs: tuple[str, ...], glossary: tuple[GlossaryEntry, ...],
                    lexicon: tuple[LexiconEntry, ...]) -> None:
        """Each drug in guide.yaml ``drugs`` that a section names has a lexicon entry and a glossary entry."""
        said = {normalize(e.word) for e in lexicon}
        defined = {normalize(n) for e in glossary for n in (e.term, *e.aliases)}
        glossary_text = " " + normalize(" ".join(f"{e.term} {e.definition}" for e in glossary)) + " "
        for i, drug in enumerate(drugs):
            key = normalize(drug)
            if not key:
                continue
            first = next(((f, kp) for f, kp, text in self.prose if f" {key} " in f" {normalize(text)} "), None)
            if first is None:
                if f" {key} " not in glossary_text:
                    self.err(g, ("drugs", i), f"'{drug}' is not named anywhere in the guide (remove it or fix the spelling)")
                continue
            f, kp = first
            if key not in said and not all(w in said for w in key.split()):
                self.err(f, kp, f"drug '{drug}' is named here but has no lexicon entry (add how to say it to lexicon.yaml)")
            if key not in defined:
                self.err(f, kp, f"drug '{drug}' is named here but has no glossary entry (add it, or add it as an alias)")

    def check_names(self) -> None:
        """Every id, title and alias leads to one section; every term and its aliases to one definition."""
        owner: dict[tuple[str, str], tuple[str, str]] = {}
        for name, target, f, kp in self.claims:
            # Two namespaces: navigation (sections) and definitions (glossary). "allogeneic" may
            # open a section and also be defined; within a namespace a name has one meaning.
            key = (target.split()[0], normalize(name))
            if not key[1]:
                continue
            if key in owner and owner[key][0] != target:
                self.err(f, kp, f"ambiguous: '{name}' also leads to {owner[key][0]} ({owner[key][1]})")
                continue
            owner.setdefault(key, (target, f"{f.display}:{f.line(kp)}"))

    def check_terms(self, glossary: tuple[GlossaryEntry, ...]) -> None:
        known = set()
        for entry in glossary:
            known.add(normalize(entry.term))
            known.update(normalize(a) for a in entry.aliases)
        for f, kp, t in self.term_refs:
            if t and normalize(t) not in known:
                self.err(f, kp, f"'{t}' is not in the glossary (dangling glossary reference)")

    def check_lexicon_used(self, guide: Guide) -> None:
        f = getattr(self, "lexicon_file", None)
        if f is None:
            return
        corpus_parts = [guide.title, guide.disclaimer, guide.description, *guide.authors]
        for s in guide.sources:
            corpus_parts += [s.title, s.publisher, s.author]
        for sec in guide.walk():
            corpus_parts += [sec.title, sec.summary, *sec.body, *sec.aliases]
        for entry in guide.glossary:
            corpus_parts += [entry.term, entry.definition, *entry.aliases]
        corpus = " " + normalize(" ".join(corpus_parts)) + " "
        for i, e in enumerate(guide.lexicon):
            if f" {normalize(e.word)} " not in corpus:
                self.err(f, ("entries", i, "word"), f"'{e.word}' does not appear anywhere in the guide (unused lexicon entry)")


def _plain_words(lexicon) -> frozenset[str]:
    """Lexicon words, whole and word by word, normalised: the words :func:`reading_grade` counts as two syllables."""
    out: set[str] = set()
    for e in lexicon:
        key = normalize(e.word)
        out.add(key)
        out.update(key.split())
    return frozenset(out)


def _typename(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def validate(path: str | os.PathLike | None = None) -> list[ContentError]:
    """Every problem in the pack at ``path`` (empty list: the pack is valid)."""
    checker = _Checker(Path(path) if path is not None else default_content_path())
    checker.run()
    return checker.errors


def load_guide(path: str | os.PathLike | None = None) -> Guide:
    """Load and validate a pack; raise the first :class:`ContentError` if it is not valid."""
    checker = _Checker(Path(path) if path is not None else default_content_path())
    guide = checker.run()
    if guide is None:
        raise checker.errors[0]
    return guide
