/* Neural-network layer kernels (ops_nn.c). */
#ifndef CSVI_NN_H
#define CSVI_NN_H

#include "csvi_tape.h"

/* The activation a DENSE record applies (its iattr[0]); csvi/_nn.pxi names
 * them in the same order. */
typedef enum {
    CSVI_DENSE_NONE = 0,
    CSVI_DENSE_RELU = 1,
    CSVI_DENSE_SOFTPLUS = 2,  /* torch's: x itself above dattr[0] */
    CSVI_DENSE_SIGMOID = 3,
    CSVI_DENSE_TANH = 4,
    CSVI_DENSE_ACT_COUNT
} csvi_dense_act;

/* The precision of a DENSE record's matrix products (its iattr[1]): float64
 * throughout, or x and W rounded to float32 for sgemm, the products widened
 * back (params, bias, activation and gradients stay float64). */
typedef enum {
    CSVI_DENSE_FLOAT64 = 0,
    CSVI_DENSE_FLOAT32 = 1
} csvi_dense_precision;

/* iattr[2] of a float32 dense record, set only by a compiled program
 * (program.c): this record alone writes W's gradient, and its VJP leaves it
 * as the float32 product in the aux (csvi_dense_weight_grad32), marking W's
 * slot CSVI_GRAD_FLOAT32 in grad_fresh, for the optimizer to read there. */
#define CSVI_DENSE_IATTR_GRAD32 2
/* iattr[3] of such a record, set by a compiled program too: the program
 * keeps the record's float32 copy of W current (the optimizer writes it as
 * it updates W, csvi_optim_step_grad32), so the forward does not round W. */
#define CSVI_DENSE_IATTR_W32_KEPT 3
/* iattr[4] of a float32 dense record, set by a compiled program too: 1 +
 * the index of the record whose aux holds the float32 copy of this
 * record's x, already made this step (by an earlier reader of the same x,
 * or -- when that index is the record's own -- by the record that computed
 * x, iattr[5]); 0: the record rounds x itself. */
#define CSVI_DENSE_IATTR_X32_FROM 4
/* iattr[5] of a float32 dense record, set by a compiled program: 1 + the
 * index of the float32 dense record reading this one's output as its x,
 * into whose aux this record's forward writes the output's float32 copy,
 * row by row as it writes the output. */
#define CSVI_DENSE_IATTR_X32_TO 5
/* iattr[6] of a float32 dense record, set by a compiled program: x's
 * gradient stays the float32 product in this record's aux, where the
 * float32 dense record that computed x reads it (its VJP widens and adds
 * its readers' products in the order their VJPs would have added them);
 * x's slot then has no gradient buffer. */
#define CSVI_DENSE_IATTR_DX32_KEPT 6
/* iattr[7..7 + CSVI_DENSE_DX32_READERS) of that producing record: 1 + the
 * index of each such reader, in the order of the reverse sweep (0: none). */
#define CSVI_DENSE_IATTR_DX32_FROM 7
#define CSVI_DENSE_DX32_READERS 4
/* iattr[11] of a dense record, set by a compiled program: 1 + the index of
 * the flat BERNOULLI_PROBS_ROWSUM that alone reads this record's output as
 * its probs; the output then has no gradient buffer, and this record's VJP
 * forms its gradient from the Bernoulli's row gradients in its own pass
 * (csvi_bernoulli_probs_vjp_run), the values the Bernoulli's VJP would
 * have stored there. */
#define CSVI_DENSE_IATTR_PROBS_OF 11

/* A float32 dense record's W gradient as its VJP left it (m * k floats in
 * its aux), or NULL if the aux is too small. */
const float *csvi_dense_weight_grad32(const csvi_tape *t, const csvi_op *op);
/* Its float32 copy of W (m * k floats in its aux), or NULL likewise. */
float *csvi_dense_weight32(const csvi_tape *t, const csvi_op *op);

/* out = (float)a over csvi's pool (elementwise: the same bits for any split). */
void csvi_dense_narrow(const double *a, int64_t size, float *out);
/* out = (double)a, likewise. */
void csvi_dense_widen(const float *a, int64_t size, double *out);

/* How many blocks csvi splits each large dense product into, as one-thread
 * BLAS calls over its own pool (ops_nn.c's gemm): 1 to
 * CSVI_DENSE_MAX_TASKS, 2 by default; other values are clamped.  The products' bits depend
 * on this setting (as on a BLAS's own thread count), not on the pool's
 * thread count.  csvi.nn.set_product_tasks sets it. */
#define CSVI_DENSE_MAX_TASKS 8
void csvi_dense_set_product_tasks(int n);
int csvi_dense_product_tasks(void);

#endif
