"""The dialog core: a pure state machine, no audio and no I/O.

``Dialog(guide).step(state, event) -> (state, effects)``. Events are what
happened (the start, an understood intent, a key, silence, speech that matched
nothing, speech cut short, the end of input); effects are what the shell must
do, in order (say something, play a cue, change rate, save the position, listen
with a timeout, exit). Every path is testable without sound, and the same core
serves voice, keys and text. Section bodies are said sentence by sentence, so
``continue`` after an interruption picks up at the sentence that was cut.

Error handling follows VoiceXML practice: separate no-input and no-match
counters per prompt, a different and more helpful prompt on each retry (the
third lists the options and offers the keys), counters reset on success, and
after the third failure the guide offers help once and then waits quietly where
the listener is, without a timer: it never throws the place away. Never an
endless loop.

Spoken input comes with the recogniser's readings and their calibrated scores
(:attr:`Heard.readings`): a sure reading is acted on, an unsure one confirmed
("Gilteritinib? Say yes, or say the topic again"), two close meanings asked
about ("Gilteritinib, or Ivosidenib?"), and after a miss the choices are offered
by number (:meth:`Dialog.judge`, :data:`voiceguide.decide.ACT`). A saying not understood is
remembered for one turn: said again and heard the same way, the two are pooled
(:meth:`Dialog.decide`, :data:`voiceguide.decide.POOL`). Cheap commands are never
confirmed, leaving always is, and keys and typed text are never asked about.
The rules that make readings a verdict are voiceguide.decide's; this module asks
the questions and acts. Their thresholds and switches (``ACT``, ``POOL``,
``LIST_CLEAN``...) can be read and set here too: setting ``dialog.POOL`` sets
``decide.POOL`` (:class:`_HandsOn`). :class:`State` is voiceguide.state's.

The place is a section, a paragraph and a sentence: saved on every way out,
offered next time, and remembered for each section visited in the session, so
"go back to transplant" after a detour returns to where the listener was in it.
"""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass, field, replace
from typing import Any, Union

from . import decide
from .content import Guide, Section
from .decide import Decider, _words
from .intents import Intent, bare_stop
from .state import (CONFIRMING, DEFAULT_RATE, DEFAULT_VOLUME, MAX_RATE, MAX_VOLUME, MIN_RATE, MIN_VOLUME,
                    State)

__all__ = [
    "State", "Dialog", "Start", "Heard", "Key", "NoInput", "NoMatch", "Interrupted", "EndOfInput",
    "Say", "Earcon", "SetRate", "SetVolume", "SavePosition", "Save", "Listen", "Exit", "Event", "Effect",
    "MIN_RATE", "MAX_RATE", "RATE_STEP", "DEFAULT_RATE", "MIN_VOLUME", "MAX_VOLUME", "DEFAULT_VOLUME", "KEYS",
    "KEY_HELP", "words_before_first_choice",
]

RATE_STEP = 25
"""Faster and slower change the rate by this many words a minute (within :data:`MIN_RATE` and :data:`MAX_RATE`)."""
VOLUME_STEP = 2 ** 0.5
"""Louder and quieter change the loudness by this factor (3 dB): a step a listener can hear at any level."""
MAX_TRIES = 3
DEFAULT_TIMEOUT = 10.0

HISTORY = 20
"""How many places "back" can return through (:attr:`State.history`)."""


class _HandsOn(types.ModuleType):
    """This module, handing the decision rules' thresholds and switches (``decide.SETTINGS``) on to
    voiceguide.decide, where they are read: ``dialog.POOL = False``, as an A/B run sets it, turns pooling off, and
    ``dialog.POOL`` is what ``decide.POOL`` is now. Each is a property of this module."""


def _handed_on(name: str) -> property:
    return property(lambda module: getattr(decide, name), lambda module, value: setattr(decide, name, value),
                    doc=f"voiceguide.decide.{name}, read and set there.")


for _name in decide.SETTINGS:
    setattr(_HandsOn, _name, _handed_on(_name))
del _name
sys.modules[__name__].__class__ = _HandsOn


#: key -> intent for the keyboard path (digits pick menu entries)
KEYS: dict[str, str] = {
    "h": "help", "?": "help", "r": "repeat", "b": "back", "m": "menu", "n": "next", "p": "previous",
    "": "more", "s": "skip", " ": "pause", "c": "resume", "f": "faster", "l": "slower", "w": "where",
    "y": "yes", "q": "stop", "d": "define", "+": "louder", "-": "quieter",
}
KEY_HELP = ("Keys: type a key, then press Enter. A number picks a topic. Enter alone for more, s to skip a sentence, "
            "n for the next section, p for the previous one, b to go back to where you were, m for the main menu, "
            "r to repeat, space to pause, c to continue, f for faster, l for slower, plus for louder, minus for quieter, "
            "w for where am I, d then a word for a definition, h for help, h twice for this list, q to quit. "
            "You can also type what you would say.")
COMMANDS_HELP = ("You can say: more, skip, next, previous, back to where you were, go up, main menu, repeat, pause, "
                 "continue, faster, slower, louder, quieter, where am I, what does a word mean, sources, disclaimer, keys, or stop to leave.")


# ---------------------------------------------------------------------- events


@dataclass(frozen=True)
class Start:
    """The session begins; ``resume_to`` is where a returning listener was last time."""

    resume_to: str | None = None
    rate: int = DEFAULT_RATE
    volume: int = DEFAULT_VOLUME
    """Loudness of speech, percent."""
    resume_para: int = 0
    """The paragraph of ``resume_to`` the listener had reached (0: its summary)."""
    resume_sentence: int = 0
    """The sentence in that paragraph."""


@dataclass(frozen=True)
class Heard:
    """The listener said or typed something the parser understood (or ``none``)."""

    intent: Intent
    during_speech: bool = False
    """It came while the guide was speaking (the shell knows): a bare "stop" then means stop talking."""
    by_voice: bool = False
    """It was spoken, not typed: leaving by voice is confirmed first (a misheard "stop" must not end it all)."""
    readings: tuple[tuple[Intent, float], ...] = ()
    """Speech: the recogniser's readings, one per meaning, best first, each with its calibrated score
    (:data:`voiceguide.decide.ACT`). Empty for keys and typed text (and recognisers without scores): acted on as they are."""


@dataclass(frozen=True)
class Key:
    """A key press (a line of one key): a digit picks a menu entry, letters are commands (see :data:`KEYS`)."""

    key: str


@dataclass(frozen=True)
class NoInput:
    """Nothing was said before the no-input timeout."""


@dataclass(frozen=True)
class NoMatch:
    """Speech was heard but not understood (rejected by the recogniser)."""

    text: str = ""


@dataclass(frozen=True)
class Interrupted:
    """Speech was cut short (a key press); ``continue`` picks up at the cut utterance."""

    text: str = ""
    """The utterance that was cut (one sentence of the last output)."""


