"""End to end on virtual audio devices: the real `voiceguide` loop, speech in and speech out.

PulseAudio runs with a null-sink speaker and a virtual microphone. Spoken commands (Piper voice) are
played into the microphone whenever the guide starts listening; the log and the speaker recording
show that it navigated correctly and never listened while it was talking.
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
from voiceguide.tts import PiperEngine, get_engine, render

GUIDE = load_guide(default_content_path())


def _records(log):
    if not log.exists():
        return []
    return [json.loads(l) for l in log.read_text().splitlines() if l.strip()]


@pytest.mark.audio
def test_voice_loop_navigates_by_speech_on_virtual_devices(pulse, tmp_path):
    pytest.importorskip("pyaudio", reason="PyAudio is needed for the microphone (pip install 'voiceguide[mic]')")
    try:
        piper = PiperEngine(variation=0.0)  # repeatable speech: Piper otherwise samples noise
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    # What the listener says at each step, and what they say instead if the guide did not catch it.
    steps = [["number two", "number two please", "option two"]]
    audio = {t: render(t, engine=piper, lexicon=GUIDE.lexicon) for step in steps for t in step}
    log = tmp_path / "turns.jsonl"
    speaker = pulse.record_speaker()
    proc = subprocess.Popen([sys.executable, "-m", "voiceguide", "--input", "voice", "--output", "speech",
                             "--engine", "espeak", "--rate", "450", "--timeout", "off", "--log", str(log),
                             "--state", str(tmp_path / "state.json")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        answered = 0  # how many times the guide has listened and been answered
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            records = _records(log)
            listens = sum(1 for r in records if r["role"] == "listen")
            heard_two = any(r["role"] == "user" and (r.get("intent") or {}).get("intent") == "number" for r in records)
            if heard_two and listens > answered:
                # keys work alongside voice: leave with q while the microphone is open
                time.sleep(1.0)
                proc.stdin.write("q\n")
                proc.stdin.flush()
                answered = 10**6
            elif listens > answered:
                understood = sum(1 for r in records if r["role"] == "user" and (r.get("intent") or {}).get("intent", "none") != "none")
                tries = answered - sum(1 for r in records if r["role"] == "user" and (r.get("intent") or {}).get("intent", "none") != "none")
                step = steps[min(understood, len(steps) - 1)]
                time.sleep(3.0)  # the listening cue, opening the microphone, and its noise calibration
                pulse.play_into_mic(audio[step[min(max(tries, 0), len(step) - 1)]])
                answered += 1
                fed_at, users_then = time.monotonic(), sum(1 for r in records if r["role"] == "user")
            elif answered and answered < 10**6 and time.monotonic() - fed_at > 12 and \
                    sum(1 for r in _records(log) if r["role"] == "user") == users_then:
                pulse.play_into_mic(audio[steps[0][0]])  # not heard at all (mic still opening): say it again
                fed_at = time.monotonic()
            time.sleep(0.2)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    speaker.stop()
    records = _records(log)
    users = [r for r in records if r["role"] == "user"]
    understood = [u for u in users if (u.get("intent") or {}).get("intent", "none") != "none"]
    assert [u["intent"]["intent"] for u in understood] == ["number", "stop"], users
    assert understood[0]["intent"]["target"] == "2" and understood[0]["via"] == "voice"
    assert understood[1]["via"] == "keys"
    assert len(users) <= 4  # at most a couple of retries
    guide_lines = [r["text"] for r in records if r["role"] == "guide"]
    assert "More Chemotherapy." in guide_lines
    assert guide_lines[-1].startswith("Goodbye.")
    # never listened while talking: every listen record comes after the guide lines before it
    for i, r in enumerate(records):
        if r["role"] == "listen":
            assert all(p["t"] <= r["t"] for p in records[:i] if p["role"] == "guide")
    assert speaker.loud_times(), "no speech came out of the speaker"
    assert json.loads((tmp_path / "state.json").read_text())["guides"][GUIDE.id]["section"] == "chemotherapy"
