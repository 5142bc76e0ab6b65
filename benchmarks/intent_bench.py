"""Intent parsing on phrasings the tests have never seen, written the way other people talk; parse time."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from voiceguide.content import load_guide  # noqa: E402
from voiceguide.intents import IntentParser  # noqa: E402

HELD_OUT = [
    ("could you tell me about the targeted drugs", "open", "targeted-therapy"),
    ("i'd like to hear about transplants please", "open", "transplant"),
    ("what's Tibsovo", "open", "ivosidenib"), ("Xospata please", "open", "gilteritinib"),
    ("go to chemo", "open", "chemotherapy"), ("the IDH2 drug please", "open", "enasidenib"),
    ("tell me about gemtuzumab", "open", "gemtuzumab-ozogamicin"), ("what is FLAG", "open", "flag"),
    ("tell me about the flt3 drug", "open", "gilteritinib"), ("high dose ara c please", "open", "high-dose-cytarabine"),
    ("take me to the overview", "open", "overview"), ("cytoxan please", "open", "etoposide-cyclophosphamide"),
    ("how about mylotarg", "open", "gemtuzumab-ozogamicin"), ("let's talk about the transplant", "open", "transplant"),
    ("enasidinib", "open", "enasidenib"), ("giltertinib", "open", "gilteritinib"), ("tibsova", "open", "ivosidenib"),
    ("what do you mean by remission", "define", "remission"), ("what does autologous mean", "define", "autologous"),
    ("define mutation", "define", "mutation"), ("what is a stem cell", "define", "stem cell"),
    ("what's refractory", "define", "refractory"), ("meaning of differentiation", "define", "differentiation"),
    ("once more please", "repeat", None), ("sorry, what was that", "repeat", None), ("could you say that again", "repeat", None),
    ("go back please", "back", None), ("back up", "back", None), ("next topic", "next", None), ("what's next", "next", None),
    ("go to the previous one", "previous", None), ("tell me everything", "more", None), ("keep going please", "more", None),
    ("skip ahead", "skip", None), ("take me home", "menu", None), ("back to the start", "menu", None),
    ("what are my options", "help", None), ("i need help", "help", None), ("that's enough for today", "stop", None),
    ("bye bye", "stop", None), ("wait a moment", "pause", None), ("give me a minute", "pause", None),
    ("please continue", "resume", None), ("ok carry on", "resume", None), ("a bit faster", "faster", None),
    ("a bit slower please", "slower", None), ("which section am i in", "where", None), ("yes please", "yes", None),
    ("no thank you", "no", None), ("option three", "number", "3"), ("the fourth one", "number", "4"),
    ("number five please", "number", "5"),
    ("what's the forecast", "none", None), ("book a table for two", "none", None), ("how old is the queen", "none", None),
    ("my back hurts", "none", None), ("find my phone", "none", None), ("who is the president", "none", None),
    ("play the news", "none", None), ("is it going to rain", "none", None), ("what's for dinner", "none", None),
    ("tell me about football", "none", None), ("open the window", "none", None), ("what is love", "none", None),
]

#: A second held-out set, written later by a different hand (a caregiver talking for a patient,
#: chattier and less tidy), measured BEFORE the parser was changed after the first set's misses.
HELD_OUT_2 = [
    ("we'd like to know about the stem cell transplant", "open", "transplant"),
    ("can we hear the part on chemotherapy", "open", "chemotherapy"), ("Idhifa", "open", "enasidenib"),
    ("tell us about tibsovo", "open", "ivosidenib"), ("the drug for FLT3", "open", "gilteritinib"),
    ("what about the IDH1 drug", "open", "ivosidenib"), ("MEC chemo", "open", "mec"),
    ("go to the closing part", "open", "closing"), ("jump to allogeneic transplant", "open", "allogeneic"),
    ("gemtuzumab ozogamycin", "open", "gemtuzumab-ozogamicin"), ("xospada", "open", "gilteritinib"),
    ("cytarabine high dose", "open", "high-dose-cytarabine"), ("the overview please", "open", "overview"),
    ("fludarabine combination", "open", "flag"), ("read the targeted therapy section", "open", "targeted-therapy"),
    ("what does relapse mean", "define", "relapsed"), ("what is meant by refractory", "define", "refractory"),
    ("what's an antibody", "define", "monoclonal antibody"), ("explain the word mutation", "define", "mutation"),
    ("what does bone marrow mean", "define", "bone marrow"), ("what is remission exactly", "define", "remission"),
    ("can you say it one more time", "repeat", None), ("huh", "repeat", None), ("i missed that", "repeat", None),
    ("go back one", "back", None), ("up a level", "back", None), ("on to the next one", "next", None),
    ("next please", "next", None), ("go to the one before", "previous", None), ("previous topic please", "previous", None),
    ("read me more", "more", None), ("and then what", "more", None), ("skip this bit", "skip", None),
    ("jump ahead", "skip", None), ("back to the main menu", "menu", None), ("list the topics", "menu", None),
    ("how do i use this", "help", None), ("what can i ask", "help", None), ("we're done for now", "stop", None),
    ("turn it off", "stop", None), ("stop talking for a moment", "pause", None), ("hang on a second", "pause", None),
    ("okay go on reading", "resume", None), ("you can carry on now", "resume", None), ("speak a little faster", "faster", None),
    ("can you slow down please", "slower", None), ("where are we now", "where", None), ("what part am i in", "where", None),
    ("yes that's right", "yes", None), ("sure thing", "yes", None), ("no not yet", "no", None),
    ("number one", "number", "1"), ("two please", "number", "2"), ("the last one", "previous", None),
    ("choice three", "number", "3"),
    ("what's the score", "none", None), ("turn up the heating", "none", None), ("i'm hungry", "none", None),
    ("when is my appointment", "none", None), ("call the nurse", "none", None), ("what day is it today", "none", None),
    ("tell me about the moon landing", "none", None), ("play something relaxing", "none", None),
    ("the dog needs a walk", "none", None), ("how do you spell necessary", "none", None),
    ("should i stop my chemo", "none", None), ("is xospata right for me", "none", None),
]

#: A third set, written at the same time as the second but kept sealed until the parser changes made
#: after the second set's misses were done: so it is a clean held-out measure of those changes.
#: Style: terse, transcribed speech (no punctuation), some hesitation.
HELD_OUT_3 = [
    ("um the transplant one", "open", "transplant"), ("tell me the chemo options", "open", "chemotherapy"),
    ("what is gilteritinib", "open", "gilteritinib"), ("info about mylotarg", "open", "gemtuzumab-ozogamicin"),
    ("i want the part about targeted drugs", "open", "targeted-therapy"), ("ivosidenib tibsovo", "open", "ivosidenib"),
    ("the donor transplant", "open", "allogeneic"), ("go to overview", "open", "overview"),
    ("what does acute myeloid leukemia mean", "define", "acute myeloid leukemia"),
    ("what is relapsed", "define", "relapsed"), ("define the word remission", "define", "remission"),
    ("what was that again", "repeat", None), ("repeat the last bit", "repeat", None), ("say it again please", "repeat", None),
    ("back one", "back", None), ("go back up", "back", None), ("next section please", "next", None),
    ("move on to the next", "next", None), ("previous please", "previous", None), ("go back to the previous section", "previous", None),
    ("more detail", "more", None), ("keep reading please", "resume", None), ("skip it", "skip", None),
    ("skip to the next part", "skip", None), ("menu please", "menu", None), ("take me to the main menu", "menu", None),
    ("i don't know what to say", "help", None), ("help what do i say", "help", None), ("ok bye", "stop", None),
    ("quit now", "stop", None), ("wait wait", "pause", None), ("pause it", "pause", None), ("resume please", "resume", None),
    ("faster please", "faster", None), ("slow down a bit", "slower", None), ("where am i now", "where", None),
    ("yes i do", "yes", None), ("no i don't", "no", None), ("option two", "number", "2"), ("the third one", "number", "3"),
    ("what's on the radio", "none", None), ("close the curtains", "none", None), ("how much is a stamp", "none", None),
    ("my grandson is coming today", "none", None), ("tell me about cats", "none", None), ("next bus to town", "none", None),
    ("go to sleep", "none", None), ("what does the fox say", "none", None),
]

#: The same idea on a different pack (tests/data/mini, an inhaler guide): nothing is hard-coded per guide.
MINI_HELD_OUT = [
    ("tell me about ventolin", "open", "albuterol"), ("the blue inhaler", "open", "albuterol"),
    ("pulmicort please", "open", "budesonide"), ("what's a spacer", "define", "spacer"),
    ("kinds of inhaler", "open", "inhalers"), ("holding chamber", "open", "spacers"),
    ("what does bronchodilator mean", "define", "bronchodilator"), ("albuterol", "open", "albuterol"),
    ("budesonid", "open", "budesonide"), ("getting started", "open", "basics"),
    ("what does dose mean", "define", "dose"), ("the steroid inhaler", "open", "budesonide"),
    ("tell me about xospata", "none", None), ("what's the weather", "none", None), ("wrapping up", "open", "wrap-up"),
]

MINI_PATH = Path(__file__).resolve().parent.parent / "tests" / "data" / "mini"


def score(parser: IntentParser, table: list) -> tuple[float, int, int, list[str]]:
    """Accuracy, off-topic count, off-topic wrongly given an intent, and the misses."""
    wrong, off_wrong = [], 0
    for text, intent, target in table:
        got = parser.parse(text)
        if (got.intent, got.target) != (intent, target):
            wrong.append(f"{text!r} -> {got.intent} {got.target or ''} (expected {intent} {target or ''})")
            off_wrong += intent == "none"
    off = sum(1 for row in table if row[1] == "none")
    return 1 - len(wrong) / len(table), off, off_wrong, wrong


HISTORY = """\
How these sets were used (so the numbers can be read honestly):

