"""Train the content-trained check on the Whisper encoder (issue 21): ``voiceguide train-recognizer``.

For one content pack, every meaning the guide's spoken grammar can express (each section and term
name after each carrier, every command phrasing, the menu numbers: :func:`voiceguide.asr.guide_phrases`)
is one class, plus ``none`` for near-miss negatives (the guide's carrier phrases around everyday
nouns, everyday household talk). Phrasings are drawn from each meaning's list and rendered by three
*voice families* of synthetic voices:

- ``espeak``: espeak-ng with random variants (m1-m7, f1-f5, klatt, ...), rate and pitch;
- ``flite``: Debian's flite voices (kal, kal16, awb, rms, slt), random duration stretch and pitch;
- ``piper``: the Piper voice, random length, noise and noise-width scales;

each mixed (or not) with white, pink, brown or babble noise at -2 to 30 dB SNR. The audio goes
through exactly the hybrid's encoder path (trim, 2 s of silence after it, faster-whisper's
tiny.en encoder: :meth:`voiceguide.asr.WhisperRecognizer._encode`), and the encoder frames of the
speech (:func:`voiceguide.recognizer_head.speech_frames`) are cached on disk by the clip's
description, so a re-run only trains. The head (:mod:`voiceguide.recognizer_head`) is trained with
torch (a training-only dependency: ``pip install 'voiceguide[train]'``) and saved as ``.npz`` under
the user cache folder, named by the pack's hash; inference needs NumPy only.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import audio as A
from . import recognizer_head as H
from .content import Guide, load_guide
from .errors import EngineUnavailable, VoiceGuideError
from .protocols import Audio

__all__ = ["FAMILIES", "Clip", "Encoder", "plan", "negatives", "render_clip", "encode_clips", "train", "train_for_guide",
           "register"]

FAMILIES = ("espeak", "flite", "piper")
"""The voice families; the standing figure leaves one out of training and tests on it."""

ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt4", "Andy", "Annie", "Denis", "Michael", "Steph", "Zac", "Gene", "Alex", "Lee", "grandma",
                   "croak", "Robert", "Edward")
FLITE_VOICES = {"kal": 100.0, "kal16": 100.0, "awb": 110.0, "rms": 100.0, "slt": 170.0}
"""flite voice -> a typical mean pitch (Hz), scaled at random per clip."""

#: everyday nouns put after the guide's carriers: near-miss negatives ("tell me about the weather")
EVERYDAY = """
the weather|the news|the football|my glasses|the car|dinner|the kitchen|the garden|the bus|the traffic|my phone|
the television|the cat|the dog|the shopping|the post office|the bank|the weekend|the holidays|the neighbours|
the pharmacy opening hours|the recipe|the crossword|the bins|the heating|the washing machine|the grandchildren|
the hairdresser|the train times|a cup of tea|the newspaper|the garden centre|the church|the library|the park|
the birthday cake|my sister|the plumber|the taxi|the remote|the lottery|the knitting|the film|the radio show
""".replace("\n", "").split("|")
#: carriers for the negatives: the grammar's own and the intent parser's
NEGATIVE_CARRIERS = ("tell me about", "go to", "take me to", "open", "what about", "how about", "what is",
                     "what's", "i want to hear about", "read", "explain", "more about", "let's hear about",
                     "what are", "information on", "turn on", "turn off", "where is", "where are", "play")
#: household talk that is not for the guide (none of the benchmark's or the development corpus's phrases)
OFF_TOPIC = (
    "put the kettle on would you", "has the post come yet", "I think it might rain later", "did you feed the cat",
    "can you hear the doorbell", "the car needs petrol", "shall we have soup for lunch", "turn the heating down",
    "where did you put the remote", "I'm going upstairs for a bit", "your sister phoned this morning",
    "what's on the telly tonight", "the bins go out on Thursday", "pass me the newspaper", "I'll make us a sandwich",
    "mind the step", "the tap is dripping again", "have you seen my slippers", "it's cold in here",
    "we're out of biscuits", "the bus is late", "what day is the appointment", "let's go for a walk later",
    "is it still raining", "my back is aching today", "lovely weather for the time of year",
    "the match starts at three", "can you open the curtains", "who was that at the door", "I need a new battery",
    "switch the lamp on", "the plants need watering", "how was your day", "don't forget your coat",
    "thank you love", "what a lovely photo", "the washing is done", "where are the scissors",
    "next door's dog keeps barking", "I'll ring the surgery tomorrow", "is there any milk left",
    "the film was too long", "play some music", "what's the score", "let me find my reading glasses",
    "more tea anyone", "back in five minutes", "go and ask your father", "number plates are hard to read",
    "the second one on the left",
)
#: sentences for the babble noise (none of the benchmark's or development corpus's babble)
BABBLE_SENTENCES = (
    "The children played by the lake until supper time.", "Prices at the market went up again this week.",
    "He fixed the old bicycle with a borrowed spanner.", "They booked a cottage in the hills for August.",
    "The library closes early on a Saturday.", "She has been learning the piano since the spring.",
    "A strong wind blew the leaves across the road.", "The new cafe does a very good breakfast.",
)


@dataclass(frozen=True)
class Clip:
    """One training utterance: what is said, by which voice, in which noise (its features are cached by this)."""

    text: str
    label: str
    """The class name (:func:`voiceguide.recognizer_head.class_name`), ``none`` for negatives."""
    family: str
    voice: str
    """espeak variant, flite voice, or "" for Piper."""
    speed: float
    """espeak words a minute; flite duration stretch; Piper length scale."""
    pitch: float
    """espeak pitch (0-99); flite mean pitch in Hz; Piper noise scale."""
    noise: str
    """"clean", "white", "pink", "brown" or "babble"."""
    snr: float
    seed: int

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "label": None, "encoder": H.ENCODER, "crop": H.CROP_VERSION},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


# ---------------------------------------------------------------------- what to say


def negatives(guide: Guide, parser=None) -> list[str]:
    """Near-miss negatives: carrier + everyday noun, and everyday talk, each meaning nothing to the guide."""
    from .intents import IntentParser

    parser = parser or IntentParser(guide)
    said = [f"{c} {n}" for c in NEGATIVE_CARRIERS for n in EVERYDAY] + list(OFF_TOPIC)
    return [t for t in dict.fromkeys(said) if parser.parse(t).intent == "none"]


def plan(guide: Guide, *, per_meaning: int = 8, negatives_per_family: int = 150,
         families: Sequence[str] = FAMILIES, seed: int = 0, phrases: dict | None = None) -> list[Clip]:
    """The clips to render: per family, ``per_meaning`` phrasings of every meaning (drawn without
    repeats while they last), and ``negatives_per_family`` near-miss negatives; random voices and noise."""
    phrases = phrases if phrases is not None else H.meaning_phrases(guide)
    negs = negatives(guide)
    rng = random.Random(seed)
    clips: list[Clip] = []
    for family in families:
        for label in sorted(phrases):
            choices = sorted(phrases[label])
            rng.shuffle(choices)
            for i in range(per_meaning):
                clips.append(_clip(rng, choices[i % len(choices)], label, family))
        pool = list(negs)
        rng.shuffle(pool)
        for i in range(negatives_per_family):
            clips.append(_clip(rng, pool[i % len(pool)], H.NONE, family))
    return clips


def _clip(rng: random.Random, text: str, label: str, family: str) -> Clip:
    if family == "espeak":
        voice, speed, pitch = rng.choice(ESPEAK_VARIANTS), float(rng.randint(120, 220)), float(rng.randint(20, 80))
    elif family == "flite":
        voice = rng.choice(sorted(FLITE_VOICES))
        speed, pitch = round(rng.uniform(0.75, 1.35), 3), round(FLITE_VOICES[voice] * rng.uniform(0.8, 1.25), 1)
    elif family == "piper":
        voice, speed, pitch = "", round(rng.uniform(0.75, 1.35), 3), round(rng.uniform(0.3, 0.9), 3)
    else:
        raise VoiceGuideError(f"unknown voice family {family!r}: choose from {', '.join(FAMILIES)}")
    noise = "clean" if rng.random() < 0.25 else rng.choice(("white", "pink", "brown", "babble", "babble"))
    snr = 0.0 if noise == "clean" else round(rng.uniform(-2, 30), 1)
    return Clip(text, label, family, voice, speed, pitch, noise, snr, rng.randrange(1 << 30))


# ---------------------------------------------------------------------- voices and noise


class Voices:
    """The three families' synthesisers, built on first use; each renders 16 kHz audio."""

    def __init__(self, lexicon=()):
        self.lexicon = tuple(lexicon)
        self._piper = None
        self._babble: np.ndarray | None = None

    def say(self, text: str) -> str:
        from .pronounce import apply

        return apply(text, self.lexicon)

    def render(self, clip: Clip) -> Audio:
        text = self.say(clip.text)
        if clip.family == "espeak":
            exe = shutil.which("espeak-ng") or shutil.which("espeak")
            if not exe:
                raise EngineUnavailable("espeak-ng is not installed (apt-get install espeak-ng)")
            voice = "en-us" + (f"+{clip.voice}" if clip.voice else "")
            out = subprocess.run([exe, "--stdout", "-v", voice, "-s", str(int(clip.speed)), "-p", str(int(clip.pitch)),
                                  "--", text], capture_output=True, timeout=60)
            if out.returncode != 0 or not out.stdout:
                raise EngineUnavailable(f"espeak-ng failed on voice {voice}")
            audio = A.parse_wav(A._fix_streamed_header(out.stdout), "espeak-ng output")
        elif clip.family == "flite":
            exe = shutil.which("flite")
            if not exe:
                raise EngineUnavailable("flite is not installed (Debian: apt-get install flite)")
            with tempfile.TemporaryDirectory(prefix="voiceguide-flite-") as tmp:
                wav = Path(tmp) / "out.wav"
                out = subprocess.run([exe, "-voice", clip.voice, "--setf", f"duration_stretch={clip.speed}",
                                      "--setf", f"int_f0_target_mean={clip.pitch}", "-t", text, "-o", str(wav)],
                                     capture_output=True, timeout=60)
                if out.returncode != 0 or not wav.is_file():
                    raise EngineUnavailable(f"flite failed on voice {clip.voice}")
                audio = A.read_wav(wav)
        elif clip.family == "piper":
            from piper import SynthesisConfig

            if self._piper is None:
                from .tts import PiperEngine

                self._piper = PiperEngine()
            cfg = SynthesisConfig(length_scale=clip.speed, noise_scale=clip.pitch, noise_w_scale=clip.pitch)
            with self._piper._lock:
                pcm = b"".join(c.audio_int16_bytes for c in self._piper.voice.synthesize(text, syn_config=cfg))
            audio = Audio(pcm, self._piper.sample_rate)
        else:
            raise VoiceGuideError(f"unknown voice family {clip.family!r}")
        return A.resample(audio, H.RATE)

    def babble(self) -> np.ndarray:
        """Six seconds of several voices talking at once (espeak and flite, as installed)."""
        if self._babble is None:
            tracks = []
            for i, text in enumerate(BABBLE_SENTENCES):
                family = ("espeak", "flite")[i % 2] if shutil.which("flite") else "espeak"
                voice = ("m3", "f2", "klatt", "Steph")[i % 4] if family == "espeak" else ("slt", "rms", "awb", "kal16")[i % 4]
                clip = Clip(text, H.NONE, family, voice, 165.0 if family == "espeak" else 1.0,
                            50.0 if family == "espeak" else FLITE_VOICES[voice], "clean", 0.0, i)
                x = A.samples(self.render(clip)).astype(np.float64)
                tracks.append(np.roll(np.resize(x, H.RATE * 6), i * 4000))
            self._babble = np.sum(tracks, axis=0)
        return self._babble


