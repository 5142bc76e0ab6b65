"""End of the listener's speech to the guide's first audio, measured on virtual audio devices.

A private PulseAudio server gives the real ``voiceguide`` loop a null-sink speaker and a virtual
microphone. Spoken commands (the Piper voice) are played into the microphone each time the guide
listens, while both devices are recorded. For each turn: the end of speech is the last loud frame of
the command on the microphone; the response is the first loud frame on the speaker after it. The
log's "user" record splits the time into "endpointing and recognition" and "dialog and speech".
Usage: python benchmarks/latency_bench.py [--engine espeak|piper] [--turns N]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DOC, record  # noqa: E402

from voiceguide.content import load_guide  # noqa: E402
from voiceguide.rig import log_records, private_pulse  # noqa: E402
from voiceguide.tts import PiperEngine, render  # noqa: E402

COMMANDS = ["number two", "where am I", "go back", "tell me about transplants", "repeat that", "main menu"]
LOUD = 300.0  # RMS of a 20 ms frame that counts as sound


def loud_spans(recorder, gap: float = 0.35) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches of sound separated by at least ``gap`` seconds of quiet."""
    spans: list[list[float]] = []
    for t in recorder.loud_times(LOUD):
        if spans and t - spans[-1][1] <= gap:
            spans[-1][1] = t + 0.02
        else:
            spans.append([t, t + 0.02])
    return [(a, b) for a, b in spans]


def run(engine: str, turns: int) -> dict:
    guide = load_guide()
    voice = PiperEngine(variation=0.0)
    said = {t: render(t, engine=voice, lexicon=guide.lexicon) for t in COMMANDS}
    with private_pulse() as pulse, tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "turns.jsonl"
        mic, speaker = pulse.record_mic(), pulse.record_speaker()
        clock = time.time() - time.monotonic()  # log times are wall-clock; recorders count from monotonic
        proc = subprocess.Popen([sys.executable, "-m", "voiceguide", "--input", "voice", "--output", "speech",
                                 "--engine", engine, "--rate", "260", "--timeout", "off", "--log", str(log),
                                 "--state", str(Path(tmp) / "state.json")],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ))
        fed = []  # (command, monotonic time paplay started)
        try:
            listens = 0
            deadline = time.monotonic() + 120 + 40 * turns
            while proc.poll() is None and time.monotonic() < deadline and len(fed) < turns:
                recs = log_records(log)
                n = sum(1 for r in recs if r["role"] == "listen")
                if n > listens:
                    listens = n
                    time.sleep(1.2 if not fed else 0.6)  # the cue; the first turn also calibrates the microphone
                    text = COMMANDS[len(fed) % len(COMMANDS)]
                    fed.append((text, time.monotonic()))
                    pulse.play_into_mic(said[text])
                time.sleep(0.05)
            # let the last answer start, then leave by key
            end_wait = time.monotonic() + 20
            while time.monotonic() < end_wait and sum(1 for r in log_records(log) if r["role"] == "listen") <= listens:
                time.sleep(0.1)
            proc.stdin.write("q\n")
            proc.stdin.flush()
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        mic.stop()
        speaker.stop()
        recs = log_records(log)
    users = [r for r in recs if r["role"] == "user" and r.get("via") == "voice"]
    spoken = loud_spans(mic)
    sound = loud_spans(speaker, gap=0.0)
    rows = []
    for i, (text, started) in enumerate(fed):
        until = fed[i + 1][1] if i + 1 < len(fed) else float("inf")
        # the command's sound on the microphone: every stretch between feeding it and the next command
        mine = [s for s in spoken if started - 0.1 <= mic.t0 + s[0] < until]
        if not mine:
            continue
        speech_start, speech_end = mic.t0 + mine[0][0], mic.t0 + mine[-1][1]
        if any(speech_start < speaker.t0 + s[0] < speech_end for s in sound):
            rows.append({"command": text, "total": None, "intent": "cut off mid-phrase"})
            continue
        reply = [s for s in sound if speech_end < speaker.t0 + s[0] < min(until, speech_end + 10)]
        if not reply:
            rows.append({"command": text, "total": None, "intent": "no answer"})
            continue
        first_audio = speaker.t0 + reply[0][0]
        heard = [u for u in users if speech_end - 0.5 < u["t"] - clock < first_audio + 0.5]
        recognised = heard[0]["t"] - clock if heard else None
        intent = (heard[0].get("intent") or {}).get("intent", "none") if heard else "none"
        rows.append({"command": text, "total": first_audio - speech_end, "intent": intent,
                     "recognised": None if recognised is None else recognised - speech_end,
                     "speaking": None if recognised is None else first_audio - recognised})
    return {"engine": engine, "rows": rows, "fed": len(fed)}


