"""Log-space contractions, one tape op each with forward and VJP in C
(src_c/ops_contract.c), shared by enumeration (TraceEnum_ELBO), markov
chains and DiscreteHMM.

Entries may be -inf (zero probabilities): a row of `a` or a column of `b`
(a state no path reaches) that is all -inf gives -inf and a zero gradient,
never NaN.  Entries must not be +inf; a NaN propagates.
"""
import numpy as np

from csvi import _core

__all__ = ["logmatmulexp", "markov_chain_logsumexp", "markov_forward"]


def logmatmulexp(a, b):
    """log(exp(a) @ exp(b)) over the last two dims, with numpy.matmul's
    batch broadcasting and 1-D promotion (Pyro's _logmatmulexp), as one op.

    Stable: each row of `a` and each column of `b` is shifted by its max
    before the exps, so only the sums' own range limits precision."""
    return _core.logmatmulexp(a, b)


def markov_forward(init, trans, obs=None, normalize=False, check_nan=False):
    """The forward algorithm's log messages alpha, shape (..., T, K), of a
    chain with log initial factor `init` (..., K), log transition factors
    `trans` (..., T or 1, K, K) (old state, new state) and optional log
    observation factors `obs` (..., T or 1, K) of the new state:

        alpha[t][j] = log sum_i exp(alpha[t-1][i] + trans[t][i, j]) + obs[t][j]

    with alpha[-1] = init; T is the larger of the two time sizes, batch dims
    broadcast.  One op: O(T K^2) time, O(T K) saved, its VJP the backward
    pass.  alpha[..., -1, :] is the filtered (unnormalized) last state.

    normalize=True reads `trans` as unnormalized transition logits and uses
    trans - logsumexp(trans, -1) in their place, inside the op: the exps
    that normalize a row also serve the step's product, and no normalized
    (T, K, K) copy or its gradient is built.

    check_nan=True makes a NaN in `trans` a ValueError naming its flat
    index, found in the op's own pass over `trans` rather than in a pass of
    its own (validation of a (T, K, K) input costs a read of it)."""
    return _core.markov_forward(init, trans, obs, normalize, check_nan)


def markov_chain_logsumexp(init, trans, obs=None, normalize=False, check_nan=False):
    """log of the sum over all K^(T+1) state paths x0..xT of exp(init[x0] +
    sum_t trans[t][x(t-1), x(t)] + obs[t][x(t)]) -- logsumexp of
    markov_forward's last message -- with shape the broadcast batch dims
    (`normalize` and `check_nan` as markov_forward's)."""
    alpha = _core.markov_forward(init, trans, obs, normalize, check_nan)
    if alpha.shape[-2] == 0:  # no step: the initial factor alone
        return _core.logsumexp(init + np.zeros(alpha.shape[:-2] + alpha.shape[-1:]), axis=-1)
    return _core.logsumexp(alpha[..., -1, :], axis=-1)
