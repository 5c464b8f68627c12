"""``summary.json``: the one file a sweep reads to compare runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_summary(output_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``summary`` as ``output_dir/summary.json`` (NaN becomes null) and return the path."""
    path = Path(output_dir) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({k: _json_safe(v) for k, v in summary.items()}, indent=2) + "\n")
    tmp.replace(path)
    return path
