"""Podcast export with real espeak-ng, ffmpeg and mutagen: feeds (checked by the W3C Feed Validator), loudness and
true peak measured after encoding by ffmpeg's ebur128, tags and chapters, the caches, clean stops, errors."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime
from pathlib import Path

import numpy as np
import pytest

from voiceguide.content import default_content_path, load_guide

GUIDE = load_guide(default_content_path())
NS = {"itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd", "podcast": "https://podcastindex.org/namespace/1.0",
      "atom": "http://www.w3.org/2005/Atom", "content": "http://purl.org/rss/1.0/modules/content/"}
SLUG = GUIDE.id
BASE = "https://example.org/aml/"
VALIDATOR = Path(__file__).resolve().parents[2] / "shared" / "tools" / "validate-feed"


def export(out: Path, *args: str, content: Path | None = None, env=None, timeout=600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "voiceguide", "export", "--out", str(out), "--rate", "260", *args]
    if content:
        cmd += ["--content", str(content)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def podcast(tmp_path_factory):
    out = tmp_path_factory.mktemp("podcast")
    proc = export(out, "--base-url", BASE, "--per-section")
    assert proc.returncode == 0, proc.stderr
    return out


def mini_pack(root: Path, podcast_block: str = "") -> Path:
    from tests.test_content import GUIDE as MINI_GUIDE, make_pack

    guide = MINI_GUIDE.replace("    title: A source\n", "    title: A source\n    url: https://example.org/a-source\n")
    return make_pack(root, **{"guide.yaml": guide + podcast_block})


def measure(path: Path) -> tuple[float, float]:
    """Integrated loudness and true peak, measured by ffmpeg's ebur128 (independent of our normaliser)."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
                           "-f", "null", "-"], capture_output=True, text=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = max(float(p) for p in re.search(r"Peak:\s+((?:-?[\d.]+\s+)+)dBFS", summary).group(1).split())
    return lufs, peak


def probe(path: Path, what: str = "-show_streams") -> dict:
    return json.loads(subprocess.run(["ffprobe", "-v", "error", what, "-of", "json", str(path)],
                                     capture_output=True, text=True).stdout)


def duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True).stdout
    return float(out)


def validate_feed(feed: Path, url: str) -> str:
    if not VALIDATOR.is_file():
        pytest.skip(f"the W3C Feed Validator wrapper is not at {VALIDATOR}")
    for mod in ("lxml", "html5lib", "rdflib"):
        pytest.importorskip(mod, reason="the W3C Feed Validator needs lxml, html5lib and rdflib (the dev extra)")
    proc = subprocess.run([sys.executable, str(VALIDATOR), str(feed), url], capture_output=True, text=True,
                          timeout=120)
    assert "level A:" in proc.stdout and "level AA:" in proc.stdout, proc.stdout + proc.stderr
    return proc.stdout


# ---------------------------------------------------------------------- feeds