def noise(kind: str, n: int, rng: np.random.Generator, babble: Callable[[], np.ndarray]) -> np.ndarray:
    """``n`` samples of white, pink (1/f), brown (1/f^2) or babble noise, any level."""
    if kind == "babble":
        b = babble()
        start = int(rng.integers(0, len(b)))
        return np.resize(np.roll(b, -start), n)
    white = rng.normal(0, 1, n)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum /= np.sqrt(f) if kind == "pink" else f
    return np.fft.irfft(spectrum, n)


def mix(clean: Audio, kind: str, snr: float, rng: np.random.Generator, babble) -> Audio:
    """``clean`` (16 kHz) with ``kind`` noise at ``snr`` dB, and a little dither (synthetic voices are exactly silent)."""
    x = A.samples(clean).astype(np.float64)
    if kind != "clean":
        n = noise(kind, len(x), rng, babble)
        x = x + n * np.sqrt(np.mean(x ** 2) / max(np.mean(n ** 2), 1e-9) / 10 ** (snr / 10))
    x = x + rng.normal(0, 1.0, len(x))
    return Audio(np.clip(x, -32768, 32767).astype("<i2").tobytes(), clean.sample_rate)


# ---------------------------------------------------------------------- features


class Encoder:
    """The hybrid's encoder path: trim, 2 s of silence after the phrase, tiny.en's encoder
    (:meth:`voiceguide.asr.WhisperRecognizer._encode`); :meth:`frames` gives the head's input."""

    def __init__(self, guide: Guide | None = None):
        from .asr_whisper import WhisperRecognizer

        self.whisper = WhisperRecognizer(guide if guide is not None else load_guide())

    def frames(self, audio: Audio) -> np.ndarray:
        from .asr_base import _trim

        a = _trim(A.resample(audio, H.RATE))
        x = np.concatenate([A.samples(a).astype(np.float32) / 32768,
                            np.zeros(int(self.whisper.pad * H.RATE), np.float32)])
        encoded, frames = self.whisper._encode(x)
        return H.speech_frames(encoded, frames)


