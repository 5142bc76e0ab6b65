"""Questions answered only from the content pack (``ask`` command; the dialog core asks it too).

``Asker(guide).ask("what are the side effects of gilteritinib")`` gives an :class:`Answer` of one kind:

- ``answer``: one to three sentences standing verbatim in one summary or body paragraph of the pack,
  with the id of the section they come from (never stitched, never rewritten);
- ``definition``: a glossary entry, verbatim;
- ``advice``: the question is about one's own treatment, a dose, stopping a drug, or prognosis: the
  pack's fixed reply (``replies.yaml``), which sends the listener to their care team;
- ``support``: fear or distress: the pack's kind reply, with where to find support;
- ``unknown``: the pack does not cover it: the pack's reply, naming the nearest topics.

Retrieval is BM25 (``bm25s``, with the Snowball English stemmer from ``PyStemmer``) over every
summary and body paragraph, each indexed with its section's title, id, aliases and glossary terms.
Before ranking, the question is put into the pack's own words: the lexicon's respellings ("eye vo
siddenib") and spelled-out letters ("f l t three") become the written names, glossary aliases
bring in their term, the pack's synonyms (``replies.yaml``) bring in the words the guide uses
("chemo" -> chemotherapy, "risks" -> side effects), and a word the pack does not know but nearly
spells (a recogniser's "xospada") becomes the pack's word. A question whose content words are not
mostly found in the best paragraph, or that names nothing the pack is about, is ``unknown``:
a guess is never made. Which questions are advice or support is decided by English patterns
here; what is *said* comes from the pack.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass

from .content import Guide, Section, load_guide, normalize
from .errors import VoiceGuideError

__all__ = ["Answer", "Asker", "KINDS", "sentences"]

KINDS = ("answer", "definition", "advice", "support", "unknown")

#: words that carry no topic of their own (after normalize: no apostrophes)
_STOP = set("""
a about above after again all also am an and any anything are as at be because been before being both but by
can cant could did didnt do does doesnt doing dont down during each else even ever every few for from further
get gets getting give given go goes going gone got had has have having he her here hers him his how i id if im
in into is isnt it its itself ive just kind know let lets like me mean means meaning might more most much must my
myself need no nor not now of off ok okay on once one only or other our ours out over own please really said say
says see she should so some something such tell than thank thanks that thats the their theirs them then there
these they thing things this those through to too under until up us very want was we well were what whats when
where which while who whom whose why will with would yes you your youre yours yourself
hi hello hey um uh er hmm sorry oh guide voice part parts section sections topic topics bit lot little way
explain told talk hear heard ask asked anyone someone people person compare comparison versus vs between
difference treat treats treated treating used
""".split())
#: words too common in everyday speech to show a question is about the pack, even when the pack uses them
_GENERIC = set("""
time times day days week weeks year years long many same new old first next last make made take taken use used
uses work works working help helps start end back come came comes find right left good bad best better high low
set play call order open close run turn keep put show look good great big small different another other two three
four five six seven eight nine ten number numbers way name called also still often usually sometimes
""".split())
_NUMBERS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
            "seven": "7", "eight": "8", "nine": "9", "ten": "10", "won": "1", "to": "2", "too": "2", "for": "4"}

_PERSON = r"(?:i|we|he|she|they|you|my \w+|our \w+|his \w+|her \w+|mum|mom|dad)"
_FOR_PERSON = r"for (?:me|us|him|her|them|my \w+|our \w+)"
#: questions about one's own treatment: what to take, dose, stopping, choosing
_ADVICE_ACT = re.compile("|".join([
    rf"(?<!how )(?<!where )\b(?:should|shall|ought|must) {_PERSON}\b",  # not "how should I breathe in"
    rf"\b(?:can|could|may|do|does) {_PERSON} (?:take|stop|skip|miss|quit|switch|change|start|try|ask for|"
    rf"refuse|drink|need|have to|get)\b",
    r"\b(?:stop|stopping|quit|quitting|skip|skipping|miss|missing|come off|coming off|halve|double) "
    r"(?:taking |having )?(?:my|his|her|our|their)\b",
    r"\b(?:stop|stopping|quit|quitting) taking\b",
    r"\b(?:my|his|her|our|their|the right|what|which) (?:dose|doses|dosage)\b",
    r"\bhow (?:much|many|often) \w+(?: \w+)? (?:should|do|does|can|must|will|would) " + _PERSON + r"\b",
    r"\b(?:recommend|recommended|recommendation|advise|your advice|what would you do|would you choose)\b",
    r"\b(?:right|good|best|safe|safer|better|ok|okay|suitable|wise|worth it|the right choice|an option|work|"
    r"the best choice|a good idea|a good choice|the answer)\b.* " + _FOR_PERSON + r"\b",
    _FOR_PERSON + r" (?:is|would be) (?:best|better|right|safest)\b",
    r"\bwhich (?:one|drug|treatment|option|plan|regimen) (?:is|would be|should) (?:best|better|right)\b",
    r"\bis it (?:safe|ok|okay|dangerous) (?:for (?:me|us|him|her) )?to\b",
    r"\bdo you think (?:i|we|he|she|my)\b",
    r"\b(?:my|our|his|her) (?:test results|blood test|blood tests|results|scan|scans|blood counts|counts|numbers)\b",
]))
#: prognosis: survival, time left, whether it will work for them
_ADVICE_FATE = re.compile("|".join([
    rf"\b(?:will|am|are|is|would|could) {_PERSON} (?:going to |gonna )?(?:die|dying|be ok|be okay|"
    r"be alright|be all right|be fine|live|survive|make it|be cured|get better|recover|pull through|beat)\b",
    r"\b(?:going to die|gonna die|am i dying|is (?:he|she) dying)\b",
    rf"\bhow long (?:do|have|will|would|can|has|does|is) {_PERSON}\b",
    r"\bhow (?:many|much) (?:time|months|years|weeks|days) (?:do|have|will|has|does|is|are)\b",
    r"\b(?:prognosis|life expectancy|survival rate|survival rates|survival odds|chance of survival|"
    r"chances of survival|chance of surviving|chances of surviving|the odds|my odds|outlook|time left|terminal|"
    r"how long to live|how long left)\b",
    r"\b(?:my|our|his|her|what are the|what is the|whats the) chances?\b",
    r"\bwill (?:it|this|that|the \w+|\w+) (?:work|cure|help|save) (?:me|us|him|her|them)\b",
    rf"\bwill (?:it|this|that|the \w+|\w+) work for (?:me|us|him|her|them|my \w+)\b",
]))
#: fear and distress
_SUPPORT = re.compile("|".join([
    r"\b(?:scared|afraid|frightened|frightening|terrified|terrifying|fear|fearful|worried|worrying|worry|anxious|"
    r"anxiety|panic|panicking|nervous|depressed|depressing|hopeless|helpless|overwhelmed|overwhelming|crying|"
    r"devastated|heartbroken|despair|desperate|stressed|distressed|distraught|grief|grieving|miserable)\b",
    r"\b(?:cope|coping|cant take (?:it|this|any ?more)|cant handle|cant go on|give up|giving up|falling apart|"
    r"too much for me|too much to (?:bear|handle|take))\b",
    r"\b(?:feel|feeling|felt|am|im|so|very|really|all) (?:so |very |really |all )?"
    r"(?:alone|lonely|sad|upset|low|down|lost|awful|terrible|broken|numb|angry|empty|unhappy|shocked|sick with worry)\b",
    r"\b(?:i|we) (?:cant stop|keep) (?:crying|shaking)\b",
]))
#: "what is X", "what does X mean", "define X": X may be a glossary term
_DEFINE = [
    re.compile(r"^(?:so |and |but |ok |okay |um |uh )*what (?:does|do|did) (?:the (?:word|term|abbreviation) )?(.+?) "
               r"(?:mean|means|stand for|stands for)$"),
    re.compile(r"^(?:what is|whats|what are|what s) (?:the )?(?:meaning|definition) of (?:the (?:word|term) )?(.+)$"),
    re.compile(r"^(?:define|definition of|meaning of|explain the (?:word|term)|what is meant by|whats meant by|"
               r"what do you mean by) (?:the (?:word|term) )?(.+)$"),
    re.compile(r"^(?:(?:and|so|but|ok|okay|um|uh) )*(?:what is|whats|what are|what s|whats an?|what is an?) (?:an? |the )?(.+?)(?: exactly| again)?$"),
]
#: generic heads a listener puts after a term ("the flit three gene")
_HEADS = ("gene", "drug", "medicine", "plan", "regimen", "word", "term", "thing", "mutation", "change", "test")
#: words that mean "the section I am in" in a follow-up
_PRONOUNS = {"it", "this", "that", "they", "them", "its", "these", "those", "one"}
_LAST_QUESTION = re.compile(r"\b(?:what|which|how|why|when|where|who|is there|are there)\b(?!.*\b(?:what|which|how|why|"
                            r"when|where|who|is there|are there)\b).*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def _sound_key(text: str) -> str:
    """A rough key of how words sound, for names a recogniser wrote as other words ("guilt tary tenon" and
    "gilteritinib" both give ``gltrtn...``): letters alike in sound merged, vowels after the first letter
    and doubled letters dropped."""
    w = re.sub(r"[^a-z0-9]", "", text.lower())
    for a, b in (("ph", "f"), ("ck", "k"), ("qu", "kw"), ("x", "ks"), ("c", "k"), ("q", "k"), ("z", "s"), ("v", "f"),
                 ("y", "i"), ("j", "g"), ("d", "t"), ("b", "p"), ("w", "")):
        w = w.replace(a, b)
    w = w[:1] + re.sub(r"[aeiouh]", "", w[1:])
    return re.sub(r"(.)\1+", r"\1", w)


def sentences(text: str) -> list[str]:
    """The sentences of one paragraph, exactly as written (joined with one space they give it back)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


