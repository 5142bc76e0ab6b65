"""The hybrid recogniser (:class:`HybridRecognizer`: Whisper, Whisper rescoring the guide's phrases, the grammar),
what each engine read (:class:`Evidence`), its calibrated N-best (:class:`Calibration`) and step 5's test of
unexplained words (:func:`unexplained`). Part of :mod:`voiceguide.asr`."""
from __future__ import annotations

import json
import re
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import recognizer_head
from .asr_base import guide_phrases
from .asr_sphinx import GrammarStream, PocketsphinxRecognizer
from .asr_whisper import Transcript, WhisperRecognizer
from .content import Guide
from .grammar import words_for
from .intents import Intent
from .protocols import Audio, Heard

__all__ = ["HybridRecognizer", "Evidence", "Calibration", "FEATURES", "CALIBRATION_FILE", "unexplained",
           "phrase_words_heard"]


class HybridRecognizer:
    """Whisper first, then Whisper rescoring the guide's own phrases, then the content grammar.

    Whisper (open vocabulary, trained on noisy speech) transcribes everyday English well, in noise
    too, but cannot spell drug names it has never seen; the pocketsphinx grammar search knows every
    name in the content but forces any sound onto some command. So:

    1. what Whisper transcribes and the intent parser understands is taken as it is;
    2. otherwise the guide's own phrases that are written most like Whisper's transcript
       (:attr:`candidates` of them), and the grammar search's reading, are scored by Whisper against
       the audio. The best one, by its log-probability less :attr:`prior_weight` times its
       log-probability given silence (so rare drug names are not outvoted by everyday words), is
       taken when it is within :attr:`gap` of Whisper's own reading and at least :attr:`margin`
       ahead of every phrase meaning something else. "Tell me about a nassidin" becomes "tell me
       about enasidenib";
    3. otherwise, when Whisper heard something clearly that means nothing to the guide and does not
       even sound like the grammar's reading (letters :attr:`alike` below 60 of 100), it was
       off-topic speech: rejected, whatever the grammar says; unless Whisper itself scores the grammar's
       reading above its own transcript (espeak's bare "skip": Whisper wrote "escape" but scored "skip"
       2 nats higher), which is no evidence of off-topic speech;
    4. otherwise the grammar search decides, with its own fit checks (:class:`PocketsphinxRecognizer`);
    5. a phrase decided by step 2 or 4 is dropped when Whisper's clear transcript holds a content word
       the phrase does not explain (:func:`unexplained`): "where are my keys" is not "where am I", even
       though the grammar forces it there and the two are written alike; and when no content word of the
       phrase is heard in the transcript, word by word, "can you pass the salt" is not "can you repeat
       that" (unless the phrase holds a name Whisper cannot spell, :attr:`names`). The transcript is then
       open text (a question for the dialog, whose readings it may ask about but never acts on). As in
       step 3, only a transcript Whisper scores above the phrase vetoes it.

    The numbers were set on a development corpus kept apart from the benchmark's (docs/benchmarks.md).
    """

    name = "hybrid"

    alike = 60
    """How alike (rapidfuzz ratio of the letters, 0-100) a clear Whisper phrase and the grammar's
    reading must be for the grammar's reading to stand."""
    candidates = 16
    """How many of the guide's phrases, the most like Whisper's transcript, are scored."""
    prior_weight, gap, margin = 0.7, 8.0, 5.0
    """Rescoring: weight of a phrase's log-probability given silence; how far (natural log) below
    Whisper's own reading the best phrase may score; how far ahead of other meanings it must be."""

    alternatives = 4
    """When Whisper's transcript decides (step 1), how many guide phrases, the most like it, Whisper scores
    for the N-best list (scoring 16 there cost about twice the transcription: measured 760 against 340 ms
    median on a loaded machine)."""
    open_words = 2
    """Open text (a question for the dialog): a clear transcript of at least this many words that is no command."""

    answer_gap, answer_margin, answer_score = 2.0, 3.0, 0.8
    """An expected answer (:meth:`expect`) heard by Whisper scoring only the answers: taken when it scores within
    ``answer_gap`` nats of Whisper's own transcript and ``answer_margin`` ahead of every answer meaning something
    else, with the calibrated score ``answer_score``. Measured on the task benchmark's recorded answers
    (benchmarks/answer_set_bench.py, 4 voices x clean, white and babble 10 dB, 2026-12-04): yes or no 22 -> 24 of 24
    right, "one, or two?" 41 -> 54 of 60 (wrong 2 -> 0); off-topic speech taken for an answer 0 -> 2 and 0 -> 6 of 144,
    every one of them for "no" (the question is closed, nothing is done). A gap of 4 took 6 and 12."""

    answers: tuple[str, ...] = ()
    """The answers the guide's open question expects (:meth:`expect`); none until the session hands some on."""

    def __init__(self, guide: Guide, model_path: str | None = None):
        self.whisper = WhisperRecognizer(guide, model_path)
        self.grammar = PocketsphinxRecognizer(guide)
        self.phrases = guide_phrases(guide, self.whisper.parser)
        self._keys = list(self.phrases)
        self.calibration = Calibration.load()
        self.names = frozenset(w for e in guide.lexicon for w in re.findall(r"[a-z0-9]+", e.word.lower())
                               if len(w) >= 3)
        """The guide's words Whisper cannot spell (its lexicon's: drug names), for step 5 (:func:`unexplained`)."""
        self.head = recognizer_head.for_guide(guide, notice=_head_notice, phrases=self.phrases)
        """The content-trained check (voiceguide/recognizer_head.py), or None: the hybrid alone."""

    def warm(self, stop=None) -> int:
        """Get ready while the guide talks (a thread of its own): Whisper's first transcription, and its
        prior for every guide phrase not shipped or cached (:meth:`WhisperRecognizer.warm`), which a turn would
        otherwise compute when the phrase is first a candidate (16 new phrases: 172 ms at load 5). Recognition is
        the same either way."""
        return self.whisper.warm(self._keys, stop)

    def stream(self) -> GrammarStream:
        """The grammar's search on audio as it arrives (:class:`GrammarStream`)."""
        return self.grammar.stream(self.phrases)

    def expect(self, answers) -> None:
        """The answers the guide's open question expects ("yes", "no"; "one", "the second": ``Dialog.answers``), or none:
        until the next call, a phrase the recogniser is not sure of is also heard against these alone
        (:meth:`recognize`). Called by the session after each turn (another thread may be recognising)."""
        self.answers = tuple(answers)

    def recognize(self, audio: Audio) -> Heard:
        """What was said (steps 1-4 above), with the N-best readings and their calibrated scores
        (:attr:`Heard.nbest`); clear speech that is no command comes back as open text (``kind="open"``).
        While a question is open (:meth:`expect`), a phrase not decided at :attr:`answer_score` or more is also
        scored against the expected answers alone (:meth:`_answer`): a small set is heard more reliably than by the
        whole grammar, in noise too (:attr:`answer_gap`)."""
        answers = self.answers
        ev = self.evidence(audio)
        heard = replace(ev.heard, nbest=self.calibration.nbest(ev))
        head = getattr(self, "head", None)
        heard = head.check(ev.transcript, heard) if head is not None else heard
        if answers and not (heard.text and heard.kind == "command" and heard.nbest
                            and heard.nbest[0][1] >= self.answer_score):
            answer = self._answer(ev.transcript, answers)
            if answer is not None:
                meaning = self._meaning(answer)
                rest = tuple(r for r in heard.nbest if self._meaning(r[0]) != meaning)
                return Heard(answer, self.answer_score, "voice", nbest=((answer, self.answer_score), *rest))
        return heard

    def _answer(self, transcript: Transcript, answers: tuple[str, ...]) -> str | None:
        """The expected answer Whisper scores best against the audio, when it is near Whisper's own reading and
        clearly ahead of the answers meaning something else (:attr:`answer_gap`, :attr:`answer_margin`); else None."""
        own, scores = self.whisper.score(transcript, list(answers))
        best = max(range(len(answers)), key=scores.__getitem__)
        meaning = self._meaning(answers[best])
        rivals = [sc for a, sc in zip(answers, scores) if self._meaning(a) != meaning]
        if scores[best] - own < -self.answer_gap or (rivals and scores[best] - max(rivals) < self.answer_margin):
            return None
        return answers[best]

    def evidence(self, audio: Audio) -> "Evidence":
        """Every engine's reading of ``audio`` and the decision (for :meth:`recognize` and the calibration)."""
        transcript = self.whisper.transcribe(audio)
        heard = self.whisper.heard(transcript)
        ev = Evidence(transcript, self._meaning(heard.text), self.whisper.clear(transcript))
        if heard.text:  # step 1; the grammar is not run (it is the slow part), Whisper scores the alternatives
            ev.heard, ev.decided = heard, ev.whisper
            _, ev.scored, ev.own = self._rescore(transcript, None, self.alternatives)
            return ev
        with getattr(self.grammar, "lock", None) or nullcontext():  # its N-best is the lattice of this reading
            forced, reading = self.grammar.read(audio)
            ev.alternatives = self.grammar.alternatives()
        ev.forced = (forced.intent, forced.target) if forced is not None else None
        ev.accepted = self._meaning(reading.text)
        rescored, ev.scored, ev.own = self._rescore(transcript, forced)
        if rescored.text:
            ev.heard, ev.decided = rescored, self.phrases.get(rescored.text) or self._meaning(rescored.text)
        elif reading.text and ev.clear and _alike(transcript.text, reading.text) < self.alike \
                and ev.score_of(forced.text) < ev.own:
            ev.heard = Heard("", 0.0, "voice")
        else:
            ev.heard, ev.decided = reading, ev.accepted
        ev.before = ev.heard
        if ev.heard.text and ev.clear and ev.decided is not None and ev.decided != ev.whisper \
                and ev.score_of(ev.heard.text) < ev.own:
            ev.extra = unexplained(transcript.text, ev.heard.text, names=getattr(self, "names", frozenset()))
            if ev.extra:  # step 5: clear words the reading leaves out ("where are my keys" is not "where am I")
                ev.heard, ev.decided = Heard("", 0.0, "voice"), None
        if not ev.heard.text and ev.clear and len(transcript.text.split()) >= self.open_words:
            ev.heard = Heard(transcript.text, round(float(np.exp(transcript.logprob)) * (1 - transcript.no_speech), 3),
                             "voice", kind="open")
        return ev

    def _meaning(self, text: str) -> tuple[str, str | None] | None:
        if not text:
            return None
        intent = self.whisper.parser.parse(text)
        return (intent.intent, intent.target) if intent.intent != "none" else None

    def rescore(self, transcript: Transcript, reading: Intent | None = None) -> Heard:
        """The guide phrase Whisper scores best against the audio (step 2), or nothing."""
        return self._rescore(transcript, reading)[0]

    def _rescore(self, transcript: Transcript, reading: Intent | None,
                 limit: int | None = None) -> tuple[Heard, list[tuple], float]:
        """Step 2 (``limit`` phrases by spelling, :attr:`candidates` by default), and every phrase scored:
        (phrase, meaning, log-probability, value), and Whisper's own score."""
        from rapidfuzz import fuzz, process

        query = " ".join(words_for(transcript.text))
        phrases = [p for p, _, _ in process.extract(query, self._keys, scorer=fuzz.ratio, limit=limit or self.candidates)]
        meanings = [self.phrases[p] for p in phrases]
        if reading is not None and reading.text not in phrases:
            phrases.append(reading.text)
            meanings.append((reading.intent, reading.target))
        if not phrases:
            return Heard("", 0.0, "voice"), [], 0.0
        own, scores = self.whisper.score(transcript, phrases)
        value = [s - self.prior_weight * p for s, p in zip(scores, self.whisper.prior(phrases))]
        scored = list(zip(phrases, meanings, scores, value))
        best = max(range(len(phrases)), key=value.__getitem__)
        rivals = [v for v, m in zip(value, meanings) if m != meanings[best]]
        if scores[best] - own < -self.gap or (rivals and value[best] - max(rivals) < self.margin):
            return Heard("", 0.0, "voice"), scored, own
        heard = Heard(phrases[best], round(min(1.0, float(np.exp((scores[best] - own) / self.gap))), 3), "voice")
        return heard, scored, own


