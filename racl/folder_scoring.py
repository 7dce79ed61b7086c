"""Results streamed to one CSV or JSONL file as they are made, and a rerun that skips what is there.

Each result is one line written by one ``write`` on a file opened for appending, so the lines of
several processes appending to the same file never mix, and a process killed at any moment leaves at
most one unfinished last line, which the next run cuts off before it appends (``ResultsFile.open``,
run by one process before the others append). A file is done once its line is complete, whatever
its result (an unreadable file's row, with ``error`` set, counts as done too).

The format follows the extension: ``.jsonl`` (one ``ClipScore`` as JSON per line, timeline included)
or ``.csv`` (``racl.scoring``'s columns, one header line).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

FORMATS = {".jsonl": "jsonl", ".csv": "csv"}


def results_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: the results file must end in .jsonl or .csv")
    return FORMATS[suffix]


class ResultsFile:
    """Appends results to ``path``; ``done`` holds the paths already in it."""

    def __init__(self, path: str | os.PathLike, columns: list[str], row):
        self.path = Path(path)
        self.format = results_format(path)
        self.columns = columns
        self.row = row  # ClipScore → the CSV row's values
        self.done = set(self._read_paths()) if self.path.exists() else set()

    @classmethod
    def open(cls, path, columns, row) -> "ResultsFile":
        """Repair (cut an unfinished last line), write the CSV header if the file is new, and read what is done."""
        path = Path(path)
        results_format(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
        results = cls(path, columns, row)
        if results.format == "csv" and (not path.exists() or path.stat().st_size == 0):
            results._append(results._csv_line(columns))
        return results

    def _read_paths(self):
        with open(self.path, newline="", encoding="utf-8") as f:
            if self.format == "jsonl":
                for line in f:
                    if line.endswith("\n"):
                        yield json.loads(line)["path"]
            else:
                for i, values in enumerate(csv.reader(f)):
                    if i and values:
                        yield values[0]

    def _csv_line(self, values) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        return buffer.getvalue()

    def _append(self, line: str) -> None:
        data = line.encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)  # one call: a line is never split between processes
            if written != len(data):
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes); is the disk full?")
        finally:
            os.close(fd)

    def write(self, result) -> None:
        if self.format == "jsonl":
            self._append(json.dumps(asdict(result)) + "\n")
        else:
            self._append(self._csv_line(self.row(result)))
        self.done.add(result.path)

    def todo(self, paths: list[str]) -> list[str]:
        return [p for p in paths if p not in self.done]
