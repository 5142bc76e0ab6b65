"""The pure dialog core: every state x every universal command, the escalation ladder, resume, quit.

Generic tests run on two packs: the shipped AML guide and a small inhaler guide
(tests/data/mini), so nothing in the core depends on one guide's names.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from voiceguide.content import default_content_path, load_guide
from voiceguide.dialog import (DEFAULT_RATE, DEFAULT_VOLUME, MAX_RATE, MAX_VOLUME, MIN_RATE, MIN_VOLUME, RATE_STEP,
                               Dialog, Earcon, EndOfInput, Exit, Heard, Interrupted, Key, Listen, NoInput, NoMatch,
                               SavePosition, Say, SetRate, SetVolume, Start, State, key_intent, split_sentences)
from voiceguide.intents import Intent

MINI_PATH = Path(__file__).parent / "data" / "mini"
GUIDE = load_guide(default_content_path())
MINI = load_guide(MINI_PATH)
D = Dialog(GUIDE)


def said(effects) -> list[str]:
    return [e.text for e in effects if isinstance(e, Say)]


def go(state, intent, target=None, text="", dialog=D):
    return dialog.step(state, Heard(Intent(intent, target, text or intent, 1.0)))


def fresh(dialog=D):
    return dialog.start()[0]


def sentences(section) -> list[str]:
    return [s for para in section.body for s in split_sentences(para)]


class Pack:
    """One guide and the sections that make each listener state."""

    def __init__(self, guide):
        self.guide, self.dialog = guide, Dialog(guide)
        self.parent = next(s for s in guide.sections if s.children)
        self.leaf = next(s for s in guide.walk() if not s.children and len(s.body) >= 2)
        self.last = guide.sections[-1]

    def go(self, state, intent, target=None):
        return go(state, intent, target, dialog=self.dialog)

    # States a listener can be in.
    def states(self) -> dict[str, State]:
        d, fresh_ = self.dialog, self.dialog.start()[0]
        reading = self.go(self.go(fresh_, "open", self.leaf.id)[0], "more")[0]
        end = self.go(fresh_, "open", self.leaf.id)[0]
        for _ in self.leaf.body:
            end = self.go(end, "more")[0]
        return {
            "menu": fresh_,
            "parent_section": self.go(fresh_, "open", self.parent.id)[0],
            "leaf_reading": reading,
            "cut_mid_paragraph": d.step(reading, Interrupted(reading.last[0]))[0],
            "end_of_leaf": end,
            "paused": self.go(reading, "pause")[0],
            "resume_question": d.start(resume_to=self.leaf.id)[0],
            "last_section": self.go(fresh_, "open", self.last.id)[0],
            "awaiting_word": self.go(fresh_, "define")[0],
            "after_no_match": d.step(self.go(fresh_, "open", self.parent.id)[0], NoMatch("mumble"))[0],
        }


PACKS = {"aml": Pack(GUIDE), "mini": Pack(MINI)}
STATE_NAMES = list(PACKS["aml"].states())
COMMANDS = ["help", "repeat", "back", "menu", "next", "previous", "more", "skip", "pause", "resume", "faster",
            "slower", "louder", "quieter", "where", "define", "yes", "no", "stop"]


def test_start_welcomes_discloses_and_lists_the_menu_with_numbers():
    state, effects = D.start()
    texts = said(effects)
    assert texts[:2] == [f"Welcome to {GUIDE.title}.", GUIDE.disclaimer]
    assert "Last reviewed November 25, 2026" in texts[2]
    text = " ".join(texts)
    for n, sec in enumerate(GUIDE.sections, 1):
        assert f"{n}: {sec.title}." in text and f"press {n}" in text
    assert "Say chemotherapy, or press 2." in text
    assert state.section is None
    assert effects[0] == SetRate(DEFAULT_RATE) and effects[-1] == Listen(10.0)


def test_start_is_also_an_event():
    assert D.step(State(), Start(resume_to="mec", rate=200)) == D.start(resume_to="mec", rate=200)


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


@pytest.mark.parametrize("pack", list(PACKS))
@pytest.mark.parametrize("state_name", STATE_NAMES)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_universal_command_works_in_every_state(pack, state_name, command):
    p = PACKS[pack]
    before = p.states()[state_name]
    after, effects = p.go(before, command)
    texts = said(effects)
    assert texts or any(isinstance(e, (Exit, SetRate)) for e in effects), "no response at all"
    assert all(t.strip() for t in texts)
    if command == "stop":
        assert isinstance(effects[-1], Exit) and effects[-1].status == 0
        assert any(isinstance(e, SavePosition) for e in effects)
        assert "start VoiceGuide again" in texts[-1]
        assert len(texts) == 1  # stop never starts reading anything
        assert after.ended
        return
    assert isinstance(effects[-1], Listen), "every turn ends by listening"
    assert effects[-1].timeout == (None if after.paused else 10.0)
    if command == "help":
        assert "Keys:" in texts[0] and "stop" in texts[0]
    elif command == "repeat":
        assert texts == list(before.last)
    elif command == "menu":
        assert after.section is None and texts[0] == "Main menu."
    elif command == "where":
        assert texts[0].startswith("You are")
        if before.section:
            assert p.guide.section(before.section).title in texts[0]
    elif command == "faster":
        assert after.rate == min(MAX_RATE, before.rate + RATE_STEP)
        assert SetRate(after.rate) in effects
    elif command == "slower":
        assert after.rate == max(MIN_RATE, before.rate - RATE_STEP)
    elif command in ("louder", "quieter"):
        assert after.rate == before.rate and after.section == before.section and after.last == before.last
        if after.volume != before.volume:
            assert SetVolume(after.volume) in effects
        else:
            assert after.volume == (MAX_VOLUME if command == "louder" else MIN_VOLUME) and "already" in texts[0]
    elif command == "pause":
        assert after.paused and texts == ["Paused. Say continue when you are ready."]
        assert effects[-1] == Listen(None)  # no timer while paused
    elif command == "resume" and before.interrupted:
        assert texts == list(before.last[before.cut:])
    elif command == "define":
        assert after.awaiting_word
    elif command == "back" and before.section and not before.asking:
        parent = p.guide.parent(before.section)
        assert after.section == (parent.id if parent else None)
    elif command == "next" and before.section and not before.asking:
        order = [s.id for s in p.guide.walk()]
        i = order.index(before.section)
        assert after.section == (order[i + 1] if i + 1 < len(order) else before.section)
    # no command leaves a failure counter running
    assert after.no_input == 0 and after.no_match == 0


@pytest.mark.parametrize("pack", list(PACKS))
def test_more_reads_the_body_sentence_by_sentence_then_offers_where_next(pack):
    p = PACKS[pack]
    s = p.go(p.dialog.start()[0], "open", p.leaf.id)[0]
    heard = []
    for para in p.leaf.body:
        s, eff = p.go(s, "more")
        content = [e.text for e in eff if isinstance(e, Say) and e.kind == "content"]
        assert content == split_sentences(para)
        heard += content
    assert heard == sentences(p.leaf)
    assert said(eff)[-1].startswith(f"That is the end of {p.leaf.title}.")
    s, eff = p.go(s, "more")
    assert said(eff)[0].startswith(f"That is the end of {p.leaf.title}.")


def test_split_sentences():
    assert split_sentences('One. Two is here! "Three?" Four 5. 6 apples.') == [
        "One.", "Two is here!", '"Three?"', "Four 5.", "6 apples."]
    assert split_sentences("Take 2.5 mg. Then stop.") == ["Take 2.5 mg.", "Then stop."]
    assert split_sentences("no end mark") == ["no end mark"]


def test_skip_moves_past_a_paragraph():
    s = go(fresh(), "open", "ivosidenib")[0]
    s, eff = go(s, "skip")
    assert said(eff)[0] == split_sentences(GUIDE.section("ivosidenib").body[1])[0]


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


def test_keys_are_events_with_the_same_meaning_as_words():
    s = fresh()
    assert D.step(s, Key("4"))[0].section == "targeted-therapy"
    for key, intent in [("h", "help"), ("w", "where"), ("m", "menu"), ("", "more"), (" ", "pause"), ("q", "stop")]:
        state_k, eff_k = D.step(go(s, "open", "mec")[0], Key(key))
        state_w, eff_w = go(go(s, "open", "mec")[0], intent)
        assert (state_k, said(eff_k)) == (state_w, said(eff_w)), key
    s2, eff = D.step(s, Key("z"))
    assert s2.no_match == 1 and "Press h for help" in said(eff)[0]


def test_define_gives_the_glossary_definition():
    s, eff = go(fresh(), "define", "remission")
    assert said(eff) == [f"Remission: {GUIDE.term('remission').definition}"]
    s, eff = go(fresh(), "define", None)
    assert s.awaiting_word and "Which word" in said(eff)[0]
    s, eff = go(fresh(), "define", "spacer", dialog=Dialog(MINI))
    assert said(eff) == [f"Spacer: {MINI.term('spacer').definition}"]


def test_pause_then_continue_resumes_at_the_cut_sentence():
    p = PACKS["mini"]  # albuterol's paragraphs have two sentences each
    s = p.go(fresh(p.dialog), "open", "albuterol")[0]
    s, eff = p.go(s, "more")
    first, second = split_sentences(MINI.section("albuterol").body[0])
    assert said(eff) == [first, second]
    s, _ = p.dialog.step(s, Interrupted(second))  # cut during the second sentence
    s, eff = p.go(s, "pause")
    assert s.paused and eff[-1] == Listen(None)
    s2, eff = p.dialog.step(s, NoInput())
    assert s2 == s and said(eff) == []  # no timer, no prompt while paused
    s, eff = p.go(s, "resume")
    assert said(eff) == [second] and not s.paused
    s, eff = p.go(s, "resume")  # nothing was cut now: continue reads on
    assert said(eff)[0] == split_sentences(MINI.section("albuterol").body[1])[0]


def test_a_cut_prompt_that_is_not_remembered_does_not_mark_an_interruption():
    s = go(go(fresh(), "open", "mec")[0], "more")[0]
    s2, _ = D.step(s, Interrupted("Faster: 200 words a minute."))
    assert s2 == s


def test_skip_after_an_interruption_goes_to_the_paragraph_after_the_cut_one():
    s = go(go(fresh(), "open", "gilteritinib")[0], "more")[0]
    s, _ = D.step(s, Interrupted(s.last[0]))
    s, eff = go(s, "skip")
    assert said(eff)[0] == split_sentences(GUIDE.section("gilteritinib").body[1])[0]


def test_where_gives_section_path_and_part():
    s = go(go(fresh(), "open", "gilteritinib")[0], "more")[0]
    s, _ = go(s, "more")
    n = len(GUIDE.section("gilteritinib").body)
    assert said(go(s, "where")[1]) == [f"You are in Targeted Drugs, Gilteritinib, part 2 of {n}."]


def test_rate_is_clamped_and_reported():
    s = replace(fresh(), rate=MAX_RATE)
    s2, eff = go(s, "faster")
    assert s2.rate == MAX_RATE and "already the fastest" in said(eff)[0]
    s = replace(fresh(), rate=MIN_RATE)
    s2, eff = go(s, "slower")
    assert s2.rate == MIN_RATE and "already the slowest" in said(eff)[0]
    s2, eff = go(fresh(), "faster")
    assert SavePosition(None, DEFAULT_RATE + RATE_STEP, DEFAULT_VOLUME) in eff
    assert D.start(rate=9999)[0].rate == MAX_RATE


def test_louder_and_quieter_step_by_3_db_are_clamped_saved_and_reported():
    s = fresh()
    assert s.volume == DEFAULT_VOLUME == MAX_VOLUME
    s2, eff = go(s, "louder")  # at full loudness the guide says where louder can come from
    assert s2.volume == MAX_VOLUME and not any(isinstance(e, SetVolume) for e in eff)
    assert "already the loudest" in said(eff)[0] and "speaker" in said(eff)[0]
    s2, eff = go(s, "quieter")
    assert s2.volume == 71 and eff[:2] == [SetVolume(71), SavePosition(None, DEFAULT_RATE, 71)]
    assert said(eff) == ["Quieter: volume 71 percent."]
    assert go(s2, "repeat")[1] == go(s, "repeat")[1], "a volume change is not what repeat says again"
    levels = [s2.volume]
    while True:
        s2, eff = go(s2, "quieter")
        if s2.volume == levels[-1]:
            break
        levels.append(s2.volume)
    assert levels == [71, 50, 35, 25, 18, 13, 9, 6, 4, 3, 2, MIN_VOLUME] and "already the quietest" in said(eff)[0]
    s3, eff = go(s2, "louder")
    assert s3.volume == 2 and said(eff) == ["Louder: volume 2 percent."]
    assert go(replace(fresh(), volume=13), "louder")[0].volume == 18
    assert go(replace(fresh(), section="mec", volume=50), "stop")[1][0] == SavePosition("mec", DEFAULT_RATE, 50)


def test_start_sets_the_saved_volume_and_keys_change_it():
    state, effects = D.start(volume=50)
    assert state.volume == 50 and effects[:2] == [SetRate(DEFAULT_RATE), SetVolume(50)]
    assert D.start(volume=0)[0].volume == MIN_VOLUME and D.start(volume=400)[0].volume == MAX_VOLUME
    assert key_intent("+").intent == "louder" and key_intent("-").intent == "quieter"
    assert D.step(state, Key("-"))[0].volume == 35 and D.step(state, Key("+"))[0].volume == 71
    help_text = said(go(state, "help")[1])[0]
    assert "louder, quieter" in help_text and "plus for louder, minus for quieter" in help_text


def test_advice_requests_are_declined():
    for text in ["should I take xospata", "is gilteritinib right for me"]:
        s, eff = D.step(fresh(), Heard(Intent("none", None, text, 0.0)))
        assert "can't give medical advice" in said(eff)[0] and "care team" in said(eff)[0] and s.no_match == 0


def test_timeout_can_be_switched_off():
    d = Dialog(GUIDE, timeout=None)
    assert d.start()[1][-1] == Listen(None)
    assert Dialog(GUIDE, timeout=3.5).start()[1][-1] == Listen(3.5)


# ------------------------------------------------------------- escalation


@pytest.mark.parametrize("pack", list(PACKS))
@pytest.mark.parametrize("start", ["menu", "leaf_reading", "resume_question"])
def test_no_input_ladder_escalates_then_offers_a_way_out(pack, start):
    p = PACKS[pack]
    s = p.states()[start]
    prompts = []
    for _ in range(3):
        s, eff = p.dialog.step(s, NoInput())
        prompts.append(" ".join(said(eff)))
    assert len(set(prompts)) == 3, "each retry must be different"
    assert prompts[0].startswith("Sorry, I didn't hear anything.")
    assert prompts[1].startswith("I still didn't hear you.")
    assert "Your options are" in prompts[2] and "keyboard" in prompts[2]
    assert s.no_input == 0  # reset after the way out
    if start == "menu":
        assert s.paused, "at the top, the guide waits quietly instead of looping"
        s2, eff2 = p.dialog.step(s, NoInput())
        assert said(eff2) == [] and eff2 == [Listen(None)]
    else:
        assert s.section is None and "Let's go back to the main menu." in prompts[2]


def test_no_match_ladder_has_its_own_counter_and_cue():
    s = PACKS["aml"].states()["parent_section"]
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
    assert "press a number, or h for help" in " ".join(said(eff3))
    assert s.section is None and s.no_match == 0


def test_success_resets_both_counters():
    s = PACKS["aml"].states()["parent_section"]
    s, _ = D.step(s, NoInput())
    s, _ = D.step(s, NoMatch(""))
    assert (s.no_input, s.no_match) == (1, 1)
    s, _ = go(s, "where")
    assert (s.no_input, s.no_match) == (0, 0)
    s, _ = D.step(s, NoMatch(""))
    s, eff = D.step(s, NoMatch(""))
    assert s.no_match == 2 and "Sorry" in said(eff)[0]  # a fresh ladder: second step, not the way out


@pytest.mark.parametrize("pack", list(PACKS))
def test_no_endless_loop_under_endless_silence_or_noise(pack):
    p = PACKS[pack]
    s = p.states()["leaf_reading"]
    for i in range(50):
        s, eff = p.dialog.step(s, NoInput() if i % 2 else NoMatch("x"))
    assert s.paused  # ended up waiting quietly at the main menu
    assert p.dialog.step(s, NoInput())[1] == [Listen(None)]


# ------------------------------------------------------------- leaving


@pytest.mark.parametrize("pack", list(PACKS))
@pytest.mark.parametrize("state_name", STATE_NAMES)
def test_end_of_input_saves_and_exits_quietly_from_anywhere(pack, state_name):
    p = PACKS[pack]
    before = p.states()[state_name]
    after, eff = p.dialog.step(before, EndOfInput())
    assert said(eff) == [] and eff[-1] == Exit(0)
    save = next(e for e in eff if isinstance(e, SavePosition))
    assert save.section == (before.section or before.resume_to)
    assert p.dialog.step(after, Heard(Intent("help", None, "help", 1.0)))[1] == [Exit(0)]


@pytest.mark.parametrize("pack", PACKS.values(), ids=PACKS.keys())
@pytest.mark.parametrize("state_name", STATE_NAMES)
def test_likely_replies_are_what_the_guide_would_say_first(pack, state_name):
    """The first utterance after each current choice, then the common commands, then a no-match."""
    state, d = pack.states()[state_name], pack.dialog
    replies = d.likely_replies(state)
    assert len(replies) == len(set(replies))
    choices = d._choices(state)
    for n in range(1, len(choices) + 1):
        first = said(d.step(state, Key(str(n)))[1])[0]
        assert replies.index(first) < len(choices) + 1, f"choice {n} is not among the likeliest"
    for command in ("more", "next", "back", "repeat", "help"):
        assert said(go(state, command, dialog=d)[1])[0] in replies, command
    assert said(d.step(state, NoMatch(""))[1])[0] == replies[-1]
    assert d.likely_replies(replace(state, ended=True)) == []


def test_likely_replies_offer_the_resumed_section_when_asked():
    state = D.start(resume_to="transplant")[0]
    assert f"{GUIDE.section('transplant').title}." in D.likely_replies(state)


def test_a_section_with_one_part_says_part_not_parts():
    one = next(s for s in GUIDE.walk() if len(s.children) == 1)
    many = next(s for s in GUIDE.walk() if len(s.children) > 1)
    assert "It has one part: 1, " in said(go(fresh(), "open", one.id)[1])[-1]
    assert f"It has {len(many.children)} parts: 1, " in said(go(fresh(), "open", many.id)[1])[-1]