def _head_notice(line: str) -> None:
    """Say on stderr why a content-trained check that is there is not used; having none (or one not
    measured better) is the normal case and is not said at every start (``voiceguide doctor`` says it)."""
    if line.startswith("The content-trained check is not used"):
        print(line, file=sys.stderr, flush=True)


@dataclass
class Evidence:
    """What each engine made of one utterance, and what the hybrid decided (:meth:`HybridRecognizer.evidence`)."""

    transcript: Transcript
    whisper: tuple[str, str | None] | None
    """The meaning of Whisper's transcript, if any."""
    clear: bool
    """Whether Whisper heard it clearly."""
    heard: Heard = Heard("", 0.0, "voice")
    """The decision."""
    scored: list = field(default_factory=list)
    """Rescoring: (phrase, meaning, log-probability, value) of each guide phrase scored."""
    own: float = 0.0
    """Whisper's score of its own transcript."""
    forced: tuple[str, str | None] | None = None
    """The grammar search's reading (whatever its fit); None when the grammar was not run or found none."""
    accepted: tuple[str, str | None] | None = None
    """The grammar's reading when its fit checks accepted it."""
    alternatives: list = field(default_factory=list)
    """The grammar search's other readings (its lattice's N-best), as meanings, best first."""

    decided: tuple[str, str | None] | None = None
    """The meaning of the decision, when it is a command."""
    before: Heard | None = None
    """The decision of steps 1-4, before step 5 (:func:`unexplained`) looked at it (for benchmarks)."""
    extra: list = field(default_factory=list)
    """Step 5: the content words of Whisper's clear transcript that the decided phrase leaves unexplained."""

    def score_of(self, phrase: str) -> float:
        """Whisper's score of ``phrase`` against the audio (-inf when it was not scored)."""
        return next((s for p, _, s, _ in self.scored if p == phrase), float("-inf"))

    def candidates(self, gap: float) -> dict[tuple[str, str | None], dict]:
        """Every meaning some engine read: the phrase to show for it and its :data:`FEATURES`."""
        best: dict[tuple, tuple[float, float, str]] = {}  # meaning -> (value, score, phrase)
        for phrase, meaning, score, value in self.scored:
            if meaning not in best or value > best[meaning][0]:
                best[meaning] = (value, score, phrase)
        phrase_of = {m: p for m, (_, _, p) in best.items()}
        if self.whisper is not None:
            phrase_of[self.whisper] = self.transcript.text
        for meaning in (self.forced, self.accepted, *self.alternatives):
            if meaning is not None and meaning not in phrase_of:
                phrase_of[meaning] = f"{meaning[0]} {meaning[1]}" if meaning[1] else meaning[0]
        if self.decided is not None:
            phrase_of[self.decided] = self.heard.text
        top = max((v for v, _, _ in best.values()), default=0.0)
        z = sum(np.exp(v - top) for v, _, _ in best.values())
        out = {}
        for meaning, phrase in phrase_of.items():
            value, score, _ = best.get(meaning, (None, None, None))
            others = [v for m, (v, _, _) in best.items() if m != meaning]
            lead = (float(np.clip((value - max(others)) / 10, -1, 1)) if others else 1.0) if value is not None else -1.0
            out[meaning] = {"phrase": phrase, "features": [
                1.0 if meaning == self.decided else 0.0,
                1.0 if meaning == self.whisper else 0.0,
                1.0 if meaning == self.whisper and self.clear else 0.0,
                float(np.exp(value - top) / z) if value is not None else 0.0,
                lead,
                float(np.clip((score - self.own) / gap, -3, 1)) if score is not None else -3.0,
                1.0 if meaning == self.forced else 0.0,
                1.0 if meaning == self.accepted else 0.0,
                1.0 if meaning in self.alternatives else 0.0,
            ]}
        return out


