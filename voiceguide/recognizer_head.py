"""A content-trained check on the hybrid recogniser's answer, over the Whisper encoder's frames (issue 21).

A small classifier head (a 1x1 convolution to 96 channels, fixed at the training frames' whitened
principal components; two small convolutions, 5 and 3 frames wide, 128 channels, the second with a
residual; attention pooling; a dense layer; about 0.16 M parameters) reads the tiny.en encoder frames that the hybrid computes
anyway (:class:`voiceguide.asr.Transcript`'s ``encoded``), and gives a probability to each meaning
of the content pack plus ``none``. It checks the hybrid's answer: the hybrid's reading stands when
its meaning is among the head's :attr:`Head.top` best; otherwise the head's best is taken (a
command, or nothing heard when it is ``none``).

Heads are trained per content pack (``voiceguide train-recognizer``, :mod:`voiceguide.train_recognizer`,
with torch) and stored as ``.npz``, named by :func:`pack_hash` (the pack's speakable phrasings and
their meanings): the bundled pack's head ships in ``voiceguide/heads/``, others are looked for in
the user cache folder. Inference is NumPy only; nothing is trained or downloaded at run time. No
head for the pack, or a head that cannot be read: the hybrid alone, said once in one line.

Whether the hybrid uses the head is decided by measurement (``benchmarks/head_bench.py``:
leave-one-voice-family-out accuracy against the hybrid alone): a head is only used when its file
says it measured better (``use`` in its metadata), or when ``VOICEGUIDE_HEAD=1`` forces it on
(benchmarks); ``VOICEGUIDE_HEAD=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .content import Guide
from .grammar import CARRIERS, NOT_SPOKEN, NUMBER_CARRIERS, spoken_number
from .intents import COMMAND_PHRASES, IntentParser
from .protocols import Heard

__all__ = ["Head", "for_guide", "load", "save", "pack_hash", "meaning_phrases", "class_name", "speech_frames",
           "pool", "NONE", "HEADS_DIR"]

RATE = 16000
DIM = 384
"""Width of tiny.en's encoder frames."""
WIDTH = 128
"""Channels of the head's convolutions."""
PROJECT = 96
"""Channels of its first (1x1, fixed: whitened principal components) layer."""
NONE = "none"
ENCODER = "whisper-tiny.en-ct2-int8-pad2"
"""What the frames are: the packaged tiny.en (CTranslate2, int8), phrase trimmed, 2 s of silence after it."""
CROP_VERSION = 1
PAD_FRAMES = 200
"""Mel frames of the 2 s of silence the hybrid puts after a phrase (100 a second)."""
TAIL = 10
"""Encoder frames kept after the end of the speech (0.2 s)."""
FORMAT = 1
HEADS_DIR = Path(__file__).with_name("heads")


