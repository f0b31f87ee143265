/* Op codes and the kernel table, generated from the .def lists (X-macros), so
 * adding an op is one line in a .def file plus its two kernels. */
#ifndef CSVI_OPCODES_H
#define CSVI_OPCODES_H

#include "csvi_tape.h"

typedef enum {
#define CSVI_OP(name, fwd, vjp) CSVI_OP_##name,
#include "ops.def"
#include "distributions.def"
#include "transforms.def"
#undef CSVI_OP
    CSVI_OP_COUNT
} csvi_opcode;

#define CSVI_OP(name, fwd, vjp) \
    int fwd(csvi_tape *t, const csvi_op *op); \
    int vjp(csvi_tape *t, const csvi_op *op);
#include "ops.def"
#include "distributions.def"
#include "transforms.def"
#undef CSVI_OP

extern const csvi_kernel csvi_kernels[CSVI_OP_COUNT];

#endif