def summary(result: dict) -> str:
    lost = [r for r in result["rows"] if r["total"] is None]
    rows = [r for r in result["rows"] if r["total"] is not None]
    if not rows:
        return f"| {result['engine']} | no turn measured | | | | |"
    total = [r["total"] * 1000 for r in rows]
    rec = [r["recognised"] * 1000 for r in rows if r["recognised"] is not None] or [float("nan")]
    spk = [r["speaking"] * 1000 for r in rows if r["speaking"] is not None] or [float("nan")]
    understood = sum(1 for r in rows if r["intent"] != "none")
    return (f"| {result['engine']} | {len(rows)} answered ({understood} understood), {len(lost)} not | "
            f"{statistics.median(total):.0f} | "
            f"{max(total):.0f} | {statistics.median(rec):.0f} | {statistics.median(spk):.0f} |")


HEADING = "End of speech to first guide audio"


def earlier_rows(skip: set[str]) -> list[str]:
    """The table rows of engines not measured in this run, kept from docs/benchmarks.md with their date."""
    m = re.search(rf"## {HEADING}\n\nMeasured (\S+) on [^\n]*\n(.*?)(?=\n## |\Z)", DOC.read_text(encoding="utf-8"), re.S)
    if not m:
        return []
    date, body = m.groups()
    rows = []
    for line in body.splitlines():
        if not line.startswith("| ") or line.startswith(("| guide voice", "|---")):
            continue
        name = line[2:].split(" |")[0].split(" (")[0]
        if name not in skip:
            rows.append(line if "(measured " in line else line.replace(f"| {name} |", f"| {name} (measured {date}) |", 1))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", action="append", choices=["espeak", "piper"], help="speech engine(s) of the guide")
    ap.add_argument("--turns", type=int, default=len(COMMANDS))
    args = ap.parse_args()
    lines = ["| guide voice | turns | end of speech to first audio, median ms | worst ms | "
             "of which endpointing + recognition, median ms | of which dialog + speech start, median ms |",
             "|---|---|---|---|---|---|"]
    engines = args.engine or ["espeak", "piper"]
    for engine in engines:
        result = run(engine, args.turns)
        for r in result["rows"]:
            ms = f"{r['total'] * 1000:.0f} ms" if r["total"] is not None else "-"
            print(f"  {engine}: {r['command']!r} -> {r['intent']}: {ms}", flush=True)
        lines.append(summary(result))
        print(lines[-1], flush=True)
    lines += earlier_rows(set(engines))
    record(HEADING,
           "The real loop on PulseAudio virtual devices, with the default recogniser (hybrid where Whisper is installed): "
           "Piper-spoken commands into a virtual microphone, the "
           "guide's answer recorded from a null-sink speaker. Goal: first guide audio within 500 ms of the end "
           "of the listener's speech. Times come from the two recordings (20 ms frames; each recording's "
           "clock is placed to within about 20 ms), so the split between recognition and speech is rough.\n\n"
           + "\n".join(lines))


if __name__ == "__main__":
    main()
