"""WAV io, resampling, earcons, pronunciation by whole word."""

from __future__ import annotations

import numpy as np
import pytest

from voiceguide import audio as A
from voiceguide.content import LexiconEntry
from voiceguide.errors import AudioFormatError
from voiceguide.pronounce import apply
from voiceguide.protocols import Audio


def tone(freq=440, seconds=0.5, rate=16000):
    t = np.arange(int(rate * seconds)) / rate
    return Audio((np.sin(2 * np.pi * freq * t) * 10000).astype("<i2").tobytes(), rate)


def test_wav_round_trip(tmp_path):
    a = tone()
    A.write_wav(tmp_path / "t.wav", a)
    assert A.read_wav(tmp_path / "t.wav") == a


def test_stereo_is_mixed_to_mono(tmp_path):
    import wave
    with wave.open(str(tmp_path / "s.wav"), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.array([1000, 3000] * 800, dtype="<i2").tobytes())
    a = A.read_wav(tmp_path / "s.wav")
    assert a.sample_rate == 8000 and set(np.frombuffer(a.pcm, "<i2")) == {2000}


@pytest.mark.parametrize("content,fragment", [(b"not a wav", "not a readable WAV"), (b"", "not a readable WAV")])
def test_bad_wav_is_a_clear_error(tmp_path, content, fragment):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(AudioFormatError, match=fragment) as e:
        A.read_wav(p)
    assert str(p) in str(e.value)


