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


def main() -> None:
    parser = IntentParser(load_guide())
    wrong = []
    t0 = time.perf_counter()
    for _ in range(20):
        results = [(text, parser.parse(text)) for text, _, _ in HELD_OUT]
    ms = (time.perf_counter() - t0) * 1000 / (20 * len(HELD_OUT))
    for (text, intent, target), (_, got) in zip(HELD_OUT, results):
        if (got.intent, got.target) != (intent, target):
            wrong.append(f"{text!r} -> {got.intent} {got.target or ''} (expected {intent} {target or ''})")
    on = [h for h in HELD_OUT if h[1] != "none"]
    off = [h for h in HELD_OUT if h[1] == "none"]
    off_wrong = sum(1 for (t, i, _), (_, g) in zip(HELD_OUT, results) if i == "none" and g.intent != "none")
    body = (f"{len(HELD_OUT)} held-out phrasings ({len(on)} on-topic, {len(off)} off-topic), none of them in the tests.\n\n"
            f"| measure | value |\n|---|---|\n| accuracy, all | {1 - len(wrong) / len(HELD_OUT):.1%} |\n"
            f"| off-topic wrongly given an intent | {off_wrong} of {len(off)} |\n| parse time (mean) | {ms:.2f} ms |\n\n"
            "Misses:\n\n" + "\n".join(f"- {w}" for w in wrong))
    record("Intent parsing (held-out phrasings)", body)


if __name__ == "__main__":
    main()
