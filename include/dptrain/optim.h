/*
 * optim: the update rules, each a flat loop over the contiguous parameter
 * buffer; state vectors share the parameter layout. Every rank applies the
 * same update to the same (averaged) gradient, so replicas stay identical.
 *
 *   sgd       w -= eta g
 *   momentum  v = alpha v - eta g;  w += v       (the method's Delta-w form)
 *   nesterov  v = alpha v - eta g;  w += alpha v - eta g
 *             (Sutskever et al. 2013, written for the look-ahead parameters)
 *   adagrad   G += g^2;  w -= eta g / (sqrt(G) + eps)                 (Duchi et al. 2011)
 *   rmsprop   E = rho E + (1-rho) g^2;  w -= eta g / (sqrt(E) + eps)  (Hinton, lecture 6e)
 *   adam      m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *             w -= eta (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)   (Kingma & Ba 2015)
 *   nadam     Dozat 2016 with the momentum schedule mu_t = b1 (1 - 0.5 * 0.96^(0.004 t)):
 *             w -= eta [ (1-mu_t)/(1-prod_{i<=t} mu_i) g + mu_{t+1}/(1-prod_{i<=t+1} mu_i) m ]
 *                  / (sqrt(v / (1-b2^t)) + eps)
 * eps always sits outside the square root.
 */
#ifndef DPT_OPTIM_H
#define DPT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

typedef enum {
    DPT_OPT_SGD = 0,
    DPT_OPT_MOMENTUM,
    DPT_OPT_NESTEROV,
    DPT_OPT_ADAGRAD,
    DPT_OPT_RMSPROP,
    DPT_OPT_ADAM,
    DPT_OPT_NADAM
} DptOptKind;

typedef struct {
    DptOptKind kind;
    double momentum;   /* alpha, for momentum and nesterov */
    double beta1, beta2;
    double eps;
    double decay;      /* rho, RMSprop's decay of the mean square */
} DptOptHyper;

/* A matrix of rows x cols parameters at off, row-major: a layer's W, or
 * its bias as rows x 1 (dpt_optim_set_blocks). */
typedef struct {
    size_t off, rows, cols;
} DptOptBlock;

typedef struct {
    DptOptHyper h;
    size_t n;          /* parameters */
    int n_state;       /* state vectors in use (0, 1 or 2) */
    float *state[2];   /* [n] each, parameter layout; owned unless borrowed */
    int borrowed;      /* state memory belongs to the caller (dpt_optim_init_in) */
    int64_t t;         /* steps taken */
    double mu_prod;    /* nadam: prod_{i<=t} mu_i */
    DptOptBlock *blocks;   /* owned; NULL: the threads split the parameters flat */
    int n_blocks;
    size_t group;      /* rows a thread takes together */
    /* Called by the thread that updated them, for rows [r0, r1) of block k
     * (dpt_optim_set_rows_done); NULL: none. */
    void (*rows_done)(void *ctx, int k, size_t r0, size_t r1);
    void *rows_ctx;
} DptOptim;

const char *dpt_optim_name(DptOptKind k);
int dpt_optim_parse(const char *s);
/* Names of the state vectors ("velocity", "sum_sq", "m", "v", ...). */
const char *dpt_optim_state_name(DptOptKind k, int i);

DptStatus dpt_optim_init(DptOptim *o, const DptOptHyper *h, size_t n);
/* The same on the caller's memory: dpt_optim_state_count(kind) vectors of n
 * floats at mem, mem + stride, ..., zeroed by the caller (e.g. memory shared
 * by a node's ranks). */
void dpt_optim_init_in(DptOptim *o, const DptOptHyper *h, size_t n, float *mem, size_t stride);
int dpt_optim_state_count(DptOptKind k);
void dpt_optim_free(DptOptim *o);

/* One update of w[n] with the averaged gradient g[n] and step size eta. */
void dpt_optim_step(DptOptim *o, float *restrict w, const float *restrict g, double eta);
/* The same with the gradient sums g[n] divided by count on the fly (one pass
 * instead of two; the same bits as dividing first). Returns 0 if a divided
 * gradient was not finite: the update is then garbage and must not be kept. */
int dpt_optim_step_scaled(DptOptim *o, float *restrict w, const float *restrict g, double eta, float count);
/* The same for elements [lo, hi) only (the slice of a node rank that shares
 * parameters and state with the others); t and the scalar state advance
 * once per call. */
int dpt_optim_step_range(DptOptim *o, float *restrict w, const float *restrict g, double eta, float count, size_t lo,
                         size_t hi);
/* The whole vector's update split between threads by rows of the blocks
 * (which tile [0, n) in order): of each block, thread t of T takes groups
 * [G t / T, G (t + 1) / T) of its G groups of `group` rows, the rows the
 * weight-gradient and forward products give that thread. The same
 * arithmetic element by element; a range [lo, hi) short of the whole
 * vector is still split flat. */
DptStatus dpt_optim_set_blocks(DptOptim *o, const DptOptBlock *b, int n, size_t group);
/* With blocks, and the whole vector updated at once: each thread updates
 * its rows of a block DPT_OPT_ROWS_DONE rows at a time (on multiples of
 * it) and after each such run calls fn(ctx, k, r0, r1), the rows still in
 * its caches (the trainer packs them into its copies of W there). fn must
 * not start a parallel region. Returns whether fn will be called. */
enum { DPT_OPT_ROWS_DONE = 32 };
int dpt_optim_set_rows_done(DptOptim *o, void (*fn)(void *ctx, int k, size_t r0, size_t r1), void *ctx);

/* Learning-rate schedules, as a function of the global step (0-based). */
typedef enum { DPT_SCHED_CONSTANT = 0, DPT_SCHED_STEP, DPT_SCHED_COSINE } DptSchedKind;

typedef struct {
    DptSchedKind kind;
    double lr;              /* the base rate eta */
    double lr_min;          /* cosine: the rate at the last step */
    double gamma;           /* step: factor applied every step_epochs epochs */
    int64_t step_epochs;
    double warmup_epochs;   /* linear warm-up over the first k epochs (Goyal et al. 2017) */
    double warmup_from;     /* warm-up starts at warmup_from * eta */
} DptSchedule;

const char *dpt_schedule_name(DptSchedKind k);
int dpt_schedule_parse(const char *s);

/* eta at global step `step`, for epochs of steps_per_epoch steps and a run of
 * total_steps steps:
 *   warm-up (step < W = warmup_epochs * steps_per_epoch):
 *       eta * (f + (1 - f) (step + 1) / W), f = warmup_from
 *   then constant: eta;  step: eta * gamma^floor(epoch / step_epochs);
 *   cosine: lr_min + (eta - lr_min) (1 + cos(pi (step - W) / (total_steps - W))) / 2 */
double dpt_schedule_lr(const DptSchedule *s, int64_t step, int64_t steps_per_epoch, int64_t total_steps);

/* Euclidean norm of g[n], summed in fixed chunks (the same bits for any
 * number of threads). */
double dpt_optim_norm(const float *g, size_t n);

#endif
