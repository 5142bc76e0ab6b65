"""Task success by voice: simulated listeners through the real dialog core, on real recognitions.

Issue 21's "act, confirm or disambiguate", measured. Each task is one phrasing of the development
corpus (benchmarks/asr_dev.py: 33 commands and 12 off-topic phrases), spoken by its two espeak-ng and
two Piper voices, clean, in white noise at 10 dB and in babble at 10 dB. The audio is rendered and mixed
the way asr_dev.py does it, and recognised by the real hybrid recogniser (voiceguide.asr). Its
N-best goes through ``session.to_event`` into the real ``Dialog``. The simulated listener answers
whatever the guide asks truthfully, with audio of "yes", "no", "neither", the number or the name,
in the same voice and noise; after a miss it says the number from the list the guide offers, or
says its command again (the same words at a rate 15 wpm faster, over different noise). Every saying of
the same words in one task is a new recording (15 wpm faster each time, other noise), answers included.

Reported per voice and condition:
- task success within two turns (the goal: the state and words a typed command gives);
- wrong actions: the guide acted, without asking, on a meaning the listener did not say;
- off-topic speech acted on; mean turns per command task;
- beside it, the first pass as it was before: the top reading acted on.

And the confirmation words alone: yes, no, the first, the second, neither, one to nine.

Every recognition is cached under /tmp/vg/dialog/ (audio and results, keyed by the recogniser's
source, its calibration, the command phrasings and the content's names), so a rerun only decodes
what changed. Usage::

    python benchmarks/task_success_bench.py [--warm] [--voices espeak,piper] [--conditions clean,white10,babble10]
                                            [--record]

``--warm`` only fills the cache (first passes and answer words). Needs espeak-ng, Piper and Whisper.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import asr_dev  # noqa: E402
from asr_bench import mix  # noqa: E402

from voiceguide import audio as A  # noqa: E402
from voiceguide.content import load_guide  # noqa: E402
from voiceguide.intents import COMMAND_PHRASES, IntentParser  # noqa: E402
from voiceguide.protocols import Heard as Raw  # noqa: E402

CACHE = Path("/tmp/vg/dialog")
VOICES = asr_dev.VOICES
"""The development corpus's voices: espeak-ng en-us at 160 wpm and en-us+m3 at 185, Piper at 150 and 200."""
CONDITIONS = asr_dev.CONDITIONS
ANSWER_WORDS = ["yes", "no", "the first", "the second", "neither"] + \
    ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
RESAY_FASTER = 15
"""A second saying: the same words this many words a minute faster, over other noise."""


def _hash(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p if isinstance(p, bytes) else repr(p).encode())
    return h.hexdigest()[:16]


