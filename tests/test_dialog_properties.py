"""Property-based: no input sequence crashes, hangs or grows memory."""

from __future__ import annotations

import gc
import random
import tracemalloc

from hypothesis import example, given, settings
from hypothesis import strategies as st

from voiceguide.content import default_content_path, load_guide
from voiceguide.dialog import (KEYS, MAX_RATE, MIN_RATE, Dialog, EndOfInput, Exit, Heard, Interrupted, Key, Listen,
                               NoInput, NoMatch, Say, Start, State)
from voiceguide.intents import INTENTS, Intent, IntentParser
from voiceguide.session import to_event
from voiceguide.protocols import Heard as HeardInput

GUIDE = load_guide(default_content_path())
D = Dialog(GUIDE)
PARSER = IntentParser(GUIDE)
IDS = [s.id for s in GUIDE.walk()]
TERMS = [e.term for e in GUIDE.glossary]

targets = st.one_of(st.none(), st.sampled_from(IDS), st.sampled_from(TERMS), st.text(max_size=8),
                    st.integers(-3, 30).map(str))
intents = st.builds(lambda i, t: Heard(Intent(i, t, "x", 1.0)), st.sampled_from(INTENTS), targets)
keys = st.builds(Key, st.one_of(st.sampled_from(sorted(KEYS)), st.text(max_size=3)))
events = st.one_of(intents, keys, st.just(NoInput()), st.builds(NoMatch, st.text(max_size=20)),
                   st.just(Interrupted()), st.builds(Interrupted, st.text(max_size=10)),
                   st.builds(Start, st.one_of(st.none(), st.sampled_from(IDS)), st.integers(0, 1000)))


def check(state, effects):
    assert isinstance(effects, list)
    assert MIN_RATE <= state.rate <= MAX_RATE
    assert state.section is None or state.section in GUIDE
    assert 0 <= state.no_input <= 3 and 0 <= state.no_match <= 3
    for e in effects:
        if isinstance(e, Say):
            assert isinstance(e.text, str) and e.text.strip()
    # a turn ends by listening (no timer while paused), or by leaving
    if state.ended:
        assert effects and effects[-1] == Exit(0)
    else:
        assert effects and effects[-1] == Listen(None if state.paused else 10.0)
        assert sum(isinstance(e, Listen) for e in effects) == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=60), st.one_of(st.none(), st.sampled_from(IDS)))
def test_no_event_sequence_crashes(seq, resume):
    state, effects = D.step(State(), Start(resume_to=resume))
    check(state, effects)
    for ev in seq:
        state, effects = D.step(state, ev)
        check(state, effects)
        if state.ended:
            assert isinstance(effects[-1], Exit)
            break
    state, effects = D.step(state, EndOfInput())
    assert isinstance(effects[-1], Exit)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.sampled_from(["keys", "voice"]))
def test_any_typed_or_heard_text_becomes_an_event_and_a_step(text, via):
    state, _ = D.start()
    event = to_event(HeardInput(text, 1.0, via), PARSER, state)
    state, effects = D.step(state, event)
    check(state, effects)


def test_ten_thousand_random_turns_finish_with_flat_memory():
    rng = random.Random(1234)
    pool = [Heard(Intent(i, t, "x", 1.0)) for i in INTENTS for t in (None, rng.choice(IDS), rng.choice(TERMS), "2")]
    pool += [NoInput(), NoMatch("noise"), Interrupted(), Key("z"), Key("3"), Key(""), Key(" ")]
    state, _ = D.start()
    base = None
    tracemalloc.start()
    try:
        for turn in range(10_000):
            ev = rng.choice(pool)
            if ev.__class__ is Heard and ev.intent.intent == "stop":
                continue  # keep the session alive for all 10,000 turns
            state, effects = D.step(state, ev)
            check(state, effects)
            if turn >= 1_000 and base is None:
                gc.collect()
                base = tracemalloc.get_traced_memory()[0]
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert not state.ended
    assert grown < 64 * 1024, f"memory grew by {grown} bytes over 9,000 turns"


