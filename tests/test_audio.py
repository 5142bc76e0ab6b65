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
