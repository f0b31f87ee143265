/* Particle fast paths for the compiled loop (csvi_program.h): one kernel call
 * for all P copies of an op whose output has a particle dimension.  Copy c of
 * a batched slot s is at slots[s].data + c * size (the slot's pointers are at
 * copy 0 on entry); batched[s] says which slots have copies. */
#ifndef CSVI_PARTICLES_H
#define CSVI_PARTICLES_H

#include "csvi_tape.h"

/* Returned when an op's case has no fast path: run it once per copy. */
#define CSVI_DECLINED (-1)

int csvi_particles_fwd(csvi_tape *t, const csvi_op *op, const unsigned char *batched,
                       int64_t particles);
int csvi_particles_vjp(csvi_tape *t, const csvi_op *op, const unsigned char *batched,
                       int64_t particles);

#endif
