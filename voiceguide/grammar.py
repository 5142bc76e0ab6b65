"""A JSGF grammar and pronunciation dictionary compiled from a content pack.

The grammar accepts what a listener says to the guide: universal commands,
numbers, every section and glossary name, optionally inside a carrier phrase
("tell me about ...", "what does ... mean"). A parallel *garbage* path of
common English words soaks up out-of-grammar speech, so it is rejected instead
of being forced onto the nearest command. Every word gets a pronunciation: the
recogniser's own dictionary, else the content lexicon's phones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .content import Guide, normalize
from .intents import COMMAND_PHRASES

__all__ = ["CompiledGrammar", "compile_grammar", "cmudict", "spoken_number", "GARBAGE"]

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

CARRIERS = [
    "tell me about", "tell me more about", "i want to hear about", "i'd like to hear about", "let's hear about",
    "go to", "take me to", "open", "what about", "how about", "what is", "what's", "what are", "what is a",
    "what's a", "what is the", "read", "explain", "define", "the", "about", "information on", "more about",
]
POST = ["please", "mean", "stand for", "section", "drug", "one"]
NUMBER_CARRIERS = ["number", "option", "press", "the", "choose", "pick"]
#: typed commands left out of the *spoken* grammar: short everyday words that other speech is
#: easily heard as ("quit" came back as "what", "leave" as "wait"); longer phrasings remain
NOT_SPOKEN = {"what", "huh", "up", "top", "main", "end", "close", "leave", "done", "enough", "hold", "right", "sure"}
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]

#: common English words that are *not* commands: the path out-of-grammar speech takes
GARBAGE = """
a about after all also am an and any are as at be because been before being but by can come could day did do
does down each even every few find first for from get give go good great had has have he her here him his
how i if in into is it just know like little long look make man many may me might more most much must my
never new no not now of off old on one only or other our out over own people place put right said same saw
say see she should show so some still such take than that the their them then there these they thing think
this those time to too two under up us use very want was way we well went were what when where which while
who why will with word work world would year yes you your weather music song play call phone text message
email dinner lunch breakfast coffee tea water kitchen garden car drive street house home door window light
lights money bank shop store buy sell pay price cheap game team score win lose ball sport news paper book
movie film show tv radio friend family mother father son daughter brother sister baby dog cat bird fish
tree flower rain snow sun wind hot cold warm weekend monday tuesday friday morning evening night tomorrow
yesterday today hour minute clock alarm timer remind remember forget birthday party holiday travel trip
train bus plane airport hotel beach city country river mountain school class teacher student computer
internet website password picture photo camera color red blue green yellow black white big small fast slow
happy sad funny joke story turtle pizza chicken bread cheese apple banana orange sugar salt pepper
""".split()


def spoken_number(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    return " ".join(spoken_number(int(d)) for d in str(n))


def words_for(text: str) -> list[str]:
    """Normalised words with digits spoken: "7 and 3" -> seven and three; "cd33" stays (a lexicon word)."""
    out = []
    for w in normalize(text).split():
        out.extend(spoken_number(int(w)).split() if w.isdigit() else [w])
    return out


@lru_cache(maxsize=2)
def cmudict(path: str) -> dict[str, list[str]]:
    """The recogniser's dictionary: word -> pronunciations (ARPAbet)."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            word = re.sub(r"\(\d+\)$", "", parts[0])
            out.setdefault(word, []).append(" ".join(parts[1:]))
    return out


@dataclass
class CompiledGrammar:
    jsgf: str
    """The grammar text."""
    dictionary: dict[str, list[str]]
    """Every word the grammar uses -> its pronunciations."""
    skipped: list[str] = field(default_factory=list)
    """Names left out because a word had no pronunciation."""
    junk: frozenset = frozenset()
    """The garbage-path words: a hypothesis made only of these is out-of-grammar speech."""
    pattern: str = ""
    """A regular expression matching exactly the grammar's command sentences (in dictionary words)."""
    commands_jsgf: str = ""
    """The same grammar without the garbage path: every sound is forced onto some command."""

    def accepts(self, hypothesis: str) -> bool:
        """Whether ``hypothesis`` is a whole command sentence. The recogniser returns its best partial
        path ("wait a", "what") when no path reached the end of the grammar: those are rejected."""
        return bool(self.pattern) and re.fullmatch(self.pattern, hypothesis) is not None

    def is_garbage(self, hypothesis: str) -> bool:
        words = hypothesis.split()
        return not words or all(w in self.junk for w in words)

    def dict_text(self) -> str:
        lines = []
        for word in sorted(self.dictionary):
            for i, phones in enumerate(self.dictionary[word]):
                lines.append(f"{word}{'' if i == 0 else f'({i + 1})'} {phones}")
        return "\n".join(lines) + "\n"


