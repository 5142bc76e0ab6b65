"""End to end on virtual audio devices: the real `voiceguide` loop, speech in and speech out.

PulseAudio runs with a null-sink speaker and a virtual microphone. Spoken commands (Piper voice) are
played into the microphone whenever the guide starts listening (another phrasing when it did not catch
one); the log and the speaker recording show that it navigated and left by voice, and never listened
while it was talking. The second test does the same in a noisy room: unrelated speech plays into the
microphone all the time, 10 dB below the commands, and the guide must never act on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from voiceguide import audio as A
from voiceguide.content import default_content_path, load_guide
from voiceguide.errors import EngineUnavailable
from voiceguide.rig import log_records, room_noise
from voiceguide.protocols import Audio
from voiceguide.tts import PiperEngine, get_engine, render

GUIDE = load_guide(default_content_path())


def _piper():
    pytest.importorskip("pyaudio", reason="PyAudio is needed for the microphone (pip install 'voiceguide[mic]')")
    try:
        return PiperEngine(variation=0.0)  # repeatable speech: Piper otherwise samples noise
    except EngineUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.audio
def test_voice_loop_navigates_by_speech_on_virtual_devices(pulse, tmp_path):
    _navigate_by_voice(pulse, tmp_path, _piper())


@pytest.mark.audio
def test_voice_loop_in_a_noisy_room_never_acts_on_the_noise(pulse, tmp_path):
    """Unrelated speech 10 dB below the commands, all the time: the guide still ends each phrase,
    navigates and leaves by voice, and takes nothing from the babble alone (the assertions allow
    no understood turn beyond the two commands)."""
    _navigate_by_voice(pulse, tmp_path, _piper(), room_snr=10.0)


def _navigate_by_voice(pulse, tmp_path, piper, room_snr: float | None = None):
    # What the listener says at each step; what they say instead when the guide did not catch it.
    steps = [["number two", "number two please", "option two"], ["stop the guide", "that is all", "goodbye"]]
    audio = {t: render(t, engine=piper, lexicon=GUIDE.lexicon) for step in steps for t in step}
    log = tmp_path / "turns.jsonl"
    speaker = pulse.record_speaker()
    room, mic = None, None
    if room_snr is not None:
        babble = room_noise("babble", room_snr, list(audio.values()), [piper, get_engine("espeak")])
        mic = pulse.record_mic()
        room = pulse.play_into_mic(babble, wait=False)
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
        if room:
            room.kill()
    speaker.stop()
    if mic:  # the room really was noisy: the microphone heard the babble before the first command
        heard = mic.stop()
        assert A.rms(Audio(heard.pcm[16000:16000 * 2 * 3], 16000)) > 0.5 * A.rms(babble)
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
