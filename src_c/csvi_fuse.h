/* Fusion of a frozen program's ops (and one chain's VJP in an eager sweep).
 *
 * The tape records what the model wrote, op by op; eagerly each op must
 * exist, since Python holds its result.  Once a step is frozen, a chain
 * whose intermediates nobody else reads can run as one kernel that never
 * stores them.  csvi_fuse rewrites such chains in place:
 *
 *   l = z + c (c one number, optional); lp = BERNOULLI_LP(x, logits=l);
 *   lp read only by the ELBO's SUM_N
 *     -> BERNOULLI_LOGITS_SUM(x, z[, c]), a scalar (dist_bernoulli.c)
 *
 *   lp = BERNOULLI_LP(x, probs=p) in its table form (p broadcast over more
 *   data, x without gradient) or flat (x and p of lp's shape); lp read only
 *   by a SUM over its last dim
 *     -> BERNOULLI_PROBS_ROWSUM(x, p), the SUM's output (dist_bernoulli.c)
 *
 *   y = TAKE(a, index) of the same slots as an earlier TAKE (or of slots
 *   that no op writes over the same memory: the guide's and the model's
 *   conversions of one data argument), no gradient
 *     -> its readers read the earlier TAKE's output
 *
 *   m = GATHER(a, index) read only by lp = NORMAL_LP(x, m, s), x without
 *   gradient, s one number; lp read only by the ELBO's SUM_N
 *     -> NORMAL_GATHER_SUM(x, a, index, s), a scalar, in the GATHER's place;
 *        m is never stored (dist_normal.c)
 *
 *   e = DIST_EXPAND(lp) read only by WHERE(mask, e, 0) of e's shape
 *     -> WHERE(mask, lp, 0), broadcasting lp itself
 *
 * The fused kernels compute every value as the unfused ops do and add in the
 * same order (csvi_sum.h), so fusion changes speed, not results. */
#ifndef CSVI_FUSE_H
#define CSVI_FUSE_H

#include "csvi_tape.h"

/* The longest row BERNOULLI_PROBS_ROWSUM sums (its kernels keep a row on
 * the stack). */
#define CSVI_ROWSUM_MAX 4096

/* Rewrites t's ops; the slots `keep` (the loss, the surrogate) keep their
 * values.  Returns the number of chains fused, or -1 when out of memory. */
int csvi_fuse(csvi_tape *t, const int32_t *keep, int n_keep);

/* An eager sweep that wants only the leaves' gradients (an SVI step, whose
 * tape is cleared right after it) runs each chain csvi_fuse would fold into
 * NORMAL_GATHER_SUM as that op's VJP, at the GATHER: the gathered locs' and
 * the log-densities' gradients (two buffers of the data's size, each
 * cleared, filled and read once) are never stored.  The forward ran unfused
 * (Python holds its values); the sweep gives csvi_fuse's bits, which are the
 * unfused sweep's.
 *
 * csvi_fuse_sweep (a sweep from slot `root`, whose gradient is always
 * stored) fills `wanted` (per slot: 0 for those gradients, else 1)
 * and `c` (per op: at a fused chain's GATHER, its NORMAL_LP and SUM_N; else
 * lp = -1), in `work` (csvi_fuse_sweep_work(t) bytes, which c points into),
 * and returns the number of chains. */
typedef struct {
    int32_t *lp, *sum;
} csvi_sweep_chains;

size_t csvi_fuse_sweep_work(const csvi_tape *t);
int32_t csvi_fuse_sweep(csvi_tape *t, int32_t root, void *work, unsigned char *wanted,
                        csvi_sweep_chains *c);
/* The NORMAL_GATHER_SUM (its value: the SUM_N's slot) whose VJP runs the
 * chain at GATHER g. */
csvi_op csvi_sweep_fused(const csvi_tape *t, const csvi_sweep_chains *c, int32_t g);

/* A flat BERNOULLI_PROBS_ROWSUM's VJP over a run of one row: out[i] =
 * kept(g != 0, g d/dp log p(x_i)), the term its VJP adds into the probs'
 * gradient for a row gradient g (as SUM's VJP hands it on); n <=
 * CSVI_ROWSUM_MAX.  Also what a dense record computing the probs reads in
 * its own VJP when the program leaves the probs no gradient buffer
 * (program.c, mark_probs_into_dense). */
void csvi_bernoulli_probs_vjp_run(double *out, double g, const double *x, const double *p,
                                  int64_t n);

/* The iattr of a Bernoulli op in its table form (BERNOULLI_LP with probs
 * broadcast over more data, BERNOULLI_PROBS_ROWSUM) naming, plus one, an
 * earlier op whose tables it reads when its probs hold the same numbers
 * (0: none; eager ops never have one). */
#define CSVI_IATTR_TABLES (CSVI_N_IATTR - 1)

/* In a frozen program, links each table-form Bernoulli op that runs to the
 * first one before it with probs of its size, run in the same phase
 * (`runs`, `phase`: per op, as program.c marks them): an HMM's emission
 * probs, gathered afresh at every time step, are the same table each time,
 * so the tables (a log, a log1p and two divisions per entry) are worked out
 * once per step instead of once per time step.  Whether the numbers are the
 * same is checked each step (dist_bernoulli.c), so results never change. */
void csvi_bernoulli_link_tables(csvi_tape *t, const unsigned char *runs,
                                const unsigned char *phase);

#endif
