"""Loading a built dataset: the one place that turns ``--data`` / ``data.path`` into a ``DatasetDict``.

Training, evaluation and the dataset checks all load through :func:`load_dataset_dict` and
:func:`get_split` (the checks through :func:`load_rows`), so a folder, a ``save_to_disk`` folder or
a Hub id work the same everywhere and a bad one is one :class:`DatasetLoadError` naming the dataset.
"""

from __future__ import annotations

from pathlib import Path


class DatasetLoadError(ValueError):
    """A dataset that cannot be loaded or lacks what the caller needs; the message is for the user."""


def load_dataset_dict(data: str, undecoded_audio: bool = False):
    """A ``DatasetDict`` from a local folder (Parquet layout or ``save_to_disk``) or a Hub id.

    ``undecoded_audio`` casts every split's ``audio`` to ``Audio(decode=False)`` (``{bytes, path}``
    cells, decoded later by :func:`racl.audio.decode_audio_cell`).
    """
    import datasets

    if not data:
        raise DatasetLoadError("no dataset given: point it at a dataset folder or a Hub id")
    path = Path(data).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DatasetLoadError(f"{data}: not a folder; a dataset is a folder or a Hub id")
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            loader, target = datasets.load_from_disk, str(path)
        else:
            loader, target = datasets.load_dataset, str(path)
    elif path.is_absolute() or data.startswith((".", "~")) or data.count("/") != 1:
        raise DatasetLoadError(f"{data}: no such dataset folder")
    else:
        loader, target = datasets.load_dataset, data
    try:
        loaded = loader(target)
    except Exception as error:  # load_dataset raises many kinds; the user needs the reason only
        raise DatasetLoadError(f"cannot load dataset {data!r}: {_reason(error)}") from None
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    if undecoded_audio:
        loaded = datasets.DatasetDict(
            {name: split.cast_column("audio", datasets.Audio(decode=False)) if "audio" in split.column_names else split
             for name, split in loaded.items()}
        )
    return loaded


def _reason(error: Exception) -> str:
    text = str(error)
    if "corresponds to no data" in text and '"' in text:  # datasets refuses a split whose files hold no rows
        return f"split {text.split(chr(34))[1]!r} is empty"
    return f"{type(error).__name__}: {text}"


def get_split(dataset_dict, split: str, data: str, required_columns=(), what: str = "split"):
    """``dataset_dict[split]``, checked: present, not empty, with ``required_columns``."""
    if split not in dataset_dict:
        raise DatasetLoadError(f"{data}: no {what} {split!r}; it has {', '.join(sorted(dataset_dict))}")
    dataset = dataset_dict[split]
    missing = [c for c in required_columns if c not in dataset.column_names]
    if missing:
        raise DatasetLoadError(f"{data}: split {split!r} lacks column(s) {missing}; it has {dataset.column_names}")
    if len(dataset) == 0:
        raise DatasetLoadError(f"{data}: split {split!r} is empty")
    return dataset


def load_rows(data: str, split: str | None = None, undecoded_audio: bool = False):
    """One split of ``data`` (checked by :func:`get_split`) or, with ``split=None``, all its splits
    concatenated: what the dataset checks read."""
    import datasets

    dataset_dict = load_dataset_dict(data, undecoded_audio=undecoded_audio)
    if split is not None:
        return get_split(dataset_dict, split, data)
    return datasets.concatenate_datasets(list(dataset_dict.values()))


__all__ = ["DatasetLoadError", "load_dataset_dict", "get_split", "load_rows"]
