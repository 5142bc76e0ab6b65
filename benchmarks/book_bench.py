"""Talking-book export time (EPUB 3 and DAISY 2.02 of the shipped guide) as a fraction of the book's audio.

Cold: an empty output folder (every sentence rendered, every MP3 encoded). Warm: the same export again
(sentences and MP3s from the cache; planning, timing, XML and packaging only). Engine espeak, 165 wpm.
Wall time and CPU time (this process and the children it waited for: espeak-ng, ffmpeg; user + system),
with the load average read before each cold export: on a shared machine the wall time needs it.
"""

from __future__ import annotations

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

from voiceguide.content import load_guide  # noqa: E402
from voiceguide.talkingbook import book_path, export_book  # noqa: E402


def audio_seconds(path: Path) -> float:
    """Total length of the book's MP3s, measured by ffprobe (in the EPUB: after unzipping)."""
    if path.suffix == ".epub":
        import zipfile

        tmp = Path(tempfile.mkdtemp(prefix="vg-book-bench-"))
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith(".mp3")]
                z.extractall(tmp, names)
            return sum(_probe(tmp / n) for n in names)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return sum(_probe(p) for p in path.glob("*.mp3"))


def _probe(p: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(p)],
                         capture_output=True, text=True).stdout
    return float(out)


def cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def main() -> None:
    guide = load_guide()
    rows = ["| format | audio | cold export: wall / CPU | cold ratio: wall / CPU | load average before | warm export | "
            "warm ratio | sentences rendered cold / warm |", "|---|---|---|---|---|---|---|---|"]
    quiet = lambda i, n: None  # noqa: E731
    for fmt in ("epub3", "daisy202"):
        out = Path(tempfile.mkdtemp(prefix="vg-book-bench-"))
        try:
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), cpu()
            cold_stats = export_book(guide, out, fmt, engine="espeak", rate=165, progress=quiet)
            cold, cold_cpu = time.perf_counter() - t0, cpu() - c0
            t0 = time.perf_counter()
            warm_stats = export_book(guide, out, fmt, engine="espeak", rate=165, progress=quiet)
            warm = time.perf_counter() - t0
            length = audio_seconds(book_path(guide, out, fmt))
            rows.append(f"| {fmt} | {length / 60:.1f} min | {cold:.1f} s / {cold_cpu:.1f} s | {cold / length:.3f}x / "
                        f"{cold_cpu / length:.3f}x | {load:.1f} | {warm:.2f} s | "
                        f"{warm / length:.4f}x | {cold_stats.rendered} / {warm_stats.rendered} |")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(rows[-1], flush=True)
    record("Talking-book export (speed)",
           "Export of the whole shipped guide as an EPUB 3 with Media Overlays and as a DAISY 2.02 book "
           f"(espeak, 165 wpm, rendering and encoding on all {os.cpu_count()} cores), each into an empty folder "
           "(cold), then again into the same folder (warm: sentences and MP3s come from the cache). Ratio = "
           "export time / length of the book's audio (ffprobe); CPU counts this process and the tools it ran (user + "
           "system). Run by `scripts/bench book_bench`. Load average: 1-minute, before each cold export (other "
           "jobs shared the cores; on an idle machine expect less wall time).\n\n"
           + "\n".join(rows))


if __name__ == "__main__":
    main()