class Recognitions:
    """Rendered, mixed and recognised utterances, each cached on disk."""

    def __init__(self, guide):
        self.guide = guide
        root = HERE.parent / "voiceguide"
        # every recogniser module (asr.py and any asr_*.py it is split into), the grammar and the calibration
        sources = [*sorted(root.glob("asr*.py")), root / "grammar.py", root / "asr_calibration.json"]
        self.version = _hash(*(p.read_bytes() for p in sources), COMMAND_PHRASES, sorted(guide.names().items()))
        self.audio_dir, self.heard_dir = CACHE / "audio", CACHE / "heard" / self.version
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.heard_dir.mkdir(parents=True, exist_ok=True)
        self._engines: dict = {}
        self._hybrid = None
        self._babble = None
        self.decoded = 0
        self.decode_s = 0.0

    def _engine(self, name: str):
        if name not in self._engines:
            from voiceguide.tts import get_engine

            self._engines[name] = get_engine(name)
        return self._engines[name]

    def babble(self) -> np.ndarray:
        path = CACHE / "babble.wav"
        if self._babble is None:
            if not path.is_file():
                from voiceguide.tts import render

                parts = [np.resize(A.samples(A.resample(render(t, engine=self._engine("piper" if i % 2 else "espeak")),
                                                        16000)).astype(np.float64), 16000 * 6)
                         for i, t in enumerate(asr_dev.BABBLE_TEXT)]
                A.write_wav(path, A.Audio(np.clip(sum(parts) / 2, -32768, 32767).astype("<i2").tobytes(), 16000))
            self._babble = A.samples(A.read_wav(path)).astype(np.float64)
        return self._babble

    def key(self, text: str, voice: str, condition: str, variant: int = 0) -> str:
        return _hash(text, voice, condition, variant, 1)

    def audio(self, text: str, voice: str, condition: str, variant: int = 0) -> A.Audio:
        """``text`` said by ``voice`` in ``condition``; ``variant`` 1 is a second saying (faster, other noise)."""
        key = self.key(text, voice, condition, variant)
        path = self.audio_dir / f"{key}.wav"
        if path.is_file():
            return A.read_wav(path)
        from voiceguide.tts import render

        _, engine, vid, rate = next(v for v in VOICES if v[0] == voice)
        lexicon = self.guide.lexicon if text not in asr_dev.OFF_TOPIC else ()
        clean = A.resample(render(text, engine=self._engine(engine), voice=vid, rate=rate + RESAY_FASTER * variant,
                                  lexicon=lexicon), 16000)
        kind, snr = next((k, s) for c, k, s in CONDITIONS if c == condition)
        if kind is None:
            out = clean
        else:
            rng = np.random.default_rng(int(key, 16) % 2 ** 32)
            noise = rng.normal(0, 1, 16000 * 8) if kind == "white" else np.roll(self.babble(), int(rng.integers(0, 16000 * 5)))
            out = mix(clean, noise, snr)
        A.write_wav(path, out)
        return out

    def heard(self, text: str, voice: str, condition: str, variant: int = 0, answers: tuple = ()) -> Raw:
        """What the hybrid recogniser makes of it (text, confidence, kind, N-best), from the cache if there;
        ``answers``: what the guide's open question expects (``Dialog.answers``), as the session hands them on."""
        key = self.key(text, voice, condition, variant) + (_hash(*answers)[:8] if answers else "")
        path = self.heard_dir / f"{key}.json"
        if path.is_file():
            d = json.loads(path.read_text(encoding="utf-8"))
        else:
            audio = self.audio(text, voice, condition, variant)
            if self._hybrid is None:
                from voiceguide.asr import HybridRecognizer

                self._hybrid = HybridRecognizer(self.guide)
            t0 = time.perf_counter()
            self._hybrid.expect(answers)
            h = self._hybrid.recognize(audio)
            self.decode_s += time.perf_counter() - t0
            self.decoded += 1
            d = {"said": text, "voice": voice, "condition": condition, "variant": variant, "text": h.text,
                 "confidence": h.confidence, "kind": h.kind, "nbest": [list(r) for r in h.nbest]}
            path.write_text(json.dumps(d), encoding="utf-8")
        return Raw(d["text"], d["confidence"], "voice", kind=d["kind"], nbest=tuple((t, s) for t, s in d["nbest"]))


