"""model.parquet, the stored queueing model of a run (`harness model` writes it; docs/data.md):
one row per prediction, and what is not one row per prediction (assumptions, notes, ratios,
the comparison with measured trials) as JSON in the schema's metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

MODEL_FILE = "model.parquet"
# The parquet schema metadata key holding what is not one row per prediction (docs/data.md).
METADATA_KEY = b"harness.model"


def read_model(run_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The predictions and the metadata of a run's stored model; None when it has none."""
    path = run_dir / MODEL_FILE
    if not path.is_file():
        return None
    table = pq.read_table(path)
    return table.to_pandas(), json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
