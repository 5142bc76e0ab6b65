"""Podcast export of the shipped guide with espeak: feed, loudness, chapters, transcripts, cache, atomicity."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from voiceguide.content import default_content_path, load_guide

GUIDE = load_guide(default_content_path())
NS = {"itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd", "podcast": "https://podcastindex.org/namespace/1.0"}
SLUG = GUIDE.id


def export(out: Path, *args: str, content: Path | None = None, env=None, timeout=600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "voiceguide", "export", "--out", str(out), "--rate", "260", *args]
    if content:
        cmd += ["--content", str(content)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def podcast(tmp_path_factory):
    out = tmp_path_factory.mktemp("podcast")
    proc = export(out, "--base-url", "https://example.org/aml/")
    assert proc.returncode == 0, proc.stderr
    return out


def measure(path: Path) -> tuple[float, float]:
    """Integrated loudness and true peak, measured by ffmpeg's ebur128 (independent of our normaliser)."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
                           "-f", "null", "-"], capture_output=True, text=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return lufs, peak


def duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True).stdout
    return float(out)


def test_feed_has_every_required_tag(podcast):
    root = ET.parse(podcast / "feed.xml").getroot()
    assert root.tag == "rss" and root.get("version") == "2.0"
    ch = root.find("channel")
    assert ch.findtext("title") == GUIDE.title
    assert ch.findtext("description") and ch.findtext("language") == "en"
    assert ch.find("itunes:image", NS).get("href") == "https://example.org/aml/cover.png"
    assert ch.find("itunes:category", NS).get("text") == "Health & Fitness"
    assert ch.findtext("itunes:explicit", namespaces=NS) == "false"
    assert ch.findtext("itunes:author", namespaces=NS)
    item = ch.find("item")
    assert item.findtext("title") == GUIDE.title
    assert item.find("guid").text == f"voiceguide:{SLUG}" and item.find("guid").get("isPermaLink") == "false"
    assert parsedate_to_datetime(item.findtext("pubDate")).date() == GUIDE.last_reviewed
    enc = item.find("enclosure")
    audio = podcast / f"{SLUG}.mp3"
    assert enc.get("url") == f"https://example.org/aml/{SLUG}.mp3" and enc.get("type") == "audio/mpeg"
    assert int(enc.get("length")) == audio.stat().st_size
    h, m, s = map(int, item.findtext("itunes:duration", namespaces=NS).split(":"))
    assert abs(h * 3600 + m * 60 + s - duration(audio)) <= 2
    types = {t.get("type"): t.get("url") for t in item.findall("podcast:transcript", NS)}
    assert types == {"text/vtt": f"https://example.org/aml/{SLUG}.vtt",
                     "application/x-subrip": f"https://example.org/aml/{SLUG}.srt"}
    assert item.find("podcast:chapters", NS).get("type") == "application/json+chapters"
    for name in ["cover.png", f"{SLUG}.vtt", f"{SLUG}.srt", f"{SLUG}.chapters.json"]:
        assert (podcast / name).is_file() and oct((podcast / name).stat().st_mode & 0o777) == "0o644"


def test_loudness_is_podcast_standard(podcast):
    lufs, peak = measure(podcast / f"{SLUG}.mp3")
    assert -20.0 <= lufs <= -18.0, lufs  # -19 LUFS for mono, within 1 LU
    assert peak <= -1.0, peak


def test_mp3_is_mono_speech_at_a_podcast_bitrate(podcast):
    info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json",
                                      str(podcast / f"{SLUG}.mp3")], capture_output=True, text=True).stdout)
    stream = info["streams"][0]
    assert stream["codec_name"] == "mp3" and stream["channels"] == 1
    assert 48_000 <= int(stream["bit_rate"]) <= 96_000


def test_chapters_match_sections_and_the_chapters_file(podcast):
    from mutagen.id3 import ID3

    tags = ID3(str(podcast / f"{SLUG}.mp3"))
    chaps = sorted(tags.getall("CHAP"), key=lambda c: c.start_time)
    titles = [c.sub_frames["TIT2"].text[0] for c in chaps]
    assert titles == ["Introduction", *[s.title for s in GUIDE.walk()], "Sources"]
    toc = tags.getall("CTOC")[0]
    assert list(toc.child_element_ids) == [c.element_id for c in chaps]
    data = json.loads((podcast / f"{SLUG}.chapters.json").read_text())
    starts = [c["startTime"] for c in data["chapters"]]
    assert starts == sorted(starts) and starts[0] == 0
    assert [c["title"] for c in data["chapters"]] == titles
    for c, s in zip(chaps, starts):
        assert abs(c.start_time / 1000 - s) < 0.002
    assert chaps[-1].end_time / 1000 == pytest.approx(duration(podcast / f"{SLUG}.mp3"), abs=0.6)


