"""The echo canceller's reference on the PulseAudio rig, the guide alone: how often the guide's echo is loud in the
microphone while the canceller has no estimate of it (its reference absent or misplaced), how many times it had to
re-place the sink monitor's stream, how far behind real time the microphone's frames were processed, and the
microphone thread's longest stop (stalls: pocketsphinx held the GIL for whole utterances).

The real guide (AudioSpeaker, espeak or Piper) says ten short utterances with 1.5 s between them, as the session does;
an echo path 50 ms late at 0 dB; the real MicListener with the in-process canceller fed by the sink monitor. Prints
one JSON line. Measured for audio.SinkMonitor's backlog rule (docs/benchmarks.md, "Round 2, eighth session").
Usage: python benchmarks/reference_timing.py [espeak|piper]  (from a snapshot: cd there and set PYTHONPATH to it)
"""
import json
import sys
import time

import numpy as np

from voiceguide.asr import get_recognizer
from voiceguide.content import default_content_path, load_guide
from voiceguide.mic import MicListener, frame_level
from voiceguide.rig import private_pulse
from voiceguide.tts import AudioSpeaker

ENGINE = sys.argv[1] if len(sys.argv) > 1 else "piper"
GUIDE = load_guide(default_content_path())
TEXTS = ["Chemotherapy uses strong medicines to kill leukaemia cells.", "Say next, or say main menu.",
         "A stem cell transplant replaces the bone marrow.", "Targeted drugs act on one change in the cells.",
         "You can say repeat, pause, or help."] * 2

with private_pulse() as pulse:
    echo = pulse.echo_path(gain_db=0.0, latency_ms=50)
    speaker = AudioSpeaker.create(GUIDE, engine=ENGINE, rate=170)
    mic = MicListener(get_recognizer(GUIDE, "auto"), speaker, guide=GUIDE, echo_cancel="inprocess")
    aec, rows, process = mic.aec, [], mic.aec.process

    def traced(frame: bytes, t: float) -> bytes:
        out = process(frame, t)
        rows.append((t, time.monotonic(), frame_level(frame), aec.echo_level, aec.learned))
        return out

    aec.process = traced  # the microphone's thread looks it up per frame
    try:
        for text in TEXTS:
            speaker.speak(text)
            time.sleep(1.5)
    finally:
        mic.close()
        speaker.close()
        pulse.remove_echo_path(echo)

lag = [1000 * (done - (t + 0.02)) for t, done, *_ in rows]
stops = np.diff([done for _, done, *_ in rows]) * 1000  # the microphone's thread between two frames (wall clock)
loud = [r for r in rows if r[4] and r[2] > 500]
print(json.dumps({
    "engine": ENGINE, "frames": len(rows),
    "loud_frames_after_learned": len(loud),
    "loud_frames_with_no_echo_estimate": sum(1 for r in loud if r[3] == 0),
    "streams_replaced": aec._retired,
    "mic_behind_ms_p50_p99_max": [round(float(np.percentile(lag, 50))), round(float(np.percentile(lag, 99))),
                                   round(max(lag))],
    "mic_thread_longest_stop_ms": round(float(stops.max())) if len(stops) else None,
    "mic_thread_stops_over_200ms": int((stops > 200).sum()),
    "load": round(float(open("/proc/loadavg").read().split()[0]), 2),
    "utc": time.strftime("%H:%M", time.gmtime())}))
