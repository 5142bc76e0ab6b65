"""End to end on virtual audio devices: the real `voiceguide` loop, speech in and speech out.

PulseAudio runs with a null-sink speaker and a virtual microphone. Spoken commands (Piper voice) are
played into the microphone whenever the guide starts listening (another phrasing when it did not catch
one); the log and the speaker recording show that it navigated, turned itself down and left by voice,
and never listened while it was talking. The second test does the same in a noisy room: unrelated speech plays into the
microphone all the time, 20 dB below the commands, and the guide must never act on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from voiceguide import audio as A
from voiceguide.content import default_content_path, load_guide
from voiceguide.errors import EngineUnavailable
from voiceguide.intents import IntentParser
from voiceguide.rig import RATE, frame_rms, log_records, room_noise
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
    """Unrelated speech 20 dB below the commands, all the time: the guide still ends each phrase,
    navigates and leaves by voice, takes nothing from the babble alone, and enters no section but
    the one chosen. A misheard command it refuses is allowed. Recognition in louder rooms is
    measured, not asserted (benchmarks/latency_bench.py --room, benchmarks/asr_bench.py). At 10 dB
    this test failed 2 of 6 runs: "number two" heard as "number 10" (refused), and three phrasings of
    it missed, one heard as "i keep going"."""
    _navigate_by_voice(pulse, tmp_path, _piper(), room_snr=20.0)


def _navigate_by_voice(pulse, tmp_path, piper, room_snr: float | None = None):
    # What the listener says at each step; what they say instead when the guide did not catch it.
    # In quiet the listener also turns the guide down, and the speaker recording must get quieter.
    steps = [["number two", "number two please", "option two"],
             *([["turn it down", "a bit quieter", "quieter please"]] if room_snr is None else []),
             ["stop the guide", "that is all", "goodbye"],
             ["yes", "yes please", "yes leave"]]  # leaving by voice is confirmed
    # A step is done when the guide has acted on it: entered the section, turned down, said goodbye.
    done = [lambda lines: "More Chemotherapy." in lines,
            *([lambda lines: "Quieter: volume 71 percent." in lines] if room_snr is None else []),
            lambda lines: any(t.startswith("Leave the guide?") for t in lines[lines.index("More Chemotherapy."):]),
            lambda lines: any(t.startswith("Goodbye.") for t in lines)]
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
    fed = []  # (phrase, wall-clock time it was played into the microphone)
    try:
        listens, fed_at, tries, achieved = 0, None, [0] * len(steps), 0
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            records = log_records(log)
            users = [r for r in records if r["role"] == "user"]
            lines = [r["text"] for r in records if r["role"] == "guide"]
            achieved = next((i for i, ok in enumerate(done) if not ok(lines)), len(steps))
            n = sum(1 for r in records if r["role"] == "listen")
            if achieved >= len(steps):
                break  # it should be leaving now
            if n > listens:
                listens = n
                step = steps[achieved]
                if tries[achieved] >= len(step):
                    break  # not understood after every phrasing: the assertions below say so
                time.sleep(1.2 if not fed else 0.6)  # the cue; the first turn also calibrates the microphone
                fed.append((step[tries[achieved]], time.time()))
                pulse.play_into_mic(audio[step[tries[achieved]]])
                tries[achieved] += 1
                fed_at, heard_then = time.monotonic(), len(users)
            elif fed_at and time.monotonic() - fed_at > 12 and len(users) == heard_then:
                fed.append((steps[min(achieved, len(steps) - 1)][0], time.time()))
                pulse.play_into_mic(audio[fed[-1][0]])  # not heard at all: again
                fed_at = time.monotonic()
            time.sleep(0.1)
        if achieved < len(steps) and proc.poll() is None:
            proc.stdin.write("q\n")  # keys always work: leave, so the assertions can report what was heard
            proc.stdin.flush()
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        if room:
            room.kill()
    out = speaker.stop()
    wall_minus_mono = time.time() - time.monotonic()
    if mic:  # the room really was noisy: the microphone heard the babble before the first command
        heard = mic.stop()
        assert A.rms(Audio(heard.pcm[16000:16000 * 2 * 3], 16000)) > 0.5 * A.rms(babble)
    records = log_records(log)
    users = [r for r in records if r["role"] == "user"]
    understood = [u for u in users if (u.get("intent") or {}).get("intent", "none") != "none"]
    heard = [(u["text"], (u.get("intent") or {}).get("intent"), u["via"]) for u in users]
    guide_lines = [r["text"] for r in records if r["role"] == "guide"]
    assert "More Chemotherapy." in guide_lines, heard
    assert guide_lines[-1].startswith("Goodbye."), heard
    assert all(u["via"] == "voice" for u in users), heard  # left by voice, not by the key
    if room_snr is None:  # in quiet, every phrase is understood as said
        assert [u["intent"]["intent"] for u in understood] == ["number", "quieter", "stop", "yes"], heard
        assert understood[0]["intent"]["target"] == "2"
        assert len(users) <= 3 * len(steps)  # at most a couple of retries per step
        # What came out of the speaker after "Quieter" is 3 dB down on what came before it.
        at = {r["text"]: r["t"] - wall_minus_mono - speaker.t0 for r in records if r["role"] == "guide"}
        before = _level(out, at["More Chemotherapy."], at["Quieter: volume 71 percent."])
        after = _level(out, at["Quieter: volume 71 percent."], len(out.pcm) / 2 / RATE)
        assert 0.55 < after / before < 0.87, (before, after)
        assert json.loads((tmp_path / "state.json").read_text())["volume"] == 71
    else:
        # Nothing was taken from the babble alone: every turn the guide acted on came while a command was said.
        # (Babble read as a word the guide does not act on, such as "no" with nothing asked, gets "Sorry, I didn't
        # catch that": seen once with three test runs and two busy loops beside it, 2026-12-03.)
        # A turn is the listener's when it came within 4 s of a command's end or, with the very meaning just said,
        # within 15 s: on a loaded machine the babble keeps the phrase open and recognition is slow (CI rehearsal at
        # load 6, 2026-12-03: 'stop the guide' logged later than 4 s after it was said).
        parser = IntentParser(GUIDE)
        for u in understood:
            reply = next((r["text"] for r in records[records.index(u) + 1:] if r["role"] == "guide"), "")
            if reply.startswith(("Sorry, I didn't catch that", "Sorry, I still didn't catch that")):
                continue
            meaning = u["intent"]["intent"]
            assert any(t <= u["t"] <= t + audio[p].duration + (15.0 if parser.parse(p).intent == meaning else 4.0)
                       for p, t in fed), f"acted on the noise: {u['text']!r} at {u['t']:.1f}; said {fed}"
        # And it went nowhere it was not asked to: the only section entered is the one chosen.
        titles = {f"{sec.title}." for sec in GUIDE.walk()}
        assert {t for t in guide_lines if t in titles} == {"More Chemotherapy."}, heard
    # never listened while talking: every listen record comes after the guide lines before it
    for i, r in enumerate(records):
        if r["role"] == "listen":
            assert all(p["t"] <= r["t"] for p in records[:i] if p["role"] == "guide")
    assert speaker.loud_times(), "no speech came out of the speaker"
    assert json.loads((tmp_path / "state.json").read_text())["guides"][GUIDE.id]["section"] == "chemotherapy"


def _level(audio: Audio, start: float, end: float) -> float:
    """How loud the speech between two times (seconds into the recording) is: the 95th percentile of
    its 20 ms frames that are not silent."""
    rms = frame_rms(audio)[int(start / 0.02):int(end / 0.02)]
    return float(np.percentile(rms[rms > 30], 95))
