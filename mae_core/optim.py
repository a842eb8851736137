"""The optimiser and learning-rate schedule shared by pretraining (``train``) and fine-tuning
(``evaluation.finetune``): the official MAE recipe's AdamW groups (no weight decay on biases and 1-D parameters)
and a linear warm-up followed by a half-cycle cosine."""
from __future__ import annotations

import math

import torch


def param_groups(model: torch.nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def make_optimizer(params, lr: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW, fused into one kernel where this torch can (CPU and CUDA): on 2 CPU cores the fused step is about
    5x faster than the per-tensor one (7M parameters: 12 ms against 66 ms), the same update up to rounding."""
    try:
        return torch.optim.AdamW(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch, or a device without the fused kernel
        return torch.optim.AdamW(params, lr=lr, betas=betas)


def lr_at(progress: float, warmup: float, peak: float, minimum: float) -> float:
    """Linear warmup over the first ``warmup`` fraction, then half-cycle cosine to ``minimum``."""
    if progress < warmup:
        return peak * progress / warmup
    t = (progress - warmup) / max(1e-12, 1 - warmup)
    return minimum + (peak - minimum) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
