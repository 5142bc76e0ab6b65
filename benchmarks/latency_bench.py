"""End of the listener's speech to the guide's first audio, measured on virtual audio devices.

A private PulseAudio server gives the real ``voiceguide`` loop a null-sink speaker and a virtual
microphone. Spoken commands (the Piper voice) are played into the microphone each time the guide
listens, while both devices are recorded. With ``--room white|babble`` a noise stream plays into the
microphone all the time, ``--snr`` dB below the commands, as in a kitchen with the radio on. For each
turn: the command is found in the microphone recording (cross-correlation with the clean command), and
the end of speech is its last loud frame; the response is the first loud frame on the speaker after it.
The log's "user" record splits the time into "endpointing and recognition" and "dialog and speech".
Turns the guide took from the noise alone are counted, and whether it acted on any.
Usage: python benchmarks/latency_bench.py [--engine espeak|piper] [--turns N] [--room quiet|white|babble] [--snr DB]
    [--trace FILE] [--no-record]
VOICEGUIDE_MIC_EARLY=off measures the microphone without early endpointing, speculative readings and the gate.
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

import numpy as np  # noqa: E402

from voiceguide.content import load_guide  # noqa: E402
from voiceguide.protocols import Audio  # noqa: E402
from voiceguide.rig import log_records, loud_times, private_pulse, room_noise, samples  # noqa: E402
from voiceguide.tts import PiperEngine, get_engine, render  # noqa: E402

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


def place(recording: Audio, clean: Audio, lo: float, hi: float) -> float:
    """Where (seconds into ``recording``) ``clean`` starts, searched between ``lo`` and ``hi``."""
    x, c = samples(recording), samples(clean)
    a, b = max(0, int(lo * 16000)), min(len(x), int(hi * 16000) + len(c))
    seg = x[a:b]
    if len(seg) < len(c):
        return lo
    size = 1 << int(np.ceil(np.log2(len(seg) + len(c))))
    corr = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(c, size)), size)[: len(seg) - len(c) + 1]
    return (a + int(np.argmax(corr))) / 16000


def loud_edges(audio: Audio) -> tuple[float, float]:
    """Start of the first and end of the last loud 20 ms frame of a clean recording."""
    loud = loud_times(audio, LOUD)
    return loud[0], loud[-1] + 0.02


def run(engine: str, turns: int, room: str = "quiet", snr: float = 10.0, trace: str | None = None) -> dict:
    guide = load_guide()
    voice = PiperEngine(variation=0.0)
    said = {t: render(t, engine=voice, lexicon=guide.lexicon) for t in COMMANDS}
    noise = None if room == "quiet" else room_noise(room, snr, list(said.values()), [voice, get_engine("espeak")])
    with private_pulse() as pulse, tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "turns.jsonl"
        mic, speaker = pulse.record_mic(), pulse.record_speaker()
        background = pulse.play_into_mic(noise, wait=False) if noise else None
        clock = time.time() - time.monotonic()  # log times are wall-clock; recorders count from monotonic
        proc = subprocess.Popen([sys.executable, "-m", "voiceguide", "--input", "voice", "--output", "speech",
                                 "--engine", engine, "--rate", "260", "--timeout", "off", "--log", str(log),
                                 "--state", str(Path(tmp) / "state.json")],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=open(trace, "a") if trace else subprocess.DEVNULL, text=True,
                                env={**os.environ, **({"VOICEGUIDE_MIC_TRACE": "1"} if trace else {})})
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
            if background:
                background.kill()
        mic.stop()
        speaker.stop()
        recs = log_records(log)
    users = [r for r in recs if r["role"] == "user" and r.get("via") == "voice"]
    sound = loud_spans(speaker, gap=0.0)
    recording = mic.audio
    rows, answers = [], []
    for i, (text, started) in enumerate(fed):
        until = fed[i + 1][1] if i + 1 < len(fed) else float("inf")
        # the command on the microphone: where the clean command best matches the recording
        at = mic.t0 + place(recording, said[text], started - 0.2 - mic.t0, started + 1.5 - mic.t0)
        head, tail = loud_edges(said[text])
        speech_start, speech_end = at + head, at + tail
        answers += [u for u in users if speech_start < u["t"] - clock < speech_end + 3.0][:1]
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
    noise_turns = [u for u in users if u not in answers]  # heard when no command was being said, or twice
    acted = [u for u in noise_turns if (u.get("intent") or {}).get("intent", "none") != "none"]
    name = engine if room == "quiet" else f"{engine}, {room} {snr:g} dB room"
    return {"engine": name, "rows": rows, "fed": len(fed), "noise_turns": len(noise_turns), "acted": len(acted)}


def summary(result: dict) -> str:
    lost = [r for r in result["rows"] if r["total"] is None]
    rows = [r for r in result["rows"] if r["total"] is not None]
    if not rows:
        return f"| {result['engine']} | no turn measured | | | | |"
    total = [r["total"] * 1000 for r in rows]
    rec = [r["recognised"] * 1000 for r in rows if r["recognised"] is not None] or [float("nan")]
    spk = [r["speaking"] * 1000 for r in rows if r["speaking"] is not None] or [float("nan")]
    understood = sum(1 for r in rows if r["intent"] != "none")
    noise = f"; {result['noise_turns']} from noise alone, {result['acted']} acted on" if result.get("noise_turns") is not None else ""
    return (f"| {result['engine']} | {len(rows)} answered ({understood} understood), {len(lost)} not{noise} | "
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
    ap.add_argument("--room", choices=["quiet", "white", "babble"], default="quiet",
                    help="noise played into the microphone all the time (default quiet)")
    ap.add_argument("--snr", type=float, default=10.0, help="dB of the commands above the room noise (default 10)")
    ap.add_argument("--trace", metavar="FILE", help="append the guide's stderr, with the microphone's trace "
                    "(a line per phrase), to FILE")
    ap.add_argument("--no-record", action="store_true", help="print the table; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    lines = ["| guide voice | turns | end of speech to first audio, median ms | worst ms | "
             "of which endpointing + recognition, median ms | of which dialog + speech start, median ms |",
             "|---|---|---|---|---|---|"]
    engines, measured = args.engine or ["espeak", "piper"], set()
    for engine in engines:
        result = run(engine, args.turns, args.room, args.snr, args.trace)
        for r in result["rows"]:
            ms = f"{r['total'] * 1000:.0f} ms" if r["total"] is not None else "-"
            print(f"  {result['engine']}: {r['command']!r} -> {r['intent']}: {ms}", flush=True)
        lines.append(summary(result))
        measured.add(result["engine"])
        print(lines[-1], flush=True)
    lines += earlier_rows(measured)
    if args.no_record:
        print("\n".join(lines))
        return
    record(HEADING,
           "The real loop on PulseAudio virtual devices, with the default recogniser (hybrid where Whisper is installed): "
           "Piper-spoken commands into a virtual microphone, the "
           "guide's answer recorded from a null-sink speaker. Goal: first guide audio within 500 ms of the end "
           "of the listener's speech. Times come from the two recordings (20 ms frames; each recording's "
           "clock is placed to within about 20 ms), so the split between recognition and speech is rough. "
           "Each command is found in the microphone recording by cross-correlation with the clean command; "
           "its end of speech is the clean command's last frame above RMS 300. Rows marked \"room\" had "
           "noise playing into the microphone all the time (`--room white|babble --snr DB`, babble: four "
           "unrelated sentences summed); \"from noise alone\" counts turns the guide took when no command "
           "was being said, and \"acted on\" those it gave a meaning. In noise the endpointer's energy "
           "threshold sits above the noise, so its quiet can begin before the command's soft last sounds "
           "end: such turns read short.\n\n"
           + "\n".join(lines))


if __name__ == "__main__":
    main()
