/*
 * step: one data-parallel step, from the rank's slice of the global batch to
 * the reduced gradient. It owns the gradient buffer, the control words that
 * travel with it (sample count, correct count, loss sum, non-finite flag,
 * stop and checkpoint requests: encoded and decoded here only), the reduction (one
 * allreduce, per-layer buckets with --overlap, or the exact fixed-point path
 * of --deterministic) and the averaging by the global count.
 *
 *   slice -> forward -> loss -> backward (gradient SUMS) -> reduction
 *         -> DptStepResult (decoded control words) -> dpt_step_average
 *
 * Rank r of P takes the contiguous slice [r*b/P, (r+1)*b/P) of the step's b
 * samples (default mode) or a contiguous run of whole --det-block blocks
 * (deterministic mode); empty slices take part in every reduction.
 * Collective: dpt_step_gradient is called by every rank.
 *
 * The node-sliced weight gradient (sliced): where the ranks of one node share
 * memory, they need not each write a whole gradient over their own rows for
 * the reduction to sum. Each rank runs forward and backward (the errors)
 * over its rows, writes its rows' errors and packed input activations into
 * node-shared memory, and after a node barrier computes ITS units' rows of
 * every dW and db over ALL the node's rows (a fixed share, or on one node of
 * 4 ranks or more the units it takes in turns from a counter: step.c,
 * "claimed units"), straight into the node's shared gradient: the same flops per rank, no partial gradients written or summed,
 * and each element is the product over the node's rows in one chain (the
 * weights' sums bitwise those of one rank taking the same rows in one pass;
 * in deterministic mode the same integers). The control words are summed
 * through the node's memory too, and go across nodes with the rank's units
 * (deterministic mode: an allreduce of them); a node barrier at the end
 * tells every rank that all slices are in. On several nodes (of equal
 * size) node rank j holds the same units on every node and allreduces its
 * node sums of them with the other nodes' rank j, layer by layer as they
 * complete (hierarchical). On by default from 2 ranks on a node (both
 * modes); DPT_SLICED=0/1 overrides.
 */
#ifndef DPT_STEP_H
#define DPT_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/data.h"
#include "dptrain/dist.h"
#include "dptrain/metrics.h"
#include "dptrain/net.h"
#include "dptrain/status.h"

/* The node's team (node-sliced steps) runs where a rank has at most this
 * many of a pass's rows (step.c, node_team); a macro, for the run header's text. */
#define DPT_TEAM_ROWS 64

/* What the reduction says about the step, over all ranks. */
typedef struct {
    double count;      /* samples in the step */
    double correct;    /* of them predicted right */
    double loss;       /* cost summed over the samples */
    int nonfinite;     /* a rank saw a non-finite loss or gradient */
    int stop;          /* a rank has a stop request */
    int save;          /* a rank asks for a checkpoint after this step (and training goes on) */
} DptStepResult;

/* What a rank asks of every rank through a step's control words. */
enum { DPT_ASK_STOP = 1, DPT_ASK_SAVE = 2 };

