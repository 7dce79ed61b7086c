"""Shard processing: decode, crop, reconstruct, post-process and encode one shard of the plan.

A :class:`ShardWorker` writes ``.work/shard-XXXXX.parquet`` atomically, so a shard file exists only
once it is complete and a rerun skips it. :func:`run_shards` runs the pending shards in this
process, in a spawn pool (``--num-proc``) or split across accelerate ranks.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from .build_config import AUDIO_FORMATS, BuildConfig, ParadigmSpec
from .build_plan import WorkItem
from .schema import BONAFIDE, FEATURES, NO_RECONSTRUCTION, SAMPLING_RATE, SPOOF

ROW_GROUP_SIZE = 100  # datasets' choice for audio: small row groups keep random access cheap
SKIPPED_META = b"racl_skipped"  # shard metadata key: the clips the shard skipped, with reasons



def skip_kind(message: str) -> str:
    """Classify a decoding failure for the card."""
    if "no such file" in message:
        return "missing_file"
    if "empty file" in message or "zero-length" in message:
        return "empty_file"
    return "unreadable"


def encode_audio(wave: np.ndarray, audio_format: str) -> bytes:
    """16-bit FLAC or WAV bytes of a 16 kHz clip (clipped to the 16-bit range first)."""
    import soundfile as sf

    container, subtype = AUDIO_FORMATS[audio_format]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 32767 / 32768), SAMPLING_RATE, format=container, subtype=subtype)
    return buffer.getvalue()


def work_schema():
    """The shard files' schema: the dataset's features plus the ``split`` the row belongs to."""
    import pyarrow as pa

    schema = FEATURES.arrow_schema
    return schema.append(pa.field("split", pa.string()))


class ShardWorker:
    """Processes shards in one process; reconstructors are built on first use and kept."""

    def __init__(self, config: BuildConfig, work_dir: str, device: str = "cpu"):
        self.config, self.work_dir, self.device = config, Path(work_dir), device
        self._reconstructors: dict = {}

    def reconstructor(self, spec: ParadigmSpec):
        if spec.name not in self._reconstructors:
            from .paradigms import get_reconstructor

            # ${VAR} in a path option, as in a corpus root: a config names a run's checkpoint without a machine path.
            options = {k: os.path.expandvars(v) if isinstance(v, str) else v for k, v in spec.options.items()}
            if spec.batch_size:
                options["batch_size"] = spec.batch_size
            self._reconstructors[spec.name] = get_reconstructor(spec.name, **options).to(self.device)
        return self._reconstructors[spec.name]

    def decode(self, items: list[WorkItem], skipped: list[dict]) -> dict[str, np.ndarray]:
        from racl.audio import AudioDecodeError, load_audio

        waves = {}
        for item in items:
            try:
                wave = load_audio(item.path)
            except AudioDecodeError as error:
                skipped.append(_skip(item.utt_id, item.path, skip_kind(str(error)), str(error)))
                continue
            if self.config.max_seconds:
                wave = wave[: int(self.config.max_seconds * SAMPLING_RATE)]
            try:
                waves[item.utt_id] = self.prepare(item.utt_id, wave)
            except ValueError as error:
                skipped.extend(_skip_original(item, error, item.paradigms))
        return waves

    def prepare(self, utt_id: str, wave: np.ndarray) -> np.ndarray:
        """The part of the final processing that comes before reconstruction, if the config asks for it
        (a room of the source's own: its reconstructions are made in it)."""
        if not self.config.before_reconstruction:
            return wave
        from .postprocess import prepare_source, source_room_seed

        return prepare_source(wave, SAMPLING_RATE, room_seed=source_room_seed(utt_id, self.config.seed),
                              vary=self.config.vary_channel)

    def reconstruct(self, spec: ParadigmSpec, items: list[WorkItem], waves: dict, skipped: list[dict]) -> dict:
        """``utt_id → reconstruction``; a clip the paradigm fails on is skipped, a paradigm failing on all raises."""
        if not items:
            return {}
        model = self.reconstructor(spec)
        try:
            outputs = model.reconstruct([waves[i.utt_id] for i in items], seed=self.config.seed)
            return {i.utt_id: out for i, out in zip(items, outputs)}
        except Exception:  # noqa: BLE001 - find the clip(s) at fault, one by one
            pass
        out, errors = {}, []
        for item in items:
            try:
                out[item.utt_id] = model.reconstruct([waves[item.utt_id]], seed=self.config.seed)[0]
            except Exception as error:  # noqa: BLE001 - a bad clip must not stop the build
                errors.append(error)
                skipped.append(_skip(f"{item.utt_id}__{spec.name}", item.path, "reconstruction_failed",
                                     f"{spec.name}: {type(error).__name__}: {error}"))
        if not out and len(items) > 1:
            raise RuntimeError(f"paradigm {spec.name!r} failed on every clip of a shard") from errors[0]
        return out

    def finish(self, utt_id: str, wave: np.ndarray) -> np.ndarray:
        """The common final processing (``postprocess.finalize``) when the config asks for it."""
        if not self.config.finalize:
            return wave
        from .postprocess import clip_seed, finalize

        return finalize(wave, SAMPLING_RATE, seed=clip_seed(f"{self.config.seed}:{utt_id}"),
                        source_prepared=self.config.before_reconstruction, vary=self.config.vary_channel)

    def row(self, item: WorkItem, wave: np.ndarray, paradigm: str | None) -> dict:
        utt_id = f"{item.utt_id}__{paradigm}" if paradigm else item.utt_id
        if paradigm is None:
            label, attack, source_id = item.label, item.attack, item.source_id
        else:  # a reconstruction is spoof; its generating system is the paradigm (after the source's attack)
            label, source_id = SPOOF, item.utt_id
            attack = paradigm if item.label == BONAFIDE else f"{item.attack}+{paradigm}"
        data = encode_audio(wave, self.config.audio_format)
        return {"audio": {"bytes": data, "path": f"{utt_id}.{self.config.audio_format}"}, "label": label,
                "utt_id": utt_id, "source_id": source_id, "is_reconstructed": paradigm is not None,
                "reconstruction": paradigm or NO_RECONSTRUCTION, "attack": attack, "speaker": item.speaker,
                "corpus": item.corpus, "duration": len(wave) / SAMPLING_RATE, "split": item.split}

    def rows(self, items: list[WorkItem], waves: dict, recon: dict, skipped: list[dict]) -> list[dict]:
        rows = []
        for item in items:
            if item.utt_id not in waves:
                continue
            variants = [(None, waves[item.utt_id])] + [(p, recon[p][item.utt_id]) for p in item.paradigms
                                                       if item.utt_id in recon.get(p, {})]
            for paradigm, wave in variants:
                utt_id = f"{item.utt_id}__{paradigm}" if paradigm else item.utt_id
                try:
                    final = self.finish(utt_id, wave)
                except ValueError as error:
                    if paradigm is None:
                        skipped.extend(_skip_original(item, error, [p for p, _ in variants[1:]]))
                        break
                    skipped.append(_skip(utt_id, item.path, "postprocess_failed", str(error)))
                    continue
                rows.append(self.row(item, final, paradigm))
        return sorted(rows, key=lambda r: r["utt_id"])

    def process(self, shard_id: int, items: list[WorkItem]) -> dict:
        """Write ``shard-XXXXX.parquet`` (atomically); returns counts for the progress report."""
        skipped: list[dict] = []
        waves = self.decode(items, skipped)
        recon = {}
        for spec in self.config.paradigms:
            todo = [i for i in items if i.utt_id in waves and spec.name in i.paradigms]
            recon[spec.name] = self.reconstruct(spec, todo, waves, skipped)
        rows = self.rows(items, waves, recon, skipped)
        write_shard(self.work_dir, shard_id, rows, skipped)
        return {"shard": shard_id, "rows": len(rows), "skipped": len(skipped)}


def _skip(utt_id: str, path: str, kind: str, reason: str) -> dict:
    return {"utt_id": utt_id, "path": path, "kind": kind, "reason": reason}


def _skip_original(item: WorkItem, error: Exception, paradigms: list[str]) -> list[dict]:
    """An original the final processing rejects, and its reconstructions: no original, no pair."""
    return [_skip(item.utt_id, item.path, "postprocess_failed", str(error))] + [
        _skip(f"{item.utt_id}__{p}", item.path, "postprocess_failed", "its original failed the final processing")
        for p in paradigms]


def shard_path(work_dir: Path, shard_id: int) -> Path:
    return Path(work_dir) / f"shard-{shard_id:05d}.parquet"


def write_shard(work_dir: Path, shard_id: int, rows: list[dict], skipped: list[dict]) -> Path:
    """Write to a temporary name, then rename: a shard file exists only once it is complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = work_schema()
    schema = schema.with_metadata({**(schema.metadata or {}), SKIPPED_META: json.dumps(skipped).encode()})
    table = pa.Table.from_pylist(rows, schema=schema)
    final = shard_path(work_dir, shard_id)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE)
    os.replace(tmp, final)
    return final


# Pool workers (spawn): one ShardWorker per process.
_POOL_WORKER: ShardWorker | None = None


def _pool_init(config: BuildConfig, work_dir: str, threads: int) -> None:
    global _POOL_WORKER
    import torch

    torch.set_num_threads(threads)
    _POOL_WORKER = ShardWorker(config, work_dir, "cpu")


def _pool_run(job: tuple[int, list[WorkItem]]) -> dict:
    return _POOL_WORKER.process(*job)


def torch_threads(requested: int | None, device: str) -> int | None:
    """Intra-op threads per build process: 1 on CPU unless asked, torch's default on a GPU.

    The build parallelises over shards (``--num-proc``, accelerate ranks); per-clip ops are small,
    and extra intra-op threads on a busy CPU spin more than they compute (measured: Griffin-Lim
    10x slower with 2 threads than with 1 on a loaded 2-core machine).
    """
    if requested:
        return requested
    return 1 if device == "cpu" else None


def run_shards(config: BuildConfig, jobs: list[tuple[int, list[WorkItem]]], work_dir: Path, num_proc: int,
               state, threads: int | None = None) -> None:
    """Process the pending ``jobs``: in this process, in a spawn pool, or split across accelerate ranks."""
    import torch
    from tqdm.auto import tqdm

    device = "cpu" if state.device.type == "cpu" else str(state.device)
    threads = torch_threads(threads, device)
    if num_proc > 1 and len(jobs) > 1 and state.num_processes == 1:
        import multiprocessing

        # The pool functions live here, not in the module run with -m, so spawned workers find them by name.
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(num_proc, len(jobs)), _pool_init, (config, str(work_dir), threads or 1)) as pool:
            for _ in tqdm(pool.imap_unordered(_pool_run, jobs), total=len(jobs), desc="shards", unit="shard"):
                pass
        return
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        _run_here(config, jobs, work_dir, state, device)
    finally:
        torch.set_num_threads(previous)  # the caller's process keeps its own setting


def _run_here(config: BuildConfig, jobs: list, work_dir: Path, state, device: str) -> None:
    """This process's share of ``jobs`` (all of them outside accelerate)."""
    from tqdm.auto import tqdm

    if state.num_processes > 1:
        with state.split_between_processes(jobs) as mine:
            worker = ShardWorker(config, str(work_dir), device)
            bar = tqdm(mine, desc=f"shards (rank {state.process_index})", unit="shard",
                       disable=not state.is_local_main_process)
            for job in bar:
                worker.process(*job)
        return
    worker = ShardWorker(config, str(work_dir), device)
    for job in tqdm(jobs, desc="shards", unit="shard"):
        worker.process(*job)
