/* Neural-network layer kernels (ops_nn.c). */
#ifndef CSVI_NN_H
#define CSVI_NN_H

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

#endif
