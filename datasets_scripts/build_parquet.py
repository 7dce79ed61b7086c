"""Assembly: the finished shards become ``data/{split}-XXXXX-of-YYYYY.parquet``.

Two passes: the small columns of every shard first (deduplication by ``utt_id``, pairing fixes,
skipped clips), then one streaming pass of the audio into per-split writers that roll over at
``max_file_mb``. ``data/`` is replaced only when every file is written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from .build_config import BuildConfig
from .build_plan import Plan
from .build_shards import ROW_GROUP_SIZE, SKIPPED_META, shard_path
from .schema import FEATURES
from .splits import SPLITS

LOG = logging.getLogger("racl.build")
DATA_DIR = "data"

SMALL_COLUMNS = ["utt_id", "source_id", "is_reconstructed", "reconstruction", "attack", "label", "speaker",
                 "corpus", "duration", "split"]


def read_shard_index(work_dir: Path, num_shards: int) -> tuple[list[dict], list[dict], list[list[bool]]]:
    """Pass 1 over the shards: the small columns, the skipped clips, and which rows to keep.

    A ``utt_id`` seen before is not kept (a shard can only repeat one after a bug, but the final
    dataset must hold each clip once).
    """
    import pyarrow.parquet as pq

    rows, skipped, keep, seen = [], [], [], set()
    for shard_id in range(num_shards):
        path = shard_path(work_dir, shard_id)
        meta = pq.read_schema(path).metadata or {}
        skipped.extend(json.loads(meta.get(SKIPPED_META, b"[]")))
        table = pq.read_table(path, columns=SMALL_COLUMNS).to_pylist()
        mask = []
        for row in table:
            mask.append(row["utt_id"] not in seen)
            if mask[-1]:
                seen.add(row["utt_id"])
                rows.append(row)
            else:
                LOG.warning("duplicate utt_id %s in %s: kept the first", row["utt_id"], path.name)
        keep.append(mask)
    return rows, skipped, keep


def source_fixes(rows: list[dict]) -> dict[str, str]:
    """utt_id → corrected source_id for originals whose corpus pairing points outside their split.

    Reconstructions always point at their original in the same shard; a corpus-given pairing
    (WaveFake, CodecFake) may name a clip that was skipped or sits in another split.
    """
    ids_by_split: dict[str, set] = {s: set() for s in SPLITS}
    for row in rows:
        ids_by_split[row["split"]].add(row["utt_id"])
    fixes = {}
    for row in rows:
        if row["source_id"] != row["utt_id"] and row["source_id"] not in ids_by_split[row["split"]]:
            if row["is_reconstructed"]:
                raise AssertionError(f"{row['utt_id']}: its original {row['source_id']} is missing from {row['split']}")
            fixes[row["utt_id"]] = row["utt_id"]
    for utt_id, source in fixes.items():
        LOG.info("source_id of %s reset to itself: its paired clip is not in the same split", utt_id)
    return fixes


class SplitWriter:
    """Rolling Parquet writer of one split: a new file once ``max_bytes`` of Arrow data are in one."""

    def __init__(self, folder: Path, split: str, max_bytes: int):
        self.folder, self.split, self.max_bytes = folder, split, max_bytes
        self.files: list[Path] = []
        self.writer, self.current_bytes = None, 0
        self.num_rows = self.num_bytes = 0

    def write(self, table) -> None:
        import pyarrow.parquet as pq

        if self.writer is not None and self.current_bytes and self.current_bytes + table.nbytes > self.max_bytes:
            self.writer.close()
            self.writer = None
        if self.writer is None:
            self.files.append(self.folder / f"{self.split}.part{len(self.files):05d}")
            self.writer, self.current_bytes = pq.ParquetWriter(self.files[-1], FEATURES.arrow_schema), 0
        self.writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self.current_bytes += table.nbytes
        self.num_rows, self.num_bytes = self.num_rows + table.num_rows, self.num_bytes + table.nbytes

    def close(self) -> list[Path]:
        """Close and rename to ``{split}-XXXXX-of-YYYYY.parquet``; an empty split writes no file.

        (``load_dataset`` cannot load a split of zero rows, so an empty split is left out.)
        """
        if self.writer is None:
            return []
        self.writer.close()
        total = len(self.files)
        final = [p.with_name(f"{self.split}-{i:05d}-of-{total:05d}.parquet") for i, p in enumerate(self.files)]
        for src, dst in zip(self.files, final):
            os.replace(src, dst)
        return final


def write_data(work_dir: Path, output_dir: Path, num_shards: int, keep: list[list[bool]], fixes: dict,
               max_bytes: int) -> dict[str, dict]:
    """Pass 2: stream every shard once into the per-split writers; replace ``data/`` at the end."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    staging = work_dir / "assemble"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    writers = {s: SplitWriter(staging, s, max_bytes) for s in SPLITS}
    for shard_id in range(num_shards):
        table = pq.read_table(shard_path(work_dir, shard_id)).filter(pa.array(keep[shard_id], pa.bool_()))
        if fixes:
            ids = table.column("utt_id").to_pylist()
            sources = [fixes.get(u, s) for u, s in zip(ids, table.column("source_id").to_pylist())]
            table = table.set_column(table.schema.get_field_index("source_id"), "source_id", pa.array(sources, pa.string()))
        for split, writer in writers.items():
            part = table.filter(pc.equal(table.column("split"), split)).drop_columns(["split"])
            if part.num_rows:
                writer.write(part.cast(FEATURES.arrow_schema))
    info = {}
    for split, writer in writers.items():
        files = writer.close()
        if not files:
            LOG.warning("the %s split is empty: no data file, and the dataset has no %s split", split, split)
            continue
        info[split] = {"num_examples": writer.num_rows, "num_bytes": writer.num_bytes,
                       "files": [f.name for f in files], "download_size": sum(f.stat().st_size for f in files)}
    data_dir = output_dir / DATA_DIR
    shutil.rmtree(data_dir, ignore_errors=True)
    os.replace(staging, data_dir)
    return info


def assemble(config: BuildConfig, plan: Plan, work_dir: Path, output_dir: Path, num_shards: int) -> dict:
    """Final ``data/`` files and the summary the card is written from."""
    rows, skipped, keep = read_shard_index(work_dir, num_shards)
    fixes = source_fixes(rows)
    for row in rows:
        row["source_id"] = fixes.get(row["utt_id"], row["source_id"])
    info = write_data(work_dir, output_dir, num_shards, keep, fixes, int(config.max_file_mb * 2**20))
    written = sum(v["num_examples"] for v in info.values())
    assert written == len(rows) == len({r["utt_id"] for r in rows}), "utt_ids must be unique in the dataset"
    all_skipped = [asdict(d) for d in plan.dropped] + skipped
    for entry in all_skipped:
        LOG.info("SKIPPED [%s] %s (%s): %s", entry["kind"], entry["utt_id"], entry["path"], entry["reason"])
    return {"rows": rows, "skipped": all_skipped, "info": info}
