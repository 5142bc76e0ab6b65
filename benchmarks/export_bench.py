"""Podcast export speed: espeak-ng and Piper side by side in one run, on the whole shipped guide.

For each engine: a cold export (empty cache: rendering, measuring, encoding, tags, feeds), an unchanged
re-run, and a re-run after one sentence was edited. Wall time and CPU time (this process and its
children: espeak-ng, ffmpeg) as a fraction of the episode's length. The machine's load average is
printed beside them: on a shared machine the wall times mean little without it.

    python benchmarks/export_bench.py [--engines espeak,piper] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from voiceguide.content import default_content_path, load_guide  # noqa: E402
from voiceguide.errors import EngineUnavailable  # noqa: E402
from voiceguide.podcast import Show, export  # noqa: E402
from voiceguide.tts import split_sentences  # noqa: E402


def cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def timed(fn):
    t0, c0 = time.perf_counter(), cpu()
    stats = fn()
    return time.perf_counter() - t0, cpu() - c0, stats


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="espeak,piper")
    ap.add_argument("--no-record", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    rows = ["| engine | episode | cold export: wall / CPU | ratio wall / CPU | unchanged re-run | "
            "one sentence edited | load average at start |", "|---|---|---|---|---|---|---|"]
    quiet = lambda i, n: None  # noqa: E731
    for engine in args.engines.split(","):
        root = Path(tempfile.mkdtemp(prefix="vg-bench-"))
        try:
            pack = root / "pack"
            shutil.copytree(default_content_path(), pack)
            out = root / "out"
            guide = load_guide(pack)
            show = Show.of(guide, base_url="https://example.org/aml/")
            load = os.getloadavg()[0]

            def run(g=guide):
                return export(g, out, engine=engine, rate=165, progress=quiet, show=show, say=lambda s: None)

            cold, cold_cpu, s1 = timed(run)
            warm, _, s2 = timed(run)
            edit_one_sentence(pack)
            edited = load_guide(pack)
            edit, _, s3 = timed(lambda: run(edited))
            from mutagen.mp3 import MP3

            length = MP3(str(out / f"{guide.id}.mp3")).info.length
            rows.append(f"| {engine} | {length / 60:.1f} min, {s1.rendered} sentences, {s1.encoded} segments | "
                        f"{cold:.1f} s / {cold_cpu:.1f} s | {cold / length:.3f}x / {cold_cpu / length:.3f}x | "
                        f"{warm:.2f} s ({s2.rendered} rendered, {s2.encoded} encoded) | "
                        f"{edit:.2f} s = {100 * edit / cold:.1f}% of cold ({s3.rendered} rendered, "
                        f"{s3.encoded} encoded) | {load:.1f} |")
        except EngineUnavailable as exc:
            rows.append(f"| {engine} | not available: {exc} | | | | | |")
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(rows[-1], flush=True)
    body = ("Export of the whole shipped guide to MP3 (64 kbps mono, -19 LUFS) with chapters, tags, transcripts, "
            "both feeds' worth of files for the whole episode, and cover; rendering and encoding on all cores. "
            "Goals: cold export espeak <= 0.02x and Piper <= 0.10x of the episode's length; unchanged re-run "
            "< 2 s; one edited sentence < 10% of a cold run. CPU time counts this process and its children "
            "(espeak-ng, ffmpeg).\n\n" + "\n".join(rows))
    if args.no_record:
        print(body)
    else:
        record("Podcast export (speed)", body)


if __name__ == "__main__":
    main()