def _cues(text: str):
    return [tuple(map(_secs, m.groups())) for m in re.finditer(r"(\S+) --> (\S+)", text)]


def _secs(ts: str) -> float:
    h, m, s = ts.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_transcripts_are_in_order_cover_the_audio_and_have_short_lines(podcast):
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


def test_cover_art_is_large_enough(podcast):
    from PIL import Image

    img = Image.open(podcast / "cover.png")
    assert img.format == "PNG" and img.size[0] >= 1400 and img.size[0] == img.size[1]
    assert len(img.getcolors(1_000_000) or []) > 2  # the title is drawn on it


def test_second_run_renders_nothing_and_an_edit_renders_only_what_changed(podcast, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(default_content_path(), pack)
    out = tmp_path / "out"
    shutil.copytree(podcast, out)  # its cache is the shipped guide's
    proc = export(out, content=pack)
    assert "rendered 0 sentences" in proc.stdout, proc.stdout + proc.stderr
    f = pack / "sections" / "transplant.yaml"
    f.write_text(f.read_text().replace("A stem cell transplant is another option", "A stem cell transplant is one more option"))
    proc = export(out, content=pack)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"rendered 1 sentences, \d+ from the cache", proc.stdout), proc.stdout
    assert "one more option" in (out / f"{SLUG}.vtt").read_text()


def test_killed_export_leaves_the_old_output_intact_and_the_next_run_finishes(podcast, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(podcast, out)
    shutil.rmtree(out / ".cache")  # so the export has real work to be killed in
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    proc = subprocess.Popen([sys.executable, "-m", "voiceguide", "export", "--out", str(out), "--rate", "260",
                             "--base-url", "https://example.org/aml/"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    time.sleep(3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before, "a file was changed or half-written by the killed export"
    cached = len(list((out / ".cache").glob("*.wav")))
    assert cached > 0  # the work done so far was kept
    proc = export(out, "--base-url", "https://example.org/aml/")
    assert proc.returncode == 0
    assert f"{cached} from the cache" in proc.stdout or "from the cache" in proc.stdout
    ET.parse(out / "feed.xml")


def test_nasty_text_still_gives_a_well_formed_feed(tmp_path):
    from tests.test_content import GUIDE as MINI_GUIDE, make_pack

    pack = make_pack(tmp_path / "pack", **{"guide.yaml": MINI_GUIDE.replace("title: Mini guide",
                                                                           'title: "Fish & Chips <b>]]> \\x01 done"')})
    proc = export(tmp_path / "out", content=pack)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(tmp_path / "out" / "feed.xml").getroot()
    assert root.find("channel").findtext("title") == "Fish & Chips <b>]]>  done"
    item = root.find("channel/item")
    assert item.find("enclosure").get("url") == "mini.mp3"  # relative without --base-url


def test_m4a_with_chapters(tmp_path):
    from tests.test_content import make_pack

    proc = export(tmp_path / "out", "--format", "m4a", content=make_pack(tmp_path / "pack"))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-of", "json",
                                      str(tmp_path / "out" / "mini.m4a")], capture_output=True, text=True).stdout)
    assert [c["tags"]["title"] for c in info["chapters"]] == ["Introduction", "Alpha", "Alpha child", "Beta", "Sources"]


def test_per_section_episodes(tmp_path):
    from tests.test_content import make_pack

    out = tmp_path / "out"
    proc = export(out, "--per-section", content=make_pack(tmp_path / "pack"))
    assert proc.returncode == 0, proc.stderr
    items = ET.parse(out / "feed.xml").getroot().findall("channel/item")
    assert [i.findtext("guid") for i in items] == ["voiceguide:mini", "voiceguide:mini-alpha",
                                                  "voiceguide:mini-alpha-child", "voiceguide:mini-beta"]
    assert all((out / i.find("enclosure").get("url")).is_file() for i in items)


@pytest.mark.parametrize("case", ["no ffmpeg", "unwritable", "bad content"])
def test_clear_one_line_errors(tmp_path, case):
    env = None
    out = tmp_path / "out"
    content = None
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
    else:
        content = tmp_path / "nothing"
        expected = "content pack not found"
    proc = subprocess.run([sys.executable, "-m", "voiceguide", "export", "--out", str(out),
                           *(["--content", str(content)] if content else [])], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode != 0 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