def feature_dir() -> Path:
    return H.cache_dir() / "features"


def encode_clips(clips: Sequence[Clip], *, encoder=None, voices: Voices | None = None, guide: Guide | None = None,
                 log: Callable[[str], None] = lambda s: None) -> list[np.ndarray]:
    """The encoder frames of every clip (float16, frames x 384), from the cache or rendered and encoded now."""
    folder = feature_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out: list[np.ndarray | None] = []
    todo = []
    for i, clip in enumerate(clips):
        path = folder / f"{clip.key()}.npy"
        try:
            out.append(np.load(path))
            continue
        except (OSError, ValueError):
            out.append(None)
            todo.append(i)
    if todo:
        encoder = encoder or Encoder(guide)
        voices = voices or Voices(guide.lexicon if guide else ())
        t0 = time.perf_counter()
        for n, i in enumerate(todo):
            clip = clips[i]
            rng = np.random.default_rng(clip.seed)
            audio = mix(voices.render(clip), clip.noise, clip.snr, rng, voices.babble)
            feats = encoder.frames(audio).astype(np.float16)
            path = folder / f"{clip.key()}.npy"
            tmp = path.with_suffix(".part.npy")
            np.save(tmp, feats)
            tmp.replace(path)
            out[i] = feats
            if (n + 1) % 100 == 0 or n + 1 == len(todo):
                rate = (n + 1) / (time.perf_counter() - t0)
                log(f"encoded {n + 1}/{len(todo)} new clips ({rate:.1f} clips/s; {len(clips) - len(todo)} cached)")
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------------- training


