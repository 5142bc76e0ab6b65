"""Listener tasks on the real dialog core: words and seconds before the first choice, and turns per task.

Drives ``Dialog`` with typed phrases through the real ``IntentParser`` and ``to_event`` (as the text
mode does), so the counts are what a listener really needs. Seconds are given two ways: at 175 words
a minute, and measured by rendering each utterance with espeak-ng at 175 wpm with the pack's lexicon.
Each task is checked (the bench fails if a task is not done), so the counts cannot drift silently.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from voiceguide.content import default_content_path, load_guide  # noqa: E402
from voiceguide.dialog import Dialog, Say, Start, State, split_sentences, words_before_first_choice  # noqa: E402
from voiceguide.intents import IntentParser  # noqa: E402
from voiceguide.protocols import Heard as Typed  # noqa: E402
from voiceguide.session import to_event  # noqa: E402


def run(dialog: Dialog, parser: IntentParser, inputs: list[str], start: Start | None = None):
    """Each input is one turn; returns (state, everything said after the start, per turn)."""
    state, effects = dialog.step(State(), start or Start())
    turns = []
    for text in inputs:
        state, effects = dialog.step(state, to_event(Typed(text, 1.0, "keys"), parser, state))
        turns.append([e.text for e in effects if isinstance(e, Say)])
    return state, turns


def espeak_seconds(guide, texts: list[str]) -> float | None:
    try:
        from voiceguide.tts import get_engine, render

        engine = get_engine("espeak")
        return sum(render(t, engine=engine, rate=175, lexicon=guide.lexicon).duration for t in texts)
    except Exception as exc:  # noqa: BLE001 - a machine without espeak-ng still gets the word counts
        print(f"espeak-ng rendering unavailable: {exc}")
        return None


def main() -> None:
    guide = load_guide(default_content_path())
    dialog, parser = Dialog(guide), IntentParser(guide)
    drug = "gilteritinib"
    body = guide.section(drug).body

    rows = []
    for name, start in [("first start", Start()),
                        ("returning, place at a sentence", Start(resume_to=drug, resume_para=1, resume_sentence=1))]:
        _, effects = dialog.step(State(), start)
        texts = [e.text for e in effects if isinstance(e, Say)]
        words = words_before_first_choice(effects)
        measured = espeak_seconds(guide, texts)
        rows.append(f"| {name} | {words} | {words / 175 * 60:.0f} s | "
                    f"{'%.1f s' % measured if measured is not None else 'n/a'} |")
    start_table = ("| before the first choice | words | seconds at 175 wpm | seconds, espeak-ng at 175 wpm |\n"
                   "|---|---|---|---|\n" + "\n".join(rows))

    tasks = []

    def task(name: str, inputs: list[str], done, start: Start | None = None, setup: tuple[str, ...] = ()) -> None:
        """``setup``: inputs that bring the listener to where the task begins (not counted)."""
        state, turns = run(dialog, parser, [*setup, *inputs], start)
        ok = done(state, turns[len(setup):])
        if not ok:
            raise SystemExit(f"task not done: {name}: {turns}")
        where = f" (from: {' / '.join(repr(i) for i in setup)})" if setup else ""
        tasks.append(f"| {name}{where} | {' / '.join(repr(i) for i in inputs)} | {len(inputs)} |")

    said = lambda turns: " ".join(t for turn in turns for t in turn)  # noqa: E731
    task("open a drug section and hear which mutation it targets (by name)", ["xospata"],
         lambda s, t: s.section == drug and "FLT3" in said(t))
    task("the same by number keys", ["4", "3"], lambda s, t: s.section == drug and "FLT3" in said(t))
    task("define a term while reading, and come back", ["what does mutation mean", "continue"],
         lambda s, t: t[0][0].startswith("Mutation:") and t[1][0] == split_sentences(body[1])[0],
         setup=("xospata", "more"))
    task("the same by keys", ["d", "mutation", "c"],
         lambda s, t: t[1][0].startswith("Mutation:") and t[2][0] == split_sentences(body[1])[0],
         setup=("xospata", "more"))
    first = dialog.step(State(), Start())[0]
    left, _ = run(dialog, parser, ["xospata", "more", "q"])
    place = dialog.position(left)
    task("resume after a quit (next start: the place is offered)", ["continue"],
         lambda s, t: t[0][1] == split_sentences(body[place.para])[place.sentence],
         Start(resume_to=place.section, resume_para=place.para, resume_sentence=place.sentence))
    task("pause and continue", ["pause", "continue"],
         lambda s, t: s.paused is False and t[0][0].startswith("Paused.") and t[1][0] == split_sentences(body[1])[0],
         setup=("xospata", "more"))
    task("find the transplant section from inside a drug section", ["transplant"],
         lambda s, t: s.section == "transplant", setup=("xospata", "more"))
    task("the same by keys", ["m", "3"], lambda s, t: s.section == "transplant", setup=("xospata", "more"))
    task("go back to the drug after that detour: lands where you were", ["go back to xospata", "more"],
         lambda s, t: "You were at the start of paragraph 2" in t[0][0] and t[1][0] == split_sentences(body[1])[0],
         setup=("xospata", "more", "transplant"))
    assert first.section is None
    task_table = ("| task | typed (one turn each) | turns |\n|---|---|---|\n" + "\n".join(tasks))
    note = ("Turns count the listener's inputs (typed phrases through the real parser) from where the task "
            "begins; the resume task counts the second session only (its first session was 'xospata', 'more', "
            "'q'). Each task's outcome is checked by the bench. Before issue 16 the first start spoke 136 "
            "words before the first choice and a returning listener heard the same; a definition left the "
            "guide waiting for more words, and going back to a section started again at its summary.")
    record("Listener tasks (dialog)", f"{start_table}\n\n{task_table}\n\n{note}")


if __name__ == "__main__":
    main()
