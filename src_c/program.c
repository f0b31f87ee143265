/* The compiled SVI loop (see csvi_program.h). */
#include <math.h>
#include "csvi_program.h"

static int all_finite(const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int64_t csvi_program_run(csvi_program *p, int64_t n_steps, double *losses) {
    csvi_tape *t = p->tape;
    p->status = CSVI_PROGRAM_DONE;
    for (int64_t s = 0; s < n_steps; s++) {
        for (int32_t i = 0; i < t->n_ops; i++) {
            int rc = csvi_tape_forward_op(t, i);
            if (rc) {
                p->status = CSVI_PROGRAM_KERNEL_ERROR;
                p->kernel_rc = rc;
                return s;
            }
        }
        const double loss = t->slots[p->loss].data[0];
        if (!isfinite(loss)) {
            p->status = CSVI_PROGRAM_LOSS_NOT_FINITE;
            return s;
        }
        int rc = csvi_tape_backward(t, p->root);
        if (rc) {
            p->status = CSVI_PROGRAM_KERNEL_ERROR;
            p->kernel_rc = rc;
            return s;
        }
        for (int32_t k = 0; k < p->n_params; k++) {
            const csvi_slot *leaf = &t->slots[p->params[k].leaf];
            if (leaf->grad && !all_finite(leaf->grad, leaf->size)) {
                p->status = CSVI_PROGRAM_GRAD_NOT_FINITE;
                p->failed_param = k;
                return s;
            }
        }
        for (int32_t k = 0; k < p->n_params; k++) {
            csvi_program_param *q = &p->params[k];
            csvi_slot *leaf = &t->slots[q->leaf];
            if (!leaf->grad) continue;
            q->step += 1;
            csvi_optim_step(q->config, leaf->data, leaf->grad, q->state, leaf->size, q->step);
        }
        losses[s] = loss;
    }
    return n_steps;
}
