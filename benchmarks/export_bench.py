"""Podcast export speed: espeak-ng and Piper side by side in one run, on the whole shipped guide.

For each engine: a cold export (empty cache: rendering, measuring, encoding, tags, feeds), an unchanged
re-run, and a re-run after one sentence was edited. Wall time and CPU time as a fraction of the episode's
length. Cold exports run in a child process, so their CPU time is the whole process tree's (the export,
espeak-ng, ffmpeg: user + system, from the kernel's accounting of reaped children); the machine's load
average is printed beside every figure: on a shared machine the wall times mean little without it.

The unchanged re-run and the edited one run in a child process too (the code under test, its caches
warm from the cold export): wall time and CPU time of the whole process tree (the export, espeak-ng or
Piper, ffmpeg), measured in the child around the two exports only.

With ``--baseline REV`` each engine's exports are also run with the code of git revision REV (its
``voiceguide`` folder unpacked into a temporary folder and put first on PYTHONPATH), old and new in
turn, on the same content and machine, so the two can be compared in one run.

    python benchmarks/export_bench.py [--engines espeak,piper] [--baseline REV] [--repeat N] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from voiceguide.content import default_content_path, load_guide  # noqa: E402
from voiceguide.errors import EngineUnavailable  # noqa: E402
from voiceguide.tts import get_engine, split_sentences  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://example.org/aml/"

_CHILD = r"""
import json, sys
from pathlib import Path
import voiceguide
from voiceguide.content import load_guide
from voiceguide import podcast
engine, pack, out, base_url = sys.argv[1:5]
guide = load_guide(pack)
show = podcast.show_of(guide, base_url=base_url) if hasattr(podcast, "show_of") else \
    podcast.Show.of(guide, base_url=base_url)  # the code before show_of
stats = podcast.export(guide, Path(out), engine=engine, rate=165, progress=lambda i, n: None, show=show,
                       say=lambda s: None)
print(json.dumps({"code": voiceguide.__file__, "rendered": stats.rendered, "encoded": stats.encoded}))
"""

_RERUNS = r"""
import json, resource, sys, time
from pathlib import Path
import voiceguide
from voiceguide.content import load_guide
from voiceguide import podcast
engine, pack, edited, out, base_url = sys.argv[1:6]

def cpu():
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

report = {"code": voiceguide.__file__}
for name, folder in (("unchanged", pack), ("edited", edited)):
    guide = load_guide(folder)
    show = podcast.show_of(guide, base_url=base_url) if hasattr(podcast, "show_of") else \
        podcast.Show.of(guide, base_url=base_url)
    t0, c0 = time.perf_counter(), cpu()
    stats = podcast.export(guide, Path(out), engine=engine, rate=165, progress=lambda i, n: None, show=show,
                           say=lambda s: None)
    report[name] = {"wall": time.perf_counter() - t0, "cpu": cpu() - c0, "rendered": stats.rendered,
                    "encoded": stats.encoded}
print(json.dumps(report))
"""


def children_cpu() -> float:
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return b.ru_utime + b.ru_stime


def cold_in_child(code: Path, engine: str, pack: Path, out: Path) -> tuple[float, float, dict]:
    """A cold export by the code in ``code`` (a folder holding ``voiceguide``), in a child process:
    wall seconds, CPU seconds of the whole process tree, and what it reported."""
    env = dict(os.environ, PYTHONPATH=str(code))
    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.run([sys.executable, "-c", _CHILD, engine, str(pack), str(out), BASE_URL],
                          capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    wall, used = time.perf_counter() - t0, children_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"cold export ({engine}, {code}) failed: {proc.stderr.strip().splitlines()[-1:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if not info["code"].startswith(str(code)):
        raise SystemExit(f"the child ran {info['code']}, not the code in {code}")
    return wall, used, info


def reruns_in_child(code: Path, engine: str, pack: Path, edited: Path, out: Path) -> dict:
    """An unchanged re-run and a re-run after one edited sentence, by the code in ``code``, in a child
    process: for each, wall and CPU seconds (whole process tree) and what it reported."""
    env = dict(os.environ, PYTHONPATH=str(code))
    proc = subprocess.run([sys.executable, "-c", _RERUNS, engine, str(pack), str(edited), str(out), BASE_URL],
                          capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise SystemExit(f"re-runs ({engine}, {code}) failed: {proc.stderr.strip().splitlines()[-1:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if not info["code"].startswith(str(code)):
        raise SystemExit(f"the child ran {info['code']}, not the code in {code}")
    return info


def baseline_code(rev: str, into: Path) -> Path:
    """The ``voiceguide`` folder of git revision ``rev``, unpacked into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "voiceguide"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def edit_one_sentence(pack: Path) -> str:
    """Change one sentence of the pack's text in its YAML file; return the new sentence."""
    guide = load_guide(pack)
    for sec in guide.walk():
        for para in sec.body:
            for sentence in split_sentences(para):
                path = Path(sec.file)
                text = path.read_text(encoding="utf-8")
                if text.count(sentence) == 1 and sentence.endswith("."):
                    new = sentence[:-1] + ", as a rule."
                    path.write_text(text.replace(sentence, new), encoding="utf-8")
                    return new
    raise SystemExit("no sentence to edit found")