@dataclass(frozen=True)
class Answer:
    """What the guide says to one question."""

    question: str
    kind: str
    """One of :data:`KINDS`."""
    section: str | None
    """The section the answer comes from (kind ``answer``), else None."""
    term: str | None
    """The glossary term (kind ``definition``), else None."""
    answer: str
    """Exactly what to say: verbatim pack text (answer/definition) or the pack's reply."""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Unit:
    section: str
    text: str
    summary: bool


class Asker:
    """Answers questions from one guide; builds its index once (see the module docstring)."""

    min_coverage = 0.5
    """Share (by weight) of a question's content words that must stand in the chosen paragraph (more than)."""
    name_weight = 0.5
    named_boost = 2.0
    """Scores of paragraphs in a section the question names (or, for a follow-up, the listener's section) times this."""
    """How much a section's names (title, aliases, terms) count beside a paragraph's own words."""
    oov_weight, generic_weight = 1.5, 0.5
    """Weights of a word the pack never uses, and of an everyday word, in that share (others: 1)."""

    def __init__(self, guide: Guide):
        import bm25s
        import Stemmer

        self.guide = guide
        self._stemmer = Stemmer.Stemmer("english")
        self._stems: dict[str, str] = {}
        self.units: list[_Unit] = []
        docs: list[list[str]] = []
        section_docs: list[list[str]] = []
        name_docs: list[list[str]] = []
        self.section_ids: list[str] = []
        self.names: dict[str, list[str]] = {}  # section id -> its name tokens
        terms_by_name = {normalize(e.term): e for e in guide.glossary}
        for sec in guide.walk():
            name_text = " ".join([sec.id.replace("-", " "), sec.title, *sec.aliases, *sec.terms])
            for t in sec.terms:  # a term's aliases name the section too ("flit three")
                entry = guide.term(t) or terms_by_name.get(normalize(t))
                if entry:
                    name_text += " " + " ".join(entry.aliases)
            names = self._tokens(name_text)
            self.names[sec.id] = names
            all_text = [sec.summary, *sec.body]
            for i, para in enumerate(all_text):
                self.units.append(_Unit(sec.id, para, i == 0))
                docs.append(self._tokens(para))
            self.section_ids.append(sec.id)
            section_docs.append(self._tokens(" ".join(all_text)) + names + names)
            name_docs.append(names)
        self._bm25 = bm25s.BM25()
        self._bm25.index(docs, show_progress=False)
        self._sections = bm25s.BM25()
        self._sections.index(section_docs, show_progress=False)
        self._names_bm25 = bm25s.BM25()
        self._names_bm25.index(name_docs, show_progress=False)
        self._unit_section = [self.section_ids.index(u.section) for u in self.units]
        written = {t for d in docs for t in d}  # words the paragraphs themselves use
        docs = [d + self.names[u.section] for d, u in zip(docs, self.units)]  # what a paragraph is about
        self._vocab = {t for d in docs for t in d}
        df: dict[str, int] = {}
        for d in docs:
            for t in set(d):
                df[t] = df.get(t, 0) + 1
        n = len(docs)
        import math

        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self._idf_oov = math.log(1 + (n + 0.5) / 0.5)
        self._unit_tokens = [set(d) for d in docs]
        # the pack's "topic" words: from names, glossary and lexicon, less everyday ones
        topic_text = [" ".join([e.term, *e.aliases]) for e in guide.glossary]
        topic_text += [e.word for e in guide.lexicon]
        topic_text += [word for word, _ in (guide.replies.synonyms if guide.replies else ())]
        self._generic = {self._stem(w) for w in _GENERIC}
        self._topics = ({t for v in self.names.values() for t in v} | set(self._tokens(" ".join(topic_text)))) - self._generic
        # phrases said -> the pack's words they stand for (normalized, whole words): respellings and
        # glossary aliases only where the pack's paragraphs never use one of their words ("flit three",
        # not "leukemia"), the pack's synonyms always
        self._phrases: dict[str, str] = {}  # phrase -> the pack's words (several: joined by spaces)
        said = [(normalize(e.say), normalize(e.word)) for e in guide.lexicon]
        said += [(normalize(a), normalize(e.term)) for e in guide.glossary for a in e.aliases]
        for phrase, word in said:
            if phrase and phrase != word and not set(self._tokens(phrase)) <= written:
                self._phrases.setdefault(phrase, word)
        replies = guide.replies
        for word, said in (replies.synonyms if replies else ()):
            for s in said:
                self._phrases[s] = f"{self._phrases[s]} {word}" if s in self._phrases else word
        self._phrase_re = re.compile(
            r"\b(" + "|".join(re.escape(p) for p in sorted(self._phrases, key=len, reverse=True) if p) + r")\b"
        ) if self._phrases else None
        self._section_names = {n for n, (kind, _) in guide.names().items() if kind == "section"}
        # a question that names a section ("the side effects of gilteritinib") is about that section
        named = {n: sid for n, (kind, sid) in guide.names().items()
                 if kind == "section" and set(self._tokens(n)) - self._generic}
        self._named = named
        self._named_re = re.compile(
            r"\b(" + "|".join(re.escape(n) for n in sorted(named, key=len, reverse=True)) + r")\b") if named else None
        # terms for definitions
        self._terms: dict[str, str] = {}
        for e in guide.glossary:
            for name in (e.term, *e.aliases):
                self._terms.setdefault(normalize(name), e.term)
        # the lexicon's hard words (drug and brand names), for spelling repair: everyday words never are
        self._rare = sorted({w for e in guide.lexicon for w in normalize(e.word).split() if len(w) >= 5})
        self._rare_keys = {_sound_key(w): w for w in self._rare if len(_sound_key(w)) >= 5}

    # ------------------------------------------------------------------ text
    def _stem(self, word: str) -> str:
        s = self._stems.get(word)
        if s is None:
            s = self._stems[word] = self._stemmer.stemWord(word)
        return s

    def _tokens(self, text: str, stem: bool = True) -> list[str]:
        words = [w for w in normalize(text).split() if w not in _STOP and len(w) > 1]
        return [self._stem(w) for w in words] if stem else words

    def _canonical(self, text: str) -> str:
        """The question in the pack's spelling: spelled-out letters joined, number words after letter names."""
        words = normalize(text).split()
        out: list[str] = []
        i = 0
        while i < len(words):
            j = i
            while j < len(words) and len(words[j]) == 1 and words[j].isalpha():
                j += 1
            if j - i >= 3 or (j - i == 2 and not {"a", "i"} & set(words[i:j])):  # "f l t" -> "flt", not "i d"
                out.append("".join(words[i:j]))
                i = j
                continue
            out.append(words[i])
            i += 1
        # "flt 3" / "flt three" -> "flt3" when the pack writes it so
        joined: list[str] = []
        for w in out:
            if joined and (w in _NUMBERS or w.isdigit()) and joined[-1].isalpha():
                cand = joined[-1] + (_NUMBERS.get(w, w))
                if cand in self._rare or self._stem(cand) in self._vocab:
                    joined[-1] = cand
                    continue
            joined.append(w)
        return " ".join(joined)

    def _expand(self, text: str) -> tuple[str, dict[str, set[str]]]:
        """The question plus the pack's words for what it says, and which of its words stand for which.

        Phrases: the lexicon's respellings, glossary aliases, the pack's synonyms. Repairs: a word
        the pack does not use that nearly spells one of the lexicon's hard words ("giltertinib"), or
        one to three words that sound like one ("guilt tary tenon", by :func:`_sound_key`).
        """
        from rapidfuzz import fuzz, process

        extra: list[str] = []
        stands_for: dict[str, set[str]] = {}

        def add(said: str, word: str) -> None:
            extra.append(word)
            for w in self._tokens(said):
                stands_for.setdefault(w, set()).update(self._tokens(word))

        if self._phrase_re is not None:
            for m in self._phrase_re.finditer(text):
                add(m.group(1), self._phrases[m.group(1)])
        words = text.split()
        known = [w in _STOP or self._stem(w) in self._vocab for w in words]
        for i, w in enumerate(words):
            if len(w) >= 5 and not known[i]:
                best = process.extractOne(w, self._rare, scorer=fuzz.ratio, score_cutoff=80)
                if best:
                    add(w, best[0])
                    known[i] = True
        for n in (3, 2, 1):
            for i in range(len(words) - n + 1):
                if all(known[i:i + n]) or (n > 1 and (words[i] in _STOP and words[i + n - 1] in _STOP)):
                    continue
                said = " ".join(words[i:i + n])
                key = _sound_key(said)
                if len(key) < 5:
                    continue
                best = process.extractOne(key, list(self._rare_keys), scorer=fuzz.ratio, score_cutoff=85)
                if best:
                    add(said, self._rare_keys[best[0]])
                    known[i:i + n] = [True] * n
        return " ".join([text, *extra]), stands_for

    # ------------------------------------------------------------------ public
    def ask(self, question: str, section: str | None = None) -> Answer:
        """Answer one question; ``section``: the section the listener is in (what "it" means)."""
        if not isinstance(question, str) or not normalize(question):
            raise VoiceGuideError("a question is empty: ask something, for example 'what is remission'")
        t = self._canonical(question)
        if section is not None and section not in self.guide:
            section = None
        if _ADVICE_ACT.search(t):
            return self._reply(question, "advice")
        if _SUPPORT.search(t):
            return self._reply(question, "support")
        if _ADVICE_FATE.search(t):
            return self._reply(question, "advice")
        term = self._definition(t)
        if term is not None:
            entry = self.guide.term(term)
            return Answer(question, "definition", None, entry.term, entry.definition)
        return self._retrieve(question, t, section)

    def _definition(self, t: str) -> str | None:
        if t in self._terms:
            return self._terms[t]
        for pattern in _DEFINE:
            m = pattern.match(t)
            if not m:
                continue
            x = re.sub(r"^(?:the|a|an) ", "", m.group(1).strip())
            if x not in self._terms and (x in self._section_names or "the " + x in self._section_names):
                return None  # "what is the idh1 drug" names a section: answer from it
            for cand in (x, re.sub(r" (?:%s)s?$" % "|".join(_HEADS), "", x)):
                if cand in self._terms:
                    return self._terms[cand]
                phr = self._phrases.get(cand)
                if phr and phr in self._terms:  # one respelling or alias of a term
                    return self._terms[phr]
            return None
        return None

    def _retrieve(self, question: str, t: str, context: str | None) -> Answer:
        import numpy as np

        expanded, stands_for = self._expand(t)
        q = self._tokens(expanded)
        # "I was just told it came back, what are my options": the question after the story counts twice
        m = _LAST_QUESTION.search(t)
        if m and m.start() > 0:
            q = q + self._tokens(self._expand(m.group(0))[0])
        own = set(q)
        words = set(t.split())
        follow_up = context is not None and (words & _PRONOUNS or not (own & self._topics))
        if follow_up:
            q = q + self.names[context][:3]
        if not q:
            return self._unknown(question, [])
        scores = np.asarray(self._bm25.get_scores(q), dtype=float)
        scores = scores + self.name_weight * np.asarray(self._names_bm25.get_scores(q), dtype=float)[self._unit_section]
        about = self._about(expanded)
        if follow_up and not about:
            about = {context}
        if about:  # the sections the question names (or the listener is in), and their children
            inside = {s.id for s in self.guide.walk() if about & {p.id for p in self.guide.path_to(s.id)}}
            scores = scores * np.array([self.named_boost if u.section in inside else 1.0 for u in self.units])
        scores = scores * np.array([0.9 if u.summary else 1.0 for u in self.units])
        # of the best-ranked paragraphs, the one that best holds the question's words (score x share)
        best, best_value = None, 0.0
        for i in np.argsort(-scores)[:8]:
            if scores[i] <= 0:
                break
            share = self._covered(t, stands_for, int(i), follow_up)
            if share and scores[i] * share > best_value:
                best, best_value = int(i), scores[i] * share
        if best is None:
            return self._unknown(question, q)
        unit = self.units[best]
        return Answer(question, "answer", unit.section, None, self._excerpt(unit.text, set(q)))

    def _about(self, text: str) -> set[str]:
        """The most specific sections the text names by title, id or alias (a parent named with its child
        counts as the child)."""
        if self._named_re is None:
            return set()
        ids = {self._named[m.group(1)] for m in self._named_re.finditer(text)}
        return {i for i in ids if not any(o != i and i in (p.id for p in self.guide.path_to(o)) for o in ids)}

    def _covered(self, t: str, stands_for: dict[str, set[str]], best: int, follow_up: bool) -> float:
        """The share (by weight) of the question's words that paragraph ``best`` holds, or 0 if it is not
        more than :attr:`min_coverage` or they name nothing the pack is about (no name, term or hard
        word of the pack, and fewer than two words that are not everyday words)."""
        have = self._unit_tokens[best]
        own = self._tokens(t)
        if not own:
            return 1.0 if follow_up else 0.0
        # a word counts as found when it, or the pack word it stands for, is in the paragraph
        total = found = 0.0
        topic = follow_up  # a word found that names what the pack is about (a name, term, hard word, synonym)
        specific: set[str] = set()  # words found that are not everyday words
        for w in dict.fromkeys(own):
            hit = ({w} | stands_for.get(w, set())) & have
            weight = self.generic_weight if w in self._generic else (1.0 if hit or w in self._vocab else self.oov_weight)
            total += weight
            # an everyday word found only in the paragraph's text is no evidence ("how long", "take")
            if hit and (w not in self._generic or hit - {w} or w in self.names[self.units[best].section]):
                found += weight
                specific |= hit - self._generic
                topic = topic or bool(hit & self._topics)
        ok = (topic or len(specific) >= 2) and total > 0 and found / total > self.min_coverage
        return found / total if ok else 0.0

    def _excerpt(self, text: str, q: set[str]) -> str:
        """At most three whole sentences of ``text``, verbatim: the paragraph, or its best window."""
        sents = sentences(text)
        if len(sents) > 1 and re.match(r"^This (?:part|section) ", sents[0]):
            sents = sents[1:]
        if len(sents) <= 3:
            return " ".join(sents)
        hits = [len(set(self._tokens(s)) & q) for s in sents]
        start = max(range(len(sents) - 2), key=lambda i: (sum(hits[i:i + 3]), -i))
        return " ".join(sents[start:start + 3])

    def _reply(self, question: str, kind: str) -> Answer:
        replies = self.guide.replies
        text = getattr(replies, kind) if replies else self.guide.disclaimer
        return Answer(question, kind, None, None, text)

    def _unknown(self, question: str, q: list[str]) -> Answer:
        """The pack's reply naming the nearest topics (or the main ones when nothing is near)."""
        titles: list[str] = []
        if q:
            scores = self._sections.get_scores(q)
            ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
            titles = [self.guide.section(self.section_ids[i]).title for i in ranked[:2] if scores[i] > 0]
        if not titles:
            titles = [s.title for s in self.guide.sections[:3]]
        topics = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
        replies = self.guide.replies
        if replies is None:
            return Answer(question, "unknown", None, None, f"This guide does not cover that. The nearest topics are {topics}.")
        return Answer(question, "unknown", None, None, replies.unknown.replace("{topics}", topics))


