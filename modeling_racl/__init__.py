"""The RACL detector. This folder is also the Hub remote-code folder: torch + transformers only."""

from .configuration_racl import BONAFIDE, LABEL_NAMES, SAMPLING_RATE, SPOOF, XLSR_300M, RACLConfig
from .loss_racl import RACLLoss, RACLLossOutput
from .modeling_racl import RACLForAudioClassification, RACLOutput, RACLPreTrainedModel

__all__ = ["RACLConfig", "RACLForAudioClassification", "RACLPreTrainedModel", "RACLOutput", "RACLLoss", "RACLLossOutput", "XLSR_300M", "SAMPLING_RATE", "LABEL_NAMES", "BONAFIDE", "SPOOF"]
