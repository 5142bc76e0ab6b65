"""A phrase table of natural utterances per intent, including off-topic ones that must be `none`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from voiceguide.content import default_content_path, load_guide
from voiceguide.intents import INTENTS, Intent, IntentParser

PARSER = IntentParser(load_guide(default_content_path()))

TABLE: list[tuple[str, str, str | None]] = [
    # open: sections by title, alias, brand, target, everyday words, carriers
    ("tell me about stem cell transplants", "open", "transplant"),
    ("what's Xospata", "open", "gilteritinib"),
    ("the FLT3 drug", "open", "gilteritinib"),
    ("Tibsovo", "open", "ivosidenib"),
    ("tell me about Idhifa", "open", "enasidenib"),
    ("Mylotarg please", "open", "gemtuzumab-ozogamicin"),
    ("go to gemtuzumab ozogamicin", "open", "gemtuzumab-ozogamicin"),
    ("chemo", "open", "chemotherapy"),
    ("more chemo", "open", "chemotherapy"),
    ("I want to hear about chemotherapy", "open", "chemotherapy"),
    ("bone marrow transplant", "open", "transplant"),
    ("open the transplant section", "open", "transplant"),
    ("seven and three", "open", "repeat-induction"),
    ("7 and 3", "open", "repeat-induction"),
    ("high dose cytarabine", "open", "high-dose-cytarabine"),
    ("high dose ara c", "open", "high-dose-cytarabine"),
    ("MEC", "open", "mec"),
    ("Vepesid", "open", "mec"),
    ("cytoxan", "open", "etoposide-cyclophosphamide"),
    ("etoposide and cyclophosphamide", "open", "etoposide-cyclophosphamide"),
    ("FLAG", "open", "flag"),
    ("fludarabine", "open", "flag"),
    ("allogeneic", "open", "allogeneic"),
    ("donor transplant", "open", "allogeneic"),
    ("targeted drugs", "open", "targeted-therapy"),
    ("targeted therapy", "open", "targeted-therapy"),
    ("ivosidenib", "open", "ivosidenib"),
    ("enasidenib", "open", "enasidenib"),
    ("gilteritinib", "open", "gilteritinib"),
    ("the IDH1 drug", "open", "ivosidenib"),
    ("the IDH2 drug", "open", "enasidenib"),
    ("overview", "open", "overview"),
    ("the basics", "open", "overview"),
    ("wrap up", "open", "closing"),  # "summary" no longer jumps to the closing (content issue 17)
    ("where to get help", "open", "closing"),
    ("take me to targeted drugs", "open", "targeted-therapy"),
    ("let's hear about xospata", "open", "gilteritinib"),
    ("what about transplants", "open", "transplant"),
    # small ASR-style errors
    ("gilteritnib", "open", "gilteritinib"),
    ("zospata", "open", "gilteritinib"),
    ("chemotherapie", "open", "chemotherapy"),
    ("ivosidinib", "open", "ivosidenib"),
    ("mylotarge", "open", "gemtuzumab-ozogamicin"),
    # define
    ("what does remission mean", "define", "remission"),
    ("what does refractory mean", "define", "refractory"),
    ("what is a monoclonal antibody", "define", "monoclonal antibody"),
    ("define relapsed", "define", "relapsed"),
    ("what's a mutation", "define", "mutation"),
    ("what does G-CSF stand for", "define", "g-csf"),
    ("what does allogeneic mean", "define", "allogeneic"),
    ("meaning of autologous", "define", "autologous"),
    ("what is AML", "define", "acute myeloid leukemia"),
    ("remission", "define", "remission"),
    ("what is differentiation", "define", "differentiation"),
    # commands
    ("say that again", "repeat", None), ("repeat", "repeat", None), ("pardon", "repeat", None),
    ("can you repeat that", "repeat", None), ("what did you say", "repeat", None),
    ("go back", "back", None), ("back", "back", None), ("take me back", "back", None),
    ("next", "next", None), ("next one", "next", None), ("move on", "next", None),
    ("previous", "previous", None), ("the one before", "previous", None), ("previous section", "previous", None),
    ("more", "more", None), ("tell me more", "more", None), ("keep going", "more", None), ("go on", "more", None),
    ("skip", "skip", None), ("skip this", "skip", None), ("next sentence", "skip", None),
    ("main menu", "menu", None), ("menu", "menu", None), ("start over", "menu", None), ("go home", "menu", None),
    ("help", "help", None), ("what can I say", "help", None), ("I'm lost", "help", None), ("help me please", "help", None),
    ("stop", "stop", None), ("quit", "stop", None), ("goodbye", "stop", None), ("I'm done", "stop", None),
    ("that's all", "stop", None), ("bye", "stop", None),
    ("pause", "pause", None), ("wait", "pause", None), ("hold on", "pause", None), ("just a second", "pause", None),
    ("continue", "resume", None), ("resume", "resume", None), ("carry on", "resume", None), ("I'm back", "resume", None),
    ("faster", "faster", None), ("speed up", "faster", None), ("talk faster please", "faster", None),
    ("slower", "slower", None), ("slow down", "slower", None), ("too fast", "slower", None),
    ("louder", "louder", None), ("turn it up a bit", "louder", None), ("could you speak up", "louder", None),
    ("I can't hear you", "louder", None), ("quieter please", "quieter", None), ("turn it down", "quieter", None),
    ("that's too loud", "quieter", None), ("turn it off", "stop", None), ("be quiet", "pause", None),
    ("where am I", "where", None), ("what section is this", "where", None), ("where are we", "where", None),
    ("yes", "yes", None), ("yeah", "yes", None), ("sure", "yes", None), ("okay", "yes", None),
    ("no", "no", None), ("nope", "no", None), ("no thanks", "no", None), ("not now", "no", None),
    # numbers
    ("number two", "number", "2"), ("the second one", "number", "2"), ("2", "number", "2"), ("three", "number", "3"),
    ("option 4", "number", "4"), ("press 1", "number", "1"), ("the first one", "number", "1"),
    ("number to", "number", "2"), ("five", "number", "5"), ("the third", "number", "3"),
    # names and commands inside longer phrases, in any order; the more specific of a section and its parent
    ("back to chemo", "open", "chemotherapy"), ("hold on a minute", "pause", None),
    ("could you go a bit faster", "faster", None), ("what's a remission", "define", "remission"),
    ("gemtuzumab the cd33 drug", "open", "gemtuzumab-ozogamicin"), ("the drug that is for FLT3", "open", "gilteritinib"),
    ("I'd like the overview", "open", "overview"), ("flag regimen please", "open", "flag"),
    ("what do you mean by refractory disease", "define", "refractory"), ("jump to mec", "open", "mec"),
    ("chemo MEC", "open", "mec"), ("the targeted drugs Xospata", "open", "gilteritinib"),
    ("take me to the menu", "menu", None), ("go back one level", "back", None), ("stop stop", "stop", None),
    # two different things, or a leftover word: not a guess
    ("ivosidenib or enasidenib", "none", None), ("the IDH1 and IDH2 drugs", "none", None),
    ("should I stop my chemo", "none", None), ("is xospata right for me", "none", None),
    ("next bus into the city", "none", None), ("stop the car", "none", None),
    # off-topic: must be none, never a guess
    ("what's the weather like", "none", None), ("play some music", "none", None), ("I like turtles", "none", None),
    ("tell me about the weather", "none", None), ("what time is it", "none", None), ("call my daughter", "none", None),
    ("set a timer for ten minutes", "none", None), ("who won the game last night", "none", None),
    ("order a pizza", "none", None), ("turn on the lights", "none", None), ("what's the capital of France", "none", None),
    ("tell me a joke", "none", None), ("how tall is mount everest", "none", None), ("I need to buy milk", "none", None),
    ("what does banana mean", "none", None), ("open the garage door", "none", None), ("the cat is sleeping", "none", None),
    ("send an email", "none", None), ("what's on tv tonight", "none", None), ("remind me to take the bins out", "none", None),
    ("how do I bake bread", "none", None), ("go to the kitchen", "none", None), ("flag football scores", "none", None),
    ("my transplant of tomatoes died in the garden", "none", None), ("", "none", None), ("um", "none", None),
    ("asdf qwerty", "none", None), ("la la la", "none", None),
    # issue 16: cancel, sources, disclaimer, keys; "uh huh" is a yes, not "huh"; skip is a sentence, by section is next
    ("never mind", "cancel", None), ("cancel", "cancel", None), ("forget it", "cancel", None),
    ("where is this from", "sources", None), ("what are your sources", "sources", None), ("sources", "sources", None),
    ("disclaimer", "disclaimer", None), ("read the disclaimer", "disclaimer", None),
    ("keys", "keys", None), ("what are the keys", "keys", None),
    ("uh huh", "yes", None), ("okay", "yes", None), ("mm hmm", "yes", None),
    ("skip section", "next", None), ("skip this section", "next", None), ("next sentence", "skip", None),
    ("next paragraph", "more", None), ("describe them", "more", None), ("stop talking", "pause", None),
]


def test_table_is_large_and_covers_every_intent():
    assert len(TABLE) >= 150
    assert {intent for _, intent, _ in TABLE} == set(INTENTS)
    assert sum(1 for _, intent, _ in TABLE if intent == "none") >= 25


def test_phrase_table_accuracy():
    wrong = []
    for text, intent, target in TABLE:
        got = PARSER.parse(text)
        if (got.intent, got.target) != (intent, target):
            wrong.append(f"{text!r}: expected {intent} {target}, got {got.intent} {got.target}")
    accuracy = 1 - len(wrong) / len(TABLE)
    assert accuracy >= 0.97, f"accuracy {accuracy:.3f}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("text", [t for t, i, _ in TABLE if i == "none"])
def test_off_topic_is_none(text):
    got = PARSER.parse(text)
    assert got.intent == "none" and got.target is None and got.confidence == 0.0


def test_result_fields_and_confidence():
    got = PARSER.parse("gilteritnib")
    assert isinstance(got, Intent) and got.text == "gilteritnib"
    assert 0.8 <= got.confidence < 1.0
    assert PARSER.parse("Xospata").confidence == 1.0
    assert set(got.to_json()) == {"intent", "target", "text", "confidence"}


def test_grammar_comes_from_the_content_not_hard_coded(tmp_path):
    from tests.test_content import make_pack

    parser = IntentParser(load_guide(make_pack(tmp_path)))
    assert (parser.parse("tell me about first one").intent, parser.parse("tell me about first one").target) == ("open", "alpha")
    assert parser.parse("what does widget mean").target == "widget"
    assert parser.parse("xospata").intent == "none"  # not in this pack


MINI_TABLE = [
    ("tell me about ventolin", "open", "albuterol"), ("the blue one", "none", None), ("Pulmicort", "open", "budesonide"),
    ("what does corticosteroid mean", "define", "corticosteroid"), ("what's a dose", "define", "dose"),
    ("steroid", "define", "corticosteroid"), ("inhaler types", "open", "inhalers"),
    ("the rescue inhaler albuterol", "open", "albuterol"), ("spacer device", "open", "spacers"),
    ("albuterall", "open", "albuterol"), ("go back", "back", None), ("number three", "number", "3"),
    ("what's xospata", "none", None), ("tell me about chemotherapy", "none", None), ("play some music", "none", None),
]


@pytest.mark.parametrize("text,intent,target", MINI_TABLE)
def test_a_different_pack_gives_its_own_names(text, intent, target):
    from pathlib import Path

    parser = IntentParser(load_guide(Path(__file__).parent / "data" / "mini"))
    got = parser.parse(text)
    assert (got.intent, got.target) == (intent, target)


def test_parse_cli_prints_one_json_line_per_text_in_order():
    texts = ["what's Xospata", "hold on", "I like turtles", "number two"]
    proc = subprocess.run([sys.executable, "-m", "voiceguide", "parse", "--json", *texts],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in rows] == texts
    assert [(r["intent"], r["target"]) for r in rows] == [("open", "gilteritinib"), ("pause", None),
                                                          ("none", None), ("number", "2")]
    assert all(set(r) == {"intent", "target", "text", "confidence"} for r in rows)


@pytest.mark.parametrize("text,intent", [("uh huh", "yes"), ("huh", "repeat"), ("skip", "skip"), ("skip section", "next"),
                                         ("never mind", "cancel"), ("where is this from", "sources"),
                                         ("where am i", "where"), ("stop", "stop"), ("stop talking", "pause")])
def test_issue_16_command_meanings(text, intent):
    assert PARSER.parse(text).intent == intent


@pytest.mark.parametrize("text", ["what are the side effects of gilteritinib", "gilteritinib side effects",
                                  "the risks of a transplant"])
def test_two_unrelated_sections_named_is_a_question_not_a_place(text):
    # The longer name used to win ("side effects" opened Serious Warnings); the asker answers these instead.
    assert PARSER.parse(text).intent == "none", PARSER.parse(text)


@pytest.mark.parametrize("text,intent", [("is that the end", "where"), ("are we done", "where"),
                                         ("is it finished", "where"), ("the end", "stop"), ("we are done", "stop"),
                                         ("we're done for now", "stop")])
def test_a_yes_no_question_about_ending_is_never_a_way_out(text, intent):
    assert PARSER.parse(text).intent == intent


@pytest.mark.parametrize("text, intent, target", [
    ("neither", "no", None), ("neither of them", "no", None), ("neither one", "no", None),
    ("none of them", "no", None), ("not that one", "no", None), ("that's wrong", "no", None),
    ("the first", "number", "1"), ("the second", "number", "2"), ("the first one", "number", "1"),
    ("the second one", "number", "2"), ("first", "number", "1"), ("one", "number", "1"), ("two", "number", "2"),
    ("number four", "number", "4"), ("number nine", "number", "9"), ("yes", "yes", None), ("no", "no", None),
])
def test_the_answers_to_a_confirmation_are_understood(text, intent, target):
    got = PARSER.parse(text)
    assert (got.intent, got.target) == (intent, target)


def test_the_answers_to_a_confirmation_are_in_the_spoken_grammar():
    """The recogniser's grammar is built from the command phrasings and numbers: the answers must be in it."""
    from voiceguide.asr import _model_dir
    from voiceguide.grammar import compile_grammar

    grammar = compile_grammar(PARSER.guide, str(_model_dir() / "en-us" / "cmudict-en-us.dict"))
    for words in ("yes", "no", "neither", "neither of them", "none of them", "the first", "the second", "one", "two",
                  "number one", "number nine", "nine"):
        assert grammar.accepts(words), words
