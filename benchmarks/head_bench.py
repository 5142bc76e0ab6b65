"""The content-trained check (voiceguide/recognizer_head.py) against the hybrid alone, leaving one voice family out.

Held-out audio: the development corpus's phrasings (benchmarks/asr_dev.py: 33 commands and 12
near-miss off-topic phrases, none of them the training's negatives) spoken by one voice of each
family, clean, in white noise at 10 dB and in babble at 10 dB (the development corpus's babble
sentences): espeak-ng en-us at 160 wpm, flite slt, Piper at 150 wpm (its own sampling noise).
Each utterance goes through the real hybrid once (``HybridRecognizer.evidence``: its decision and
N-best, and the encoder frames it computed); both are cached in benchmarks/corpus/head/.

For each family F, a head is trained on the training clips of the two other families only
(voiceguide/train_recognizer.py's plan, encoder frames from its cache) and measured on F's held-out
audio: the head alone (its top class), the hybrid alone, and the hybrid checked by the head (the
hybrid's reading stands when it is in the head's top 3, else the head's top, which may be none).
That is the standing figure. The head trained on all three families, measured on the same audio,
is printed after it as the in-training figure (its families, not its phrasings or audio, were seen).

Usage: python benchmarks/head_bench.py [--epochs N] [--limit N] [--record] [--ship]
  --ship   also write the all-family head to voiceguide/heads/<pack hash>.npz, marked for use only
           when hybrid+head beat the hybrid alone on every held-out family (right up, false accepts
           not up)
  --record write the tables to docs/benchmarks.md (section "Content-trained check (issue 21)")
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import asr_dev  # noqa: E402
from asr_bench import mix  # noqa: E402

from voiceguide import audio as A  # noqa: E402
from voiceguide import recognizer_head as H  # noqa: E402
from voiceguide import train_recognizer as T  # noqa: E402
from voiceguide.content import load_guide  # noqa: E402
from voiceguide.intents import IntentParser  # noqa: E402

CORPUS = HERE / "corpus" / "head"
VOICES = [("espeak en-us 160", "espeak"), ("flite slt", "flite"), ("piper 150", "piper")]
CONDITIONS = asr_dev.CONDITIONS  # clean, white10, babble10
SEED = 20261202


def _render(family: str, text: str, voices: T.Voices, engines: dict):
    from voiceguide.tts import render

    if family == "espeak":
        return A.resample(render(text, engine=engines["espeak"], voice="en-us", rate=160, lexicon=voices.lexicon), 16000)
    if family == "flite":
        return voices.render(T.Clip(text, H.NONE, "flite", "slt", 1.0, 170.0, "clean", 0.0, 0))
    return A.resample(render(text, engine=engines["piper"], rate=150, lexicon=voices.lexicon), 16000)


def build(guide, limit: int | None = None) -> list[dict]:
    """Render, mix, run the hybrid on, and cache every held-out utterance; return their records."""
    from voiceguide.asr import HybridRecognizer
    from voiceguide.tts import get_engine, render

    spec = json.loads(json.dumps({"seed": SEED, "voices": VOICES, "conditions": CONDITIONS, "limit": limit,
                                  "commands": asr_dev.COMMANDS, "off_topic": asr_dev.OFF_TOPIC, "encoder": H.ENCODER}))
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    done_file = CORPUS / f"items-{key}.jsonl"  # one line per utterance, written after its frames: a stopped run resumes
    done = {}
    if done_file.is_file():
        for line in done_file.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if (CORPUS / f"{r['name']}.npy").is_file():
                done[r["name"]] = r
    parser = IntentParser(guide)
    texts = asr_dev.COMMANDS + asr_dev.OFF_TOPIC
    clash = set(t.lower() for t in asr_dev.OFF_TOPIC) & set(t.lower() for t in T.negatives(guide))
    assert not clash, f"held-out off-topic phrases are training negatives: {clash}"
    if limit:
        texts = texts[:limit]
    engines = {"espeak": get_engine("espeak"), "piper": get_engine("piper")}
    voices = T.Voices(guide.lexicon)
    babble = sum(np.resize(np.frombuffer(A.resample(render(t, engine=engines["piper" if i % 2 else "espeak"]), 16000)
                                         .pcm, "<i2").astype(np.float64), 16000 * 6)
                 for i, t in enumerate(asr_dev.BABBLE_TEXT))
    hybrid = None
    rng = np.random.default_rng(SEED)
    CORPUS.mkdir(parents=True, exist_ok=True)
    items = []
    for vname, family in VOICES:
        for n, text in enumerate(texts):
            clean = _render(family, text, voices, engines)
            truth = parser.parse(text)
            truth_class = H.class_name((truth.intent, truth.target)) if text in asr_dev.COMMANDS else H.NONE
            for cname, kind, snr in CONDITIONS:
                audio = clean if kind is None else mix(clean, rng.normal(0, 1, 16000 * 8) if kind == "white" else babble, snr)
                name = f"{family}-{cname}-{n:02d}"
                if name in done:
                    items.append(done[name])
                    continue
                hybrid = hybrid or HybridRecognizer(guide)
                t0 = time.perf_counter()
                ev = hybrid.evidence(audio)
                heard = replace(ev.heard, nbest=hybrid.calibration.nbest(ev))
                ms = 1000 * (time.perf_counter() - t0)
                frames = H.speech_frames(ev.transcript.encoded, ev.transcript.frames).astype(np.float16)
                np.save(CORPUS / f"{name}.npy", frames)
                got = parser.parse(heard.text) if heard.text and heard.kind == "command" else None
                items.append({"name": name, "text": text, "family": family, "voice": vname, "condition": cname,
                              "truth": truth_class, "heard": heard.text, "kind": heard.kind,
                              "hybrid": H.class_name((got.intent, got.target)) if got else H.NONE, "ms": ms})
                with open(done_file, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(items[-1]) + "\n")
            print(f"{vname}: {n + 1}/{len(texts)}", file=sys.stderr, flush=True)
    return items


def outcome(truth: str, got: str) -> str:
    if truth == H.NONE:
        return "rejected" if got == H.NONE else "false accept"
    return "right" if got == truth else "missed" if got == H.NONE else "wrong"


def score(rows: list[tuple[str, str]]) -> dict:
    out = [outcome(t, g) for t, g in rows]
    commands = sum(t != H.NONE for t, _ in rows)
    return {"commands": commands, "right": out.count("right"), "wrong": out.count("wrong"),
            "off": len(rows) - commands, "fa": out.count("false accept")}


def share(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--limit", type=int, help="only the first N phrasings (a quick look)")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=None, help="stop each training after this long")
    args = ap.parse_args()
    guide = load_guide()
    items = build(guide, args.limit)
    frames = {it["name"]: np.load(CORPUS / f"{it['name']}.npy") for it in items}
    phrases = H.meaning_phrases(guide)
    classes = [*sorted(phrases), H.NONE]
    clips = T.plan(guide, phrases=phrases)
    feats = T.encode_clips(clips, guide=guide, log=lambda s: print(s, file=sys.stderr, flush=True))
    load = os.getloadavg()
    lines = [f"Load average at the start: {load[0]:.1f} (2 cores shared).", "",
             "| held-out family | condition | hybrid alone: right | hybrid+head: right | head alone: right "
             "| hybrid alone: false accepts | hybrid+head: false accepts | head alone: false accepts "
             "| wrong (hybrid / +head) |", "|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    head_ms: list[float] = []

    ranks: dict[str, dict] = {"held_out": {}, "in_training": {}}

    def evaluate(head: H.Head, its: list[dict], kind: str = "held_out") -> dict:
        res = {}
        for it in its:
            ranked = head.ranked(frames[it["name"]])
            head_ms.append(head.last_ms)
            ranks[kind][it["name"]] = ranked
            res[it["name"]] = (ranked[0][0], head.decide(it["hybrid"], ranked))
        return res

    def train_head(train_families: list[str]) -> H.Head:
        idx = [i for i, c in enumerate(clips) if c.family in train_families]
        tag = hashlib.sha256(json.dumps([clips[i].key() for i in idx] + [args.epochs, H.WIDTH, H.PROJECT]).encode())
        saved = H.cache_dir() / "bench" / f"{'-'.join(train_families)}-{tag.hexdigest()[:12]}.npz"
        if saved.is_file():  # trained before on the same clips and settings
            return H.load(saved)
        t0 = time.perf_counter()
        w = T.train([feats[i] for i in idx], [clips[i].label for i in idx], classes, epochs=args.epochs,
                    log=lambda s: print(s, file=sys.stderr, flush=True), max_seconds=args.max_seconds)
        print(f"trained on {', '.join(train_families)} ({len(idx)} clips) in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)
        H.save(saved, w, classes, H.pack_hash(guide, phrases), {"families": train_families})
        return H.load(saved)

    def table(label: str, fam_items: dict[str, list[dict]], results: dict) -> dict:
        total = {k: {"right": 0, "fa": 0, "wrong": 0, "commands": 0, "off": 0} for k in ("hybrid", "checked", "head")}
        for family, its in fam_items.items():
            for cname in [c for c, _, _ in CONDITIONS] + ["all"]:
                sel = [it for it in its if cname in ("all", it["condition"])]
                if not sel:
                    continue
                s_h = score([(it["truth"], it["hybrid"]) for it in sel])
                s_c = score([(it["truth"], results[it["name"]][1]) for it in sel])
                s_a = score([(it["truth"], results[it["name"]][0]) for it in sel])
                if cname == "all":
                    for k, s in (("hybrid", s_h), ("checked", s_c), ("head", s_a)):
                        for f in total[k]:
                            total[k][f] += s[f]
                lines.append(f"| {label}{family} | {cname} | {share(s_h['right'], s_h['commands'])} | "
                             f"{share(s_c['right'], s_c['commands'])} | {share(s_a['right'], s_a['commands'])} | "
                             f"{share(s_h['fa'], s_h['off'])} | {share(s_c['fa'], s_c['off'])} | "
                             f"{share(s_a['fa'], s_a['off'])} | {s_h['wrong']} / {s_c['wrong']} |")
        return total

    by_family = {f: [it for it in items if it["family"] == f] for _, f in VOICES}
    per_family = {}
    for family in by_family:
        head = train_head([f for f in T.FAMILIES if f != family])
        results = evaluate(head, by_family[family])
        per_family[family] = table("", {family: by_family[family]}, results)
    summary["held_out"] = per_family
    lines += ["", "In-training figure (the head trained on all three families; phrasings and audio still unseen):", "",
              lines[2], lines[3]]
    full = train_head(list(T.FAMILIES))
    summary["in_training"] = table("(all) ", by_family, evaluate(full, items, "in_training"))
    lines += ["", "Second try, the same heads with a stricter rule: the head replaces the hybrid's reading only "
                  "when that reading is not in the head's top 3 and the head gives its best at least the "
                  "probability shown (0 is the rule above). Held-out family, all conditions:", "",
              "| rule | espeak right | espeak false accepts | flite right | flite false accepts | piper right "
              "| piper false accepts | wrong |", "|---|---|---|---|---|---|---|---|"]
    for sure in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95):
        gate = H.Head({}, classes, "", sure=sure)
        cells, wrong = [], 0
        for family, its in by_family.items():
            s_c = score([(it["truth"], gate.decide(it["hybrid"], ranks["held_out"][it["name"]])) for it in its])
            cells += [share(s_c["right"], s_c["commands"]), share(s_c["fa"], s_c["off"])]
            wrong += s_c["wrong"]
            summary.setdefault("gated", {}).setdefault(str(sure), {})[family] = s_c
        lines.append(f"| head at least {sure:.2f} sure | " + " | ".join(cells) + f" | {wrong} |")
    for sure in (0.5, 0.7, 0.9):  # the head may only say "none" (reject), never name another meaning
        gate = H.Head({}, classes, "", sure=sure)
        cells, wrong = [], 0
        for family, its in by_family.items():
            pick = []
            for it in its:
                d = gate.decide(it["hybrid"], ranks["held_out"][it["name"]])
                pick.append((it["truth"], d if d == H.NONE else it["hybrid"]))
            s_c = score(pick)
            cells += [share(s_c["right"], s_c["commands"]), share(s_c["fa"], s_c["off"])]
            wrong += s_c["wrong"]
            summary.setdefault("veto", {}).setdefault(str(sure), {})[family] = s_c
        lines.append(f"| head rejects only, at least {sure:.2f} sure of none | " + " | ".join(cells) + f" | {wrong} |")
    cells, wrong = [], 0
    for family, its in by_family.items():
        s_h = score([(it["truth"], it["hybrid"]) for it in its])
        cells += [share(s_h["right"], s_h["commands"]), share(s_h["fa"], s_h["off"])]
        wrong += s_h["wrong"]
    lines.append("| hybrid alone | " + " | ".join(cells) + f" | {wrong} |")
    better = all(v["checked"]["right"] > v["hybrid"]["right"] and v["checked"]["fa"] <= v["hybrid"]["fa"]
                 for v in per_family.values())
    ms = sorted(head_ms)
    lines += ["", f"Head time per utterance (NumPy): {statistics.median(ms):.1f} ms median, "
                  f"{ms[int(0.95 * (len(ms) - 1))]:.1f} ms 95th percentile, over {len(ms)} runs; "
                  f"hybrid decode {statistics.median(it['ms'] for it in items):.0f} ms median when the cache was built.",
              f"Hybrid+head better than the hybrid alone on every held-out family: {'yes' if better else 'no'}."]
    body = "\n".join(lines)
    print(body)
    print(json.dumps(summary), file=sys.stderr)
    if args.ship:
        path = H.HEADS_DIR / f"{H.pack_hash(guide, phrases)}.npz"
        H.save(path, full.weights, classes, full.pack,
               {"families": list(T.FAMILIES), "clips": len(clips), "epochs": args.epochs, "use": better,
                "measured": summary})
        print(f"wrote {path} (use: {better})", file=sys.stderr)
    if args.record:
        from _common import record

        record("Content-trained check (issue 21)", body)


if __name__ == "__main__":
    main()