FEATURES = ("decided", "whisper", "whisper_clear", "rescore_share", "rescore_lead", "rescore_gap",
            "grammar", "grammar_accepted", "grammar_nbest")
"""The features of one reading the calibration weighs: whether it is the hybrid's decision; Whisper's
transcript meaning it (and clearly); its share of the rescoring (softmax over meanings of the best
phrase value); its lead over the next meaning (/10, clipped to +-1); its score against Whisper's own
reading (/gap, clipped to -3..1); the grammar search's reading, accepted by the fit checks, or in
that search's N-best."""


CALIBRATION_FILE = Path(__file__).with_name("asr_calibration.json")


@dataclass
class Calibration:
    """P(reading is right) = logistic(weights . features + bias), fitted on the development corpus
    (``benchmarks/calibration.py``, never on the held-out benchmark); stored in :data:`CALIBRATION_FILE`."""

    weights: tuple[float, ...]
    bias: float
    size: int = 5
    """How many readings an N-best list keeps."""

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> "Calibration":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            weights = tuple(float(w) for w in data["weights"])
            if len(weights) != len(FEATURES) or list(data["features"]) != list(FEATURES):
                raise ValueError("features differ")
            return cls(weights, float(data["bias"]))
        except (OSError, ValueError, KeyError, TypeError):  # not fitted yet: the rescoring share alone
            return cls(tuple(1.0 if f == "rescore_share" else 0.0 for f in FEATURES), 0.0)

    def score(self, features) -> float:
        return float(1 / (1 + np.exp(-(np.dot(self.weights, features) + self.bias))))

    def nbest(self, ev: Evidence) -> tuple[tuple[str, float], ...]:
        """One reading per meaning, best first: (a phrase with that meaning, calibrated score 0..1)."""
        rows = [(e["phrase"], round(self.score(e["features"]), 3)) for e in ev.candidates(HybridRecognizer.gap).values()]
        return tuple(sorted(rows, key=lambda r: -r[1])[: self.size])


