"""Calibrate the hybrid recogniser's N-best scores on the development corpus; report reliability.

Each utterance of the development corpus (benchmarks/asr_dev.py) goes through the hybrid
(``HybridRecognizer.evidence``): every meaning some engine read becomes one sample, its features
(``voiceguide.asr.FEATURES``) and whether it is what was said (off-topic speech: nothing is right).
A logistic regression (Platt scaling on the hybrid's margin features, L2-regularised, fitted by
Newton's method) maps features to P(right); it is written to voiceguide/asr_calibration.json.

The reliability curve is then measured on the top reading of each utterance (at each score bin: how
often the top reading is what was said) on the development corpus (fitted on: in-sample) and, with
``--held-out``, on the held-out benchmark's audio (benchmarks/asr_bench.py --quick's phrasings,
voices and noise, rendered the same way; never fitted on). With ``--record`` the tables go to
docs/benchmarks.md.

Usage: python benchmarks/calibration.py [--limit N] [--refit-only] [--held-out] [--record]
The engines' evidence is cached in benchmarks/corpus/calibration-*.json (git ignores corpus/), so
``--refit-only`` refits and reports without decoding again.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from voiceguide.asr import CALIBRATION_FILE, FEATURES, Calibration, HybridRecognizer  # noqa: E402
from voiceguide.content import load_guide  # noqa: E402
from voiceguide.intents import IntentParser  # noqa: E402

CACHE = HERE / "corpus"
BINS = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0001]
L2 = 1.0


def collect(hybrid: HybridRecognizer, items, parser: IntentParser) -> list[dict]:
    """One record per utterance: truth, the decision, and every candidate meaning with its features."""
    out = []
    for n, (audio, text, truth, voice, condition) in enumerate(items):
        t0 = time.perf_counter()
        ev = hybrid.evidence(audio)
        ms = 1000 * (time.perf_counter() - t0)
        got = parser.parse(ev.heard.text) if ev.heard.text and ev.heard.kind == "command" else None
        b = ev.before or ev.heard
        was = parser.parse(b.text) if b.text and b.kind == "command" else None
        out.append({"text": text, "truth": list(truth), "voice": voice, "condition": condition, "ms": ms,
                    "heard": ev.heard.text, "kind": ev.heard.kind, "transcript": ev.transcript.text,
                    "logprob": ev.transcript.logprob, "no_speech": ev.transcript.no_speech, "clear": ev.clear,
                    "extra": list(ev.extra),
                    "got": [got.intent, got.target] if got and got.intent != "none" else ["none", None],
                    "got_before": [was.intent, was.target] if was and was.intent != "none" else ["none", None],
                    "candidates": [{"meaning": list(m), "phrase": c["phrase"], "features": c["features"]}
                                   for m, c in ev.candidates(hybrid.gap).items()]})
        if n % 50 == 0:
            print(f"{n}/{len(items)}", file=sys.stderr, flush=True)
    return out


def fit(records: list[dict]) -> tuple[np.ndarray, float]:
    """Logistic regression of "this candidate is what was said" on its features."""
    X, y = [], []
    for r in records:
        for c in r["candidates"]:
            X.append(c["features"])
            y.append(1.0 if c["meaning"] == r["truth"] else 0.0)
    X = np.hstack([np.asarray(X), np.ones((len(X), 1))])
    y = np.asarray(y)
    w = np.zeros(X.shape[1])
    reg = np.eye(X.shape[1]) * L2
    reg[-1, -1] = 0.0  # the bias is not penalised
    for _ in range(50):
        p = 1 / (1 + np.exp(-X @ w))
        grad = X.T @ (p - y) + reg @ w
        hess = X.T @ (X * (p * (1 - p))[:, None]) + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[:-1], float(w[-1])


def tops(records: list[dict], cal: Calibration) -> list[tuple[float, bool, dict]]:
    """Each utterance's top reading: (score, right, record); utterances with no reading are left out."""
    out = []
    for r in records:
        if not r["candidates"]:
            continue
        scored = [(cal.score(c["features"]), c) for c in r["candidates"]]
        score, best = max(scored, key=lambda sc: sc[0])
        out.append((score, best["meaning"] == r["truth"], r))
    return out


