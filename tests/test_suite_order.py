"""The suite's own scheduling (conftest.py): the tests it names to start first exist."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import LONGEST_FIRST

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("nodeid", LONGEST_FIRST)
def test_every_test_named_to_start_first_exists_and_is_marked_slow(nodeid):
    """A renamed test would silently drop out of the order (and start among the short ones)."""
    path, name = nodeid.split("::")
    tree = ast.parse((ROOT / path).read_text())
    (function,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    assert any("slow" in ast.unparse(decorator) for decorator in function.decorator_list)