typedef struct {
    const DptDist *d;
    const DptArch *arch;     /* not owned */
    DptWork *work;           /* the rank's activation buffers (not owned), >= dpt_step_rows rows */
    int deterministic;
    int overlap;             /* per-layer buckets reduced during backprop (default mode, P > 1) */
    size_t det_block;        /* samples per fixed block (deterministic mode) */
    size_t chunk;            /* rows per forward/backward pass */
    DptReducer *red;         /* the reduction: floats, or int64 in deterministic mode */
    float *sum;              /* default mode: this step's contribution [n_params + control words] */
    int64_t *sumq;           /* deterministic: this step's fixed-point contribution */
    const int64_t *q;        /* deterministic: the reduced fixed-point sums, turned into floats on demand */
    size_t conv_lo, conv_hi; /* deterministic: the elements of q already in avg */
    const float *grad;       /* the reduced gradient: sums, after dpt_step_average the averages */
    float *avg;              /* [n_params] averages (and deterministic mode's sums back in float) */
    double *scales;          /* deterministic: [2L + 1] per-tensor scales (W_l, b_l, loss) */
    double *bounds;          /* deterministic: [2L + 2] bounds on block sums (+ non-finite flag) */
    double *row_a, *row_d;   /* deterministic: [chunk] per-row maxima */
    /* the node-sliced weight gradient (sliced: see above) */
    int sliced;
    void *ns_win;                          /* the node-shared window behind the three below */
    float *ns_delta[DPT_MAX_LAYERS + 1];   /* [node rows, sizes[l]] errors, l = 1..L, rank i's rows after rank i-1's */
    float *ns_pack[DPT_MAX_LAYERS];        /* act[l] of the node rows, packed (dpt_kern_rowpack), l < L */
    float *ns_act[DPT_MAX_LAYERS];         /* [node rows, sizes[l]] activations, l < L (the node's forward team) */
    size_t ns_t0[DPT_MAX_LAYERS], ns_t1[DPT_MAX_LAYERS];  /* this rank's units [t0, t1) of each forward product */
    int ns_team;                           /* the node's team: -1 by the rows a rank has (step.c), 0 off, 1 on */
    void *ns_grad;                         /* [n_params] the node's gradient sums, float or int64 */
    char *ns_ctrl;                         /* [2 node_size] lines: rank j's control words at j, its sums at node_size + j */
    int ns_float;                          /* deterministic, this step: ns_grad holds the sums as floats */
    int64_t *ns_bq;                        /* deterministic, one node: [widest layer] bias sums */
    int *ns_rank;                          /* [node_size] each node rank's world rank */
    DptCross *ns_cross;                    /* several nodes: this rank's units allreduced across them */
    size_t ns_u0[DPT_MAX_LAYERS], ns_u1[DPT_MAX_LAYERS];  /* this rank's fixed share [u0, u1) of each layer's units */
    uint64_t *ns_ctr;                      /* one node: the units' counters (step.c, "claimed units"), NULL: fixed shares */
    uint64_t *ns_base;                     /* this rank's: where each counter's current use began */
    double *ns_loss;                       /* [node rows] each row's cost, in the node's window */
    int ns_wrows;                          /* weighted rows (step.c; DPT_WROWS=1): one node, default mode */
    double *ns_rate;                       /* [2][node_size] each rank's rows a second, a slot a step, in the window */
    double *ns_speed;                      /* [node_size] the rates averaged over steps (the same on every rank) */
    size_t *ns_at;                         /* [node_size + 1] this step's first row of each rank */
    uint64_t ns_steps;                     /* node-sliced steps taken */
    /* several nodes, default mode: layers whose rows cross nodes instead of their gradient (step.c, "rows") */
    int xr_on;                             /* some layer does */
    int xr_kernels_differ;                 /* none: the ranks' micro-kernels differ (nodes of different CPUs) */
    unsigned char xr[DPT_MAX_LAYERS];      /* layer l does */
    void *xr_win;                          /* the node-shared window behind the three below */
    float *xr_delta[DPT_MAX_LAYERS + 1];   /* [step rows, sizes[l]] every node's errors, node after node */
    float *xr_act[DPT_MAX_LAYERS];         /* [step rows, sizes[l]] the other nodes' input activations */
    float *xr_pack[DPT_MAX_LAYERS];        /* act[l] of every node's rows, packed (dpt_kern_rowpack) */
    int *xr_node;                          /* [world_size] each rank's node */
    int *xr_peer;                          /* [n_nodes] the rank of this node rank on each node */
    size_t *xr_off;                        /* [world_size] this step: each rank's first row, node after node */
    DptPeers *xr_peers;
    /* threads as ranks (team: see step.c): one parallel region a pass */
    int team;                              /* threads of the region (0: off) */
    float *team_buf;                       /* [team][dpt_kern_solo_floats()] each thread's packing buffers */
    size_t team_floats;                    /* floats of one thread's buffers (a multiple of 16) */
    float *team_pack[DPT_MAX_LAYERS];      /* act[l] of the pass's rows, packed (dpt_kern_rowpack), l < L */
    float *team_mem;                       /* the allocation behind team_pack */
    uint64_t *team_ctr;                    /* [n_layers lines] the units' counters (step.c, "claimed units"), NULL: fixed shares */
} DptStep;

/* --det-block 0: the block from the global batch alone (so that results stay
 * independent of ranks and threads): 8 samples, doubled while at least 4
 * blocks remain, up to 64 (batch 128: 32; 256 and more: 64). Each block's
 * partial sums are converted to fixed point once, so larger blocks cost
 * less; ranks take whole blocks, so ranks beyond the block count idle
 * (--det-block sets a smaller block for many ranks on a small batch). */
size_t dpt_step_auto_block(size_t batch);
/* Deterministic mode's fixed-point scale for a tensor whose block sums are
 * at most `bound` in magnitude, n_blocks of them in a step: the largest power
 * of two with scale * bound' < 2^51 (every block sum takes the vector
 * rounding, exact below 2^51) and scale * bound' * n_blocks < 2^60 (the int64
 * sum cannot overflow), bound' = bound * (1 + 2^-10) covering the float
 * sum's own rounding. A block sum is rounded to a multiple of 1/scale: an
 * error of at most max(2^-51, n_blocks * 2^-60) * bound', i.e. 2^-51 of the
 * bound up to 512 blocks. 1 for a zero or non-finite bound. */
double dpt_step_fixed_scale(double bound, size_t n_blocks);

/* Sizes the buffers for global batches of up to `batch` samples on
 * d->world_size ranks; returns in *rows the work rows a pass needs. */
DptStatus dpt_step_init(DptStep *s, const DptDist *d, const DptArch *arch, size_t batch, int deterministic,
                        int overlap, size_t det_block, DptReduceKind reduce, size_t *rows);
void dpt_step_free(DptStep *s);

/* The gradient sums of the step whose samples are idx[0..cnt) of `train`
 * (this rank takes its slice), reduced over all ranks (s->grad), and the
 * step's decoded control words. ask: this rank's requests (DPT_ASK_*). Times data,
 * compute and reduction in tm. Collective. */
DptStepResult dpt_step_gradient(DptStep *s, const float *params, const DptSplit *train, const uint32_t *idx,
                                size_t cnt, int ask, DptTimers *tm);

/* The reduced sums of every element (s->grad), for those who read them all
 * before dpt_step_average (the trace); in deterministic mode this converts
 * all of them from fixed point, which dpt_step_average otherwise does for its
 * range only. */
const float *dpt_step_sums(DptStep *s);

/* Turns the reduced sums into the averaged gradient (s->grad := s->avg) for
 * elements [lo, hi), those this rank updates: divides by the count, clips
 * to clip_norm (0: off; the norm is over all elements), adds
 * decay_per_sample * w to the weights (L2). Returns the divisor still to
 * apply (the count when nothing needs the average first: the optimiser
 * divides in its own pass, with the same rounding), or 0 if an average over
 * all elements is not finite. */
float dpt_step_average(DptStep *s, const DptStepResult *r, double clip_norm, double decay_per_sample,
                       const float *params, size_t lo, size_t hi);

#endif
