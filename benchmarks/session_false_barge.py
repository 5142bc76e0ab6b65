"""False barge-ins in the real session: `voiceguide` (espeak, voice input, the defaults) driven by keys through its
sections on the PulseAudio rig, an echo path from the speaker into the microphone (50 ms late, about a speaking
voice's level + ECHO_DB), nobody talking. A key is typed once the guide listens and the speaker has been quiet for
1 s, so the guide reads whole passages with its real pauses, tones and prompts (bargein_bench.py reads one long
passage). Every voice turn is false; prints one JSON line (seconds of guide speech, false turns).
Usage: python benchmarks/session_false_barge.py [OUTDIR [SECONDS [ECHO_DB [ENV=VALUE ...]]]] (defaults: a temporary
folder, 300 s, +6 dB)
(from a snapshot: cd there and set PYTHONPATH to it)"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from voiceguide.rig import frame_rms, log_records, private_pulse

args = sys.argv[1:] + [None, None, None][len(sys.argv[1:]):]
out = Path(args[0] or tempfile.mkdtemp(prefix="vg-false-barge-")); out.mkdir(parents=True, exist_ok=True)
seconds, echo_db = float(args[1] or 300), float(args[2] or 6)
extra = dict(a.split("=", 1) for a in sys.argv[4:])
KEYS = ["1", "", "n", "", "n", "", "b", "4", "", "", "m", "5", "", "n", "", "r", "6", "", "p", "3", "", "m", "2", ""]
with private_pulse() as pulse:
    # the guide (espeak at full volume) reaches the mic at about a speaking voice's level (+echo_db)
    pulse.echo_path(gain_db=-10.0 + echo_db, latency_ms=50)
    spk = pulse.record_speaker()
    log = out / "turns.jsonl"
    env = dict(os.environ, VOICEGUIDE_MIC_TRACE="1", **extra)
    proc = subprocess.Popen([sys.executable, "-m", "voiceguide", "--input", "voice", "--output", "speech", "--engine",
                             "espeak", "--timeout", "off", "--log", str(log), "--state", str(out / "state.json")],
                            stdin=subprocess.PIPE, stdout=open(out / "stdout.txt", "w"),
                            stderr=open(out / "stderr.txt", "w"), text=True, env=env)
    t0 = time.monotonic(); k = 0; listens = 0
    try:
        while time.monotonic() - t0 < seconds and proc.poll() is None:
            recs = log_records(log) if log.exists() else []
            n = sum(1 for r in recs if r["role"] == "listen")
            quiet = frame_rms(spk.audio)[-50:]
            if n > listens and len(quiet) == 50 and (quiet < 30).all():  # listening, and the guide quiet for 1 s
                listens = n
                proc.stdin.write(KEYS[k % len(KEYS)] + "\n"); proc.stdin.flush(); k += 1
            time.sleep(0.1)
        proc.stdin.write("q\n"); proc.stdin.flush()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        audio = spk.stop()
rms = frame_rms(audio)
talk = float((rms > 30).sum() * 0.02)
recs = log_records(log)
voice = [r for r in recs if r["role"] == "user" and r.get("via") == "voice"]
print(json.dumps({"echo_db": echo_db, "env": extra, "guide_talk_s": round(talk, 1), "keys": k,
                  "false_turns": [(r["text"], (r.get("intent") or {}).get("intent"), r.get("during_speech")) for r in voice]}))
