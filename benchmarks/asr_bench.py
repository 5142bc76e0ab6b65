"""Recognition under noise: intent accuracy, false accepts and decode time, per voice and condition.

The corpus is synthesised here (nothing is downloaded): command phrasings the tests never use, spoken by
espeak-ng (two voices, two rates) and the Piper neural voice (two speeds), mixed with white noise and with
babble (unrelated speech summed) at several signal-to-noise ratios, plus off-topic utterances that must be
rejected. Each engine hears the same audio: hybrid (the default), the pocketsphinx grammar alone, Whisper
alone, and the plain SpeechRecognition ``recognize_sphinx`` (open vocabulary) as the baseline.
Usage: python benchmarks/asr_bench.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from voiceguide import audio as A  # noqa: E402
from voiceguide.asr import HybridRecognizer, SphinxOpenRecognizer  # noqa: E402
from voiceguide.content import load_guide  # noqa: E402
from voiceguide.intents import IntentParser  # noqa: E402
from voiceguide.protocols import Audio  # noqa: E402
from voiceguide.tts import get_engine, render  # noqa: E402

COMMANDS = [  # held out: not the phrasings in tests/test_asr.py
    ("go to the transplant section", "open", "transplant"), ("tell me about Idhifa", "open", "enasidenib"),
    ("open targeted drugs", "open", "targeted-therapy"), ("what is Mylotarg", "open", "gemtuzumab-ozogamicin"),
    ("tell me about FLAG", "open", "flag"), ("gilteritinib", "open", "gilteritinib"),
    ("what does refractory mean", "define", "refractory"), ("what is a mutation", "define", "mutation"),
    ("repeat that", "repeat", None), ("next section", "next", None), ("previous", "previous", None),
    ("tell me more", "more", None), ("skip", "skip", None), ("pause", "pause", None), ("continue", "resume", None),
    ("slow down", "slower", None), ("faster", "faster", None), ("number three", "number", "3"),
    ("goodbye", "stop", None), ("yes please", "yes", None),
]
OFF_TOPIC = ["turn the kitchen lights off", "what time does the game start", "I need to buy some bread",
             "send a message to my son", "how is the traffic this morning", "put on the radio",
             "it is raining again today", "where did I leave my glasses"]
BABBLE_TEXT = ["The train to the coast leaves at nine.", "My neighbour grows tomatoes in the summer.",
               "We walked along the river until it got dark.", "The shop on the corner sells fresh bread."]


def mix(clean: Audio, noise: np.ndarray, snr_db: float) -> Audio:
    x = np.frombuffer(A.resample(clean, 16000).pcm, "<i2").astype(np.float64)
    n = np.resize(noise, len(x))
    n = n * np.sqrt(np.mean(x ** 2) / max(np.mean(n ** 2), 1e-9) / 10 ** (snr_db / 10))
    return Audio(np.clip(x + n, -32768, 32767).astype("<i2").tobytes(), 16000)


def main() -> None:
    quick = "--quick" in sys.argv
    guide = load_guide()
    parser = IntentParser(guide)
    hybrid = HybridRecognizer(guide)
    engines = [("hybrid", hybrid), ("pocketsphinx grammar", hybrid.grammar), ("whisper tiny.en", hybrid.whisper),
               ("recognize_sphinx", SphinxOpenRecognizer(guide))]
    espeak, piper = get_engine("espeak"), get_engine("piper")
    voices = [("espeak en-us 175", espeak, "en-us", 175), ("espeak en-us+f3 140", espeak, "en-us+f3", 140),
              ("piper 165", piper, None, 165), ("piper 220", piper, None, 220)]
    if quick:
        voices = [voices[0], voices[2]]
    rng = np.random.default_rng(0)
    babble = sum(np.resize(np.frombuffer(A.resample(render(t, engine=piper if i % 2 else espeak), 16000).pcm, "<i2")
                           .astype(np.float64), 16000 * 6) for i, t in enumerate(BABBLE_TEXT))
    conditions = [("clean", None, None), ("white 20 dB", "white", 20), ("white 10 dB", "white", 10),
                  ("babble 10 dB", "babble", 10), ("white 5 dB", "white", 5), ("white 0 dB", "white", 0)]
    if quick:
        conditions = [conditions[0], conditions[2], conditions[3], conditions[5]]
    rows = ["| voice | condition | engine | intents right | false accepts | wrong answers | decode ms |",
            "|---|---|---|---|---|---|---|"]
    for vname, engine, voice, rate in voices:
        items = [(render(t, engine=engine, voice=voice, rate=rate, lexicon=guide.lexicon), (i, tg)) for t, i, tg in COMMANDS]
        items += [(render(t, engine=engine, voice=voice, rate=rate), ("none", None)) for t in OFF_TOPIC]
        for cname, kind, snr in conditions:
            heard = [(clean if kind is None else mix(clean, rng.normal(0, 1, 16000 * 8) if kind == "white" else babble, snr),
                      truth) for clean, truth in items]
            for label, rec in engines:
                if label == "recognize_sphinx" and cname not in ("clean", "white 10 dB"):
                    continue
                right = fa = wrong = 0
                t_total = 0.0
                for audio, truth in heard:
                    t0 = time.perf_counter()
                    said = rec.recognize(audio)
                    t_total += time.perf_counter() - t0
                    got = parser.parse(said.text) if said.text and said.kind == "command" else None
                    got = (got.intent, got.target) if got and got.intent != "none" else ("none", None)
                    if truth[0] == "none":
                        fa += got[0] != "none"
                    else:
                        right += got == truth
                        wrong += got not in (truth, ("none", None))
                rows.append(f"| {vname} | {cname} | {label} | {right / len(COMMANDS):.0%} | {fa / len(OFF_TOPIC):.0%} | "
                            f"{wrong} | {1000 * t_total / len(heard):.0f} |")
                print(rows[-1], flush=True)
    record("Speech recognition (intent accuracy under noise)",
           f"{len(COMMANDS)} held-out command phrasings and {len(OFF_TOPIC)} off-topic utterances per voice. "
           "Intents right = share of commands whose intent and target were right; false accepts = share of "
           "off-topic utterances given any intent; wrong answers = commands given another intent. Goals: >= 97% at 10 dB on the neural voice, >= 90% on espeak, "
           "false accepts <= 5%, decode < 50 ms.\n\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
