"""Content packs: the shipped guide validates; every kind of broken pack gives the right one-line error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from voiceguide.content import (MAX_SUMMARY_GRADE, MAX_SUMMARY_WORDS, count_syllables, default_content_path,
                                load_guide, normalize, reading_grade, validate)
from voiceguide.errors import ContentError

SHIPPED = default_content_path()

GUIDE = """\
id: mini
title: Mini guide
language: en
last_reviewed: 2026-01-02
disclaimer: This is information, not advice.
sources:
  - id: src
    title: A source
sections: [alpha, beta]
"""
ALPHA = """\
id: alpha
title: Alpha
summary: The first part.
body:
  - One sentence.
  - Two sentences.
aliases: [first one]
terms: [widget]
sources: [src]
children:
  - id: alpha-child
    title: Alpha child
    summary: A child part.
    body: [Child text about zorbitide.]
    sources: [src]
"""
BETA = """\
id: beta
title: Beta
summary: The second part.
body: [Beta text.]
sources: [src]
"""
GLOSSARY = """\
terms:
  - term: widget
    aliases: [widgets]
    definition: A small thing.
"""
REVIEW = """\
review:
  date: 2026-01-03
  by: the test team
  kind: checked against the one source
  sources: [src]
"""
HARD = ("Subsequent administration of intensified cytotoxic regimens necessitates comprehensive "
        "hematological evaluation.")
LEXICON = """\
entries:
  - word: zorbitide
    say: ZOR bih tide
    phones: Z AO R B IH T AY D
