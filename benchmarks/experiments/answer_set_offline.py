"""Answers against a tiny answer set: how well Whisper's forced scoring of only the expected answers would hear them.

(The offline experiment that led to ``HybridRecognizer.expect``, kept so its figures in docs/benchmarks.md can be
reproduced: run from the repository's root, ``python benchmarks/experiments/answer_set_offline.py``. The shipped path is
measured by benchmarks/answer_set_bench.py.)

An experiment for issue 21 ("confirmation grammars are tiny and must be recognised near-perfectly"), not a shipped
path: today the guide recognises an answer ("yes", "two", "number three") with the whole content grammar, and the
dialog takes it when it is the decision or a strong reading. Here each recorded answer of the task benchmark (its
cache: 4 voices x clean, white and babble 10 dB) is scored by Whisper tiny.en against the answer set of one kind of
question only (yes/no; the two-way "one, or two?"; the numbered list), and read as the best of them when that phrase
scores within ``--gap`` nats of Whisper's own transcript and ``--margin`` nats ahead of every other meaning. The 12
off-topic phrases of the same cache, in the same voices and rooms, say how often speech that is no answer would be
taken for one. "with the grammar first" is the combination a recogniser would ship: the grammar's decision when it is
an expected answer, else the tiny set's.

    python benchmarks/answer_set_bench.py [--gap 2] [--margin 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import asr_dev  # noqa: E402
import task_success_bench as T  # noqa: E402

from voiceguide.content import load_guide  # noqa: E402
from voiceguide.intents import IntentParser  # noqa: E402

NUMBERS = ["one", "two", "three", "four", "five", "six", "seven"]
SETS = {
    "yes or no": (["yes", "no"], ["yes", "no"]),
    "one or two": (["one", "two", "the first", "the second", "neither", "no"], ["one", "two", "the first", "the second",
                                                                               "neither"]),
    "numbered list": ([f"number {w}" for w in NUMBERS] + NUMBERS, [f"number {w}" for w in NUMBERS] + NUMBERS),
}
"""Question kind -> (the answer set scored, the recorded answers tried)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gap", type=float, default=2.0, help="how far below Whisper's own transcript the answer may score")
    ap.add_argument("--margin", type=float, default=3.0, help="how far ahead of other meanings it must be")
    args = ap.parse_args()
    from voiceguide.asr_whisper import WhisperRecognizer

    guide = load_guide()
    rec, parser = T.Recognitions(guide), IntentParser(guide)
    whisper = WhisperRecognizer(guide)

    def meaning(phrase: str) -> tuple:
        return T.WORD_MEANING.get(phrase) or ("number", str(parser.parse(phrase).target))

    print(f"| question | answers | tiny set: right | wrong | not heard | grammar's decision right | with the grammar "
          f"first: right | wrong | off-topic phrases taken for an answer (tiny set) |\n|---|---|---|---|---|---|---|---|---|")
    t0 = time.time()
    for kind, (phrases, answers) in SETS.items():
        right = wrong = rejected = base = both = both_wrong = off = n_off = 0
        for voice, *_ in T.VOICES:
            for cond, *_ in T.CONDITIONS:
                for said in answers + asr_dev.OFF_TOPIC:
                    t = whisper.transcribe(rec.audio(said, voice, cond))
                    own, scores = whisper.score(t, phrases)
                    best = int(np.argmax(scores))
                    rivals = [s for p, s in zip(phrases, scores) if meaning(p) != meaning(phrases[best])]
                    taken = scores[best] - own >= -args.gap and (not rivals or scores[best] - max(rivals) >= args.margin)
                    if said in asr_dev.OFF_TOPIC:
                        n_off += 1
                        off += taken
                        continue
                    h = rec.heard(said, voice, cond)
                    got = parser.parse(h.text) if h.text and h.kind == "command" else None
                    base_ok = got is not None and (got.intent, got.target) == meaning(said)
                    base += base_ok
                    ok = taken and meaning(phrases[best]) == meaning(said)
                    right += ok
                    wrong += taken and not ok
                    rejected += not taken
                    base_expected = got is not None and (got.intent, got.target) in {meaning(p) for p in phrases}
                    both += base_ok or (not base_expected and ok)
                    both_wrong += (base_expected and not base_ok) or (not base_expected and taken and not ok)
        n = len(answers) * len(T.VOICES) * len(T.CONDITIONS)
        print(f"| {kind} | {n} | {right} | {wrong} | {rejected} | {base} | {both} | {both_wrong} | {off} of {n_off} |")
    print(f"\n--gap {args.gap} --margin {args.margin}; {time.time() - t0:.0f} s.")


if __name__ == "__main__":
    main()
