"""Reading the latency table back in little memory (the read side of store/).

A long run's latency table is tens of millions of bucket rows. Read whole by pyarrow and then
converted to pandas it exists twice (arrow buffers, then the frame's copy), and on this kind of
machine first-touched memory is the cost, not the decoding. So:
- `file_chunks` streams the file one row group at a time (small buffers the allocator reuses):
  what the analysis merges, never holding the whole table;
- `read_latency` builds the whole frame (for users and tests) with each value copied once into
  its final array: trial ids and kinds as category codes, bounds and counts as int64;
- `frame_chunks` gives the same chunks from a frame already in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_CATEGORIES = ("trial_id", "kind")
# Which client host measured the rows (docs/multi-host.md): stored and read back whole, not
# needed to merge (a trial's histogram is the sum over its hosts), so not in the chunks.
_HOST = "client_host"
_MERGED = [*_CATEGORIES, "lower_ns", "upper_ns", "count"]  # the columns the chunks carry
_INTEGERS = ("lower_ns", "upper_ns", "count")
_WIDER = {np.int8: np.int16, np.int16: np.int32, np.int32: np.int64}
FRAME_CHUNK_ROWS = 1 << 20


@dataclass(frozen=True)
class LatencyChunk:
    """Consecutive rows of the latency table: trial ids and kinds as codes into the chunk's
    own lists of distinct values (code -1: null), bounds and counts as int64 arrays."""

    trial_ids: list[str]
    trial_codes: np.ndarray
    kinds: list[str]
    kind_codes: np.ndarray
    lower_ns: np.ndarray
    upper_ns: np.ndarray
    count: np.ndarray


class UnreadableLatency(Exception):
    """The latency file is not in the shape the fast readers handle (a missing column, a null
    bound or count, another type): read it the general way instead."""


def _check(file: pq.ParquetFile, schema: pa.Schema) -> None:
    stored = file.schema_arrow
    if set(schema.names) != {*_CATEGORIES, *_INTEGERS, _HOST}:
        raise UnreadableLatency("the schema is not the one this reader knows")
    # A file from before client_host (single-host runs) has every other column: read it here
    # too, its hosts as nulls, as the general reader gives them.
    if not set(stored.names) <= set(schema.names) or not set(_MERGED) <= set(stored.names):
        raise UnreadableLatency("columns differ from the schema")
    if any(not pa.types.is_integer(stored.field(n).type) for n in _INTEGERS):
        raise UnreadableLatency("bounds or counts are not integers")


def _codes(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """A dictionary-read column's distinct values and each row's code (-1 for null)."""
    chunks = [c if pa.types.is_dictionary(c.type) else c.dictionary_encode() for c in column.chunks]
    if not chunks:
        return [], np.zeros(0, np.int64)
    if len(chunks) == 1:
        values = chunks[0].dictionary.to_pylist()
        indices = chunks[0].indices
        indices = indices.fill_null(-1) if indices.null_count else indices
        return values, indices.to_numpy(zero_copy_only=False)
    combined = pa.chunked_array(chunks, type=chunks[0].type).unify_dictionaries()
    values = combined.chunks[0].dictionary.to_pylist() if combined.num_chunks else []
    parts = [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in combined.chunks]
    codes = np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)
    return values, codes


def _integers(column: pa.ChunkedArray) -> np.ndarray:
    if column.null_count:
        raise UnreadableLatency("a null bound or count")
    parts = [c.to_numpy(zero_copy_only=False) for c in column.chunks]
    if len(parts) == 1:  # the usual case: the row group's own buffer, not a copy
        return parts[0].astype(np.int64, copy=False)
    return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)


def file_chunks(path: Path, schema: pa.Schema) -> Iterator[LatencyChunk]:
    """The latency file's rows, one row group at a time. Raises UnreadableLatency before the
    first chunk when the file's shape is not one this reader handles."""
    file = pq.ParquetFile(path, read_dictionary=list(_CATEGORIES))
    _check(file, schema)
    groups = file.num_row_groups
    if groups == 0:
        return
    # The next row group is decoded (pyarrow, without the GIL) while the caller works on this
    # one: on two CPUs the decoding mostly hides behind the merging.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(file.read_row_group, 0, columns=_MERGED, use_threads=False)
        for group in range(groups):
            table = pending.result()
            if group + 1 < groups:
                pending = pool.submit(
                    file.read_row_group, group + 1, columns=_MERGED, use_threads=False
                )
            yield _chunk(table)


