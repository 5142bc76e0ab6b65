"""Questions answered from the content (voiceguide/ask.py): typed and spoken, on held-out questions.

The held-out set (ask_questions_heldout.yaml) was written before the Asker existed and is never
tuned on; tune on the development set (ask_questions_dev.yaml, ``--dev``: prints every miss, writes
nothing). Figures, for the typed questions and then for each voice and noise condition:

- right: the answer is one the set allows (the right section for a content answer, the right term for
  a definition, or the right reply kind);
- content questions on the right section: the same, over questions that expect content;
- advice / support / off-topic questions given content (goal 0);
- answers (kind answer or definition) whose text does not stand verbatim in the pack (must be 0);
- the Asker's time per question (median and worst), and its load time.

Spoken: each held-out question is rendered by espeak-ng (en-us, 175 wpm) and Piper (variation 0),
with the pack's lexicon, clean and with white noise or babble 10 dB below it, transcribed by the
Whisper recogniser primed with the pack's words (WhisperRecognizer.transcribe), and the transcript
goes to the same Asker.

Usage: python benchmarks/ask_bench.py [--dev [--spoken]] [--typed] [--content PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import record  # noqa: E402

from voiceguide.ask import Answer, Asker  # noqa: E402
from voiceguide.content import Guide, load_guide, normalize  # noqa: E402

CONTENT_KINDS = {"answer", "definition"}


def load_questions(name: str) -> list[dict]:
    return yaml.safe_load((HERE / f"ask_questions_{name}.yaml").read_text(encoding="utf-8"))["questions"]


def verbatim_texts(guide: Guide) -> list[str]:
    """Every text an answer may quote: summaries, body paragraphs, glossary definitions."""
    out = [e.definition for e in guide.glossary]
    for sec in guide.walk():
        out += [sec.summary, *sec.body]
    return out


def is_right(guide: Guide, a: Answer, expect: list[str]) -> bool:
    for e in expect:
        kind, _, target = e.partition(":")
        if kind != a.kind:
            continue
        if kind == "answer":
            if target.startswith("~"):
                word = target[1:]
                if a.section and (word in a.section or word in normalize(guide.section(a.section).title)):
                    return True
            elif a.section == target:
                return True
        elif kind == "definition":
            if a.term and normalize(a.term) == normalize(target):
                return True
        else:
            return True
    return False


def evaluate(guide: Guide, asker: Asker, items: list[dict], texts: list[str] | None = None) -> dict:
    """Ask every question (``texts``: what was heard instead of the written question)."""
    quotable = verbatim_texts(guide)
    rows, times = [], []
    for i, item in enumerate(items):
        heard = item["q"] if texts is None else texts[i]
        t0 = time.perf_counter()
        a = asker.ask(heard, item.get("context")) if normalize(heard) else None
        times.append(time.perf_counter() - t0)
        expect = item["expect"]
        wants_content = any(e.split(":")[0] in CONTENT_KINDS for e in expect)
        right = a is not None and is_right(guide, a, expect)
        rows.append({
            "q": item["q"], "heard": heard, "expect": expect, "got": a, "right": right,
            "wants_content": wants_content,
            "false_content": a is not None and not wants_content and a.kind in CONTENT_KINDS,
            "not_verbatim": a is not None and a.kind in CONTENT_KINDS and not any(a.answer in t for t in quotable),
        })
    content = [r for r in rows if r["wants_content"]]
    other = [r for r in rows if not r["wants_content"]]
    return {
        "rows": rows, "n": len(rows), "right": sum(r["right"] for r in rows),
        "content_n": len(content), "content_right": sum(r["right"] for r in content),
        "other_n": len(other), "false_content": sum(r["false_content"] for r in rows),
        "not_verbatim": sum(r["not_verbatim"] for r in rows),
        "median_ms": 1000 * statistics.median(times), "worst_ms": 1000 * max(times),
    }


def describe(a: Answer | None) -> str:
    if a is None:
        return "(nothing heard)"
    return f"{a.kind}:{a.section or a.term or ''}"


def print_misses(result: dict) -> None:
    for r in result["rows"]:
        if not r["right"] or r["not_verbatim"]:
            heard = f" (heard {r['heard']!r})" if r["heard"] != r["q"] else ""
            print(f"  MISS {r['q']!r}{heard}: got {describe(r['got'])}, want {r['expect']}"
                  + (" NOT VERBATIM" if r["not_verbatim"] else ""))


def row(label: str, r: dict) -> str:
    pct = lambda a, b: f"{100 * a / b:.0f}% ({a}/{b})" if b else "-"  # noqa: E731
    return (f"| {label} | {pct(r['right'], r['n'])} | {pct(r['content_right'], r['content_n'])} | "
            f"{r['false_content']} of {r['other_n']} | {r['not_verbatim']} | {r['median_ms']:.1f} / {r['worst_ms']:.1f} |")


HEADER = ("| questions | right | content questions on the right section | advice, support, off-topic given content "
          "| answer text not in the pack | Asker ms per question (median / worst) |\n|---|---|---|---|---|---|")


def spoken(guide: Guide, asker: Asker, items: list[dict], hybrid: bool = False) -> list[tuple[str, dict, float]]:
    """Render, add noise, transcribe with Whisper, ask: one result per voice and condition.

    ``hybrid``: also put each utterance through the live loop's recogniser (HybridRecognizer), which
    hands the dialog open text only when Whisper heard it clearly and it is no command; its result's
    ``loop`` counts questions answered right that way, taken as commands, and not passed on."""
    from asr_bench import mix

    from voiceguide import audio as A
    from voiceguide.asr import WhisperRecognizer
    from voiceguide.rig import room_noise, samples
    from voiceguide.tts import PiperEngine, get_engine, render

    if hybrid:
        from voiceguide.asr import HybridRecognizer

        live = HybridRecognizer(guide)
        whisper = live.whisper
    else:
        whisper = WhisperRecognizer(guide)
    espeak, piper = get_engine("espeak"), PiperEngine(variation=0)
    voices = [("espeak en-us 175", espeak, "en-us", 175), ("piper 165", piper, None, 165)]
    rng = np.random.default_rng(18)
    out = []
    for vname, engine, voice, rate in voices:
        clean = [A.resample(render(it["q"], engine=engine, voice=voice, rate=rate, lexicon=guide.lexicon), 16000)
                 for it in items]
        babble = samples(room_noise("babble", 0.0, clean[:4], [espeak, piper], seconds=20.0))
        for cname, noise in (("clean", None), ("white 10 dB", "white"), ("babble 10 dB", "babble")):
            heard, secs, loop = [], [], []
            for audio in clean:
                if noise == "white":
                    audio = mix(audio, rng.normal(0, 1, len(samples(audio))), 10)
                elif noise == "babble":
                    start = int(rng.integers(0, len(babble) - 16000))
                    audio = mix(audio, np.roll(babble, -start), 10)
                t0 = time.perf_counter()
                heard.append(whisper.transcribe(audio).text)
                secs.append(time.perf_counter() - t0)
                if hybrid:
                    loop.append(live.recognize(audio))
            result = evaluate(guide, asker, items, heard)
            if hybrid:
                result["loop"] = loop_figures(guide, asker, items, loop)
            print(f"{vname}, {cname}:", file=sys.stderr)
            print_misses(result)
            out.append((f"{vname}, {cname}", result, 1000 * statistics.median(secs)))
    return out


def loop_figures(guide: Guide, asker: Asker, items: list[dict], loop: list) -> dict:
    """What the live loop makes of each utterance: open text asked (right or not), a command, or nothing."""
    out = {"open_right": 0, "open": 0, "command": 0, "nothing": 0, "false_content": 0}
    for item, h in zip(items, loop):
        if not h.text:
            out["nothing"] += 1
        elif h.kind != "open":
            out["command"] += 1
        else:
            out["open"] += 1
            a = asker.ask(h.text, item.get("context"))
            out["open_right"] += is_right(guide, a, item["expect"])
            wants = any(e.split(":")[0] in CONTENT_KINDS for e in item["expect"])
            out["false_content"] += (not wants and a.kind in CONTENT_KINDS)
    return out


def loop_row(label: str, n: int, f: dict) -> str:
    return (f"| {label} | {f['open']} | {f['open_right']} of {n} | {f['command']} | {f['nothing']} | "
            f"{f['false_content']} |")


LOOP_HEADER = ("| spoken, live loop's recogniser | passed on as a question | answered right | taken as a command "
               "| not passed on | advice, support, off-topic given content |\n|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", action="store_true", help="the development set: print misses, record nothing")
    ap.add_argument("--typed", action="store_true", help="typed questions only (no speech)")
    ap.add_argument("--spoken", action="store_true", help="with --dev: the spoken questions too")
    ap.add_argument("--no-loop", action="store_true", help="skip the live loop's recogniser (HybridRecognizer)")
    ap.add_argument("--content", metavar="PATH")
    ap.add_argument("--limit", type=int, help="only the first N questions (a quick check; records nothing)")
    args = ap.parse_args()
    guide = load_guide(args.content)
    t0 = time.perf_counter()
    asker = Asker(guide)
    load_ms = 1000 * (time.perf_counter() - t0)
    items = load_questions("dev" if args.dev else "heldout")[:args.limit]
    typed = evaluate(guide, asker, items)
    print_misses(typed)
    print(HEADER)
    print(row(f"typed ({'development' if args.dev else 'held-out'})", typed))
    print(f"Asker built in {load_ms:.0f} ms")
    if args.dev:
        if args.spoken:
            for label, result, asr_ms in spoken(guide, asker, items, hybrid=not args.no_loop):
                print(row(f"spoken, {label}", result) + f" whisper {asr_ms:.0f} ms")
                if "loop" in result:
                    print(loop_row(label, len(items), result["loop"]))
        return
    lines = [row("typed", typed)]
    notes, loops = [], []
    if not args.typed:
        for label, result, asr_ms in spoken(guide, asker, items, hybrid=not args.no_loop):
            lines.append(row(f"spoken, {label}", result))
            notes.append(f"{label}: {asr_ms:.0f} ms")
            if "loop" in result:
                loops.append(loop_row(label, len(items), result["loop"]))
    body = (
        f"{len(items)} held-out questions (benchmarks/ask_questions_heldout.yaml: written before the Asker, never "
        f"tuned on; {typed['content_n']} expect content, {typed['other_n']} expect the advice, support or "
        f"unknown reply), content pack `{Path(guide.path).name}` as it stood when measured. Spoken: rendered with the "
        "pack's lexicon by espeak-ng and Piper (variation 0), white noise or babble mixed 10 dB below the speech, "
        "transcribed by `WhisperRecognizer.transcribe` (tiny.en primed with the pack's names), then the same Asker.\n\n"
        + HEADER + "\n" + "\n".join(lines) + "\n\n"
        f"Asker built in {load_ms:.0f} ms (BM25 index over {len(asker.units)} paragraphs). "
        + (f"Whisper transcription, median per question: {'; '.join(notes)}." if notes else "")
    )
    if loops:
        body += ("\n\nThe same utterances through the live loop's recogniser (`HybridRecognizer.recognize`): it passes "
                 "Whisper's transcript on as a question (open text) only when Whisper heard it clearly and it is no "
                 "command; a question it reads as a command (\"what is Xospata\" -> open gilteritinib) is acted on as "
                 "one.\n\n" + LOOP_HEADER + "\n" + "\n".join(loops))
    if args.content is None and args.limit is None:
        record("Questions answered from the content (ask)", body)
    else:
        print(body)


if __name__ == "__main__":
    main()