"""


def make_pack(root: Path, **overrides: str | None) -> Path:
    files = {
        "guide.yaml": GUIDE, "sections/alpha.yaml": ALPHA, "sections/beta.yaml": BETA,
        "glossary.yaml": GLOSSARY, "lexicon.yaml": LEXICON,
    }
    files.update(overrides)
    for rel, text in files.items():
        if text is None:
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voiceguide", *args], capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------- the shipped pack


def test_shipped_pack_validates():
    errors = validate(SHIPPED)
    assert errors == [], "\n".join(map(str, errors))


def test_shipped_pack_has_required_structure():
    guide = load_guide(SHIPPED)
    ids = {s.id for s in guide.walk()}
    required = {
        "overview", "chemotherapy", "repeat-induction", "high-dose-cytarabine", "mec",
        "etoposide-cyclophosphamide", "flag", "transplant", "allogeneic", "targeted-therapy",
        "ivosidenib", "enasidenib", "gilteritinib", "gemtuzumab-ozogamicin",
    }
    assert required <= ids
    assert guide.section("mec").id in {c.id for c in guide.section("chemotherapy").children}
    assert guide.parent("gilteritinib").id == "targeted-therapy"
    assert guide.sections[0].id == "overview" and guide.sections[-1].id not in required  # a closing section
    assert guide.disclaimer and guide.last_reviewed.year >= 2025
    assert len(guide.sources) >= 6 and guide.adapted_from
    for sec in guide.walk():
        assert sec.sources, sec.id
        assert len(sec.summary.split()) < MAX_SUMMARY_WORDS
        assert sec.body


def test_shipped_pack_brand_names_lead_to_the_right_drug():
    names = load_guide(SHIPPED).names()
    for brand, drug in [("tibsovo", "ivosidenib"), ("idhifa", "enasidenib"), ("xospata", "gilteritinib"),
                        ("mylotarg", "gemtuzumab-ozogamicin")]:
        assert names[brand] == ("section", drug)


def test_shipped_glossary_and_lexicon_cover_the_hard_words():
    guide = load_guide(SHIPPED)
    for term in ["relapsed", "refractory", "remission", "allogeneic", "autologous", "monoclonal antibody", "mutation"]:
        assert guide.term(term) is not None, term
    lexwords = {e.word.lower() for e in guide.lexicon}
    for word in ["ivosidenib", "enasidenib", "gilteritinib", "cytarabine", "tibsovo", "xospata"]:
        assert word in lexwords, word


# --------------------------------------------------------------------------- readability

#: syllables by a pronouncing dictionary's count, checked by hand (the rule misses "video", "sometimes", "create")
HAND_SYLLABLES = {
    "leukemia": 4, "chemotherapy": 5, "differentiation": 6, "remission": 3, "refractory": 4, "relapsed": 2,
    "treatment": 2, "comes": 1, "changes": 2, "wanted": 2, "named": 1, "make": 1, "table": 2, "little": 2,
    "people": 2, "radio": 3, "nation": 2, "special": 2, "media": 3, "medium": 3, "gradual": 3, "stem": 1,
    "transplant": 2, "allogeneic": 5, "targeted": 3, "drugs": 1, "mutation": 3, "cells": 1, "marrow": 2,
    "destroyed": 2, "replaced": 2, "another": 3, "person": 2, "usually": 4, "option": 2, "cure": 1, "some": 1,
    "care": 1, "team": 1, "every": 3, "mature": 2, "immune": 2, "protein": 2, "antibody": 4, "syndrome": 2,
    "swelling": 2, "breathing": 2, "weight": 1, "fever": 2, "trouble": 2, "liver": 2, "damage": 2,
    "clinical": 3, "trial": 2, "trials": 2, "research": 2, "study": 2, "studies": 2, "doctor": 2, "given": 2,
    "higher": 2, "lasted": 2, "year": 1, "growth": 1, "factor": 2, "white": 1, "body": 2, "helps": 1,
    "infection": 3, "uses": 2, "tested": 2, "change": 1, "gene": 1, "genes": 1, "anti": 2, "tumor": 2,
    "antibiotic": 5, "possible": 3, "again": 2, "responded": 3, "active": 2, "away": 2, "schedule": 2,
    "combines": 2, "itself": 2, "idea": 3, "area": 3, "initial": 3, "period": 3, "social": 2, "video": 3,
    "sometimes": 2, "create": 2,
}


def test_syllable_rule_agrees_with_hand_counts():
    wrong = {w: (count_syllables(w), n) for w, n in HAND_SYLLABLES.items() if count_syllables(w) != n}
    assert len(wrong) <= 3, wrong  # 110 words, 107 right
    assert count_syllables("G-CSF") >= 1 and count_syllables("7") == 1 and count_syllables("") == 0


def test_reading_grade_tells_plain_from_dense():
    plain = "Chemo can be given again. It can help when the cancer comes back."
    dense = ("Subsequent administration of intensified cytotoxic pharmacotherapeutic regimens "
             "necessitates comprehensive evaluation of individualized hematological parameters.")
    assert reading_grade(plain) < 4 < 14 < reading_grade(dense)
    # the same words cut into shorter sentences read easier
    assert reading_grade("The drug is given. It helps. It is safe.") < reading_grade("The drug is given and it helps and it is safe.")


def test_lexicon_words_count_as_two_syllables():
    text = "Gemtuzumab ozogamicin is sold as Mylotarg."
    assert reading_grade(text, frozenset({"gemtuzumab", "ozogamicin", "mylotarg"})) < reading_grade(text) - 3


def test_every_shipped_summary_is_grade_8_or_below():
    guide = load_guide(SHIPPED)
    plain = frozenset(w for e in guide.lexicon for w in (normalize(e.word), *normalize(e.word).split()))
    grades = {s.id: round(reading_grade(s.summary, plain), 1) for s in guide.walk()}
    assert max(grades.values()) <= MAX_SUMMARY_GRADE == 8, grades


def test_summaries_lead_with_their_content():
    for sec in load_guide(SHIPPED).walk():
        assert not re.match(r"(?i)this (part|section) (is about|explains|sums up)", sec.summary), sec.id


# --------------------------------------------------------------------------- broken packs

BROKEN = [
    # (name, overrides, expected file, expected line, expected fragment)
    ("syntax error", {"sections/beta.yaml": "id: beta\ntitle: [Beta\nsummary: x\n"}, "sections/beta.yaml", 3, "syntax error"),
    ("unknown field", {"sections/beta.yaml": BETA + "colour: blue\n"}, "sections/beta.yaml", 6, "colour: unknown field"),
    ("duplicate id", {"sections/beta.yaml": BETA.replace("[Beta text.]", "[Beta text.]\nchildren:\n  - id: alpha-child\n    title: Again\n    summary: s\n    body: [b]\n    sources: [src]")},
     "sections/beta.yaml", 6, "duplicate id 'alpha-child'"),
    ("ambiguous alias", {"sections/beta.yaml": BETA + "aliases: [second, First One]\n"}, "sections/beta.yaml", 6, "ambiguous: 'First One' also leads to section 'alpha'"),
    ("glossary alias on two terms", {"glossary.yaml": GLOSSARY + "  - term: gizmo\n    aliases: [Widgets]\n    definition: d\n"}, "glossary.yaml", 6, "ambiguous: 'Widgets' also leads to glossary term 'widget'"),
    ("dangling glossary reference", {"sections/alpha.yaml": ALPHA.replace("terms: [widget]", "terms: [gadget]")}, "sections/alpha.yaml", 8, "'gadget' is not in the glossary"),
    ("code-executing tag", {"sections/beta.yaml": BETA + "x: !!python/object/apply:os.system ['touch /tmp/vg-pwned']\n"}, "sections/beta.yaml", 6, "tag !!python/object/apply:os.system is not allowed"),
    ("empty file", {"sections/beta.yaml": ""}, "sections/beta.yaml", 1, "file is empty"),
    ("missing section file", {"sections/beta.yaml": None}, "sections/beta.yaml", None, "file not found"),
    ("missing required field", {"sections/beta.yaml": BETA.replace("summary: The second part.\n", "")}, "sections/beta.yaml", 1, "summary: required field 'summary' is missing"),
    ("summary too long", {"sections/beta.yaml": BETA.replace("The second part.", " ".join(["word"] * 61))}, "sections/beta.yaml", 3, "summary has 61 words"),
    ("unknown source", {"sections/beta.yaml": BETA.replace("sources: [src]", "sources: [nope]")}, "sections/beta.yaml", 5, "unknown source 'nope'"),
    ("bad id", {"sections/beta.yaml": BETA + "children:\n  - id: Bad_Id\n    title: t\n    summary: s\n    body: [b]\n    sources: [src]\n"}, "sections/beta.yaml", 7, "'Bad_Id' is not a valid id"),
    ("bad phone", {"lexicon.yaml": LEXICON.replace("AY D", "AY2 D")}, "lexicon.yaml", 4, "unknown ARPAbet phone(s) AY2"),
    ("unused lexicon entry", {"lexicon.yaml": LEXICON + "  - word: quuxamab\n    say: kwux a mab\n"}, "lexicon.yaml", 5, "'quuxamab' does not appear anywhere"),
    ("bad date", {"guide.yaml": GUIDE.replace("2026-01-02", "soon")}, "guide.yaml", 4, "last_reviewed: expected a date"),
    ("wrong type", {"sections/beta.yaml": BETA.replace("body: [Beta text.]", "body: just text")}, "sections/beta.yaml", 4, "body: expected a list"),
    ("not a mapping", {"glossary.yaml": "- just\n- a list\n"}, "glossary.yaml", 1, "expected a mapping"),
    ("duplicate glossary term", {"glossary.yaml": GLOSSARY + "  - term: Widget\n    definition: again\n"}, "glossary.yaml", 5, "duplicate glossary term"),
    # content issue 17: sources, drugs, reading grade, review record
    ("summary too hard to hear", {"sections/beta.yaml": BETA.replace("The second part.", HARD)}, "sections/beta.yaml", 3,
     "summary: reading grade"),
    ("section without sources", {"sections/beta.yaml": BETA.replace("sources: [src]", "sources: []")}, "sections/beta.yaml", 5,
     "sources: list is empty"),
    ("drug without a glossary entry", {"guide.yaml": GUIDE + "drugs: [zorbitide]\n"}, "sections/alpha.yaml", 14,
     "children[0].body[0]: drug 'zorbitide' is named here but has no glossary entry"),
    ("drug without a lexicon entry", {"guide.yaml": GUIDE + "drugs: [quuxamab]\n",
                                      "sections/alpha.yaml": ALPHA.replace("One sentence.", "Quuxamab is a drug."),
                                      "glossary.yaml": GLOSSARY + "  - term: quuxamab\n    definition: A drug.\n"},
     "sections/alpha.yaml", 5, "body[0]: drug 'quuxamab' is named here but has no lexicon entry"),
    ("listed drug named nowhere", {"guide.yaml": GUIDE + "drugs: [zorbitide, nowheramab]\n"}, "guide.yaml", 10,
     "drugs[1]: 'nowheramab' is not named anywhere"),
    ("review against an unknown source", {"guide.yaml": GUIDE + REVIEW.replace("[src]", "[src, nope]")}, "guide.yaml", 14,
     "review.sources[1]: unknown source 'nope'"),
    ("review without who", {"guide.yaml": GUIDE + REVIEW.replace("  by: the test team\n", "")}, "guide.yaml", 10,
     "review.by: required field 'by' is missing"),
    ("review clinical not true or false", {"guide.yaml": GUIDE + REVIEW + "  clinical: maybe\n"}, "guide.yaml", 15,
     "review.clinical: expected true or false"),
]


def test_the_mini_pack_is_valid(tmp_path):
    pack = make_pack(tmp_path)
    assert validate(pack) == []
    guide = load_guide(pack)
    assert [s.id for s in guide.walk()] == ["alpha", "alpha-child", "beta"]
    assert guide.names()["first one"] == ("section", "alpha")
    assert guide.names()["widgets"] == ("term", "widget")


def test_a_section_and_a_term_may_share_a_name(tmp_path):
    pack = make_pack(tmp_path, **{"sections/beta.yaml": BETA + "aliases: [widgets]\n"})
    assert validate(pack) == []
    guide = load_guide(pack)
    assert guide.names()["widgets"] == ("section", "beta")
    assert guide.term("widgets").term == "widget"


@pytest.mark.parametrize("name,overrides,file,line,fragment", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_pack_gives_one_line_error(tmp_path, name, overrides, file, line, fragment):
    pack = make_pack(tmp_path, **overrides)
    errors = validate(pack)
    assert errors, f"{name}: expected an error"
    texts = [str(e) for e in errors]
    match = [e for e in errors if fragment in str(e)]
    assert match, texts
    err = match[0]
    assert err.path == str(pack / file)
    assert err.line == line, texts
    assert "\n" not in str(err)
    assert str(err).startswith(f"{pack / file}:{line}:" if line else f"{pack / file}:")
    with pytest.raises(ContentError):
        load_guide(pack)


def test_code_executing_tag_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    pack = make_pack(tmp_path / "p", **{"sections/beta.yaml": BETA + f"x: !!python/object/apply:os.system ['touch {marker}']\n"})
    assert validate(pack)
    assert not marker.exists()


def test_validate_cli_reports_each_error_on_one_line_without_traceback(tmp_path):
    pack = make_pack(tmp_path, **{"sections/beta.yaml": BETA + "colour: blue\naliases: [first one]\n"})
    proc = run_cli("validate", str(pack))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert any(l.startswith(f"{pack}/sections/beta.yaml:6: colour: unknown field") for l in lines), lines
    assert any("ambiguous" in l and ":7:" in l for l in lines), lines
    assert "Traceback" not in proc.stderr + proc.stdout
    assert lines[-1] == f"2 problems found in {pack}."


@pytest.mark.parametrize("target", ["does-not-exist", "a-file.txt"])
def test_validate_cli_missing_or_wrong_path(tmp_path, target):
    (tmp_path / "a-file.txt").write_text("hello")
    proc = run_cli("validate", str(tmp_path / target))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert str(tmp_path / target) in proc.stderr


def test_unreadable_file_is_a_clear_error(tmp_path):
    pack = make_pack(tmp_path)
    (pack / "sections/beta.yaml").write_bytes(b"id: beta\ntitle: \xff\xfe\n")
    errors = validate(pack)
    assert any("not UTF-8" in str(e) and "beta.yaml" in str(e) for e in errors)


def test_validate_cli_on_shipped_pack():
    proc = run_cli("validate")
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout and "sections" in proc.stdout
    assert "who are not clinicians; not reviewed by a clinician." in proc.stdout


def test_outline_json_is_the_tree(tmp_path):
    pack = make_pack(tmp_path)
    proc = run_cli("outline", "--json", "--content", str(pack))
    assert proc.returncode == 0, proc.stderr
    tree = json.loads(proc.stdout)
    assert tree["id"] == "mini" and tree["title"] == "Mini guide"
    assert [c["id"] for c in tree["children"]] == ["alpha", "beta"]
    alpha = tree["children"][0]
    assert set(alpha) == {"id", "title", "summary", "children"}
    assert alpha["summary"] == "The first part."
    assert alpha["children"][0]["id"] == "alpha-child" and alpha["children"][0]["children"] == []


def test_outline_plain_lists_every_section(tmp_path):
    proc = run_cli("outline", "--content", str(make_pack(tmp_path)))
    assert proc.returncode == 0
    assert "1. Alpha (id: alpha)" in proc.stdout
    assert "1.1. Alpha child (id: alpha-child)" in proc.stdout
    assert "2. Beta (id: beta)" in proc.stdout
    assert "\x1b[" not in proc.stdout


def test_outline_on_a_broken_pack_is_one_line(tmp_path):
    proc = run_cli("outline", "--content", str(make_pack(tmp_path, **{"guide.yaml": GUIDE + "oops: 1\n"})))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "guide.yaml:10: oops: unknown field" in proc.stderr


def test_bundled_copy_matches(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEGUIDE_CONTENT", str(make_pack(tmp_path)))
    assert load_guide().id == "mini"


# --------------------------------------------------------------------------- content issue 17: drugs, sources, review


def test_a_named_drug_with_lexicon_and_glossary_entries_is_valid(tmp_path):
    pack = make_pack(tmp_path, **{"guide.yaml": GUIDE + "drugs: [zorbitide]\n",
                                  "glossary.yaml": GLOSSARY + "  - term: zorbitide\n    definition: A drug.\n"})
    assert validate(pack) == []
    assert load_guide(pack).drugs == ("zorbitide",)


def test_sources_for_a_section_and_for_the_guide(tmp_path):
    guide = load_guide(make_pack(tmp_path, **{"guide.yaml": GUIDE.replace(
        "    title: A source\n", "    title: A source\n    publisher: The Publisher\n    url: https://example.org/a\n")}))
    assert [s.id for s in guide.sources_for("alpha-child")] == ["src"]
    assert guide.sources_for() == list(guide.sources)
    assert guide.sources_for("beta")[0].spoken == "The Publisher, A source"
    assert guide.sources_sentence("beta") == "Beta is based on: The Publisher, A source."
    assert guide.sources_sentence() == "This guide draws on 1 sources: The Publisher, A source."


def test_review_sentence_says_who_when_how_and_never_claims_a_clinical_review(tmp_path):
    guide = load_guide(make_pack(tmp_path, **{"guide.yaml": GUIDE + REVIEW}))
    said = guide.review_sentence()
    assert said == ("This guide was last checked on January 3, 2026, by the test team. It was checked against "
                    "the one source, 1 sources in all. It has not been reviewed by a clinician.")
    clinical = load_guide(make_pack(tmp_path / "c", **{"guide.yaml": GUIDE + REVIEW + "  clinical: true\n"}))
    assert "clinician" not in clinical.review_sentence()
    bare = load_guide(make_pack(tmp_path / "b"))
    assert bare.review is None and "has not been reviewed by a clinician" in bare.review_sentence()


def test_shipped_review_record_is_honest():
    guide = load_guide(SHIPPED)
    r = guide.review
    assert r is not None and r.clinical is False and "not clinicians" in r.by
    assert {"verywell", "fda-tibsovo", "fda-idhifa", "fda-xospata", "fda-mylotarg"} <= set(r.sources)
    said = guide.review_sentence()
    assert "not clinicians" in said and "It has not been reviewed by a clinician." in said
    assert r.date == guide.last_reviewed and f"{r.date.year}" in said
    closing = " ".join(guide.section("closing").body)
    assert "not clinicians" in closing and "has not been reviewed by a clinician" in closing


def test_every_source_a_section_cites_can_be_checked():
    guide = load_guide(SHIPPED)
    cited = {sid for sec in guide.walk() for sid in sec.sources}
    for sid in cited:
        assert guide.source(sid).url.startswith("http"), sid
    for label, drug in [("fda-mylotarg", "gemtuzumab-ozogamicin"), ("fda-tibsovo", "ivosidenib"),
                        ("fda-idhifa", "enasidenib"), ("fda-xospata", "gilteritinib")]:
        assert label in guide.section(drug).sources, (drug, label)
    assert any(s.publisher == "National Cancer Institute" for s in guide.sources_for("other-options"))


def test_every_drug_and_regimen_has_a_glossary_entry():
    guide = load_guide(SHIPPED)
    assert len(guide.drugs) >= 20
    for name in (*guide.drugs, "seven and three", "high dose cytarabine", "MEC", "FLAG", "etoposide and cyclophosphamide"):
        assert guide.term(name) is not None, name


# --------------------------------------------------------------------------- content issue 17: what the guide says

def _text(guide, sid, *, summary=True) -> str:
    sec = guide.section(sid)
    return " ".join(((sec.summary,) if summary else ()) + sec.body)


def test_targeted_drugs_say_who_they_are_for_and_the_step_to_take():
    guide = load_guide(SHIPPED)
    for sid, target in [("ivosidenib", "IDH1"), ("enasidenib", "IDH2"), ("gilteritinib", "FLT3"),
                        ("gemtuzumab-ozogamicin", "CD33")]:
        text = _text(guide, sid)
        assert target in guide.section(sid).summary, sid
        assert "only for leukemia whose tests show" in text, sid
        assert "Ask whether your leukemia was tested" in text, sid
    parent = _text(guide, "targeted-therapy")
    assert "Ask whether your leukemia was tested for IDH1, IDH2, FLT3, and CD33." in parent
    assert "They work on certain gene changes" not in parent
    assert "good news" in parent and "drug made for it" in parent  # says what the good news is


def test_the_wrong_statements_of_round_one_are_gone():
    guide = load_guide(SHIPPED)
    everything = " ".join(" ".join((s.summary, *s.body)) for s in guide.walk())
    assert "sources do not describe" not in everything
    assert "This part is about" not in everything
    ivo = _text(guide, "ivosidenib")
    assert "IDH2" not in ivo and "which helps leukemia cells mature the way they should" not in ivo
    gem = _text(guide, "gemtuzumab-ozogamicin")
    assert "draws the chemotherapy" not in gem and "on its own" in gem and "cell killing drug" in gem
    assert "older" not in _text(guide, "enasidenib") and "Age alone does not decide it." in _text(guide, "enasidenib")
    allo = _text(guide, "allogeneic")
    assert "the one option that can cure" not in allo and "For some people" in allo and "may cure" in allo


def test_boxed_warnings_are_said_with_their_signs_and_what_to_do():
    guide = load_guide(SHIPPED)
    for sid in ("ivosidenib", "enasidenib", "gilteritinib"):
        text = _text(guide, sid, summary=False)
        assert "boxed warning for differentiation syndrome" in text, sid
        for sign in ("fever", "trouble breathing", "swelling", "fast weight gain"):
            assert sign in text, (sid, sign)
        assert "call your care team right away" in text, sid
        assert "This guide does not cover its other side effects; ask your care team." in text, sid
    gem = _text(guide, "gemtuzumab-ozogamicin", summary=False)
    assert "boxed warning for liver damage" in gem and "veno-occlusive disease" in gem
    assert "call your care team right away" in gem


def test_other_options_and_clinical_trials_part():
    guide = load_guide(SHIPPED)
    text = _text(guide, "other-options")
    assert "A clinical trial is a research study." in text and "may be an option" in text
    assert "Ask your care team" in text
    assert "olutasidenib" in text.lower() and "IDH1" in text and "menin inhibitors" in text and "KMT2A or NPM1" in text


NAVIGATION = [
    # round one's wrong places
    ("high dose etoposide", "open", "etoposide-cyclophosphamide"),
    ("autologous transplant", "open", "transplant"),  # the transplant part says the guide covers the allogeneic kind
    # phrases that led nowhere
    ("side effects", "open", "side-effects"), ("risks", "open", "side-effects"),
    ("clinical trials", "open", "other-options"), ("is there a cure", "open", "overview"),
    ("donor", "open", "allogeneic"), ("gene test", "open", "targeted-therapy"),
    ("tell me about clinical trials", "open", "other-options"), ("gene testing", "open", "targeted-therapy"),
    ("what are the side effects", "open", "side-effects"), ("can it be cured", "open", "overview"),
    # new names
    ("olutasidenib", "open", "other-options"), ("menin inhibitors", "open", "other-options"),
    ("what is a boxed warning", "define", "boxed warning"), ("what does complete remission mean", "define", "complete remission"),
    ("high dose cytarabine", "open", "high-dose-cytarabine"), ("mylotarg", "open", "gemtuzumab-ozogamicin"),
]


@pytest.mark.parametrize("text,intent,target", NAVIGATION, ids=[n[0] for n in NAVIGATION])
def test_everyday_phrases_lead_somewhere_sensible(text, intent, target):
    from voiceguide.intents import IntentParser

    got = IntentParser(load_guide(SHIPPED)).parse(text)
    assert (got.intent, got.target) == (intent, target)


@pytest.mark.parametrize("text", ["summary", "is that the end", "the end"])
def test_phrases_no_longer_jump_to_the_closing(text):
    from voiceguide.intents import IntentParser

    got = IntentParser(load_guide(SHIPPED)).parse(text)
    assert (got.intent, got.target) != ("open", "closing")


def test_no_alias_leads_to_a_place_that_is_not_about_it():
    names = load_guide(SHIPPED).names()
    assert "autologous transplant" not in {n for n, (k, t) in names.items() if t == "allogeneic"}
    assert names.get("high dose") != ("section", "high-dose-cytarabine")
    assert "the end" not in names and "summary" not in names


def test_the_spoken_review_line_never_claims_a_clinical_review_that_did_not_happen():
    from dataclasses import replace as _replace

    guide = load_guide(default_content_path())
    assert guide.review is not None and guide.review.clinical is False
    line = guide.reviewed_line()
    assert line.startswith("Last checked against its sources on ") and line.endswith("not reviewed by a clinician.")
    clinical = _replace(guide, review=_replace(guide.review, clinical=True))
    assert clinical.reviewed_line().startswith("Last reviewed ")
