"""End to end on virtual audio devices: the real `voiceguide` loop, speech in and speech out.

PulseAudio runs with a null-sink speaker and a virtual microphone. Spoken commands (Piper voice) are
played into the microphone whenever the guide starts listening (another phrasing when it did not catch
one); the log and the speaker recording show that it navigated and left by voice, and never listened
while it was talking.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from voiceguide.content import default_content_path, load_guide
from voiceguide.errors import EngineUnavailable
from voiceguide.rig import log_records
from voiceguide.tts import PiperEngine, render

GUIDE = load_guide(default_content_path())


@pytest.mark.audio
def test_voice_loop_navigates_by_speech_on_virtual_devices(pulse, tmp_path):
    pytest.importorskip("pyaudio", reason="PyAudio is needed for the microphone (pip install 'voiceguide[mic]')")
    try:
        piper = PiperEngine(variation=0.0)  # repeatable speech: Piper otherwise samples noise
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    # What the listener says at each step; what they say instead when the guide did not catch it.
    steps = [["number two", "number two please", "option two"], ["stop the guide", "that is all", "goodbye"]]
    audio = {t: render(t, engine=piper, lexicon=GUIDE.lexicon) for step in steps for t in step}
    log = tmp_path / "turns.jsonl"
    speaker = pulse.record_speaker()
    proc = subprocess.Popen([sys.executable, "-m", "voiceguide", "--input", "voice", "--output", "speech",
                             "--engine", "espeak", "--rate", "450", "--timeout", "off", "--log", str(log),
                             "--state", str(tmp_path / "state.json")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        listens, fed_at, said, tries, understood = 0, None, 0, [0] * len(steps), 0
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            records = log_records(log)
            users = [r for r in records if r["role"] == "user"]
            understood = sum(1 for r in users if (r.get("intent") or {}).get("intent", "none") != "none")
            n = sum(1 for r in records if r["role"] == "listen")
            if understood >= len(steps):
                break  # it should be saying goodbye and leaving now
            if n > listens:
                listens = n
                step = steps[understood]
                if tries[understood] >= len(step):
                    break  # not understood after every phrasing: the assertions below say so
                time.sleep(1.2 if not said else 0.6)  # the cue; the first turn also calibrates the microphone
                pulse.play_into_mic(audio[step[tries[understood]]])
                tries[understood] += 1
                said, fed_at, heard_then = said + 1, time.monotonic(), len(users)
            elif fed_at and time.monotonic() - fed_at > 12 and len(users) == heard_then:
                pulse.play_into_mic(audio[steps[min(understood, len(steps) - 1)][0]])  # not heard at all: again
                fed_at = time.monotonic()
            time.sleep(0.1)
        if understood < len(steps) and proc.poll() is None:
            proc.stdin.write("q\n")  # keys always work: leave, so the assertions can report what was heard
            proc.stdin.flush()
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    speaker.stop()
    records = log_records(log)
    users = [r for r in records if r["role"] == "user"]
    understood = [u for u in users if (u.get("intent") or {}).get("intent", "none") != "none"]
    heard = [(u["text"], (u.get("intent") or {}).get("intent"), u["via"]) for u in users]
    assert [u["intent"]["intent"] for u in understood] == ["number", "stop"], heard
    assert understood[0]["intent"]["target"] == "2"
    assert [u["via"] for u in understood] == ["voice", "voice"], heard  # left by voice, not by the key
    assert len(users) <= 6  # at most a couple of retries per step
    guide_lines = [r["text"] for r in records if r["role"] == "guide"]
    assert "More Chemotherapy." in guide_lines
    assert guide_lines[-1].startswith("Goodbye.")
    # never listened while talking: every listen record comes after the guide lines before it
    for i, r in enumerate(records):
        if r["role"] == "listen":
            assert all(p["t"] <= r["t"] for p in records[:i] if p["role"] == "guide")
    assert speaker.loud_times(), "no speech came out of the speaker"
    assert json.loads((tmp_path / "state.json").read_text())["guides"][GUIDE.id]["section"] == "chemotherapy"