@dataclass(frozen=True)
class EndOfInput:
    """Input ended (EOF): save and leave quietly."""


Event = Union[Start, Heard, Key, NoInput, NoMatch, Interrupted, EndOfInput]


# ---------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Say:
    """Say one utterance (a sentence or a short prompt)."""

    text: str
    """What to say, exactly."""
    kind: str = "prompt"
    """``prompt`` (guide talk), ``content`` (text from the pack) or ``farewell`` (the last words)."""
    unsaved: str | None = None
    """What to say instead when the last :class:`SavePosition` could not be written (the shell knows)."""


@dataclass(frozen=True)
class Earcon:
    """Play a short cue."""

    name: str
    """``listening`` or ``nomatch``."""


@dataclass(frozen=True)
class SetRate:
    """Change the speaking rate (words per minute)."""

    wpm: int


@dataclass(frozen=True)
class SetVolume:
    """Change the loudness of speech (percent of full loudness)."""

    percent: int


@dataclass(frozen=True)
class SavePosition:
    """Keep the position, rate and loudness for next time."""

    section: str | None
    """Where the listener is (None: main menu)."""
    rate: int
    volume: int
    """Loudness of speech, percent."""
    para: int = 0
    """The paragraph of ``section`` the listener had reached (0 with ``sentence`` 0: its summary)."""
    sentence: int = 0
    """The sentence in that paragraph the listener had reached."""


Save = SavePosition  # short name


@dataclass(frozen=True)
class Listen:
    """Wait for the listener: ``timeout`` seconds, or None for no timer (paused, or timeouts switched off)."""

    timeout: float | None


@dataclass(frozen=True)
class Exit:
    """End the session with this status."""

    status: int = 0


Effect = Union[Say, Earcon, SetRate, SetVolume, SavePosition, Listen, Exit]


# ---------------------------------------------------------------------- the core


