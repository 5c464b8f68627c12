"""Every ``file.py:Name`` the docs cite names a function or class that exists there (one step to the code)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# `src/rlcamp/algos/ppo.py:PPO.compute_loss`, `base.py:OnPolicyAlgorithm.gradient_step`, `ppo.py:approx_kl`
REFERENCE = re.compile(r"`((?:[\w/]+/)?\w+\.py):([A-Za-z_][\w.]*)")


def defined_names(path: Path) -> set[str]:
    """``Name`` and ``Class.method`` for every top-level def/class (and class attribute) of ``path``."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {
                f"{node.name}.{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            }
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def resolve(cited: str) -> list[Path]:
    """The source files a cited path can mean: a full path, or a file name unique under src/."""
    full = ROOT / cited
    if full.exists():
        return [full]
    return [p for p in (ROOT / "src").rglob(Path(cited).name) if str(p).endswith(cited)]


def references() -> list[tuple[str, str, str]]:
    return [
        (doc.name, path, name)
        for doc in DOCS
        for path, name in REFERENCE.findall(doc.read_text())
        if not path.startswith(("tests/", "scripts/", "examples/"))
    ]


@pytest.mark.parametrize(("doc", "path", "name"), references())
def test_cited_code_exists(doc, path, name):
    files = resolve(path)
    assert files, f"{doc} cites {path}, which is not a file under src/"
    assert any(name in defined_names(f) for f in files), f"{doc} cites {path}:{name}, not defined there"
