"""Content packs: the shipped guide validates; every kind of broken pack gives the right one-line error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from voiceguide.content import MAX_SUMMARY_WORDS, default_content_path, load_guide, normalize, validate
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


def _syllables(word: str) -> int:
    word = word.lower()
    groups = re.findall(r"[aeiouy]+", word)
    n = len(groups)
    if word.endswith("e") and not word.endswith(("le", "ee")) and n > 1:
        n -= 1
    return max(1, n)


def fk_grade(text: str, skip: set[str]) -> float:
    """Flesch-Kincaid grade; words in ``skip`` (drug names: unavoidable) count as two syllables."""
    sentences = max(1, len(re.findall(r"[.!?]+", text)))
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    syll = sum(2 if w.lower() in skip else _syllables(w) for w in words)
    return 0.39 * len(words) / sentences + 11.8 * syll / max(1, len(words)) - 15.59


def test_fk_grade_tells_plain_from_dense():
    plain = "This part is about more chemo. It can help when the cancer comes back."
    dense = ("Subsequent administration of intensified cytotoxic pharmacotherapeutic regimens "
             "necessitates comprehensive evaluation of individualized hematological parameters.")
    assert fk_grade(plain, set()) < 6 < 14 < fk_grade(dense, set())


def test_summaries_are_plain_language():
    guide = load_guide(SHIPPED)
    skip = {normalize(e.word) for e in guide.lexicon} | {w for e in guide.lexicon for w in normalize(e.word).split()}
    grades = {s.id: fk_grade(s.summary, skip) for s in guide.walk()}
    mean = sum(grades.values()) / len(grades)
    assert mean <= 8.5, grades
    assert max(grades.values()) <= 11, grades


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