def train(features: Sequence[np.ndarray], labels: Sequence[str], classes: Sequence[str], *, epochs: int = 20,
          seed: int = 0, width: int = H.WIDTH, project: int = H.PROJECT, log: Callable[[str], None] = lambda s: None,
          max_seconds: float | None = None) -> dict[str, np.ndarray]:
    """Train the head (torch) and return its weights as NumPy arrays (:class:`voiceguide.recognizer_head.Head`).

    The first layer (a 1x1 convolution, 384 to ``project`` channels) is the principal components of
    the training frames, whitened, and fixed: it is computed once with NumPy, so torch trains only
    the two convolutions, the attention pooling and the dense layer, on frames a quarter the width
    (on the shared 2-core machine, training time is the cost)."""
    try:
        import torch
        from torch import nn
    except ImportError:
        raise VoiceGuideError("training needs torch, a training-only dependency: "
                              "pip install 'voiceguide[train]' (torch==2.13.0, CPU)") from None
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    pooled = [H.pool(np.asarray(f, dtype=np.float32)) for f in features]
    allf = np.concatenate(pooled)
    mean, std = allf.mean(0), allf.std(0) + 1e-3
    z = (allf - mean) / std
    vals, vecs = np.linalg.eigh(np.cov(z[:: max(1, len(z) // 20000)].T))
    order = np.argsort(vals)[::-1][:project]
    w0 = (vecs[:, order] / np.sqrt(vals[order] + 1e-3)).astype(np.float32)  # whitened components
    b0 = np.zeros(project, np.float32)
    xs = [((p - mean) / std @ w0).astype(np.float32) for p in pooled]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv1d(project, width, 5, padding=2)
            self.c2 = nn.Conv1d(width, width, 3, padding=1)
            self.att = nn.Linear(width, 1)
            self.out = nn.Linear(width, len(classes))
            self.drop = nn.Dropout(0.2)

        def forward(self, x, mask):  # x: B, C, T; mask: B, T
            h = torch.relu(self.c1(self.drop(x)))
            h = torch.relu(self.c2(h)) + h
            h = h.transpose(1, 2)  # B, T, C
            a = self.att(h).squeeze(-1).masked_fill(~mask, -1e9)
            w = torch.softmax(a, dim=1).unsqueeze(-1)
            return self.out(self.drop((h * w).sum(1)))

    net = Net()
    batch = 64
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=epochs * ((len(xs) + batch - 1) // batch) + 1)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(xs))
        total, right = 0.0, 0
        for b in range(0, len(order), batch):
            idx = order[b:b + batch]
            items = [_augment(xs[i], rng) for i in idx]
            T = max(len(x) for x in items)
            xb = np.zeros((len(items), project, T), np.float32)
            mb = np.zeros((len(items), T), bool)
            for j, x in enumerate(items):
                xb[j, :, :len(x)] = x.T
                mb[j, :len(x)] = True
            logits = net(torch.from_numpy(xb), torch.from_numpy(mb))
            loss = nn.functional.cross_entropy(logits, torch.from_numpy(y[idx]), label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            right += int((logits.argmax(1).numpy() == y[idx]).sum())
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(xs):.3f}, training accuracy {right / len(xs):.1%} "
            f"({time.perf_counter() - t0:.0f} s)")
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            log(f"stopped after {epoch + 1} epochs: the time limit of {max_seconds:.0f} s")
            break
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "w0": w0, "b0": b0,
            "w1": sd["c1.weight"], "b1": sd["c1.bias"], "w2": sd["c2.weight"], "b2": sd["c2.bias"],
            "wa": sd["att.weight"][0], "ba": sd["att.bias"], "wo": sd["out.weight"].T.copy(), "bo": sd["out.bias"]}


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of a frame or two at either end, and a little feature noise."""
    a, b = int(rng.integers(0, 2)), len(x) - int(rng.integers(0, 2))
    x = x[a:b] if b - a >= 3 else x
    return x + rng.normal(0, 0.2, x.shape).astype(np.float32)


def train_for_guide(guide: Guide, *, per_meaning: int = 8, negatives_per_family: int = 150, epochs: int = 20,
                    families: Sequence[str] = FAMILIES, out: Path | None = None, seed: int = 0,
                    max_seconds: float | None = None, log: Callable[[str], None] = print) -> Path:
    """Plan, render, encode (cached), train and save the head for ``guide``; returns the .npz path."""
    phrases = H.meaning_phrases(guide)
    classes = [*sorted(phrases), H.NONE]
    clips = plan(guide, per_meaning=per_meaning, negatives_per_family=negatives_per_family, families=families,
                 seed=seed, phrases=phrases)
    log(f"{len(classes)} classes ({len(classes) - 1} meanings and none), {len(clips)} clips, "
        f"families {', '.join(families)}")
    feats = encode_clips(clips, guide=guide, log=log)
    weights = train(feats, [c.label for c in clips], classes, epochs=epochs, seed=seed, log=log, max_seconds=max_seconds)
    path = out or H.cache_dir() / f"{H.pack_hash(guide)}.npz"
    H.save(path, weights, classes, H.pack_hash(guide),
           {"families": list(families), "clips": len(clips), "per_meaning": per_meaning, "epochs": epochs,
            "negatives_per_family": negatives_per_family, "seed": seed})
    log(f"saved {path}")
    return path


# ---------------------------------------------------------------------- command


def register(sub, formatter) -> None:
    p = sub.add_parser("train-recognizer", help="train the content pack's check on the speech recogniser",
                       description="Render every meaning of the content pack (section and term names, aliases, "
                                   "commands, numbers) and near-miss negatives in many synthetic voices (espeak-ng, "
                                   "flite, Piper) and noises, and train a small check on the Whisper encoder's "
                                   "frames. Needs torch (pip install 'voiceguide[train]'). The head is saved in "
                                   "the user cache folder, named by the pack's hash; encoder frames are cached, "
                                   "so a second run only trains.", formatter_class=formatter)
    p.add_argument("--content", metavar="DIR", help="content pack folder (default: the shipped guide)")
    p.add_argument("--per-meaning", type=int, default=8, metavar="N", help="clips of each meaning per voice family")
    p.add_argument("--negatives", type=int, default=150, metavar="N", help="near-miss negatives per voice family")
    p.add_argument("--epochs", type=int, default=20, metavar="N", help="training passes over the clips")
    p.add_argument("--families", default=",".join(FAMILIES), metavar="LIST",
                   help="voice families to render, comma-separated, from: " + ", ".join(FAMILIES))
    p.add_argument("--out", metavar="FILE", help="where to write the head (.npz; default: the user cache folder)")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    for name, value in (("--per-meaning", args.per_meaning), ("--epochs", args.epochs)):
        if value < 1:
            raise VoiceGuideError(f"{name} must be at least 1")
    if args.negatives < 0:
        raise VoiceGuideError("--negatives must be 0 or more")
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise VoiceGuideError(f"unknown voice family {', '.join(unknown) or '(none)'}: choose from {', '.join(FAMILIES)}")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise VoiceGuideError("train-recognizer needs torch, a training-only dependency: "
                              "pip install 'voiceguide[train]' (torch==2.13.0, CPU)") from None
    guide = load_guide(args.content)
    train_for_guide(guide, per_meaning=args.per_meaning, negatives_per_family=args.negatives, epochs=args.epochs,
                    families=families, out=Path(args.out) if args.out else None,
                    log=lambda line: print(line, file=sys.stderr, flush=True))
    return 0
