"""Adapters that run hub text MDMs (LLaDA, Dream, masked LMs) behind mdsample's Denoiser protocol.

``load_text_model(name_or_path, trust_remote_code=..., device=...)`` returns a TextModel: the denoiser (accepting an
``attention_mask[B, L]`` conditioning tensor over the whole canvas), the tokenizer, and the mask / pad / stop ids.
``TextModel.encode_prompts`` left-pads prompts; ``build_canvas`` appends the generation slots. One module per family.
"""

from mdsample.plugins.text.adapters.canvas import Canvas, build_canvas
from mdsample.plugins.text.adapters.loader import IMPLS, load_text_model
from mdsample.plugins.text.adapters.source import FAMILIES, detect_family
from mdsample.plugins.text.adapters.text_model import TextModel

__all__ = ["FAMILIES", "IMPLS", "Canvas", "TextModel", "build_canvas", "detect_family", "load_text_model"]