# ---------------------------------------------------------------------- act, confirm or disambiguate (issue 21)

from voiceguide.dialog import FLOOR  # noqa: E402

reading = st.tuples(st.builds(lambda i, t: Intent(i, t, "x", 1.0), st.sampled_from(INTENTS), targets),
                    st.floats(0.0, 1.0))
spoken = st.builds(lambda rs, decided: Heard(rs[0][0] if decided and rs else Intent("none", None, "", 0.0),
                                             by_voice=True, readings=tuple(sorted(rs, key=lambda r: -r[1]))),
                   st.lists(reading, min_size=1, max_size=4), st.booleans())
typed_or_keys = st.one_of(intents, keys, st.just(NoInput()), st.builds(NoMatch, st.text(max_size=20)))


def _place(state):
    return (state.section, state.para, state.sent, state.rate, state.volume, state.ended)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(events, spoken), max_size=40), st.one_of(st.none(), st.sampled_from(IDS)))
def test_no_sequence_with_spoken_readings_crashes(seq, resume):
    state, effects = D.step(State(), Start(resume_to=resume))
    for ev in seq:
        state, effects = D.step(state, ev)
        check(state, effects)
        assert state.asking not in ("confirm", "choose") or 1 <= len(state.pending) <= 2
        if state.ended:
            break


@settings(max_examples=200, deadline=None)
@given(st.lists(typed_or_keys, max_size=40), st.one_of(st.none(), st.sampled_from(IDS)))
def test_keys_and_typed_text_never_raise_a_confirmation(seq, resume):
    state, _ = D.step(State(), Start(resume_to=resume))
    for ev in seq:
        state, _ = D.step(state, ev)
        assert state.asking not in ("confirm", "choose"), ev
        if state.ended:
            break


@settings(max_examples=300, deadline=None)
@example(seq=[Heard(Intent("define", None, "x", 1.0))], weak=[(Intent("next", None, "x", 1.0), 0.0)], decided=True)
@given(st.lists(st.one_of(events, spoken), max_size=20),
       st.lists(reading.map(lambda r: (r[0], r[1] * FLOOR * 0.999)), min_size=1, max_size=4), st.booleans())
def test_readings_below_the_floor_never_move_the_listener(seq, weak, decided):
    state, _ = D.step(State(), Start())
    for ev in seq:  # any state a listener can reach
        state, _ = D.step(state, ev)
        if state.ended:
            return
    weak = sorted(weak, key=lambda r: -r[1])
    event = Heard(weak[0][0] if decided else Intent("none", None, "", 0.0), by_voice=True, readings=tuple(weak))
    after, effects = D.step(state, event)
    assert _place(after) == _place(state)
    assert not any(isinstance(e, Exit) for e in effects)


opens = st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 3)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(opens, st.sampled_from(IDS), st.integers(0, 3), st.sampled_from(IDS), st.sampled_from(["back", "b"]))
def test_back_returns_to_the_section_just_left_at_its_place(walk, a, mores, b, how):
    """Whatever was visited before: from a, jump to b, then back (said or the b key) is a again, where it was left
    (its summary when it had been read to the end), and the history never grows past its bound."""
    from voiceguide.dialog import HISTORY
    state = D.start()[0]
    for section, n in [*walk, (a, mores)]:
        state = D.step(state, Heard(Intent("open", section, section, 1.0)))[0]
        for _ in range(n):
            state = D.step(state, Heard(Intent("more", None, "more", 1.0)))[0]
    if b == a:
        return
    left = (state.para, state.sent) if state.para < len(GUIDE.section(a).body) else (0, 0)
    state = D.step(state, Heard(Intent("open", b, b, 1.0)))[0]
    assert state.section == b and len(state.history) <= HISTORY
    back = Key("b") if how == "b" else Heard(Intent("back", None, "back", 1.0))
    state, effects = D.step(state, back)
    check(state, effects)
    assert (state.section, state.para, state.sent) == (a, *left)
