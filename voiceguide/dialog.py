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
after the third failure a graceful way out: back to the main menu, or (already
there) waiting quietly without a timeout. Never an endless loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Union

from .content import Guide, Section
from .intents import Intent

__all__ = [
    "State", "Dialog", "Start", "Heard", "Key", "NoInput", "NoMatch", "Interrupted", "EndOfInput",
    "Say", "Earcon", "SetRate", "SetVolume", "SavePosition", "Save", "Listen", "Exit", "Event", "Effect",
    "MIN_RATE", "MAX_RATE", "RATE_STEP", "DEFAULT_RATE", "MIN_VOLUME", "MAX_VOLUME", "DEFAULT_VOLUME", "KEYS",
]

MIN_RATE, MAX_RATE, RATE_STEP, DEFAULT_RATE = 80, 450, 25, 175
MIN_VOLUME, MAX_VOLUME, DEFAULT_VOLUME = 1, 100, 100
VOLUME_STEP = 2 ** 0.5
"""Louder and quieter change the loudness by this factor (3 dB): a step a listener can hear at any level."""
MAX_TRIES = 3
DEFAULT_TIMEOUT = 10.0

#: key -> intent for the keyboard path (digits pick menu entries)
KEYS: dict[str, str] = {
    "h": "help", "?": "help", "r": "repeat", "b": "back", "m": "menu", "n": "next", "p": "previous",
    "": "more", "s": "skip", " ": "pause", "c": "resume", "f": "faster", "l": "slower", "w": "where",
    "y": "yes", "q": "stop", "d": "define", "+": "louder", "-": "quieter",
}
KEY_HELP = ("Keys: a number picks a topic. Enter for more, s to skip, n for next, p for previous, "
            "b for back, m for the main menu, r to repeat, space to pause, c to continue, f for faster, "
            "l for slower, plus for louder, minus for quieter, w for where am I, d then a word for a definition, "
            "h for help, q to quit. "
            "You can also type what you would say.")


# ---------------------------------------------------------------------- events


@dataclass(frozen=True)
class Start:
    """The session begins; ``resume_to`` is where a returning listener was last time."""

    resume_to: str | None = None
    rate: int = DEFAULT_RATE
    volume: int = DEFAULT_VOLUME
    """Loudness of speech, percent."""


@dataclass(frozen=True)
class Heard:
    """The listener said or typed something the parser understood (or ``none``)."""

    intent: Intent


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
    """``prompt`` (guide talk) or ``content`` (text from the pack)."""


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


# ---------------------------------------------------------------------- state


@dataclass(frozen=True)
class State:
    """Everything the dialog remembers between turns (small and immutable)."""

    section: str | None = None
    """Current section id; None at the main menu."""
    para: int = 0
    """Index of the next body paragraph to read in this section."""
    rate: int = DEFAULT_RATE
    volume: int = DEFAULT_VOLUME
    """Loudness of speech, percent."""
    last: tuple[str, ...] = ()
    """The last output, exactly, for ``repeat``."""
    no_input: int = 0
    no_match: int = 0
    paused: bool = False
    """While paused the no-input timer is off, until ``continue``."""
    interrupted: bool = False
    """The last output was cut short."""
    cut: int = 0
    """Index in ``last`` of the utterance that was cut."""
    asking: str | None = None
    """An open yes/no question: ``resume``."""
    resume_to: str | None = None
    """Where the listener was last time (offered at start)."""
    reading_para: int | None = None
    """The body paragraph said last, if the last output was one (its sentences come first in ``last``)."""
    awaiting_word: bool = False
    """After the ``d`` key: the next input is a word to define."""
    ended: bool = False

    @property
    def listening_timeout_off(self) -> bool:
        return self.paused or self.ended


# ---------------------------------------------------------------------- the core


