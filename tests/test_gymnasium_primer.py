"""docs/gymnasium.md: every ```python block runs, in order, and prints what the page shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.docs import python_blocks, run_python_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "gymnasium.md"


def test_every_primer_block_runs_and_prints_what_the_page_shows():
    blocks = python_blocks(DOC)
    assert len(blocks) >= 12 and sum(b.output is not None for b in blocks) >= 10
    namespace = run_python_blocks(DOC)
    assert namespace["algo"].env_steps == 64


def test_a_block_printing_other_than_its_page_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1 + 1)\n```\n\n```text\n3\n```\n")
    with pytest.raises(AssertionError, match="line 2 printed"):
        run_python_blocks(page)
