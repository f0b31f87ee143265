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

#endif