- Set 1 was written first; its five misses (92.2% on 2026-11-25) were then studied, so set 1 is no longer unseen.
- Set 2 was written by a different hand before any change: **52.2%** (0 of 12 off-topic given an intent).
  Command phrases were matched only whole, so chattier speech ("hang on a second", "go back one") fell to `none`.
  The parser then learnt to find names and commands inside longer phrases, in any order, when every other
  word is filler; set 2's misses were studied too.
- Set 3 was written with set 2 and kept sealed until those changes were done: **93.8%** on first opening
  (0 of 8 off-topic given an intent). One of its misses ("take me to the main menu") was then fixed in general
  (carrier words before commands), so its current figure below is no longer unseen.
- The inhaler set runs on a different content pack (tests/data/mini): nothing is hard-coded per guide.
"""


def main() -> None:
    aml, mini = IntentParser(load_guide()), IntentParser(load_guide(MINI_PATH))
    sets = [("1", aml, HELD_OUT), ("2", aml, HELD_OUT_2), ("3", aml, HELD_OUT_3), ("inhaler pack", mini, MINI_HELD_OUT)]
    everything = [text for _, _, table in sets[:3] for text, _, _ in table]
    rounds = 20
    t0 = time.perf_counter()
    for _ in range(rounds):
        for text in everything:
            aml.parse(text)
    ms = (time.perf_counter() - t0) * 1000 / (rounds * len(everything))
    rows, misses = [], []
    for name, parser, table in sets:
        acc, off, off_wrong, wrong = score(parser, table)
        rows.append(f"| {name} | {len(table)} | {acc:.1%} | {off_wrong} of {off} |")
        misses += [f"- set {name}: {w}" for w in wrong]
    body = (HISTORY + "\n| set | phrasings | accuracy now | off-topic given an intent |\n|---|---|---|---|\n"
            + "\n".join(rows) + f"\n\nParse time: {ms:.2f} ms per phrase (mean over {rounds} x {len(everything)} phrases).\n\n"
            + "Misses now:\n\n" + ("\n".join(misses) or "- none"))
    record("Intent parsing (held-out phrasings)", body)


if __name__ == "__main__":
    main()
