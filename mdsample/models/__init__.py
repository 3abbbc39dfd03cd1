"""Models shipped with mdsample: the house denoiser and the MDLM objective it is trained with."""

from mdsample.models.house import HouseDenoiser, house_config, load_house_denoiser
from mdsample.models.mdlm import (
    MdlmLoss,
    mask_tokens,
    mdlm_loss,
    mdlm_objective,
    sample_times,
)

__all__ = [
    "HouseDenoiser",
    "MdlmLoss",
    "house_config",
    "load_house_denoiser",
    "mask_tokens",
    "mdlm_loss",
    "mdlm_objective",
    "sample_times",
]
