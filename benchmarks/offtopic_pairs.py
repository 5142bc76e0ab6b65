"""Off-topic speech just after a miss: how often the dialog would act on it, or ask about it.

The task benchmark says each off-topic phrase once, at a section, and the listener stops when the guide asks nothing;
so it never sees speech that is no command coming right after a saying the guide did not understand (a TV, another
person), when the dialog's rules for a second saying (pooling, issue 21) apply. Here, for each voice and room of the
task benchmark's cache: every saying that leaves the guide not understanding at a section (not understood, or open
text the content has no answer for; of the 12 off-topic phrases and the 33 commands, first sayings), followed by each other off-topic phrase, through the real dialog core. Counts
are of the second saying's verdict: ``act``, ``implicit`` (an experiment's verdict, if the rules give it), ``confirm``
or ``choose`` (asked about), ``miss``.

    python benchmarks/offtopic_pairs.py [--list]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asr_dev  # noqa: E402
import task_success_bench as T  # noqa: E402

from voiceguide.content import load_guide  # noqa: E402
from voiceguide.session import to_event  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="list each pair acted on")
    args = ap.parse_args()
    guide = load_guide()
    rec, tasks = T.Recognitions(guide), T.Tasks(guide)
    d, start = tasks.dialog, tasks.starts["section"]
    counts = {"off-topic, then off-topic": Counter(), "a command missed, then off-topic": Counter()}
    acted = []
    for voice, *_ in T.VOICES:
        for cond, *_ in T.CONDITIONS:
            for first in asr_dev.OFF_TOPIC + asr_dev.COMMANDS:
                state, _ = d.step(start, to_event(rec.heard(first, voice, cond), tasks.parser, start))
                if state.asking or (state.section, state.para, state.sent) != (start.section, start.para, start.sent) \
                        or not (state.no_match or state.listed):
                    continue  # understood, or asked about: no miss to follow (the asker's "not covered" is one)
                row = counts["off-topic, then off-topic" if first in asr_dev.OFF_TOPIC else "a command missed, then off-topic"]
                for second in asr_dev.OFF_TOPIC:
                    if second == first:
                        continue
                    event = to_event(rec.heard(second, voice, cond), tasks.parser, state)
                    verdict = d.decide(state, event)[0] if isinstance(event, tasks.Heard) and event.readings else "miss"
                    row["pairs"] += 1
                    row[verdict] += 1
                    if verdict in ("act", "implicit"):
                        acted.append((voice, cond, first, second, verdict, d.decide(state, event)[1][0]))
    print("| first saying (not understood) | pairs | acted on | taken without asking (implicit) | asked | not understood |")
    print("|---|---|---|---|---|---|")
    for name, c in counts.items():
        print(f"| {name} | {c['pairs']} | {c['act']} | {c['implicit']} | {c['confirm'] + c['choose']} | {c['miss']} |")
    if args.list:
        for voice, cond, first, second, verdict, intent in acted:
            print(f"- {voice}, {cond}: {first!r} then {second!r}: {verdict} {intent.intent} {intent.target or ''}")


if __name__ == "__main__":
    main()
