"""The latency table read back in chunks (store/latency_read.py) gives what the whole table
gives: the same frame, the same merged histograms per group, for the fast readers and for the
general one they fall back to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.analysis import histogram
from harness.store import load_run
from harness.store.latency_read import (
    UnreadableLatency,
    file_chunks,
    frame_chunks,
    read_latency,
)
from harness.store.schema import LATENCY


@pytest.fixture(scope="module")
def run_dir(fake_run) -> Path:
    return fake_run.directory


def _general(path: Path) -> pd.DataFrame:
    table = pq.read_table(path, read_dictionary=["trial_id", "kind"])
    return table.to_pandas(split_blocks=True)


def test_frame_is_the_general_readers(run_dir: Path) -> None:
    path = run_dir / "latency.parquet"
    fast, general = read_latency(path, LATENCY), _general(path)
    assert list(fast.columns) == LATENCY.names
    for name in ("trial_id", "kind"):
        assert [str(x) for x in fast[name]] == [str(x) for x in general[name]]
    for name in ("lower_ns", "upper_ns", "count"):
        assert fast[name].dtype == np.int64
        assert np.array_equal(fast[name].to_numpy(), general[name].to_numpy())


def _by_trial(chunks: object) -> dict[tuple[str, str], list[histogram.Bucket]]:
    out: dict[tuple[str, str], list[histogram.Bucket]] = {}
    for c in chunks:  # type: ignore[attr-defined]
        for i in range(len(c.count)):
            key = (c.trial_ids[c.trial_codes[i]], c.kinds[c.kind_codes[i]])
            out.setdefault(key, []).append(
                (int(c.lower_ns[i]), int(c.upper_ns[i]), int(c.count[i]))
            )
    return out


def test_file_chunks_hold_every_row_once(run_dir: Path) -> None:
    path = run_dir / "latency.parquet"
    streamed = _by_trial(file_chunks(path, LATENCY))
    in_memory = _by_trial(frame_chunks(_general(path), rows=1000))
    assert streamed == in_memory
    assert sum(len(v) for v in streamed.values()) == pq.ParquetFile(path).metadata.num_rows


def test_merge_trial_groups_is_merge(run_dir: Path) -> None:
    run = load_run(run_dir)
    frame = _general(run_dir / "latency.parquet")
    ids = sorted({str(t) for t in frame["trial_id"]})
    group_of = {t: i % 3 for i, t in enumerate(ids)}
    group_of[ids[0]] = -1  # left out
    merged = histogram.merge_trial_groups(group_of, run.latency_chunks())
    assert set(merged) == {0, 1, 2}
    primary = frame[frame["kind"] == "primary"]
    for g, m in merged.items():
        mine = primary[primary["trial_id"].astype(str).map(group_of) == g]
        hists = [
            list(zip(h["lower_ns"], h["upper_ns"], h["count"], strict=True))
            for _, h in mine.groupby("trial_id", observed=True)
        ]
        assert m.buckets() == histogram.merge(hists)


def test_a_null_bound_falls_back_to_the_general_reader(tmp_path: Path) -> None:
    rows = [
        {"trial_id": "t1", "kind": "primary", "lower_ns": 1000, "upper_ns": 1001, "count": 2},
        {"trial_id": "t1", "kind": None, "lower_ns": None, "upper_ns": 1001, "count": 1},
    ]
    path = tmp_path / "latency.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=LATENCY), path)
    with pytest.raises(UnreadableLatency):
        read_latency(path, LATENCY)
    with pytest.raises(UnreadableLatency):
        list(file_chunks(path, LATENCY))


def test_a_file_from_before_client_host_is_read_the_fast_way(run_dir: Path, tmp_path: Path) -> None:
    """Single-host runs stored before the client_host column: streamed and read whole as the
    general reader reads them (hosts as nulls), not sent down the slow path."""
    table = pq.read_table(run_dir / "latency.parquet")
    path = tmp_path / "latency.parquet"
    pq.write_table(table.drop_columns(["client_host"]), path)
    fast = read_latency(path, LATENCY)
    general = pq.read_table(path, read_dictionary=["trial_id", "kind"]).to_pandas()
    assert list(fast.columns) == LATENCY.names
    assert fast["client_host"].isna().all()
    for name in ("lower_ns", "upper_ns", "count"):
        assert np.array_equal(fast[name].to_numpy(), general[name].to_numpy())
    assert _by_trial(file_chunks(path, LATENCY)) == _by_trial(
        file_chunks(run_dir / "latency.parquet", LATENCY)
    )