@dataclass(frozen=True)
class Dialog:
    """Pure transitions over one guide."""

    guide: Guide
    timeout: float | None = DEFAULT_TIMEOUT
    """Seconds to wait for an answer before the no-input prompts; None switches the timer off."""
    _order: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_order", tuple(s.id for s in self.guide.walk()))

    # -- start -------------------------------------------------------------
    def start(self, *, resume_to: str | None = None, rate: int = DEFAULT_RATE,
              volume: int = DEFAULT_VOLUME) -> tuple[State, list[Effect]]:
        """Shorthand for ``step(State(), Start(resume_to, rate, volume))``."""
        return self.step(State(), Start(resume_to, rate, volume))

    def _start(self, resume_to: str | None, rate: int, volume: int) -> tuple[State, list[Effect]]:
        g = self.guide
        rate, volume = _clamp(rate), _clamp_volume(volume)
        intro = (f"Welcome to {g.title}.", g.disclaimer,
                 f"Last reviewed {_spoken_date(g.last_reviewed)}. Say help at any time.")
        state = State(rate=rate, volume=volume)
        if resume_to and resume_to in g:
            title = g.section(resume_to).title
            question = f"Last time you were in {title}. Say continue, or main menu."
            state = replace(state, asking="resume", resume_to=resume_to)
            state, effects = self._say(state, *intro, question)
        else:
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

    LIKELY = ("more", "next", "back", "menu", "repeat", "help")
    """Commands a listener is likely to give anywhere, after the current choices (:meth:`likely_replies`)."""

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

    def _step(self, state: State, event: Event) -> tuple[State, list[Effect]]:
        if isinstance(event, Start):
            return self._start(event.resume_to, event.rate, event.volume)
        if state.ended:
            return state, [Exit(0)]
        if isinstance(event, EndOfInput):
            return replace(state, ended=True), [SavePosition(_position(state), state.rate, state.volume), Exit(0)]
        if isinstance(event, Interrupted):
            if event.text and event.text not in state.last:
                return state, []  # a passing prompt was cut; the remembered output was complete
            cut = state.last.index(event.text) if event.text else 0
            return replace(state, interrupted=True, cut=cut), []
        if isinstance(event, NoInput):
            if state.paused:
                return state, []
            return self._no_input(state)
        if isinstance(event, NoMatch):
            return self._no_match(state, event.text)
        if isinstance(event, Key):
            intent = key_intent(event.key)
            if intent is None:
                return self._no_match(state, event.key, "That key does nothing here. Press h for help.")
        else:
            intent = event.intent
        if intent.intent == "none":
            if state.awaiting_word:
                return self._define(replace(state, awaiting_word=False), None, intent.text)
            if intent.asks_for_advice:
                return self._say(_ok(state),
                                 "I can't give medical advice. This guide only shares general information "
                                 "from its sources. Please ask your care team what is right for you.")
            return self._no_match(state, intent.text)
        state = _ok(state)
        handler = getattr(self, f"_on_{intent.intent}")
        return handler(state, intent)

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
        return self._say(s, f"{_cap(entry.term)}: {entry.definition}")

    def _on_repeat(self, s: State, i: Intent):
        if not s.last:
            return self._say(s, "There is nothing to repeat yet.")
        return replace(s, interrupted=False, cut=0), [Say(t) for t in s.last]

    def _on_back(self, s: State, i: Intent):
        if s.section is None:
            return self._say(s, "You are at the main menu.", *self._menu_lines(short=True))
        parent = self.guide.parent(s.section)
        if parent is None:
            return self._menu(s)
        return self._enter(s, parent.id)

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
        if s.section is None:
            return self._say(s, "Pick a topic first: say its name or number.", *self._menu_lines(short=True))
        sec = self.guide.section(s.section)
        if s.para >= len(sec.body):
            return self._say(s, *self._end_of(sec))
        return self._read(s, sec, s.para)

    def _on_skip(self, s: State, i: Intent):
        if s.section is None:
            return self._on_next(s, i)
        sec = self.guide.section(s.section)
        # skip the paragraph that was cut, or else the one that would come next
        nxt = s.reading_para + 1 if s.interrupted and s.reading_para is not None else s.para + 1
        if nxt >= len(sec.body):
            return self._say(replace(s, para=len(sec.body)), *self._end_of(sec))
        return self._read(s, sec, nxt)

    def _on_menu(self, s: State, i: Intent):
        return self._menu(s)

    def _on_help(self, s: State, i: Intent):
        return self._say(s, self._help_text(s))

    def _on_stop(self, s: State, i: Intent):
        pos = _position(s)
        where = self.guide.section(pos).title if pos else "the main menu"
        return (replace(s, ended=True),
                [SavePosition(_position(s), s.rate, s.volume),
                 Say(f"Goodbye. I saved your place in {where}. To come back, start VoiceGuide again."),
                 Exit(0)])

    def _on_pause(self, s: State, i: Intent):
        return self._say(replace(s, paused=True), "Paused. Say continue when you are ready.", remember=False)

    def _on_resume(self, s: State, i: Intent):
        if s.asking == "resume":
            return self._on_yes(s, i)
        if s.interrupted and s.last:  # pick up at the utterance that was cut
            return replace(s, paused=False, interrupted=False, cut=0), [Say(t) for t in s.last[s.cut:]]
        s = replace(s, paused=False)
        if s.section is not None:
            return self._on_more(s, i)
        return self._say(s, "Go ahead: say a topic, or its number.", *self._menu_lines(short=True))

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
            return self._say(s, f"You are at the main menu of {self.guide.title}.")
        path = self.guide.path_to(s.section)
        sec = path[-1]
        where = ", ".join(p.title for p in path)
        if s.para == 0 or not sec.body:
            pos = "at its summary"
        else:
            pos = f"part {min(s.para, len(sec.body))} of {len(sec.body)}"
        return self._say(s, f"You are in {where}, {pos}.")

    def _on_yes(self, s: State, i: Intent):
        if s.asking == "resume" and s.resume_to:
            return self._enter(replace(s, asking=None), s.resume_to)
        return self._say(s, "There is no question to answer right now. Say help to hear your choices.")

    def _on_no(self, s: State, i: Intent):
        if s.asking == "resume":
            return self._menu(replace(s, asking=None, resume_to=None))
        return self._say(s, "There is no question to answer right now. Say help to hear your choices.")

    def _on_number(self, s: State, i: Intent):
        try:
            n = int(i.target or "")
        except ValueError:
            n = 0
        choices = self._choices(s)
        if 1 <= n <= len(choices):
            return self._enter(replace(s, asking=None), choices[n - 1].id)
        if not choices:
            return self._no_match(s, i.text, "There are no numbered choices here.")
        return self._no_match(s, i.text, f"Please pick a number from 1 to {len(choices)}.")

    # -- building blocks ---------------------------------------------------
    def _enter(self, s: State, section_id: str | None):
        if section_id is None or section_id not in self.guide:
            return self._no_match(s, "")
        sec = self.guide.section(section_id)
        s = replace(s, section=sec.id, para=0, asking=None, paused=False, reading_para=None, awaiting_word=False)
        return self._say(s, f"{sec.title}.", sec.summary, self._offer(sec))

    def _menu(self, s: State):
        s = replace(s, section=None, para=0, asking=None, paused=False, reading_para=None)
        return self._say(s, *self._menu_lines())

    def _menu_lines(self, short: bool = False) -> list[str]:
        lines = ["Main menu."]
        for n, sec in enumerate(self.guide.sections, 1):
            name = _say_name(sec)
            if short:
                lines.append(f"{n}: {sec.title}.")
            else:
                lines.append(f"{n}: {sec.title}. {_first_sentence(sec.summary)} Say {name}, or press {n}.")
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

    def _read(self, s: State, sec: Section, para: int):
        """Say one body paragraph, sentence by sentence (and where to go after the last one)."""
        sentences = tuple(split_sentences(sec.body[para]))
        effects: list[Effect] = [Say(t, "content") for t in sentences]
        last = sentences
        if para + 1 >= len(sec.body):
            end = self._end_of(sec)
            effects += [Say(t) for t in end]
            last += tuple(end)
        return replace(s, para=para + 1, reading_para=para, last=last, interrupted=False, cut=0), effects

    def _choices(self, s: State) -> tuple[Section, ...]:
        if s.section is None:
            return self.guide.sections
        return self.guide.section(s.section).children

    def _rate(self, s: State, wpm: int):
        wpm = _clamp(wpm)
        if wpm == s.rate:
            edge = "fastest" if wpm == MAX_RATE else "slowest"
            return self._say(s, f"This is already the {edge} rate.")
        word = "Faster" if wpm > s.rate else "Slower"
        s = replace(s, rate=wpm)
        state, effects = self._say(s, f"{word}: {wpm} words a minute.", remember=False)
        return state, [SetRate(wpm), Save(s.section, wpm, s.volume), *effects]

    def _volume(self, s: State, percent: int):
        percent = _clamp_volume(percent)
        if percent == s.volume:
            if percent == MAX_VOLUME:
                return self._say(s, "This is already the loudest I can speak. "
                                    "To hear me louder, turn up your speaker or headphones.", remember=False)
            return self._say(s, "This is already the quietest I can speak.", remember=False)
        word = "Louder" if percent > s.volume else "Quieter"
        s = replace(s, volume=percent)
        state, effects = self._say(s, f"{word}: volume {percent} percent.", remember=False)
        return state, [SetVolume(percent), Save(s.section, s.rate, percent), *effects]

    def _help_text(self, s: State) -> str:
        if s.asking == "resume":
            here = "Say continue to go back to where you were, or main menu to start from the top."
        elif s.section is None:
            here = (f"You are at the main menu. Say a topic name, like {_say_name(self.guide.sections[0])}, "
                    f"or its number from 1 to {len(self.guide.sections)}.")
        else:
            sec = self.guide.section(s.section)
            here = f"You are in {sec.title}. Say more to hear the details"
            if sec.children:
                here += f", or a part's number from 1 to {len(sec.children)}"
            here += ". Say next or previous to move between sections, back to go up, or main menu."
        common = ("At any time you can say: repeat, pause, continue, faster, slower, louder, quieter, where am I, "
                  "what does a word mean, or stop to leave.")
        return f"{here} {common} {KEY_HELP}"

    def _no_input(self, s: State):
        n = s.no_input + 1
        s = replace(s, no_input=n)
        if n == 1:
            return self._say(s, "Sorry, I didn't hear anything. " + self._reprompt(s), remember=False)
        if n == 2:
            return self._say(s, "I still didn't hear you. " + self._example(s), remember=False)
        return self._way_out(s, "I haven't heard anything for a while.")

    def _no_match(self, s: State, text: str, why: str = ""):
        n = s.no_match + 1
        s = replace(s, no_match=n, awaiting_word=False)
        lead = why or "Sorry, I didn't catch that."
        if n == 1:
            state, eff = self._say(s, f"{lead} {self._reprompt(s)}", remember=False)
        elif n == 2:
            state, eff = self._say(s, f"{lead} {self._example(s)}", remember=False)
        else:
            state, eff = self._way_out(s, "I'm still not getting it.")
        return state, [Earcon("nomatch"), *eff]

    def _reprompt(self, s: State) -> str:
        if s.asking == "resume":
            return "Say continue, or main menu."
        return "Say a topic, more, or help." if s.section is None else "Say more, next, back, or help."

    def _example(self, s: State) -> str:
        choices = self._choices(s)
        if s.asking == "resume":
            return "To go back to where you were, say continue or press c. For the main menu, say main menu or press m."
        if choices:
            return (f"You can say a name, like {_say_name(choices[0])}, or a number from 1 to {len(choices)}. "
                    "Or say help.")
        return "You can say more, next, previous, back, or main menu. Or say help."

    def _way_out(self, s: State, lead: str):
        s = replace(s, no_input=0, no_match=0)
        options = self._options_list(s)
        keys = "You can also use the keyboard: press a number, or h for help."
        if s.section is None and s.asking is None:
            # Already at the top: stop prompting, wait quietly until the listener is ready.
            return self._say(replace(s, paused=True), lead, options, keys,
                             "I'll wait here. Say continue or press any key when you are ready.", remember=False)
        s = replace(s, section=None, para=0, asking=None, reading_para=None)
        return self._say(s, lead, options, keys, "Let's go back to the main menu.", *self._menu_lines(short=True))

    def _options_list(self, s: State) -> str:
        choices = self._choices(s)
        if s.asking == "resume":
            return "Your options are: continue, to go back to where you were; or main menu."
        if choices:
            items = "; ".join(f"{n}, {c.title}" for n, c in enumerate(choices, 1))
            return f"Your options are: {items}. Or say more, next, back, main menu, or stop."
        return "Your options are: more, next, previous, back, main menu, repeat, help, or stop."

    def _say(self, s: State, *texts: str, remember: bool = True):
        texts = tuple(t for t in texts if t)
        if remember:
            s = replace(s, last=texts, reading_para=None, interrupted=False, cut=0)
        return s, [Say(t) for t in texts]


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


def _position(s: State) -> str | None:
    """Where to save: the section, or, while still asked whether to resume, the place offered."""
    return s.section or (s.resume_to if s.asking == "resume" else None)


def _ok(s: State) -> State:
    return replace(s, no_input=0, no_match=0)


def _clamp(wpm: int) -> int:
    return max(MIN_RATE, min(MAX_RATE, int(wpm)))


def _clamp_volume(percent: int) -> int:
    return max(MIN_VOLUME, min(MAX_VOLUME, int(percent)))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _first_sentence(text: str) -> str:
    for mark in (". ", "? ", "! "):
        if mark in text:
            return text.split(mark)[0] + mark.strip()
    return text


def _say_name(sec: Section) -> str:
    """The shortest natural thing to say for a section: its id in words, or its title."""
    return sec.id.replace("-", " ") if len(sec.id) <= len(sec.title) else sec.title.lower()


def _spoken_date(d) -> str:
    return f"{d.strftime('%B')} {d.day}, {d.year}"
