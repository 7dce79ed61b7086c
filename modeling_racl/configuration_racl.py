"""RACL model configuration.

Every hyper-parameter of the detector lives here (DESIGN.md section 4): the XLS-R backbone, the
multi-layer aggregation, the AASIST head and the RACL objective. Training-only settings (learning
rates, batch structure, augmentation) live in the training YAML instead.
"""

from __future__ import annotations

from transformers import PretrainedConfig, Wav2Vec2Config

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
FRONTENDS = ("wav2vec2", "sinc", "filterbank")
FILTERBANK_SCALES = ("linear", "mel")
ENH_NEGATIVES = ("reconstructed", "reconstructed_and_spoof")


class RACLConfig(PretrainedConfig):
    r"""
    Configuration of [`RACLForAudioClassification`]: XLS-R + multi-layer aggregation + AASIST + RACL.

    Args:
        frontend (`str`, *optional*, defaults to `"wav2vec2"`):
            What turns the waveform into the (feature x time) map the AASIST head reads: `"wav2vec2"` (the
            paper's XLS-R backbone + multi-layer aggregation) or `"sinc"` (AASIST's original raw-waveform
            front-end: a fixed bank of mel-spaced sinc band-pass filters, no backbone; trains from scratch
            in minutes on a CPU) or `"filterbank"` (log energies of a fixed linear- or mel-spaced filterbank on a
            short-time Fourier transform, the LFCC/LFB family of ASVspoof baselines without the DCT, so that
            the AASIST map keeps a frequency axis; ~100 frames/s instead of the sinc map's 16 000, hence many
            times cheaper to train from scratch on a CPU).
        sinc_filters (`int`, *optional*, defaults to 70):
            Number of sinc band-pass filters (the spectral axis of the AASIST map) with `frontend="sinc"`.
        sinc_kernel_size (`int`, *optional*, defaults to 129):
            Length in samples of each sinc filter (odd) with `frontend="sinc"`.
        filterbank_bins (`int`, *optional*, defaults to 60):
            Number of filters (the spectral axis of the AASIST map) with `frontend="filterbank"`.
        filterbank_scale (`str`, *optional*, defaults to `"mel"`):
            Spacing of the filters: `"mel"` or `"linear"` (equal resolution up to Nyquist, as LFCC). Mel
            generalised better to the demo's unseen speaker (README "Demo results").
        filterbank_n_fft (`int`, *optional*, defaults to 512):
            Window (and FFT) length in samples of the short-time Fourier transform.
        filterbank_hop (`int`, *optional*, defaults to 160):
            Hop in samples between frames (160 = 10 ms at 16 kHz).
        backbone_config (`dict` or `Wav2Vec2Config`, *optional*):
            Architecture of the Wav2Vec2 backbone. Defaults to the XLS-R 300M architecture.
        backbone_name_or_path (`str`, *optional*, defaults to `"facebook/wav2vec2-xls-r-300m"`):
            Checkpoint whose weights [`RACLForAudioClassification.from_pretrained_backbone`] loads into the
            backbone before training. `None` trains the backbone from scratch.
        aggregation (`str`, *optional*, defaults to `"weighted"`):
            How the L+1 hidden states are combined: `"weighted"` (softmax layer weights), `"gated"`
            (SLS-style sigmoid gate per layer from a pooled summary), `"attention"` (per-frame attention over
            layers) or `"last"` (last layer only, the single-layer baseline).
        aggregation_attention_dim (`int`, *optional*, defaults to 128):
            Hidden size of the scorer in the `"attention"` mode.
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
        racl_alpha (`float`, *optional*, defaults to 0.6): weight of the standard contrastive term Lstd.
        racl_beta (`float`, *optional*, defaults to 0.1): weight of the enhanced contrastive term Lenh.
        racl_gamma (`float`, *optional*, defaults to 0.3): weight of the intra-class variance regulariser Lreg.
        racl_temperature (`float`, *optional*, defaults to 0.07): temperature of both contrastive terms.
        racl_enh_negatives (`str`, *optional*, defaults to `"reconstructed"`):
            Negatives of Lenh: `"reconstructed"` (reconstructions of bona fide and spoof clips, our reading of
            the paper) or `"reconstructed_and_spoof"` (also original spoof clips).
        class_weights (`list[float]`, *optional*):
            Cross-entropy weights for (bonafide, spoof); `None` for unweighted.
        calibration_scale (`float`, *optional*, defaults to 1.0), calibration_bias (`float`, *optional*, defaults to 0.0):
            `p(bonafide) = sigmoid(scale * score + bias)` with `score = logit[bonafide] - logit[spoof]`. The
            defaults give the softmax probability; evaluation refits them on the validation split.
        score_window_seconds (`float`, *optional*, defaults to 4.0), score_hop_seconds (`float`, *optional*, defaults to 2.0):
            Window and hop used to score audio longer than one window (scores are averaged over windows).
    """

    model_type = "racl"
    sub_configs = {"backbone_config": Wav2Vec2Config}

    def __init__(
        self,
        frontend: str = "wav2vec2",
        sinc_filters: int = 70,
        sinc_kernel_size: int = 129,
        filterbank_bins: int = 60,
        filterbank_scale: str = "mel",
        filterbank_n_fft: int = 512,
        filterbank_hop: int = 160,
        backbone_config: dict | Wav2Vec2Config | None = None,
        backbone_name_or_path: str | None = XLSR_300M,
        aggregation: str = "weighted",
        aggregation_attention_dim: int = 128,
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
        racl_alpha: float = 0.6,
        racl_beta: float = 0.1,
        racl_gamma: float = 0.3,
        racl_temperature: float = 0.07,
        racl_enh_negatives: str = "reconstructed",
        class_weights: list[float] | None = None,
        calibration_scale: float = 1.0,
        calibration_bias: float = 0.0,
        score_window_seconds: float = 4.0,
        score_hop_seconds: float = 2.0,
        **kwargs,
    ):
        if backbone_config is None:
            backbone_config = Wav2Vec2Config(**XLSR_300M_ARCHITECTURE)
        elif isinstance(backbone_config, dict):
            backbone_config = Wav2Vec2Config(**{k: v for k, v in backbone_config.items() if k != "model_type"})
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
        if racl_enh_negatives not in ENH_NEGATIVES:
            raise ValueError(f"racl_enh_negatives must be one of {ENH_NEGATIVES}, got {racl_enh_negatives!r}")
        if class_weights is not None and len(class_weights) != 2:
            raise ValueError(f"class_weights needs one weight per class (bonafide, spoof), got {class_weights}")
        if score_hop_seconds <= 0 or score_window_seconds <= 0:
            raise ValueError("score_window_seconds and score_hop_seconds must be positive")

        self.frontend = frontend
        self.sinc_filters = sinc_filters
        self.sinc_kernel_size = sinc_kernel_size
        self.filterbank_bins = filterbank_bins
        self.filterbank_scale = filterbank_scale
        self.filterbank_n_fft = filterbank_n_fft
        self.filterbank_hop = filterbank_hop
        self.backbone_config = backbone_config
        self.backbone_name_or_path = backbone_name_or_path
        self.aggregation = aggregation
        self.aggregation_attention_dim = aggregation_attention_dim
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
        self.racl_alpha = racl_alpha
        self.racl_beta = racl_beta
        self.racl_gamma = racl_gamma
        self.racl_temperature = racl_temperature
        self.racl_enh_negatives = racl_enh_negatives
        self.class_weights = list(class_weights) if class_weights is not None else None
        self.calibration_scale = calibration_scale
        self.calibration_bias = calibration_bias
        self.score_window_seconds = score_window_seconds
        self.score_hop_seconds = score_hop_seconds

        kwargs.setdefault("id2label", dict(enumerate(LABEL_NAMES)))
        kwargs.setdefault("label2id", {name: i for i, name in enumerate(LABEL_NAMES)})
        super().__init__(**kwargs)
        if self.encoder_channels_mismatch():
            raise ValueError(f"aasist_encoder_channels must chain (out of one block = in of the next) and start at 1: {self.aasist_encoder_channels}")

    def encoder_channels_mismatch(self) -> bool:
        chans = self.aasist_encoder_channels
        return chans[0][0] != 1 or any(a[1] != b[0] for a, b in zip(chans, chans[1:]))

    @property
    def spectral_dim(self) -> int:
        """Height of the AASIST map: the sinc or filterbank filters, or the projected SSL features."""
        return {"sinc": self.sinc_filters, "filterbank": self.filterbank_bins}.get(self.frontend, self.aasist_linear_dim)

    @property
    def num_spectral_nodes(self) -> int:
        """Spectral nodes of the AASIST graph: the map's feature axis after the first pool."""
        return self.spectral_dim // self.aasist_first_pool[0]

    @property
    def min_input_samples(self) -> int:
        """Shortest input the front-end accepts (400 samples for XLS-R's convolutions; one filter for sinc; one
        window for the filterbank)."""
        if self.frontend == "sinc":
            return self.sinc_kernel_size
        if self.frontend == "filterbank":
            return self.filterbank_n_fft
        field, hop = 1, 1
        for kernel, stride in zip(self.backbone_config.conv_kernel, self.backbone_config.conv_stride):
            field += (kernel - 1) * hop
            hop *= stride
        return field

    @property
    def embedding_dim(self) -> int:
        """Size of the readout embedding (the vector RACL works on)."""
        return 5 * self.aasist_gat_dims[1]


__all__ = ["RACLConfig", "XLSR_300M", "XLSR_300M_ARCHITECTURE", "FRONTENDS", "SAMPLING_RATE", "LABEL_NAMES", "BONAFIDE", "SPOOF"]