def reliability(records: list[dict], cal: Calibration) -> str:
    rows = ["| top reading's score | utterances | commands | off-topic | top reading right | mean score |",
            "|---|---|---|---|---|---|"]
    top = tops(records, cal)
    for lo, hi in zip(BINS, BINS[1:]):
        inbin = [(s, ok, r) for s, ok, r in top if lo <= s < hi]
        if not inbin:
            rows.append(f"| {lo:.1f}-{min(hi, 1):.1f} | 0 | - | - | - | - |")
            continue
        commands = sum(r["truth"][0] != "none" for _, _, r in inbin)
        right = sum(ok for _, ok, _ in inbin)
        rows.append(f"| {lo:.1f}-{min(hi, 1):.1f} | {len(inbin)} | {commands} | {len(inbin) - commands} | "
                    f"{right}/{len(inbin)} ({right / len(inbin):.0%}) | {statistics.fmean(s for s, _, _ in inbin):.2f} |")
    brier = statistics.fmean((s - ok) ** 2 for s, ok, _ in top) if top else 0.0
    none = len(records) - len(top)
    rows.append(f"\n{len(top)} utterances with a reading ({none} with none); Brier score of the top reading {brier:.3f}.")
    return "\n".join(rows)


def before_after(records: list[dict]) -> str:
    """Step 5 of the hybrid (unexplained content words) on and off, from the same decodes: per condition,
    commands right, false accepts and wrong answers before (steps 1-4) and after."""
    rows = ["| condition | commands | right before | right after | off-topic | accepted before | accepted after | "
            "wrong before | wrong after |", "|---|---|---|---|---|---|---|---|---|"]
    for cond in [*dict.fromkeys(r["condition"] for r in records), None]:
        rs = [r for r in records if cond is None or r["condition"] == cond]
        cmd = [r for r in rs if r["truth"][0] != "none"]
        off = [r for r in rs if r["truth"][0] == "none"]
        cells = []
        for key in ("got_before", "got"):
            cells.append((sum(r.get(key, r["got"]) == r["truth"] for r in cmd),
                          sum(r.get(key, r["got"])[0] != "none" for r in off),
                          sum(r.get(key, r["got"]) != r["truth"] and r.get(key, r["got"])[0] != "none" for r in cmd)))
        (rb, fb, wb), (ra, fa, wa) = cells
        rows.append(f"| {cond or 'all'} | {len(cmd)} | {rb} | {ra} | {len(off)} | {fb} | {fa} | {wb} | {wa} |")
    changed = [r for r in records if r.get("got_before", r["got"]) != r["got"]]
    rows.append("\nChanged by step 5: " + ("; ".join(
        f"{r['text']!r} ({r['voice']}, {r['condition']}): {' '.join(x for x in r['got_before'] if x)} -> "
        f"{'open' if r['kind'] == 'open' else 'rejected'} (transcript {r['transcript']!r}, unexplained {r['extra']})"
        for r in changed) or "none"))
    return "\n".join(rows)


def decisions(records: list[dict]) -> str:
    """What the hybrid decided: commands right, false accepts, wrong; and open text passed on."""
    cmd = [r for r in records if r["truth"][0] != "none"]
    off = [r for r in records if r["truth"][0] == "none"]
    right = sum(r["got"] == r["truth"] for r in cmd)
    wrong = sum(r["got"] != r["truth"] and r["got"][0] != "none" for r in cmd)
    fa = sum(r["got"][0] != "none" for r in off)
    open_cmd = sum(r["kind"] == "open" for r in cmd)
    open_off = sum(r["kind"] == "open" for r in off)
    ms = [r["ms"] for r in records]
    return (f"commands right {right}/{len(cmd)} ({right / max(len(cmd), 1):.0%}), false accepts {fa}/{len(off)} "
            f"({fa / max(len(off), 1):.0%}), wrong answers {wrong}; passed on as open text: {open_off} of {len(off)} "
            f"off-topic phrases, {open_cmd} of {len(cmd)} commands (missed as commands); "
            f"decode {statistics.median(ms):.0f} ms median, {statistics.fmean(ms):.0f} ms mean")


