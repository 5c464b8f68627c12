"""Run a Markdown page's ```python blocks in order and check what they print.

A block followed (after blank lines only) by a ```text block must print that text; doctest's
``OutputChecker`` compares them, so runs of whitespace are equal and ``...`` matches any text
(for wording that differs between Python versions). A hand-written runner because the pages are
Markdown for readers, not doctest sessions, so the code stays copy-pasteable; pytest-codeblocks
and phmdoctest would add a dependency and, for blocks that share one session, a marker per block.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLOCK = re.compile(r"```python\n(?P<code>.*?)```[ \t]*\n(?:[ \t]*\n)*(?:```text\n(?P<output>.*?)```)?", re.S)
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass(frozen=True)
class CodeBlock:
    """One ```python block: its first code line in the page, its code, the output the page shows."""

    line: int
    code: str
    output: str | None


def python_blocks(page: Path) -> list[CodeBlock]:
    """The page's ```python blocks in order, each with the ```text block right after it, if any."""
    text = page.read_text()
    return [
        CodeBlock(text.count("\n", 0, m.start("code")) + 1, m["code"], m["output"])
        for m in BLOCK.finditer(text)
    ]


def run_python_blocks(page: Path) -> dict[str, Any]:
    """Exec every block in one namespace, as a reader pasting them into one session; return it.

    Raises AssertionError naming the page line when a block prints other than the page shows.
    Tracebacks point at the page's own line numbers.
    """
    blocks = python_blocks(page)
    assert blocks, f"{page} has no ```python block"
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for block in blocks:
        stdout = io.StringIO()
        code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
        with contextlib.redirect_stdout(stdout):
            exec(code, namespace)
        printed = stdout.getvalue()
        if block.output is not None and not CHECKER.check_output(block.output, printed, FLAGS):
            raise AssertionError(
                f"{page.name}, block at line {block.line} printed:\n{printed}\n"
                f"the page shows:\n{block.output}"
            )
    return namespace
