"""The README's Go, Python and C programs are the files of examples/, character for character.

The README shows each as `<!-- example: PATH -->`, a fenced code block, `<!-- end example -->`;
editing one without the other fails here.
"""

from __future__ import annotations

import re

from conftest import REPO

EXAMPLES = ["examples/go/main.go", "examples/python/quickstart.py", "examples/c/quickstart.c"]
BLOCK = re.compile(
    r"<!-- example: (?P<path>\S+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)```\n<!-- end example -->",
    re.DOTALL,
)


def readme_blocks() -> dict:
    blocks: dict = {}
    for match in BLOCK.finditer((REPO / "README.md").read_text()):
        blocks.setdefault(match["path"], []).append(match["code"])
    return blocks


def test_every_example_is_in_the_readme_once_as_it_is():
    blocks = readme_blocks()
    assert sorted(blocks) == sorted(EXAMPLES), "README example blocks and examples/ differ"
    for path in EXAMPLES:
        assert len(blocks[path]) == 1, f"{path} is shown {len(blocks[path])} times"
        assert blocks[path][0] == (REPO / path).read_text(), (
            f"README.md's copy of {path} differs from the file: update one from the other"
        )


def test_markers_are_well_formed():
    # A marker the pattern above did not match (a typo, a missing end) would be ignored silently.
    text = (REPO / "README.md").read_text()
    assert text.count("<!-- example: ") == len(EXAMPLES)
    assert text.count("<!-- end example -->") == len(EXAMPLES)
