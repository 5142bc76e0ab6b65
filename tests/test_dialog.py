"""The pure dialog core: every state x every universal command, the escalation ladder, resume, quit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from voiceguide.content import default_content_path, load_guide
from voiceguide.dialog import (DEFAULT_RATE, MAX_RATE, MIN_RATE, RATE_STEP, Dialog, Earcon, EndOfInput, Exit, Heard,
                               Interrupted, NoInput, NoMatch, Save, Say, SetRate, State)
from voiceguide.intents import Intent

GUIDE = load_guide(default_content_path())
D = Dialog(GUIDE)


def said(effects) -> list[str]:
    return [e.text for e in effects if isinstance(e, Say)]


def go(state, intent, target=None, text=""):
    return D.step(state, Heard(Intent(intent, target, text or intent, 1.0)))


def fresh():
    return D.start()[0]


# States a listener can be in.
def st_menu():
    return fresh()


def st_top_section():
    return go(fresh(), "open", "chemotherapy")[0]


def st_leaf_reading():
    s = go(fresh(), "open", "gilteritinib")[0]
    return go(s, "more")[0]


def st_end_of_leaf():
    s = go(fresh(), "open", "gilteritinib")[0]
    for _ in GUIDE.section("gilteritinib").body:
        s = go(s, "more")[0]
    return s


def st_paused():
    return go(st_leaf_reading(), "pause")[0]


def st_resume_question():
    return D.start(resume_to="mec")[0]


def st_last_section():
    return go(fresh(), "open", "closing")[0]


STATES = {f.__name__[3:]: f for f in [st_menu, st_top_section, st_leaf_reading, st_end_of_leaf, st_paused,
                                        st_resume_question, st_last_section]}
COMMANDS = ["help", "repeat", "back", "menu", "next", "previous", "more", "skip", "pause", "resume", "faster",
            "slower", "where", "define", "yes", "no", "stop"]


def test_start_welcomes_discloses_and_lists_the_menu_with_numbers():
    state, effects = D.start()
    text = " ".join(said(effects))
    assert text.startswith(f"Welcome to {GUIDE.title}.")
    assert GUIDE.disclaimer in text and "Last reviewed November 25, 2026" in text
    for n, sec in enumerate(GUIDE.sections, 1):
        assert f"{n}: {sec.title}." in text and f"press {n}" in text
    assert "Say chemotherapy, or press 2." in text
    assert state.section is None


def test_returning_listener_is_offered_resume():
    state, effects = D.start(resume_to="mec")
    assert said(effects)[-1] == f"Last time you were in {GUIDE.section('mec').title}. Say continue, or main menu."
    s2, eff2 = go(state, "resume")
    assert s2.section == "mec" and said(eff2)[0] == GUIDE.section("mec").title + "."
    s3, eff3 = go(state, "menu")
    assert s3.section is None and said(eff3)[0] == "Main menu."
    s4, _ = go(state, "no")
    assert s4.section is None and s4.asking is None
    s5, _ = go(state, "yes")
    assert s5.section == "mec"


def test_resume_offer_ignores_unknown_section():
    state, effects = D.start(resume_to="no-such-section")
    assert state.asking is None and "Main menu." in said(effects)


@pytest.mark.parametrize("state_name", list(STATES))
@pytest.mark.parametrize("command", COMMANDS)
def test_every_universal_command_works_in_every_state(state_name, command):
    before = STATES[state_name]()
    after, effects = go(before, command)
    texts = said(effects)
    assert texts or any(isinstance(e, (Exit, SetRate)) for e in effects), "no response at all"
    assert all(t.strip() for t in texts)
    if command == "stop":
        assert isinstance(effects[-1], Exit) and effects[-1].status == 0
        assert any(isinstance(e, Save) for e in effects)
        assert "start VoiceGuide again" in texts[-1]
        assert len(texts) == 1  # stop never starts reading anything
        assert after.ended
    elif command == "help":
        assert "Keys:" in texts[0] and "stop" in texts[0]
    elif command == "repeat":
        assert texts == list(before.last)
    elif command == "menu":
        assert after.section is None and texts[0] == "Main menu."
    elif command == "where":
        assert texts[0].startswith("You are")
        if before.section:
            assert GUIDE.section(before.section).title in texts[0]
    elif command == "faster":
        assert after.rate == min(MAX_RATE, before.rate + RATE_STEP)
        assert SetRate(after.rate) in effects
    elif command == "slower":
        assert after.rate == max(MIN_RATE, before.rate - RATE_STEP)
    elif command == "pause":
        assert after.paused and texts == ["Paused. Say continue when you are ready."]
    elif command == "define":
        assert after.awaiting_word
    elif command == "back" and before.section and not before.asking:
        parent = GUIDE.parent(before.section)
        assert after.section == (parent.id if parent else None)
    # no command leaves a failure counter running
    assert after.no_input == 0 and after.no_match == 0


def test_more_reads_the_body_paragraph_by_paragraph_then_offers_where_next():
    s = go(fresh(), "open", "enasidenib")[0]
    body = GUIDE.section("enasidenib").body
    heard = []
    for _ in body:
        s, eff = go(s, "more")
        heard.append(said(eff)[0])
        assert eff[0].kind == "content"
    assert heard == list(body)
    s, eff = go(s, "more")
    assert said(eff)[0].startswith("That is the end of Enasidenib. Say next for Gilteritinib")


def test_skip_moves_past_a_paragraph():
    s = go(fresh(), "open", "ivosidenib")[0]
    s, eff = go(s, "skip")
    assert said(eff)[0] == GUIDE.section("ivosidenib").body[1]


def test_next_and_previous_follow_reading_order():
    s = go(fresh(), "open", "chemotherapy")[0]
    s, _ = go(s, "next")
    assert s.section == "repeat-induction"
    s, _ = go(s, "previous")
    assert s.section == "chemotherapy"
    s, eff = go(go(fresh(), "open", "closing")[0], "next")
    assert "last section" in said(eff)[0]


def test_numbers_pick_menu_entries_and_subsections():
    s, _ = go(fresh(), "number", "4")
    assert s.section == "targeted-therapy"
    s, _ = go(s, "number", "3")
    assert s.section == "gilteritinib"
    s2, eff = go(s, "number", "9")
    assert s2.section == "gilteritinib" and s2.no_match == 1 and "no numbered choices" in said(eff)[0]


def test_define_gives_the_glossary_definition():
    s, eff = go(fresh(), "define", "remission")
    assert said(eff) == [f"Remission: {GUIDE.term('remission').definition}"]
    s, eff = go(fresh(), "define", None)
    assert s.awaiting_word and "Which word" in said(eff)[0]


def test_pause_then_continue_resays_the_cut_paragraph():
    s = go(fresh(), "open", "gilteritinib")[0]
    s, eff = go(s, "more")
    para = said(eff)[0]
    s, _ = D.step(s, Interrupted())
    s, eff = go(s, "pause")
    assert s.paused
    assert D.step(s, NoInput()) == (s, [])  # no timer while paused
    s, eff = go(s, "resume")
    assert said(eff)[0] == para and not s.paused


def test_skip_after_an_interruption_goes_to_the_paragraph_after_the_cut_one():
    s = go(go(fresh(), "open", "gilteritinib")[0], "more")[0]
    s, _ = D.step(s, Interrupted())
    s, eff = go(s, "skip")
    assert said(eff)[0] == GUIDE.section("gilteritinib").body[1]


def test_rate_is_clamped_and_reported():
    s = replace(fresh(), rate=MAX_RATE)
    s2, eff = go(s, "faster")
    assert s2.rate == MAX_RATE and "already the fastest" in said(eff)[0]
    s = replace(fresh(), rate=MIN_RATE)
    s2, eff = go(s, "slower")
    assert s2.rate == MIN_RATE and "already the slowest" in said(eff)[0]
    s2, eff = go(fresh(), "faster")
    assert Save(None, DEFAULT_RATE + RATE_STEP) in eff


def test_advice_requests_are_declined():
    s, eff = D.step(fresh(), Heard(Intent("none", None, "should I take xospata", 0.0)))
    assert "can't give medical advice" in said(eff)[0] and s.no_match == 0


# ------------------------------------------------------------- escalation


@pytest.mark.parametrize("start", ["menu", "leaf_reading"])
def test_no_input_ladder_escalates_then_offers_a_way_out(start):
    s = STATES[start]()
    prompts = []
    for _ in range(3):
        s, eff = D.step(s, NoInput())
        prompts.append(" ".join(said(eff)))
    assert len(set(prompts)) == 3, "each retry must be different"
    assert prompts[0].startswith("Sorry, I didn't hear anything.")
    assert prompts[1].startswith("I still didn't hear you.")
    assert "Your options are" in prompts[2] and "keyboard" in prompts[2]
    assert s.no_input == 0  # reset after the way out
    if start == "menu":
        assert s.paused, "at the top, the guide waits quietly instead of looping"
        s2, eff2 = D.step(s, NoInput())
        assert eff2 == []
    else:
        assert s.section is None and "Let's go back to the main menu." in prompts[2]


def test_no_match_ladder_has_its_own_counter_and_cue():
    s = st_top_section()
    s, eff = D.step(s, NoInput())
    assert s.no_input == 1 and s.no_match == 0
    s, eff = D.step(s, NoMatch("mumble"))
    assert s.no_match == 1 and s.no_input == 1 and Earcon("nomatch") in eff
    s, eff2 = D.step(s, NoMatch("mumble"))
    assert s.no_match == 2
    assert said(eff) != said(eff2)
    assert "a number from 1 to 5" in said(eff2)[0]
    s, eff3 = D.step(s, Heard(Intent("none", None, "purple monkey", 0.0)))
    assert "Your options are: 1, Repeating Seven and Three" in " ".join(said(eff3))
    assert s.section is None and s.no_match == 0


def test_success_resets_both_counters():
    s = st_top_section()
    s, _ = D.step(s, NoInput())
    s, _ = D.step(s, NoMatch(""))
    assert (s.no_input, s.no_match) == (1, 1)
    s, _ = go(s, "where")
    assert (s.no_input, s.no_match) == (0, 0)


def test_no_endless_loop_under_endless_silence_or_noise():
    s = st_leaf_reading()
    spoken = 0
    for i in range(50):
        s, eff = D.step(s, NoInput() if i % 2 else NoMatch("x"))
        spoken += len(said(eff))
    assert s.paused  # ended up waiting quietly at the main menu
    assert D.step(s, NoInput())[1] == []


# ------------------------------------------------------------- leaving


@pytest.mark.parametrize("state_name", list(STATES))
def test_end_of_input_saves_and_exits_quietly_from_anywhere(state_name):
    before = STATES[state_name]()
    after, eff = D.step(before, EndOfInput())
    assert said(eff) == [] and isinstance(eff[-1], Exit)
    save = next(e for e in eff if isinstance(e, Save))
    assert save.section == (before.section or before.resume_to)
    assert D.step(after, Heard(Intent("help", None, "help", 1.0)))[1] == [Exit(0)]
