"""Corpus readers on small trees written in each corpus's published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datasets_scripts.corpora import CORPORA, get_reader, iter_corpus
from datasets_scripts.corpora import asvspoof2019, asvspoof2021, codecfake, diffssd, folder, in_the_wild, ktuberling, wavefake
from datasets_scripts.schema import ClipRecord

SR = 16_000


def write_audio(path: Path) -> Path:
    """0.2 s of noise; the format follows the extension (FLAC or WAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(0).uniform(-0.1, 0.1, SR // 5).astype(np.float32), SR)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def rec(path, utt_id, label, speaker, corpus, attack="-", source_id=None, extra=None) -> ClipRecord:
    return ClipRecord(str(path), utt_id, label, speaker, corpus, attack, source_id, extra or {})


# Registry


def test_registry_names_and_unknown_name():
    assert set(CORPORA) == {
        "asvspoof2019_la", "asvspoof2021_la", "asvspoof2021_df", "in_the_wild", "codecfake",
        "wavefake", "diffssd", "folder", "demo", "ktuberling",
    }
    assert CORPORA["demo"] == "fillets"  # imported on first use only
    demo = get_reader("demo")
    assert (demo.__module__, demo.__name__) == ("datasets_scripts.corpora.fillets", "iter_clips")
    assert get_reader("asvspoof2021_df") is asvspoof2021.iter_df_clips
    assert get_reader("folder") is folder.iter_clips
    with pytest.raises(ValueError, match="unknown corpus 'nope'.*asvspoof2019_la.*wavefake"):
        get_reader("nope")


def test_iter_corpus_dispatches(tmp_path):
    write_audio(tmp_path / "bonafide" / "a.wav")
    assert [r.utt_id for r in iter_corpus("folder", str(tmp_path))] == ["bonafide-a"]


# ASVspoof 2019 LA


@pytest.fixture
def la2019(tmp_path):
    la = tmp_path / "LA"
    protocols = la / "ASVspoof2019_LA_cm_protocols"
    train = "LA_0079 LA_T_1138215 - - bonafide\nLA_0098 LA_T_1000137 - A04 spoof\n"
    write_text(protocols / "ASVspoof2019.LA.cm.train.trn.txt", train)
    write_text(protocols / "ASVspoof2019.LA.cm.dev.trl.txt", "\nLA_0069 LA_D_1047731 - - bonafide\n")
    write_text(protocols / "ASVspoof2019.LA.cm.eval.trl.txt", "LA_0039 LA_E_2834763 - A11 spoof\n")
    write_audio(la / "ASVspoof2019_LA_train" / "flac" / "LA_T_1138215.flac")
    write_text(la / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt", "")
    return la


def test_asvspoof2019_records(la2019):
    def flac(split, utt):
        return la2019 / f"ASVspoof2019_LA_{split}" / "flac" / f"{utt}.flac"

    c = "asvspoof2019_la"
    expected = [
        rec(flac("train", "LA_T_1138215"), "LA_T_1138215", 0, "LA_0079", c, extra={"split": "train"}),
        rec(flac("train", "LA_T_1000137"), "LA_T_1000137", 1, "LA_0098", c, "A04", extra={"split": "train"}),
        rec(flac("dev", "LA_D_1047731"), "LA_D_1047731", 0, "LA_0069", c, extra={"split": "dev"}),
        rec(flac("eval", "LA_E_2834763"), "LA_E_2834763", 1, "LA_0039", c, "A11", extra={"split": "eval"}),
    ]
    assert list(asvspoof2019.iter_clips(str(la2019))) == expected
    assert list(asvspoof2019.iter_clips(str(la2019.parent), "eval")) == expected[3:]  # the folder holding LA/
    assert all(r.source_id == r.utt_id for r in expected)
    assert asvspoof2019.asv_scores_file(str(la2019), "eval").endswith("ASVspoof2019.LA.asv.eval.gi.trl.scores.txt")
    assert asvspoof2019.asv_scores_file(str(la2019), "dev") is None


def test_asvspoof2019_errors(la2019, tmp_path):
    with pytest.raises(ValueError, match="unknown split 'test'"):
        asvspoof2019.iter_clips(str(la2019), "test")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        asvspoof2019.iter_clips(str(tmp_path / "missing"))
    (la2019 / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"ASVspoof2019\.LA\.cm\.dev\.trl\.txt.*dev CM protocol"):
        asvspoof2019.iter_clips(str(la2019))  # raised on the call, before any record
    protocol = la2019 / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    write_text(protocol, "LA_0079 LA_T_1138215 - - bonafide\nLA_0098 LA_T_1000137 A04 spoof\n")
    with pytest.raises(ValueError, match=r"ASVspoof2019\.LA\.cm\.train\.trn\.txt, line 2: expected 5"):
        list(asvspoof2019.iter_clips(str(la2019), "train"))
    write_text(protocol, "LA_0098 LA_T_1000137 - A04 fake\n")
    with pytest.raises(ValueError, match="line 1: key 'fake'"):
        list(asvspoof2019.iter_clips(str(la2019), "train"))


# ASVspoof 2021 LA / DF

LA21_KEYS = """LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval
LA_0009 LA_E_8589971 alaw loc_tx A07 spoof notrim progress
LA_0012 LA_E_5013670 none ita_tx bonafide bonafide notrim eval
"""
DF21_KEYS = """LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -
TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive Task1 team20 FF E
LA_0043 DF_E_2000026 mp3m4a asvspoof bonafide bonafide notrim eval bonafide - - - -
"""


def test_asvspoof2021_la_records(tmp_path):
    write_text(tmp_path / "keys/LA/CM/trial_metadata.txt", LA21_KEYS)
    flac = tmp_path / "ASVspoof2021_LA_eval" / "flac"
    write_audio(flac / "LA_E_9332881.flac")
    c = "asvspoof2021_la"

    def extra(codec, transmission, subset):
        return {"codec": codec, "transmission": transmission, "trim": "notrim", "subset": subset}

    expected = [
        rec(flac / "LA_E_9332881.flac", "LA_E_9332881", 1, "LA_0009", c, "A07", extra=extra("alaw", "ita_tx", "eval")),
        rec(flac / "LA_E_8589971.flac", "LA_E_8589971", 1, "LA_0009", c, "A07", extra=extra("alaw", "loc_tx", "progress")),
        rec(flac / "LA_E_5013670.flac", "LA_E_5013670", 0, "LA_0012", c, extra=extra("none", "ita_tx", "eval")),
    ]
    assert list(get_reader(c)(str(tmp_path))) == expected
    assert list(get_reader(c)(str(tmp_path), "eval")) == [expected[0], expected[2]]
    assert list(get_reader(c)(str(tmp_path), "hidden")) == []


def test_asvspoof2021_df_records_and_part_folders(tmp_path):
    write_text(tmp_path / "DF-keys-full/keys/DF/CM/trial_metadata.txt", DF21_KEYS)
    main = tmp_path / "ASVspoof2021_DF_eval_part00" / "ASVspoof2021_DF_eval" / "flac"
    other = tmp_path / "ASVspoof2021_DF_eval_part02" / "ASVspoof2021_DF_eval" / "flac"
    write_audio(main / "DF_E_2000011.flac")
    write_audio(other / "DF_E_2000013.flac")
    c = "asvspoof2021_df"

    def extra(codec, source, subset, vocoder, task="-", team="-", gender_pair="-", language="-"):
        return {"codec": codec, "source": source, "trim": "notrim", "subset": subset, "vocoder": vocoder,
                "task": task, "team": team, "gender_pair": gender_pair, "language": language}

    expected = [
        rec(main / "DF_E_2000011.flac", "DF_E_2000011", 1, "LA_0023", c, "A14",
            extra=extra("nocodec", "asvspoof", "progress", "traditional_vocoder")),
        rec(other / "DF_E_2000013.flac", "DF_E_2000013", 1, "TEF2", c, "Task1-team20",
            extra=extra("low_m4a", "vcc2020", "eval", "neural_vocoder_nonautoregressive", "Task1", "team20", "FF", "E")),
        rec(tmp_path / "ASVspoof2021_DF_eval/flac/DF_E_2000026.flac", "DF_E_2000026", 0, "LA_0043", c,
            extra=extra("mp3m4a", "asvspoof", "eval", "bonafide")),
    ]
    assert list(iter_corpus(c, str(tmp_path))) == expected


def test_asvspoof2021_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"keys/DF/CM/trial_metadata\.txt.*DF-keys-full"):
        asvspoof2021.iter_df_clips(str(tmp_path))
    keys = write_text(tmp_path / "keys/LA/CM/trial_metadata.txt", LA21_KEYS + "LA_0009 LA_E_1 alaw ita_tx A07 spoof eval\n")
    with pytest.raises(ValueError, match=rf"{keys}, line 4: expected 8"):
        list(asvspoof2021.iter_la_clips(str(tmp_path)))
    with pytest.raises(ValueError, match="unknown split 'train'"):
        asvspoof2021.iter_la_clips(str(tmp_path), "train")


# In-the-Wild


def test_in_the_wild(tmp_path):
    root = tmp_path / "release_in_the_wild"
    write_text(root / "meta.csv", "file,speaker,label\n"
               "0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n2.wav,Barack Obama,spoof\n")
    write_audio(root / "0.wav")
    c = "in_the_wild"
    expected = [
        rec(root / "0.wav", "0", 1, "Alec Guinness", c, "itw-spoof"),
        rec(root / "1.wav", "1", 0, "Alec Guinness", c),
        rec(root / "2.wav", "2", 1, "Barack Obama", c, "itw-spoof"),
    ]
    assert list(in_the_wild.iter_clips(str(root))) == expected
    assert list(in_the_wild.iter_clips(str(tmp_path), "eval")) == expected  # the folder holding the release
    write_text(root / "meta.csv", "file,speaker,label\n0.wav,Alec Guinness,spoof,extra\n")
    with pytest.raises(ValueError, match=r"meta\.csv, line 2: more fields than the header's 3"):
        list(in_the_wild.iter_clips(str(root)))
    write_text(root / "meta.csv", "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,maybe\n")
    with pytest.raises(ValueError, match=r"meta\.csv, line 3: unknown label 'maybe'"):
        list(in_the_wild.iter_clips(str(root)))
    (root / "meta.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta\.csv.*file,speaker,label"):
        in_the_wild.iter_clips(str(root))


# CodecFake


def test_codecfake_metadata_export_pairs_resyntheses(tmp_path):
    write_text(tmp_path / "metadata.csv", "file,label,speaker_id,codec_name\n"
               "genuine/p225_001.wav,genuine,p225,genuine\n"
               "encodec_24khz/p225_001.wav,spoofing,p225,encodec_24khz\n"
               "SpeechTokenizer/p226_002.wav,spoofing,p226,SpeechTokenizer\n")
    write_audio(tmp_path / "genuine" / "p225_001.wav")
    c = "codecfake"
    expected = [
        rec(tmp_path / "genuine/p225_001.wav", "p225_001", 0, "p225", c, extra={"split": "train", "codec": "genuine"}),
        rec(tmp_path / "encodec_24khz/p225_001.wav", "encodec_24khz-p225_001", 1, "p225", c, "encodec_24khz", "p225_001",
            extra={"split": "train", "codec": "encodec_24khz"}),
        rec(tmp_path / "SpeechTokenizer/p226_002.wav", "SpeechTokenizer-p226_002", 1, "p226", c, "SpeechTokenizer",
            extra={"split": "dev", "codec": "SpeechTokenizer"}),
    ]
    records = list(codecfake.iter_clips(str(tmp_path)))
    assert records == expected
    assert records[2].source_id == "SpeechTokenizer-p226_002"  # no original of it in the list
    assert list(codecfake.iter_clips(str(tmp_path), "dev")) == expected[2:]


def test_codecfake_headerless_datalist_and_errors(tmp_path):
    write_text(tmp_path / "datalist.csv", "wav/p227_003.wav,genuine,p227,genuine\n"
               "wav/p227_003_dac_16k.wav,spoofing,p227,dac_16k\n")
    records = list(codecfake.iter_clips(str(tmp_path), "eval"))
    assert [(r.utt_id, r.label, r.attack, r.source_id, r.extra["split"]) for r in records] == [
        ("p227_003", 0, "-", "p227_003", "eval"),
        ("dac_16k-p227_003_dac_16k", 1, "dac_16k", "p227_003", "eval"),  # "_<codec>" suffix dropped for pairing
    ]
    write_text(tmp_path / "datalist.csv", "wav/p227_003.wav,genuine,p227,genuine\nwav/p227_004.wav,spoofing,p227,genuine\n")
    with pytest.raises(ValueError, match=r"datalist\.csv, line 2: spoofing row without a codec"):
        list(codecfake.iter_clips(str(tmp_path)))
    write_text(tmp_path / "datalist.csv", "wav/p227_003.wav,genuine,p227\n")
    with pytest.raises(ValueError, match="line 1: expected 4 fields"):
        list(codecfake.iter_clips(str(tmp_path)))
    (tmp_path / "datalist.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"metadata\.csv.*datalist\.csv"):
        codecfake.iter_clips(str(tmp_path))


# WaveFake


def test_wavefake_pairs_vocoded_clips_with_originals(tmp_path):
    gen = tmp_path / "generated_audio"
    lj, jsut = tmp_path / "real_audio/LJSpeech-1.1/wavs", tmp_path / "jsut_ver1.1/basic5000/wav"
    for path in (lj / "LJ001-0001.wav", jsut / "BASIC5000_0001.wav", gen / "ljspeech_melgan/LJ001-0001_gen.wav",
                 gen / "ljspeech_melgan/LJ001-0002_gen.wav", gen / "jsut_parallel_wavegan/BASIC5000_0001_gen.wav"):
        write_audio(path)
    write_text(gen / "ljspeech_melgan" / "README.txt", "not audio")
    c = "wavefake"
    expected = [
        rec(lj / "LJ001-0001.wav", "LJ001-0001", 0, "LJ", c),
        rec(jsut / "BASIC5000_0001.wav", "BASIC5000_0001", 0, "JSUT", c),
        rec(gen / "jsut_parallel_wavegan/BASIC5000_0001_gen.wav", "jsut_parallel_wavegan-BASIC5000_0001_gen", 1, "JSUT", c,
            "jsut_parallel_wavegan", "BASIC5000_0001"),
        rec(gen / "ljspeech_melgan/LJ001-0001_gen.wav", "ljspeech_melgan-LJ001-0001_gen", 1, "LJ", c, "ljspeech_melgan",
            "LJ001-0001"),
        rec(gen / "ljspeech_melgan/LJ001-0002_gen.wav", "ljspeech_melgan-LJ001-0002_gen", 1, "LJ", c, "ljspeech_melgan",
            "ljspeech_melgan-LJ001-0002_gen"),
    ]
    assert list(wavefake.iter_clips(str(tmp_path))) == expected
    with pytest.raises(ValueError, match="unknown split 'train'"):
        wavefake.iter_clips(str(tmp_path), "train")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no WaveFake audio.*generated_audio"):
        wavefake.iter_clips(str(empty))


# DiffSSD

DIFFSSD_SPLITS = """version 1
filename,method_name,category,source,set,target
ljspeech/LJ001-0001.wav,ljspeech,real,ljspeech,train,0
librispeech/dev-clean/84/121123/84-121123-0000.flac,librispeech,real,librispeech,test,0
generated_speech/unit_speech/speaker_5448/sentence_181.wav,unitspeech,open-source,diffusion,test,1
generated_speech/grad_tts/sentence_7.wav,gradtts,open-source,diffusion,val,1
"""


def test_diffssd_records(tmp_path):
    write_text(tmp_path / "train_val_test_splits.csv", DIFFSSD_SPLITS)
    lj = write_audio(tmp_path / "real_speech/LJSpeech-1.1/wavs/LJ001-0001.wav")
    c = "diffssd"

    def extra(split, method, category, source):
        return {"split": split, "method_name": method, "category": category, "source": source}

    expected = [
        rec(lj, "LJ001-0001", 0, "LJ", c, extra=extra("train", "ljspeech", "real", "ljspeech")),
        rec(tmp_path / "librispeech/dev-clean/84/121123/84-121123-0000.flac", "84-121123-0000", 0, "84", c,
            extra=extra("test", "librispeech", "real", "librispeech")),
        rec(tmp_path / "generated_speech/unit_speech/speaker_5448/sentence_181.wav", "unit_speech-speaker_5448-sentence_181",
            1, "5448", c, "unitspeech", extra=extra("test", "unitspeech", "open-source", "diffusion")),
        rec(tmp_path / "generated_speech/grad_tts/sentence_7.wav", "grad_tts-sentence_7", 1, "unknown", c, "gradtts",
            extra=extra("val", "gradtts", "open-source", "diffusion")),
    ]
    assert list(diffssd.iter_clips(str(tmp_path))) == expected
    assert list(diffssd.iter_clips(str(tmp_path), "validation")) == expected[3:]
    real = write_audio(tmp_path / "elsewhere/LibriSpeech/dev-clean/84/121123/84-121123-0000.flac")
    assert list(diffssd.iter_clips(str(tmp_path), "test", real_root=str(tmp_path / "elsewhere")))[0].path == str(real)


def test_diffssd_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train_val_test_splits\.csv.*purdueviperlab/diffssd"):
        diffssd.iter_clips(str(tmp_path))
    path = write_text(tmp_path / "train_val_test_splits.csv", DIFFSSD_SPLITS + "generated_speech/x/y.wav,x,open,test,1\n")
    with pytest.raises(ValueError, match=r"train_val_test_splits\.csv, line 7: expected 6 fields"):
        list(diffssd.iter_clips(str(tmp_path)))
    write_text(path, "filename,method_name,set,target\n")
    with pytest.raises(ValueError, match="header lacks category, source"):
        list(diffssd.iter_clips(str(tmp_path)))


# Folder / CSV


def test_folder_layout(tmp_path):
    for rel in ("bonafide/a.wav", "bonafide/sub/b.flac", "spoof/tts1/c.wav", "spoof/tts1/deep/e.wav", "spoof/d.wav"):
        write_audio(tmp_path / rel)
    write_text(tmp_path / "spoof" / "notes.txt", "not audio")
    c = "folder"
    expected = [
        rec(tmp_path / "bonafide/a.wav", "bonafide-a", 0, "unknown", c),
        rec(tmp_path / "bonafide/sub/b.flac", "bonafide-sub-b", 0, "unknown", c),
        rec(tmp_path / "spoof/d.wav", "spoof-d", 1, "unknown", c, "unknown"),
        rec(tmp_path / "spoof/tts1/c.wav", "spoof-tts1-c", 1, "unknown", c, "tts1"),
        rec(tmp_path / "spoof/tts1/deep/e.wav", "spoof-tts1-deep-e", 1, "unknown", c, "tts1"),
    ]
    assert list(folder.iter_clips(str(tmp_path))) == expected
    write_audio(tmp_path / "train" / "spoof" / "x" / "f.wav")
    assert [r.utt_id for r in folder.iter_clips(str(tmp_path), "train", corpus="mine")] == ["spoof-x-f"]
    with pytest.raises(FileNotFoundError, match="'dev' split folder"):
        folder.iter_clips(str(tmp_path), "dev")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        folder.iter_clips(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no bonafide/ or spoof/"):
        folder.iter_clips(str(tmp_path / "train" / "spoof"))


def test_folder_csv(tmp_path):
    csv_path = write_text(tmp_path / "lists" / "clips.csv", "path,label,speaker,attack,split,text\n"
                          "../audio/a.wav,bonafide,s1,,train,hello\n"
                          "../audio/b.wav,1,s2,vits,test,world\n"
                          "/abs/c.wav,fake,,,test,\n")
    c = "folder"
    expected = [
        rec(tmp_path / "lists/../audio/a.wav", "..-audio-a", 0, "s1", c, extra={"split": "train", "text": "hello"}),
        rec(tmp_path / "lists/../audio/b.wav", "..-audio-b", 1, "s2", c, "vits", extra={"split": "test", "text": "world"}),
        rec("/abs/c.wav", "abs-c", 1, "unknown", c, "unknown", extra={"split": "test", "text": ""}),
    ]
    assert list(folder.iter_clips(str(csv_path))) == expected
    assert list(folder.iter_clips(str(csv_path), "test")) == expected[1:]
    write_text(tmp_path / "metadata.csv", "path,label,utt_id\nx.wav,spoof,clip-1\ny.wav,unsure,clip-2\n")
    records = folder.iter_clips(str(tmp_path))
    assert next(records) == rec(tmp_path / "x.wav", "clip-1", 1, "unknown", c, "unknown")
    with pytest.raises(ValueError, match=r"metadata\.csv, line 3: unknown label 'unsure'"):
        next(records)
    write_text(tmp_path / "metadata.csv", "file_path,label\nx.wav,spoof\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        list(folder.iter_clips(str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="CSV list"):
        folder.iter_clips(str(tmp_path / "missing.csv"))


# KTuberling's spoken words


def write_theme(root: Path, language: str, words: dict[str, float], ext: str = "ogg") -> None:
    """A theme file listing ``words`` (name -> seconds of noise), each written as ``<language>/<name>.<ext>``."""
    rng = np.random.default_rng(1)
    lines = []
    for word, seconds in words.items():
        path = root / language / f"{word}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, rng.uniform(-0.1, 0.1, int(SR * seconds)).astype(np.float32), SR)
        lines.append(f'    <sound name="{word}" file="{language}/{word}.{ext}" />')
    lines.append(f'    <sound name="missing" file="{language}/missing.ogg" />')  # listed, not shipped: skipped
    write_text(root / f"{language}.soundtheme", f'<language code="{language}">\n' + "\n".join(lines) + "\n</language>\n")


def test_ktuberling_words_per_language(tmp_path):
    write_theme(tmp_path, "de", {"hut": 0.7, "ohr": 0.3, "nase": 0.9, "auge": 0.6, "mund": 0.8})
    write_theme(tmp_path, "fr", {"chapeau": 0.6, "nez": 0.6}, ext="wav")
    records = list(iter_corpus("ktuberling", str(tmp_path), languages=["fr", "de"]))
    # theme order within a language; words under min_seconds (0.5) and unshipped files are skipped
    assert [r.utt_id for r in records] == [
        "ktuberling-fr-chapeau", "ktuberling-fr-nez",
        "ktuberling-de-hut", "ktuberling-de-nase", "ktuberling-de-auge", "ktuberling-de-mund",
    ]
    first = records[0]
    assert (first.label, first.attack, first.corpus, first.speaker) == (0, "-", "ktuberling", "ktuberling-fr")
    assert first.extra["word"] == "chapeau" and first.extra["language"] == "fr"
    assert first.extra["duration"] == pytest.approx(0.6, abs=1e-3)
    assert Path(first.path) == tmp_path / "fr" / "chapeau.wav"
    # per_language spreads the cap over the list; min_seconds moves the cut
    spread = list(ktuberling.iter_clips(str(tmp_path), languages=["de"], per_language=2))
    assert [r.extra["word"] for r in spread] == ["hut", "auge"]
    longer = list(ktuberling.iter_clips(str(tmp_path), languages=["de"], min_seconds=0.75))
    assert [r.extra["word"] for r in longer] == ["nase", "mund"]


def test_ktuberling_defaults_keep_english_dutch_and_opus_out():
    assert not {"en", "nl", "nds", "nn"} & set(ktuberling.DEFAULT_LANGUAGES)
    assert not any(language.startswith("sr@") for language in ktuberling.DEFAULT_LANGUAGES)


def test_ktuberling_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="install the Debian package ktuberling-data"):
        list(ktuberling.iter_clips(str(tmp_path / "nowhere")))
    write_theme(tmp_path, "de", {"hut": 0.7})
    with pytest.raises(FileNotFoundError, match=r"it\.soundtheme: no such theme file; languages here: de"):
        list(ktuberling.iter_clips(str(tmp_path), languages=["de", "it"]))
    write_text(tmp_path / "ru.soundtheme", "<language><sound")
    with pytest.raises(ValueError, match="ru.soundtheme: not a readable theme file"):
        list(ktuberling.iter_clips(str(tmp_path), languages=["ru"]))
    with pytest.raises(ValueError, match="no official 'train' split"):
        list(ktuberling.iter_clips(str(tmp_path), split="train"))
