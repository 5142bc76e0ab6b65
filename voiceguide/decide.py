"""Deciding what a spoken reading means: act on it, ask about it, or not understood. Pure: no I/O.

A spoken input comes with the recogniser's readings, one per meaning, best first, each with its calibrated
score (``Heard.readings`` in voiceguide.dialog). :meth:`Decider.judge` makes them a verdict: ``act`` on one
intent, ``confirm`` one ("Gilteritinib? Say yes, or say the topic again"), ``choose`` between two
("Gilteritinib, or Ivosidenib?"), or ``miss`` (not understood); :meth:`Decider.decide` adds the memory of one
turn: a saying not understood and the next one heard the same way are pooled (:data:`POOL`). The thresholds
(:data:`ACT`, :data:`RIVAL`, :data:`FLOOR`, :data:`CHEAP_BAR`, :data:`OPEN_BAR`) come from the calibration's
reliability curve; the rules for known cases (:data:`CONFUSIONS`, :data:`SAME_NAME`, :data:`CARRIER`,
:data:`LIST_CLEAN`) from the task benchmark, each behind its switch. Cheap commands are never confirmed, leaving
always is, and keys and typed text (no readings) are never asked about.

The dialog (voiceguide.dialog) asks the questions and acts on the verdicts; this module never imports it: it
reads the dialog's :class:`~voiceguide.state.State` and is handed what a number picks at the listener's place.
The switches and thresholds are module globals read when used (``SAME_NAME`` when a :class:`Decider` is made):
set them here, or on voiceguide.dialog, which hands them on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .content import Guide, Section, normalize
from .grammar import NUMBER_CARRIERS
from .intents import COMMAND_PHRASES, Intent
from .state import CONFIRMING, State

__all__ = ["Decider", "ACT", "RIVAL", "FLOOR", "CHEAP_BAR", "OPEN_BAR", "CHEAP", "CARRIER", "POOL", "POOL_ASK",
           "CONFUSIONS", "SAME_NAME", "LIST_CLEAN", "SETTINGS"]

# Act, confirm or disambiguate (issue 21). A spoken input carries the recogniser's readings, one per
# meaning, each with a score calibrated on the development corpus: how often a reading with that score
# was what was said (benchmarks/calibration.py; docs/benchmarks.md, "Recognition confidence: N-best
# calibration"). Its reliability curve set these numbers:
# - top readings scored 0.9 or more were right 97% of the time on the development corpus (100
#   utterances) and 98% on held-out audio (88), and no off-topic phrase scored that high: above ACT the
#   guide acts, unless a second meaning also scores RIVAL or more (then it asks which of the two);
# - between 0.2 and 0.9 readings were right 33-92% of the time (a quarter of all utterances): the band
#   where a question pays, so the guide confirms the one reading ("Gilteritinib?"), or asks between two;
# - below FLOOR (0.2) they were right 7-12% of the time and most off-topic phrases fall there: not
#   understood, never asked about.
# - cheap commands (CHEAP: undone by saying the opposite, or by nothing) are never confirmed: they are
#   done when the recogniser decided them at CHEAP_BAR or more, or heard the same way twice running, else
#   not understood (a reprompt costs no more than the command would). CHEAP_BAR was 0.6 until the task
#   benchmark (benchmarks/task_success_bench.py, 2026-12-02): the 4 off-topic phrases it saw acted on in
#   noise were all cheap readings, 3 of them scored 0.65-0.86 ("call my daughter back" as "oh never
#   mind", "where are my keys" as "where am I", "can you pass the salt" as "can you repeat that"), the
#   fourth 0.985. At 0.9 those 3 went, for one command task more not done within two turns (of 396) and
#   mean turns 1.49 -> 1.51 in white noise; at 0.8, 2 went.
# The guide only ever acts on what the recogniser itself decided (its reading, not one of its
# alternatives); an alternative is at most asked about. Leaving is always asked ("Leave the guide?").
ACT = 0.9
"""A reading this sure (and the recogniser's own decision) is acted on at once."""
RIVAL = 0.3
"""A second meaning scored this high makes the guide ask which of the two was meant."""
FLOOR = 0.2
"""Readings below this were mostly off-topic speech: not understood, never asked about."""
CHEAP_BAR = 0.9
"""A cheap command (:data:`CHEAP`) decided at this score or more is done; below it, not understood (but
done when heard the same way at once again)."""
OPEN_BAR = 0.6
"""Clear speech the recogniser found no command in (open text, a question for the asker) whose best
reading still scores this much is asked about ("Mitoxantrone?"), when the asker has no answer from the
content: Whisper writes drug names it does not know as everyday words ("tell me about my own end
drone"), while the rescored reading is right. From 0.6 up, top readings were right 76-92% of the time."""
CARRIER = True
"""Open text whose best reading names a section or a term is asked about from :data:`FLOOR` (not only from
:data:`OPEN_BAR`) when the transcript begins with that reading's carrier: "tell me about my toes and wrong" for
"tell me about mitoxantrone" (0.55), "open and see the media" for "open enasidenib" (0.54). Whisper heard the
listener's own carrier words and wrote the drug name it does not know as everyday words; off-topic speech
seldom begins with a carrier of the guide (an article alone does not count: "the dog needs to go out" read as
"the gene test"). Every open text in the task benchmark's cache with such a reading from FLOOR to OPEN_BAR:
4 said for it, all now asked; 0 of the 10 off-topic ones."""
POOL = True
"""Pool the evidence of two sayings (:meth:`Decider._pooled`): a meaning that was the best reading of a saying
not understood and is the best reading of the next one again is acted on when the two scores, taken as
independent evidence, reach :data:`ACT`. Task benchmark (same audio): 366 -> 368 of 396 done within two
turns, wrong actions 4 -> 4, mean turns 1.59 -> 1.57 white, 1.49 -> 1.48 babble; it acted 3 times, right
each time (docs/benchmarks.md). The second saying is never open text (that goes to the asker) nor leaving,
and open text is never remembered as the first. Off-topic speech twice running (every ordered pair of the 12
off-topic phrases, 4 voices x 3 conditions, 1,728 pairs): pooled acts 9 (7 "where am I", a "repeat", a "pause")
when open text counted as a first saying, 3 ("where am I", which only says the place) without it."""
POOL_ASK = True
"""Two sayings pooled to :data:`FLOOR` or more but short of :data:`ACT` are asked about ("Repeat induction?"),
as one reading in that band is, where the second alone would not be understood (never a cheap command).
Task benchmark (same audio, on top of :data:`POOL`): wrong actions 4 -> 3 of 396 ("repeat induction", rejected
twice at 0.19 and 0.18, was heard as "repeat" at 0.96 the third time; now asked about the second time), done
within two turns 368 -> 368, mean turns white 1.57 -> 1.56; one task ("go to FLAG", heard twice as transplants
at 0.06 and 0.08) is now asked about wrongly, and was not done within two turns either way."""
CONFUSIONS = True
"""Known confusions of the development corpus, asked about instead of acted on: a bare "four" in a section
when no list was just offered ("Venetoclax, or more of Targeted Drugs?": "more" is heard as "4"), and a "no"
when nothing was asked (not understood: "go to chemotherapy" was heard as "no" at 0.99). Task benchmark (same
audio): wrong actions 3 -> 1 of 396, done within two turns 368 -> 370, mean turns clean 1.19 -> 1.20 (the
"more" heard as "4" now takes two turns, the question and "two"). Its cost, not in the tasks: a bare "four"
said in a section, recorded in 4 voices x 3 conditions, is asked about in 7 of 12 ("number four": never). The bare
four is also asked so when it is only the best reading, not the decision ("more" rejected, read as "fourth" 0.56
and "more" 0.17): 373 -> 374 of 396 within two turns, the bare-four cost unchanged."""
SAME_NAME = True
"""A term that names a section too ("what is a tibsovo", a definition; "what is tibsovo", the section Ivosidenib)
is one meaning when heard: the two readings split what was said between them ("define xospata" 0.41 against
"what is xospata" 0.06), and the guide asked "What gilteritinib means?", which the listener who wanted the
section had to refuse. Their readings are merged (the best score of the two, as a number and the name it picks
are), the meaning is asked about as the section ("Gilteritinib?"), which explains the term; a definition the
recogniser is sure of is still given. The pack's own names map makes the same choice (:meth:`Guide.names`:
where a section and a term share a name, the section wins)."""
LIST_CLEAN = True
"""After the numbered list, a number answer below :data:`ACT` is acted on only when it was said the way the
list asks for it: a number, perhaps after "number" ("number 7", "number seventh", "the fifth"). Anything more
("number fifth one": the grammar's optional "one" after a number soaks up a syllable, so "number seven" in white
noise was decided so at 0.44 and acted on as topic 5) is asked, and so is any listed number the guide would
otherwise confirm: as a two-way with the best other listed number among the readings ("Serious Warnings, or
Summary and Getting Help?"), else alone. Every recorded "number N" answer after the list (264, 4 voices x 3
conditions, the task benchmark's cache): acted on right 244 -> 244, wrong 1 -> 0."""
_NUMBER_CARRIERS = frozenset(NUMBER_CARRIERS)
"""The words the grammar allows before a number (:data:`LIST_CLEAN`)."""
CHEAP = frozenset({"repeat", "pause", "resume", "louder", "quieter", "faster", "slower", "help", "where", "back",
                   "keys", "cancel", "yes", "no"})
"""Safe and cheap to undo: never confirmed (acted on when the recogniser decided it, else not understood)."""

SETTINGS = ("ACT", "RIVAL", "FLOOR", "CHEAP_BAR", "OPEN_BAR", "CHEAP", "CARRIER", "POOL", "POOL_ASK", "CONFUSIONS",
            "SAME_NAME", "LIST_CLEAN")
"""The thresholds and switches above: voiceguide.dialog hands them on (reading or setting them there is here)."""


@dataclass(frozen=True)
class Decider:
    """The decision rules over one guide: what spoken readings mean at the listener's place."""

    guide: Guide
    numbered: Callable[[State], Sequence[Section]]
    """What a number picks at a place (the dialog's navigation: ``Dialog._numbered``)."""
    meanings: int = field(default=0, init=False, repr=False, compare=False)
    """How many meanings the pack's grammar has: its sections, its glossary terms and the commands (the prior
    of :meth:`_pooled`)."""
    names: frozenset = field(default=frozenset(), init=False, repr=False, compare=False)
    """Every speakable name of a section or term, normalised (:meth:`_carried`)."""
    term_sections: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    """Glossary term -> the section that shares its name (:meth:`key`)."""

    def __post_init__(self) -> None:
        names = self.guide.names()
        object.__setattr__(self, "names", frozenset(names))
        object.__setattr__(self, "term_sections", {
            e.term: names[normalize(e.term)][1] for e in self.guide.glossary
            if SAME_NAME and names.get(normalize(e.term), ("",))[0] == "section"})
        sections = sum(1 for _ in self.guide.walk())
        object.__setattr__(self, "meanings", sections + len(self.guide.glossary) + len(COMMAND_PHRASES))

    def decide(self, state: State, said: Intent, readings: tuple[tuple[Intent, float], ...]
               ) -> tuple[str, tuple[Intent, ...], tuple | None]:
        """What the dialog does with spoken readings: :meth:`judge`'s verdict, or ``act`` when this saying and
        the one before it, not understood (``State.missed``), were heard the same way (:meth:`_pooled`). Also the
        best reading (:meth:`_best`) when pooling looked at it (a verdict short of ``act`` with no question open;
        else None): the dialog remembers it after a miss."""
        verdict, chosen = self.judge(state, said, readings)
        best = None
        if verdict != "act" and POOL and state.asking is None and readings:
            best = self._best(state, readings)
            pooled = self._pooled(state.missed, best)
            open_text = said.intent == "none" and said.text.strip()
            if pooled >= ACT and not open_text:  # (open text: never acted on)
                return "act", (best[1],), best  # said twice, heard the same way both times
            if POOL_ASK and verdict == "miss" and pooled >= FLOOR and best[1].intent not in CHEAP:
                return "confirm", (best[1],), best  # not sure enough to act, too sure to ignore: asked about
        return verdict, chosen, best

    def judge(self, state: State, said: Intent, readings: tuple[tuple[Intent, float], ...]
              ) -> tuple[str, tuple[Intent, ...]]:
        """What to do with spoken readings: ``act`` on one intent, ``confirm`` one, ``choose`` between
        two, or ``miss`` (not understood). Input without readings (keys, typed text) is acted on.

        An answer to the open question (yes or no, one of the two asked, a number from the list just
        offered) is taken when it is the recogniser's decision scoring :data:`FLOOR` or more, or any
        reading scoring 0.5 or more, unless another meaning was decided at :data:`ACT`. Anything
        else is a new request: see :data:`ACT`, :data:`RIVAL`, :data:`FLOOR` and :data:`CHEAP`.

        ``said`` is the recogniser's decision (``none`` with no text when it rejected the phrase; ``none`` with the
        transcript for open text), ``readings`` its readings, one per meaning, best first, with their scores.
        """
        if not readings:
            return "act", (said,)
        if said.intent == "none" and said.text.strip():  # open text: never acted on
            best = next(((i, sc) for i, sc in readings if i.intent not in CHEAP and i.intent not in ("stop", "none")),
                        None)
            if best is not None and (best[1] >= OPEN_BAR or CARRIER and best[1] >= FLOOR
                                     and self._carried(said.text, best[0])):
                return "confirm", (self._resolved(state, best[0]),)
            return "miss", ()
        decided = self.key(state, said) if said.intent != "none" else None
        merged: dict[tuple, tuple[Intent, float]] = {}
        numbers: dict[tuple, str] = {}  # meanings some reading said as a number: the best such reading's words
        for intent, score in readings:
            if intent.intent == "none":
                continue
            key = self.key(state, intent)
            if intent.intent == "number":
                numbers.setdefault(key, intent.text)
            if key not in merged or score > merged[key][1]:
                merged[key] = (self._resolved(state, intent), score)
        ranked = sorted(merged.items(), key=lambda kv: -kv[1][1])
        if not ranked:
            return "miss", ()
        top_key, (top, score) = ranked[0]
        expected = self._expected(state)
        listed = {("open", sid) for sid in state.listed} - {self.key(state, p) for p in state.pending}
        for key, (intent, sc) in ranked:
            if key in listed and key not in numbers:
                continue  # the list asked for a number: a name in it is a new request, judged as one
            if key in expected and ((key == decided and sc >= FLOOR) or sc >= 0.5):
                if key == top_key or not (top_key == decided and score >= ACT):
                    if LIST_CLEAN and key in listed and sc < ACT and not _clean_number(numbers[key]):
                        return self._list_question(key, intent, ranked, listed, numbers)
                    return "act", (intent,)
                break
        if score < FLOOR:
            return "miss", ()
        if CONFUSIONS and top.intent == "no" and not state.asking:
            return "miss", ()  # a no that answers nothing: most likely something else misheard
        if CONFUSIONS and top_key in numbers and state.section is not None and not state.listed \
                and re.fullmatch(r"\W*(?:4|four|fourth)\W*", (said.text if top_key == decided else top.text).lower()):
            return "choose", (top, Intent("more", None, "more", 1.0))  # "more" is often heard as "four"
        if top.intent == "stop":
            # leaving by voice is always asked first ("Leave the guide?"), but only when the recogniser
            # decided it: a stop reading behind a misheard phrase ("number two" in babble) is not asked about
            return ("act", (top,)) if top_key == decided else ("miss", ())
        if top.intent in CHEAP:
            if top_key == decided and (score >= CHEAP_BAR or top_key == state.unsure):
                return "act", (top,)  # sure enough, or heard the same way twice running
            return "miss", ((top,) if top_key == decided else ())
        if top_key in numbers and state.section is not None and not state.listed and not self.guide.section(state.section).children:
            # a number in a section without parts picks from its parent's list (:meth:`_numbered`): a guess at
            # what was meant ("more" is often heard as "four"), so asked first ("Enasidenib? Say yes, ...")
            return "confirm", (top,)
        if LIST_CLEAN and top_key in listed and top_key in numbers:
            verdict = self._list_question(top_key, top, ranked, listed, numbers)  # (not sure enough to act on)
            if verdict[0] == "choose":
                return verdict
        rival = next((i for k, (i, sc) in ranked[1:] if sc >= RIVAL and i.intent not in CHEAP and i.intent != "stop"),
                     None)
        if rival is not None:
            return "choose", (top, rival)
        if score >= ACT and top_key == decided:
            return "act", (top,)
        return "confirm", (top,)

    @staticmethod
    def _list_question(key: tuple, intent: Intent, ranked: list, listed: set, numbers: dict
                       ) -> tuple[str, tuple[Intent, ...]]:
        """A listed number not sure enough to act on (:data:`LIST_CLEAN`): asked with the best other listed
        number among the readings ("Serious Warnings, or Summary and Getting Help?"), or alone when there is none."""
        other = next((i for k, (i, _) in ranked if k != key and k in listed and k in numbers), None)
        return ("choose", (intent, other)) if other is not None else ("confirm", (intent,))

    def _carried(self, transcript: str, reading: Intent) -> bool:
        """Whether open text begins with the carrier of a reading that names a section or a term: the reading's
        words before the name ("tell me about" in "tell me about mitoxantrone"), more than an article
        (:data:`CARRIER`)."""
        if reading.intent not in ("open", "define"):
            return False
        words = _words(reading.text)
        carrier = next((words[:k] for k in range(len(words)) if normalize(" ".join(words[k:])) in self.names), None)
        if not carrier or not set(carrier) - {"the", "a", "an"}:
            return False
        return _words(transcript)[:len(carrier)] == carrier

    def _best(self, s: State, readings: tuple[tuple[Intent, float], ...]) -> tuple[tuple, Intent, float] | None:
        """The best reading's meaning, intent (a number as what it picks) and score; leaving is never pooled."""
        ranked = sorted(((self.key(s, i), self._resolved(s, i), sc) for i, sc in readings if i.intent != "none"),
                        key=lambda r: -r[2])
        return ranked[0] if ranked and ranked[0][1].intent != "stop" else None

    def _pooled(self, missed: tuple | None, best: tuple | None) -> float:
        """Two sayings, the first not understood, whose best readings are the same meaning: act when the two
        calibrated scores, as independent evidence about one of the pack's meanings (a uniform prior over
        them), give at least :data:`ACT`: odds = odds1 x odds2 x (meanings - 1)."""
        if missed is None or best is None or missed[0] != best[0]:
            return 0.0
        odds = [min(p, 0.999) / (1 - min(p, 0.999)) for p in (missed[1], best[2])]
        pooled = odds[0] * odds[1] * (self.meanings - 1)
        return pooled / (1 + pooled)

    def key(self, s: State, i: Intent) -> tuple:
        """What an intent would do here: a number is the section it picks, and the definition of a term that
        names a section is that section's meaning (:data:`SAME_NAME`)."""
        i = self._resolved(s, i)
        if i.intent == "define" and i.target in self.term_sections:
            return ("open", self.term_sections[i.target])
        return (i.intent, i.target)

    def _resolved(self, s: State, i: Intent) -> Intent:
        """A number as the section (or the one of two asked) it picks here; anything else as it is."""
        if i.intent != "number":
            return i
        try:
            n = int(i.target or "")
        except ValueError:
            return i
        if s.asking == "choose" and n in (1, 2):
            return s.pending[n - 1]
        ids = s.listed or tuple(c.id for c in self.numbered(s))
        return Intent("open", ids[n - 1], i.text, i.confidence) if 1 <= n <= len(ids) else i

    def _expected(self, s: State) -> set[tuple]:
        """The meanings that answer what the guide just asked."""
        out: set[tuple] = {(self._resolved(s, Intent("number", str(n), "", 1.0)).intent, sid)
                           for n, sid in enumerate(s.listed, 1)}
        if s.asking:
            out |= {("yes", None), ("no", None), ("cancel", None)}
        if s.asking == "resume":
            out |= {("resume", None), ("menu", None)}
        if s.asking in CONFIRMING:
            out |= {self.key(s, p) for p in s.pending}
        return out

    def asked(self, i: Intent) -> Intent:
        """A meaning as it is asked about: the definition of a term that names a section is asked about as that
        section ("Gilteritinib?", which explains the term; :data:`SAME_NAME`)."""
        if i.intent == "define" and i.target in self.term_sections:
            return Intent("open", self.term_sections[i.target], i.text, i.confidence)
        return i


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


def _clean_number(text: str) -> bool:
    """A number said the way the list asks for it: one word, perhaps after "number" ("number 7", "the fifth")."""
    words = _words(text)
    return len(words) == 1 or len(words) == 2 and words[0] in _NUMBER_CARRIERS