def group_table(records: list[dict]) -> str:
    """The hybrid's decisions per voice and condition, as asr_bench.py's table gives them."""
    rows = ["| voice | condition | intents right | false accepts | wrong answers | open text (off-topic) | decode ms |",
            "|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["voice"], r["condition"]) for r in records))
    for voice, condition in keys:
        rs = [r for r in records if (r["voice"], r["condition"]) == (voice, condition)]
        cmd = [r for r in rs if r["truth"][0] != "none"]
        off = [r for r in rs if r["truth"][0] == "none"]
        right = sum(r["got"] == r["truth"] for r in cmd)
        wrong = sum(r["got"] != r["truth"] and r["got"][0] != "none" for r in cmd)
        fa = sum(r["got"][0] != "none" for r in off)
        rows.append(f"| {voice} | {condition} | {right / len(cmd):.0%} | {fa / len(off):.0%} | {wrong} | "
                    f"{sum(r['kind'] == 'open' for r in off)}/{len(off)} | {statistics.fmean(r['ms'] for r in rs):.0f} |")
    return "\n".join(rows)


def dev_items():
    from asr_dev import load_corpus

    return [(it.audio, it.text, (it.intent, it.target), it.voice, it.condition) for it in load_corpus()]


def held_out_items(guide):
    """The held-out benchmark's quick set (its phrasings, voices and noise), rendered as asr_bench.py does."""
    from asr_bench import BABBLE_TEXT, COMMANDS, OFF_TOPIC, mix

    from voiceguide import audio as A
    from voiceguide.tts import get_engine, render

    espeak, piper = get_engine("espeak"), get_engine("piper")
    voices = [("espeak en-us 175", espeak, "en-us", 175), ("piper 165", piper, None, 165)]
    rng = np.random.default_rng(0)
    babble = sum(np.resize(np.frombuffer(A.resample(render(t, engine=piper if i % 2 else espeak), 16000).pcm, "<i2")
                           .astype(np.float64), 16000 * 6) for i, t in enumerate(BABBLE_TEXT))
    conditions = [("clean", None, None), ("white 10 dB", "white", 10), ("babble 10 dB", "babble", 10),
                  ("white 0 dB", "white", 0)]
    items = []
    for vname, engine, voice, rate in voices:
        clean = [(render(t, engine=engine, voice=voice, rate=rate, lexicon=guide.lexicon), t, (i, tg)) for t, i, tg in COMMANDS]
        clean += [(render(t, engine=engine, voice=voice, rate=rate), t, ("none", None)) for t in OFF_TOPIC]
        for cname, kind, snr in conditions:
            for audio, text, truth in clean:
                noisy = audio if kind is None else mix(audio, rng.normal(0, 1, 16000 * 8) if kind == "white" else babble, snr)
                items.append((noisy, text, truth, vname, cname))
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refit-only", action="store_true", help="use the cached evidence")
    ap.add_argument("--held-out", action="store_true", help="also measure reliability on the held-out benchmark")
    ap.add_argument("--record", action="store_true", help="write the tables to docs/benchmarks.md")
    ap.add_argument("--limit", type=int, metavar="N", help="use N utterances of the development corpus, drawn at random (seeded)")
    args = ap.parse_args()
    guide = load_guide()
    parser = IntentParser(guide)
    dev_cache, held_cache = CACHE / "calibration-dev.json", CACHE / "calibration-heldout-hybrid.json"
    if args.refit_only and dev_cache.is_file():
        dev = json.loads(dev_cache.read_text(encoding="utf-8"))
    else:
        items = dev_items()
        if args.limit is not None and args.limit < len(items):
            keep = set(random.Random(0).sample(range(len(items)), args.limit))
            items = [it for i, it in enumerate(items) if i in keep]
        dev = collect(HybridRecognizer(guide), items, parser)
        CACHE.mkdir(exist_ok=True)
        dev_cache.write_text(json.dumps(dev), encoding="utf-8")
    weights, bias = fit(dev)
    CALIBRATION_FILE.write_text(json.dumps({
        "features": list(FEATURES), "weights": [round(float(w), 4) for w in weights], "bias": round(bias, 4),
        "fitted_on": f"benchmarks/asr_dev.py, {len(dev)} utterances (benchmarks/calibration.py)"}, indent=1) + "\n",
        encoding="utf-8")
    cal = Calibration.load()
    print("weights:", dict(zip(FEATURES, cal.weights)), "bias", cal.bias)
    body = [f"Development corpus (fitted on it: in-sample), {len(dev)} utterances: " + decisions(dev), "",
            before_after(dev), "", reliability(dev, cal)]
    if args.held_out:
        if args.refit_only and held_cache.is_file():
            held = json.loads(held_cache.read_text(encoding="utf-8"))
        else:
            held = collect(HybridRecognizer(guide), held_out_items(guide), parser)
            held_cache.write_text(json.dumps(held), encoding="utf-8")
        body += ["", "Held-out benchmark audio (`asr_bench.py --quick`'s phrasings, voices and noise: espeak en-us 175 "
                     "and Piper 165; clean, white 10 dB, babble 10 dB, white 0 dB; never fitted on), "
                     f"{len(held)} utterances: " + decisions(held), "", before_after(held), "", group_table(held), "",
                 reliability(held, cal)]
    text = "\n".join(body)
    print(text)
    if args.record:
        from _common import record

        record("Recognition confidence: N-best calibration",
               "`voiceguide recognize --json` gives each utterance an N-best list, one reading per meaning, each "
               "with a score calibrated by `benchmarks/calibration.py` (logistic regression on the hybrid's "
               "features, fitted on the development corpus). Reliability of the top reading: at each score, how "
               "often it was what was said (off-topic speech: never).\n\n" + text)


if __name__ == "__main__":
    main()