def test_8_bit_wav_is_refused(tmp_path):
    import wave
    with wave.open(str(tmp_path / "b.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(1), w.setframerate(8000)
        w.writeframes(b"\x80" * 100)
    with pytest.raises(AudioFormatError, match="expected 16-bit PCM"):
        A.read_wav(tmp_path / "b.wav")


def test_resample_keeps_duration_and_pitch():
    a = tone(500, 1.0, 22050)
    b = A.resample(a, 16000)
    assert b.sample_rate == 16000 and b.duration == pytest.approx(1.0, abs=0.001)
    x = np.frombuffer(b.pcm, "<i2").astype(float)
    peak = np.argmax(np.abs(np.fft.rfft(x))) * 16000 / len(x)
    assert peak == pytest.approx(500, abs=3)


@pytest.mark.parametrize("name", ["listening", "nomatch"])
def test_earcons_are_short_clean_tones(name):
    e = A.earcon(name, 16000)
    x = np.frombuffer(e.pcm, "<i2")
    assert 0.1 < e.duration < 0.4 and A.rms(e) > 1000
    assert abs(int(x[0])) < 200 and abs(int(x[-1])) < 200  # faded: no click


LEX = [LexiconEntry("MEC", "M E C"), LexiconEntry("csf", "C S F"), LexiconEntry("G-CSF", "G C S F"),
       LexiconEntry("Ara-C", "aira see"), LexiconEntry("IDH1", "I D H one"), LexiconEntry("xospata", "zo spah tuh")]


@pytest.mark.parametrize("text,expected", [
    ("MEC is a plan.", "M E C is a plan."),
    ("The mechanism of mec.", "The mechanism of M E C."),
    ("G-CSF and csf.", "G C S F and C S F."),
    ("Ara-C, or cytarabine.", "aira see, or cytarabine."),
    ("IDH1 and IDH12.", "I D H one and IDH12."),
    ("Xospata's maker", "zo spah tuh's maker"),
    ("nothing here", "nothing here"),
])
def test_pronunciations_apply_to_whole_words_only(text, expected):
    assert apply(text, LEX) == expected


def test_espeak_phonemes_used_when_asked():
    lex = [LexiconEntry("FLAG", "flag", espeak="fl'ag")]
    assert apply("FLAG works", lex, espeak=True) == "[[fl'ag]] works"
    assert apply("FLAG works", lex) == "flag works"


# ---------------------------------------------------------------------- the player's reference tap


@pytest.mark.audio
def test_the_player_tells_its_listeners_exactly_what_it_plays(pulse):
    """Every sample of the clip, in order, as Played blocks whose times follow the clip's start by
    offset / rate; then one end marker. A second clip gets a new clip number."""
    clip = tone(440, 0.6, 22050)
    blocks = []
    p = A.Player(backend="pulse")
    p.add_listener(blocks.append)
    p.play(clip)
    assert p.wait(30)
    data = [b for b in blocks if not b.end]
    ends = [b for b in blocks if b.end]
    assert b"".join(b.pcm for b in data) == clip.pcm
    assert [b.offset for b in data] == list(np.cumsum([0] + [len(b.pcm) // 2 for b in data[:-1]]))
    t0 = data[0].t
    assert all(b.t == pytest.approx(t0 + b.offset / 22050) and b.sample_rate == 22050 for b in data)
    assert len(ends) == 1 and blocks[-1] is ends[0] and ends[0].offset == len(clip.pcm) // 2
    assert data[0].t <= ends[0].t <= t0 + clip.duration + 1e-9
    p.play(clip)
    p.wait(30)
    assert {b.clip for b in blocks[len(data) + 1:]} == {data[0].clip + 1}


@pytest.mark.audio
def test_stopping_tells_the_listeners_nothing_more_of_the_clip_plays(pulse):
    clip = tone(440, 4.0, 22050)
    blocks = []
    p = A.Player(backend="pulse")
    p.add_listener(blocks.append)
    p.play(clip)
    import time
    time.sleep(0.3)
    p.stop()
    assert not p.wait(5)
    ends = [b for b in blocks if b.end]
    assert len(ends) == 1 and ends[0].t < blocks[0].t + clip.duration
    n = len(blocks)
    time.sleep(0.3)
    assert len(blocks) == n  # its feeder told nothing after the end


@pytest.mark.audio
def test_a_failing_listener_is_removed_and_the_guide_goes_on_talking(pulse, capsys):
    calls = []

    def broken(block):
        calls.append(block)
        raise RuntimeError("boom")

    p = A.Player(backend="pulse")
    p.add_listener(broken)
    p.play(tone(440, 0.3, 16000))
    assert p.wait(30)
    assert len(calls) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "listener failed and was removed (RuntimeError: boom)" in err
    p.play(tone(440, 0.3, 16000))
    assert p.wait(30) and len(calls) == 1


@pytest.mark.audio
def test_the_sink_monitor_hears_what_the_speaker_plays(pulse):
    """SinkMonitor: 16 kHz blocks of what the sink really played (the echo canceller's reference)."""
    blocks, failed = [], []

    def broken(block):
        failed.append(block)
        raise RuntimeError("boom")

    mon = A.SinkMonitor("vg_speaker")
    mon.add_listener(broken)  # removed at its first block; the monitor carries on (it used to deadlock here)
    mon.add_listener(blocks.append)
    try:
        import time
        time.sleep(0.3)
        p = A.Player(backend="pulse")
        p.play(tone(500, 0.8, 22050))
        assert p.wait(30)
        time.sleep(0.3)
    finally:
        mon.close()
    data = [b for b in blocks if not b.end]
    assert len(failed) == 1
    assert data and all(b.sample_rate == 16000 for b in data)
    x = np.frombuffer(b"".join(b.pcm for b in data), "<i2").astype(float)
    loud = np.flatnonzero(np.abs(x) > 3000)
    assert len(loud) > 0.5 * 16000 * 0.8  # the tone came through
    spec = np.abs(np.fft.rfft(x[loud[0]:loud[-1]]))
    assert np.argmax(spec) * 16000 / (loud[-1] - loud[0]) == pytest.approx(500, abs=5)


def _monitor_clock():
    """A SinkMonitor's clock alone (no parec): feed it chunks with their arrival times."""
    mon = object.__new__(A.SinkMonitor)
    mon._reset_clock()
    return mon


def _arrivals(mon, times):
    """20 ms blocks (block k holds the value k) arriving at ``times``: every block told."""
    told = []
    for k, now in enumerate(times):
        told += mon._arrive(np.full(320, k % 30000, "<i2").tobytes(), now)
    return told


def test_the_sink_monitor_keeps_its_clock_through_a_backlog():
    """parec's blocks held up 3 s (this process starved of the CPU) and then delivered at once are the same
    stream, each at the time it played: a gap in arrivals is not a gap in the stream. (It used to start a new
    stream at the late arrival, placing its backlog seconds late, and the canceller re-placed it block by block.)"""
    start = 100.0
    times = [start + 0.02 * (k + 1) + 0.003 * (k % 3) for k in range(100)]  # 2 s in real time, a little jitter
    times += [start + 5.0 + 0.0001 * k for k in range(150)]  # nothing for 3 s, then 3 s of it at once
    times += [start + 5.0 + 0.02 * (k + 1) for k in range(100)]  # and on in real time
    slow = [start + 0.02 * (k + 1) for k in range(100)]  # or the backlog read slowly: 1.3 x real time
    slow += [start + 5.0 + 0.02 / 1.3 * k for k in range(250)]
    for times in (times, slow):
        _one_stream_on_its_clock(_arrivals(_monitor_clock(), times), start, len(times))


def _one_stream_on_its_clock(told, start, count):
    data = [b for b in told if not b.end]
    assert not [b for b in told if b.end] and {b.clip for b in data} == {1}
    assert [b.offset for b in data] == [320 * k for k in range(count)]
    assert max(abs(b.t - (start + b.offset / 16000)) for b in data) < 0.005


def test_the_sink_monitor_takes_a_stream_that_stopped_and_went_on_as_a_new_one():
    """The sink suspended for 3 s (nothing played, nothing recorded) and then running again in real time: a new
    stream, from where it came late, at its real times; the blocks told before that is sure (SETTLE) are told
    again as the new stream, after an end marker for the old one where it stopped."""
    start = 100.0
    times = [start + 0.02 * (k + 1) for k in range(100)] + [start + 5.0 + 0.02 * (k + 1) for k in range(100)]
    told = _arrivals(_monitor_clock(), times)
    ends = [b for b in told if b.end]
    assert len(ends) == 1 and ends[0].clip == 1 and ends[0].offset == 320 * 100
    assert ends[0].t == pytest.approx(start + 2.0, abs=0.005)
    new = [b for b in told if not b.end and b.clip == 2]
    assert [b.offset for b in new] == [320 * k for k in range(100)]  # the whole of it, each block once
    assert [int(np.frombuffer(b.pcm, "<i2")[0]) for b in new] == list(range(100, 200))
    assert max(abs(b.t - (start + 5.0 + b.offset / 16000)) for b in new) < 0.005


def test_the_sink_monitor_without_pulseaudio_is_a_clear_error(monkeypatch):
    from voiceguide.errors import AudioDeviceUnavailable

    monkeypatch.setattr(A, "_pulse_ok", lambda: False)
    with pytest.raises(AudioDeviceUnavailable, match="no PulseAudio sink monitor"):
        A.SinkMonitor()


@pytest.mark.audio
def test_ducking_lowers_the_clip_playing_and_brings_it_back(pulse):
    """Player.duck: the clip playing goes about DUCK_DB down on the speaker and comes back; a clip started
    while ducked starts low."""
    import time

    from voiceguide.rig import frame_rms

    rec = pulse.record_speaker()
    p = A.Player(backend="pulse")
    p.play(Audio(bytes(4410), 22050))  # the sound server's first stream starts late (up to a second)
    assert p.wait(30)
    p.play(tone(440, 3.0, 22050))
    time.sleep(0.8)
    p.duck(True)
    time.sleep(0.9)
    p.duck(False)
    assert p.wait(30)
    p.duck(True)
    p.play(tone(440, 0.8, 22050))
    assert p.wait(30)
    p.duck(False)
    time.sleep(0.2)
    rms = frame_rms(rec.stop())
    loud = np.flatnonzero(rms > 30)
    first = rms[loud[0]:loud[0] + 150]  # the 3 s clip
    # its two levels from its sounding frames, wherever they fall: at load 7-8 the stream once stalled in the window
    # of fixed frames that was read as full level (median 0)
    sounding = first[first > 30]
    full, low = np.percentile(sounding, 90), np.percentile(sounding, 10)
    back = np.median(first[-25:-5])
    assert 20 * np.log10(full / low) == pytest.approx(-A.DUCK_DB, abs=3)
    assert back == pytest.approx(full, rel=0.15)
    second = rms[loud[0] + 160:]
    second = second[second > 30]
    assert len(second) > 20 and 20 * np.log10(full / np.median(second)) == pytest.approx(-A.DUCK_DB, abs=3)
    assert p.volume_changes == 2 and not p.ducked


def test_an_on_off_setting_reads_the_same_words_everywhere(monkeypatch):
    """audio.env_switch: the one reading of VOICEGUIDE_DUCK, _ECHO_CHECK, _ECHO_GATE, _MIC_EARLY and _GRAMMAR_PROCESS
    (it was written out five times)."""
    from voiceguide import asr_sphinx, mic

    for value, on_default, off_default in [("off", False, False), (" No ", False, False), ("0", False, False),
                                           ("on", True, True), ("YES", True, True), ("1", True, True),
                                           ("maybe", True, False), ("", True, False)]:
        monkeypatch.setenv("VOICEGUIDE_DUCK", value)
        assert A.env_switch("VOICEGUIDE_DUCK", True) is on_default, value
        assert A.env_switch("VOICEGUIDE_DUCK", False) is off_default, value
        assert mic._duck_setting() is on_default, value
    monkeypatch.setenv("VOICEGUIDE_GRAMMAR_PROCESS", "off")
    monkeypatch.setenv("VOICEGUIDE_ECHO_GATE", "on")
    assert not asr_sphinx._grammar_process_setting() and mic._echo_gate_setting()
    monkeypatch.delenv("VOICEGUIDE_ECHO_GATE")
    monkeypatch.delenv("VOICEGUIDE_DUCK")
    assert not mic._echo_gate_setting() and mic._duck_setting()
