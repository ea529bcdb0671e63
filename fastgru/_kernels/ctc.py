"""Connectionist temporal classification: the loss ``-log p(labels | logits)`` of each sequence and its gradient
in the logits, by the forward-backward recursions in log space (float64).

Each sequence's labels ``l`` (length L) are spread over S = 2L + 1 states, a blank before, between and after
them; a path moves from a state to itself, the next, or (onto a label that differs from the one two states
back) over the blank between them. ``alpha[t, s]`` (forward) and ``beta[t, s]`` (backward) both include the
emission at ``t``, so ``alpha + beta - logp`` is the log of the probability of the paths through ``(t, s)``; the
gradient of the loss in the logits is ``softmax(logits) - (those probabilities summed per class) / p``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_NEG_INF = -np.inf


@njit(cache=True, inline="always")
def _log_add(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@njit(cache=True, nogil=True)
def ctc_loss_and_grad(logits, labels, label_lengths, logit_lengths, blank, loss, grad):
    """``loss[b]`` and ``grad[b]`` (d loss[b] / d logits[b]) for logits (B, T, C) float64, labels (B, L) int64,
    label_lengths and logit_lengths (B,) int64 (checked by the caller: 0 <= label_lengths <= L, 1 <= logit_lengths
    <= T, every used label in [0, C) and not ``blank``). ``grad`` (B, T, C) is written everywhere (zero past a
    sequence's length). A sequence its labels cannot fit gets an infinite loss and a zero gradient."""
    n, steps, classes = logits.shape
    for b in range(n):
        length, count = logit_lengths[b], label_lengths[b]
        if length == 0:  # (no steps: the empty labelling has probability 1, any other none)
            grad[b] = 0.0
            loss[b] = 0.0 if count == 0 else np.inf
            continue
        states = 2 * count + 1
        logp = np.empty((length, classes))
        for t in range(length):
            top = logits[b, t, 0]
            for k in range(1, classes):
                top = max(top, logits[b, t, k])
            total = 0.0
            for k in range(classes):
                total += math.exp(logits[b, t, k] - top)
            shift = top + math.log(total)
            for k in range(classes):
                logp[t, k] = logits[b, t, k] - shift
        ext = np.empty(states, np.int64)
        for s in range(states):
            ext[s] = blank if s % 2 == 0 else labels[b, s // 2]
        alpha = np.full((length, states), _NEG_INF)
        beta = np.full((length, states), _NEG_INF)
        alpha[0, 0] = logp[0, ext[0]]
        if states > 1:
            alpha[0, 1] = logp[0, ext[1]]
        for t in range(1, length):
            for s in range(states):
                a = alpha[t - 1, s]
                if s >= 1:
                    a = _log_add(a, alpha[t - 1, s - 1])
                if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                    a = _log_add(a, alpha[t - 1, s - 2])
                if a != _NEG_INF:
                    alpha[t, s] = a + logp[t, ext[s]]
        last = length - 1
        beta[last, states - 1] = logp[last, ext[states - 1]]
        if states > 1:
            beta[last, states - 2] = logp[last, ext[states - 2]]
        for t in range(last - 1, -1, -1):
            for s in range(states):
                a = beta[t + 1, s]
                if s + 1 < states:
                    a = _log_add(a, beta[t + 1, s + 1])
                if s + 2 < states and ext[s] != blank and ext[s] != ext[s + 2]:
                    a = _log_add(a, beta[t + 1, s + 2])
                if a != _NEG_INF:
                    beta[t, s] = a + logp[t, ext[s]]
        log_total = alpha[last, states - 1]
        if states > 1:
            log_total = _log_add(log_total, alpha[last, states - 2])
        grad[b] = 0.0
        if log_total == _NEG_INF:
            loss[b] = np.inf
            continue
        loss[b] = -log_total
        through = np.full(classes, _NEG_INF)
        for t in range(length):
            for k in range(classes):
                through[k] = _NEG_INF
            for s in range(states):
                v = alpha[t, s] + beta[t, s]
                if v != _NEG_INF and not math.isnan(v):
                    through[ext[s]] = _log_add(through[ext[s]], v - logp[t, ext[s]])
            for k in range(classes):
                grad[b, t, k] = math.exp(logp[t, k]) - math.exp(through[k] - log_total)


@njit(cache=True, nogil=True)
def ctc_greedy_decode(logits, lengths, blank, merge_repeated, decoded, scores):
    """Best path per sequence: each step's largest input (the first on ties), repeats merged where
    ``merge_repeated``, blanks dropped; ``decoded[b]`` (T,) gets the labels from the left, -1 after them, and
    ``scores[b]`` the negated sum of each step's largest input (TensorFlow's greedy decoder's score)."""
    n, steps, classes = logits.shape
    for b in range(n):
        decoded[b] = -1
        out, previous, score = 0, -1, 0.0
        for t in range(lengths[b]):
            best, top = 0, logits[b, t, 0]
            for k in range(1, classes):
                if logits[b, t, k] > top:
                    best, top = k, logits[b, t, k]
            score -= top
            if best != blank and not (merge_repeated and best == previous):
                decoded[b, out] = best
                out += 1
            previous = best
        scores[b] = score