@dataclass(frozen=True)
class Dialog:
    """Pure transitions over one guide."""

    guide: Guide
    timeout: float | None = DEFAULT_TIMEOUT
    """Seconds to wait for an answer before the no-input prompts; None switches the timer off."""
    asker: Any = None
    """Optional: anything with ``ask(text, section=None) -> Answer`` (voiceguide.ask): questions that are not
    commands; ``section`` is where the listener is, for follow-ups ("which mutation does it target")."""
    _order: tuple[str, ...] = field(default=(), repr=False)
    _rules: Decider = field(default=None, init=False, repr=False, compare=False)
    """The decision rules over this guide (voiceguide.decide): what spoken readings mean here."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_order", tuple(s.id for s in self.guide.walk()))
        object.__setattr__(self, "_rules", Decider(self.guide, self._numbered))

    # -- start -------------------------------------------------------------
    def start(self, *, resume_to: str | None = None, rate: int = DEFAULT_RATE,
              volume: int = DEFAULT_VOLUME, resume_para: int = 0, resume_sentence: int = 0
              ) -> tuple[State, list[Effect]]:
        """Shorthand for ``step(State(), Start(...))``."""
        return self.step(State(), Start(resume_to, rate, volume, resume_para, resume_sentence))

    def _start(self, ev: Start) -> tuple[State, list[Effect]]:
        g = self.guide
        rate, volume = _clamp(ev.rate), _clamp_volume(ev.volume)
        state = State(rate=rate, volume=volume)
        if ev.resume_to and ev.resume_to in g:
            sec = g.section(ev.resume_to)
            para, sent = self._valid_place(sec, ev.resume_para, ev.resume_sentence)
            where = self._place_words(sec, para, sent)
            question = f"Last time you were in {sec.title}{', ' + where if where else ''}. Say continue, or main menu."
            state = replace(state, asking="resume", resume_to=sec.id, resume_para=para, resume_sent=sent,
                            disclaimed=False, places=((sec.id, para, sent),) if (para, sent) != (0, 0) else ())
            state, effects = self._say(state, f"Welcome back to {g.title}.", question)
        else:
            intro = self._intro()
            state, effects = self._say(state, *intro, *self._menu_lines())
        return state, [SetRate(rate), SetVolume(volume), *effects]

    # -- step --------------------------------------------------------------
    def step(self, state: State, event: Event) -> tuple[State, list[Effect]]:
        """One turn: the new state and the effects to perform, in order.

        Unless the session has ended (the effects then end with :class:`Exit`),
        the last effect is :class:`Listen`: no timer while paused.
        """
        state, effects = self._step(state, event)
        if not state.ended:
            effects.append(Listen(None if state.paused else self.timeout))
        return state, effects

    LIKELY = ("more", "next", "back", "menu", "repeat", "where", "help")
    """Commands a listener is likely to give anywhere, after the current choices (:meth:`likely_replies`). "where am I"
    is among them: its reply names the place, so it was rendered only once asked (speech started 229-430 ms after
    recognition against 20-50 ms for prepared replies, latency_bench, Piper, load 3-5)."""

    def likely_replies(self, state: State) -> list[str]:
        """What the guide would say first after the likeliest next inputs, most likely first: each
        current choice, ``yes`` to an open question, the common commands, then not being understood.
        The shell hands these to the speaker while the listener thinks, so the answer starts at once."""
        if state.ended:
            return []
        events = [Heard(Intent("number", str(n), str(n), 1.0)) for n in range(1, len(self._choices(state)) + 1)]
        if state.asking:
            events.append(Heard(Intent("yes", None, "yes", 1.0)))
        events += [Heard(Intent(name, None, name, 1.0)) for name in self.LIKELY]
        events.append(NoMatch(""))
        replies: dict[str, None] = {}
        for event in events:
            says = [e.text for e in self._step(state, event)[1] if isinstance(e, Say)]
            if says:
                replies.setdefault(says[0])
        return list(replies)

    def answers(self, state: State) -> tuple[str, ...]:
        """The answers the open question expects, as the listener would say them, for the recogniser to hear them
        against alone (:meth:`HybridRecognizer.expect <voiceguide.asr_hybrid.HybridRecognizer.expect>`): yes or no to
        "Gilteritinib?" or to an offer; one or two (the first, the second, neither) to a two-way question. None for
        "Leave the guide?" (leaving must be heard for sure), nor after the numbered list: that is no question, and a
        listener as often says the command again ("more" was then taken for "four", "move on" for "number one": task
        benchmark, 1 to 3 more wrong actions, docs/benchmarks.md)."""
        if state.ended or state.asking == "leave":
            return ()
        if state.asking in ("confirm", "offer"):
            return ("yes", "no")
        if state.asking == "choose":
            return ("one", "two", "the first", "the second", "neither", "no")
        return ()

    def _step(self, state: State, event: Event) -> tuple[State, list[Effect]]:
        if isinstance(event, Start):
            return self._start(event)
        if state.ended:
            return state, [Exit(0)]
        if state.unsure is not None and not (isinstance(event, Heard) and event.readings):
            state = replace(state, unsure=None)  # "twice running" means the very next spoken turn
        if state.missed is not None and not isinstance(event, (Interrupted, Heard)):
            state = replace(state, missed=None)  # the very next turn only (cutting the reprompt short keeps it)
        if isinstance(event, EndOfInput):
            return replace(state, ended=True), [self._save(state), Exit(0)]
        if isinstance(event, Interrupted):
            return self._interrupted(state, event.text), []
        if isinstance(event, NoInput):
            if state.paused:
                return state, []
            return self._no_input(state)
        if isinstance(event, NoMatch):
            if state.asking in CONFIRMING:
                return self._question_miss(state)
            return self._no_match(state, event.text)
        during_speech = by_voice = False
        if isinstance(event, Key):
            intent = key_intent(event.key)
            if intent is None:
                return self._no_match(replace(state, awaiting_word=False), event.key,
                                      "That key does nothing here. Press h for help.")
        else:
            intent, during_speech, by_voice = event.intent, event.during_speech, event.by_voice
        awaiting, state = state.awaiting_word, replace(state, awaiting_word=False)  # one word only
        helped, state = state.helped, replace(state, helped=False)
        if intent.intent == "none" and intent.text.strip() and state.asking == "leave" and not awaiting:
            # "Leave the guide?" waits for a yes or a no: open text, spoken or typed, is not understood and the
            # question is asked again. Never the asker: its answer would offer more, and the listener's next
            # "yes" would open a section instead of leaving (found in fresh-clone CI)
            return self._no_match(replace(state, unsure=None, missed=None), intent.text)
        # a pause said over the guide has already cut it (the microphone's checks): its effect, silence, has happened;
        # judged by the scores and not understood, the guide spoke a numbered list instead (voice walk)
        if (isinstance(event, Heard) and event.readings and not (awaiting and intent.intent in ("define", "none"))
                and not _pauses(intent, during_speech)):
            # (after "d", the word to define is taken as said; any other spoken command is judged as usual)
            verdict, chosen, best = self._decide(state, event)  # (pooled with state.missed, then forgotten)
            state = replace(state, missed=None,
                            unsure=(chosen[0].intent, chosen[0].target) if verdict == "miss" and chosen else None)
            open_text = intent.intent == "none" and bool(intent.text.strip())
            # a saying not understood is remembered for the next one (not open text: see State.missed)
            best = None if open_text else best
            if open_text and self.asker is not None:
                # open text: a question first; the readings are asked about only if the content has no answer
                confirm = (lambda st: self._confirm(st, chosen)) if verdict == "confirm" else None
                return self._ask(_ok(self._close_question(state)), intent.text, otherwise=confirm)
            if verdict in ("confirm", "choose"):
                return self._confirm(_ok(state), chosen)
            if verdict == "miss":
                if state.asking in CONFIRMING:
                    return self._question_miss(state)
                st, eff = self._no_match(state, intent.text)
                return (replace(st, missed=best[::2]) if best else st), eff
            intent = chosen[0]
        elif state.missed is not None:
            state = replace(state, missed=None)  # (typed, or the word after "d")
        if intent.intent == "none":
            if awaiting:
                return self._define(state, None, intent.text)
            if self.asker is not None and intent.text.strip():
                return self._ask(_ok(self._close_question(state)), intent.text)
            if intent.asks_for_advice:
                return self._say(_ok(state),
                                 "I can't give medical advice. This guide only shares general information "
                                 "from its sources. Please ask your care team what is right for you.")
            return self._no_match(state, intent.text)
        state = _ok(state)
        if intent.intent == "next" and isinstance(event, Key) and state.asking:
            intent = Intent("no", None, intent.text, 1.0)  # the n key answers an open question: no
        if intent.intent == "stop":
            return self._on_stop(state, intent, during_speech=during_speech, by_voice=by_voice)
        if state.asking == "choose" and intent.intent == "number" and intent.target in ("1", "2"):
            intent = state.pending[int(intent.target) - 1]  # "the first", "two", the 1 key: one of the two asked
        if state.asking in CONFIRMING and intent.intent == "resume":
            return self._say(replace(state, paused=False, waiting=False), self._question(state))
        if intent.intent not in _NEUTRAL and intent.intent != "number":
            state = replace(state, listed=())  # a move: numbers mean the current choices again
        if intent.intent == "help":
            state2, effects = self._on_help(state, intent, again=helped)
        else:
            if intent.intent not in _NEUTRAL:
                state = self._close_question(state)  # another command: the open question is dropped
            state2, effects = self._act(state, intent)
        if state.asking in CONFIRMING and state2.asking == state.asking and intent.intent in _REASK:
            question = self._question(state2)  # help, where am I, faster...: then back to the question
            effects.append(Say(question))
            state2 = replace(state2, last=(*state2.last, question))
        return state2, effects

    def _act(self, s: State, intent: Intent):
        return getattr(self, f"_on_{intent.intent}")(s, intent)

    # -- act, confirm or disambiguate (issue 21): the rules are voiceguide.decide's ----------------------
    def decide(self, state: State, event: Heard) -> tuple[str, tuple[Intent, ...]]:
        """What :meth:`step` does with spoken readings: :meth:`judge`'s verdict, or ``act`` when this saying
        and the one before it, not understood, were heard the same way (:meth:`Decider.decide
        <voiceguide.decide.Decider.decide>`)."""
        return self._decide(state, event)[:2]

    def _decide(self, state: State, event: Heard) -> tuple[str, tuple[Intent, ...], tuple | None]:
        """:meth:`decide`, and the best reading when pooling looked at it: :meth:`step` remembers it after a miss."""
        return self._rules.decide(state, event.intent, event.readings)

    def judge(self, state: State, event: Heard) -> tuple[str, tuple[Intent, ...]]:
        """What to do with spoken readings: ``act`` on one intent, ``confirm`` one, ``choose`` between two, or
        ``miss`` (not understood); input without readings (keys, typed text) is acted on
        (:meth:`Decider.judge <voiceguide.decide.Decider.judge>`)."""
        return self._rules.judge(state, event.intent, event.readings)

    def takes(self, state: State, event) -> bool:
        """Whether a saying heard over the guide would be acted on or asked about (:meth:`judge`), not "not
        understood": a pause or a bare stop always (said over the guide, it is done at once), and input without
        readings. The microphone asks before it cuts the guide (``voiceguide.mic.MicListener.takes``)."""
        if not isinstance(event, Heard):
            return False
        if _pauses(event.intent, True):
            return True
        if not event.readings:
            return event.intent.intent != "none"
        return self.judge(state, event)[0] != "miss"

    def _key(self, s: State, i: Intent) -> tuple:
        """What an intent would do here (:meth:`Decider.key <voiceguide.decide.Decider.key>`)."""
        return self._rules.key(s, i)

    def _confirm(self, s: State, intents: tuple[Intent, ...]):
        """Ask about one meaning ("Gilteritinib?") or two ("Gilteritinib, or ivosidenib?")."""
        intents = tuple(self._rules.asked(i) for i in intents)
        s = self._ask_too(s, "confirm" if len(intents) == 1 else "choose", pending=tuple(intents[:2]), tries=0)
        return self._say(s, self._question(s))

    def _question(self, s: State) -> str:
        labels = [_cap(self._label(s, p)) for p in s.pending]
        if s.asking == "choose" and len(labels) == 2:
            return f"{labels[0]}, or {labels[1]}?"
        if not labels:
            return self._reprompt(s)
        again = "the topic" if s.pending[0].intent in ("open", "number") else "the word" \
            if s.pending[0].intent == "define" else "it"
        return f"{labels[0]}? Say yes, or say {again} again."

    def _hint(self, s: State) -> str:
        return "Say one or two, or no." if s.asking == "choose" else "Say yes, or no."

    def _label(self, s: State, i: Intent) -> str:
        """A meaning in a few words the listener can recognise."""
        g = self.guide
        if i.intent == "open" and i.target in g:
            return g.section(i.target).title
        if i.intent == "define" and i.target:
            return f"the meaning of {i.target}"  # "The meaning of remission?" ("What remission means?" was no English)
        if i.intent == "number":
            return f"number {i.target}"
        here = g.section(s.section).title if s.section else None
        if i.intent in ("next", "previous") and s.section is not None:
            idx = self._order.index(s.section) + (1 if i.intent == "next" else -1)
            if 0 <= idx < len(self._order):
                return f"the {i.intent} section, {g.section(self._order[idx]).title}"
        return {"menu": "the main menu", "more": f"more of {here}" if here else "more about each topic",
                "skip": "skip a sentence", "next": "the next section", "previous": "the previous section",
                "sources": "the sources", "disclaimer": "the disclaimer", "define": "a definition",
                "stop": "leave the guide"}.get(i.intent, i.intent)

    def _question_miss(self, s: State):
        """An answer to "Gilteritinib?" not understood: ask once more, then offer the numbered list."""
        if s.tries + 1 >= 2:
            state, effects = self._offer_list(self._close_question(s), "Sorry, I still didn't catch that.")
            return state, [Earcon("nomatch"), *effects]
        s = replace(s, tries=s.tries + 1)
        state, effects = self._say(s, f"Sorry, I didn't catch that. {self._question(s)} {self._hint(s)}")
        return state, [Earcon("nomatch"), *effects]

    def _offer_list(self, s: State, lead: str):
        """After a miss: the current choices by number (digits are the words best recognised)."""
        choices = self._choices(s) or self.guide.sections
        s = replace(s, listed=tuple(c.id for c in choices))
        items = "; ".join(f"{n}, {c.title}" for n, c in enumerate(choices, 1))
        # "number 4" was recognised more often than "four" alone (docs/benchmarks.md, task success by voice)
        what = "Choose by number" if self._choices(s) else "Choose a topic by number"
        return self._say(s, f"{lead} {what}, like number 1: {items}. Or say what you want again, or help.".strip())

    def _close_question(self, s: State) -> State:
        if s.asking in _ON_TOP:
            return replace(s, asking=s.prior, prior=None, offer=None, pending=(), tries=0)
        return s

    def _ask_too(self, s: State, question: str, **fields) -> State:
        """Open ``question`` on top of the one open now (kept in ``prior``)."""
        prior = s.prior if s.asking in _ON_TOP else s.asking
        return replace(s, asking=question, prior=prior, **fields)

    # -- intents -----------------------------------------------------------
    def _on_open(self, s: State, i: Intent):
        return self._enter(s, i.target)

    def _on_define(self, s: State, i: Intent):
        if i.target is None:
            return self._say(replace(s, awaiting_word=True), "Which word? Say or type it, for example: remission.")
        return self._define(s, i.target, i.text)

    def _define(self, s: State, term: str | None, text: str):
        entry = self.guide.term(term) if term else None
        if entry is None:
            known = ", ".join(e.term for e in self.guide.glossary[:4])
            return self._say(s, f"Sorry, I don't have a definition for that. I can explain words like {known}.")
        return self._say(s, f"{_term_title(entry)}: {entry.definition}")

    def _on_repeat(self, s: State, i: Intent):
        if not s.last:
            return self._say(s, "There is nothing to repeat yet.")
        return replace(s, interrupted=False, cut=0), [Say(t) for t in s.last]

    def _on_back(self, s: State, i: Intent):
        """Back to where the listener was before this section (its place kept, as coming back to a section is),
        as in a browser; up a level when there is no such place (at the start, after resuming) or when asked
        to go up ("go up", "up one level")."""
        up = _says_up(i.text)
        target, rest = (self._up(s), s.history) if up else self._back(s)
        if target == s.section:
            return self._say(s, "You are at the main menu.", *self._menu_lines())
        s = replace(s, history=rest)  # going back is no new place to come back from; going up is
        if target is None:
            return self._menu(s, record=up)
        return self._enter(s, target, record=up)

    def _back(self, s: State) -> tuple[str | None, tuple[str | None, ...]]:
        """Where "back" goes (a section id, None for the main menu), and the history left after going there."""
        history = tuple(h for h in s.history if h is None or h in self.guide)
        while history and history[0] == s.section:
            history = history[1:]
        if history:
            return history[0], history[1:]
        return self._up(s), ()

    def _up(self, s: State) -> str | None:
        parent = self.guide.parent(s.section) if s.section is not None else None
        return parent.id if parent else None

    def _back_words(self, s: State) -> str:
        """What "back" does here, in words: "back to return to Gilteritinib", "back to go up to the main menu"."""
        target = self._back(s)[0]
        name = self.guide.section(target).title if target else "the main menu"
        return f"back to return to {name}" if self._back_history(s) else f"back to go up to {name}"

    def _back_history(self, s: State) -> bool:
        return any(h != s.section and (h is None or h in self.guide) for h in s.history)

    def _on_next(self, s: State, i: Intent):
        if s.asking == "resume":
            return self._on_no(s, i)
        idx = -1 if s.section is None else self._order.index(s.section)
        if idx + 1 >= len(self._order):
            return self._say(s, "This is the last section. Say main menu, or previous.")
        return self._enter(s, self._order[idx + 1])

    def _on_previous(self, s: State, i: Intent):
        if s.section is None:
            return self._say(s, "You are at the main menu. Say a topic, or next.")
        idx = self._order.index(s.section)
        if idx == 0:
            return self._menu(s)
        return self._enter(s, self._order[idx - 1])

    def _on_more(self, s: State, i: Intent):
        s = replace(s, paused=False, waiting=False)
        if s.section is None:
            if s.asking == "resume":
                return self._on_yes(s, i)
            return self._say(s, *self._describe_lines())
        sec = self.guide.section(s.section)
        if s.para >= len(sec.body):
            return self._say(s, *self._end_of(sec))
        return self._read(s, sec, s.para, s.sent)

    def _on_skip(self, s: State, i: Intent):
        """Skip one sentence: the one being said when speech was cut, else the next one."""
        s = replace(s, paused=False, waiting=False)
        if s.section is None:
            return self._on_next(s, i)
        if s.interrupted and s.reading_para is None and s.last:  # a prompt was cut: on past that sentence
            rest = s.last[s.cut + 1:]
            if rest:
                return replace(s, interrupted=False, cut=0, last=rest), [Say(t) for t in rest]
        sec = self.guide.section(s.section)
        if s.para >= len(sec.body):
            return self._say(s, *self._end_of(sec))
        para, sent = s.para, s.sent + 1
        if sent >= len(split_sentences(sec.body[para])):
            para, sent = para + 1, 0
        if para >= len(sec.body):
            return self._say(replace(s, para=para, sent=0), *self._end_of(sec))
        return self._read(s, sec, para, sent)

    def _on_menu(self, s: State, i: Intent):
        return self._menu(s)

    def _on_help(self, s: State, i: Intent, again: bool = False):
        if again:
            return self._say(s, f"{COMMANDS_HELP} {KEY_HELP}")
        return self._say(replace(s, helped=True), self._help_text(s))

    def _on_keys(self, s: State, i: Intent):
        return self._say(s, KEY_HELP)

    def _on_stop(self, s: State, i: Intent, *, during_speech: bool = False, by_voice: bool = False):
        if _pauses(i, during_speech):
            return self._on_pause(s, i)  # "stop" while the guide talks: stop talking
        if by_voice and s.asking != "leave":
            return self._say(self._ask_too(s, "leave"), "Leave the guide? Your place is kept. Say yes or no.",
                             remember=False)
        return self._leave(self._close_question(s) if s.asking == "leave" else s)

    def _leave(self, s: State):
        section, para, sent = _position(s)
        if section is None:
            where = "the main menu"
        else:
            sec = self.guide.section(section)
            spot = self._place_words(sec, para, sent)
            where = f"{sec.title}{', ' + spot if spot else ''}"
        effects: list[Effect] = [self._save(s)]
        if not s.disclaimed:  # a returning listener, or one who cut the welcome short
            effects.append(Say(f"Remember: {self.guide.disclaimer} {self.guide.reviewed_line()}"))
        effects.append(Say(f"Goodbye. Your place is kept: {where}. To come back, start VoiceGuide again.", "farewell",
                           unsaved="Goodbye. I could not save your place this time. "
                                   "To come back, start VoiceGuide again."))
        return replace(s, ended=True), [*effects, Exit(0)]

    def _on_pause(self, s: State, i: Intent):
        return self._say(replace(s, paused=True), "Paused. Say continue, or press c and Enter, when you are ready.",
                         remember=False)

    def _on_resume(self, s: State, i: Intent):
        if s.asking == "resume":
            return self._on_yes(s, i)
        s = replace(s, paused=False, waiting=False)
        if s.interrupted and s.last:  # pick up at the utterance that was cut
            if s.reading_para is not None and s.section is not None:
                return self._read(s, self.guide.section(s.section), s.para, s.sent)
            return replace(s, interrupted=False, cut=0), [Say(t) for t in s.last[s.cut:]]
        if s.section is not None:
            return self._on_more(s, i)
        return self._say(s, "Go ahead: say a topic, or its number.", *self._menu_lines())

    def _on_faster(self, s: State, i: Intent):
        return self._rate(s, s.rate + RATE_STEP)

    def _on_slower(self, s: State, i: Intent):
        return self._rate(s, s.rate - RATE_STEP)

    def _on_louder(self, s: State, i: Intent):
        return self._volume(s, max(s.volume + 1, round(s.volume * VOLUME_STEP)))

    def _on_quieter(self, s: State, i: Intent):
        return self._volume(s, min(s.volume - 1, round(s.volume / VOLUME_STEP)))

    def _on_where(self, s: State, i: Intent):
        if s.section is None:
            if s.asking == "resume" and s.resume_to:
                return self._say(s, f"You are at the start of {self.guide.title}. Last time you were in "
                                    f"{self.guide.section(s.resume_to).title}. Say continue, or main menu.")
            back = f" Say {self._back_words(s)}." if self._back_history(s) else ""
            return self._say(s, f"You are at the main menu of {self.guide.title}.{back}")
        path = self.guide.path_to(s.section)
        sec = path[-1]
        where = ", ".join(p.title for p in path)
        spot = self._place_words(sec, s.para, s.sent) or "at its summary"
        parts = ""
        if sec.children:
            parts = " It has one part." if len(sec.children) == 1 else f" It has {len(sec.children)} parts."
        return self._say(s, f"You are in {where}, {spot}.{parts} Say {self._back_words(s)}.")

    def _on_yes(self, s: State, i: Intent):
        if s.asking == "confirm" and s.pending:
            return self._act(self._close_question(s), s.pending[0])
        if s.asking == "choose":
            return self._say(s, f"Which one? {self._question(s)} {self._hint(s)}")
        if s.asking == "resume" and s.resume_to:
            s = replace(s, asking=None)  # (no history: the listener never was at this menu)
            return self._enter_at(s, s.resume_to, s.resume_para, s.resume_sent, record=False)
        if s.asking == "leave":
            return self._leave(self._close_question(s))
        if s.asking == "offer" and s.offer:
            return self._enter(replace(s, asking=None, prior=None, offer=None), s.offer)
        # "okay", "uh huh", "yes" with nothing asked: carry on
        if s.section is not None or s.paused or s.interrupted:
            return self._on_resume(s, i)
        return self._say(s, "Say a topic's name or number, or help.")

    def _on_no(self, s: State, i: Intent):
        if s.asking in CONFIRMING:
            return self._offer_list(self._close_question(s), "Okay.")
        if s.asking == "resume":
            return self._menu(replace(s, asking=None))
        if s.asking == "leave":
            s = self._close_question(s)
            return self._say(s, "Good, let's carry on. " + self._reprompt(s))
        if s.asking == "offer":
            s = self._close_question(s)
            return self._say(s, "Okay. " + self._reprompt(s))
        return self._say(s, "Okay. " + self._reprompt(s))

    def _on_cancel(self, s: State, i: Intent):
        if s.asking == "resume":
            return self._on_no(s, i)
        if s.asking in _ON_TOP:
            return self._on_no(s, i)
        return self._say(s, "Okay. " + self._reprompt(s))

    def _on_number(self, s: State, i: Intent):
        try:
            n = int(i.target or "")
        except ValueError:
            n = 0
        listed = s.listed or tuple(c.id for c in self._numbered(s))
        s = replace(s, listed=())
        if 1 <= n <= len(listed):
            return self._enter(replace(s, asking=None), listed[n - 1])
        choices = self._numbered(s)
        if not choices:
            return self._no_match(s, i.text, "There are no numbered choices here.")
        if not self._choices(s):  # a section without parts: the numbers are its parent's
            parent = self.guide.parent(s.section)
            where = f"{parent.title} has {len(choices)} parts" if parent else f"The main menu has {len(choices)} topics"
            return self._no_match(s, i.text, f"{where}: please pick {_number_range(len(choices))}.")
        return self._no_match(s, i.text, f"Please pick {_number_range(len(choices))}.")

    def _on_sources(self, s: State, i: Intent):
        g = self.guide
        names = [self._source_name(sid) for sid in (g.section(s.section).sources if s.section else ())]
        names = [n for n in names if n]
        everything = "; ".join(self._source_name(src.id) for src in g.sources)
        reviewed = g.reviewed_line()
        if s.section and names:
            title = g.section(s.section).title
            return self._say(s, f"{title} comes from: {'; '.join(names)}.",
                             f"The whole guide draws on {len(g.sources)} sources. {reviewed} "
                             "Say sources again at the main menu to hear them all.")
        return self._say(s, f"This guide draws on: {everything}.", reviewed)

    def _source_name(self, source_id: str) -> str:
        try:
            src = self.guide.source(source_id)
        except StopIteration:
            return ""
        publisher = getattr(src, "publisher", "") or ""
        return f"{publisher}, {src.title}" if publisher else src.title

    def _on_disclaimer(self, s: State, i: Intent):
        return self._say(replace(s, disclaimed=True), self.guide.disclaimer)

    # -- questions (voiceguide.ask) ----------------------------------------
    def _ask(self, s: State, text: str, otherwise=None):
        """A question for the asker; ``otherwise`` (state -> turn): what to do when the content has no answer."""
        answer = self.asker.ask(text, section=s.section)  # "it" in a follow-up means the section the listener is in
        kind, reply = getattr(answer, "kind", "unknown"), getattr(answer, "answer", "")
        section = getattr(answer, "section", None)
        if kind == "answer" and section in self.guide and reply:
            title = self.guide.section(section).title
            return self._say(self._ask_too(s, "offer", offer=section), reply,
                             f"Say yes to hear more about {title}.")
        if otherwise is not None:
            return otherwise(s)
        if reply and kind == "unknown" and not s.asking and self._choices(s):
            # no answer in the content: perhaps a command misheard, so the choices by number too
            state, effects = self._offer_list(s, "")
            return replace(state, last=(reply, *state.last)), [Say(reply), *effects]
        if reply and kind != "unknown" and not s.asking:
            # a question understood (its own treatment, fear): the pack's reply, then what can be said here;
            # never the numbered list with "say what you want again", as if it had been misheard
            return self._say(s, reply, self._reprompt(s))
        if reply:
            return self._say(s, reply)
        return self._no_match(s, text)

    # -- building blocks ---------------------------------------------------
    def _leave_for(self, s: State, to: str | None, record: bool = True) -> State:
        """Leaving this place for ``to``: its place is kept (:meth:`_remember_place`) and, unless ``record`` is
        False (going back, resuming), it goes first in the history "back" returns through."""
        if record and to != s.section:
            s = replace(s, history=(s.section, *(h for h in s.history if h != s.section))[:HISTORY])
        return self._remember_place(s)

    def _remember_place(self, s: State) -> State:
        """Keep the place in the section being left, for coming back to it in this session."""
        if s.section is None:
            return s
        places = tuple(p for p in s.places if p[0] != s.section)
        if (s.para, s.sent) != (0, 0):
            places += ((s.section, s.para, s.sent),)
        return replace(s, places=places)

    def _enter(self, s: State, section_id: str | None, record: bool = True):
        if section_id is None or section_id not in self.guide:
            return self._no_match(s, "")
        place = next((p for p in s.places if p[0] == section_id), None)
        if place and section_id != s.section:
            return self._enter_at(s, section_id, place[1], place[2], back=True, record=record)
        sec = self.guide.section(section_id)
        s = replace(self._leave_for(s, sec.id, record), section=sec.id, para=0, sent=0, asking=None, paused=False,
                    waiting=False, reading_para=None)
        return self._say(s, f"{sec.title}.", sec.summary, self._offer(sec))

    def _enter_at(self, s: State, section_id: str, para: int, sent: int, back: bool = False, record: bool = True):
        """Go to a place inside a section: straight on reading there (resume), or told where (coming back)."""
        sec = self.guide.section(section_id)
        para, sent = self._valid_place(sec, para, sent)
        s = replace(self._leave_for(s, sec.id, record), section=sec.id, para=para, sent=sent, asking=None, paused=False,
                    waiting=False, reading_para=None)
        if (para, sent) == (0, 0) or para >= len(sec.body):
            s = replace(s, para=0, sent=0)
            return self._say(s, f"{sec.title}.", sec.summary, self._offer(sec))
        if back:
            spot = self._place_words(sec, para, sent)
            return self._say(s, f"{sec.title}. You were {spot}. Say more to carry on from there.")
        state, effects = self._read(s, sec, para, sent)
        return state, [Say(f"{sec.title}."), *effects]

    def _valid_place(self, sec: Section, para: int, sent: int) -> tuple[int, int]:
        if not isinstance(para, int) or not isinstance(sent, int) or para < 0 or sent < 0 or para > len(sec.body):
            return 0, 0
        if para == len(sec.body):
            return para, 0
        return (para, sent) if sent < len(split_sentences(sec.body[para])) else (para, 0)

    def _place_words(self, sec: Section, para: int, sent: int) -> str:
        """The place in words a listener can use: "paragraph 2 of 5, sentence 3"; "" at the summary."""
        n = len(sec.body)
        if (para, sent) == (0, 0) or not n:
            return ""
        if para >= n:
            return "at its end"
        if sent == 0:
            return f"at the start of paragraph {para + 1} of {n}"
        return f"at paragraph {para + 1} of {n}, sentence {sent + 1}"

    def _menu(self, s: State, record: bool = True):
        s = replace(self._leave_for(s, None, record), section=None, para=0, sent=0, asking=None, paused=False,
                    waiting=False, reading_para=None)
        return self._say(s, *self._menu_lines())

    def _menu_lines(self) -> list[str]:
        """The main menu, short: titles only (summaries on request: more, or describe them)."""
        lines = ["Main menu."]
        lines += [f"{n}: {sec.title}." for n, sec in enumerate(self.guide.sections, 1)]
        lines.append("Say a topic's name or number, or say more to hear what each one is about.")
        return lines

    def _describe_lines(self) -> list[str]:
        lines = []
        for n, sec in enumerate(self.guide.sections, 1):
            lines.append(f"{n}: {sec.title}. {_first_sentence(sec.summary)} Say {_say_name(sec)}, or press {n}.")
        return lines

    def _offer(self, sec: Section) -> str:
        if sec.children:
            parts = "; ".join(f"{n}, {c.title}" for n, c in enumerate(sec.children, 1))
            count = "one part" if len(sec.children) == 1 else f"{len(sec.children)} parts"
            return (f"It has {count}: {parts}. Say a part's name or number, "
                    f"or say more to hear about {sec.title}.")
        return "Say more for the details, next for the next section, or back."

    def _end_of(self, sec: Section) -> list[str]:
        idx = self._order.index(sec.id)
        nxt = self.guide.section(self._order[idx + 1]).title if idx + 1 < len(self._order) else None
        tail = f"Say next for {nxt}, back, or main menu." if nxt else "Say back, or main menu."
        if sec.children:
            tail = "Say a part's number to go on, " + tail[0].lower() + tail[1:]
        return [f"That is the end of {sec.title}. {tail}"]

    def _read(self, s: State, sec: Section, para: int, sent: int = 0):
        """Say one body paragraph from sentence ``sent``, sentence by sentence (and where to go after the last)."""
        sentences = tuple(split_sentences(sec.body[para])[sent:])
        effects: list[Effect] = [Say(t, "content") for t in sentences]
        last = sentences
        if para + 1 >= len(sec.body):
            end = self._end_of(sec)
            effects += [Say(t) for t in end]
            last += tuple(end)
        return (replace(s, para=para + 1, sent=0, reading_para=para, reading_sent=sent, last=last,
                        interrupted=False, cut=0, paused=False, waiting=False), effects)

    def _intro(self) -> tuple[str, ...]:
        """The first words of a new session: welcome, disclaimer, review date."""
        g = self.guide
        return f"Welcome to {g.title}.", g.disclaimer, f"{g.reviewed_line()} Say help at any time."

    def _interrupted(self, s: State, text: str) -> State:
        if text in self._intro():  # cut before the disclaimer and review date were heard: said again on leaving
            s = replace(s, disclaimed=False)
        if text and text not in s.last:
            return s  # a passing prompt was cut; the remembered output was complete
        cut = s.last.index(text) if text else 0
        s = replace(s, interrupted=True, cut=cut)
        if s.reading_para is not None and s.section is not None:
            sec = self.guide.section(s.section)
            said_here = len(split_sentences(sec.body[s.reading_para])) - s.reading_sent
            if cut < said_here:  # cut inside the paragraph: the place is the cut sentence
                s = replace(s, para=s.reading_para, sent=s.reading_sent + cut)
        return s

    def _choices(self, s: State) -> tuple[Section, ...]:
        if s.section is None:
            return self.guide.sections
        return self.guide.section(s.section).children

    def _numbered(self, s: State) -> tuple[Section, ...]:
        """What a number picks here: the current choices; in a section without parts, the list it was
        chosen from (its parent's parts, or the main menu): "number 2" heard in Gilteritinib means the
        second targeted drug, the list the listener last heard numbers for."""
        if s.section is None or self._choices(s):
            return self._choices(s)
        return self.guide.siblings(s.section)

    def position(self, state: State) -> SavePosition:
        """Where the listener is, as the save the dialog would make on leaving (for the shell's other ways out)."""
        return self._save(state)

    def _save(self, s: State) -> SavePosition:
        section, para, sent = _position(s)
        return SavePosition(section, s.rate, s.volume, para, sent)

    def _rate(self, s: State, wpm: int):
        wpm = _clamp(wpm)
        if wpm == s.rate:
            edge = "fastest" if wpm == MAX_RATE else "slowest"
            return self._say(s, f"This is already the {edge} rate.")
        word = "Faster" if wpm > s.rate else "Slower"
        s = replace(s, rate=wpm)
        state, effects = self._say(s, f"{word}: {wpm} words a minute.")
        return state, [SetRate(wpm), self._save(s), *effects]

    def _volume(self, s: State, percent: int):
        percent = _clamp_volume(percent)
        if percent == s.volume:
            if percent == MAX_VOLUME:
                return self._say(s, "This is already the loudest I can speak. "
                                    "To hear me louder, turn up your speaker or headphones.")
            return self._say(s, "This is already the quietest I can speak.")
        word = "Louder" if percent > s.volume else "Quieter"
        s = replace(s, volume=percent)
        state, effects = self._say(s, f"{word}: volume {percent} percent.")
        return state, [SetVolume(percent), self._save(s), *effects]

    def _help_text(self, s: State) -> str:
        if s.asking == "confirm" and s.pending:
            here = (f"I wasn't sure I heard you right, so I asked if you meant {self._label(s, s.pending[0])}. "
                    "Say yes, or no, or say what you want instead.")
        elif s.asking == "choose" and s.pending:
            here = (f"I wasn't sure which you meant: {self._label(s, s.pending[0])}, or "
                    f"{self._label(s, s.pending[1])}. Say one or two, or its name, or no.")
        elif s.asking == "resume":
            here = "Say continue to go back to where you were, or main menu to start from the top."
        elif s.asking == "leave":
            here = "Say yes to leave the guide, or no to stay. Your place is kept either way."
        elif s.section is None:
            here = (f"You are at the main menu. Say a topic name, like {_say_name(self.guide.sections[0])}, "
                    f"or its number from 1 to {len(self.guide.sections)}. Say more to hear what each one is about.")
        else:
            sec = self.guide.section(s.section)
            here = f"You are in {sec.title}. Say more to hear the details, skip to skip a sentence"
            if sec.children:
                here += (f", 1 for {sec.children[0].title}" if len(sec.children) == 1
                         else f", a part's number from 1 to {len(sec.children)}")
            here += f", next or previous for other sections, {self._back_words(s)}, or main menu."
        return (f"{here} Say repeat, pause, where am I, or stop to leave. "
                "Say help again for every command and key.")

    def _no_input(self, s: State):
        n = s.no_input + 1
        s = replace(s, no_input=n)
        if n == 1:
            return self._say(s, "Sorry, I didn't hear anything. " + self._reprompt(s), remember=False)
        if n == 2:
            return self._say(s, "I still didn't hear you. " + self._example(s), remember=False)
        return self._way_out(s, "I haven't heard anything for a while.")

    def _no_match(self, s: State, text: str, why: str = ""):
        lead = why or "Sorry, I didn't catch that."
        if s.waiting:  # help was offered already: answer briefly, no ladder
            return s, [Earcon("nomatch"), Say(f"{lead} Say help, or press h and Enter.")]
        n = s.no_match + 1
        s = replace(s, no_match=n, awaiting_word=False)
        if n == 1 and not why and not s.asking and self._choices(s):
            # after a miss, the numbered choices: digits are the words best recognised
            state, eff = self._offer_list(s, lead)
            state = replace(state, last=s.last)  # the miss is no new output: repeat says what was said before
        elif n == 1:
            state, eff = self._say(s, f"{lead} {self._reprompt(s)}", remember=False)
        elif n == 2:
            state, eff = self._say(s, f"{lead} {self._example(s)}", remember=False)
        else:
            state, eff = self._way_out(s, "I'm still not getting it.")
        return state, [Earcon("nomatch"), *eff]

    def _reprompt(self, s: State) -> str:
        if s.asking in CONFIRMING and s.pending:
            return f"{self._question(s)} {self._hint(s)}"
        if s.asking == "resume":
            return "Say continue, or main menu."
        if s.asking in ("leave", "offer"):
            return "Say yes or no."
        return "Say a topic, more, or help." if s.section is None else "Say more, next, back, or help."

    def _example(self, s: State) -> str:
        choices = self._choices(s)
        if s.asking == "resume":
            return ("To go back to where you were, say continue or press c and Enter. "
                    "For the main menu, say main menu or press m and Enter.")
        if s.asking in CONFIRMING and s.pending:
            keys = "press 1 or 2 and Enter" if s.asking == "choose" else "press y and Enter for yes"
            return f"{self._question(s)} {self._hint(s)} Or {keys}."
        if s.asking in ("leave", "offer"):
            return "Say yes, or no. Or press y and Enter for yes."
        if choices:
            return (f"You can say a name, like {_say_name(choices[0])}, or {_number_range(len(choices))}. "
                    "Or say help.")
        return "You can say more, next, previous, back, or main menu. Or say help."

    def _way_out(self, s: State, lead: str):
        """After the third failure: offer help once, then wait quietly right here (the place is kept)."""
        s = replace(s, no_input=0, no_match=0, paused=True, waiting=True)
        keys = "You can also use the keyboard: type h and press Enter for help."
        return self._say(s, lead, self._options_list(s), keys,
                         "I'll wait here, and your place is kept. Say continue, or press Enter, when you are ready.",
                         remember=False)

    def _options_list(self, s: State) -> str:
        choices = self._choices(s)
        if s.asking == "resume":
            return "Your options are: continue, to go back to where you were; or main menu."
        if s.asking == "choose" and s.pending:
            return (f"Your options are: 1, {self._label(s, s.pending[0])}; 2, {self._label(s, s.pending[1])}; "
                    "or neither.")
        if s.asking in ("leave", "offer", "confirm"):
            return "Your options are: yes, or no."
        if choices:
            items = "; ".join(f"{n}, {c.title}" for n, c in enumerate(choices, 1))
            return f"Your options are: {items}. Or say more, next, back, main menu, or stop."
        return "Your options are: more, next, previous, back, main menu, repeat, help, or stop."

    def _say(self, s: State, *texts: str, remember: bool = True):
        texts = tuple(t for t in texts if t)
        if remember:
            s = replace(s, last=texts, reading_para=None, interrupted=False, cut=0)
        return s, [Say(t) for t in texts]


_ON_TOP = ("leave", "offer", "confirm", "choose")
"""Questions asked on top of another (kept in ``State.prior``)."""
_NEUTRAL = ("yes", "no", "cancel", "repeat", "where", "help", "keys", "faster", "slower", "louder", "quieter", "pause")
"""Commands that leave an open question open."""
_REASK = ("where", "help", "keys", "faster", "slower", "louder", "quieter")
"""Answered during a confirmation, then the confirmation is asked again."""


def words_before_first_choice(effects: list[Effect]) -> int:
    """How many words the guide says before the listener can choose (the start's speech)."""
    return sum(len(e.text.split()) for e in effects if isinstance(e, Say))


# ---------------------------------------------------------------------- helpers


def key_intent(key: str) -> Intent | None:
    """The intent for a key press: digits pick entries, letters are commands; None for an unknown key."""
    k = key if not key.strip() else key.strip().lower()
    if k.isascii() and k.isdigit():
        return Intent("number", str(int(k)), key, 1.0)
    if k not in KEYS and not k.strip():
        k = " "  # any other run of blanks: pause
    if k in KEYS:
        return Intent(KEYS[k], None, key, 1.0)
    return None


_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"\u201d)]))\s+(?=[\"\u201c(]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences (at . ! ? followed by a capital or digit)."""
    return [p.strip() for p in _SENTENCE_END.split(text.strip()) if p.strip()]


def _position(s: State) -> tuple[str | None, int, int]:
    """Where to save (section, paragraph, sentence): the place, or, while still asked whether to resume,
    the place offered."""
    if s.section:
        return s.section, s.para, s.sent
    asking = s.prior if s.asking in _ON_TOP else s.asking
    if asking == "resume" and s.resume_to:
        return s.resume_to, s.resume_para, s.resume_sent
    return None, 0, 0


def _says_up(text: str) -> bool:
    """ "go up", "up one level", "level up": up a level, not back to where the listener was ("back up" is back)."""
    words = _words(text)
    return bool({"up", "level"} & set(words)) and "back" not in words


def _pauses(i: Intent, during_speech: bool) -> bool:
    """Said while the guide talks, a pause: "pause", "wait", ... or a bare "stop" ("stop it", "stop please")."""
    return during_speech and (i.intent == "pause" or (i.intent == "stop" and bare_stop(i.text)))


def _ok(s: State) -> State:
    return replace(s, no_input=0, no_match=0, waiting=False)


def _clamp(wpm: int) -> int:
    return max(MIN_RATE, min(MAX_RATE, int(wpm)))


def _clamp_volume(percent: int) -> int:
    return max(MIN_VOLUME, min(MAX_VOLUME, int(percent)))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _term_title(entry) -> str:
    """A glossary term written as its definition writes it ("FLT3", "G-CSF", not "Flt3"), capitalised."""
    m = re.search(rf"(?<![\w-]){re.escape(entry.term)}(?![\w-])", entry.definition, re.IGNORECASE)
    return _cap(m.group(0) if m else entry.term)


def _first_sentence(text: str) -> str:
    for mark in (". ", "? ", "! "):
        if mark in text:
            return text.split(mark)[0] + mark.strip()
    return text


def _say_name(sec: Section) -> str:
    """The shortest natural thing to say for a section: its id in words, or its title."""
    return sec.id.replace("-", " ") if len(sec.id) <= len(sec.title) else sec.title.lower()


def _number_range(n: int) -> str:
    """How to ask for a number among ``n`` choices: "the number 1" when there is one."""
    return "the number 1" if n == 1 else f"a number from 1 to {n}"


def _spoken_date(d) -> str:
    return f"{d.strftime('%B')} {d.day}, {d.year}"
