"""A scripted hands-free listener on the PulseAudio rig (Piper voice into the virtual microphone, the guide's own
speaker output echoed into it at ECHO dB): talks over the welcome and the sections, pauses, stays quiet 25 s,
continues, asks where it is, skips, asks what FLT3 means, goes to the main menu, leaves. Says a phrase again when
nothing happened within 3 s, as a listener would. Prints the timeline (guide lines, what the listener said and what
the guide took) and the microphone's trace (VOICEGUIDE_MIC_TRACE).
With ``--script list``: opens Targeted Drugs by number, says "number three" while the guide reads its numbered list
of parts (an early answer, as people give), then "number two", answers the question, leaves.
Usage: python benchmarks/voice_walk.py [OUTDIR] [--echo DB] [--engine NAME] [--script walk|list]
(from a snapshot: cd there and set PYTHONPATH to it)"""
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from voiceguide.rig import private_pulse, log_records
from voiceguide.tts import PiperEngine, render
from voiceguide.content import load_guide

out = Path(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else
           tempfile.mkdtemp(prefix="vg-walk-"))
out.mkdir(parents=True, exist_ok=True)
echo_db = float(sys.argv[sys.argv.index("--echo") + 1]) if "--echo" in sys.argv else 0.0
engine = sys.argv[sys.argv.index("--engine") + 1] if "--engine" in sys.argv else None
G = load_guide(None)
piper = PiperEngine(variation=0.0)
# (when, phrase): when = ("guide", regex, delay) -> delay s after a guide line matching regex is logged
#                      ("listen", delay)       -> delay s after the next listening record
#                      ("quiet", seconds)      -> say nothing for that long after the previous phrase
SCRIPT = [(("guide", r"^This guide gives", 3.0), "number three"),
          (("guide", r"^In a stem cell", 2.5), "pause"),
          (("quiet", 25), None),
          (("after", 0.5), "continue"),
          (("guide", r".", 2.0), "where am i"),
          (("guide", r".", 2.0), "skip"),
          (("listen", 1.0), "what does f l t three mean"),
          (("guide", r"FLT3", 1.5), "main menu"),
          (("listen", 1.0), "goodbye"),
          (("listen", 0.8), "yes")]
if "--script" in sys.argv and sys.argv[sys.argv.index("--script") + 1] == "list":
    SCRIPT = [(("guide", r"^This guide gives", 3.0), "number four"),
              (("guide", r"^It has \d+ parts", 3.5), "number three"),
              (("listen", 1.0), "number two"),
              (("listen", 1.0), "yes"),
              (("listen", 1.0), "goodbye"),
              (("listen", 0.8), "yes")]
audio = {p: render(p, engine=piper, lexicon=G.lexicon) for _, p in SCRIPT if p}
with private_pulse() as pulse:
    if echo_db is not None:
        pulse.echo_path(echo_db, 50)
    spk = pulse.record_speaker()
    log = out / "turns.jsonl"
    cmd = [sys.executable, "-m", "voiceguide", "--input", "voice", "--output", "speech", "--timeout", "off",
           "--log", str(log), "--state", str(out / "state.json")] + (["--engine", engine] if engine else [])
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(out / "stdout.txt", "w"),
                            stderr=open(out / "stderr.txt", "w"), env=dict(os.environ, VOICEGUIDE_MIC_TRACE="1"))
    said = []
    t0 = time.time(); seen = 0; last_said = time.time()
    try:
        mark = 0
        for when, phrase in SCRIPT:
            start = mark
            if when[0] == "quiet":
                time.sleep(when[1]); continue
            if when[0] == "after":
                time.sleep(when[1])
            else:
                deadline = time.time() + 90
                hit = None
                while time.time() < deadline and proc.poll() is None and hit is None:
                    recs = log_records(log) if log.exists() else []
                    for r in recs[start:]:
                        if when[0] == "guide" and r["role"] == "guide" and re.search(when[1], r["text"]):
                            hit = r; break
                        if when[0] == "listen" and r["role"] == "listen":
                            hit = r; break
                    time.sleep(0.05)
                if hit is None:
                    print("TRIGGER NOT SEEN", when, phrase); break
                time.sleep(when[-1])
            mark = len(log_records(log)) if log.exists() else 0
            for attempt in range(2):  # a listener says it again when nothing happens
                said.append((phrase if attempt == 0 else phrase + " (again)", time.time()))
                n_users = sum(1 for r in (log_records(log) if log.exists() else []) if r["role"] == "user")
                pulse.play_into_mic(audio[phrase])
                end = time.time() + 3.0
                while time.time() < end and sum(1 for r in log_records(log) if r["role"] == "user") == n_users:
                    time.sleep(0.1)
                if sum(1 for r in log_records(log) if r["role"] == "user") > n_users:
                    break
        time.sleep(5)
    finally:
        if proc.poll() is None:
            proc.kill()
        spk.stop()
recs = log_records(log)
events = [(r["t"], r["role"], r.get("text", ""), (r.get("intent") or {}).get("intent"), r.get("via")) for r in recs]
events += [(t, "LISTENER SAYS", p, None, None) for p, t in said]
for t, role, text, intent, via in sorted(events):
    if role == "listen": continue
    print(f"{t - t0:7.2f} {role:14s} {intent or '':10s} {text[:110]}")
print("rc", proc.returncode)
print(open(out / "stderr.txt").read()[-1500:])
