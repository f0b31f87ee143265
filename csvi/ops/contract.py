"""Log-space contractions, one tape op each with forward and VJP in C
(src_c/ops_contract.c), shared by enumeration (TraceEnum_ELBO), markov
chains and DiscreteHMM.

    logmatmulexp(a, b)
        log(exp(a) @ exp(b)) over the last two dims, with numpy.matmul's
        broadcasting and 1-D promotion (Pyro's _logmatmulexp).
    markov_forward(init, trans, obs=None)
        the forward algorithm's log messages alpha (..., T, K) of a chain
        with log initial factor init (..., K), log transition factors trans
        (..., T or 1, K, K) (old state, new state) and optional log
        observation factors obs (..., T or 1, K) of the new state:
            alpha[t][j] = log sum_i exp(alpha[t-1][i] + trans[t][i, j]) + obs[t][j]
        with alpha[-1] = init.  O(T K^2) time, O(T K) saved for the
        gradient, whose VJP is the backward pass.
    markov_chain_logsumexp(init, trans, obs=None)
        log of the sum over all K^T paths, logsumexp(alpha[..., -1, :]);
        DiscreteHMM.log_prob.

Entries may be -inf (zero probabilities): a row of `a` or a column of `b`
(a state no path reaches) that is all -inf gives -inf and a zero gradient,
never NaN.  Entries must not be +inf; a NaN propagates.
"""
import numpy as np

from csvi._core import logmatmulexp, logsumexp, markov_forward

__all__ = ["logmatmulexp", "markov_chain_logsumexp", "markov_forward"]


def markov_chain_logsumexp(init, trans, obs=None):
    """log sum over all state paths of exp(init[x0] + sum_t trans[t][x(t-1), x(t)]
    + obs[t][x(t)]): shape (...,), the batch dims of the three broadcast."""
    alpha = markov_forward(init, trans, obs)
    if alpha.shape[-2] == 0:  # no step: the initial factor alone
        return logsumexp(init + np.zeros(alpha.shape[:-2] + alpha.shape[-1:]), axis=-1)
    return logsumexp(alpha[..., -1, :], axis=-1)
