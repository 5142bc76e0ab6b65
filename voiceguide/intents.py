"""Natural phrasing -> intents, with grammar and synonyms derived from the content pack.

``IntentParser(guide).parse("what's Xospata")`` gives
``Intent(intent="open", target="gilteritinib", ...)``. Command phrasings are
universal; every section and glossary name comes from the pack. Anything that
does not clearly fit is ``none``: off-topic speech must never become a guess.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass

from .content import Guide, load_guide, normalize

__all__ = ["Intent", "IntentParser", "INTENTS", "COMMAND_PHRASES", "number_value", "bare_stop"]

INTENTS = (
    "open", "define", "repeat", "back", "next", "previous", "more", "skip", "menu", "help", "stop",
    "pause", "resume", "faster", "slower", "louder", "quieter", "where", "yes", "no", "cancel", "sources",
    "disclaimer", "keys", "number", "none",
)

#: universal commands and the ways people say them (already normalised)
COMMAND_PHRASES: dict[str, tuple[str, ...]] = {
    "repeat": ("repeat", "repeat that", "say that again", "say it again", "again", "pardon", "come again",
               "what did you say", "what was that", "one more time", "repeat please", "sorry what",
               "i didnt catch that", "can you repeat that", "say again", "once more", "huh", "what", "sorry",
               "missed that", "i missed that", "didnt hear", "didnt get that", "repeat the last part"),
    "back": ("back", "go back", "go up", "up", "up one level", "up a level", "back up", "return", "previous menu",
             "take me back", "level up"),
    "next": ("next", "next one", "next section", "next topic", "next part", "go to the next one", "forward",
             "move on", "whats next", "the next one", "next topic", "go forward", "onward", "onwards", "skip section",
             "skip this section", "skip the section", "skip to the next section", "skip this part", "skip this topic",
             "skip the topic"),
    "previous": ("previous", "previous one", "previous section", "previous topic", "last one", "the one before",
                 "go to the previous one", "before that", "the previous one", "one before", "earlier section",
                 "go backward", "backwards"),
    "more": ("more", "tell me more", "more please", "more details", "details", "go on", "keep going", "read more",
             "read it", "read on", "tell me everything", "the details", "more info", "more information",
             "read the details", "explain more", "what else", "detail", "then what", "and then", "continue reading this",
             "say more", "more about this", "more about that", "elaborate", "next paragraph", "describe them",
             "describe the topics", "describe", "what are they about", "summaries", "describe each one",
             "tell me about them", "describe each topic"),
    "skip": ("skip", "skip that", "skip this", "skip it", "skip ahead", "next sentence", "skip a sentence",
             "skip sentence", "skip this sentence", "skip bit", "jump ahead", "skip forward", "fast forward", "skip over"),
    "menu": ("main menu", "menu", "home", "start over", "go home", "main", "top", "topics", "list of topics",
             "all topics", "the menu", "back to the start", "beginning", "go to the main menu", "table of contents",
             "contents", "list the topics", "topic list", "list topics", "take me home", "from the top", "start again",
             "back to the main menu", "back to the menu"),
    "help": ("help", "help me", "what can i say", "options", "what are my options", "im lost", "i am lost",
             "how does this work", "what do i do", "commands", "instructions", "i need help", "what can i do",
             "how do i use this", "what can i ask", "what do i say", "how does it work", "confused", "im confused",
             "dont know what to say", "i dont know what to say"),
    "stop": ("stop", "quit", "exit", "goodbye", "good bye", "bye", "bye bye", "im done", "i am done", "that is all",
             "thats all", "end", "close", "thats enough for today", "turn off", "shut down", "im finished",
             "we are done", "stop the guide", "leave", "quit the guide", "were done", "done", "finished", "turn it off",
             "switch off", "switch it off", "im finished", "thats it", "enough", "see you", "see you later", "good night",
             "goodnight"),
    "pause": ("pause", "wait", "hold on", "hang on", "one moment", "just a moment", "just a second", "one second",
              "give me a minute", "wait a moment", "wait a second", "hold it", "be quiet", "quiet", "shush",
              "pause please", "stop talking", "stop reading", "shh", "hush", "pause it", "wait wait", "hold"),
    "resume": ("continue", "resume", "carry on", "keep reading", "go ahead", "im back", "i am back", "unpause",
               "please continue", "continue reading", "lets continue", "where was i", "go on reading", "keep reading",
               "read on from there", "pick up where you left off", "carry on reading"),
    "faster": ("faster", "speed up", "talk faster", "speak faster", "quicker", "go faster", "a bit faster",
               "too slow", "read faster", "speak more quickly", "speed it up", "hurry up"),
    "slower": ("slower", "slow down", "talk slower", "speak slower", "go slower", "a bit slower", "too fast",
               "read slower", "slowly", "slow it down", "more slowly", "not so fast"),
    "louder": ("louder", "speak up", "turn it up", "turn it up a bit", "turn up the volume", "volume up", "a bit louder",
               "speak louder", "talk louder", "louder please", "too quiet", "too soft", "i cant hear you", "more volume",
               "turn the volume up", "up the volume"),
    "quieter": ("quieter", "softer", "turn it down", "turn it down a bit", "turn down the volume", "volume down",
                "a bit quieter", "speak quieter", "speak more quietly", "talk quieter", "not so loud", "too loud",
                "less loud", "less volume", "turn the volume down", "a bit softer", "speak softer", "lower the volume"),
    "where": ("where am i", "where are we", "what section is this", "what part is this", "where is this",
              "what am i listening to", "which section", "what is this section", "what section am i in",
              "what part am i in", "which part", "where am i now", "which section am i in", "what topic is this",
              "what are we on", "what am i on"),
    "yes": ("yes", "yeah", "yep", "yup", "sure", "ok", "okay", "please do", "yes please", "correct", "right",
            "of course", "alright", "all right", "do it", "go for it", "sure thing", "yes i do", "i do", "definitely",
            "thats right", "affirmative", "uh huh", "mhm", "mm hmm", "got it"),
    "no": ("no", "nope", "no thanks", "no thank you", "not now", "not", "not right", "not right now", "nah", "dont",
           "no way", "not really", "not yet", "i dont", "negative", "no i dont", "stay",
           # the answers to a two-way question ("Gilteritinib, or ivosidenib?") that reject both
           "neither", "neither of them", "neither one", "none of them", "not that one", "thats wrong"),
    "cancel": ("cancel", "never mind", "nevermind", "forget it", "forget that", "cancel that", "no never mind",
               "oh never mind", "scratch that"),
    "sources": ("sources", "source", "where is this from", "where does this come from", "what are the sources",
                "what are your sources", "where does this information come from", "references", "who says",
                "where did you get this", "where did this come from", "the sources", "list the sources",
                "who wrote this", "citations"),
    "disclaimer": ("disclaimer", "the disclaimer", "read the disclaimer", "say the disclaimer", "is this medical advice",
                   "repeat the disclaimer"),
    "keys": ("keys", "key list", "what keys", "which keys", "keyboard", "list the keys", "keyboard keys",
             "keyboard shortcuts", "shortcuts", "what are the keys", "all the keys", "the keys"),
}

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "won": 1, "to": 2, "too": 2, "for": 4, "ate": 8,
}
_HOMOPHONE_ONLY = {"won", "to", "too", "for", "ate"}  # only as "number to", never alone
_NUMBER_RE = re.compile(
    r"^(?:(?:number|option|choice|press|item|pick|choose|select|the)\s+)?(\w+)(?:\s+(?:one|please|option|topic|section|choice))?$"
)

#: words that carry no content: carriers, politeness, articles
_FILLER = set("""
a an the please me i id i'd im to about on of for some more info information hear learn know tell
read go open take show explain lets let us want would like can could you give what whats is are was
what's on in it its this that those these do does mean means meaning define definition tell talk
now then ok okay so um uh er well just really again also and or my your we our something anything
called named word term thing things kind sort drug drugs medicine option options part section
topic treatment treatments jump switch move get find look up there here be we wed were our us
combination combo hear
""".split())
_CARRIERS = (
    "tell me about", "tell me more about", "i want to hear about", "i want to know about", "id like to hear about",
    "i would like to hear about", "can you tell me about", "could you tell me about", "lets hear about",
    "lets talk about", "talk about", "go to", "take me to", "open", "jump to", "switch to", "move to", "show me",
    "read me", "read", "what about", "how about", "back to", "info on", "information on", "information about",
    "learn about", "more about", "explain", "i want", "id like", "lets do", "lets go to", "go back to",
    "what is", "whats", "what are", "who is", "tell me", "play", "start",
)
#: "what does X mean" and friends; the first ``_EXPLICIT`` patterns ask for a definition even when a
#: section has the same name, the rest ("what is X") open the section if there is one
_DEFINE_RE = [
    re.compile(r"^what (?:does|do|did) (?:the (?:word|term) )?(.+?) (?:mean|means|stand for|stands for)$"),
    re.compile(r"^(?:what is|whats|what are) (?:the )?(?:meaning|definition) of (?:the (?:word|term) )?(.+)$"),
    re.compile(r"^(?:define|definition of|meaning of|explain the (?:word|term)) (?:the (?:word|term) )?(.+)$"),
    re.compile(r"^(?:what do you mean by|what is meant by|whats meant by|what does it mean by) (?:the (?:word|term) )?(.+)$"),
    re.compile(r"^(?:what is|whats|what are|what s) (?:a|an) (.+)$"),
    re.compile(r"^(?:what is|whats|what are|what s) (?:the )?(.+)$"),
]
_EXPLICIT = 5
#: words people use in commands that carry no meaning of their own
_COMMAND_FILLER = set("""
please now for a an the me us can could would will you just little bit ok okay so then and to it
this that i we id wed lets let want like one of on is be um uh er well oh hey thanks thank go
moment minute second sec
""".split())
#: personal-advice questions: the guide shares information only, and says so
_ADVICE = re.compile(r"\b(should i|should we|should my|shall i|ought i|must i|do i need|is it safe|will it work|"
                     r"will it cure|do you recommend|recommend|which is best|what should|can i take|can i stop|"
                     r"my doctor said|(?:right|good|safe|best|work|ok|okay) for (?:me|my \w+)|how much should|"
                     r"dose for me)\b")


@dataclass(frozen=True)
class Intent:
    """What the listener wants."""

    intent: str
    """One of :data:`INTENTS`."""
    target: str | None
    """Section id for ``open``, glossary term for ``define``, the number for ``number``."""
    text: str
    """What was said or typed."""
    confidence: float
    """0..1: how sure the parser is."""

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def asks_for_advice(self) -> bool:
        """True when the words ask for personal medical advice (the guide never gives it)."""
        return bool(_ADVICE.search(normalize(self.text)))


_YES_NO_QUESTION = re.compile(r"^(?:is|are|was|am|does|do|did|has|have|will|shall)\s")  # not "were": "we're" reads so
"""A yes/no question: what it asks about (the end, being done) is asked, not ordered."""


def number_value(word: str, *, allow_homophones: bool = False) -> int | None:
    if word.isascii() and word.isdigit():
        return int(word)
    if word in _HOMOPHONE_ONLY and not allow_homophones:
        return None
    return _NUMBER_WORDS.get(word)


def bare_stop(text: str) -> bool:
    """ "stop" on its own (or "stop it", "stop that", "stop please"): while the guide talks, this means stop talking,
    not leave."""
    words = re.sub(r"[^a-z ]", "", text.lower()).split()
    return bool(words) and words[0] == "stop" and len(words) <= 2 and words[1:] in ([], ["it"], ["that"], ["please"])


def _strip_articles(text: str) -> str:
    return re.sub(r"^(?:the|a|an|about|on|of)\s+", "", text).strip()


class IntentParser:
    """Maps free text to an :class:`Intent` using names from one guide."""

    def __init__(self, guide: Guide):
        self.guide = guide
        self.sections: dict[str, str] = {}
        self.terms: dict[str, str] = {}
        for name, (kind, target) in guide.names().items():
            (self.sections if kind == "section" else self.terms)[name] = target
        for entry in guide.glossary:  # terms that share a name with a section are still definable
            for name in (entry.term, *entry.aliases):
                self.terms.setdefault(normalize(name), entry.term)
        for table in (self.sections, self.terms):
            for name, target in list(table.items()):
                for variant in self._variants(name):
                    table.setdefault(variant, target)
        self.commands: dict[str, str] = {p: intent for intent, ps in COMMAND_PHRASES.items() for p in ps}
        # single content words that appear in names: an utterance made of them is on-topic
        self.name_words = {w for n in (*self.sections, *self.terms) for w in n.split()}

    @staticmethod
    def _variants(name: str) -> set[str]:
        out = {_strip_articles(name)}
        words = name.split()
        if words and len(words[-1]) > 3:
            last = words[-1]
            out.add(" ".join(words[:-1] + [last[:-1] if last.endswith("s") else last + "s"]))
        return {v for v in out if v and v != name}

    # ------------------------------------------------------------------ public
    def parse(self, text: str) -> Intent:
        raw = text
        t = normalize(text)
        if t in self.commands:  # a whole command first: "uh huh" is not "huh"
            return Intent(self.commands[t], None, raw, 1.0)
        t = re.sub(r"^(?:(?:um|uh|er|hmm|oh|ok|okay|so|well|hey|hi|hello|please|and|now|sorry|excuse me|"
                   r"voice guide|guide)\s+)+", "", t)
        t = re.sub(r"(?:\s+(?:please|thanks|thank you|now|for me|exactly))+$", "", t).strip()
        if not t or _ADVICE.search(t):  # advice is never guessed into navigation
            return Intent("none", None, raw, 0.0)
        for parse in (self._command, self._number, self._define, self._open, self._command_words,
                      self._fuzzy_command):
            found = parse(t, raw)
            if found is not None:
                if found.intent == "stop" and _YES_NO_QUESTION.match(t):
                    # "is that the end?", "are we done?": a question about the place, never a way out
                    return Intent("where", None, raw, found.confidence)
                return found
        return Intent("none", None, raw, 0.0)

    # ------------------------------------------------------------------ steps
    def _command(self, t: str, raw: str) -> Intent | None:
        if t in self.commands:
            return Intent(self.commands[t], None, raw, 1.0)
        for prefix in ("can you ", "could you ", "would you ", "please ", "lets ", "i want to ", "id like to ",
                       "i would like to ", "you can ", "go ahead and ", "take me to ", "go to ", "take me ",
                       "bring me to ", "back to "):
            rest = _strip_articles(t[len(prefix):]) if t.startswith(prefix) else ""
            if rest in self.commands:
                return Intent(self.commands[rest], None, raw, 0.95)
        return None

    def _number(self, t: str, raw: str) -> Intent | None:
        m = _NUMBER_RE.match(t)
        if not m:
            return None
        word = m.group(1)
        prefixed = t != word
        value = number_value(word, allow_homophones=prefixed and t.startswith(("number", "option", "press")))
        if value is None or (t.startswith("the ") and not re.search(r"(one|option|topic|section|choice)$", t)
                             and not word.isdigit() and word not in {"first", "second", "third", "fourth",
                                                                     "fifth", "sixth", "seventh", "eighth",
                                                                     "ninth", "tenth"}):
            return None
        return Intent("number", str(value), raw, 1.0)

    def _lookup(self, phrase: str, table: dict[str, str], fuzzy: bool = True) -> tuple[str, float] | None:
        phrase = _strip_articles(phrase)
        if not phrase:
            return None
        if phrase in table:
            return table[phrase], 1.0
        if not fuzzy:
            return None
        from rapidfuzz import fuzz, process  # lazily: only needed on a miss

        if len(phrase) < 4:
            return None
        best = process.extractOne(phrase, table.keys(), scorer=fuzz.ratio, score_cutoff=84)
        if best:
            return table[best[0]], round(best[1] / 100, 3)
        return None

    def _define(self, t: str, raw: str) -> Intent | None:
        for i, pattern in enumerate(_DEFINE_RE):
            m = pattern.match(t)
            if not m:
                continue
            phrase = m.group(1)
            explicit = i < _EXPLICIT  # "what does X mean", "define X": a definition even when a section has the name
            # an unknown X falls through, and ends as "none": never a guess
            term = self._lookup(phrase, self.terms)
            section = self._lookup(phrase, self.sections)
            if term and (explicit or not section or section[1] < term[1]):
                return Intent("define", term[0], raw, term[1])
            if section:
                return Intent("open", section[0], raw, section[1])
        return None

    def _open(self, t: str, raw: str) -> Intent | None:
        candidates = [t]
        for carrier in sorted(_CARRIERS, key=len, reverse=True):
            if t.startswith(carrier + " "):
                candidates.append(t[len(carrier) + 1:])
        candidates = [re.sub(r"\s+(?:section|part|topic|one|option|please|again)$", "", c) for c in candidates]
        # exact names first, then names inside the phrase, and only then near misses (ASR errors)
        for fuzzy in (False, True):
            for phrase in candidates:
                found = self._lookup(phrase, self.sections, fuzzy=fuzzy)
                if found:
                    return Intent("open", found[0], raw, found[1])
                found = self._lookup(phrase, self.terms, fuzzy=fuzzy)
                if found and phrase == t:  # a bare glossary word: define it
                    return Intent("define", found[0], raw, found[1])
            if not fuzzy:
                embedded = self._embedded(t, raw)
                if embedded:
                    return embedded
        return None

    def _embedded(self, t: str, raw: str) -> Intent | None:
        """Names inside a longer phrase, in any order, accepted only when they cover every content word.

        "the drug for FLT3" finds the name "flt3 drug"; "MEC chemo" names a
        section and its parent, and means the more specific one. Two unrelated
        things named, or any word left unexplained, gives None: never a guess.
        """
        words = set(t.split())
        content = words - _FILLER
        if not content:
            return None
        found: list[tuple[int, str, str]] = []
        covered: set[str] = set()
        for table, kind in ((self.sections, "open"), (self.terms, "define")):
            for name, target in table.items():
                n = set(name.split())
                if n <= words and n - _FILLER:
                    found.append((len(n), kind, target))
                    covered |= n
        if not found or content - covered:
            return None
        named = {target for _, kind, target in found if kind == "open"}
        if len(named) > 1 and self._most_specific(named) is None:
            return None  # two unrelated sections named ("the side effects of gilteritinib"): a question, not a place
        size = max(n for n, _, _ in found)
        best = {(kind, target) for n, kind, target in found if n == size}
        opens = {target for kind, target in best if kind == "open"}
        if opens:
            target = self._most_specific(opens)
            if target is None:
                return None
            kind = "open"
        elif len(best) == 1:
            kind, target = next(iter(best))
        else:
            return None
        others = len(t.split()) - size
        return Intent(kind, target, raw, round(max(0.6, 1.0 - 0.04 * others), 3))

    def _most_specific(self, ids: set[str]) -> str | None:
        """The deepest of sections that lie on one path from the top; None if they are unrelated."""
        paths = sorted(([p.id for p in self.guide.path_to(i)] for i in ids), key=len)
        deepest = paths[-1]
        return deepest[-1] if all(p == deepest[:len(p)] for p in paths) else None

    def _command_words(self, t: str, raw: str) -> Intent | None:
        """A command phrase inside a longer one ("hang on a second", "go back one"), when every other word is filler."""
        words = set(t.split())
        found: dict[str, int] = {}
        covered: set[str] = set()
        for phrase, intent in self.commands.items():
            p = set(phrase.split())
            if p <= words:
                found[intent] = max(found.get(intent, 0), len(p))
                covered |= p
        if not found or words - _COMMAND_FILLER - covered:
            return None
        size = max(found.values())
        best = [intent for intent, n in found.items() if n == size]
        if len(best) > 1:
            return None  # two commands at once: ask again rather than guess
        return Intent(best[0], None, raw, round(max(0.6, 0.95 - 0.05 * (len(t.split()) - size)), 3))

    def _fuzzy_command(self, t: str, raw: str) -> Intent | None:
        if len(t.split()) > 4:
            return None
        from rapidfuzz import fuzz, process

        best = process.extractOne(t, self.commands.keys(), scorer=fuzz.ratio, score_cutoff=86)
        if best and len(best[0]) >= 4:
            return Intent(self.commands[best[0]], None, raw, round(best[1] / 100, 3))
        return None


# ---------------------------------------------------------------------- CLI


def register(sub, formatter) -> None:
    p = sub.add_parser("parse", help="show what the guide understands from a phrase",
                       description="Map each phrase to an intent. With --json, one JSON object per line, in order: "
                                   "intent, target, text, confidence.", formatter_class=formatter)
    p.add_argument("text", nargs="+", metavar="TEXT", help="a phrase; quote phrases with spaces")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--content", metavar="PATH", help="content pack folder (default: the shipped guide)")
    p.set_defaults(func=cmd_parse)


def cmd_parse(args) -> int:
    parser = IntentParser(load_guide(args.content))
    for text in args.text:
        intent = parser.parse(text)
        if args.json:
            print(json.dumps(intent.to_json(), ensure_ascii=False))
        else:
            target = f" {intent.target}" if intent.target else ""
            print(f"{text}: {intent.intent}{target} (confidence {intent.confidence:.2f})")
    sys.stdout.flush()
    return 0