def compile_grammar(guide: Guide, dict_path: str) -> CompiledGrammar:
    base = cmudict(dict_path)
    # apostrophe-less forms ("whats") back to dictionary forms ("what's")
    apostrophes = {w.replace("'", ""): w for w in base if "'" in w}
    lexicon: dict[str, list[str]] = {}
    for e in guide.lexicon:
        if e.phones:
            key = " ".join(words_for(e.word))
            lexicon.setdefault(key, []).append(e.phones)
    used: dict[str, list[str]] = {}
    skipped: list[str] = []

    def spell(phrase: str) -> str | None:
        """The phrase in dictionary words, registering pronunciations; None if a word is unknown."""
        ws = words_for(phrase)
        out = []
        i = 0
        while i < len(ws):
            # multi-word lexicon entries first (e.g. "ara c", "g csf")
            for span in (3, 2):
                chunk = " ".join(ws[i:i + span])
                if len(ws[i:i + span]) == span and chunk in lexicon:
                    token = chunk.replace(" ", "_")
                    used[token] = lexicon[chunk]
                    out.append(token)
                    i += span
                    break
            else:
                w = ws[i]
                if w in lexicon:
                    used[w] = lexicon[w] + [p for p in base.get(w, []) if p not in lexicon[w]]
                    out.append(w)
                elif w in base:
                    used[w] = base[w]
                    out.append(w)
                elif w in apostrophes:
                    used[apostrophes[w]] = base[apostrophes[w]]
                    out.append(apostrophes[w])
                else:
                    return None
                i += 1
        return " ".join(out)

    def alternatives(phrases) -> list[str]:
        out = []
        for p in phrases:
            s = spell(p)
            if s is None:
                skipped.append(p)
            elif s not in out:
                out.append(s)
        return out

    names = alternatives(sorted(guide.names()))
    commands = alternatives(sorted({p for ps in COMMAND_PHRASES.values() for p in ps if p not in NOT_SPOKEN}))
    carriers = alternatives(CARRIERS)
    post = alternatives(POST)
    numbers = alternatives([spoken_number(n) for n in range(1, 21)] + ORDINALS)
    number_carriers = alternatives(NUMBER_CARRIERS)
    command_words = set(" ".join(names + commands + carriers + post + numbers + number_carriers + ["one"]).split())
    garbage = alternatives([g for g in GARBAGE if g not in command_words])

    def rule(items):
        return " | ".join(items) if items else "<VOID>"

    rules = [
        "<command> = [<carrier>] <name> [<post>] | <cmd> | [<numcarrier>] <number> [one];",
        f"<carrier> = {rule(carriers)};",
        f"<post> = {rule(post)};",
        f"<name> = {rule(names)};",
        f"<cmd> = {rule(commands)};",
        f"<numcarrier> = {rule(number_carriers)};",
        f"<number> = {rule(numbers)};",
        "<garbage> = <junk>+;",
        f"<junk> = {rule(garbage)};",
        "",
    ]

    def grammar(utterance: str) -> str:
        return "\n".join(["#JSGF V1.0;", "grammar voiceguide;", f"public <utterance> = {utterance};", *rules])

    if "one" not in used:
        spell("one")

    def alt(items) -> str:
        return "(?:" + "|".join(re.escape(i) for i in sorted(items, key=len, reverse=True)) + ")" if items else "(?!)"

    pattern = (rf"(?:{alt(carriers)} )?{alt(names)}(?: {alt(post)})?|{alt(commands)}"
               rf"|(?:{alt(number_carriers)} )?{alt(numbers)}(?: one)?")
    return CompiledGrammar(grammar("<command> | <garbage>"), used, skipped, frozenset(garbage), pattern,
                           grammar("<command>"))
