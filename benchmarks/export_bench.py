"""Whole-guide podcast export time (cold cache, encoding included) as a fraction of the episode's length."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from voiceguide.content import load_guide  # noqa: E402
from voiceguide.errors import EngineUnavailable  # noqa: E402
from voiceguide.podcast import export  # noqa: E402


def main() -> None:
    guide = load_guide()
    rows = ["| engine | episode length | export time (cold cache) | ratio | warm re-run |", "|---|---|---|---|---|"]
    for engine in ("espeak", "piper"):
        out = Path(tempfile.mkdtemp(prefix="vg-bench-"))
        try:
            t0 = time.perf_counter()
            export(guide, out, engine=engine, rate=165, progress=lambda i, n: None)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            export(guide, out, engine=engine, rate=165, progress=lambda i, n: None)
            warm = time.perf_counter() - t0
            from mutagen.mp3 import MP3
            length = MP3(str(out / f"{guide.id}.mp3")).info.length
            rows.append(f"| {engine} | {length / 60:.1f} min | {cold:.1f} s | {cold / length:.3f}x | {warm:.1f} s |")
        except EngineUnavailable as exc:
            rows.append(f"| {engine} | not available: {exc} | | | |")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(rows[-1], flush=True)
    record("Podcast export (speed)",
           "Export of the whole shipped guide to MP3 with chapters, transcripts, feed and cover; rendering on all "
           "cores; two-pass loudness normalisation and encoding included. Goals: espeak < 0.05x, Piper < 0.15x.\n\n"
           + "\n".join(rows))


if __name__ == "__main__":
    main()
