"""The dialog's state: what it remembers between turns, and what is kept between runs.

:class:`State` is everything the dialog core (voiceguide.dialog) remembers between turns, small and
immutable; the decision rules (voiceguide.decide) read it too. The rate and loudness a listener can choose
are bounded here (:data:`MIN_RATE` ... :data:`DEFAULT_VOLUME`).

Where the listener was, and their preferences, are kept between runs in one small JSON file
(:class:`StateStore`), written atomically (temp file + ``os.replace``) so a crash
never leaves half a file. A corrupt or unreadable file is ignored with a
one-line warning; a file that cannot be written is warned about once and the
guide carries on. Losing a saved position must never stop someone listening.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .files import atomic_write

if TYPE_CHECKING:
    from .intents import Intent

__all__ = ["State", "CONFIRMING", "MIN_RATE", "MAX_RATE", "DEFAULT_RATE", "MIN_VOLUME", "MAX_VOLUME", "DEFAULT_VOLUME",
           "Saved", "StateStore", "default_state_path", "mic_settings_path", "load_mic_settings"]

MIN_RATE, MAX_RATE, DEFAULT_RATE = 80, 450, 175
"""The speaking rate, words per minute."""
MIN_VOLUME, MAX_VOLUME, DEFAULT_VOLUME = 1, 100, 100
"""The loudness of speech, percent."""


# ---------------------------------------------------------------------- the dialog's state between turns


@dataclass(frozen=True)
class State:
    """Everything the dialog remembers between turns (small and immutable)."""

    section: str | None = None
    """Current section id; None at the main menu."""
    para: int = 0
    """The place in this section: the body paragraph holding the next sentence to read."""
    sent: int = 0
    """The place in this section: the next sentence to read in paragraph ``para`` (0 and 0: the summary)."""
    rate: int = DEFAULT_RATE
    volume: int = DEFAULT_VOLUME
    """Loudness of speech, percent."""
    last: tuple[str, ...] = ()
    """The last output, exactly, for ``repeat``."""
    no_input: int = 0
    no_match: int = 0
    paused: bool = False
    """While paused the no-input timer is off, until ``continue``."""
    waiting: bool = False
    """After the third failure: help was offered once, the guide waits quietly in place."""
    interrupted: bool = False
    """The last output was cut short."""
    cut: int = 0
    """Index in ``last`` of the utterance that was cut."""
    asking: str | None = None
    """An open question: ``resume`` (go back to last time's place), ``leave`` (leave the guide?),
    ``offer`` (hear more about the section an answer came from), ``confirm`` (did you mean the one
    meaning in ``pending``?) or ``choose`` (which of the two in ``pending``?)."""
    pending: tuple[Intent, ...] = ()
    """What ``confirm`` or ``choose`` asks about: one meaning, or two."""
    tries: int = 0
    """Answers to ``confirm`` or ``choose`` not understood so far (after two, the numbered list)."""
    listed: tuple[str, ...] = ()
    """Sections just offered by number after a miss: a number picks from these until the next move."""
    unsure: tuple | None = None
    """A cheap command the recogniser decided last turn below :data:`voiceguide.decide.CHEAP_BAR`: heard again at once, it is done."""
    missed: tuple | None = None
    """The last spoken turn was not understood: its best reading's meaning and score, pooled with the next
    saying's (:meth:`voiceguide.decide.Decider._pooled`). Not for open text: clear words that hold no command are evidence
    against every command ("where are my keys" twice is not "where am I")."""
    resume_to: str | None = None
    """Where the listener was last time (offered at start)."""
    resume_para: int = 0
    resume_sent: int = 0
    offer: str | None = None
    """The section offered after an answer (``asking == "offer"``)."""
    prior: str | None = None
    """The question that was open before ``leave`` or ``offer`` was asked (``resume``): back when that one closes."""
    reading_para: int | None = None
    """The body paragraph said last, if the last output was one (its sentences come first in ``last``)."""
    reading_sent: int = 0
    """The first sentence of ``reading_para`` in that output."""
    places: tuple[tuple[str, int, int], ...] = ()
    """(section, paragraph, sentence) for each section left this session with a place in it."""
    history: tuple[str | None, ...] = ()
    """Where the listener came from this session, most recent first (a section id; None: the main menu): "back"
    returns there (:meth:`voiceguide.dialog.Dialog._on_back`). Empty at the start and after resuming: "back" then goes up a level."""
    awaiting_word: bool = False
    """After the ``d`` key: the next input is a word to define (one word only)."""
    helped: bool = False
    """The last answer was the short help: help again gives every command and key."""
    disclaimed: bool = True
    """The disclaimer was said this session (a returning listener hears it on leaving instead)."""
    ended: bool = False

    @property
    def listening_timeout_off(self) -> bool:
        return self.paused or self.ended


CONFIRMING = ("confirm", "choose")
"""The questions about what was heard (``State.asking``): the meaning or the two in ``State.pending``."""


# ---------------------------------------------------------------------- kept between runs


def default_state_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("voiceguide", appauthor=False)) / "state.json"


def mic_settings_path(state_path: Path | None = None) -> Path:
    """``mic.json`` beside the state file (``voiceguide run --state``'s default: the user data folder)."""
    if state_path is None:
        state_path = default_state_path()
    return Path(state_path).with_name("mic.json")


def load_mic_settings(path: Path | None = None) -> dict | None:
    """The saved settings (``endpointer_threshold``: RMS of 16-bit samples over 20 ms frames above which
    a frame is voiced), or None when there are none or they make no sense."""
    path = path or mic_settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        threshold = float(data["endpointer_threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if 1.0 <= threshold <= 20000.0 else None


@dataclass
class Saved:
    """What was kept from last time."""

    section: str | None = None
    """Where the listener was in this guide (None: main menu or never)."""
    rate: int | None = None
    voice: str | None = None
    volume: int | None = None
    """Loudness of speech, percent (shared by all guides, like the rate)."""
    para: int = 0
    """The paragraph of ``section`` reached (0 with ``sentence`` 0: its summary; files before 2026-12 lack it)."""
    sentence: int = 0
    """The sentence in that paragraph."""


@dataclass
class StateStore:
    """One JSON file: per-guide position, plus rate and voice shared by all guides."""

    path: Path
    guide_id: str
    warn: Callable[[str], None] = field(default=lambda msg: print(f"voiceguide: {msg}", file=sys.stderr))
    _warned: bool = False
    _read_warned: bool = False

    def _warn_read(self, msg: str) -> None:
        if not self._read_warned:
            self._read_warned = True
            self.warn(msg)

    def _read_all(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError:
            self._warn_read(f"ignoring the saved position in {self.path}: it is not a text file.")
            return {}
        except ValueError:
            self._warn_read(f"ignoring the saved position in {self.path}: it is damaged (not valid JSON).")
            return {}
        except OSError as exc:
            self._warn_read(f"ignoring the saved position in {self.path}: it could not be read "
                            f"({(exc.strerror or 'unreadable').lower()}).")
            return {}
        if not isinstance(data, dict):
            self._warn_read(f"ignoring the saved position in {self.path}: it is not in the expected format.")
            return {}
        return data

    def load(self) -> Saved:
        data = self._read_all()
        guide = data.get("guides", {}).get(self.guide_id, {}) if isinstance(data.get("guides"), dict) else {}
        guide = guide if isinstance(guide, dict) else {}
        section = guide.get("section")
        rate, volume = data.get("rate"), data.get("volume")
        voice = data.get("voice")
        section = section if isinstance(section, str) else None
        para, sentence = (_count(guide.get("para")), _count(guide.get("sentence"))) if section else (0, 0)
        return Saved(section,
                     rate if isinstance(rate, int) and not isinstance(rate, bool) else None,
                     voice if isinstance(voice, str) else None,
                     volume if isinstance(volume, int) and not isinstance(volume, bool) and 1 <= volume <= 100 else None,
                     para, sentence)

    def save(self, section: str | None, rate: int | None = None, voice: str | None = None,
             volume: int | None = None, para: int = 0, sentence: int = 0) -> bool:
        """Keep the place (section, paragraph, sentence) and the preferences; False if it could not be written."""
        data = self._read_all() if self.path.exists() else {}
        guides = data.get("guides") if isinstance(data.get("guides"), dict) else {}
        guides[self.guide_id] = {"section": section, "para": para if section else 0,
                                 "sentence": sentence if section else 0}
        data["guides"] = guides
        if rate is not None:
            data["rate"] = rate
        if voice is not None:
            data["voice"] = voice
        if volume is not None:
            data["volume"] = volume
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(data, indent=2).encode("utf-8"), mode=0o600)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                why = (exc.strerror or "it cannot be written").lower()
                self.warn(f"could not save your place in {self.path} ({why}); carrying on without saving.")
            return False
        return True


def _count(value) -> int:
    """A paragraph or sentence index from the file: a non-negative int, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
