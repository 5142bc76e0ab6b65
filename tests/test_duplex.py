"""Full duplex on the PulseAudio rig: talking over the guide, with the room's echo.

The guide (the real ``voiceguide`` process, espeak-ng) talks into the rig's speaker; a loopback
(:meth:`voiceguide.rig.Pulse.echo_path`) plays the speaker back into the microphone 50 ms late and
6 dB louder than the listener's commands (Piper), which are mixed in. Commands said mid-sentence
must be acted on and marked as said over the guide; the guide's own voice must never become a turn;
the first answer after the listening tone must not be lost; and the terminal stays free of ALSA/JACK
chatter. Behaviour only: how fast speech stops is measured in benchmarks/bargein_bench.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from voiceguide import audio as A
from voiceguide.content import default_content_path, load_guide
from voiceguide.errors import EngineUnavailable
from voiceguide.intents import IntentParser
from voiceguide.testing import FramesCapture
from voiceguide.mic import Endpointer, FRAME, quiet_alsa
from voiceguide.rig import frame_rms, log_records
from voiceguide.tts import PiperEngine, get_engine, render, scale

GUIDE = load_guide(default_content_path())
PARSER = IntentParser(GUIDE)
COMMAND_GAIN = 0.3


def _piper():
    try:
        return PiperEngine(variation=0.0)
    except EngineUnavailable as exc:
        pytest.skip(str(exc))


class Session:
    """One ``voiceguide`` voice session on the rig, its log, and a listener who talks into the microphone."""

    def __init__(self, pulse, tmp_path, *, echo_db: float | None, aec: str = "auto", rate: int = 160,
                 extra_env: dict | None = None):
        self.pulse, self.log = pulse, tmp_path / "turns.jsonl"
        self.echo = None
        if echo_db is not None:
            # the guide's speech reaches the microphone at the level of the listener's voice + echo_db
            self.echo = pulse.echo_path(gain_db=_echo_gain(echo_db), latency_ms=50)
        # PYTHONFAULTHANDLER: if the program hangs, SIGABRT makes it print every thread's stack
        self.aec_trace = tmp_path / "aec.tsv"  # the in-process canceller's frames (empty under other modes)
        env = {**os.environ, "VOICEGUIDE_AEC": aec, "VOICEGUIDE_MIC_TRACE": "1", "PYTHONFAULTHANDLER": "1",
               "VOICEGUIDE_AEC_TRACE": str(self.aec_trace), **(extra_env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voiceguide", "--input", "voice", "--output", "speech", "--engine", "espeak",
             "--rate", str(rate), "--timeout", "off", "--log", str(self.log), "--state", str(tmp_path / "state.json")],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        # stderr is read as it comes (the microphone's trace is long): a full pipe would stall the
        # program, and a program that hangs still has its trace shown
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def records(self) -> list[dict]:
        return log_records(self.log)

    def guide_lines(self) -> list[str]:
        return [r["text"] for r in self.records() if r["role"] == "guide"]

    def users(self) -> list[dict]:
        return [r for r in self.records() if r["role"] == "user"]

    def wait_for(self, what, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if what(self.records()):
                return True
            time.sleep(0.05)
        return what(self.records())

    def say(self, audio) -> None:
        self.pulse.play_into_mic(audio)

    def finish(self) -> str:
        """Leave by key (keys always work) and return what the program wrote to stderr. A program
        that does not leave within 30 s fails the test, with its threads' stacks and its trace."""
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("q\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=30)
                hung = False
            except subprocess.TimeoutExpired:
                hung = True
                self.proc.send_signal(signal.SIGABRT)  # faulthandler prints the stacks
                self.proc.wait(timeout=10)
            self._reader.join(10)
            stderr = "".join(self._stderr)
            print(stderr)  # the microphone's trace: shown when a test fails
            print(self.canceller_around_phrases(stderr))
            if hung:
                for r in self.records():
                    print("REC", round(r["t"], 2), r["role"], r["text"][:90], r.get("during_speech"))
                pytest.fail("the guide did not leave within 30 s of the q key (its stacks are in the output)")
            return "\n".join(line for line in stderr.splitlines() if not line.startswith("mic: "))
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            if self.echo:
                self.pulse.remove_echo_path(self.echo)


    def canceller_around_phrases(self, stderr: str, before: float = 0.6, after: float = 0.2) -> str:
        """The canceller's trace (``VOICEGUIDE_AEC_TRACE``) from ``before`` s ahead of each phrase the microphone
        found to ``after`` s past it: what a false turn looked like to the canceller, in a failure's output."""
        try:
            rows = [line.split("\t") for line in self.aec_trace.read_text(encoding="utf-8").splitlines()]
        except OSError:
            return "(no canceller trace)"
        spans = [(float(a), float(b)) for a, b in re.findall(r"^mic: .*? (\d+\.\d+)-(\d+\.\d+)s ", stderr, re.M)]
        out = ["AEC frame s in out echo delay_ms double_talk unsure converged erle_db"]
        for a, b in spans[-8:]:
            out.append(f"AEC phrase {a:.2f}-{b:.2f}s")
            out += ["AEC " + " ".join(r) for r in rows if len(r) > 1 and a - before <= float(r[1]) <= b + after]
        return "\n".join(out)


def _level_db(audio) -> float:
    rms = frame_rms(audio)
    return 20 * np.log10(np.sqrt(np.mean(rms[rms > 30] ** 2)))


_COMMAND_DB: list[float] = []


def _echo_gain(echo_db: float) -> float:
    """Loopback gain so the guide's speech (espeak at full volume) reaches the microphone ``echo_db``
    above the mean level of the listener's commands."""
    guide = _level_db(render("This part is about chemotherapy given again after AML comes back.",
                             engine=get_engine("espeak"), lexicon=GUIDE.lexicon))
    return float(np.mean(_COMMAND_DB)) + echo_db - guide


@pytest.fixture(scope="module")
def commands():
    piper = _piper()
    # 10 dB down on Piper's full level, so the echo 6 dB above them never clips the microphone
    said = {t: scale(render(t, engine=piper, lexicon=GUIDE.lexicon), COMMAND_GAIN)
            for t in ["number two", "pause", "continue", "next", "stop talking", "number three"]}
    _COMMAND_DB[:] = [_level_db(a) for a in said.values()]
    return said


def _said_during_speech(users, intent):
    return [u for u in users if u.get("during_speech") and (u.get("intent") or {}).get("intent") == intent]


@pytest.mark.audio
@pytest.mark.xfail(strict=False, reason="issue 15's open gap, measured: with the defaults this passed 2 of 3 runs "
                   "(2026-12-03, load 4-5; a command at its first saying is acted on about 4 times in 5, "
                   "benchmarks/bargein_bench.py); it failed every run with PulseAudio's canceller, the default before")
def test_commands_said_over_the_guide_and_its_echo_are_acted_on(pulse, tmp_path, commands):
    """The issue's goal with the defaults (the in-process canceller, any command may cut the guide): a number over
    the menu, "pause" over a section, "next" over the reading, each said again if nothing happened (as a listener
    would, up to three times): each cuts speech and is acted on as if said at the prompt, marked as said during
    speech; the echo, 6 dB louder than the listener, never becomes a turn. Each command at its first saying was not
    reliable (acted on within two sayings 35 of 44 times in benchmarks/bargein_bench.py, 2026-12-03)."""
    s = Session(pulse, tmp_path, echo_db=6.0, rate=120)
    sayings = 0

    def say_until(audio, done) -> bool:
        nonlocal sayings
        for _ in range(3):
            s.say(audio)
            sayings += 1
            if s.wait_for(done, 6.0):
                return True
        return False

    try:
        assert s.wait_for(lambda r: any(x["text"].startswith("1: ") for x in r if x["role"] == "guide")), s.guide_lines()
        time.sleep(0.3)
        assert say_until(commands["number two"],
                         lambda r: any(x["text"] == "More Chemotherapy." for x in r if x["role"] == "guide")), \
            (s.users(), s.guide_lines())
        title = s.guide_lines().index("More Chemotherapy.")
        assert s.wait_for(lambda r: len([x for x in r if x["role"] == "guide"]) > title + 1, 30)  # its summary
        time.sleep(1.0)  # mid-sentence
        assert say_until(commands["pause"],
                         lambda r: any(x["text"].startswith("Paused.") for x in r if x["role"] == "guide")), \
            (s.users(), s.guide_lines())
        assert s.wait_for(lambda r: r[-1]["role"] == "listen", 20)
        time.sleep(1.0)  # after the listening tone
        s.say(commands["continue"])
        sayings += 1
        n = len(s.guide_lines())
        assert s.wait_for(lambda r: len([x for x in r if x["role"] == "guide"]) > n, 30), (s.users(), s.guide_lines())
        time.sleep(1.0)
        assert say_until(commands["next"],
                         lambda r: _said_during_speech([x for x in r if x["role"] == "user"], "next")), \
            (s.users(), s.guide_lines())
    finally:
        stderr = s.finish()
    users = s.users()
    heard = [(u["text"], (u.get("intent") or {}).get("intent"), u.get("during_speech")) for u in users]
    assert _said_during_speech(users, "number") and _said_during_speech(users, "number")[0]["intent"]["target"] == "2", heard
    assert _said_during_speech(users, "pause"), heard
    assert _said_during_speech(users, "next"), heard
    records = s.records()
    # each barge-in cut the guide: an interruption is logged just before it
    for i, r in enumerate(records):
        if r["role"] == "user" and r.get("during_speech"):
            assert any(p["text"] == "(interrupted)" for p in records[max(0, i - 3):i]), records[max(0, i - 3):i + 1]
    # nothing but the listener's phrases became a turn (the echo of the guide never did), besides the key that
    # leaves (Session.finish)
    said = users[:-1] if users and users[-1]["via"] == "keys" and users[-1]["text"] == "q" else users
    assert len(said) <= sayings, heard
    assert all(u["via"] == "voice" for u in said), heard
    assert "ALSA lib" not in stderr and "jack" not in stderr.lower(), stderr[:2000]


@pytest.mark.audio
@pytest.mark.parametrize("aec", ["auto", "inprocess", "off"])
def test_the_guide_talking_over_its_echo_for_30_seconds_takes_no_turn(pulse, tmp_path, commands, aec):
    """The welcome and the menu, read slowly (over 30 s) with the echo 6 dB above the listener's level:
    no turn is taken until the guide asks, with echo cancellation (the default, and the in-process
    canceller) and without (keyword fallback)."""
    s = Session(pulse, tmp_path, echo_db=6.0, aec=aec, rate=120)
    speaker = pulse.record_speaker()
    try:
        assert s.wait_for(lambda r: any(x["role"] == "listen" for x in r), 120), s.guide_lines()
    finally:
        stderr = s.finish()
        out = speaker.stop()
    talk = frame_rms(out) > 300
    assert np.flatnonzero(talk)[-1] * 0.02 - np.flatnonzero(talk)[0] * 0.02 > 30, "the guide talked under 30 s"
    records = s.records()
    first_listen = next(i for i, r in enumerate(records) if r["role"] == "listen")
    assert not [r for r in records[:first_listen] if r["role"] == "user"], records[:first_listen + 2]
    assert not [r for r in records if r["role"] == "user" and r.get("via") == "voice"], s.users()
    assert "ALSA lib" not in stderr and "jack" not in stderr.lower(), stderr[:2000]


@pytest.mark.audio
@pytest.mark.parametrize("onset", [0.0, 0.4, 1.0])
def test_the_first_answer_straight_after_the_tone_is_not_lost(pulse, tmp_path, commands, onset):
    """The first turn: "number three" said 0 to 1 s after the listening tone ends is heard (the
    microphone was open before the tone, and the phrase keeps its pre-roll)."""
    speaker = pulse.record_speaker()
    s = Session(pulse, tmp_path, echo_db=0.0, rate=450)
    try:
        assert s.wait_for(lambda r: any(x["role"] == "listen" for x in r), 60), s.guide_lines()
        listen_at = next(x["t"] for x in s.records() if x["role"] == "listen") - time.time() + time.monotonic()
        # the tone: the first loud frames on the speaker after the listen record; wait for its end
        deadline = time.monotonic() + 5
        end = None
        while time.monotonic() < deadline:
            rms = frame_rms(speaker.audio)
            t = speaker.t0 + np.arange(len(rms)) * 0.02
            loud = np.flatnonzero((rms > 300) & (t > listen_at - 0.05))
            if len(loud) and t[-1] - t[loud[-1]] > 0.08:
                end = t[loud[-1]] + 0.02
                break
            time.sleep(0.02)
        assert end is not None, ("no listening tone", s.users())
        time.sleep(max(0.0, end + onset - time.monotonic()))
        s.say(commands["number three"])
        assert s.wait_for(lambda r: any(x["role"] == "user" for x in r), 30)
    finally:
        s.finish()
        speaker.stop()
    t0 = s.records()[0]["t"]
    for r in s.records():  # shown beside the microphone's trace when the test fails
        print("REC", round(r["t"] - t0, 2), r["role"], r["text"][:90], r.get("during_speech"))
    first = s.users()[0]
    assert (first.get("intent") or {}).get("intent") == "number" and first["intent"]["target"] == "3", first
    assert "Stem Cell Transplant." in s.guide_lines()


def test_alsa_and_jack_chatter_is_silenced_around_portaudio():
    """PortAudio's init through PyAudio prints ALSA and JACK errors on a machine without a sound card;
    with quiet_alsa() and the capture's fd-2 guard it prints none (run in a child: fd 2 is the test's)."""
    pytest.importorskip("pyaudio")
    code = ("import voiceguide.mic as m, pyaudio\n"
            "m.quiet_alsa()\n"
            "with m._stderr_to_null():\n    p = pyaudio.PyAudio()\n"
            "n = p.get_device_count(); p.terminate(); print(n)\n")
    loud = subprocess.run([sys.executable, "-c", "import pyaudio; p = pyaudio.PyAudio(); p.terminate()"],
                          capture_output=True, text=True, env={**os.environ, "PULSE_SERVER": "unix:/nonexistent"})
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PULSE_SERVER": "unix:/nonexistent"})
    assert quiet.returncode == 0, quiet.stderr
    if "ALSA lib" not in loud.stderr and "jack" not in loud.stderr.lower():
        pytest.skip("PortAudio is quiet here anyway: nothing to silence")
    assert "ALSA lib" not in quiet.stderr and "jack" not in quiet.stderr.lower(), quiet.stderr[:1000]


def test_endpointer_keeps_the_onset_and_ends_after_the_pause():
    """Frames: 1 s of room noise, 0.4 s of speech-level sound, 1 s of noise: one phrase whose onset is
    the first loud frame and whose end is the frame after the last, found after end_pause of quiet."""
    rng = np.random.default_rng(1)
    quiet = [rng.normal(0, 40, FRAME) for _ in range(50)]
    loud = [rng.normal(0, 3000, FRAME) for _ in range(20)]
    frames = quiet + loud + quiet
    ep = Endpointer(end_pause=0.3)
    events = [e for i, f in enumerate(frames) if (e := ep.push(i, float(np.sqrt(np.mean(f ** 2)))))]
    assert events == [("onset", 50), ("end", 70)]
    quiet_alsa()  # callable twice, harmless
    quiet_alsa()


def test_endpointer_ends_a_phrase_in_babble_soon_after_it_ends():
    """Babble whose loud moments stand far above its dips (a level varying 4x either way), then a command
    20 dB above the babble for 0.8 s: the phrase ends within the end pause of the command's end, not at
    max_phrase (the floor learns the dips, so by the floor alone the babble kept the phrase going 8 s)."""
    rng = np.random.default_rng(2)
    babble = [float(v) for v in 60 * np.exp(rng.normal(0, 0.7, 300))]  # 6 s of 20 ms frames
    command = [float(v) for v in 1500 * np.exp(rng.normal(0, 0.2, 40))]  # 0.8 s
    levels = babble[:150] + command + babble[150:]
    ep = Endpointer(end_pause=0.3)
    events = [e for i, level in enumerate(levels) if (e := ep.push(i, level))]
    assert events and events[0][0] == "onset" and 145 <= events[0][1] <= 150, events  # babble may lead in
    ends = [at for kind, at in events if kind == "end"]
    assert ends and ends[0] <= 190 + 2, events  # the frame after the command, give or take babble's peaks
    old = Endpointer(end_pause=0.3, room_ratio=0.0)
    old_events = [e for i, level in enumerate(levels) if (e := old.push(i, level))]
    assert [at for kind, at in old_events if kind == "end"][0] > 190 + 50, old_events  # what it fixes


@pytest.fixture(scope="module")
def hybrid():
    from voiceguide.asr import get_recognizer

    return get_recognizer(GUIDE, "auto")


def _listen_to(monkeypatch, recognizer, audio, early: bool = True):
    """One turn of the real MicListener over ``audio`` (a second of faint room sound around it): what it
    heard, and each phrase's (last voiced frame + 1, frame at which the endpointer ended it)."""
    from voiceguide import mic

    x = np.frombuffer(A.resample(audio, 16000).pcm, "<i2").astype(np.float64) * COMMAND_GAIN
    y = np.concatenate([np.zeros(16000), x, np.zeros(24000)]) + np.random.default_rng(4).normal(0, 20, len(x) + 40000)
    pcm = np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()
    monkeypatch.setattr(mic, "Capture", lambda *a, **k: FramesCapture(pcm))
    monkeypatch.setenv("VOICEGUIDE_MIC_EARLY", "on" if early else "off")
    listener = mic.MicListener(recognizer, None, guide=GUIDE, echo_cancel="off")
    try:
        with listener.turn():
            heard = listener.hear(1.0 + len(x) / 16000 + 1.0)
    finally:
        listener.close()
    return heard, list(listener.endpoints)


def test_the_listening_cues_echo_is_no_answer(monkeypatch, hybrid):
    """mic.CUE_ECHO: the cue's echo arrives late (the room's path; a canceller still adapting smears it). In a voice walk
    it started a phrase 0.1 s after the cue's end, was read as nothing, and the guide said "Sorry, I didn't catch that"
    to no one. A burst 0.12-0.22 s after the cue ends starts no phrase; the turn hears silence."""
    from voiceguide import mic
    from voiceguide.protocols import Silence

    class Room(FramesCapture):
        cue_end = None  # the frame the cue ended at

        def frame_at(self, t):
            return int((t - self.t0) / 0.02)

        def read(self, index, timeout=None):
            frame = super().read(index, timeout)
            if frame is not None and self.cue_end is not None and self.cue_end + 6 <= index < self.cue_end + 11:
                t = np.arange(320) / 16000
                return (np.sin(2 * np.pi * 440 * t) * 6000).astype("<i2").tobytes()  # the cue's echo
            return frame

    class Cue:
        def earcon(self, name):
            time.sleep(0.2)
            room.cue_end = room.frame_at(time.monotonic())

    pcm = np.clip(np.random.default_rng(5).normal(0, 20, 16000 * 4), -32768, 32767).astype("<i2").tobytes()
    room = Room(pcm)
    monkeypatch.setattr(mic, "Capture", lambda *a, **k: room)
    listener = mic.MicListener(hybrid, Cue(), guide=GUIDE, echo_cancel="off")
    try:
        time.sleep(0.6)  # the room's quiet, for the endpointer's floor
        with listener.turn():
            heard = listener.hear(1.5)
    finally:
        listener.close()
    assert isinstance(heard, Silence) and not list(listener.endpoints), (heard, list(listener.endpoints))


@pytest.mark.parametrize("text, intent", [("go back", "back"), ("number two", "number"), ("main menu", "menu"),
                                          ("repeat that", "repeat"), ("stop talking", "pause")])
def test_a_command_ends_as_soon_as_the_grammar_reads_it_whole(monkeypatch, hybrid, text, intent):
    """Early endpointing (issue 21): the phrase ends once the grammar's reading, run as the audio arrives,
    is a whole command that has held (0.12 s of quiet, 0.2 s when a longer phrase starts with it), not
    after the full end pause (0.3 s); a command is never cut after its first word ("main" of "main menu",
    "repeat" of "repeat that"), and what is heard is the same as with early endpointing off."""
    from voiceguide.mic import FRAME_S, END_PAUSE

    piper = _piper()
    audio = render(text, engine=piper, lexicon=GUIDE.lexicon)
    heard, ends = _listen_to(monkeypatch, hybrid, audio)
    assert len(ends) == 1, ends  # one phrase: not cut after its first word
    (speech_end, decided), = ends
    assert PARSER.parse(heard.text).intent == intent, heard
    assert decided - speech_end < round(END_PAUSE / FRAME_S) - 1, ends  # before the full end pause
    old, old_ends = _listen_to(monkeypatch, hybrid, audio, early=False)
    assert PARSER.parse(old.text).intent == intent and len(old_ends) == 1, (old, old_ends)
    assert old_ends[0][1] - old_ends[0][0] >= round(END_PAUSE / FRAME_S) - 1, old_ends  # the old way waits it out


@pytest.mark.audio
def test_the_guide_lowers_its_voice_while_the_listener_talks_and_goes_on(pulse, commands):
    """Talking over the guide (not a command): it lowers its voice while the listener talks (the in-process
    canceller tells someone else's voice from its echo), does not stop, takes no turn, and comes back to
    full voice after the listener stops (mic.DUCK_HOLD)."""
    import threading

    from voiceguide.asr import get_recognizer
    from voiceguide.mic import DUCK_HOLD, MicListener
    from voiceguide.tts import AudioSpeaker

    chat = scale(render("I think it will rain this afternoon, so bring the washing in before you go.",
                        engine=_piper()), COMMAND_GAIN * 2)  # 6 dB above the commands' level
    echo = pulse.echo_path(gain_db=_echo_gain(0.0), latency_ms=50)
    speaker = AudioSpeaker.create(GUIDE, engine="espeak", rate=150)
    mic = MicListener(get_recognizer(GUIDE, "auto"), speaker, guide=GUIDE, echo_cancel="inprocess")
    mic.on_barge_in = speaker.stop
    lowered = []
    try:
        # one sentence (one clip): the volume really restored is the lowered clip's own, not the next one's
        text = ", and ".join(["chemotherapy uses strong medicines to kill leukaemia cells, in cycles with rest "
                              "between"] * 10) + "."
        talk = threading.Thread(target=speaker.speak, args=(text,), daemon=True)
        talk.start()
        time.sleep(4.0)
        # the canceller has learned the guide's echo (3 s of it) and its timing is confirmed; later when loaded
        deadline = time.monotonic() + 15.0
        while not (mic.aec.learned and not mic.aec.unsure) and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(2):  # a listener not heard talks on (at load 6 one chat went unnoticed: CI rehearsal)
            watch = threading.Thread(target=lambda: [lowered.append(speaker.player.ducked) or time.sleep(0.02)
                                                     for _ in range(round((3.5 + DUCK_HOLD) / 0.02))], daemon=True)
            watch.start()
            pulse.play_into_mic(chat)
            watch.join()
            if any(lowered):
                break
        # back to full voice DUCK_HOLD after the chat ends; on a loaded machine later: wait for it, not a clock
        deadline = time.monotonic() + 15.0
        while speaker.player.ducked and time.monotonic() < deadline:
            time.sleep(0.05)
        lowered.append(speaker.player.ducked)
        still_talking = speaker.player.is_playing
        back = not speaker.player.ducked
        changes = speaker.player.volume_changes
        # and really at full voice: the clip lowered, as PulseAudio has it, once the change is made (pactl, on a
        # thread)
        volume = None
        while time.monotonic() < deadline + 5.0 and volume != 65536 and speaker.player.is_playing:
            volume = _playing_volume(speaker.player)
            time.sleep(0.05)
        speaker.stop()
        talk.join(10)
    finally:
        mic.close()
        speaker.close()
        pulse.remove_echo_path(echo)
    assert any(lowered) and mic.ducks >= 1, "the guide never lowered its voice"
    assert still_talking, "the guide stopped for speech that was no command"
    assert not mic.barged_in()
    assert back and changes >= 1 and lowered[-1] is False, (back, changes, lowered[-20:])
    assert volume == 65536, f"the clip playing is at volume {volume}, not full voice"


def _playing_volume(player) -> int | None:
    """The raw volume (65536 = 100 %) of the clip ``player`` is playing now, as PulseAudio has it; None between
    clips."""
    proc = player._proc
    if proc is None or proc.poll() is not None:
        return None
    item = A.sink_input_of(proc.pid)
    return None if item is None else max(int(v["value"]) for v in item["volume"].values())


class _ProcessedFrames:
    """A capture of ``pcm`` in real time whose frames pass through ``process`` (the canceller) as they
    arrive, as :class:`voiceguide.mic.Capture` does."""

    def __init__(self, pcm: bytes, process, stall: tuple[int, float] | None = None):
        self.frames = [pcm[i:i + 640] for i in range(0, len(pcm) // 640 * 640, 640)]
        self.process, self.done, self.count, self.closed, self.t0 = process, 0, 0, False, time.monotonic()
        self.stall = stall
        """(frame, seconds): the microphone's thread stops that long before it gets that frame (the GIL held)."""

    def frame_at(self, t):
        return 0

    def read(self, index, timeout=None):
        if index >= len(self.frames):
            time.sleep(0.05)
            return None
        time.sleep(max(0.0, self.t0 + index * 0.02 - time.monotonic()))
        if self.stall and index == self.stall[0]:
            time.sleep(self.stall[1])
            self.stall = None
        while self.done <= index:  # the canceller sees every frame once, in order
            self.frames[self.done] = self.process(self.frames[self.done], self.t0 + self.done * 0.02)
            self.done += 1
        self.count = max(self.count, index + 1)
        return self.frames[index]

    def audio(self, start, end):
        return A.Audio(b"".join(self.frames[max(0, start):end]), 16000)

    def close(self):
        self.closed = True


class _Canceller:
    """Stands in for voiceguide.aec.EchoCanceller: the frames as they are (the echo's residual is already in
    them), and for each frame the level the guide's echo alone leaves in it (``echo``, RMS per frame)."""

    def __init__(self, echo: np.ndarray, talk: bool | None = None):
        self.echo, self.n, self.talk = echo, 0, talk
        self.double_talk, self.converged, self.learned, self.echo_level = False, True, True, 0.0
        self.unsure = False  # the echo's timing confirmed

    def echo_share(self, out, t):
        return 0.0  # the command's phrase is not the guide's voice come through

    def process(self, frame, t):
        self.echo_level = float(self.echo[min(self.n, len(self.echo) - 1)])
        self.n += 1
        level = float(np.sqrt(np.mean(np.frombuffer(frame, "<i2").astype(np.float64) ** 2))) if len(frame) else 0.0
        self.double_talk = level > 2.0 * self.echo_level + 50.0 if self.talk is None else self.talk  # more in the frame
        # than the guide's echo leaves (``talk``: what its check says, whatever the frame)
        return frame


def _over_the_echo(monkeypatch, recognizer, gate: str):
    """ "number two" said over what is left of the guide's echo after cancellation, which grows as the
    listener starts (the guide's voice rising, or the canceller missing after a jump in the echo's timing,
    as measured on the rig) and goes on 5 s after the command: the real MicListener outside a turn, any
    command allowed. Returns (the barge-in or None, each phrase's (end, ended at) frames, command end frame)."""
    from voiceguide import mic

    rate = 16000
    guide = np.frombuffer(A.resample(render("Chemotherapy uses strong medicines to kill leukaemia cells, in cycles "
                                            "of treatment with rest in between, and your team checks your blood "
                                            "often.", engine=get_engine("espeak"), lexicon=GUIDE.lexicon), rate).pcm,
                          "<i2").astype(np.float64)
    command = np.frombuffer(A.resample(render("number two", engine=_piper(), lexicon=GUIDE.lexicon), rate).pcm,
                            "<i2").astype(np.float64) * COMMAND_GAIN
    total = int(9.0 * rate)
    at = 2 * rate
    loud = np.flatnonzero(np.abs(command) > 300)
    stop = at + loud[-1]  # the command's last loud sample
    level = np.full(total, 0.03)  # a well cancelled guide (about 30 dB down) ...
    level[stop + int(0.1 * rate):stop + 4 * rate] = 0.24  # ... then 18 dB more of it, for 4 s
    residual = _residual(guide, level)
    y = residual.copy()
    y[at:at + len(command)] += command
    pcm, echo = _heard_with_envelope(y, residual)

    class Player:
        is_playing, ducked, device = True, False, None

    class Speaker:
        player = Player()

    def start_aec(self, player, required):
        self.aec = _Canceller(echo)

    monkeypatch.setattr(mic.MicListener, "_start_aec", start_aec)
    monkeypatch.setattr(mic, "Capture", lambda *a, process=None, **k: _ProcessedFrames(pcm, process))
    monkeypatch.setenv("VOICEGUIDE_BARGE", "any")
    monkeypatch.setenv("VOICEGUIDE_ECHO_GATE", gate)
    heard, listener = _barge_in_heard(recognizer, Speaker(), total / rate + 2.0)
    return heard, list(listener.endpoints), stop // FRAME


@pytest.mark.parametrize("unknown", ["timing", "echo level"])
def test_the_guide_is_not_lowered_for_its_own_echo_before_the_canceller_knows_it(monkeypatch, hybrid, unknown):
    """Lowering the guide follows the canceller's double-talk verdict only once it has learned the echo's level
    (aec.EchoCanceller.learned) and while the echo's timing is confirmed (not ``unsure``): in the guide's first
    seconds, after a jump in the timing or with a late reference, its own echo is not explained and looks like
    someone else. Seen on the rig in 7 of 31 runs: the guide lowered itself at its first words for 4 s (and in 2 of
    10 with the timing alone required). A phrase once the canceller knows the echo still lowers it."""
    from voiceguide import mic

    rate = 16000
    words = np.frombuffer(A.resample(render("bring the washing in before you go", engine=get_engine("espeak"),
                                            lexicon=GUIDE.lexicon), rate).pcm, "<i2").astype(np.float64)
    y = np.zeros(int(8.0 * rate))
    first, later = int(0.2 * rate), int(4.0 * rate)
    y[first:first + len(words)] += words
    y[later:later + len(words)] += words
    pcm, _ = _heard_with_envelope(y, np.zeros(len(y)))
    sure_from = int(2.5 / mic.FRAME_S)

    class Canceller(_Canceller):
        def process(self, frame, t):
            self.double_talk = True  # the verdict: not the guide's echo
            if unknown == "timing":
                self.unsure = self.n < sure_from
            else:
                self.learned = self.n >= sure_from
            return super().process(frame, t)

    canceller = Canceller(np.zeros(len(y) // FRAME))
    lowered_at = []

    class Player:
        is_playing, ducked, device = True, False, None

        def duck(self, on):
            self.ducked = on
            if on:
                lowered_at.append(canceller.n)

    class Speaker:
        player = Player()

    def start_aec(self, player, required):
        self.aec = canceller

    monkeypatch.setattr(mic.MicListener, "_start_aec", start_aec)
    monkeypatch.setattr(mic, "Capture", lambda *a, process=None, **k: _ProcessedFrames(pcm, process))
    monkeypatch.setenv("VOICEGUIDE_DUCK", "on")
    _barge_in_heard(hybrid, Speaker(), len(y) / rate + 1.0)
    assert lowered_at, "the phrase over the confirmed echo did not lower the guide"
    assert lowered_at[0] >= sure_from, f"lowered at {lowered_at[0] * mic.FRAME_S:.2f} s, before the {unknown} was known"


def _residual(guide: np.ndarray, level: np.ndarray) -> np.ndarray:
    """What the canceller leaves of the guide's echo: its loud frames (the guide talking on, no pauses), repeated
    to ``len(level)`` samples and scaled sample by sample by ``level``."""
    words = guide[: len(guide) // FRAME * FRAME].reshape(-1, FRAME)
    words = words[np.sqrt((words ** 2).mean(axis=1)) > 300].reshape(-1)
    return np.resize(words, len(level)) * level


def _heard_with_envelope(y: np.ndarray, residual: np.ndarray) -> tuple[bytes, np.ndarray]:
    """``y`` with faint room noise as 16-bit PCM, and the residual echo's per-frame level (its envelope): what a
    stand-in canceller says the echo alone leaves in each frame."""
    y = y + np.random.default_rng(4).normal(0, 10, len(y))
    pcm = np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()
    frames = residual[: len(residual) // FRAME * FRAME].reshape(-1, FRAME)
    power = (frames ** 2).mean(axis=1)
    return pcm, np.sqrt(np.max([np.roll(power, k) for k in range(-2, 3)], axis=0))


def _barge_in_heard(recognizer, speaker, seconds: float):
    """A MicListener with the in-process canceller (as patched by the caller) left to run for ``seconds`` or until
    a barge-in: what it then hears (None without a barge-in), and the closed listener."""
    from voiceguide import mic

    listener = mic.MicListener(recognizer, speaker, guide=GUIDE, echo_cancel="inprocess")
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not listener.barged_in():
            time.sleep(0.05)
        heard = listener.hear(0) if listener.barged_in() else None
    finally:
        listener.close()
    return heard, listener


def test_a_command_over_a_rising_echo_ends_when_the_listener_stops_and_is_acted_on(monkeypatch, hybrid):
    """End-pointing that knows the guide's own voice (mic.ECHO_GATE_MARGIN, aec.EchoCanceller.echo_level):
    over the guide, a frame counts as the listener's only above what the echo alone leaves in it, so the
    phrase ends when the listener stops though the guide's echo goes on, and the command cuts the guide.
    With the gate off the echo held the phrase open until it was too long to be a command: nothing was done."""
    from voiceguide.mic import BARGE_END_PAUSE, FRAME_S

    heard, ends, command_end = _over_the_echo(monkeypatch, hybrid, "on")
    assert heard is not None and heard.during_speech, (heard, ends)
    intent = PARSER.parse(heard.text)
    assert intent.intent == "number" and intent.target == "2", heard
    first = next(e for e in ends if e[0] >= command_end - 10)
    assert first[1] - command_end <= round((BARGE_END_PAUSE + 0.3) / FRAME_S), (ends, command_end)
    heard, ends, command_end = _over_the_echo(monkeypatch, hybrid, "off")
    assert heard is None, (heard, ends)


class _Reads:
    """A recogniser that reads every phrase as ``text`` (what Whisper made of the faint residual echo on the rig:
    "speed it up", "about a cure"); no grammar stream, so every phrase outside a turn reaches it."""

    def __init__(self, text: str, kind: str = "command"):
        self.text, self.kind, self.heard = text, kind, []

    def recognize(self, audio):
        from voiceguide.protocols import Heard

        self.heard.append(len(audio.pcm))
        return Heard(self.text, 0.9, "voice", kind=self.kind)


def _barge_over_residual(monkeypatch, text: str, *, rise: bool, command: bool, check: str = "on",
                         learned: bool = True, converged: bool | None = None, lowered: bool | None = None,
                         kind: str = "command", utterances: list | None = None, stall: tuple[int, float] | None = None,
                         talk: bool | None = None):
    """4 s of what the in-process canceller leaves of the guide's echo (a well cancelled guide, about 30 dB
    down), the stand-in canceller giving for each frame the level that echo alone leaves (its envelope). With
    ``rise`` the residual comes up 18 dB for 0.8 s at 2 s (the canceller missing after a jump in the echo's
    timing): the endpointer takes it for a phrase; with ``command`` a Piper "number two" is said at 2 s over
    the low residual. Every phrase is read as ``text``. The real MicListener outside a turn, any command
    allowed; returns the barge-in or None. ``learned=False``: the canceller has not yet learned the echo's level
    nor converged (the guide's first seconds), and the guide is lowered (its double-talk check took the echo for
    the listener). ``converged``, ``lowered``: otherwise as ``learned`` and ``not learned``. ``kind``: the
    recogniser's kind of reading ("open": a question or remark, no command). ``utterances``: the guide's utterances as
    ``AudioSpeaker.said`` has them, times in seconds from the capture's first frame.
    ``stall``: the microphone's thread stops (frame, seconds). ``talk``: the canceller's double-talk check says so in
    every frame (True: it takes the guide's voice for someone else), else it hears someone where a frame holds more
    than the echo leaves."""
    from voiceguide import mic

    rate = 16000
    guide = np.frombuffer(A.resample(render("Chemotherapy uses strong medicines to kill leukaemia cells, in cycles "
                                            "of treatment with rest in between.", engine=get_engine("espeak"),
                                            lexicon=GUIDE.lexicon), rate).pcm, "<i2").astype(np.float64)
    total = int(4.0 * rate)
    at = 2 * rate
    level = np.full(total, 0.03)
    if rise:
        level[at:at + int(0.8 * rate)] = 0.24
    residual = _residual(guide, level)
    y = residual.copy()
    if command:
        said = np.frombuffer(A.resample(render("number two", engine=_piper(), lexicon=GUIDE.lexicon), rate).pcm,
                             "<i2").astype(np.float64) * COMMAND_GAIN
        y[at:at + len(said)] += said[: total - at]
    pcm, echo = _heard_with_envelope(y, residual)

    class Player:
        is_playing, ducked, device = True, not learned if lowered is None else lowered, None

        def duck(self, on):
            pass

    captures = []

    class Speaker:
        player = Player()

        @property
        def said(self):
            t0 = captures[0].t0
            return [[words, None if ended is None else t0 + ended] for words, ended in utterances or []]

    def start_aec(self, player, required):
        self.aec = _Canceller(echo, talk)
        self.aec.learned = learned
        self.aec.converged = learned if converged is None else converged

    def capture(*a, process=None, **k):
        captures.append(_ProcessedFrames(pcm, process, stall))
        return captures[-1]

    recognizer = _Reads(text, kind)
    monkeypatch.setattr(mic.MicListener, "_start_aec", start_aec)
    monkeypatch.setattr(mic, "Capture", capture)
    monkeypatch.setenv("VOICEGUIDE_BARGE", "any")
    monkeypatch.setenv("VOICEGUIDE_ECHO_CHECK", check)
    monkeypatch.delenv("VOICEGUIDE_ECHO_GATE", raising=False)
    heard, _ = _barge_in_heard(recognizer, Speaker(), total / rate + 1.5)
    assert recognizer.heard, "no phrase reached the recogniser"
    return heard


def test_a_command_read_into_the_residual_echo_does_not_cut_the_guide(monkeypatch):
    """mic.ECHO_CHECK_MARGIN: a phrase over the guide read as a command that is not a pause or stop cuts the
    guide only when it stands above what the guide's echo alone leaves after cancellation. A rise of the
    residual echo read as "speed it up" (a false barge-in seen on the rig) is dropped; the same reading of a
    real "number two" said over the echo, and a pause read into the echo, still cut the guide. With the check
    off (the old code) the echo's reading cut the guide."""
    assert _barge_over_residual(monkeypatch, "speed it up", rise=True, command=False) is None
    heard = _barge_over_residual(monkeypatch, "speed it up", rise=False, command=True)
    assert heard is not None and heard.during_speech and heard.text == "speed it up", heard
    heard = _barge_over_residual(monkeypatch, "pause", rise=True, command=False)
    assert heard is not None and heard.text == "pause", heard
    heard = _barge_over_residual(monkeypatch, "speed it up", rise=True, command=False, check="off", talk=True)
    assert heard is not None and heard.text == "speed it up", heard


def test_before_the_canceller_has_learned_the_echo_lowering_allows_only_keywords(monkeypatch):
    """mic.MicListener._any_command: in the guide's first seconds the in-process canceller has neither learned the
    echo's level nor converged, and its double-talk check takes the guide's own voice for the listener's (the
    guide lowers itself). A phrase read then as a command other than the keywords ("chemotherapy options", the
    guide's first words on the rig) does not cut the guide; once it has learned, the same reading does. The old
    code let any command cut a lowered guide."""
    monkeypatch.setenv("VOICEGUIDE_DUCK", "on")
    assert _barge_over_residual(monkeypatch, "speed it up", rise=True, command=False, check="off",
                                learned=False) is None
    heard = _barge_over_residual(monkeypatch, "speed it up", rise=True, command=False, check="off", learned=True,
                                 talk=True)
    assert heard is not None and heard.text == "speed it up", heard


def test_any_command_may_cut_the_guide_by_default_with_the_in_process_canceller(monkeypatch):
    """Issue 15's barge-in as shipped: the in-process canceller is the default (it keeps the listener's voice), and
    with it any command may cut the guide; with PulseAudio's canceller only the keywords, unless
    ``VOICEGUIDE_BARGE`` says otherwise either way."""
    from voiceguide import mic

    monkeypatch.delenv("VOICEGUIDE_AEC", raising=False)
    monkeypatch.delenv("VOICEGUIDE_BARGE", raising=False)
    assert mic._aec_kind(mic._aec_setting()) == "inprocess"
    assert mic._barge_any(inprocess=True) and not mic._barge_any(inprocess=False)
    assert "barge-in takes any command" in mic.aec_mode(), mic.aec_mode()
    monkeypatch.setenv("VOICEGUIDE_BARGE", "keywords")
    assert not mic._barge_any(inprocess=True)
    assert "barge-in takes only" in mic.aec_mode()
    monkeypatch.setenv("VOICEGUIDE_BARGE", "any")
    assert mic._barge_any(inprocess=False)


def test_open_text_said_over_the_guide_never_cuts_it(monkeypatch):
    """Speech that is no command does not stop the guide: a phrase the recogniser reads as open text (on the rig,
    the guide's own first words came back as "the the idh1 drug", which the intent parser reads as a topic) is
    dropped; the same words read as a command cut the guide."""
    assert _barge_over_residual(monkeypatch, "the idh1 drug", rise=False, command=True, kind="open") is None
    heard = _barge_over_residual(monkeypatch, "the idh1 drug", rise=False, command=True)
    assert heard is not None and heard.text == "the idh1 drug", heard


def test_leaving_said_over_the_guide_does_not_cut_it_but_a_bare_stop_does(monkeypatch):
    """Leaving is asked at a prompt, never over the guide: on the rig its own voice came back as "bye" and cut it
    (three times, before the canceller had converged). A bare "stop" over the guide still cuts it (a pause)."""
    assert _barge_over_residual(monkeypatch, "goodbye", rise=False, command=True) is None
    heard = _barge_over_residual(monkeypatch, "stop", rise=False, command=True)
    assert heard is not None and heard.text == "stop", heard


def test_a_phrase_is_a_barge_in_by_its_own_lowering_not_the_guides_state_when_it_is_read(monkeypatch):
    """A phrase read after the guide was lowered for a later one (the listener starting to talk) is judged as it was
    heard: not lowered, before convergence, only the keywords cut. On the rig the guide's own words came back as a
    command just as the listener's "number three" lowered it, and cut the guide first."""
    from types import SimpleNamespace

    from voiceguide import mic
    from voiceguide.protocols import Heard

    listener = object.__new__(mic.MicListener)
    listener.parser, listener.speaker, listener.mode, listener.duck = PARSER, None, "aec", True
    listener.aec = SimpleNamespace(learned=True, converged=False)
    listener._player = SimpleNamespace(ducked=True)  # lowered now, for the listener's next phrase
    monkeypatch.delenv("VOICEGUIDE_BARGE", raising=False)
    loud = A.Audio(np.full(8000, 8000, "<i2").tobytes(), 16000)
    assert not listener._is_barge_in(Heard("speed it up", 0.9, "voice"), loud, 100.0, lowered=False)
    assert listener._is_barge_in(Heard("speed it up", 0.9, "voice"), loud, 100.0, lowered=True)


def test_a_phrase_the_guide_would_not_understand_does_not_cut_it(monkeypatch):
    """MicListener.takes (Dialog.takes, handed on by the session): in fresh-clone CI runs the guide's own voice was read
    "where are we" at 0.47 (not lowered for) and "go back to" at 0.29 (lowered for: the canceller, not yet converged,
    took it for someone else), cut the guide and became turns it did not understand. Such a reading no longer cuts it,
    lowered for or not; a sure one does. A judge that fails lets the phrase through."""
    from voiceguide.protocols import Heard

    listener, loud = _listener_over_the_guide(monkeypatch)
    listener.speaker = None
    unsure, sure = Heard("where are we", 0.47, "voice"), Heard("where are we", 0.98, "voice")
    assert listener._is_barge_in(unsure, loud, 100.0, lowered=False)  # no judge: as before
    judged = []
    listener.judge_with(lambda heard: judged.append(heard.text) or heard.confidence >= 0.9)
    assert not listener._is_barge_in(unsure, loud, 100.0, lowered=False)
    assert judged == ["where are we"]
    assert listener._is_barge_in(sure, loud, 100.0, lowered=False)
    assert not listener._is_barge_in(unsure, loud, 100.0, lowered=True)
    assert listener._is_barge_in(sure, loud, 100.0, lowered=True)
    listener.judge_with(lambda heard: 1 / 0)
    assert listener._is_barge_in(unsure, loud, 100.0, lowered=False)


def test_once_converged_only_a_phrase_the_canceller_heard_as_someone_else_may_be_any_command(monkeypatch):
    """mic._Job.other: in fresh-clone CI runs the guide's own voice, heard by the converged canceller as its echo alone
    (no frame of double talk, so not lowered for), was read "where are we" (0.47) and "lower the volume" (1.00) and cut
    the guide. Such a phrase may now only be a keyword, well above the bar; one the canceller heard as someone else may
    be any command, lowering on or off (of 117 commands the bench saw cut the guide, none was heard as echo alone)."""
    from types import SimpleNamespace

    from voiceguide import mic
    from voiceguide.protocols import Heard

    listener, loud = _listener_over_the_guide(monkeypatch)
    listener.speaker, listener.duck = None, False  # lowering off: the double-talk check alone
    listener.aec = SimpleNamespace(learned=True, converged=True)
    echo_alone = mic._Job(90, 180, False, 178, 150.0, True)
    echo_alone.learned, echo_alone.converged, echo_alone.other = True, True, False
    someone = mic._Job(90, 180, False, 178, 150.0, True)
    someone.learned, someone.converged, someone.other = True, True, True
    volume = Heard("lower the volume", 1.0, "voice")
    assert not listener._is_barge_in(volume, loud, 150.0, False, None, echo_alone)
    assert listener._is_barge_in(Heard("wait", 1.0, "voice"), loud, 150.0, False, None, echo_alone)  # a keyword may
    assert listener._is_barge_in(volume, loud, 150.0, False, None, someone)


def test_a_phrase_read_late_is_judged_by_the_cancellers_state_during_it(monkeypatch):
    """mic._Job.converged: on a loaded machine a phrase's reading comes late. The guide's first words, heard before
    the canceller had learned the echo, were read "go to the next one" and judged once the canceller had converged:
    any command was then allowed and its echo estimate for those frames was nothing, so the guide's own voice became
    the listener's first answer (CI rehearsal, 2026-12-04). Judged by the state during the phrase: keywords only."""
    from types import SimpleNamespace

    from voiceguide import mic
    from voiceguide.protocols import Heard

    monkeypatch.delenv("VOICEGUIDE_BARGE", raising=False)
    monkeypatch.delenv("VOICEGUIDE_ECHO_CHECK", raising=False)
    listener = object.__new__(mic.MicListener)
    listener.parser, listener.speaker, listener.mode, listener.duck = PARSER, None, "aec", True
    listener.aec = SimpleNamespace(learned=True, converged=True)  # now: learned and converged
    listener._player = SimpleNamespace(ducked=False)
    listener.echo_check = True
    listener._talked, listener._echo = 200, np.zeros(mic.TALK_RING)  # no echo estimate for its frames
    listener._frames = lambda a, b: [np.full(mic.FRAME, 2000, "<i2").tobytes()] * (b - a)
    loud = A.Audio(np.full(8000, 8000, "<i2").tobytes(), 16000)
    heard = Heard("go to the next one", 1.0, "voice")
    during = mic._Job(90, 180, False, 178, 150.0, True)  # ended before the canceller had learned
    during.learned, during.converged = False, False
    assert not listener._is_barge_in(heard, loud, 150.0, False, None, during)
    assert listener._is_barge_in(Heard("wait", 1.0, "voice"), loud, 150.0, False, None, during)  # a keyword still may
    later = mic._Job(90, 180, False, 178, 150.0, True)  # the same phrase ended once the canceller had converged
    later.learned, later.converged = True, True
    assert listener._is_barge_in(heard, loud, 150.0, False, None, later)
    # converged during it: a command must stand above the echo estimate; learned, not converged: it need not
    listener._echo = np.full(mic.TALK_RING, 5000.0)
    assert not listener._above_echo(later, heard)
    partly = mic._Job(90, 180, False, 178, 150.0, True)
    partly.learned, partly.converged = True, False
    assert listener._above_echo(partly, heard)


def _listener_over_the_guide(monkeypatch):
    """A microphone listener, built without its devices, with a learned and converged canceller and the guide not
    lowered, for :meth:`MicListener._is_barge_in`; and a loud phrase's audio."""
    from types import SimpleNamespace

    from voiceguide import mic

    monkeypatch.delenv("VOICEGUIDE_BARGE", raising=False)
    listener = object.__new__(mic.MicListener)
    listener.parser, listener.mode, listener.duck = PARSER, "aec", True
    listener.aec = SimpleNamespace(learned=True, converged=True)
    listener._player = SimpleNamespace(ducked=False)
    return listener, A.Audio(np.full(8000, 8000, "<i2").tobytes(), 16000)


def test_words_the_guide_is_saying_are_its_echo_but_a_command_it_named_earlier_cuts_it(monkeypatch):
    """Over the guide, a phrase made only of words it is saying (or stopped saying less than ECHO_WORDS_HOLD before)
    is its own echo and never cuts it ("Say continue" resumed a paused guide on the rig); the listener's "main menu"
    over the next passage, after the guide had said "say back to return to the main menu", is acted on. It was
    dropped when every word of the last three utterances counted (voice walks on the rig, 2026-12-03: twice each)."""
    from types import SimpleNamespace

    from voiceguide import mic
    from voiceguide.protocols import Heard

    listener, loud = _listener_over_the_guide(monkeypatch)
    hold = int(mic.ECHO_WORDS_HOLD / mic.FRAME_S)
    t0 = 100.0  # the capture's frame 0, on the speaker's clock
    listener.capture = SimpleNamespace(t0=t0)
    listener.speaker = SimpleNamespace(said=[
        ["You are in Stem Cell Transplant. Say back to return to the main menu.", t0 + 20.0],
        ["FLT3 is a gene that helps leukemia cells grow.", None]])
    menu = Heard("main menu", 0.9, "voice")
    assert listener._is_barge_in(menu, loud, 100.0, lowered=True, start=1400)  # said over the next passage
    assert not listener._is_barge_in(menu, loud, 100.0, lowered=True, start=1000 + hold - 5)  # its echo's tail
    listener.speaker.said[-1][1] = t0 + 29.0
    listener.speaker.said.append(["Paused. Say continue, or press c and Enter, when you are ready.", None])
    assert not listener._is_barge_in(Heard("continue", 0.9, "voice"), loud, 100.0, lowered=True, start=1480)


def test_a_number_with_its_carrier_over_a_list_the_guide_reads_is_the_listeners(monkeypatch):
    """Over "Say a number: 1, ...; 3, Gilteritinib; ..." every word of "number three" is one the guide is saying, and a
    listener answering early was ignored twice (voice walk, 2026-12-04). A number is its echo only when the guide says
    its words in that order ("number one" here); other commands keep the looser test ("main menu" over "... return to
    the main menu" is its echo, though said in another order than anything)."""
    from types import SimpleNamespace

    from voiceguide import mic
    from voiceguide.protocols import Heard

    listener, loud = _listener_over_the_guide(monkeypatch)
    listener.capture = SimpleNamespace(t0=100.0)
    listener.speaker = SimpleNamespace(said=[["Targeted Drugs has 4 parts. Say a number: 1, FLT3 and IDH; "
                                              "2, Enasidenib; 3, Gilteritinib; 4, Ivosidenib.", None]])
    assert listener._is_barge_in(Heard("number three", 0.9, "voice"), loud, 100.0, lowered=True, start=1000)
    assert not listener._is_barge_in(Heard("number one", 0.9, "voice"), loud, 100.0, lowered=True, start=1000)
    assert not listener._is_barge_in(Heard("three", 0.9, "voice"), loud, 100.0, lowered=True, start=1000)
    listener.speaker.said = [["The menu has the main topics.", None]]  # its words, not in that order
    assert not listener._is_barge_in(Heard("main menu", 0.9, "voice"), loud, 100.0, lowered=True, start=1000)
    listener.speaker.said = [["The list has the topics.", None]]
    assert listener._is_barge_in(Heard("main menu", 0.9, "voice"), loud, 100.0, lowered=True, start=1000)


def test_the_guides_words_are_its_echo_by_its_own_clock_when_the_microphone_falls_behind(monkeypatch):
    """Which utterances are the guide's echo is told by when the speaker said them (``AudioSpeaker.said``), not by
    what it was saying when the microphone's thread got to the frame. With the thread 3 s behind (the GIL held by a
    recogniser, a loaded machine) the old bookkeeping ended "Say back to return to the main menu" where the stall
    began, so its echo read as "main menu" cut the guide. A "main menu" said well after that prompt ended still
    cuts the guide."""
    prompt, passage = "You are in Stem Cell Transplant. Say back to return to the main menu.", "FLT3 is a gene."
    heard = _barge_over_residual(monkeypatch, "main menu", rise=False, command=True,
                                 utterances=[[prompt, 2.3], [passage, None]], stall=(5, 3.0))
    assert heard is None, heard  # the prompt's last words, read at 2 s, 0.3 s before it ended
    heard = _barge_over_residual(monkeypatch, "main menu", rise=False, command=True,
                                 utterances=[[prompt, 0.1], [passage, None]], stall=(5, 3.0))
    assert heard is not None and heard.text == "main menu", heard


def test_a_command_over_the_guide_must_peak_above_the_endpointers_bar(monkeypatch):
    """mic.ECHO_CHECK_FLOOR: a command over the guide whose loudest frame is under twice the endpointer's own bar is the
    guide's own voice come through the canceller faintly (read as "relapse please" on the rig, and as "wait" at 1.8x
    the bar in a CI rehearsal), whatever the canceller's estimate of that echo, a pause or stop too; a louder one
    counts, and a pause or stop needs no frames standing above the echo estimate (the echo here is 3x its frames).
    For a phrase the guide was lowered for (the canceller heard someone else), the floor is the endpointer's own bar
    (the room's), not the higher one the guide's talk sets outside a turn: in 10 dB babble real commands peaked
    1.1-2.0x that one and were all dropped (bargein_bench, 2026-12-04); a phrase not lowered for still faces it (the
    guide's echo read as "it's fine" at 1.3x it, 3.4x the room's, in a voice walk)."""
    from types import SimpleNamespace

    from voiceguide import mic
    from voiceguide.protocols import Heard

    monkeypatch.delenv("VOICEGUIDE_ECHO_CHECK", raising=False)
    for level, text, cuts, echo, bar, lowered in [
            (180, "relapse please", False, 0, 100, False), (260, "relapse please", True, 0, 100, False),
            (180, "wait", False, 0, 100, False), (180, "pause", False, 0, 100, False), (180, "wait", False, 0, 100, True),
            (260, "pause", True, 0, 100, False), (260, "pause", True, 90, 100, False),
            (260, "relapse please", False, 90, 100, False),
            # babble: the bar outside a turn 1.8x the room's; a command at 1.5x that bar, lowered for or not
            (270, "wait", True, 0, 180, True), (270, "faster", True, 0, 180, True), (170, "wait", False, 0, 180, True),
            (270, "wait", False, 0, 180, False), (270, "faster", False, 0, 180, False)]:
        listener = object.__new__(mic.MicListener)
        listener.aec = SimpleNamespace(learned=True, converged=True)
        listener.parser, listener.echo_check = PARSER, True
        listener._talked, listener._echo = 10, np.full(mic.TALK_RING, float(echo))
        listener._frames = lambda a, b, level=level: [np.full(mic.FRAME, level, "<i2").tobytes()] * 10
        job = SimpleNamespace(start=0, speech_end=10, level=float(bar), room=100.0, lowered=lowered)
        assert mic.MicListener._above_echo(listener, job, Heard(text, 0.9, "voice")) is cuts, (level, text, echo, bar,
                                                                                               lowered)


def test_a_command_waiting_for_a_slow_recogniser_is_heard_late_unless_a_later_phrase_waits_behind_it():
    """mic.MicListener._too_late: on a loaded machine the recogniser's speculative reading of a phrase that then
    went on kept its thread busy, and the listener's "number two" over the guide, 1.1 s old when its turn came, was
    dropped unheard (BARGE_MAX_AGE alone; the rising-echo test failed 2 of 2 at load 4, 4 of 4 at 7.5). The newest
    phrase is now heard up to BARGE_MAX_LATE; an older one with a later phrase waiting behind it is still dropped
    (the echo must not pile up ahead of a command)."""
    import queue
    from types import SimpleNamespace

    from voiceguide import mic

    listener = object.__new__(mic.MicListener)
    listener._jobs = queue.Queue()
    job = mic._Job(100, 150, False, 145, 1.0, True)
    frames = lambda seconds: 150 + round(seconds / mic.FRAME_S)  # noqa: E731
    listener.capture = SimpleNamespace(count=frames(mic.BARGE_MAX_AGE + 0.2))
    assert not listener._too_late(job)  # the newest phrase: heard, late
    later = mic._Job(180, 210, False, 205, 1.0, True)
    listener._jobs.put(later)
    assert listener._too_late(job)  # a later phrase waits behind it: dropped
    later.stale = True
    assert not listener._too_late(job)  # (a stale one does not count)
    listener._jobs.put(mic._Job(100, 160, False, 155, 1.0, True))
    assert not listener._too_late(job)  # nor the same phrase read again
    listener.capture.count = frames(mic.BARGE_MAX_AGE - 0.2)
    listener._jobs.put(mic._Job(180, 210, False, 205, 1.0, True))
    assert not listener._too_late(job)  # young enough whatever waits
    listener._jobs = queue.Queue()
    listener.capture.count = frames(mic.BARGE_MAX_LATE + 0.2)
    assert listener._too_late(job)  # too late whatever


def test_the_canceller_trace_has_one_line_per_microphone_frame(monkeypatch, tmp_path):
    """``VOICEGUIDE_AEC_TRACE=FILE``: the real in-process canceller's state, one line per microphone frame, its input
    level that frame's own; a file that cannot be written is a one-line error."""
    from voiceguide import mic
    from voiceguide.aec import EchoCanceller
    from voiceguide.errors import VoiceGuideError

    rate = 16000
    words = np.frombuffer(A.resample(render("bring the washing in", engine=get_engine("espeak")), rate).pcm, "<i2")
    pcm = np.concatenate([np.zeros(rate // 2, "<i2"), words, np.zeros(rate // 2, "<i2")]).tobytes()
    frames = len(pcm) // 640

    class Player:
        is_playing, ducked, device = True, False, None

    class Speaker:
        player = Player()

    def start_aec(self, player, required):
        self.aec = EchoCanceller()  # no reference: it hears no guide, and says so frame by frame

    monkeypatch.setattr(mic.MicListener, "_start_aec", start_aec)
    monkeypatch.setattr(mic, "Capture", lambda *a, process=None, **k: _ProcessedFrames(pcm, process))
    trace = tmp_path / "aec.tsv"
    monkeypatch.setenv("VOICEGUIDE_AEC_TRACE", str(trace))
    _, listener = _barge_in_heard(_Reads(""), Speaker(), frames * 0.02 + 0.5)
    rows = [line.split("\t") for line in trace.read_text().splitlines()]
    assert len(rows) == listener._talked >= frames - 1, (len(rows), listener._talked, frames)
    assert all(len(r) == 10 for r in rows), rows[:3]
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    loud = max(range(len(rows)), key=lambda i: float(rows[i][2]))
    want = mic.frame_level(pcm[loud * 640:(loud + 1) * 640])
    assert abs(float(rows[loud][2]) - want) <= 1 and want > 300, (rows[loud], want)

    monkeypatch.setenv("VOICEGUIDE_AEC_TRACE", str(tmp_path / "no" / "such" / "folder" / "aec.tsv"))
    with pytest.raises(VoiceGuideError, match="VOICEGUIDE_AEC_TRACE: cannot write"):
        mic.MicListener(_Reads(""), Speaker(), guide=GUIDE, echo_cancel="inprocess")
