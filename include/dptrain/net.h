/*
 * net: a fully connected network: its architecture, the one contiguous
 * parameter buffer, the per-rank work buffers, forward and backward passes.
 *
 * Parameter layout (gradients and every optimiser state vector share it):
 *   W_0 [sizes[1], sizes[0]], b_0 [sizes[1]], W_1, b_1, ..., W_{L-1}, b_{L-1}
 * so layer l occupies one contiguous range [w_off[l], b_off[l] + sizes[l+1]),
 * and the last layer's range ends the buffer (buckets, last layer first).
 *
 * The backward pass SUMS per-sample gradients over the rows it is given (the
 * caller divides by the global sample count after the allreduce). It does not
 * talk to MPI; an optional hook is called after each layer's gradient is
 * complete, last layer first, so that its reduction can start early.
 */
#ifndef DPT_NET_H
#define DPT_NET_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/kernels.h"
#include "dptrain/loss.h"
#include "dptrain/optim.h"
#include "dptrain/rng.h"
#include "dptrain/status.h"

typedef enum { DPT_INIT_NIELSEN = 0, DPT_INIT_XAVIER, DPT_INIT_HE } DptInit;

#define DPT_MAX_LAYERS 256  /* weight layers; a sanity bound on user input */

typedef struct {
    int n_layers;                      /* L, number of weight layers (>= 1) */
    int sizes[DPT_MAX_LAYERS + 1];     /* units per layer; sizes[0] = inputs, sizes[L] = outputs */
    DptAct hidden, output;             /* activations of hidden layers and of the output layer */
    DptCost cost;
    size_t n_params;                   /* total floats in the parameter buffer */
    size_t w_off[DPT_MAX_LAYERS];      /* offset of W_l */
    size_t b_off[DPT_MAX_LAYERS];      /* offset of b_l */
} DptArch;

/* Work buffers of one rank, sized once for `cap` rows. Owned by the struct. */
typedef struct {
    size_t cap;                        /* rows the buffers hold */
    float *act[DPT_MAX_LAYERS + 1];    /* act[l]: [cap, sizes[l]]; act[0] is the input batch */
    float *delta[DPT_MAX_LAYERS + 1];  /* delta[l]: [cap, sizes[l]], dC/dz_l for l >= 1 */
    float *zout;                       /* [cap, sizes[L]] output pre-activations */
    float *y;                          /* [cap, sizes[L]] targets (dense) */
    int32_t *cls;                      /* [cap] target class (for accuracy) */
    double *row_loss;                  /* [cap] per-sample cost */
    float *mem;                        /* the single allocation behind the float views */
    /* W_l of the parameters this work is used with, kept packed for the
     * forward product (wp_fwd) and the input gradient (wp_bwd): NULL (the
     * products pack W themselves) unless the owner of those parameters set
     * them and keeps them current (dpt_net_wpack); not owned. */
    float *wp_fwd[DPT_MAX_LAYERS], *wp_bwd[DPT_MAX_LAYERS];
} DptWork;

/* Fills the layout of `arch` from its sizes; checks the architecture and the
 * activation/cost combination. Returns DPT_EUSAGE with a message if invalid. */
DptStatus dpt_arch_init(DptArch *arch, const int *sizes, int n_sizes,
                        DptAct hidden, DptAct output, DptCost cost);
/* "784,100,10" */
void dpt_arch_format(const DptArch *arch, char *buf, size_t len);
/* Names <-> enums ("sigmoid", "nielsen", ...); parse returns -1 if unknown. */
const char *dpt_act_name(DptAct a);
const char *dpt_init_name(DptInit i);
int dpt_act_parse(const char *s);
int dpt_init_parse(const char *s);

/* Random initial parameters (rank 0 calls this; others receive a broadcast).
 * nielsen: W ~ N(0, 1/n_in), b ~ N(0, 1); xavier: W ~ U(+-sqrt(6/(n_in+n_out))), b = 0;
 * he: W ~ N(0, 2/n_in), b = 0. */
void dpt_net_init_params(float *params, const DptArch *arch, DptInit scheme, uint64_t seed);

DptStatus dpt_work_init(DptWork *w, const DptArch *arch, size_t cap);
void dpt_work_free(DptWork *w);

/* Forward pass over rows 0..n-1 of w->act[0]; leaves activations in w->act[]
 * and the output pre-activations in w->zout. */
void dpt_net_forward(DptWork *w, const DptArch *arch, const float *params, size_t n);

/* Output error, per-sample costs and correct count for rows 0..n-1 (after a
 * forward pass and with w->y, w->cls filled). Sets w->delta[L] if want_delta.
 * Returns the cost summed over the rows (in row order). */
double dpt_net_loss(DptWork *w, const DptArch *arch, size_t n, int want_delta, int64_t *correct);
/* The per-sample costs of rows 0..n-1 (w->row_loss) summed in row order:
 * the total dpt_net_loss returns, whatever rows were computed together. */
double dpt_net_rows_cost(const DptWork *w, size_t n);

typedef void (*DptLayerHook)(void *ctx, int layer);

/* Backward pass over rows 0..n-1 after dpt_net_loss(want_delta=1): grad :=
 * sum over rows of dC_x/dparams (added to grad if accumulate). hook(ctx, l)
 * runs when layer l's gradient is final (l = L-1 down to 0); may be NULL. */
void dpt_net_backward(DptWork *w, const DptArch *arch, const float *params, float *grad,
                      size_t n, int accumulate, DptLayerHook hook, void *ctx);

/* Only the errors: fills w->delta[l] for every l = L..1 (no parameter gradients). */
void dpt_net_deltas(DptWork *w, const DptArch *arch, const float *params, size_t n);

/* The parameters as the optimiser's blocks (dpt_optim_set_blocks): of each
 * layer l, W_l (units x inputs) as block 2 l, b_l (units x 1) as block
 * 2 l + 1. b holds 2 * DPT_MAX_LAYERS; returns the blocks written. */
int dpt_net_blocks(const DptArch *arch, DptOptBlock *b);

/* The packed copies of w (wp_fwd, wp_bwd, where set) brought up to date with
 * the elements [lo, hi) of params (flat offsets; the weights among them). */
void dpt_net_wpack(const DptWork *w, const DptArch *arch, const float *params, size_t lo, size_t hi);

#endif
