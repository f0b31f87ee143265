/* Op codes and the kernel table, generated from the .def registries (X-macros):
 * adding an op is one CSVI_OP(NAME, forward, VJP, flags, aux rule) line in a
 * .def file plus its two kernels.  setup.py gives Cython the same codes as
 * OP_<NAME> (generated at build time from the same lines). */
#ifndef CSVI_OPCODES_H
#define CSVI_OPCODES_H

#include "csvi_tape.h"

typedef enum {
#define CSVI_OP(name, fwd, vjp, flags, aux) CSVI_OP_##name,
#include "ops.def"
#include "distributions.def"
#include "transforms.def"
#include "special.def"
#include "draws.def"
#include "linalg.def"
#include "families.def"
#include "continuous.def"
#include "contract.def"
#include "nn.def"
#undef CSVI_OP
    CSVI_OP_COUNT
} csvi_opcode;

#define CSVI_OP(name, fwd, vjp, flags, aux) \
    int fwd(csvi_tape *t, const csvi_op *op); \
    int vjp(csvi_tape *t, const csvi_op *op);
#include "ops.def"
#include "distributions.def"
#include "transforms.def"
#include "special.def"
#include "draws.def"
#include "linalg.def"
#include "families.def"
#include "continuous.def"
#include "contract.def"
#include "nn.def"
#undef CSVI_OP

extern const csvi_kernel csvi_kernels[CSVI_OP_COUNT];

#endif
