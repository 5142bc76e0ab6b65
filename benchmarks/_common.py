"""Helpers for benchmarks: machine description and updating a section of docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        model = m.group(1).strip() if m else ""
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def record(heading: str, body: str) -> None:
    """Replace the section under ``## heading`` in docs/benchmarks.md with ``body``."""
    text = DOC.read_text(encoding="utf-8")
    stamp = f"Measured {dt.date.today().isoformat()} on {machine()}.\n\n"
    pattern = re.compile(rf"(## {re.escape(heading)}\n\n)(.*?)(?=\n## |\Z)", re.S)
    if not pattern.search(text):
        text += f"\n## {heading}\n\n"
    text = pattern.sub(lambda m: m.group(1) + stamp + body.strip() + "\n", text, count=1)
    DOC.write_text(text, encoding="utf-8")
    print(stamp + body)