FUNCTION_WORDS = frozenset("""
a an the my your our his her its their i me we us you he she it they them this that these those is am are was were
be been being do does did done have has had can could will would shall should may might must to of in on at for with
about from by up down out off over into onto as if so and or but not no yes what where which who whom how when why
there here some any all much many more most very too also just please now then again oh um uh er ok okay well hey hi
thanks thank let lets get got go going gonna want like im ill id ive youre thats whats theres dont cant wont isnt
arent one bit than
""".split())
"""Everyday English words that carry no topic of their own (step 5 of :class:`HybridRecognizer` ignores them)."""


HEARD = 45.0
"""Step 5, word by word: how alike (rapidfuzz ratio, 0-100) a content word of the decided phrase and the
transcript words aligned with it must be for that word to count as heard (:func:`unexplained`)."""


def unexplained(transcript: str, phrase: str, matched: float = 0.5, heard: float = HEARD,
                names: frozenset = frozenset()) -> list[str]:
    """The content words of ``transcript`` (Whisper's clear reading) that ``phrase`` (the reading decided
    from the guide's phrases) leaves unexplained: words of three letters or more, not in
    :data:`FUNCTION_WORDS`, less than ``matched`` of whose letters the phrase accounts for. The letters of
    the two (spaces ignored) are aligned by edit distance: a transcript letter matched or substituted
    is accounted for (a misheard word sits where the phrase's word is: "pick me back" for "take me
    back", "tell me about my toes and trom" for "tell me about mitoxantrone"); one the alignment
    deletes has nothing in the phrase (the surplus: "keys" in "where are my keys" read as "where am
    I"). A second saying of the phrase at the end (Whisper's decoder repeating itself) is dropped first.

    Then, word by word: each content word of the phrase is compared with the transcript words its letters
    are aligned with (:func:`phrase_words_heard`). When the phrase has content words and not one of them
    is heard there (letters alike below ``heard`` of 100), the letters only stood in for each other and
    every content word of the transcript is unexplained: "can you pass the salt" is not "can you repeat
    that" ("repeat" against "pass": 40). Whisper spells everyday words when it hears them clearly. One
    misheard word among heard ones stays explained ("what does remission need": "remission" is heard);
    and a phrase holding one of ``names`` (the guide's lexicon: words Whisper has never seen, which it
    writes as everyday words, "what is those spot tt" for "what is xospata", 44) is left to the letters,
    as is a phrase word aligned with no transcript word (a word missing is not a word misheard).
    """
    from rapidfuzz.distance import Levenshtein

    words = _words(transcript, phrase)
    t, p = "".join(words), re.sub(r"[^a-z0-9]", "", phrase.lower())
    covered = np.ones(len(t), bool)
    for op in Levenshtein.opcodes(t, p):
        if op.tag == "delete":
            covered[op.src_start:op.src_end] = False
    content = [len(w) >= 3 and w not in FUNCTION_WORDS for w in words]
    said = phrase_words_heard(transcript, phrase)
    none_heard = (bool(said) and all(group for _, group, _ in said) and max(s for _, _, s in said) < heard
                  and not names.intersection(re.findall(r"[a-z0-9]+", phrase.lower())))
    out, pos = [], 0
    for w, c in zip(words, content):
        share = float(covered[pos:pos + len(w)].mean()) if w else 1.0
        pos += len(w)
        if c and (share < matched or none_heard):
            out.append(w)
    return out