def cache_dir() -> Path:
    """Where trained heads and cached encoder frames live (the user cache folder)."""
    env = os.environ.get("VOICEGUIDE_HEAD_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("voiceguide")) / "recognizer-head"


def class_name(meaning: tuple[str, str | None] | None) -> str:
    """``open:gilteritinib``, ``number:3``, ``pause``; ``none`` for no meaning."""
    if meaning is None or meaning[0] == "none":
        return NONE
    return f"{meaning[0]}:{meaning[1]}" if meaning[1] is not None else meaning[0]


def meaning_phrases(guide: Guide, parser: IntentParser | None = None) -> dict[str, list[str]]:
    """Every phrasing the spoken grammar spells out, grouped by meaning (class name): the same phrases
    as :func:`voiceguide.asr.guide_phrases` (each name alone, after each carrier, "what does ... mean",
    every spoken command phrasing, each menu number alone and after "number", "option" and the like)."""
    parser = parser or IntentParser(guide)
    said = set()
    for name in guide.names():
        said.update([name, f"what does {name} mean", *(f"{c} {name}" for c in CARRIERS)])
    for phrasings in COMMAND_PHRASES.values():
        said.update(p for p in phrasings if p not in NOT_SPOKEN)
    for n in range(1, 13):
        number = spoken_number(n)
        said.update([number, *(f"{c} {number}" for c in NUMBER_CARRIERS)])
    out: dict[str, list[str]] = {}
    for phrase in sorted(said):
        intent = parser.parse(phrase)
        if intent.intent != "none":
            out.setdefault(class_name((intent.intent, intent.target)), []).append(phrase)
    return out


def pack_hash(guide: Guide, phrases: dict[str, list[str]] | None = None) -> str:
    """What a head depends on: the pack's phrasings and their meanings, and the encoder's frames."""
    phrases = phrases if phrases is not None else meaning_phrases(guide)
    blob = json.dumps({"phrases": {k: sorted(v) for k, v in sorted(phrases.items())}, "encoder": ENCODER,
                       "crop": CROP_VERSION, "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def speech_frames(encoded: Any, frames: int) -> np.ndarray:
    """The encoder frames of the phrase itself and :data:`TAIL` after it (frames x 384, float32), from
    the encoder's output for the trimmed phrase plus 2 s of silence (``frames``: mel frames read)."""
    x = np.asarray(encoded, dtype=np.float32)
    if x.ndim == 3:
        x = x[0]
    keep = max(1, (int(frames) - PAD_FRAMES) // 2) + TAIL
    return x[: min(len(x), keep)]


def pool(x: np.ndarray) -> np.ndarray:
    """Mean of each two frames (50 to 25 a second): half the work, the same words."""
    n = len(x) // 2 * 2
    if n == 0:
        return x.astype(np.float32)
    out = x[:n].reshape(n // 2, 2, -1).mean(1)
    return np.concatenate([out, x[n:]]).astype(np.float32) if len(x) % 2 else out.astype(np.float32)


def _conv(h: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1-D convolution with 'same' padding, as torch's Conv1d: h (T, Cin), w (Cout, Cin, k)."""
    k = w.shape[2]
    p = k // 2
    hp = np.pad(h, ((p, p), (0, 0)))
    cols = np.stack([hp[i:i + len(h)] for i in range(k)], axis=2)
    return cols.reshape(len(h), -1) @ w.reshape(w.shape[0], -1).T + b


_KEYS = ("mean", "std", "w0", "b0", "w1", "b1", "w2", "b2", "wa", "ba", "wo", "bo")


class HeadError(ValueError):
    """A head file that cannot be used (missing, corrupt, for another pack)."""


@dataclass
class Head:
    """A trained head: weights, its classes, and which pack it was trained for."""

    weights: dict[str, np.ndarray]
    classes: list[str]
    pack: str
    """The :func:`pack_hash` it was trained for."""
    meta: dict = field(default_factory=dict)
    parser: IntentParser | None = None
    phrase_of: dict[str, str] = field(default_factory=dict)
    """Class -> a phrase with that meaning (the shortest), to hand back when the head's reading wins."""
    top: int = 3
    """The hybrid's reading stands when its meaning is among this many of the head's best."""
    sure: float = 0.0
    """...and otherwise too, unless the head's best has at least this probability (0: the head's best
    always replaces it, issue 21's rule; head_bench measures others)."""
    last_ms: float = 0.0
    """How long the last :meth:`probs` took (milliseconds)."""

    def attach(self, guide: Guide, phrases: dict[str, list[str]] | None = None) -> "Head":
        """Read the hybrid's answers with ``guide``'s parser, and answer with its phrases."""
        phrases = phrases if phrases is not None else meaning_phrases(guide)
        self.parser = IntentParser(guide)
        self.phrase_of = {c: min(ps, key=lambda p: (len(p), p)) for c, ps in phrases.items()}
        return self

    def probs(self, frames: np.ndarray) -> np.ndarray:
        """P(class) for one phrase's encoder frames (:func:`speech_frames`)."""
        t0 = time.perf_counter()
        w = self.weights
        x = (pool(np.asarray(frames, dtype=np.float32)) - w["mean"]) / w["std"]
        h = x @ w["w0"] + w["b0"]
        h = np.maximum(_conv(h, w["w1"], w["b1"]), 0)
        h = np.maximum(_conv(h, w["w2"], w["b2"]), 0) + h
        a = h @ w["wa"] + w["ba"]
        a = np.exp(a - a.max())
        logits = (a / a.sum()) @ h @ w["wo"] + w["bo"]
        p = np.exp(logits - logits.max())
        self.last_ms = 1000 * (time.perf_counter() - t0)
        return p / p.sum()

    def ranked(self, frames: np.ndarray) -> list[tuple[str, float]]:
        p = self.probs(frames)
        return [(self.classes[i], float(p[i])) for i in np.argsort(-p)]

    def meaning(self, heard: Heard) -> str:
        """The class of what the hybrid heard (``none`` for nothing or open text)."""
        if not heard.text or heard.kind != "command":
            return NONE
        parser = self.parser
        if parser is None:
            return NONE
        intent = parser.parse(heard.text)
        return class_name((intent.intent, intent.target))

    def decide(self, hybrid: str, ranked: list[tuple[str, float]]) -> str:
        """The class to act on: the hybrid's when among the head's :attr:`top` (or the head is less
        than :attr:`sure` of its best), else the head's best."""
        if hybrid in [c for c, _ in ranked[: self.top]] or ranked[0][1] < self.sure:
            return hybrid
        return ranked[0][0]

    def check(self, transcript: Any, heard: Heard) -> Heard:
        """The hybrid's ``heard`` checked against the head, for the phrase whose encoder output is
        ``transcript`` (a :class:`voiceguide.asr.Transcript`: ``encoded`` and ``frames``; or the
        frames themselves as an array)."""
        frames = transcript if isinstance(transcript, np.ndarray) else speech_frames(transcript.encoded,
                                                                                    transcript.frames)
        ranked = self.ranked(frames)
        hybrid = self.meaning(heard)
        choice = self.decide(hybrid, ranked)
        if choice == hybrid:
            return heard
        share = dict(ranked)
        nbest = tuple((self.phrase_of[c], round(p, 3)) for c, p in ranked[: self.top] if c != NONE and c in self.phrase_of)
        if choice == NONE:
            return Heard("", 0.0, heard.via, heard.during_speech, nbest=nbest)
        return Heard(self.phrase_of[choice], round(share[choice], 3), heard.via, heard.during_speech, nbest=nbest)


def save(path: Path, weights: dict[str, np.ndarray], classes: list[str], pack: str, meta: dict | None = None) -> None:
    """Write a head (weights as float16 where large) with its classes, pack hash and metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"format": FORMAT, "classes": list(classes), "pack": pack, "meta": meta or {}})
    arrays = {k: (weights[k].astype(np.float16) if weights[k].size > 4096 else weights[k].astype(np.float32))
              for k in _KEYS}
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, header=np.frombuffer(header.encode(), dtype=np.uint8), **arrays)
    tmp.replace(path)


def load(path: Path, guide: Guide | None = None) -> Head:
    """Read a head; raises :class:`HeadError` (one line) when it is corrupt, or for another pack than ``guide``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            weights = {k: np.asarray(data[k], dtype=np.float32) for k in _KEYS}
    except FileNotFoundError:
        raise HeadError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise HeadError(f"{path}: not a recogniser head ({type(exc).__name__})") from None
    classes = header.get("classes") if isinstance(header, dict) else None
    if header.get("format") != FORMAT or not isinstance(classes, list) or weights["wo"].shape[1] != len(classes) \
            or weights["w0"].shape[0] != DIM:
        raise HeadError(f"{path}: not a recogniser head of this version")
    head = Head(weights, classes, str(header.get("pack", "")), header.get("meta") or {})
    if guide is not None:
        phrases = meaning_phrases(guide)
        if head.pack != pack_hash(guide, phrases):
            raise HeadError(f"{path}: trained for another version of the content pack")
        head.attach(guide, phrases)
    return head


def find(guide: Guide, phrases: dict[str, list[str]] | None = None) -> Path | None:
    """The head file for ``guide``: shipped in the package, else in the user cache folder."""
    name = f"{pack_hash(guide, phrases)}.npz"
    for folder in (HEADS_DIR, cache_dir()):
        if (folder / name).is_file():
            return folder / name
    return None


def _marked_for_use() -> bool:
    """Whether any head file here says it measured better (reads only the headers: cheap)."""
    for folder in (HEADS_DIR, cache_dir()):
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else ():
            try:
                with np.load(path, allow_pickle=False) as data:
                    if json.loads(bytes(data["header"]).decode()).get("meta", {}).get("use"):
                        return True
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, AttributeError):
                continue
    return False


_said: set[str] = set()


def for_guide(guide: Guide, notice: Callable[[str], None] | None = None,
              phrases: dict[str, tuple[str, str | None]] | None = None) -> Head | None:
    """The head to check the hybrid with for ``guide``, or None (the hybrid alone): no head for this
    pack, a head that cannot be read, or one not measured better (``VOICEGUIDE_HEAD=1`` forces a head
    on, ``0`` off). ``phrases``: the hybrid's :func:`voiceguide.asr.guide_phrases`, to save
    computing them again. Why there is none is told to ``notice`` once per reason."""
    def say(line: str) -> None:
        if notice is not None and line not in _said:
            _said.add(line)
            notice(line)

    switch = os.environ.get("VOICEGUIDE_HEAD", "")
    if switch == "0":
        return None
    if switch != "1" and not _marked_for_use():  # the usual case today: nothing to hash or load
        say("The content-trained check is off: it did not measure better than the hybrid alone "
            "(benchmarks/head_bench.py).")
        return None
    grouped = None
    if phrases is not None:
        grouped = {}
        for phrase, meaning in sorted(phrases.items()):
            grouped.setdefault(class_name(meaning), []).append(phrase)
    path = find(guide, grouped)
    if path is None:
        say("No content-trained check for this pack (voiceguide train-recognizer makes one): the hybrid recogniser alone.")
        return None
    try:
        head = load(path, guide)
    except HeadError as exc:
        say(f"The content-trained check is not used: {exc}.")
        return None
    if not head.meta.get("use") and switch != "1":
        say("The content-trained check is off: it did not measure better than the hybrid alone "
            "(benchmarks/head_bench.py).")
        return None
    return head


def status(guide: Guide) -> str:
    """One line for ``voiceguide doctor``."""
    path = find(guide)
    if path is None:
        return "no content-trained check for this pack (voiceguide train-recognizer); the hybrid alone"
    try:
        head = load(path, guide)
    except HeadError as exc:
        return f"content-trained check unusable: {exc}"
    return (f"content-trained check {path.name}: {'on' if head.meta.get('use') else 'off (not measured better)'}, "
            f"{len(head.classes)} classes")