def warm(rec: Recognitions, voices, conditions) -> None:
    """Fill the cache: the answer words, then every first pass, condition by condition."""
    todo = [(t, v, c) for c in conditions for v in voices for t in ANSWER_WORDS]
    todo += [(t, v, c) for c in conditions for v in voices for t in asr_dev.COMMANDS + asr_dev.OFF_TOPIC]
    t0 = time.time()
    for n, (t, v, c) in enumerate(todo):
        rec.heard(t, v, c)
        if n % 20 == 0:
            print(f"{n}/{len(todo)} {time.time() - t0:.0f} s ({rec.decoded} decoded)", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- the simulated listener

MAX_TURNS = 4
"""A listener gives up after this many turns (a task not done within two turns is a failure anyway)."""


def _core(state) -> tuple:
    """What a task changes: where the listener is, the settings, paused, left, the open question."""
    return (state.section, state.para, state.sent, state.rate, state.volume, state.paused, state.ended,
            state.asking, state.awaiting_word)


class Tasks:
    """The tasks, their starting states and goals, through the real dialog core."""

    def __init__(self, guide):
        from voiceguide.dialog import Dialog, Heard, Start, State
        from voiceguide.session import _make_asker

        self.guide, self.parser = guide, IntentParser(guide)
        self.dialog, self.Heard = Dialog(guide, asker=_make_asker(guide)), Heard  # as the session has it
        d = self.dialog
        menu = d.step(State(), Start(volume=50))[0]
        section = d.step(d.step(menu, Heard(self.parser.parse("targeted drugs")))[0], Heard(self.parser.parse("more")))[0]
        question = d.step(State(), Start(resume_to="gilteritinib", resume_para=1, volume=50))[0]
        self.starts = {"menu": menu, "section": section, "question": question}

    def start_for(self, truth: tuple) -> str:
        if truth[0] == "number":
            return "menu"
        if truth[0] in ("yes", "no"):
            return "question"
        return "section"

    def goal(self, text: str, start) -> tuple:
        """What typing the same words does from ``start``: (core state, words said)."""
        from voiceguide.dialog import Say

        intent = self.parser.parse(text)
        state, effects = self.dialog.step(start, self.Heard(intent))
        return _core(state), [e.text for e in effects if isinstance(e, Say)]

    def key(self, state, intent) -> tuple:
        return self.dialog._key(state, intent)

    def effective(self, state, intent) -> tuple:
        """The meaning an acted-on intent carries out here (yes to "Gilteritinib?" opens Gilteritinib)."""
        k = self.key(state, intent)
        if state.asking == "confirm" and k == ("yes", None) and state.pending:
            return self.key(state, state.pending[0])
        if state.asking == "leave" and k == ("yes", None):
            return ("stop", None)
        if state.asking == "offer" and k == ("yes", None):
            return ("open", state.offer)
        if state.asking in ("confirm", "choose") and k[0] in ("no", "cancel"):
            return ("no", None)
        return k


def simulate(tasks: Tasks, rec: Recognitions, text: str, truth: tuple, voice: str, condition: str,
             index: int) -> dict:
    """One listener doing one task by voice; returns the outcome."""
    from voiceguide.dialog import Say, _say_name
    from voiceguide.grammar import spoken_number
    from voiceguide.session import to_event

    d = tasks.dialog
    start = tasks.starts[tasks.start_for(truth) if truth[0] != "none" else "section"]
    off_topic = truth[0] == "none"
    goal_core, goal_said = tasks.goal(text, start) if not off_topic else (None, None)
    goal_key = None if off_topic else tasks.key(start, tasks.parser.parse(text))
    state, turns, says, log = start, 0, {}, []
    out = {"text": text, "voice": voice, "condition": condition, "truth": truth, "done": False, "turns": 0,
           "wrong": False, "asked": False, "log": log}
    utterance, intended = text, goal_key
    while turns < MAX_TURNS:
        # each saying of the same words is a new one (faster, over other noise): the command, and an answer
        # said again ("number one" twice is two recordings, not the same one decoded twice)
        heard = rec.heard(utterance, voice, condition, says.get(utterance, 0), d.answers(state))
        says[utterance] = says.get(utterance, 0) + 1
        event = to_event(heard, tasks.parser, state)
        verdict = ("act", (event.intent,)) if isinstance(event, tasks.Heard) and not event.readings else \
            d.decide(state, event) if isinstance(event, tasks.Heard) else ("miss", ())
        if isinstance(event, tasks.Heard) and event.intent.intent == "none" and not event.readings:
            verdict = ("miss", ())  # open text or nothing: a question for the asker, or not understood
        before = state
        state, effects = d.step(state, event)
        turns += 1
        said = [e.text for e in effects if isinstance(e, Say)]
        log.append((utterance, heard.text, verdict[0], said[:1], heard.nbest[:3]))
        if verdict[0] == "act":
            acted = tasks.effective(before, verdict[1][0])
            if acted[0] != "stop" and acted != intended:
                out["wrong"], out["acted"] = True, acted
                break
        elif verdict[0] in ("confirm", "choose"):
            out["asked"] = True
        if not off_topic and _core(state) == goal_core and said == goal_said:
            out["done"] = True
            break
        if off_topic and not state.asking:
            out["done"] = True  # never acted on, and the guide is not asking: the listener stops
            break
        # the listener answers what the guide asks, truthfully
        if state.asking == "confirm":
            yes = not off_topic and tasks.key(state, state.pending[0]) == goal_key
            utterance, intended = ("yes", goal_key) if yes else ("no", ("no", None))
        elif state.asking == "choose":
            keys = [tasks.key(state, p) for p in state.pending]
            if goal_key in keys:
                n = keys.index(goal_key)
                sec = goal_key[1] if goal_key[0] == "open" else None
                utterance = _say_name(tasks.guide.section(sec)) if sec and index % 2 == 0 else ("one", "two")[n]
                intended = goal_key
            else:
                utterance, intended = "no", ("no", None)
        elif state.asking == "offer":  # the asker answered, and offers a section
            yes = goal_key == ("open", state.offer)
            utterance, intended = ("yes", goal_key) if yes else ("no", ("no", None))
        elif state.asking == "leave":
            utterance, intended = ("yes", goal_key) if truth[0] == "stop" else ("no", ("no", None))
        elif off_topic:
            out["done"] = True
            break
        elif state.listed and goal_key and goal_key[0] == "open" and goal_key[1] in state.listed:
            utterance, intended = f"number {spoken_number(state.listed.index(goal_key[1]) + 1)}", goal_key
        else:
            utterance, intended = text, tasks.key(state, tasks.parser.parse(text))
    out["turns"] = turns
    out["in_two"] = out["done"] and turns <= 2 and not out["wrong"]
    return out


def first_pass(tasks: Tasks, rec: Recognitions, text: str, truth: tuple, voice: str, condition: str) -> str:
    """As before issue 21: the recogniser's reading acted on, whatever its score: right, wrong, missed,
    or for off-topic speech rejected / acted."""
    heard = rec.heard(text, voice, condition)
    got = tasks.parser.parse(heard.text) if heard.text and heard.kind == "command" else None
    if truth[0] == "none":
        return "rejected" if got is None or got.intent in ("none", "stop") else "acted"
    if got is None or got.intent == "none":
        return "missed"
    return "right" if (got.intent, got.target) == truth else "wrong"


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "-"


def run_tasks(rec: Recognitions, voices, conditions) -> tuple[str, list[dict]]:
    tasks = Tasks(rec.guide)
    rows, results = [], []
    header = ("| voice | condition | tasks done within two turns | wrong actions without asking | off-topic acted on "
              "(of which moved or changed something) | "
              "asked (confirm or two-way) | mean turns per command task | first pass: right | first pass: wrong | "
              "first pass: off-topic acted on |\n|---|---|---|---|---|---|---|---|---|---|")
    for condition in conditions:
        for voice in voices:
            res = []
            for n, text in enumerate(asr_dev.COMMANDS + asr_dev.OFF_TOPIC):
                truth = tasks.parser.parse(text)
                truth = (truth.intent, truth.target) if text in asr_dev.COMMANDS else ("none", None)
                r = simulate(tasks, rec, text, truth, voice, condition, n)
                r["first"] = first_pass(tasks, rec, text, truth, voice, condition)
                res.append(r)
            results += res
            rows.append(_row(voice, condition, res))
    for condition in conditions:
        rows.append(_row("all voices", condition, [r for r in results if r["condition"] == condition]))
    total = _row("all", "all", results)
    return header + "\n" + "\n".join(rows) + "\n" + total, results


def _row(voice: str, condition: str, res: list[dict]) -> str:
    cmd = [r for r in res if r["truth"][0] != "none"]
    off = [r for r in res if r["truth"][0] == "none"]
    done = sum(r["in_two"] for r in cmd)
    wrong = sum(r["wrong"] for r in cmd)
    off_acted = sum(r["wrong"] for r in off)
    moved = sum(r["wrong"] and r["acted"][0] not in SAY_ONLY for r in off)
    asked = sum(r["asked"] for r in res)
    turns = sum(r["turns"] for r in cmd) / max(len(cmd), 1)
    fp_right = sum(r["first"] == "right" for r in cmd)
    fp_wrong = sum(r["first"] == "wrong" for r in cmd)
    fp_off = sum(r["first"] == "acted" for r in off)
    return (f"| {voice} | {condition} | {_pct(done, len(cmd))} | {_pct(wrong, len(cmd))} | {off_acted} of {len(off)} ({moved}) | "
            f"{asked} | {turns:.2f} | {_pct(fp_right, len(cmd))} | {_pct(fp_wrong, len(cmd))} | {fp_off} of {len(off)} |")


SAY_ONLY = ("where", "help", "repeat", "keys", "sources", "disclaimer", "cancel", "no")
"""Commands that only say something: the place, the settings and the section stay as they were."""

WORD_MEANING = {"yes": ("yes", None), "no": ("no", None), "neither": ("no", None), "the first": ("number", "1"),
                "the second": ("number", "2")}


def answer_words(rec: Recognitions, voices, conditions, words) -> str:
    """How often each confirmation word is recognised as what it means (the recogniser's decision)."""
    parser = IntentParser(rec.guide)
    rows = ["| word | " + " | ".join(f"{v}, {c}" for c in conditions for v in voices) + " | all |",
            "|---|" + "---|" * (len(voices) * len(conditions) + 1)]
    total = [0, 0]
    for word in words:
        meaning = WORD_MEANING.get(word) or ("number", str(parser.parse(word).target))
        cells, k = [], 0
        for c in conditions:
            for v in voices:
                h = rec.heard(word, v, c)
                got = parser.parse(h.text) if h.text and h.kind == "command" else None
                ok = got is not None and (got.intent, got.target) == meaning
                k += ok
                cells.append("yes" if ok else f"no ({h.text or '-'})")
        total[0] += k
        total[1] += len(voices) * len(conditions)
        rows.append(f"| {word} | " + " | ".join(cells) + f" | {k}/{len(voices) * len(conditions)} |")
    rows.append(f"\nAll words: {_pct(*total)} recognised as meant.")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", action="store_true", help="only fill the recognition cache")
    ap.add_argument("--voices", default="espeak,piper", help="comma-separated: espeak, piper")
    ap.add_argument("--conditions", default=",".join(c for c, _, _ in CONDITIONS))
    ap.add_argument("--record", action="store_true", help="write the tables to docs/benchmarks.md")
    args = ap.parse_args()
    voices = [v[0] for v in VOICES if v[0].split()[0] in args.voices.split(",")]
    conditions = [c for c in args.conditions.split(",")]
    if not voices or set(conditions) - {c for c, _, _ in CONDITIONS}:
        ap.error("unknown voice or condition")
    guide = load_guide()
    rec = Recognitions(guide)
    if args.warm:
        warm(rec, voices, conditions)
        return
    import os

    t0 = time.time()
    table, results = run_tasks(rec, voices, conditions)
    words = answer_words(rec, voices, conditions, ANSWER_WORDS)
    numbers = answer_words(rec, voices, conditions, [f"number {w}" for w in ANSWER_WORDS[5:]])
    load = os.getloadavg()
    stamp = (f"{len(results)} tasks ({len(voices)} voices x {len(conditions)} conditions x "
             f"{len(asr_dev.COMMANDS)} commands and {len(asr_dev.OFF_TOPIC)} off-topic phrases); "
             f"{rec.decoded} utterances decoded this run ({rec.decode_s:.0f} s), the rest from the cache; "
             f"{time.time() - t0:.0f} s in all; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}.")
    body = f"{table}\n\n{stamp}\n\nConfirmation words alone (the recogniser's decision means the word):\n\n{words}" \
        f"\n\nThe same digits after \"number\":\n\n{numbers}"
    print(body)
    turns = {c: [r["turns"] for r in results if r["condition"] == c and r["truth"][0] != "none"] for c in conditions}
    print("\nmean turns per command task: " + ", ".join(f"{c} {sum(t) / len(t):.2f}" for c, t in turns.items() if t))
    failed = [r for r in results if not r["in_two"] and r["truth"][0] != "none" or r["wrong"]]
    print(f"\nnot done within two turns, or wrong ({len(failed)}; each turn: said, heard, verdict, the top three "
          "readings with their scores):")
    for r in failed:
        print(f"- {r['voice']}, {r['condition']}: {r['text']!r}: {'WRONG ' if r['wrong'] else ''}"
              + " / ".join(f"{u!r} heard {h!r} -> {v} [" + ", ".join(f"{t} {sc:.2f}" for t, sc in nb) + "]"
                           for u, h, v, _, nb in r["log"]))
    if args.record:
        from _common import record

        record("Task success by voice (act, confirm or disambiguate)", body)


if __name__ == "__main__":
    main()
