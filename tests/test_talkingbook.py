"""Talking books (voiceguide/talkingbook.py): EPUB 3 with Media Overlays and DAISY 2.02, checked by
real tools: epubcheck, ffprobe, the Whisper recogniser and daisy-player driven in tmux.

Expectations come from the loaded content packs, never from sentences written here.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from voiceguide.content import default_content_path, load_guide, normalize
from voiceguide.protocols import Audio
from voiceguide.tts import split_sentences

MINI_PATH = Path(__file__).parent / "data" / "mini"
MINI = load_guide(MINI_PATH)
NS = {"opf": "http://www.idpf.org/2007/opf", "dc": "http://purl.org/dc/elements/1.1/",
      "x": "http://www.w3.org/1999/xhtml", "epub": "http://www.idpf.org/2007/ops", "smil": "http://www.w3.org/ns/SMIL",
      "pls": "http://www.w3.org/2005/01/pronunciation-lexicon", "ssml": "http://www.w3.org/2001/10/synthesis"}
X = "{http://www.w3.org/1999/xhtml}"


def export(out: Path, fmt: str, *args: str, content: Path | None = MINI_PATH, env=None,
           timeout=900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "voiceguide", "export", "--format", fmt, "--out", str(out), *args]
    if content:
        cmd += ["--content", str(content)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """The mini pack as both books, exported into one folder (so the second export uses the first's cache)."""
    out = tmp_path_factory.mktemp("books")
    epub = export(out, "epub3")
    assert epub.returncode == 0, epub.stderr
    daisy = export(out, "daisy202")
    assert daisy.returncode == 0, daisy.stderr
    unpacked = out / "unpacked"
    with zipfile.ZipFile(out / f"{MINI.id}.epub") as z:
        z.extractall(unpacked)
    return {"out": out, "epub": out / f"{MINI.id}.epub", "epub_dir": unpacked / "EPUB",
            "daisy": out / f"{MINI.id}-daisy202", "logs": (epub, daisy)}


def expected_reading(guide) -> list[tuple[str, int]]:
    """(heading, level) in reading order: the title page, every section by depth, the sources."""
    return ([(guide.title, 1)] + [(s.title, len(guide.path_to(s.id))) for s in guide.walk()] + [("Sources", 1)])


def expected_sentences(guide) -> list[str]:
    out = [guide.title, *split_sentences(guide.disclaimer)]
    for s in guide.walk():
        out += [s.title, *split_sentences(s.summary), *(t for p in s.body for t in split_sentences(p))]
    return out


def text_of(el) -> str:
    return " ".join("".join(el.itertext()).split())


# ---------------------------------------------------------------------- epubcheck


def epubcheck_cmd() -> list[str]:
    exe = shutil.which("epubcheck")
    if not exe:
        pytest.skip("epubcheck is not installed (Debian: apt-get install epubcheck)")
    real = os.path.realpath(exe)
    with open(real, "rb") as fh:
        if fh.read(2) == b"PK":  # Debian ships the jar itself; without binfmt_misc (containers) run it with java
            return [shutil.which("java") or "java", "-jar", real]
    return [exe]


def run_epubcheck(epub: Path) -> str:
    proc = subprocess.run([*epubcheck_cmd(), str(epub)], capture_output=True, text=True, timeout=600)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    assert re.search(r"Messages: 0 fatals / 0 errors / 0 warnings", report), report
    assert "No errors or warnings detected" in report, report
    return report


def test_epubcheck_finds_no_error_or_warning_in_the_mini_book(books):
    run_epubcheck(books["epub"])


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped guide as both books (espeak at 260 wpm: the whole guide, quickly)."""
    guide = load_guide(default_content_path())
    out = tmp_path_factory.mktemp("shipped")
    for fmt in ("epub3", "daisy202"):
        proc = export(out, fmt, "--rate", "260", content=None)
        assert proc.returncode == 0, proc.stderr
    return {"guide": guide, "epub": out / f"{guide.id}.epub", "daisy": out / f"{guide.id}-daisy202"}


def test_epubcheck_finds_no_error_or_warning_in_the_shipped_guide(shipped):
    guide, epub = shipped["guide"], shipped["epub"]
    run_epubcheck(epub)
    with zipfile.ZipFile(epub) as z:  # the whole guide is in it: every section heading, in order
        nav = ET.fromstring(z.read("EPUB/nav.xhtml"))
    toc = nav.find(".//x:nav[@id='toc']", NS)
    assert [text_of(a) for a in toc.iter(f"{X}a")] == [t for t, _ in expected_reading(guide)]


# ---------------------------------------------------------------------- the EPUB's package and content


def test_package_metadata_accessibility_and_overlays(books):
    d = books["epub_dir"]
    opf = ET.parse(d / "package.opf").getroot()
    assert opf.get("version") == "3.0"
    meta = opf.find("opf:metadata", NS)
    props: dict[str, list[str]] = {}
    for m in meta.findall("opf:meta", NS):
        if m.get("property"):
            key = m.get("property") + (f"@{m.get('refines')}" if m.get("refines") else "")
            props.setdefault(key, []).append(m.text)
    assert meta.findtext("dc:title", namespaces=NS) == MINI.title
    assert meta.findtext("dc:language", namespaces=NS) == MINI.language
    assert meta.findtext("dc:date", namespaces=NS) == MINI.last_reviewed.isoformat()
    assert {"textual", "auditory"} <= set(props["schema:accessMode"])
    assert {"textual", "auditory"} <= set(props["schema:accessModeSufficient"])
    assert {"synchronizedAudioText", "tableOfContents", "readingOrder", "structuralNavigation"} <= set(
        props["schema:accessibilityFeature"])
    assert props["schema:accessibilityHazard"] == ["none"]
    assert len(props["schema:accessibilitySummary"][0]) > 40
    assert props["media:active-class"] == ["-epub-media-overlay-active"]
    assert "-epub-media-overlay-active" in (d / "css" / "book.css").read_text()

    items = {i.get("id"): i for i in opf.find("opf:manifest", NS)}
    spine = [r.get("idref") for r in opf.find("opf:spine", NS)]
    docs = [i for i in spine if items[i].get("media-overlay")]
    assert docs == ["front", *[f"sec-{s.id}" for s in MINI.sections], "back"]
    total = 0.0
    for doc in docs:
        mo = items[doc].get("media-overlay")
        assert items[mo].get("media-type") == "application/smil+xml"
        (clock,) = props[f"media:duration@#{mo}"]
        secs = clock_seconds(clock)
        smil_end = max(float(a.get("clipEnd").rstrip("s")) for a in
                       ET.parse(d / items[mo].get("href")).getroot().iter("{http://www.w3.org/ns/SMIL}audio"))
        assert secs == pytest.approx(smil_end, abs=0.002)
        total += secs
    assert clock_seconds(props["media:duration"][0]) == pytest.approx(total, abs=0.002)
    cover = [i for i in items.values() if i.get("properties") == "cover-image"]
    assert len(cover) == 1 and (d / cover[0].get("href")).is_file()


def clock_seconds(clock: str) -> float:
    h, m, s = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_headings_follow_the_section_hierarchy_and_the_nav_lists_them(books):
    d = books["epub_dir"]
    seen = []
    for doc in ["front", *[f"sec-{s.id}" for s in MINI.sections], "back"]:
        root = ET.parse(d / f"{doc}.xhtml").getroot()
        assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == MINI.language == root.get("lang")
        link = root.find("x:head/x:link[@rel='pronunciation']", NS)
        assert link is not None and link.get("type") == "application/pls+xml" and (d / link.get("href")).is_file()
        for el in root.iter():
            m = re.fullmatch(rf"{re.escape(X)}h([1-6])", el.tag)
            if m:
                seen.append((text_of(el), int(m.group(1))))
    assert seen == expected_reading(MINI)
    nav = ET.parse(d / "nav.xhtml").getroot()
    toc = nav.find(".//x:nav[@id='toc']", NS)
    assert [text_of(a) for a in toc.iter(f"{X}a")] == [t for t, _ in expected_reading(MINI)]
    for li in toc.iter(f"{X}li"):  # nesting mirrors the sections
        sub = li.find("x:ol", NS)
        title = text_of(li.find("x:a", NS))
        sec = next((s for s in MINI.walk() if s.title == title), None)
        kids = [text_of(c.find("x:a", NS)) for c in sub] if sub is not None else []
        assert kids == ([c.title for c in sec.children] if sec else [])
    landmarks = nav.find(".//x:nav[@id='landmarks']", NS)
    kinds = [a.get(f"{{{NS['epub']}}}type") for a in landmarks.iter(f"{X}a")]
    assert {"toc", "bodymatter", "cover"} <= set(kinds)
    front = text_of(ET.parse(d / "front.xhtml").getroot())
    back = text_of(ET.parse(d / "back.xhtml").getroot())
    assert MINI.disclaimer in front and str(MINI.last_reviewed.year) in front
    assert all(s.title in back for s in MINI.sources)


def test_lexicon_is_a_pls_file_and_ssml_hints(books):
    d = books["epub_dir"]
    pls = ET.parse(d / "lexicon.pls").getroot()
    assert pls.get("alphabet") == "ipa"
    lexemes = {g.text.lower(): lx for lx in pls.findall("pls:lexeme", NS) for g in lx.findall("pls:grapheme", NS)}
    for entry in MINI.lexicon:
        lx = lexemes[entry.word.lower()]
        assert lx.findtext("pls:alias", namespaces=NS) == entry.say
        assert lx.findtext("pls:phoneme", namespaces=NS)
    hinted = {}
    for f in d.glob("*.xhtml"):
        for el in ET.parse(f).getroot().iter():
            if el.get(f"{{{NS['ssml']}}}ph"):
                hinted[el.text.lower()] = el.get(f"{{{NS['ssml']}}}ph")
    used = {e.word.lower() for e in MINI.lexicon
            if any(re.search(rf"(?<![\w-]){re.escape(e.word)}(?![\w-])", t, re.I) for t in expected_sentences(MINI))}
    assert used and used <= set(hinted)
    for word in used:
        assert hinted[word] == lexemes[word].findtext("pls:phoneme", namespaces=NS)


# ---------------------------------------------------------------------- overlays and SMIL: every sentence a clip


def epub_clips(d: Path) -> list[tuple[str, str, Path, float, float]]:
    """(content file, id, audio file, begin, end) for every par of every overlay, in order."""
    out = []
    opf = ET.parse(d / "package.opf").getroot()
    items = {i.get("id"): i for i in opf.find("opf:manifest", NS)}
    for ref in opf.find("opf:spine", NS):
        mo = items[ref.get("idref")].get("media-overlay")
        if not mo:
            continue
        smil = d / items[mo].get("href")
        for par in ET.parse(smil).getroot().iter("{http://www.w3.org/ns/SMIL}par"):
            text = par.find("smil:text", NS).get("src")
            audio = par.find("smil:audio", NS)
            doc, frag = text.split("#")
            out.append(((smil.parent / doc).resolve(), frag, (smil.parent / audio.get("src")).resolve(),
                        float(audio.get("clipBegin").rstrip("s")), float(audio.get("clipEnd").rstrip("s"))))
    return out


def daisy_clips(folder: Path) -> list[tuple[Path, str, Path, float, float]]:
    out = []
    for smil in sorted(folder.glob("s*.smil")):
        for par in ET.parse(smil).getroot().iter("par"):
            text, audio = par.find("text").get("src"), par.find("audio")
            doc, frag = text.split("#")
            npt = [float(audio.get(k).removeprefix("npt=").rstrip("s")) for k in ("clip-begin", "clip-end")]
            out.append(((folder / doc).resolve(), frag, (folder / audio.get("src")).resolve(), *npt))
    return out


def clips_of(books, fmt):
    return epub_clips(books["epub_dir"]) if fmt == "epub3" else daisy_clips(books["daisy"])


def element_texts(files) -> dict[tuple[Path, str], str]:
    out = {}
    for f in set(files):
        for el in ET.parse(f).getroot().iter():
            if el.get("id"):
                out[(f, el.get("id"))] = text_of(el)
    return out


def duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True).stdout
    return float(out)


@pytest.mark.parametrize("fmt", ["epub3", "daisy202"])
def test_every_sentence_is_a_clip_whose_text_exists(books, fmt):
    clips = clips_of(books, fmt)
    texts = element_texts(c[0] for c in clips)
    spoken = []
    for doc, frag, *_ in clips:
        assert (doc, frag) in texts, f"{doc.name}#{frag} is not in the content"
        spoken.append(texts[(doc, frag)])
    for sentence in expected_sentences(MINI):
        assert " ".join(sentence.split()) in spoken, sentence
    assert len(set((c[0], c[1]) for c in clips)) == len(clips)  # each element is spoken once
    referenced = {(c[0], c[1]) for c in clips}
    for doc in {c[0] for c in clips}:  # and no text in a content document goes unspoken (links to sources aside)
        body = ET.parse(doc).getroot().find("x:body", NS)
        parents = {child: parent for parent in body.iter() for child in parent}

        def spoken_by(el) -> bool:
            while el is not None:
                if (doc, el.get("id")) in referenced or el.tag == f"{X}a":
                    return True
                el = parents.get(el)
            return False

        for el in body.iter():
            if (el.text or "").strip() and not spoken_by(el):
                raise AssertionError(f"{doc.name}: {el.text!r} has no audio")
            if (el.tail or "").strip() and not spoken_by(parents.get(el)):
                raise AssertionError(f"{doc.name}: {el.tail!r} has no audio")


@pytest.mark.parametrize("fmt", ["epub3", "daisy202"])
def test_clips_lie_inside_their_audio_and_follow_each_other_without_gap_or_overlap(books, fmt):
    clips = clips_of(books, fmt)
    by_audio: dict[Path, list[tuple[float, float]]] = {}
    for _, _, audio, begin, end in clips:
        assert audio.is_file(), audio
        assert begin < end
        by_audio.setdefault(audio, []).append((begin, end))
    for audio, spans in by_audio.items():
        assert spans[0][0] == 0.0
        for (_, end), (begin, _) in zip(spans, spans[1:]):
            assert begin == end, f"{audio.name}: a gap or overlap at {end}..{begin}"
        length = duration(audio)
        assert spans[-1][1] <= length + 0.001, f"{audio.name}: a clip ends after the audio ({length} s)"
        assert spans[-1][1] >= length - 0.1, f"{audio.name}: audio after the last clip ({length} s)"
    folder = books["epub_dir"] / "audio" if fmt == "epub3" else books["daisy"]
    assert {p.resolve() for p in folder.glob("*.mp3")} == set(by_audio)  # no audio file left unused


def cut(audio: Path, begin: float, end: float) -> Audio:
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(audio), "-ss", f"{begin:.3f}", "-to", f"{end:.3f}",
                          "-ac", "1", "-ar", "16000", "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return Audio(pcm, 16000)


def words(text: str) -> list[str]:
    return normalize(text).split()


@pytest.fixture(scope="module")
def whisper():
    from voiceguide.asr import get_recognizer
    from voiceguide.errors import EngineUnavailable

    try:
        return get_recognizer(MINI, "whisper")
    except EngineUnavailable as exc:
        pytest.skip(str(exc))


def transcribe(recogniser, audio: Audio) -> str:
    """The recogniser's Whisper model on a whole sentence: beam search, no priming, no command-length cut."""
    import numpy as np

    x = np.frombuffer(audio.pcm, "<i2").astype(np.float32) / 32768
    segments, _ = recogniser.model.transcribe(x, language="en", beam_size=5, temperature=0.0,
                                              chunk_length=int(len(x) / audio.sample_rate) + 3,
                                              condition_on_previous_text=False, without_timestamps=True)
    return " ".join(s.text for s in segments)


@pytest.mark.parametrize("fmt", ["epub3", "daisy202"])
def test_each_clip_speaks_its_own_sentence(books, fmt, whisper):
    """Whisper transcribes a sample of clips cut from the book's audio at the SMIL times; each transcript
    must read most like its own sentence (a clip shifted by one would read like its neighbour). The sample
    is of sentences of five words or more without lexicon words: drug names are beyond tiny.en."""
    from voiceguide.pronounce import apply

    clips = clips_of(books, fmt)
    texts = element_texts(c[0] for c in clips)
    every = [texts[(c[0], c[1])] for c in clips]
    lexical = re.compile("|".join(rf"(?<![\w-]){re.escape(e.word)}(?![\w-])" for e in MINI.lexicon) or "$^", re.I)
    candidates = [i for i, t in enumerate(every) if len(words(t)) >= 5 and not lexical.search(t)]
    sample = candidates[:: max(1, len(candidates) // 6)][:6]
    assert len(sample) >= 4
    report, wrong = [], 0
    for i in sample:
        doc, frag, audio, begin, end = clips[i]
        heard = words(transcribe(whisper, cut(audio, begin, end)))
        scores = [max(difflib.SequenceMatcher(None, heard, words(t)).ratio(),
                      difflib.SequenceMatcher(None, heard, words(apply(t, MINI.lexicon))).ratio()) for t in every]
        best = max(range(len(every)), key=scores.__getitem__)
        ok = every[best] == every[i] and scores[i] >= 0.35
        wrong += not ok
        report.append(f"{'ok ' if ok else 'BAD'} {scores[i]:.2f} {every[i]!r} heard {' '.join(heard)!r}")
    print("\n".join(report))
    assert wrong == 0, "\n".join(report)


# ---------------------------------------------------------------------- DAISY 2.02: NCC, SMIL, content


def test_ncc_has_the_required_metadata_and_headings_in_order(books):
    folder = books["daisy"]
    ncc = ET.parse(folder / "ncc.html").getroot()
    meta = {m.get("name"): m.get("content") for m in ncc.iter(f"{X}meta") if m.get("name")}
    for name in ("dc:title", "dc:creator", "dc:date", "dc:format", "dc:identifier", "dc:language", "dc:publisher",
                 "ncc:charset", "ncc:generator", "ncc:multimediaType", "ncc:setInfo", "ncc:tocItems", "ncc:totalTime",
                 "ncc:depth", "ncc:files", "ncc:footnotes", "ncc:pageFront", "ncc:pageNormal", "ncc:pageSpecial",
                 "ncc:prodNotes", "ncc:sidebars", "ncc:maxPageNormal", "ncc:narrator", "ncc:sourceDate"):
        assert meta.get(name), name
    assert meta["dc:title"] == MINI.title and meta["dc:language"] == MINI.language
    assert meta["dc:format"] == "Daisy 2.02" and meta["ncc:multimediaType"] == "audioFullText"
    assert meta["ncc:charset"] == "utf-8" and meta["ncc:setInfo"] == "1 of 1"
    headings = [el for el in ncc.find("x:body", NS) if re.fullmatch(rf"{re.escape(X)}h[1-6]", el.tag)]
    assert [(text_of(h), int(h.tag[-1])) for h in headings] == expected_reading(MINI)
    assert headings[0].get("class") == "title"
    assert int(meta["ncc:tocItems"]) == len(headings)
    assert int(meta["ncc:depth"]) == max(lvl for _, lvl in expected_reading(MINI))
    files = [p for p in folder.iterdir() if p.is_file()]
    assert int(meta["ncc:files"]) == len(files)
    h, m, s = map(int, meta["ncc:totalTime"].split(":"))
    assert abs(h * 3600 + m * 60 + s - sum(duration(p) for p in folder.glob("*.mp3"))) <= 2


def test_ncc_links_and_smil_texts_are_consistent(books):
    folder = books["daisy"]
    ncc = ET.parse(folder / "ncc.html").getroot()
    content_ids = {el.get("id"): el for el in ET.parse(folder / "content.html").getroot().iter() if el.get("id")}
    smils = {}
    for a in ncc.iter(f"{X}a"):
        file, frag = a.get("href").split("#")
        root = smils.setdefault(file, ET.parse(folder / file).getroot())
        pars = {p.get("id"): p for p in root.iter("par")}
        target = next((el for el in root.iter() if el.get("id") == frag), None)
        assert target is not None, a.get("href")
        par = target if target.tag == "par" else next(p for p in pars.values() if target in list(p))
        assert par.get("id") in pars
        doc, tid = par.find("text").get("src").split("#")
        assert doc == "content.html" and text_of(content_ids[tid]) == text_of(a)  # the heading's own text
    for file in folder.glob("*.smil"):
        root = ET.parse(file).getroot()
        assert root.find("head/meta[@name='dc:format']").get("content") == "Daisy 2.02"
        for text in root.iter("text"):
            doc, tid = text.get("src").split("#")
            assert doc == "content.html" and tid in content_ids, text.get("src")
    master = ET.parse(folder / "master.smil").getroot()
    assert [r.get("src") for r in master.iter("ref")] == list(smils)


# ---------------------------------------------------------------------- daisy-player, driven in tmux

FAKE_ALSA = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
/* Test shim: daisy-player refuses to start without /proc/asound/cards (no ALSA card in a container) and
   keeps its settings in the passwd home. Redirect the one file to a listing of a dummy card, and the
   settings to a temporary folder. Playback itself goes through PulseAudio. */
static char buf[4096];
static const char *redirect(const char *path) {
    const char *cards = getenv("VG_FAKE_CARDS"), *home = getenv("VG_REAL_HOME"), *to = getenv("VG_FAKE_HOME");
    if (!path) return path;
    if (cards && strcmp(path, "/proc/asound/cards") == 0) return cards;
    if (home && to && strncmp(path, home, strlen(home)) == 0 && strncmp(path + strlen(home), "/.daisy-player", 14) == 0) {
        snprintf(buf, sizeof buf, "%s%s", to, path + strlen(home));
        return buf;
    }
    return path;
}
typedef FILE *(*fopen_t)(const char *, const char *);
typedef int (*open_t)(const char *, int, ...);
typedef int (*mkdir_t)(const char *, mode_t);
typedef int (*unlink_t)(const char *);
#define REAL(type, name) static type real; if (!real) real = (type) dlsym(RTLD_NEXT, name)
FILE *fopen(const char *p, const char *m) { REAL(fopen_t, "fopen"); return real(redirect(p), m); }
FILE *fopen64(const char *p, const char *m) { REAL(fopen_t, "fopen64"); return real(redirect(p), m); }
int open(const char *p, int f, ...) { va_list a; va_start(a, f); int m = va_arg(a, int); va_end(a);
    REAL(open_t, "open"); return real(redirect(p), f, m); }
int open64(const char *p, int f, ...) { va_list a; va_start(a, f); int m = va_arg(a, int); va_end(a);
    REAL(open_t, "open64"); return real(redirect(p), f, m); }
int mkdir(const char *p, mode_t m) { REAL(mkdir_t, "mkdir"); return real(redirect(p), m); }
int unlink(const char *p) { REAL(unlink_t, "unlink"); return real(redirect(p)); }
"""


class Tmux:
    def __init__(self, root: Path, command: str, env: dict[str, str]):
        self.sock = root / "tmux.sock"
        extra = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        subprocess.run(["tmux", "-S", str(self.sock), "-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "40",
                        *extra, command], check=True, env={**os.environ, **env, "TERM": "xterm"})

    def screen(self) -> list[str]:
        out = subprocess.run(["tmux", "-S", str(self.sock), "capture-pane", "-p"], capture_output=True, text=True)
        return out.stdout.splitlines()

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-S", str(self.sock), "send-keys", *keys], check=True)

    def wait_for(self, predicate, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen()
            if predicate(lines):
                return lines
            time.sleep(0.2)
        return None

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.sock), "kill-server"], capture_output=True)


@pytest.mark.parametrize("which", ["mini", "shipped"])
def test_daisy_player_lists_the_sections_in_order_and_plays_the_first(which, request, pulse, tmp_path):
    if which == "mini":
        guide, folder = MINI, request.getfixturevalue("books")["daisy"]
    else:
        shipped = request.getfixturevalue("shipped")
        guide, folder = shipped["guide"], shipped["daisy"]
    if not shutil.which("daisy-player") or not shutil.which("tmux"):
        pytest.skip("daisy-player and tmux are needed (apt-get install daisy-player tmux)")
    env = {"PULSE_SERVER": pulse.env["PULSE_SERVER"], "HOME": str(tmp_path)}
    if not Path("/proc/asound/cards").exists():
        if not shutil.which("gcc"):
            pytest.skip("no ALSA card here and no gcc to build the test shim daisy-player needs")
        (tmp_path / "fakealsa.c").write_text(FAKE_ALSA)
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(tmp_path / "fakealsa.so"),
                        str(tmp_path / "fakealsa.c"), "-ldl"], check=True)
        (tmp_path / "cards").write_text(" 0 [Dummy          ]: Dummy - Dummy\n                      Dummy 1\n")
        import pwd

        env.update(LD_PRELOAD=str(tmp_path / "fakealsa.so"), VG_FAKE_CARDS=str(tmp_path / "cards"),
                   VG_REAL_HOME=pwd.getpwuid(os.geteuid()).pw_dir, VG_FAKE_HOME=str(tmp_path))
    settings = Path(os.path.expanduser("~")) / ".daisy-player.xml"
    settings_before = settings.stat().st_mtime_ns if settings.exists() else None
    titles = [t for t, _ in expected_reading(guide)]
    recorder = pulse.record_speaker()
    tmux = Tmux(tmp_path, f"daisy-player '{folder}' -i -d vg_speaker:pulseaudio; sleep 60", env)
    try:
        listed = tmux.wait_for(lambda lines: any(titles[-1] in line for line in lines))
        assert listed, "daisy-player did not list the book:\n" + "\n".join(tmux.screen())
        rows = [next(i for i, line in enumerate(listed) if re.search(rf"^\s*{re.escape(t)}\s", line))
                for t in titles]
        assert rows == sorted(rows) and len(set(rows)) == len(rows), "\n".join(listed)
        first_row = listed[rows[0]]
        start = time.monotonic()
        tmux.keys("Enter")
        playing = tmux.wait_for(lambda lines: lines[rows[0]] != first_row)  # the elapsed time appears on the row
        assert playing, "nothing changed on the first item's row after Enter:\n" + "\n".join(tmux.screen())
        time.sleep(4)
    finally:
        tmux.close()
        audio = recorder.stop()
    from voiceguide.rig import loud_times

    loud = [t for t in loud_times(audio) if t >= start - recorder.t0]  # speech after Enter, not before
    assert len(loud) >= 25, f"daisy-player played {len(loud)} loud 20 ms frames into the speaker"
    if "VG_REAL_HOME" in env:  # the shim kept daisy-player's settings out of the real home
        assert (settings.stat().st_mtime_ns if settings.exists() else None) == settings_before


# ---------------------------------------------------------------------- cache, atomicity, errors


def test_the_second_book_renders_nothing_and_an_edit_renders_one_sentence(books, tmp_path):
    epub_log, daisy_log = books["logs"]
    assert re.search(r"rendered [1-9]\d* sentences, 0 from the cache", epub_log.stdout), epub_log.stdout
    assert "rendered 0 sentences" in daisy_log.stdout, daisy_log.stdout  # the EPUB's cache served the DAISY book
    pack = tmp_path / "pack"
    shutil.copytree(MINI_PATH, pack)
    f, old = next((pack / "sections" / f"{s.id}.yaml", t) for s in MINI.sections for p in s.body
                  for t in split_sentences(p) if t.endswith(".") and
                  (pack / "sections" / f"{s.id}.yaml").read_text().count(t) == 1)  # a sentence written on one line
    new = old.rstrip(".") + " today."
    f.write_text(f.read_text().replace(old, new))
    out = tmp_path / "out"
    shutil.copytree(books["out"] / ".cache", out / ".cache")
    proc = export(out, "daisy202", content=pack)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"rendered 1 sentences, \d+ from the cache", proc.stdout), proc.stdout
    assert new in (out / f"{MINI.id}-daisy202" / "content.html").read_text()


def test_a_killed_export_leaves_the_old_book_whole_and_the_next_run_cleans_up(books, tmp_path):
    out = tmp_path / "out"
    book = out / f"{MINI.id}-daisy202"
    shutil.copytree(books["daisy"], book)
    pack = tmp_path / "pack"
    shutil.copytree(MINI_PATH, pack)
    g = pack / "guide.yaml"
    g.write_text(g.read_text().replace(MINI.disclaimer, MINI.disclaimer + " Keep this book handy."))
    before = {p.name: p.read_bytes() for p in book.iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "voiceguide", "export", "--format", "daisy202", "--out", str(out),
                             "--content", str(pack), "--jobs", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # kill it once it is writing the new book
        if any(p.is_dir() and any(p.rglob("*.mp3")) for p in out.glob(f".{book.name}.tmp-*")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the export ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert {p.name: p.read_bytes() for p in book.iterdir()} == before
    assert list(out.glob(f".{book.name}.tmp-*")), "the killed export's work folder should be there to clean"
    done = export(out, "daisy202", content=pack)
    assert done.returncode == 0, done.stderr
    assert "Keep this book handy." in (book / "content.html").read_text()
    assert not list(out.glob(".*.tmp-*")), "temporary folders were left behind"


def test_nasty_text_still_gives_well_formed_books(tmp_path):
    from tests.test_content import GUIDE as MINI_GUIDE, make_pack

    title = 'Fish & Chips <b>]]> "quoted" \\x01 done'
    pack = make_pack(tmp_path / "pack", **{"guide.yaml": MINI_GUIDE.replace("title: Mini guide", f"title: \"{title.replace(chr(34), chr(92) + chr(34))}\"")})
    guide = load_guide(pack)
    for fmt in ("epub3", "daisy202"):
        proc = export(tmp_path / "out", fmt, "--rate", "260", content=pack)
        assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(tmp_path / "out" / f"{guide.id}.epub") as z:
        for name in z.namelist():
            if name.endswith((".xhtml", ".opf", ".smil", ".pls", ".xml")):
                ET.fromstring(z.read(name))
        opf = ET.fromstring(z.read("EPUB/package.opf"))
    assert opf.find("opf:metadata/dc:title", NS).text == guide.title.replace("\x01", "")
    for f in (tmp_path / "out" / f"{guide.id}-daisy202").glob("*"):
        if f.suffix in (".html", ".smil"):
            ET.parse(f)


@pytest.mark.parametrize("case", ["no ffmpeg", "out is a file", "unwritable", "podcast option", "unknown format"])
def test_clear_one_line_errors(tmp_path, case):
    env, out, args, fmt = None, tmp_path / "out", [], "epub3"
    if case == "no ffmpeg":
        bindir = tmp_path / "bin"
        bindir.mkdir()
        os.symlink(shutil.which("espeak-ng"), bindir / "espeak-ng")
        env = dict(os.environ, PATH=str(bindir))
        expected = "ffmpeg is not installed"
    elif case == "out is a file":
        out.write_text("not a folder")
        expected = "is not a folder"
    elif case == "unwritable":
        out = Path("/proc/voiceguide-out")
        expected = "cannot write there"
    elif case == "podcast option":
        args = ["--per-section"]
        expected = "--per-section is for podcasts, not talking books"
    else:
        fmt = "epub2"
        expected = "invalid choice: 'epub2'"
    proc = export(out, fmt, *args, env=env, timeout=120)
    assert proc.returncode != 0 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    if case == "unknown format":  # argparse's usage line, then the error naming the formats there are
        assert proc.returncode == 2 and "epub3" in proc.stderr.splitlines()[-1] and "daisy202" in proc.stderr
    else:
        assert proc.stderr.strip().count("\n") == 0, proc.stderr
