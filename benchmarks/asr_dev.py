"""Development corpus and evaluator for speech-recognition experiments.

Tune recognisers on this corpus, never on the held-out benchmark (benchmarks/asr_bench.py): its
phrasings, voices, rates and babble sentences are all different from the benchmark's and from the
phrases in tests/test_asr.py (checked when the corpus is built). 33 command phrasings and 12
everyday off-topic phrases, spoken by espeak-ng (en-us at 160 wpm, en-us+m3 at 185) and Piper (150
and 200 wpm), each clean, in white noise at 10 dB SNR and in babble at 10 dB SNR. The truth labels
come from the intent parser. The mixed 16 kHz audio is cached under benchmarks/corpus/dev/ (git
ignores it) with an index.json, so later runs do not render again; delete the folder to rebuild.

From another script::

    from asr_dev import evaluate, load_corpus   # with benchmarks/ on sys.path
    result = evaluate(my_recognizer.recognize, load_corpus(), IntentParser(load_guide()))
    for r in result["errors"]: ...

Usage: python benchmarks/asr_dev.py [--engine hybrid|pocketsphinx|whisper] [--limit N]
                                    [--conditions clean,white10,babble10] [--short-words dev|held]

``--short-words dev|held`` evaluates the short-word sets instead (:data:`SHORT_SETS`: bare one- and two-word
commands and short off-topic words, as the microphone hands them over), with a per-word table.
Prints the table and the wrong answers and false accepts; writes nothing to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import asr_bench  # noqa: E402
from asr_bench import mix  # noqa: E402

from voiceguide import audio as A  # noqa: E402
from voiceguide.content import load_guide  # noqa: E402
from voiceguide.intents import INTENTS, IntentParser  # noqa: E402
from voiceguide.protocols import Audio, Heard  # noqa: E402

CORPUS = HERE / "corpus" / "dev"
SEED = 20261126

COMMANDS = [
    "tell me about the transplant", "go to chemotherapy", "what is Xospata", "tell me about ivosidenib",
    "open enasidenib", "what is Tibsovo", "tell me about gemtuzumab ozogamicin", "go to FLAG",
    "high dose cytarabine", "tell me about mitoxantrone", "repeat induction",
    "what does induction mean", "what is the meaning of remission", "define monoclonal antibody",
    "option two", "number four", "can you repeat that", "more", "skip this part", "move on", "previous section",
    "take me back", "back to the main menu", "just a moment", "please continue", "speak faster", "a bit slower",
    "where am I now", "what can I say", "yes", "no thanks", "bye bye", "turn it up a bit",
]
OFF_TOPIC = [
    "turn on the oven", "what time is it", "call my daughter back", "can you pass the salt",
    "the dog needs to go out", "is the kettle on", "open the window please", "where are my keys",
    "next week is my birthday", "we need more milk", "stop at the shop on the way home", "I'll be back in a minute",
]
BABBLE_TEXT = ["The bus was late again this afternoon.", "She painted the fence a pale shade of green.",
               "Our cousins are driving up from the coast in May.", "He left his umbrella on the train."]
VOICES = [("espeak en-us 160", "espeak", "en-us", 160), ("espeak en-us+m3 185", "espeak", "en-us+m3", 185),
          ("piper 150", "piper", None, 150), ("piper 200", "piper", None, 200)]
CONDITIONS = [("clean", None, None), ("white10", "white", 10), ("babble10", "babble", 10)]


@dataclass(frozen=True)
class Item:
    audio: Audio
    text: str
    intent: str
    target: str | None
    voice: str
    condition: str

    @property
    def group(self) -> str:
        """``espeak`` or ``piper``."""
        return self.voice.split()[0]


def _meaning(parser: IntentParser, text: str) -> tuple[str, str | None]:
    if not text:
        return "none", None
    got = parser.parse(text)
    return got.intent, got.target


def _check_fresh() -> None:
    """No phrasing may be one of the benchmark's or a string in tests/test_asr.py."""
    tree = ast.parse((HERE.parent / "tests" / "test_asr.py").read_text(encoding="utf-8"))
    used = {n.value.lower() for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    used |= {t.lower() for t, _, _ in asr_bench.COMMANDS} | {t.lower() for t in asr_bench.OFF_TOPIC}
    # a command's own one-word name ("more", "yes") is no phrasing: tests may say it too
    clash = [t for t in COMMANDS + OFF_TOPIC if t.lower() in used and t.lower() not in INTENTS]
    assert not clash, f"not fresh (in asr_bench.py or tests/test_asr.py): {clash}"
    assert not set(BABBLE_TEXT) & set(asr_bench.BABBLE_TEXT)


def _spec() -> dict:
    return {"seed": SEED, "commands": COMMANDS, "off_topic": OFF_TOPIC, "babble": BABBLE_TEXT,
            "voices": [list(v) for v in VOICES], "conditions": [list(c) for c in CONDITIONS]}


def build_corpus() -> None:
    """Render, mix and write every utterance, then the index (last, so a broken build is redone)."""
    from voiceguide.tts import get_engine, render

    _check_fresh()
    guide = load_guide()
    parser = IntentParser(guide)
    truth = {t: _meaning(parser, t) for t in COMMANDS + OFF_TOPIC}
    bad = [t for t in COMMANDS if truth[t][0] == "none"] + [t for t in OFF_TOPIC if truth[t][0] != "none"]
    assert not bad, f"truth labels would be wrong for: {bad}"
    engines = {"espeak": get_engine("espeak"), "piper": get_engine("piper")}
    rng = np.random.default_rng(SEED)
    babble = sum(np.resize(np.frombuffer(A.resample(render(t, engine=engines["piper" if i % 2 else "espeak"]), 16000)
                                         .pcm, "<i2").astype(np.float64), 16000 * 6) for i, t in enumerate(BABBLE_TEXT))
    CORPUS.mkdir(parents=True, exist_ok=True)
    rows = []
    for vname, ename, voice, rate in VOICES:
        print(f"rendering {vname}", file=sys.stderr, flush=True)
        for n, text in enumerate(COMMANDS + OFF_TOPIC):
            lexicon = guide.lexicon if text in COMMANDS else ()
            clean = A.resample(render(text, engine=engines[ename], voice=voice, rate=rate, lexicon=lexicon), 16000)
            for cname, kind, snr in CONDITIONS:
                audio = clean if kind is None else mix(clean, rng.normal(0, 1, 16000 * 8) if kind == "white" else babble, snr)
                name = f"{vname.replace(' ', '_')}-{cname}-{n:02d}.wav"
                A.write_wav(CORPUS / name, audio)
                rows.append({"text": text, "intent": truth[text][0], "target": truth[text][1], "voice": vname,
                             "condition": cname, "file": name})
    (CORPUS / "index.json").write_text(json.dumps({"spec": _spec(), "items": rows}, indent=1), encoding="utf-8")


def load_corpus() -> list[Item]:
    """Every utterance of the development corpus, built first if it is missing or out of date."""
    index = CORPUS / "index.json"
    data = json.loads(index.read_text(encoding="utf-8")) if index.is_file() else None
    if data is None or data["spec"] != _spec():
        build_corpus()
        data = json.loads(index.read_text(encoding="utf-8"))
    return [Item(A.read_wav(CORPUS / r["file"]), r["text"], r["intent"], r["target"], r["voice"], r["condition"])
            for r in data["items"]]


def _row(results: list[dict]) -> dict:
    commands = [r for r in results if r["truth"][0] != "none"]
    ms = [r["ms"] for r in results]
    return {"commands": len(commands), "right": sum(r["outcome"] == "right" for r in results),
            "wrong": sum(r["outcome"] == "wrong" for r in results), "off_topic": len(results) - len(commands),
            "false_accepts": sum(r["outcome"] == "false accept" for r in results),
            "median_ms": statistics.median(ms) if ms else 0.0, "mean_ms": statistics.fmean(ms) if ms else 0.0}


def _share(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "-"


def evaluate(recognize, items: list[Item], parser: IntentParser) -> dict:
    """Run ``recognize`` (Audio -> Heard) on every item; print a table by condition and voice group.

    Returns ``{"rows": [...], "overall": {...}, "results": [...], "errors": [...]}``: one row per
    (condition, group) and overall, with commands/right/wrong/off_topic/false_accepts/median_ms/mean_ms;
    one result per item (text, voice, condition, truth, heard, got, ms, outcome: right, missed, wrong,
    rejected or false accept); errors are the results that are wrong answers or false accepts.
    """
    results = []
    for item in items:
        t0 = time.perf_counter()
        heard: Heard = recognize(item.audio)
        ms = 1000 * (time.perf_counter() - t0)
        truth = (item.intent, item.target)
        got = _meaning(parser, heard.text) if getattr(heard, "kind", "command") == "command" else ("none", None)
        if truth[0] == "none":
            outcome = "rejected" if got[0] == "none" else "false accept"
        else:
            outcome = "right" if got == truth else "missed" if got[0] == "none" else "wrong"
        results.append({"text": item.text, "voice": item.voice, "group": item.group, "condition": item.condition,
                        "truth": truth, "heard": heard.text, "got": got, "ms": ms, "outcome": outcome})
    order = [c for c, _, _ in CONDITIONS]
    keys = sorted({(r["condition"], r["group"]) for r in results}, key=lambda k: (order.index(k[0]), k[1]))
    rows = [{"condition": c, "group": g, **_row([r for r in results if (r["condition"], r["group"]) == (c, g)])}
            for c, g in keys]
    overall = _row(results)
    print("| condition | voices | commands right | false accepts | wrong answers | median ms | mean ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['condition']} | {r['group']} | {_share(r['right'], r['commands'])} | "
              f"{_share(r['false_accepts'], r['off_topic'])} | {r['wrong']} | {r['median_ms']:.0f} | {r['mean_ms']:.0f} |")
    print(f"\noverall ({len(results)} utterances): commands right {_share(overall['right'], overall['commands'])}, "
          f"false accepts {_share(overall['false_accepts'], overall['off_topic'])}, wrong answers {overall['wrong']}; "
          f"decode {overall['median_ms']:.0f} ms median, {overall['mean_ms']:.0f} ms mean")
    errors = [r for r in results if r["outcome"] in ("wrong", "false accept")]
    return {"rows": rows, "overall": overall, "results": results, "errors": errors}


SHORT_COMMANDS = ("skip stop next faster slower louder softer pause repeat back help menu yes no quit continue more "
                  "previous resume one two three four five six seven eight nine").split() + [
    "skip it", "go back", "main menu", "next section", "slow down", "speed up", "stop talking", "go on", "repeat that",
    "too fast"]
SHORT_OFF = "hello thanks coffee sorry maybe doctor window kettle ship shop bishop tennis lover escape sip dinner".split()
"""Short everyday words said alone (the risk of reading one-word audio as a command). "sorry" means repeat."""
SHORT_SETS = {
    "dev": {"voices": [("espeak", "en-us", 150, None), ("espeak", "en-us+f3", 180, None),
                       ("piper", None, 160, 0.0), ("piper", None, 190, 0.0)],
            "babble": ["The garden hose has a leak near the tap.", "Two ducks walked slowly across the road.",
                       "My brother fixed the old radio last week.", "We ate soup and bread by the fire."],
            "seed": 31},
    "held": {"voices": [("espeak", "en-gb", 170, None), ("espeak", "en-us+m1", 205, None),
                        ("piper", None, 140, 0.3), ("piper", None, 215, 0.3)],
             "babble": ["A small boat drifted past the harbour wall.", "They planted tulips along the fence in spring.",
                        "The library closes early on Saturdays.", "Her new shoes squeaked on the wet floor."],
             "seed": 47},
}
"""The short-word sets: one- and two-word commands and short off-topic words, each voice/rate clean, white 10 dB and
babble 10 dB. ``dev`` is for looking at; ``held`` (other voices and rates, Piper with sampling noise) is scored only
to check a finished change."""


def load_short(name: str) -> list[Item]:
    """A short-word set, rendered (once, cached under benchmarks/corpus/short-NAME/) as the microphone hands a phrase
    over: at 0.3 of full volume, cut to its loud part plus the microphone's tail, after 0.15 s of silence."""
    folder = CORPUS.parent / f"short-{name}"
    spec = {**SHORT_SETS[name], "commands": SHORT_COMMANDS, "off": SHORT_OFF}
    index = folder / "index.json"
    data = json.loads(index.read_text(encoding="utf-8")) if index.is_file() else None
    if data is None or data["spec"] != json.loads(json.dumps(spec)):
        data = {"spec": spec, "items": _render_short(name, folder)}
        index.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return [Item(A.read_wav(folder / r["file"]), r["text"], r["intent"], r["target"], r["voice"], r["condition"])
            for r in data["items"]]


def _render_short(name: str, folder: Path) -> list[dict]:
    from voiceguide.mic import FRAME_S, TAIL
    from voiceguide.rig import RATE, frame_rms, samples
    from voiceguide.tts import PiperEngine, get_engine, render, scale

    guide = load_guide()
    parser = IntentParser(guide)
    spec = SHORT_SETS[name]
    folder.mkdir(parents=True, exist_ok=True)
    espeak, pipers = get_engine("espeak"), {}
    babble = sum(np.resize(np.frombuffer(A.resample(render(t, engine=espeak if i % 2 == 0 else PiperEngine(variation=0.0)),
                                                    16000).pcm, "<i2").astype(np.float64), 16000 * 6)
                 for i, t in enumerate(spec["babble"]))
    rows = []
    for words, seed in ((SHORT_COMMANDS, spec["seed"]), (SHORT_OFF, spec["seed"] + 1000)):
        rng = np.random.default_rng(seed)
        for ename, voice, rate, variation in spec["voices"]:
            engine = pipers.setdefault(variation, PiperEngine(variation=variation)) if ename == "piper" else espeak
            vname = f"{ename} {voice or ''} {rate}".replace("  ", " ")
            for w in words:
                a = A.resample(scale(render(w, engine=engine, voice=voice, rate=rate,
                                            lexicon=guide.lexicon if w in SHORT_COMMANDS else ()), 0.3), 16000)
                loud = np.flatnonzero(frame_rms(a) > 100)
                lo, hi = int(loud[0] * FRAME_S * RATE), int((loud[-1] + 1 + TAIL) * FRAME_S * RATE)
                y = np.concatenate([np.zeros(int(0.15 * RATE)), samples(a)[lo:hi]])
                clean = Audio(np.clip(y, -32768, 32767).astype("<i2").tobytes(), RATE)
                truth = _meaning(parser, w)
                for cname, kind, snr in CONDITIONS:
                    audio = clean if kind is None else mix(clean, rng.normal(0, 1, 16000 * 8) if kind == "white" else babble, snr)
                    f = f"{vname.replace(' ', '_')}-{cname}-{w.replace(' ', '_')}.wav"
                    A.write_wav(folder / f, audio)
                    rows.append({"text": w, "intent": truth[0], "target": truth[1], "voice": vname, "condition": cname,
                                 "file": f})
    return rows


def short_word_table(results: list[dict]) -> None:
    """Per word: right, wrong and rejected (commands), or read as a command (off-topic words)."""
    print("\n| word | right | wrong | rejected | off-topic read as a command |\n|---|---|---|---|---|")
    for w in dict.fromkeys(r["text"] for r in results):
        rs = [r for r in results if r["text"] == w]
        n = {k: sum(r["outcome"] == k for r in rs) for k in ("right", "wrong", "missed", "false accept")}
        print(f"| {w} | {n['right']} | {n['wrong']} | {n['missed']} | {n['false accept']} |")


def main() -> None:
    from voiceguide.asr import get_recognizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["hybrid", "pocketsphinx", "whisper"], default="hybrid")
    ap.add_argument("--limit", type=int, metavar="N", help="evaluate N utterances drawn at random (seeded)")
    ap.add_argument("--conditions", default=",".join(c for c, _, _ in CONDITIONS),
                    help="comma-separated, from: " + ", ".join(c for c, _, _ in CONDITIONS))
    ap.add_argument("--short-words", choices=list(SHORT_SETS), metavar="SET",
                    help="the short-word set instead: dev (to look at) or held (held out)")
    args = ap.parse_args()
    wanted = args.conditions.split(",")
    unknown = set(wanted) - {c for c, _, _ in CONDITIONS}
    if unknown:
        ap.error(f"unknown condition(s): {', '.join(sorted(unknown))}")
    items = [it for it in (load_short(args.short_words) if args.short_words else load_corpus()) if it.condition in wanted]
    if args.limit is not None and args.limit < len(items):
        keep = set(random.Random(0).sample(range(len(items)), args.limit))
        items = [it for i, it in enumerate(items) if i in keep]
    guide = load_guide()
    recognizer = get_recognizer(guide, args.engine)
    what = f"the short-word set {args.short_words!r}" if args.short_words else f"the development corpus ({CORPUS})"
    print(f"{args.engine} on {len(items)} utterances of {what}\n", flush=True)
    result = evaluate(recognizer.recognize, items, IntentParser(guide))
    if args.short_words:
        short_word_table(result["results"])
    for kind, title in (("wrong", "wrong answers"), ("false accept", "false accepts")):
        found = [r for r in result["errors"] if r["outcome"] == kind]
        print(f"\n{title} ({len(found)}):")
        for r in found:
            got = " ".join(str(x) for x in r["got"] if x)
            print(f"- {r['voice']}, {r['condition']}: {r['text']!r} heard as {r['heard']!r} -> {got}")


if __name__ == "__main__":
    main()