def test_feed_is_publishable_with_every_tag_directories_use(podcast):
    root = ET.parse(podcast / "feed.xml").getroot()
    assert root.tag == "rss" and root.get("version") == "2.0"
    ch = root.find("channel")
    assert ch.findtext("title") == GUIDE.title
    assert ch.findtext("description") and ch.findtext("language") == "en"
    assert ch.find("itunes:image", NS).get("href") == BASE + "cover.png"
    assert ch.find("itunes:category", NS).get("text") == "Health & Fitness"
    assert ch.find("itunes:category/itunes:category", NS).get("text") == "Medicine"
    assert ch.findtext("itunes:explicit", namespaces=NS) == "false"
    assert ch.findtext("itunes:author", namespaces=NS) == GUIDE.podcast.author
    assert ch.findtext("itunes:owner/itunes:email", namespaces=NS) == "podcast-owner@example.org"  # placeholder
    assert ch.findtext("itunes:owner/itunes:name", namespaces=NS)
    self_link = ch.find("atom:link", NS)
    assert self_link.get("href") == BASE + "feed.xml" and self_link.get("rel") == "self"
    # Podcasting 2.0: UUIDv5 of the feed URL without scheme and trailing slash, in its own namespace
    expected = uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), "example.org/aml/feed.xml")
    assert ch.findtext("podcast:guid", namespaces=NS) == str(expected)
    items = ch.findall("item")
    assert len(items) == 1, "the whole-guide feed holds the whole guide only; sections have their own feed"
    item = items[0]
    assert item.findtext("title") == GUIDE.title == item.findtext("itunes:title", namespaces=NS)
    assert item.findtext("itunes:episodeType", namespaces=NS) == "full"
    assert item.find("guid").text == f"voiceguide:{SLUG}" and item.find("guid").get("isPermaLink") == "false"
    assert parsedate_to_datetime(item.findtext("pubDate")).date() == GUIDE.last_reviewed
    notes = item.findtext("content:encoded", namespaces=NS)
    assert GUIDE.disclaimer in html.unescape(notes) and all(s.title in html.unescape(notes) for s in GUIDE.sources)
    links = [s for s in GUIDE.sources if s.url]
    assert links and all(f'<a href="{html.escape(s.url)}">' in notes for s in links)  # the sources as links
    enc = item.find("enclosure")
    audio = podcast / f"{SLUG}.mp3"
    assert enc.get("url") == f"{BASE}{SLUG}.mp3" and enc.get("type") == "audio/mpeg"
    assert int(enc.get("length")) == audio.stat().st_size
    h, m, s = map(int, item.findtext("itunes:duration", namespaces=NS).split(":"))
    assert abs(h * 3600 + m * 60 + s - duration(audio)) <= 1
    types = {t.get("type"): t.get("url") for t in item.findall("podcast:transcript", NS)}
    assert types == {"text/vtt": f"{BASE}{SLUG}.vtt", "application/x-subrip": f"{BASE}{SLUG}.srt"}
    assert item.find("podcast:chapters", NS).get("type") == "application/json+chapters"
    for name in ["cover.png", f"{SLUG}.vtt", f"{SLUG}.srt", f"{SLUG}.chapters.json", f"{SLUG}.mp3", "feed.xml"]:
        assert (podcast / name).is_file() and oct((podcast / name).stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("feed", ["feed.xml", "sections.xml"])
def test_w3c_feed_validator_finds_no_error_or_warning(podcast, feed):
    report = validate_feed(podcast / feed, BASE + feed)
    assert "level A: 0 message(s)" in report and "level AA: 0 message(s)" in report, report


def test_section_series_has_its_own_feed_dates_titles_and_a_spoken_disclaimer(podcast):
    ch = ET.parse(podcast / "sections.xml").getroot().find("channel")
    items = ch.findall("item")
    sections = list(GUIDE.walk())
    assert [i.findtext("title") for i in items] == [s.title for s in sections]  # no show name repeated
    assert all(GUIDE.title not in i.findtext("title") for i in items)
    assert ch.findtext("itunes:type", namespaces=NS) == "serial"
    assert [int(i.findtext("itunes:episode", namespaces=NS)) for i in items] == list(range(1, len(sections) + 1))
    dates = [parsedate_to_datetime(i.findtext("pubDate")) for i in items]
    assert len(set(dates)) == len(dates) and dates == sorted(dates)
    assert ch.find("atom:link", NS).get("href") == BASE + "sections.xml"
    assert ch.findtext("podcast:guid", namespaces=NS) != ET.parse(podcast / "feed.xml").getroot().findtext(
        "channel/podcast:guid", namespaces=NS)
    for item, sec in zip(items, sections):
        slug = item.find("guid").text.removeprefix("voiceguide:")
        assert slug == f"{SLUG}-{sec.id}"
        audio = podcast / f"{slug}.mp3"
        assert int(item.find("enclosure").get("length")) == audio.stat().st_size
        spoken = (podcast / f"{slug}.vtt").read_text().replace("\n", " ")
        assert GUIDE.disclaimer in spoken, f"{slug}: no spoken disclaimer"
        assert sec.title in spoken
        data = json.loads((podcast / f"{slug}.chapters.json").read_text())
        assert [c["title"] for c in data["chapters"]] == ["Introduction", sec.title]


def test_without_a_base_url_only_a_preview_feed_is_written_and_the_reason_said(tmp_path):
    out = tmp_path / "out"
    proc = export(out, content=mini_pack(tmp_path / "pack"))
    assert proc.returncode == 0, proc.stderr
    assert not (out / "feed.xml").exists() and (out / "mini.mp3").is_file() and (out / "mini.vtt").is_file()
    notes = [line for line in (proc.stdout + proc.stderr).splitlines() if "feed.xml" in line]
    assert len(notes) == 1 and "--base-url" in notes[0] and "preview-feed.xml" in notes[0], proc.stdout
    item = ET.parse(out / "preview-feed.xml").getroot().find("channel/item")
    assert item.find("enclosure").get("url") == "mini.mp3"  # relative: for local listening


def test_podcast_block_in_guide_yaml_makes_the_feed_publishable_and_options_override_it(tmp_path):
    block = ("podcast:\n  base_url: https://pods.example.org/mini\n  author: Mini team\n"
             "  owner:\n    name: Mini owner\n    email: owner@example.org\n  copyright: 2026 Mini team\n")
    pack = mini_pack(tmp_path / "pack", block)
    out = tmp_path / "out"
    proc = export(out, "--owner-email", "other@example.org", content=pack)
    assert proc.returncode == 0, proc.stderr
    ch = ET.parse(out / "feed.xml").getroot().find("channel")
    assert ch.find("item/enclosure").get("url") == "https://pods.example.org/mini/mini.mp3"
    assert ch.findtext("itunes:owner/itunes:email", namespaces=NS) == "other@example.org"
    assert ch.findtext("itunes:owner/itunes:name", namespaces=NS) == "Mini owner"
    assert ch.findtext("copyright") == "2026 Mini team" and ch.findtext("itunes:author", namespaces=NS) == "Mini team"
    notes = ch.findtext("item/content:encoded", namespaces=NS)
    assert '<a href="https://example.org/a-source">A source</a>' in notes  # sources as links
    report = validate_feed(out / "feed.xml", "https://pods.example.org/mini/feed.xml")
    assert "level A: 0 message(s)" in report and "level AA: 0 message(s)" in report, report
    bad = mini_pack(tmp_path / "bad", block.replace("owner@example.org", "not-an-address"))
    proc = export(tmp_path / "out2", content=bad)
    assert proc.returncode != 0 and "guide.yaml:" in proc.stderr and "podcast.owner.email" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def test_nasty_text_still_gives_a_well_formed_feed(tmp_path):
    from tests.test_content import GUIDE as MINI_GUIDE, make_pack

    pack = make_pack(tmp_path / "pack", **{"guide.yaml": MINI_GUIDE.replace("title: Mini guide",
                                                                           'title: "Fish & Chips <b>]]> \\x01 done"')})
    proc = export(tmp_path / "out", "--base-url", "https://example.org/x/", content=pack)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(tmp_path / "out" / "feed.xml").getroot()
    assert root.find("channel").findtext("title") == "Fish & Chips <b>]]>  done"


# ---------------------------------------------------------------------- audio


@pytest.mark.parametrize("name", [f"{SLUG}.mp3", f"{SLUG}-flag.mp3"])
def test_loudness_and_true_peak_after_encoding(podcast, name):
    lufs, peak = measure(podcast / name)
    assert -20.0 <= lufs <= -18.0, lufs  # -19 LUFS for mono, within 1 LU
    assert peak <= -1.0, peak


def test_mp3_is_mono_speech_at_a_podcast_bitrate(podcast):
    stream = probe(podcast / f"{SLUG}.mp3")["streams"][0]
    assert stream["codec_name"] == "mp3" and stream["channels"] == 1 and stream["sample_rate"] == "44100"
    assert 48_000 <= int(stream["bit_rate"]) <= 96_000


@pytest.mark.parametrize("fmt,loudness,bitrate,target,channels", [
    ("m4a", "mono", None, -19.0, 1), ("m4a", "stereo", None, -16.0, 2), ("mp3", "stereo", "96", -16.0, 2)])
def test_every_format_and_target_is_within_spec_after_encoding(tmp_path, fmt, loudness, bitrate, target, channels):
    out = tmp_path / "out"
    proc = export(out, "--format", fmt, "--loudness", loudness, *(["--bitrate", bitrate] if bitrate else []),
                  content=mini_pack(tmp_path / "pack"))
    assert proc.returncode == 0, proc.stderr
    audio = out / f"mini.{fmt}"
    lufs, peak = measure(audio)
    assert target - 1 <= lufs <= target + 1, lufs
    assert peak <= -1.0, peak
    stream = next(s for s in probe(audio)["streams"] if s["codec_type"] == "audio")
    assert stream["channels"] == channels and stream["sample_rate"] == "44100"
    if bitrate:
        assert int(stream["bit_rate"]) == int(bitrate) * 1000
    chapters = probe(audio, "-show_chapters")["chapters"]
    assert [c["tags"]["title"] for c in chapters] == ["Introduction", "Alpha", "Alpha child", "Beta", "Sources"]
    if fmt == "m4a":
        tags = probe(audio, "-show_format")["format"]["tags"]
        assert tags["title"] == "Mini guide" and tags["album"] == "Mini guide" and tags["artist"]
        assert any(s["codec_type"] == "video" and s["disposition"]["attached_pic"] for s in probe(audio)["streams"])


def test_resampler_leaves_no_images_above_the_old_nyquist():
    from voiceguide import audio as A
    from voiceguide.protocols import Audio
    from voiceguide.render import resample

    rng = np.random.default_rng(1)
    x = (rng.standard_normal(22050 * 2) * 3000).clip(-32768, 32767).astype("<i2")  # white: up to 11.025 kHz

    def above(audio: Audio) -> float:
        y = A.samples(audio).astype(np.float64)
        spec = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(len(y), 1 / audio.sample_rate)
        return spec[f > 11_025].sum() / spec.sum()

    ours = above(resample(Audio(x.tobytes(), 22050), 44100))
    linear = above(A.resample(Audio(x.tobytes(), 22050), 44100))  # the old linear interpolation
    assert ours < 1e-5, ours  # below -50 dB
    t = np.arange(22050) / 22050
    tone = resample(Audio((np.sin(2 * np.pi * 1000 * t) * 10000).astype("<i2").tobytes(), 22050), 44100)
    y = A.samples(tone).astype(np.float64)
    assert len(y) == 44100 and abs(np.sqrt(np.mean(y[1000:-1000] ** 2)) / (10000 / np.sqrt(2)) - 1) < 0.01  # level
    assert linear > 1e-2, linear  # (what the test would catch)


def test_numpy_k_weighting_and_limiter_give_scipys_results():
    """An edit's re-export filters by numpy (loading scipy.signal, and with it scipy.ndimage, took most of its
    time): the K-weighting by FFT convolution is scipy's sosfilt from rest, and the limiter's gain (worked
    out only near the peaks) is scipy.ndimage's moving minimum then moving mean, to far below a float32 step."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    from scipy.signal import sosfilt

    from voiceguide import podcast, render

    rng = np.random.default_rng(7)
    for rate in (22050, 44100, 48000):
        for n in (1, 300, 3 * rate + 7):
            x = rng.standard_normal(n) * 0.3
            assert np.abs(render._k_weight_fft(x, rate) - sosfilt(render._k_filter(rate), x)).max() < 1e-11
    tone = np.sin(2 * np.pi * 30 * np.arange(44100) / 44100)  # below the high-pass: the filter does act
    assert np.abs(render._k_weight_fft(tone, 44100)[22050:]).max() < 0.5
    w = 2 * int(0.003 * 44100) + 1
    for trial in range(200):
        n = int(rng.integers(1, 30000))
        need = np.ones(n)
        k = int(rng.integers(0, 40))
        at = rng.integers(0, n, k)
        if trial % 2:  # in clusters, as a sentence's peaks are
            at = np.clip(at[:3, None] + rng.integers(-300, 300, (1, 12)), 0, n - 1).ravel()
        need[at] = rng.random(len(at))
        need[: int(rng.integers(0, 3))] = 0.5  # at the very ends too
        need[n - int(rng.integers(0, 3)):] = 0.4
        expected = uniform_filter1d(minimum_filter1d(need, w, mode="nearest"), w, mode="nearest")
        assert np.abs(podcast._smoothed_gain(need, w) - expected).max() < 1e-11, trial


def test_mp3_tags_cover_and_chapter_frames_in_order(podcast):
    from mutagen.id3 import ID3

    path = podcast / f"{SLUG}.mp3"
    tags = ID3(str(path))
    assert tags["TIT2"].text[0] == GUIDE.title and tags["TALB"].text[0] == GUIDE.title
    assert tags["TPE1"].text[0] == GUIDE.podcast.author
    assert str(tags["TDRC"].text[0]) == str(GUIDE.last_reviewed.year)
    assert GUIDE.description[:40] in tags.getall("COMM")[0].text[0]
    apic = tags.getall("APIC")[0]
    assert apic.mime == "image/png" and apic.data == (podcast / "cover.png").read_bytes() and apic.type == 3
    # the frames as stored in the file, in file order
    data = path.read_bytes()
    raw = data[: 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))]  # the ID3 tag
    stored = [m.group(1).decode() for m in re.finditer(rb"CHAP.{6}(chp\d+)\x00", raw, re.S)]
    assert stored == [f"chp{i}" for i in range(len(list(GUIDE.walk())) + 2)], stored
    chaps = tags.getall("CHAP")
    by_id = {c.element_id: c for c in chaps}
    starts = [by_id[i].start_time for i in stored]
    assert starts == sorted(starts) and starts[0] == 0
    toc = tags.getall("CTOC")[0]
    assert list(toc.child_element_ids) == stored
    assert raw.index(b"CTOC") < raw.index(b"CHAP")


def test_chapters_match_sections_and_the_chapters_file(podcast):
    from mutagen.id3 import ID3

    tags = ID3(str(podcast / f"{SLUG}.mp3"))
    chaps = sorted(tags.getall("CHAP"), key=lambda c: c.start_time)
    titles = [c.sub_frames["TIT2"].text[0] for c in chaps]
    assert titles == ["Introduction", *[s.title for s in GUIDE.walk()], "Sources"]
    data = json.loads((podcast / f"{SLUG}.chapters.json").read_text())
    starts = [c["startTime"] for c in data["chapters"]]
    assert starts == sorted(starts) and starts[0] == 0
    assert [c["title"] for c in data["chapters"]] == titles
    for c, s in zip(chaps, starts):
        assert abs(c.start_time / 1000 - s) < 0.002
    assert chaps[-1].end_time / 1000 == pytest.approx(duration(podcast / f"{SLUG}.mp3"), abs=0.1)


def _cues(text: str):
    return [tuple(map(_secs, m.groups())) for m in re.finditer(r"(\S+) --> (\S+)", text)]


def _secs(ts: str) -> float:
    h, m, s = ts.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_transcripts_are_in_order_cover_the_audio_and_start_with_the_speech(podcast):
    vtt = (podcast / f"{SLUG}.vtt").read_text()
    srt = (podcast / f"{SLUG}.srt").read_text()
    assert vtt.startswith("WEBVTT\n")
    cues = _cues(vtt)
    assert cues == _cues(srt) and len(cues) > 100
    for (s1, e1), (s2, _) in zip(cues, cues[1:]):
        assert s1 < e1 <= s2 + 1e-3
    total = duration(podcast / f"{SLUG}.mp3")
    assert cues[0][0] < 0.5 and total - 3 < cues[-1][1] <= total + 0.1
    spoken = sum(e - s for s, e in cues)
    assert spoken > 0.6 * total  # cues cover the speech; the rest is the chosen silences
    for line in vtt.splitlines():
        assert len(line) <= 65, line
    assert "Gilteritinib is sold as Xospata." in vtt.replace("\n", " ")
    # the decoded audio is silent just before each cue that follows a pause, and speech starts within 30 ms
    y = np.frombuffer(subprocess.run(["ffmpeg", "-v", "error", "-i", str(podcast / f"{SLUG}.mp3"), "-f", "f32le",
                                      "-"], capture_output=True).stdout, dtype="<f4")
    late = []
    for start, _ in cues:
        i = int(start * 44100)
        if i < 4410 or np.abs(y[i - 4410:i - 441]).max() > 0.003:
            continue  # a cue that continues a sentence
        window = np.abs(y[i - 441:i + 4410])
        late.append((np.argmax(window > 0.003) - 441) / 44.1)
    assert len(late) > 100 and abs(np.median(late)) < 30, np.percentile(late, [0, 50, 100])


def test_cover_art_is_large_enough(podcast):
    from PIL import Image

    img = Image.open(podcast / "cover.png")
    assert img.format == "PNG" and 1400 <= img.size[0] <= 3000 and img.size[0] == img.size[1]
    assert len(img.getcolors(1_000_000) or []) > 2  # the title is drawn on it


# ---------------------------------------------------------------------- incremental


def _counts(stdout: str) -> tuple[int, int]:
    m = re.search(r"rendered (\d+) sentences, \d+ from the cache; encoded (\d+) audio pieces", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2))


def test_unchanged_rerun_renders_and_encodes_nothing_and_an_edit_only_its_piece(podcast, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(default_content_path(), pack)
    out = tmp_path / "out"
    shutil.copytree(podcast, out)  # its caches are the shipped guide's
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")}
    proc = export(out, "--base-url", BASE, "--per-section", content=pack)
    assert proc.returncode == 0, proc.stderr
    assert _counts(proc.stdout) == (0, 0)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")} == before, "an unchanged episode was rewritten"
    f = pack / "sections" / "transplant.yaml"
    f.write_text(f.read_text().replace("A stem cell transplant is another option",
                                       "A stem cell transplant is one more option"))
    proc = export(out, "--base-url", BASE, "--per-section", content=pack)
    assert proc.returncode == 0, proc.stderr
    assert _counts(proc.stdout) == (1, 1)  # one sentence, one piece (shared by both episodes that hold it)
    assert "one more option" in (out / f"{SLUG}.vtt").read_text()
    assert "one more option" in (out / f"{SLUG}-transplant.vtt").read_text()
    changed = {n for n, t in before.items() if (out / n).stat().st_mtime_ns != t}
    assert changed == {f"{SLUG}.mp3", f"{SLUG}-transplant.mp3"}, changed
    lufs, peak = measure(out / f"{SLUG}.mp3")
    assert -20 <= lufs <= -18 and peak <= -1.0


ALPHA_WORDS = ["apple", "birch", "cedar", "daisy", "elm", "fern", "grape", "hazel", "iris", "juniper", "kale"]


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_an_edit_re_encodes_one_piece_and_the_file_is_the_cold_exports(tmp_path, fmt):
    """A chapter is encoded in pieces of a few sentences: editing one sentence re-encodes its piece only,
    and the episode then is, byte for byte, what a cold export of the edited guide writes (at the same
    gain); the pieces join without a sample lost or added, and the pauses at the joins are the ones chosen."""
    from tests.test_content import ALPHA

    body = "".join(f"  - The {w} is sentence {i} of the alpha part.\n" for i, w in enumerate(ALPHA_WORDS, 1))
    alpha = ALPHA.replace("  - One sentence.\n  - Two sentences.\n", body)
    assert alpha != ALPHA
    pack = mini_pack(tmp_path / "pack")
    (pack / "sections" / "alpha.yaml").write_text(alpha)
    out = tmp_path / "out"
    proc = export(out, "--format", fmt, content=pack)
    assert proc.returncode == 0, proc.stderr
    _, pieces = _counts(proc.stdout)
    assert pieces >= 7  # Alpha's 13 sentences alone are 4 pieces
    segments = out / ".cache" / "segments"
    before = set(os.listdir(segments))
    f = pack / "sections" / "alpha.yaml"
    f.write_text(f.read_text().replace("The hazel is sentence 8", "The hazel tree is sentence 8"))
    proc = export(out, "--format", fmt, content=pack)
    assert proc.returncode == 0, proc.stderr
    assert _counts(proc.stdout) == (1, 1)
    new = set(os.listdir(segments)) - before
    assert len(new) == 2 and {Path(n).suffix for n in new} == {".json", "." + ("mp3" if fmt == "mp3" else "aac")}
    assert "The hazel tree is sentence 8" in (out / "mini.vtt").read_text()

    cold = tmp_path / "cold"
    (cold / ".cache").mkdir(parents=True)
    shutil.copy(out / ".cache" / "episodes.json", cold / ".cache")  # the gain the edited run held
    proc = export(cold, "--format", fmt, content=pack)
    assert proc.returncode == 0, proc.stderr
    assert _counts(proc.stdout)[1] == pieces
    for name in ("mini.vtt", "mini.srt", "mini.chapters.json"):
        assert (out / name).read_text() == (cold / name).read_text(), name
    if fmt == "mp3":
        assert (out / "mini.mp3").read_bytes() == (cold / "mini.mp3").read_bytes()
    else:  # the same encoded stream in both files (the MP4 boxes hold a date)
        def stream(path):
            return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy", "-f",
                                   "adts", "-"], capture_output=True, check=True).stdout
        assert stream(out / "mini.m4a") == stream(cold / "mini.m4a")

    # every piece's decoded samples, joined: nothing lost or added at the joins
    y = np.frombuffer(subprocess.run(["ffmpeg", "-v", "error", "-i", str(cold / f"mini.{fmt}"), "-ac", "1",
                                      "-f", "f32le", "-"], capture_output=True, check=True).stdout, dtype="<f4")
    metas = [json.loads(p.read_text()) for p in (cold / ".cache" / "segments").glob("*.json")]
    assert len(y) == sum(m["samples"] for m in metas)
    # the pause after each sentence, at a join or not, is the one chosen (within a codec frame), and silent
    blocks = [b.split("\n") for b in (cold / "mini.vtt").read_text().split("\n\n")[1:] if b.strip()]
    cues = [(_secs(b[0].split(" --> ")[0]), _secs(b[0].split(" --> ")[1]), " ".join(b[1:])) for b in blocks]
    first = next(i for i, c in enumerate(cues) if c[2].startswith("The apple"))
    assert cues[first + 10][2] == "The kale is sentence 11 of the alpha part."
    for (_, e1, _), (s2, _, _) in zip(cues[first:first + 10], cues[first + 1:first + 11]):
        assert 0.35 - 0.002 <= s2 - e1 <= 0.35 + 1152 / 44100 + 0.002, (e1, s2)
        i, j = int(e1 * 44100) + 441, int(s2 * 44100) - 441
        assert np.abs(y[i:j]).max() < 0.003, (e1, s2)


# ---------------------------------------------------------------------- stops and errors


def _children(pid: int, name: str) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            comm = fields[0].split("(", 1)[1]
            ppid = int(fields[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and comm == name:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _start_while_encoding(podcast, tmp_path):
    """An export that has its sentences cached but must encode everything, stopped while ffmpeg runs."""
    out = tmp_path / "out"
    shutil.copytree(podcast, out)
    shutil.rmtree(out / ".cache" / "segments")
    (out / ".cache" / "episodes.json").unlink()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-m", "voiceguide", "export", "--out", str(out), "--rate", "260",
                             "--base-url", BASE, "--per-section"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env,
                            # a shell's background job starts with SIGINT ignored, and Python then never
                            # turns it into KeyboardInterrupt: give the export the default, as a terminal does
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        ffmpegs = _children(proc.pid, "ffmpeg")
        if ffmpegs:
            return proc, ffmpegs, out, tmp, env
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the export never ran ffmpeg: " + (proc.communicate()[1] or ""))


def test_sigkill_while_encoding_leaves_no_ffmpeg_and_the_next_run_cleans_up(podcast, tmp_path):
    before = {p.name: p.read_bytes() for p in podcast.iterdir() if p.is_file()}
    proc, ffmpegs, out, tmp, env = _start_while_encoding(podcast, tmp_path)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in ffmpegs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in ffmpegs), "ffmpeg outlived the killed export"
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert after == {n: b for n, b in before.items() if not n.startswith(".")}, "an output was changed or half-written"
    (out / f".{SLUG}.mp3.part.mp3").write_bytes(b"\0" * 1000)  # what the old export left behind
    (out / f".feed.xml.ab12_x9z").write_bytes(b"<rss")  # what a killed atomic write leaves
    proc = subprocess.run([sys.executable, "-m", "voiceguide", "export", "--out", str(out), "--rate", "260",
                           "--base-url", BASE, "--per-section"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".cache"]
    assert hidden == [], hidden
    assert not [p for p in (out / ".cache").rglob(".*")], "temporary files left in the cache"
    assert list(tmp.iterdir()) == [], "files left in TMPDIR"
    ET.parse(out / "feed.xml")
    lufs, peak = measure(out / f"{SLUG}.mp3")
    assert -20 <= lufs <= -18 and peak <= -1.0


def test_ctrl_c_while_encoding_says_stopped_and_leaves_no_ffmpeg(podcast, tmp_path):
    proc, ffmpegs, out, tmp, env = _start_while_encoding(podcast, tmp_path)
    proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.strip().splitlines()[-1] == "voiceguide: stopped.", stderr
    assert "ffmpeg failed" not in stderr and "Traceback" not in stderr
    assert not any(_alive(p) for p in ffmpegs)
    assert not (out / ".work").exists() and list(tmp.iterdir()) == []


@pytest.mark.parametrize("case", ["no ffmpeg", "unwritable", "bad content", "jobs", "out is a file",
                                  "bad voice", "piper voice", "bad base url"])
def test_clear_one_line_errors(tmp_path, case):
    env = None
    out = tmp_path / "out"
    content = None
    args: list[str] = []
    if case == "no ffmpeg":
        bindir = tmp_path / "bin"
        bindir.mkdir()
        for tool in ("espeak-ng",):
            os.symlink(shutil.which(tool), bindir / tool)
        env = dict(os.environ, PATH=str(bindir))
        expected = "ffmpeg is not installed"
    elif case == "unwritable":
        out = Path("/proc/voiceguide-out")
        expected = "cannot write there"
    elif case == "bad content":
        content = tmp_path / "nothing"
        expected = "content pack not found"
    elif case == "jobs":
        args = ["--jobs", "-1"]
        expected = "--jobs: -1"
    elif case == "out is a file":
        out.write_text("a file")
        expected = "is not a folder"
    elif case == "bad voice":
        args = ["--voice", "nosuchvoice"]
        expected = "espeak has no such voice; its voices here: "
    elif case == "piper voice":
        try:
            from voiceguide.tts import PiperEngine

            PiperEngine()
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"Piper is not installed here: {exc}")
        args = ["--engine", "piper", "--voice", "nosuchvoice"]
        expected = "piper has no such voice; its voices here: en_US-joe-medium"
    else:
        args = ["--base-url", "example.org/aml"]
        expected = "expected an http:// or https:// address"
    proc = subprocess.run([sys.executable, "-m", "voiceguide", "export", "--out", str(out), *args,
                           *(["--content", str(content)] if content else [])], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode != 0 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_one_clock_for_every_export_timestamp():
    from voiceguide.render import clock

    t = 3723.4567  # 1 h 2 min 3.4567 s
    assert clock(t) == "01:02:03.457"  # WebVTT
    assert clock(t, ",") == "01:02:03,457"  # SRT
    assert clock(t, hours=1) == "1:02:03.457"  # SMIL clock values (DAISY, EPUB media:duration)
    assert clock(t, None) == "01:02:03" and clock(59.6, None) == "00:01:00"  # itunes:duration, ncc:totalTime
    assert clock(0.9996) == "00:00:01.000" and clock(36000.0, hours=1) == "10:00:00.000"