def _words(transcript: str, phrase: str) -> list[str]:
    """The transcript's words, without a second saying of ``phrase`` at the end (Whisper repeating itself)."""
    words = [w.replace("'", "") for w in re.findall(r"[a-z0-9']+", transcript.lower())]
    for k in range(1, len(words)):
        if _alike(" ".join(words[k:]), phrase) >= 60 and _alike(" ".join(words[:k]), phrase) >= 60:
            return words[:k]
    return words


def phrase_words_heard(transcript: str, phrase: str) -> list[tuple[str, list[str], float]]:
    """Each content word of ``phrase``: (the word, the transcript words its letters are aligned with, how
    alike the two are written, 0-100). "can you pass the salt" against "can you repeat that": [("repeat",
    ["pass"], 40)]; "open my toes and trom" against "open mitoxantrone": [("open", ["open"], 100),
    ("mitoxantrone", ["my", "toes", "and", "trom"], 64)]."""
    from rapidfuzz import fuzz
    from rapidfuzz.distance import Levenshtein

    words = _words(transcript, phrase)
    pw = [w.replace("'", "") for w in re.findall(r"[a-z0-9']+", phrase.lower())]
    t, p = "".join(words), "".join(pw)
    owner = np.repeat(np.arange(len(words)), [len(w) for w in words])
    aligned = np.full(len(p), -1)
    for op in Levenshtein.opcodes(t, p):
        if op.tag in ("equal", "replace"):
            aligned[op.dest_start:op.dest_end] = np.arange(op.src_start, op.src_end)
    out, pos = [], 0
    for w in pw:
        idx = aligned[pos:pos + len(w)]
        pos += len(w)
        if len(w) < 3 or w in FUNCTION_WORDS:
            continue
        group = [words[i] for i in sorted(set(owner[idx[idx >= 0]].tolist()))]
        out.append((w, group, float(fuzz.ratio(w, "".join(group))) if group else 0.0))
    return out


def _alike(a: str, b: str) -> float:
    """How alike two phrases are written, 0-100, ignoring case, spaces and punctuation."""
    from rapidfuzz import fuzz

    a, b = (re.sub(r"[^a-z0-9]", "", s.lower()) for s in (a, b))
    return fuzz.ratio(a, b) if a and b else 0.0
