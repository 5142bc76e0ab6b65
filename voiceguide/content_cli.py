"""``voiceguide validate`` and ``voiceguide outline``."""

from __future__ import annotations

import json
import sys
import textwrap

from .content import Section, default_content_path, load_guide, validate


def register(sub, formatter) -> None:
    p = sub.add_parser("validate", help="check a content pack and list every problem, one per line",
                       description="Check a content pack. Each problem is printed on one line as "
                                   "file:line: field: message. Exit status 1 if there are problems.",
                       formatter_class=formatter)
    p.add_argument("path", nargs="?", metavar="PATH", help="content pack folder (default: the shipped guide)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("outline", help="print the guide's sections as a tree, or as JSON",
                       description="Print the section tree: id, title and summary of every section.",
                       formatter_class=formatter)
    p.add_argument("--content", metavar="PATH", help="content pack folder (default: the shipped guide)")
    p.add_argument("--json", action="store_true", help="print JSON from the root instead of plain lines")
    p.set_defaults(func=cmd_outline)


def cmd_validate(args) -> int:
    path = args.path or default_content_path()
    errors = validate(path)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"{len(errors)} problem{'s' if len(errors) != 1 else ''} found in {path}.", file=sys.stderr)
        return 1
    guide = load_guide(path)
    n = sum(1 for _ in guide.walk())
    review = guide.review
    checked = (f" Checked by {review.by}{'' if review.clinical else '; not reviewed by a clinician'}."
               if review else "")
    print(f"{path}: valid. {n} sections, {len(guide.glossary)} glossary terms, "
          f"{len(guide.lexicon)} pronunciations. Last reviewed {guide.last_reviewed.isoformat()}.{checked}")
    return 0


def _tree(sec: Section) -> dict:
    return {"id": sec.id, "title": sec.title, "summary": sec.summary, "children": [_tree(c) for c in sec.children]}


def cmd_outline(args) -> int:
    guide = load_guide(args.content)
    if args.json:
        root = {"id": guide.id, "title": guide.title, "summary": guide.description,
                "children": [_tree(s) for s in guide.sections]}
        print(json.dumps(root, ensure_ascii=False, indent=2))
        return 0
    print(guide.title)

    def show(sections, depth, prefix):
        for n, s in enumerate(sections, 1):
            number = f"{prefix}{n}"
            print(f"{'  ' * depth}{number}. {s.title} (id: {s.id})")
            for line in textwrap.wrap(s.summary, 76 - 2 * depth):
                print(f"{'  ' * (depth + 1)}{line}")
            show(s.children, depth + 1, number + ".")

    show(guide.sections, 0, "")
    return 0