def episode_length(out: Path, guide) -> float:
    from mutagen.mp3 import MP3

    return MP3(str(out / f"{guide.id}.mp3")).info.length


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="espeak,piper")
    ap.add_argument("--baseline", metavar="REV", help="also time cold exports by the code of this git revision")
    ap.add_argument("--repeat", type=int, default=1, metavar="N", help="cold exports per engine and code (default 1)")
    ap.add_argument("--no-record", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="vg-bench-"))
    codes = [("new", ROOT)]
    if args.baseline:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline], capture_output=True,
                             text=True, check=True).stdout.strip()
        codes.insert(0, (f"old ({rev})", baseline_code(args.baseline, scratch / "baseline")))
    rows = ["| engine | code | episode | cold export: wall / CPU (whole process tree) | ratio wall / CPU | "
            "load average before | unchanged re-run: wall / CPU | one sentence edited: wall / CPU |",
            "|---|---|---|---|---|---|---|---|"]
    try:
        for engine in args.engines.split(","):
            try:
                get_engine(engine)
            except EngineUnavailable as exc:
                rows.append(f"| {engine} | | not available: {exc} | | | | | |")
                print(rows[-1], flush=True)
                continue
            pack, edited = scratch / "pack", scratch / "edited"
            for folder in (pack, edited):
                shutil.rmtree(folder, ignore_errors=True)
                shutil.copytree(default_content_path(), folder)
            edit_one_sentence(edited)
            guide = load_guide(pack)
            for n in range(args.repeat):
                for label, code in (codes if n % 2 == 0 else codes[::-1]):  # old, new, new, old, ...
                    out = scratch / "out"
                    shutil.rmtree(out, ignore_errors=True)
                    load = os.getloadavg()[0]
                    wall, used, info = cold_in_child(code, engine, pack, out)
                    length = episode_length(out, guide)
                    after = "- | -"
                    if n == args.repeat - 1:  # the last cold run of each code: the re-runs too
                        load2 = os.getloadavg()[0]
                        r = reruns_in_child(code, engine, pack, edited, out)
                        u, e = r["unchanged"], r["edited"]
                        after = (f"{u['wall']:.2f} s / {u['cpu']:.2f} s ({u['rendered']} rendered, {u['encoded']} "
                                 f"encoded) | {e['wall']:.2f} s / {e['cpu']:.2f} s = {100 * e['wall'] / wall:.1f}% "
                                 f"of cold ({e['rendered']} rendered, {e['encoded']} encoded; load {load2:.1f})")
                    rows.append(f"| {engine} | {label} | {length / 60:.1f} min, {info['rendered']} sentences, "
                                f"{info['encoded']} encoded | {wall:.1f} s / {used:.1f} s | "
                                f"{wall / length:.3f}x / {used / length:.3f}x | {load:.1f} | {after} |")
                    print(rows[-1], flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    body = ("Export of the whole shipped guide to MP3 (64 kbps mono, -19 LUFS) with chapters, tags, transcripts, "
            f"feed and cover; rendering and encoding on all {os.cpu_count()} cores. Goals: cold export espeak <= "
            "0.02x and Piper <= 0.10x of the episode's length; unchanged re-run < 2 s; one edited sentence < 10% "
            "of a cold run. Encoded: what the code encodes as a unit (before 2026-12-02 a chapter, since then a piece "
            "of 4 sentences). Every export runs in a child process: CPU is the whole process tree's (the export, "
            "espeak-ng, ffmpeg), user + system. Load average: 1-minute, read before each cold export (and "
            "before the re-runs)"
            + (f"; old and new code run in turn ({args.baseline})" if args.baseline else "") + ".\n\n"
            + "\n".join(rows))
    if args.no_record:
        print(body)
    else:
        record("Podcast export (speed)", body)


if __name__ == "__main__":
    main()