def _chunk(table: pa.Table) -> LatencyChunk:
    trial_ids, trial_codes = _codes(table["trial_id"])
    kinds, kind_codes = _codes(table["kind"])
    return LatencyChunk(
        trial_ids,
        trial_codes,
        kinds,
        kind_codes,
        *(_integers(table[name]) for name in _INTEGERS),
    )


def frame_chunks(frame: pd.DataFrame, rows: int = FRAME_CHUNK_ROWS) -> Iterator[LatencyChunk]:
    """The same chunks from a latency frame in memory (any dtypes; nulls in ids or kinds get
    code -1)."""
    if frame.empty:
        return
    ids, kinds = (
        col.array if isinstance(col.dtype, pd.CategoricalDtype) else pd.Categorical(col)
        for col in (frame["trial_id"], frame["kind"])
    )
    id_values = [str(v) for v in ids.categories]
    kind_values = [str(v) for v in kinds.categories]
    lower, upper, count = (frame[name].to_numpy(np.int64) for name in _INTEGERS)
    for start in range(0, len(frame), rows):
        part = slice(start, start + rows)
        yield LatencyChunk(
            id_values,
            ids.codes[part].astype(np.int64),
            kind_values,
            kinds.codes[part].astype(np.int64),
            lower[part],
            upper[part],
            count[part],
        )


class _Codes:
    """Category codes over row groups: each group's own dictionary mapped to one shared one."""

    def __init__(self, rows: int) -> None:
        self.codes = np.empty(rows, dtype=np.int8)  # widened when the categories outgrow it
        self.index: dict[str, int] = {}

    def fill(self, start: int, values: list[str], codes: np.ndarray) -> None:
        if (codes < 0).any():
            raise UnreadableLatency("a null trial id or kind")
        local = np.array([self.index.setdefault(v, len(self.index)) for v in values], np.int64)
        while len(self.index) > np.iinfo(self.codes.dtype).max:
            self.codes = self.codes.astype(_WIDER[self.codes.dtype.type])
        self.codes[start : start + len(codes)] = local[codes] if len(local) else 0

    def categorical(self) -> pd.Categorical:
        return pd.Categorical.from_codes(self.codes, categories=pd.Index(list(self.index)))


def read_latency(path: Path, schema: pa.Schema) -> pd.DataFrame:
    """The latency table as a frame (columns in the schema's order, ids and kinds categorical).
    Raises UnreadableLatency when the file is not in a shape this reader handles."""
    rows = pq.ParquetFile(path).metadata.num_rows
    codes = {name: _Codes(rows) for name in _CATEGORIES}
    values = {name: np.empty(rows, dtype=np.int64) for name in _INTEGERS}
    start = 0
    for chunk in file_chunks(path, schema):
        n = len(chunk.count)
        if start + n > rows:
            raise UnreadableLatency("more rows than the footer says")
        codes["trial_id"].fill(start, chunk.trial_ids, chunk.trial_codes)
        codes["kind"].fill(start, chunk.kinds, chunk.kind_codes)
        values["lower_ns"][start : start + n] = chunk.lower_ns
        values["upper_ns"][start : start + n] = chunk.upper_ns
        values["count"][start : start + n] = chunk.count
        start += n
    if start != rows:
        raise UnreadableLatency("fewer rows than the footer says")
    columns: dict[str, object] = {name: codes[name].categorical() for name in _CATEGORIES}
    columns.update(values)
    if _HOST in pq.ParquetFile(path).schema_arrow.names:
        hosts = pq.read_table(path, columns=[_HOST], read_dictionary=[_HOST]).column(_HOST)
    else:
        hosts = pa.chunked_array([pa.nulls(rows, schema.field(_HOST).type)])
    columns[_HOST] = hosts.to_pandas().array
    # copy=False: one block per column, as pyarrow's split_blocks gives, and no second copy.
    return pd.DataFrame({name: columns[name] for name in schema.names}, copy=False)
