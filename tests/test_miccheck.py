"""voiceguide mic-check on the PulseAudio rig: commands played into the virtual microphone with
noise at set levels; the measured SNR must be within a few dB of the truth and the tip must fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from voiceguide import audio as A
from voiceguide.content import default_content_path, load_guide
from voiceguide.errors import AudioDeviceUnavailable, EngineUnavailable
from voiceguide.intents import IntentParser
from voiceguide.testing import FramesCapture
from voiceguide.miccheck import (CheckResult, choose_tip, endpointer_threshold, load_mic_settings, mic_settings_path,
                                 run_check, save_mic_settings)
from voiceguide.protocols import Audio

GUIDE = load_guide(default_content_path())
PARSER = IntentParser(GUIDE)


def meaning(text):
    i = PARSER.parse(text)
    return (i.intent, i.target)


@pytest.mark.parametrize("noise, speech, snr, right, tip", [
    (-65, -25, 40, 3, "good"),
    (-40, -28, 12, 3, "tv"),      # a loud room, speech 12 dB over it
    (-62, -47, 15.5, 3, "closer"),  # a quiet room, a faint voice
    (-58, -44, 14, 3, "closer"),  # quiet room, SNR low because the voice is faint: not the TV
    (-35, -32, 3, 1, "headset"),  # noise nearly as loud as speech
    (-65, -25, 40, 1, "headset"),  # loud and clear, yet misheard
    (-65, None, None, 0, "silent"),
])
def test_one_tip_for_each_condition(noise, speech, snr, right, tip):
    assert choose_tip(noise, speech, snr, right, 3) == tip


def test_the_threshold_comes_from_the_noise_floor():
    assert endpointer_threshold(20.0, 2000.0) == 60.0  # 10 dB over the noise
    assert endpointer_threshold(300.0, 600.0) == pytest.approx(424.3, abs=0.1)  # never above the speech's midpoint
    assert endpointer_threshold(1.0, None) == 30.0


def test_saved_settings_round_trip_and_bad_files_are_ignored(tmp_path):
    state = tmp_path / "state.json"
    path = mic_settings_path(state)
    assert path == tmp_path / "mic.json"
    save_mic_settings(CheckResult(-60.0, -30.0, 30.0, [], "good", 45.5), path)
    assert load_mic_settings(path)["endpointer_threshold"] == 45.5
    path.write_text("{not json", encoding="utf-8")
    assert load_mic_settings(path) is None
    path.write_text(json.dumps({"endpointer_threshold": -3}), encoding="utf-8")
    assert load_mic_settings(path) is None
    assert load_mic_settings(tmp_path / "missing.json") is None


# ---------------------------------------------------------------------- on the rig


def _level(audio: Audio) -> float:
    """Active speech level, dBFS: mean power of the 20 ms frames within 30 dB of the loudest."""
    x = np.frombuffer(audio.pcm, "<i2").astype(np.float64)
    n = len(x) // 320
    p = np.mean(x[:n * 320].reshape(n, 320) ** 2, axis=1)
    return float(10 * np.log10(np.mean(p[p > p.max() / 1000]) / 32768 ** 2))


def _scaled(audio: Audio, dbfs: float) -> Audio:
    x = np.frombuffer(A.resample(audio, 16000).pcm, "<i2").astype(np.float64)
    x *= 10 ** ((dbfs - _level(Audio(x.astype("<i2").tobytes(), 16000))) / 20)
    return Audio(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes(), 16000)


def _white(dbfs: float, seconds: float, seed: int = 0) -> Audio:
    x = np.random.default_rng(seed).normal(0, 32768 * 10 ** (dbfs / 20), int(seconds * 16000))
    return Audio(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes(), 16000)


@pytest.fixture(scope="module")
def rig():
    from voiceguide.rig import private_pulse

    try:
        with private_pulse() as pulse:
            yield pulse
    except AudioDeviceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def voice():
    from voiceguide.tts import PiperEngine, render

    try:
        piper = PiperEngine(variation=0.0)
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    return {c: A.resample(render(c, engine=piper, lexicon=GUIDE.lexicon), 16000) for c in ("next", "go back", "main menu")}


@pytest.fixture(scope="module")
def hybrid():
    from voiceguide.asr import HybridRecognizer

    return HybridRecognizer(GUIDE)


class _Listener:
    """A speaker double that is also the listener: when asked to say a command, it says it into the microphone."""

    def __init__(self, rig, voice, speech_dbfs):
        self.rig, self.voice, self.dbfs, self.lines = rig, voice, speech_dbfs, []

    def speak(self, text):
        self.lines.append(text)
        if "please say:" in text:
            command = text.split("please say:")[1].strip(" .")
            self.rig.play_into_mic(_scaled(self.voice[command], self.dbfs), wait=False)
        return True

    def close(self):
        pass


@pytest.mark.audio
@pytest.mark.parametrize("noise_dbfs, speech_dbfs, tip", [
    (-70, -26, "good"),     # a quiet room, a clear voice
    (-36, -26, "tv"),       # white noise 10 dB under the voice: a loud room
    (-64, -47, "closer"),   # a quiet room, a faint voice (17 dB over the room)
])
def test_mic_check_measures_the_snr_and_gives_the_right_tip(rig, voice, hybrid, noise_dbfs, speech_dbfs, tip):
    from voiceguide.mic import Capture

    noise = rig.play_into_mic(_white(noise_dbfs, 40), wait=False)
    capture = Capture()
    try:
        time.sleep(0.5)
        speaker = _Listener(rig, voice, speech_dbfs)
        result = run_check(speaker, capture, hybrid.recognize, meaning, quiet_seconds=2, wait=4)
    finally:
        capture.close()
        noise.kill()
        noise.wait()
    truth = speech_dbfs - noise_dbfs
    assert result.snr_db is not None and abs(result.snr_db - truth) <= 3, (result, truth)
    assert abs(result.noise_db - noise_dbfs) <= 1.5, result
    assert result.tip == tip, result
    assert speaker.lines[-1] == result.tip_text
    heard = [line for line in speaker.lines if line.startswith(("I heard", "I did not"))]
    assert len(heard) == 3, speaker.lines  # it says what it heard for each command
    if tip == "good":
        assert sum(a.right for a in result.attempts) >= 2, result.attempts
        assert result.threshold == pytest.approx(max(3 * 32768 * 10 ** (noise_dbfs / 20), 30), rel=0.2)


def _cli(*args, env=None, stdin=subprocess.DEVNULL):
    return subprocess.Popen([sys.executable, "-m", "voiceguide", "mic-check", *args], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


@pytest.mark.audio
def test_mic_check_command_with_keys_text_output_and_save(rig, voice, tmp_path):
    """The real command: Enter to start (keys), text out; the commands are said when it asks; --save
    writes mic.json beside the state file."""
    noise = rig.play_into_mic(_white(-66, 60, seed=1), wait=False)
    state = tmp_path / "state.json"
    proc = _cli("--text", "--keys", "--save", "--state", str(state), "--quiet-seconds", "2", "--json",
                stdin=subprocess.PIPE)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "Press Enter" in line:
                proc.stdin.write("\n")
                proc.stdin.flush()
            if "please say:" in line:
                command = line.split("please say:")[1].strip(" .\n")
                rig.play_into_mic(_scaled(voice[command], -26), wait=False)
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        noise.kill()
        noise.wait()
        if proc.poll() is None:
            proc.kill()
    report = json.loads(lines[-1])
    assert report["tip"] == "good", lines
    assert lines[-2] == "Your microphone sounds good."
    assert abs(report["snr_db"] - 40) <= 3, report
    saved = load_mic_settings(tmp_path / "mic.json")
    assert saved is not None and saved["endpointer_threshold"] == report["threshold"]


def test_no_microphone_is_a_one_line_error():
    proc = _cli("--text", env={"VOICEGUIDE_AUDIO": "none"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert len(err.strip().splitlines()) == 1 and "microphone" in err, err
    assert "Traceback" not in err


def test_the_saved_threshold_is_the_listeners(tmp_path, monkeypatch):
    """mic-check --save's threshold is what the guide's endpointer uses: a soft "go back" (frames
    below the default bar of 150, above a quiet room's measured 40) is heard with the saved settings
    and not without them."""
    from voiceguide import mic
    from voiceguide.asr import PocketsphinxRecognizer
    from voiceguide.tts import PiperEngine, render

    try:
        piper = PiperEngine(variation=0.0)
    except EngineUnavailable as exc:
        pytest.skip(str(exc))

    state = tmp_path / "state.json"
    assert mic.saved_threshold(state) is None
    save_mic_settings(CheckResult(noise_db=-70.0, speech_db=-45.0, snr_db=25.0, threshold=40.0), mic_settings_path(state))
    assert mic.saved_threshold(state) == 40.0
    speech = A.resample(render("go back", engine=piper, lexicon=GUIDE.lexicon), 16000)
    x = np.frombuffer(speech.pcm, "<i2").astype(np.float64)
    rms = np.sqrt((x[: len(x) // 320 * 320].reshape(-1, 320) ** 2).mean(axis=1))
    x *= 120 / rms.max()  # its loudest frame under the default bar (150), most well above the saved 40
    y = np.concatenate([np.zeros(24000), x, np.zeros(24000)]) + np.random.default_rng(3).normal(0, 4, len(x) + 48000)
    pcm = np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()
    recognizer = PocketsphinxRecognizer(GUIDE)
    heard = {}
    for name, level in (("default", mic.saved_threshold(tmp_path / "other" / "state.json")), ("saved", mic.saved_threshold(state))):
        monkeypatch.setattr(mic, "Capture", lambda *a, **k: FramesCapture(pcm))
        listener = mic.MicListener(recognizer, None, guide=GUIDE, echo_cancel="off", min_level=level)
        try:
            with listener.turn():
                heard[name] = listener.hear(1.5 + len(x) / 16000 + 1.0)
        finally:
            listener.close()
    assert not getattr(heard["default"], "text", ""), heard
    assert meaning(heard["saved"].text) == ("back", None), heard