# ---------------------------------------------------------------------- CLI


def register(sub, formatter) -> None:
    p = sub.add_parser(
        "ask", help="answer questions from the guide's own words",
        description="Answer each question with the guide's own words: a passage of the guide, a glossary "
                    "definition, or the guide's reply for questions about your own treatment (ask your care "
                    "team), for worries, and for things the guide does not cover. Quote each question. With "
                    "--json, one JSON object per line: question, kind, section, term, answer.",
        formatter_class=formatter)
    p.add_argument("question", nargs="+", metavar="QUESTION", help="a question; quote questions with spaces")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--section", metavar="ID", help="the section you are in, so 'it' means its subject")
    p.add_argument("--content", metavar="PATH", help="content pack folder (default: the shipped guide)")
    p.set_defaults(func=cmd_ask)


def cmd_ask(args) -> int:
    guide = load_guide(args.content)
    if args.section is not None and args.section not in guide:
        raise VoiceGuideError(f"unknown section '{args.section}' (see: voiceguide outline)")
    for q in args.question:
        if not normalize(q):
            raise VoiceGuideError("a question is empty: ask something, for example 'what is remission'")
    asker = Asker(guide)
    for q in args.question:
        a = asker.ask(q, args.section)
        if args.json:
            print(json.dumps(a.to_json(), ensure_ascii=False))
        else:
            where = ""
            if a.kind == "answer":
                where = f" (from {guide.section(a.section).title})"
            elif a.kind == "definition":
                where = f" ({a.term})"
            print(f"{q}: {a.kind}{where}: {a.answer}")
    sys.stdout.flush()
    return 0
