"""Selection rules: one small class per file, all batched. BUILTIN_RULES maps each name to its class."""

from mdsample.core.rules.ar_med import ARMED
from mdsample.core.rules.base import Rule, StepContext, ensure_progress, top_k_mask
from mdsample.core.rules.confidence import Confidence
from mdsample.core.rules.eb import EntropyBounded
from mdsample.core.rules.entropy import Entropy
from mdsample.core.rules.klass import KLASS
from mdsample.core.rules.margin import Margin
from mdsample.core.rules.maskgit import MaskGIT
from mdsample.core.rules.med import MED
from mdsample.core.rules.random import Random
from mdsample.core.rules.threshold import Threshold

BUILTIN_RULES: dict[str, type[Rule]] = {
    rule.name: rule
    for rule in (KLASS, MED, ARMED, EntropyBounded, Confidence, Margin, Entropy, Random, MaskGIT, Threshold)
}

__all__ = ["BUILTIN_RULES", "Rule", "StepContext", "ensure_progress", "top_k_mask"]
