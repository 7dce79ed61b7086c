"""The RACL detector. This folder is also the Hub remote-code folder: torch + transformers only."""

from .configuration_racl import BACKBONE_TYPES, BONAFIDE, FRONTENDS, LABEL_NAMES, SAMPLING_RATE, SPOOF, XLSR_300M, RACLConfig
from .familiarity_racl import FamiliarityCheck, fitted_threshold, neighbour_distances, pooled_states
from .frontends_racl import FrontendOutput, FrontendSpec, frontend_for
from .loss_racl import RACLLoss, RACLLossOutput
from .modeling_racl import RACLForAudioClassification, RACLOutput, RACLPreTrainedModel

__all__ = [
    "RACLConfig",
    "RACLForAudioClassification",
    "RACLPreTrainedModel",
    "RACLOutput",
    "RACLLoss",
    "RACLLossOutput",
    "FrontendSpec",
    "FrontendOutput",
    "frontend_for",
    "FamiliarityCheck",
    "fitted_threshold",
    "neighbour_distances",
    "pooled_states",
    "XLSR_300M",
    "FRONTENDS",
    "BACKBONE_TYPES",
    "SAMPLING_RATE",
    "LABEL_NAMES",
    "BONAFIDE",
    "SPOOF",
]
