"""Partial-trace rewards: how well a half-written reasoning trace predicts the final answer's correctness.

During a decode, ``AnswerScoreRecorder`` scores every row after every step with the mean log-likelihood of the gold
answer in the (re-masked) answer slots (core/infill.py), next to two cheap baselines read from the same extra
forward pass: the answer block's entropy bound H_UB and the fraction of reasoning already decoded. The extra
forwards are the recorder's, not the decode's: NFE is unchanged. ``correlation_by_progress`` then gives, at each
stage of decoding, the Pearson correlation of each predictor with final correctness (the "No Compute Left Behind"
paper finds the answer log-likelihood beats a 7B process reward model at this).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.special import entr

from mdsample.core.callbacks import Callback
from mdsample.core.denoiser import Denoiser
from mdsample.core.infill import answer_slot_logits
from mdsample.core.state import MaskedState


@dataclass
class AnswerScoreRecorder(Callback):
    """Records (row, step, progress, score, H_UB, reasoning fraction) after every step of every row.

    ``answer[B, A]``/``gold[B, A]``: answer positions and gold answer ids; ``reasoning[B, R]``: reasoning positions.
    ``progress`` is the row's step count so far divided by its final NFE (filled in at the end), so rows that
    finish at different steps are compared at the same stage of their own decode.
    """

    denoiser: Denoiser
    answer: torch.Tensor
    gold: torch.Tensor
    reasoning: torch.Tensor
    conditioning: dict[str, torch.Tensor] = field(default_factory=dict)
    records: list[torch.Tensor] = field(default_factory=list)

    @torch.no_grad()
    def on_step(self, state: MaskedState, step: int, rows: torch.Tensor, committed: torch.Tensor) -> None:
        mask_id = state.mask_id
        tokens = state.tokens[rows]
        answer = self.answer[rows]
        x = tokens.scatter(1, answer, mask_id)
        cond = {k: v[rows] if torch.is_tensor(v) and v.shape[:1] == (state.batch,) else v
                for k, v in self.conditioning.items()}
        logits = self.denoiser(x, **cond)
        logp = answer_slot_logits(logits, answer, mask_id).log_softmax(dim=-1)
        score = logp.gather(-1, self.gold[rows].unsqueeze(-1)).squeeze(-1).mean(dim=1)
        h_ub = entr(logp.exp()).sum(dim=(1, 2))
        decoded = (tokens.gather(1, self.reasoning[rows]) != mask_id).float().mean(dim=1)
        steps = state.nfe[rows].float()
        self.records.append(torch.stack([rows.float(), steps, score, h_ub, decoded], dim=1).cpu())

    def table(self, nfe: torch.Tensor) -> np.ndarray:
        """[N, 6]: row, step (1-based), progress = step / final NFE of the row, score, H_UB, reasoning fraction."""
        t = torch.cat(self.records).double()
        progress = t[:, 1] / nfe.cpu().double()[t[:, 0].long()]
        return torch.cat([t[:, :2], progress.unsqueeze(1), t[:, 2:]], dim=1).numpy()


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (no linear relation can be measured)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def correlation_by_progress(table: np.ndarray, correct: np.ndarray, stages: np.ndarray) -> dict[str, list[float]]:
    """At each stage s (fraction of a row's decode), correlate each predictor, read at the row's first step with
    progress >= s, with the row's final correctness: ``{"score": [...], "neg_h_ub": [...], "reasoning": [...]}``."""
    rows = table[:, 0].astype(int)
    out: dict[str, list[float]] = {"score": [], "neg_h_ub": [], "reasoning": []}
    for stage in stages:
        picked = {}
        for i in np.argsort(table[:, 1], kind="stable"):
            if table[i, 2] >= stage and rows[i] not in picked:
                picked[rows[i]] = i
        idx = np.array([picked[r] for r in sorted(picked)], dtype=int)
        y = np.asarray(correct, float)[sorted(picked)]
        out["score"].append(pearson(table[idx, 3], y))
        out["neg_h_ub"].append(pearson(-table[idx, 4], y))
        out["reasoning"].append(pearson(table[idx, 5], y))
    return out
