#include "dptrain/step.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/kernels.h"
#include "dptrain/optim.h"
#include "dptrain/rng.h"

/* Control words appended to the gradient buffer, reduced in the same call.
 * Counts travel as two floats (value mod 4096, value / 4096) so that the float
 * sums stay exact (below 2^24) for up to 4095 ranks and 2^36 samples. */
enum { C_COUNT_LO, C_COUNT_HI, C_CORRECT_LO, C_CORRECT_HI, C_LOSS, C_NONFINITE, C_STOP, C_SAVE, N_CTRL };
/* Deterministic mode: the control words are int64 and exact. */
enum { Q_COUNT, Q_CORRECT, Q_LOSS, Q_NONFINITE, Q_STOP, Q_SAVE, N_CTRLQ };
/* The node-sliced step's control words go through the node's window, a
 * cache line a rank (step_sliced). */
enum { CTRL_LINE = 64 };
_Static_assert(N_CTRL * sizeof(float) <= CTRL_LINE, "the control words fit a line of the node's window");

enum { CHUNK_ROWS = 512 };

/* ---------------------------------------------------------------- claimed units
 * Workers that share a layer's units (a node's ranks; a rank's threads as
 * ranks) take them in turns while they run instead of in fixed shares, so
 * that one on a slower core (interrupts, another process, a lower clock:
 * on the 16-core Intel host each core alone took 9.8-17.5 ms over the same
 * products, and 16 ranks' compute per step spread over 9.0-14.3 ms) takes
 * fewer, and the others do not wait for it at the next barrier. A turn
 * takes 1/(2k) of the units left, cut on multiples of q, at least
 * CLAIM_MIN (guided: large turns first, small ones at the end). A unit's
 * sums do not depend on who computes them or on the units beside it (each
 * element is one chain over the rows), so the bits do not depend on the
 * turns. A counter only grows: one use of it hands out exactly its `out`
 * units, so each worker's next use starts `out` further on (every worker
 * takes part in every use; uses of one counter are separated by barriers).
 * A node's ranks claim from CLAIM_RANKS ranks a node: on 16 ranks of the
 * 16-core Intel host 1.03-1.13x the fixed shares, but on 2 ranks of the
 * 2-core Intel Xeon with equal cores 0.95-0.99x (the weight gradient in
 * several products, each streaming the node's packed rows, 3-4 % more
 * time), 1.09-1.21x with a busy loop on one core. A rank's threads as
 * ranks (from 4 threads by default) always claim (1.06-1.08x at 16 threads
 * on the host; 0.99-1.04x on 2 threads with equal cores, 1.11-1.16x with
 * a busy core). DPT_CLAIM=0 keeps the fixed shares, 1 claims everywhere. */
enum { CLAIM_MIN = 16, CLAIM_LINE = 8 /* counters a cache line apart */, CLAIM_RANKS = 4 };

typedef struct {
    uint64_t *ctr;     /* shared; NULL: the fixed share [u0, u1), one turn */
    uint64_t *base;    /* the worker's: the counter's value when this use began */
    size_t out, q, k, u0, u1;
    int done;
} Units;

static Units units_fixed(size_t u0, size_t u1) { return (Units){.u0 = u0, .u1 = u1}; }

static Units units_claimed(uint64_t *ctr, uint64_t *base, size_t out, size_t q, size_t k)
{
    return (Units){.ctr = ctr, .base = base, .out = out, .q = q, .k = k};
}

/* The next turn's units [*u0, *u1); 0 when none are left (and then the
 * worker's base moves past this use). */
static int units_next(Units *it, size_t *u0, size_t *u1)
{
    if (!it->ctr) {
        *u0 = it->u0;
        *u1 = it->u1;
        const int first = !it->done;
        it->done = 1;
        return first;
    }
    uint64_t cur = __atomic_load_n(it->ctr, __ATOMIC_RELAXED);
    for (;;) {
        const size_t at = (size_t)(cur - *it->base);
        if (at >= it->out) {
            *it->base += it->out;
            return 0;
        }
        const size_t left = it->out - at, least = (CLAIM_MIN + it->q - 1) / it->q * it->q;
        size_t m = (left + 2 * it->k - 1) / (2 * it->k);
        m = (m + it->q - 1) / it->q * it->q;
        m = m < least ? least : m;
        m = m < left ? m : left;
        if (__atomic_compare_exchange_n(it->ctr, &cur, cur + m, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *u0 = at;
            *u1 = at + m;
            return 1;
        }
    }
}

/* ---------------------------------------------------------------- weighted rows
 * On request (DPT_WROWS=1), one node, default mode: each rank takes rows in
 * proportion to the rate at which it ran its rows (forward, costs, errors,
 * packing) in the steps before, averaged over steps the same way on every
 * rank (each reads every rank's rate from the node's window after the
 * barrier that ends a step), so that a rank on a slower core takes fewer
 * rows and the ranks reach the node's barrier together. Rows are
 * independent and the node's rows stay in the batch's order, so the
 * model's bits do not depend on the shares; the cost is summed over the
 * node's rows in that order (ns_loss) for the same reason. A rank's pass
 * holds up to WROWS_MAX even shares; where a share would not fit, or the
 * node's team runs (it splits units, not rows), the shares are even. 2-core
 * Intel Xeon, 2 x 1, [784,1024,1024,10] at batch 256: with a busy loop on
 * one core 1.21-1.26x the even shares, with equal cores 0.97-0.99x; so not
 * by default (docs/measurements/intel2-2026-11-28f/wrows-ab.log). */
enum { WROWS_MAX = 3 };

size_t dpt_step_auto_block(size_t batch)
{
    size_t blk = 8;
    while (blk < 64 && blk * 2 * 4 <= batch)
        blk *= 2;
    return blk;
}

/* ---------------------------------------------------------------- the node-sliced weight gradient */

/* Where it is on by default: from 2 ranks on the node (README, "Scaling",
 * 2 cores): deterministic mode 1.04x at 2 ranks (its int64 partial
 * gradients are twice the bytes), 1.22-1.26x at 4; the default mode
 * 0.99-1.08x of the summed reduction with overlap at 2 ranks on an Intel
 * Xeon (median 1.05; equal, median 1.01, on an AMD EPYC), 1.01-1.04x at 4,
 * and there the model's bits do not depend on the number of ranks.
 * DPT_SLICED=0/1 overrides. */
enum { SLICED_RANKS = 2 };

/* Node rank j's even share [*u0, *u1) of out units among k, cut on
 * multiples of q where every rank gets some (else on single units). */
static void unit_share(size_t out, int j, int k, size_t q, size_t *u0, size_t *u1)
{
    q = out >= q * (size_t)k ? q : 1;
    *u0 = (out * (size_t)j / (size_t)k + q / 2) / q * q;
    *u1 = j + 1 == k ? out : (out * (size_t)(j + 1) / (size_t)k + q / 2) / q * q;
}

/* Chooses the node-sliced weight gradient and lays out its shared window:
 * the node's errors and packed activations for node_size * chunk rows, and
 * the node's gradient. The choice is the same on every rank (one node, an
 * agreement over it, and one panel width: the copies' layout depends on it).
 * Collective. */
static DptStatus sliced_init(DptStep *s, int shared)
{
    const DptDist *d = s->d;
    const DptArch *a = s->arch;
    const int L = a->n_layers, k = d->node_size;
    const int sliced_env = dpt_env_switch("DPT_SLICED");
    int on = sliced_env >= 0 ? sliced_env : k >= SLICED_RANKS;
    s->ns_team = dpt_env_switch("DPT_NTEAM");
    /* several nodes: of equal size, so that node rank j holds the same units on each */
    if (!shared || d->node_size_max < 2 || d->node_size_min != d->node_size_max || dpt_kern_rowpack_floats(1, 1) == 0)
        return DPT_OK;
    on = dpt_dist_node_all(d, on);
    on = dpt_dist_same_hash(d, (uint64_t)on) && on;   /* and on every node */
    on = dpt_dist_same_hash(d, (uint64_t)dpt_kern_panel_width()) && on;
    if (!dpt_dist_same_hash(d, (uint64_t)(s->ns_team + 1)))
        s->ns_team = -1;   /* ranks told different things: the rule, the same everywhere */
    if (!on)
        return DPT_OK;
    if (d->n_nodes > 1)
        DPT_TRY(dpt_dist_cross_init(&s->ns_cross, d, a->n_params, s->deterministic));
    /* weighted rows (below): one node, default mode; a rank may take up
     * to WROWS_MAX times an even share in one pass */
    s->ns_wrows = !s->deterministic && d->n_nodes == 1 && dpt_env_switch("DPT_WROWS") == 1;
    s->ns_wrows = dpt_dist_same_hash(d, (uint64_t)s->ns_wrows) && s->ns_wrows;
    if (s->ns_wrows)
        s->chunk = s->chunk * WROWS_MAX < CHUNK_ROWS ? s->chunk * WROWS_MAX : CHUNK_ROWS;
    const size_t rows = (size_t)k * s->chunk, elem = s->deterministic ? sizeof(int64_t) : sizeof(float);
    size_t at_d[DPT_MAX_LAYERS + 1], at_p[DPT_MAX_LAYERS], total = 0;
    for (int l = 1; l <= L; l++) {
        at_d[l] = total;
        total += (rows * (size_t)a->sizes[l] + 15) / 16 * 16;
    }
    /* the team's activations: for the rows it may run on (node_team) */
    const size_t team_rows = s->ns_team == 0 ? 0 : s->ns_team == 1 || s->chunk < DPT_TEAM_ROWS ? rows : (size_t)k * DPT_TEAM_ROWS;
    size_t at_a[DPT_MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        at_p[l] = total;
        total += (dpt_kern_rowpack_floats(rows, (size_t)a->sizes[l]) + 15) / 16 * 16;
        at_a[l] = total;
        total += (team_rows * (size_t)a->sizes[l] + 15) / 16 * 16;
    }
    const size_t grad_at = total * sizeof(float), ctrl_at = grad_at + (a->n_params * elem + 63) / 64 * 64;
    const size_t claim_at = ctrl_at + 2 * (size_t)k * CTRL_LINE;
    const size_t loss_at = claim_at + (size_t)L * CLAIM_LINE * sizeof(uint64_t);
    const size_t rate_at = loss_at + rows * sizeof(double);
    const size_t bytes = rate_at + 2 * (size_t)k * sizeof(double);
    /* claimed units (above): on one node (across nodes, node rank j's units
     * are the same on every node), from CLAIM_RANKS ranks unless DPT_CLAIM says */
    const int claim_env = dpt_env_switch("DPT_CLAIM");
    int claim = d->n_nodes == 1 && (claim_env >= 0 ? claim_env : k >= CLAIM_RANKS);
    claim = dpt_dist_same_hash(d, (uint64_t)claim) && claim;
    s->ns_rank = dpt_calloc((size_t)k, sizeof *s->ns_rank, "node ranks");
    s->ns_base = dpt_calloc((size_t)L, sizeof *s->ns_base, "claim counts");
    s->ns_at = dpt_calloc((size_t)k + 1, sizeof *s->ns_at, "row shares");
    s->ns_speed = dpt_calloc((size_t)k, sizeof *s->ns_speed, "row rates");
    DPT_TRY(dpt_dist_agree(d, s->ns_rank && s->ns_base && s->ns_at && s->ns_speed ? DPT_OK : DPT_ENOMEM,
                           NULL));   /* before the node's collectives */
    dpt_dist_node_allgather(d, &d->rank, sizeof d->rank, s->ns_rank);
    void *mem = NULL;
    DPT_TRY(dpt_dist_shared_alloc(d, bytes, &mem, &s->ns_win));
    float *f = mem;
    for (int l = 1; l <= L; l++)
        s->ns_delta[l] = f + at_d[l];
    for (int l = 0; l < L; l++) {
        s->ns_pack[l] = f + at_p[l];
        s->ns_act[l] = f + at_a[l];
        /* this rank's units: of dW, cut on 8 rows (whole tiles); of the
         * forward product, on 16 (a cache line of each row) */
        unit_share((size_t)a->sizes[l + 1], d->node_rank, k, 8, &s->ns_u0[l], &s->ns_u1[l]);
        unit_share((size_t)a->sizes[l + 1], d->node_rank, k, 16, &s->ns_t0[l], &s->ns_t1[l]);
    }
    s->ns_grad = (char *)mem + grad_at;
    s->ns_ctrl = (char *)mem + ctrl_at;
    s->ns_ctr = claim ? (uint64_t *)((char *)mem + claim_at) : NULL;
    s->ns_loss = (double *)((char *)mem + loss_at);
    s->ns_rate = (double *)((char *)mem + rate_at);
    if (s->deterministic && d->n_nodes == 1) {
        size_t widest = 1;
        for (int l = 1; l <= L; l++)
            widest = (size_t)a->sizes[l] > widest ? (size_t)a->sizes[l] : widest;
        s->ns_bq = dpt_calloc(widest, sizeof *s->ns_bq, "bias sums");
    }
    DPT_TRY(dpt_dist_agree(d, !s->deterministic || d->n_nodes > 1 || s->ns_bq ? DPT_OK : DPT_ENOMEM, NULL));
    dpt_dist_shared_zero(d, mem, bytes);   /* the panels' padding is read, never used */
    s->sliced = 1;
    return DPT_OK;
}

/* Whose units of a layer, over which rows: units [u0, u1) over the K rows
 * whose errors are D (row stride: the layer's width, from unit 0) and whose
 * input activations are packed in pack (dpt_kern_rowpack); in deterministic
 * mode with as_float, the sums are stored as floats (one slab), the biases'
 * int64 through bq (u1 - u0 of them). A rank's on a node (node-sliced) or a
 * thread's in its rank (threads as ranks). */
typedef struct {
    size_t u0, u1, K;
    const float *D, *pack;
    int as_float;
    int64_t *bq;
} UnitRows;

static void layer_slice(DptStep *s, void *buf, int l, const UnitRows *ur, int accumulate, int cross, int bad,
                        DptTimers *tm);

/* The bytes of one gradient sum: int64 in deterministic mode, unless the
 * sums are stored as floats. */
static size_t sum_bytes(const DptStep *s, int as_float)
{
    return s->deterministic && !as_float ? sizeof(int64_t) : sizeof(float);
}

/* ---------------------------------------------------------------- threads as ranks
 * Where the node-sliced gradient does not run, on two threads or more:
 * each pass is one parallel region in which every
 * thread computes the forward pass, costs and errors of its own rows with
 * products of its own (dpt_kern_solo_begin) and packs its rows'
 * activations, then, after one barrier, the weight and bias gradients of its
 * own units over all the pass's rows: the node-sliced gradient among a
 * rank's threads, one barrier a pass instead of a team's two per block of
 * every product (deterministic mode: two regions, the bounds' allreduce
 * between them, each unit's fixed-point sums block by block). The same
 * bits as the products on a team: rows are independent, and each unit's
 * sums run over the rows in the same order.
 * On by default for nets of 2^18 parameters or more on 4 threads or more
 * with 32 rows or more a thread in a pass. On the 16-core Intel Xeon host
 * ([784,1024,1024,10], batch 1024, one process, interleaved pairs as ranks
 * / sharing, after W's forward copy was packed by tiles): 1.30 / 1.28x at
 * 16 threads, 1.30 / 0.93x at 8, 1.10 / 1.17x at 4, 1.14 / 0.99x at 2;
 * batch 512 on 16 threads 1.31x, batch 256 (16 rows a thread) 0.98x. On 2
 * threads of a 2-core Intel Xeon 0.82-0.87x at batch 128, 0.87-0.92x at
 * 256, 0.90-1.16x at 1024 (a 2-core AMD EPYC: 1.04-1.14x): the threads
 * then read W from the rank's packed copies, which cost a write and a read
 * of W a step more than packing it per product into cache-sized buffers,
 * while a team of 2 barely waits at its barriers. Small nets at batch 10
 * ran slower (a region a pass for little work). DPT_TEAM=0/1 overrides. */
enum { TEAM_MIN_ROWS = 32, TEAM_MIN_THREADS = 4, TEAM_MIN_PARAMS = 1 << 18 };

static DptStatus team_init(DptStep *s)
{
    const DptArch *a = s->arch;
    const int team_env = dpt_env_switch("DPT_TEAM");
    const int T = omp_get_max_threads();
    const int on = team_env >= 0 ? team_env
                                 : a->n_params >= TEAM_MIN_PARAMS && T >= TEAM_MIN_THREADS &&
                                       s->chunk >= (size_t)TEAM_MIN_ROWS * (size_t)T;
    if (!on || s->sliced || T < 2 || dpt_kern_rowpack_floats(1, 1) == 0)
        return DPT_OK;
    size_t at[DPT_MAX_LAYERS], total = 0;
    for (int l = 0; l < a->n_layers; l++) {
        at[l] = total;
        total += (dpt_kern_rowpack_floats(s->chunk, (size_t)a->sizes[l]) + 15) / 16 * 16;
    }
    s->team_floats = (dpt_kern_solo_floats() + 15) / 16 * 16;
    s->team_buf = dpt_aligned_alloc((size_t)T * s->team_floats * sizeof(float), "threads' packing buffers");
    s->team_mem = dpt_aligned_alloc(total * sizeof(float), "packed activations");
    const int claim = dpt_env_switch("DPT_CLAIM") != 0;   /* threads as ranks claim unless DPT_CLAIM=0 */
    if (claim)
        s->team_ctr = dpt_aligned_alloc((size_t)a->n_layers * CLAIM_LINE * sizeof *s->team_ctr, "claim counters");
    if (!s->team_buf || !s->team_mem || (claim && !s->team_ctr))
        return DPT_ENOMEM;
    for (int l = 0; l < a->n_layers; l++)
        s->team_pack[l] = s->team_mem + at[l];
    s->team = T;
    return DPT_OK;
}

/* ---------------------------------------------------------------- rows across nodes
 * Several nodes, default mode: a layer's weight gradient is a sum over the
 * step's rows of (errors) x (input activations). Where those rows, K (in +
 * out) floats for K rows, are no larger than half the layer's gradient (in
 * x out), the nodes send each other the rows instead of allreducing the
 * gradient's node sums (node rank j sends its rows to node rank j of every
 * other node), and each node computes its units of the layer's gradient
 * over every node's rows: fewer bytes across nodes, for a product over N
 * times the rows. Every row is taken in one chain, node after node, so
 * where the nodes hold consecutive ranks the sums are one rank's bit for
 * bit. Where a rank's rows fit one pass (<= CHUNK_ROWS). Deterministic
 * mode: the same fixed-point block sums over every node's rows (the same
 * integers), where the rows are at most the int64 gradient's bytes and the
 * nodes hold consecutive ranks (blocks stay whole). DPT_XROWS=0/1
 * overrides the rule (1: every layer). */
static DptStatus rows_init(DptStep *s, size_t batch)
{
    const DptDist *d = s->d;
    const DptArch *a = s->arch;
    const int L = a->n_layers;
    int forced = dpt_env_switch("DPT_XROWS");
    const size_t P = (size_t)d->world_size;
    if (!s->sliced || d->n_nodes < 2 || (batch + P - 1) / P > CHUNK_ROWS)
        return DPT_OK;
    if (!dpt_dist_same_hash(d, (uint64_t)(forced + 1)))
        forced = -1;   /* ranks told different things: the rule, the same everywhere */
    if (forced == 0)
        return DPT_OK;
    /* Every node computes the layer's whole gradient itself, so the nodes'
     * copies agree only if every node runs the same micro-kernel; nodes of
     * different CPUs may not (whatever DPT_XROWS says): their gradient sums
     * cross instead, which every rank adds up in the same order. */
    const char *kern = dpt_kern_name();
    if (!dpt_dist_same_hash(d, dpt_hash_bytes(DPT_HASH_INIT, kern, strlen(kern)))) {
        s->xr_kernels_differ = 1;
        return DPT_OK;
    }
    size_t at_d[DPT_MAX_LAYERS + 1], at_a[DPT_MAX_LAYERS], at_p[DPT_MAX_LAYERS], total = 0;
    for (int l = 0; l < L; l++) {
        const size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
        /* float rows against float sums (int64 in deterministic mode) */
        s->xr[l] = forced == 1 || batch * (in + out) * (s->deterministic ? 1 : 2) <= in * out;
        s->xr[l] = s->xr[l] && batch * (in > out ? in : out) * sizeof(float) < (size_t)1 << 31;
        if (!s->xr[l])
            continue;
        s->xr_on = 1;
        at_d[l + 1] = total;
        total += (batch * out + 15) / 16 * 16;
        at_a[l] = total;
        total += (batch * in + 15) / 16 * 16;
        at_p[l] = total;
        total += (dpt_kern_rowpack_floats(batch, in) + 15) / 16 * 16;
    }
    if (!s->xr_on)
        return DPT_OK;
    int *nrank = dpt_calloc(P, sizeof *nrank, "node table");   /* each rank's node rank, for the peers */
    s->xr_node = dpt_calloc(P, sizeof *s->xr_node, "node table");
    s->xr_peer = dpt_calloc((size_t)d->n_nodes, sizeof *s->xr_peer, "node table");
    s->xr_off = dpt_calloc(P + (size_t)d->n_nodes, sizeof *s->xr_off, "row offsets");
    DptStatus st = s->xr_node && nrank && s->xr_peer && s->xr_off ? DPT_OK : DPT_ENOMEM;
    if (st == DPT_OK)   /* two messages a layer to and from every other node */
        st = dpt_dist_peers_init(&s->xr_peers, (size_t)(4 * L * (d->n_nodes - 1)));
    st = dpt_dist_agree(d, st, NULL);
    int consecutive = 1;
    if (st == DPT_OK) {
        dpt_dist_node_table(d, s->xr_node, nrank);
        for (size_t q = 0; q < P; q++) {
            if (nrank[q] == d->node_rank)
                s->xr_peer[s->xr_node[q]] = (int)q;
            consecutive &= q == 0 || s->xr_node[q] >= s->xr_node[q - 1];
        }
    }
    free(nrank);
    DPT_TRY(st);
    /* Deterministic mode: every rank's rows whole blocks from the first row
     * on, node after node, only where the nodes hold consecutive ranks (the
     * last rank's partial block then comes last). The same table everywhere. */
    if (s->deterministic && !consecutive) {
        memset(s->xr, 0, sizeof s->xr);
        s->xr_on = 0;
        return DPT_OK;
    }
    void *mem = NULL;
    DPT_TRY(dpt_dist_shared_alloc(d, total * sizeof(float), &mem, &s->xr_win));
    float *f = mem;
    for (int l = 0; l < L; l++) {
        if (!s->xr[l])
            continue;
        s->xr_delta[l + 1] = f + at_d[l + 1];
        s->xr_act[l] = f + at_a[l];
        s->xr_pack[l] = f + at_p[l];
    }
    dpt_dist_shared_zero(d, mem, total * sizeof(float));   /* the panels' padding is read, never used */
    return DPT_OK;
}

/* The work buffers from row r0 on. */
static DptWork rows_view(const DptWork *w, const DptArch *a, size_t r0)
{
    DptWork v = *w;
    const size_t k = (size_t)a->sizes[a->n_layers];
    for (int l = 0; l <= a->n_layers; l++) {
        v.act[l] = w->act[l] + r0 * (size_t)a->sizes[l];
        v.delta[l] = w->delta[l] + r0 * (size_t)a->sizes[l];
    }
    v.zout = w->zout + r0 * k;
    v.y = w->y + r0 * k;
    v.cls = w->cls + r0;
    v.row_loss = w->row_loss + r0;
    v.cap = w->cap - r0;
    return v;
}

DptStatus dpt_step_init(DptStep *s, const DptDist *d, const DptArch *arch, size_t batch, int deterministic,
                        int overlap, size_t det_block, DptReduceKind reduce, size_t *rows)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    s->arch = arch;
    s->deterministic = deterministic;
    /* auto (-1): per-layer buckets where the reduction goes through shared memory */
    s->overlap = overlap != 0 && d->world_size > 1;
    s->det_block = det_block ? det_block : dpt_step_auto_block(batch);
    det_block = s->det_block;
    const size_t P = (size_t)d->world_size;
    if (deterministic) {
        /* The most whole blocks a rank can take, in one pass. */
        size_t nb = (batch + det_block - 1) / det_block;
        s->chunk = (nb + P - 1) / P * det_block;
    } else {
        size_t local = (batch + P - 1) / P;
        s->chunk = local < CHUNK_ROWS ? local : CHUNK_ROWS;
    }
    const int L = arch->n_layers;
    const size_t n = arch->n_params + (deterministic ? N_CTRLQ : N_CTRL);
    const int shared = reduce != DPT_REDUCE_MPI;
    DPT_TRY(sliced_init(s, shared));   /* may give a rank's pass more rows (weighted rows) */
    *rows = s->chunk;
    DPT_TRY(rows_init(s, batch));
    DPT_TRY(team_init(s));
    if (s->sliced) {
        s->overlap = 0;   /* nothing left to overlap on one node */
    } else {
        /* With --overlap, one bucket per layer; the last one carries the control words. */
        size_t ends[DPT_MAX_LAYERS];
        for (int l = 0; l < L; l++)
            ends[l] = l == L - 1 ? n : arch->b_off[l] + (size_t)arch->sizes[l + 1];
        DPT_TRY(dpt_dist_reducer_init(&s->red, d, n, deterministic, ends, s->overlap ? L : 1, shared, overlap > 0));
        if (overlap < 0 && !dpt_dist_reducer_shared(s->red))
            s->overlap = 0;   /* the flat path buckets only on request */
    }
    s->avg = dpt_aligned_alloc(arch->n_params * sizeof(float), "averaged gradients");
    if (!s->avg)
        return DPT_ENOMEM;
    if (deterministic) {
        s->scales = dpt_calloc((size_t)(2 * L + 1), sizeof(double), "scales");
        s->bounds = dpt_calloc((size_t)(2 * L + 2), sizeof(double), "bounds");
        s->row_a = dpt_calloc(s->chunk, sizeof(double), "row maxima");
        s->row_d = dpt_calloc(s->chunk, sizeof(double), "row maxima");
        if (!s->scales || !s->bounds || !s->row_a || !s->row_d)
            return DPT_ENOMEM;
    }
    return DPT_OK;
}

void dpt_step_free(DptStep *s)
{
    dpt_dist_reducer_free(&s->red);
    dpt_dist_shared_free(&s->ns_win);
    dpt_dist_cross_free(&s->ns_cross);
    dpt_dist_shared_free(&s->xr_win);
    dpt_dist_peers_free(&s->xr_peers);
    free(s->xr_node);
    free(s->xr_peer);
    free(s->xr_off);
    free(s->ns_rank);
    free(s->ns_base);
    free(s->ns_at);
    free(s->ns_speed);
    free(s->ns_bq);
    free(s->avg);
    free(s->scales);
    free(s->bounds);
    free(s->row_a);
    free(s->row_d);
    free(s->team_buf);
    free(s->team_mem);
    free(s->team_ctr);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- the control words */

static void encode_ctrl(float *ctrl, int64_t count, int64_t correct, double loss, int nonfinite, int ask)
{
    ctrl[C_COUNT_LO] = (float)(count % 4096);
    ctrl[C_COUNT_HI] = (float)(count / 4096);
    ctrl[C_CORRECT_LO] = (float)(correct % 4096);
    ctrl[C_CORRECT_HI] = (float)(correct / 4096);
    ctrl[C_LOSS] = (float)loss;
    ctrl[C_NONFINITE] = nonfinite ? 1.0f : 0.0f;
    ctrl[C_STOP] = ask & DPT_ASK_STOP ? 1.0f : 0.0f;
    ctrl[C_SAVE] = ask & DPT_ASK_SAVE ? 1.0f : 0.0f;
}

static DptStepResult decode_ctrl(const float *ctrl)
{
    DptStepResult r;
    r.count = (double)ctrl[C_COUNT_LO] + 4096.0 * (double)ctrl[C_COUNT_HI];
    r.correct = (double)ctrl[C_CORRECT_LO] + 4096.0 * (double)ctrl[C_CORRECT_HI];
    r.loss = ctrl[C_LOSS];
    r.nonfinite = ctrl[C_NONFINITE] != 0.0f;
    r.stop = ctrl[C_STOP] > 0.0f;
    r.save = ctrl[C_SAVE] > 0.0f;
    return r;
}

/* ---------------------------------------------------------------- default mode */

/* Rows idx[0..n) of the training split into the work buffers; the compute
 * timer is left running. */
static void gather_rows(DptStep *s, DptWork *w, const DptSplit *train, const uint32_t *idx, size_t n, DptTimers *tm)
{
    dpt_timer_start(tm, DPT_T_DATA);
    dpt_data_gather(w->act[0], w->y, w->cls, train, idx, 0, n, (size_t)s->arch->sizes[s->arch->n_layers]);
    dpt_timer_stop(tm, DPT_T_DATA);
    dpt_timer_start(tm, DPT_T_COMPUTE);
}

/* Rows idx[0..n) of the training split into the work buffers, then the
 * forward pass over them; the compute timer is left running. */
static void gather_forward(DptStep *s, DptWork *w, const float *params, const DptSplit *train, const uint32_t *idx,
                           size_t n, DptTimers *tm)
{
    gather_rows(s, w, train, idx, n, tm);
    dpt_net_forward(w, s->arch, params, n);
}

/* Layer l's bucket is complete (last layer first): its reduction may start. */
static void bucket_hook(void *ctx, int l)
{
    DptStep *s = ctx;
    (void)l;
    dpt_dist_reducer_ready(s->red, 1);
}

/* With overlap, every layer's bucket complete at once (threads as ranks
 * finish all layers' sums together). */
static void all_buckets_ready(DptStep *s)
{
    for (int l = 0; l < s->arch->n_layers && s->overlap; l++)
        dpt_dist_reducer_ready(s->red, 1);
}

/* Thread t of nt in a team region: the forward pass, costs and errors of
 * its rows of the pass's n (in w), and their activations into the packed
 * copies (laid out for blocks of `block` rows, 0: the float slabs); the
 * rows it predicted right. Race-free: it writes only its rows. */
static int64_t team_rows(DptStep *s, DptWork *w, const float *params, size_t n, size_t t, size_t nt, size_t block)
{
    const DptArch *a = s->arch;
    const size_t r0 = n * t / nt, r1 = n * (t + 1) / nt;
    DptWork v = rows_view(w, a, r0);
    int64_t right = 0;
    if (r1 > r0) {
        dpt_net_forward(&v, a, params, r1 - r0);
        dpt_net_loss(&v, a, r1 - r0, 1, &right);
        dpt_net_deltas(&v, a, params, r1 - r0);
        for (int l = 0; l < a->n_layers; l++)
            dpt_kern_rowpack(s->team_pack[l], v.act[l], n, (size_t)a->sizes[l], r0, r1, block);
    }
    return right;
}

/* Thread t of nt: its units of every layer (its turns at the layer's
 * counter, or its fixed share), over the n rows team_rows left, into buf
 * (layer_slice; as_float: deterministic sums stored as floats, the biases'
 * int64 through the thread's units of s->sumq). Race-free: a counter hands
 * each unit to one thread, which alone writes that unit's row of buf. */
static void team_slices(DptStep *s, void *buf, size_t n, size_t t, size_t nt, int accumulate, int as_float, int bad)
{
    const DptArch *a = s->arch;
    for (int l = a->n_layers - 1; l >= 0; l--) {
        const size_t out = (size_t)a->sizes[l + 1];
        UnitRows ur = {.K = n, .D = s->work->delta[l + 1], .pack = s->team_pack[l], .as_float = as_float};
        uint64_t base = 0;   /* the counters start from 0 in each region (team_claims_reset) */
        Units it = s->team_ctr ? units_claimed(s->team_ctr + (size_t)l * CLAIM_LINE, &base, out, 8, nt)
                               : units_fixed(out * t / nt, out * (t + 1) / nt);
        while (units_next(&it, &ur.u0, &ur.u1)) {
            ur.bq = as_float ? s->sumq + a->b_off[l] + ur.u0 : NULL;
            layer_slice(s, buf, l, &ur, accumulate, 0, bad, NULL);
        }
    }
}

/* After a region that ran team_slices: its counters back to 0. */
static void team_claims_reset(DptStep *s)
{
    if (s->team_ctr)
        memset(s->team_ctr, 0, (size_t)s->arch->n_layers * CLAIM_LINE * sizeof *s->team_ctr);
}

/* One parallel region of s->team threads over the n rows in w: each thread
 * its rows (team_rows, packed for blocks of `block` rows) and, where sum is
 * given, after a barrier its units' gradient sums into sum (added to them
 * with accumulate). Returns the rows predicted right. Race-free: a thread
 * writes its rows of the work buffers and of the packed activations, then
 * its units of the sums. */
static int64_t team_region(DptStep *s, DptWork *w, const float *params, size_t n, size_t block, float *sum,
                           int accumulate)
{
    int64_t right = 0;
#pragma omp parallel num_threads(s->team) reduction(+ : right)
    {
        const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        dpt_kern_solo_begin(s->team_buf + t * s->team_floats);
        right += team_rows(s, w, params, n, t, nt, block);
        if (sum) {   /* the same for the whole team */
#pragma omp barrier
            team_slices(s, sum, n, t, nt, accumulate, 0, 0);
        }
        dpt_kern_solo_end();
    }
    team_claims_reset(s);
    return right;
}

/* One pass of n rows (idx[0..n)) in one parallel region of s->team threads
 * (threads as ranks, above): the gradient sums into s->sum (added to them
 * with accumulate); returns the pass's cost, its rows in order, and counts
 * the rows predicted right. The compute timer is left running. */
static double team_pass(DptStep *s, DptWork *w, const float *params, const DptSplit *train, const uint32_t *idx,
                        size_t n, int accumulate, int64_t *correct, DptTimers *tm)
{
    gather_rows(s, w, train, idx, n, tm);
    *correct = team_region(s, w, params, n, 0, s->sum, accumulate);
    return dpt_net_rows_cost(w, n);
}

/* Gradient sums over this rank's slice of idx[0..cnt), in passes of at most
 * s->chunk rows, reduced with the control words. */
static DptStepResult step_default(DptStep *s, const float *params, const DptSplit *train, const uint32_t *idx,
                                  size_t cnt, int ask, DptTimers *tm)
{
    const DptDist *d = s->d;
    const DptArch *a = s->arch;
    DptWork *w = s->work;
    const size_t lo = cnt * (size_t)d->rank / (size_t)d->world_size;
    const size_t hi = cnt * (size_t)(d->rank + 1) / (size_t)d->world_size;
    s->sum = dpt_dist_reducer_begin(s->red);
    float *ctrl = s->sum + a->n_params;
    DptLayerHook hook = s->overlap ? bucket_hook : NULL;
    double loss = 0.0;
    int64_t correct = 0;
    encode_ctrl(ctrl, 0, 0, 0.0, 0, ask);
    if (lo == hi) {
        /* An empty slice still takes part in every reduction, in the same order. */
        dpt_timer_start(tm, DPT_T_COMPUTE);
        memset(s->sum, 0, a->n_params * sizeof(float));
        dpt_timer_stop(tm, DPT_T_COMPUTE);
    }
    for (size_t c0 = lo; c0 < hi; c0 += s->chunk) {
        size_t n = hi - c0 < s->chunk ? hi - c0 : s->chunk;
        int last = c0 + n == hi;
        int64_t right = 0;
        if (s->team) {
            loss += team_pass(s, w, params, train, idx + c0, n, c0 > lo, &right, tm);
            correct += right;
            if (last) {
                encode_ctrl(ctrl, (int64_t)(hi - lo), correct, loss, !isfinite(loss), ask);
                all_buckets_ready(s);
            }
            dpt_timer_stop(tm, DPT_T_COMPUTE);
            continue;
        }
        gather_forward(s, w, params, train, idx + c0, n, tm);
        loss += dpt_net_loss(w, a, n, 1, &right);
        correct += right;
        if (last)   /* before the last backward pass: the control words travel with the last layer */
            encode_ctrl(ctrl, (int64_t)(hi - lo), correct, loss, !isfinite(loss), ask);
        dpt_net_backward(w, a, params, s->sum, n, c0 > lo, last ? hook : NULL, s);
        dpt_timer_stop(tm, DPT_T_COMPUTE);
    }
    dpt_timer_start(tm, DPT_T_REDUCE);
    s->grad = dpt_dist_reducer_finish(s->red, d);
    dpt_timer_stop(tm, DPT_T_REDUCE);
    return decode_ctrl(s->grad + a->n_params);
}

/* ---------------------------------------------------------------- deterministic mode
 * The step's samples are cut into fixed blocks of det_block samples; rank r
 * takes a contiguous run of whole blocks. Each block's gradient is computed
 * in a fixed order, converted to 64-bit fixed point with a per-tensor scale
 * (a power of two agreed by an MPI_MAX of bounds on the block sums), and the
 * integers are summed: the result cannot depend on ranks or threads. */

__attribute__((target_clones("avx2", "default"))) static double row_absmax(const float *row, size_t m, int *bad)
{
    /* The largest |v| as the largest of the bit patterns without the sign:
     * for floats of one sign their order is the integers' (and this loop
     * vectorises, a float max would not without -ffast-math); infinities
     * and NaNs are the patterns from 0x7f800000 up. */
    uint32_t mx = 0;
    for (size_t j = 0; j < m; j++) {
        uint32_t u;
        memcpy(&u, row + j, sizeof u);
        u &= 0x7fffffffu;
        mx = u > mx ? u : mx;
    }
    if (mx >= 0x7f800000u) {
        *bad = 1;
        return INFINITY;
    }
    float f;
    memcpy(&f, &mx, sizeof f);
    return f;
}

double dpt_step_fixed_scale(double bound, size_t n_blocks)
{
    if (!(bound > 0) || !isfinite(bound))
        return 1.0;
    int e_sum, e_one;
    frexp(bound * (double)n_blocks * (1.0 + 1.0 / 1024.0), &e_sum);
    frexp(bound * (1.0 + 1.0 / 1024.0), &e_one);
    return ldexp(1.0, 60 - e_sum < 51 - e_one ? 60 - e_sum : 51 - e_one);
}

/* s->bounds := per layer, the largest bound over this rank's blocks on
 * |sum_r d[r,o] a[r,i]| <= sum_r max|d_r| max|a_r| (weights) and sum_r max|d_r|
 * (biases); then the loss's; the last word flags a non-finite value. */
static void block_bounds(DptStep *s, const DptWork *w, size_t n)
{
    const DptArch *a = s->arch;
    const int L = a->n_layers;
    const size_t blk = s->det_block;
    int bad = 0;
    for (int i = 0; i < 2 * L + 2; i++)
        s->bounds[i] = 0.0;
    for (int l = 0; l < L; l++) {
        size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
        int lbad = 0;
        /* Race-free: row r writes row_a[r] and row_d[r] only. */
#pragma omp parallel for schedule(static) reduction(| : lbad) if (n * (in + out) > 65536)
        for (size_t r = 0; r < n; r++) {
            s->row_a[r] = row_absmax(w->act[l] + r * in, in, &lbad);
            s->row_d[r] = row_absmax(w->delta[l + 1] + r * out, out, &lbad);
        }
        bad |= lbad;
        for (size_t r0 = 0; r0 < n; r0 += blk) {
            size_t r1 = r0 + blk < n ? r0 + blk : n;
            double bw = 0.0, bb = 0.0;
            for (size_t r = r0; r < r1; r++) {
                bw += s->row_d[r] * s->row_a[r];
                bb += s->row_d[r];
            }
            s->bounds[2 * l] = bw > s->bounds[2 * l] ? bw : s->bounds[2 * l];
            s->bounds[2 * l + 1] = bb > s->bounds[2 * l + 1] ? bb : s->bounds[2 * l + 1];
        }
    }
    for (size_t r0 = 0; r0 < n; r0 += blk) {
        size_t r1 = r0 + blk < n ? r0 + blk : n;
        double sum = 0.0;
        for (size_t r = r0; r < r1; r++)
            sum += fabs(w->row_loss[r]);
        bad |= !isfinite(sum);
        s->bounds[2 * L] = sum > s->bounds[2 * L] ? sum : s->bounds[2 * L];
    }
    s->bounds[2 * L + 1] = bad ? 1.0 : 0.0;
}

/* The scales, and this rank's exact control words into cq. */
static void fixed_point_ctrl(DptStep *s, const DptWork *w, size_t n, size_t n_blocks, int64_t correct, int ask,
                             int64_t *cq)
{
    const int L = s->arch->n_layers;
    const size_t blk = s->det_block;
    memset(cq, 0, N_CTRLQ * sizeof *cq);
    for (int i = 0; i < 2 * L + 1; i++)
        s->scales[i] = dpt_step_fixed_scale(s->bounds[i], n_blocks);
    const int bad = s->bounds[2 * L + 1] != 0.0;
    cq[Q_COUNT] = (int64_t)n;
    cq[Q_CORRECT] = correct;
    for (size_t r0 = 0; r0 < n; r0 += blk) {
        size_t r1 = r0 + blk < n ? r0 + blk : n;
        double sum = 0.0;
        for (size_t r = r0; r < r1; r++)
            sum += w->row_loss[r];
        cq[Q_LOSS] += isfinite(sum) ? llrint(sum * s->scales[2 * L]) : 0;
    }
    cq[Q_NONFINITE] = bad;
    cq[Q_STOP] = ask & DPT_ASK_STOP ? 1 : 0;
    cq[Q_SAVE] = ask & DPT_ASK_SAVE ? 1 : 0;
}

/* Threads as ranks, deterministic mode: each thread its units' fixed-point
 * sums over the n rows packed by team_rows (zeros if bad), into s->sumq,
 * or as floats into wf where given (one slab, a lone rank). */
static void team_fixed_sums(DptStep *s, size_t n, int bad, float *wf)
{
    void *buf = wf ? (void *)wf : (void *)s->sumq;
    /* Race-free: a thread writes its units' rows of buf, and of s->sumq's
     * biases, only. */
#pragma omp parallel num_threads(s->team)
    {
        const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        dpt_kern_solo_begin(s->team_buf + t * s->team_floats);
        team_slices(s, buf, n, t, nt, 0, wf != NULL, bad);
        dpt_kern_solo_end();
    }
    team_claims_reset(s);
}

/* The fixed-point sums of this rank's blocks (zeros after a non-finite
 * value, or for an empty slice) and its exact control words. wf (a lone
 * rank, one slab): every sum as a float there too, the same bits as the
 * reduced int64 converted (nobody else adds to them); the weights' int64
 * are never written. */
static void fixed_point_sums(DptStep *s, size_t n, size_t n_blocks, int64_t correct, int ask, float *wf)
{
    const DptArch *a = s->arch;
    DptWork *w = s->work;
    const int L = a->n_layers;
    const size_t blk = s->det_block;
    int64_t *q = s->sumq;
    /* The control words first: they travel in the last layer's bucket. */
    fixed_point_ctrl(s, w, n, n_blocks, correct, ask, q + a->n_params);
    const int bad = s->bounds[2 * L + 1] != 0.0;
    if (s->team) {
        team_fixed_sums(s, n, bad, wf);
        all_buckets_ready(s);
        return;
    }
    /* Last layer first; with overlap each layer's bucket is handed to the
     * reduction as soon as it is complete (integer sums: any order). */
    for (int l = L - 1; l >= 0; l--) {
        size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
        if (!bad) {
            /* Overwrites q (no accumulate): an empty slice writes zeros. */
            if (wf)
                dpt_kern_weight_grad_fixed_float(wf + a->w_off[l], s->scales[2 * l], w->delta[l + 1], w->act[l], n,
                                                 in, out, blk);
            else
                dpt_kern_weight_grad_fixed(q + a->w_off[l], 0, s->scales[2 * l], w->delta[l + 1], w->act[l], n, in,
                                           out, blk);
            dpt_kern_bias_grad_fixed(q + a->b_off[l], 0, s->scales[2 * l + 1], w->delta[l + 1], n, out, blk);
            if (wf)
                dpt_kern_fixed_to_float(wf + a->b_off[l], q + a->b_off[l], out, 1.0 / s->scales[2 * l + 1]);
        } else {
            memset(q + a->w_off[l], 0, (in * out + out) * sizeof *q);
            if (wf)
                memset(wf + a->w_off[l], 0, (in * out + out) * sizeof *wf);
        }
        if (s->overlap)
            dpt_dist_reducer_ready(s->red, 1);
    }
}

/* Deterministic mode: the elements of the tensor at [t0, t1) (fixed-point
 * scale `scale`) that fall in [lo, hi), from the reduced integers into s->avg. */
static void to_float_part(DptStep *s, size_t t0, size_t t1, double scale, size_t lo, size_t hi)
{
    size_t a0 = t0 > lo ? t0 : lo, a1 = t1 < hi ? t1 : hi;
    if (a0 < a1)
        dpt_kern_fixed_to_float(s->avg + a0, s->q + a0, a1 - a0, 1.0 / scale);
}

/* Deterministic mode: the reduced sums [lo, hi) back to float (s->avg): only
 * what this rank needs (its slice of a shared model, or all). */
static void fixed_to_float(DptStep *s, size_t lo, size_t hi)
{
    if (!s->deterministic || (lo >= s->conv_lo && hi <= s->conv_hi))
        return;
    const DptArch *a = s->arch;
    for (int l = 0; l < a->n_layers; l++) {
        size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
        to_float_part(s, a->w_off[l], a->w_off[l] + in * out, s->scales[2 * l], lo, hi);
        to_float_part(s, a->b_off[l], a->b_off[l] + out, s->scales[2 * l + 1], lo, hi);
    }
    s->conv_lo = lo;
    s->conv_hi = hi;
}

const float *dpt_step_sums(DptStep *s)
{
    fixed_to_float(s, 0, s->arch->n_params);
    return s->grad;
}

/* The step's result from the reduced integers q; the sums themselves are
 * turned into floats (s->grad) by whoever needs them, for the elements
 * needed (fixed_to_float), unless every sum is a float already in `floats`
 * (one rank or one node, one slab). */
static DptStepResult from_fixed_point(DptStep *s, const int64_t *q, const int64_t *cq, const float *floats)
{
    const int L = s->arch->n_layers;
    s->q = q;
    s->conv_lo = 0;
    s->conv_hi = floats ? s->arch->n_params : 0;
    s->grad = floats ? floats : s->avg;
    DptStepResult r;
    r.count = (double)cq[Q_COUNT];
    r.correct = (double)cq[Q_CORRECT];
    /* Rounded to float as the default mode's loss word is. */
    r.loss = (float)((double)cq[Q_LOSS] / s->scales[2 * L]);
    r.nonfinite = cq[Q_NONFINITE] != 0;
    r.stop = cq[Q_STOP] != 0;
    r.save = cq[Q_SAVE] != 0;
    return r;
}

/* Two collectives: the maximum of the bounds (for the scales), then the integer sum. */
static DptStepResult step_deterministic(DptStep *s, const float *params, const DptSplit *train,
                                        const uint32_t *idx, size_t cnt, int ask, DptTimers *tm)
{
    const DptDist *d = s->d;
    const DptArch *a = s->arch;
    DptWork *w = s->work;
    const size_t blk = s->det_block;
    const size_t nb = (cnt + blk - 1) / blk;
    const size_t b0 = nb * (size_t)d->rank / (size_t)d->world_size;
    const size_t b1 = nb * (size_t)(d->rank + 1) / (size_t)d->world_size;
    const size_t lo = b0 * blk, hi = b1 * blk < cnt ? b1 * blk : cnt;
    const size_t n = hi > lo ? hi - lo : 0;
    int64_t correct = 0;

    if (s->team) {
        gather_rows(s, w, train, idx + lo, n, tm);
        correct = team_region(s, w, params, n, blk, NULL, 0);
    } else {
        gather_forward(s, w, params, train, idx + lo, n, tm);
        dpt_net_loss(w, a, n, 1, &correct);
        dpt_net_deltas(w, a, params, n);
    }
    block_bounds(s, w, n);
    dpt_timer_stop(tm, DPT_T_COMPUTE);

    dpt_timer_start(tm, DPT_T_REDUCE);
    dpt_dist_max_doubles(d, s->bounds, (size_t)(2 * a->n_layers + 2));
    dpt_timer_stop(tm, DPT_T_REDUCE);

    dpt_timer_start(tm, DPT_T_COMPUTE);
    s->sumq = dpt_dist_reducer_begin(s->red);
    float *wf = d->world_size == 1 && n <= dpt_kern_fixed_float_rows(blk) ? s->avg : NULL;
    fixed_point_sums(s, n, nb, correct, ask, wf);
    dpt_timer_stop(tm, DPT_T_COMPUTE);

    dpt_timer_start(tm, DPT_T_REDUCE);
    const int64_t *q = dpt_dist_reducer_finish(s->red, d);
    dpt_timer_stop(tm, DPT_T_REDUCE);
    return from_fixed_point(s, q, q + a->n_params, wf);
}

/* ---------------------------------------------------------------- node-sliced steps */

/* World rank g's samples [*lo, *hi) of a step of cnt: a contiguous slice
 * (default mode) or run of whole blocks (deterministic mode). */
static void rank_rows(const DptStep *s, size_t cnt, int g, size_t *lo, size_t *hi)
{
    const size_t P = (size_t)s->d->world_size, r = (size_t)g;
    if (s->ns_wrows && s->ns_at[P] == cnt) {   /* this step's weighted rows (one node: g is the node rank) */
        *lo = s->ns_at[r];
        *hi = s->ns_at[r + 1];
        return;
    }
    if (!s->deterministic) {
        *lo = cnt * r / P;
        *hi = cnt * (r + 1) / P;
        return;
    }
    const size_t blk = s->det_block, nb = (cnt + blk - 1) / blk;
    *lo = nb * r / P * blk;
    *hi = nb * (r + 1) / P * blk < cnt ? nb * (r + 1) / P * blk : cnt;
    *lo = *lo < *hi ? *lo : *hi;
}

/* Pass p of a step of cnt on the node: the node's rows K, and this rank's
 * n of them at offset *off (node ranks' rows one after another); returns the
 * number of passes the node makes (the most any of its ranks needs, >= 1). */
static size_t node_pass(const DptStep *s, size_t cnt, size_t p, size_t *K, size_t *off, size_t *n)
{
    const DptDist *d = s->d;
    size_t passes = 1;
    *K = *off = *n = 0;
    for (int i = 0; i < d->node_size; i++) {
        size_t lo, hi;
        rank_rows(s, cnt, s->ns_rank[i], &lo, &hi);
        const size_t rows = hi - lo, np = (rows + s->chunk - 1) / s->chunk;
        const size_t ni = rows > p * s->chunk ? (rows - p * s->chunk < s->chunk ? rows - p * s->chunk : s->chunk) : 0;
        passes = np > passes ? np : passes;
        if (i == d->node_rank) {
            *off = *K;
            *n = ni;
        }
        *K += ni;
    }
    return passes;
}

/* Does the node's team run the forward products and the hidden layers'
 * errors of a pass of K rows (team_forward, team_backward)? Where a rank's
 * share of the rows is small, and where it moves fewer floats through a
 * rank's caches: each rank then streams only its units' rows of W, but
 * packs the input rows of all K (the products' A side, read and written),
 * instead of all of W for its own rows. README, "Scaling": 2 ranks on 2
 * cores 1.04-1.08x at 32 and at 64 rows a rank, 0.96-1.03x at 128,
 * 0.91-1.00x at 256; the 16-core Intel host, 16 ranks, 0.73-0.84x at 32
 * and 64 rows, 8 ranks at 128 0.71-0.93x (every rank packs all 1024 rows).
 * For [784,1024,1024,10] at 64 rows a rank the rule takes it on 2 and 4
 * ranks (fewer floats), not on 8 or 16. The same on every rank of the node
 * (K is); DPT_NTEAM=0/1 overrides. */
static int node_team(const DptStep *s, size_t K)
{
    const size_t k = (size_t)s->d->node_size;
    if (s->ns_team >= 0 || K > DPT_TEAM_ROWS * k)
        return s->ns_team > 0;
    const DptArch *a = s->arch;
    double team = 0.0, own = 0.0;
    for (int l = 0; l + 1 < a->n_layers; l++) {
        const double in = a->sizes[l], out = a->sizes[l + 1];
        team += 2.0 * (double)K * in + in * out / (double)k;
        own += in * out + (double)K / (double)k * in;
    }
    return team < own;
}

/* The work buffers with this rank's errors (and with the team, its
 * activations but the output layer's) in the node's rows at off. */
static DptWork node_view(const DptStep *s, size_t off, int team)
{
    DptWork v = *s->work;
    for (int l = 1; l <= s->arch->n_layers; l++)
        v.delta[l] = s->ns_delta[l] + off * (size_t)s->arch->sizes[l];
    for (int l = 0; l < s->arch->n_layers && team; l++)
        v.act[l] = s->ns_act[l] + off * (size_t)s->arch->sizes[l];
    return v;
}

/* Every rank of the node has written its rows (or read the previous pass's). */
static void node_barrier(const DptStep *s, DptTimers *tm)
{
    dpt_timer_start(tm, DPT_T_REDUCE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    dpt_dist_node_barrier(s->d);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    dpt_timer_stop(tm, DPT_T_REDUCE);
}

/* This rank's rows [off, off + n) of every layer's input activations into
 * the node's packed copies (of K rows). */
static void pack_rows(DptStep *s, const DptWork *v, size_t K, size_t off, size_t n, size_t block, int xr)
{
    for (int l = 0; l < s->arch->n_layers; l++)
        if (!(xr && s->xr[l]))   /* rows across nodes: into xr_pack (rows_start) */
            dpt_kern_rowpack(s->ns_pack[l], v->act[l], K, (size_t)s->arch->sizes[l], off, off + n, block);
}

/* Rows across nodes (rows_init), this step of cnt: each rank's first row,
 * node after node (within a node in node rank order, which is world rank
 * order). */
static void rows_offsets(DptStep *s, size_t cnt)
{
    const size_t P = (size_t)s->d->world_size, N = (size_t)s->d->n_nodes;
    size_t *node_at = s->xr_off + P, lo, hi, at = 0;
    memset(node_at, 0, N * sizeof *node_at);
    for (size_t q = 0; q < P; q++) {
        rank_rows(s, cnt, (int)q, &lo, &hi);
        node_at[s->xr_node[q]] += hi - lo;
    }
    for (size_t m = 0; m < N; m++) {
        const size_t k = node_at[m];
        node_at[m] = at;
        at += k;
    }
    for (size_t q = 0; q < P; q++) {
        rank_rows(s, cnt, (int)q, &lo, &hi);
        s->xr_off[q] = node_at[s->xr_node[q]];
        node_at[s->xr_node[q]] += hi - lo;
    }
}

/* Rank q's rows this step: how many, and at *at its first among every node's. */
static size_t rows_of(const DptStep *s, size_t cnt, int q, size_t *at)
{
    size_t lo, hi;
    rank_rows(s, cnt, q, &lo, &hi);
    *at = s->xr_off[q];
    return hi - lo;
}

/* The packed copy's blocks: deterministic mode's fixed-point blocks. */
static size_t rows_block(const DptStep *s) { return s->deterministic ? s->det_block : 0; }

enum { XR_TAG = 100 };   /* + 2 l (errors), + 2 l + 1 (activations): point-to-point on the world */

/* The step's row offsets, then this rank's n rows (at off among the node's)
 * of every such layer's errors and input activations: into the node's
 * copies of all rows (the activations packed), and sent to this node rank
 * on every other node, whose rows are received. */
static void rows_start(DptStep *s, const DptWork *v, size_t cnt, size_t off, size_t n)
{
    const DptArch *a = s->arch;
    const DptDist *d = s->d;
    rows_offsets(s, cnt);
    const size_t g = s->xr_off[d->rank];
    for (int l = 0; l < a->n_layers; l++) {
        if (!s->xr[l])
            continue;
        const size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
        const float *D = s->ns_delta[l + 1] + off * out;
        memcpy(s->xr_delta[l + 1] + g * out, D, n * out * sizeof *D);
        dpt_kern_rowpack(s->xr_pack[l], v->act[l], cnt, in, g, g + n, rows_block(s));
        for (int m = 0; m < d->n_nodes; m++) {
            const int q = s->xr_peer[m];
            if (q == d->rank)
                continue;
            size_t gq;
            const size_t nq = rows_of(s, cnt, q, &gq);
            dpt_dist_peers_recv(s->xr_peers, q, XR_TAG + 2 * l, s->xr_delta[l + 1] + gq * out, nq * out * sizeof *D);
            dpt_dist_peers_recv(s->xr_peers, q, XR_TAG + 2 * l + 1, s->xr_act[l] + gq * in, nq * in * sizeof *D);
            dpt_dist_peers_send(s->xr_peers, q, XR_TAG + 2 * l, D, n * out * sizeof *D);
            dpt_dist_peers_send(s->xr_peers, q, XR_TAG + 2 * l + 1, v->act[l], n * in * sizeof *D);
        }
    }
}

/* Before the first such layer's products (the compute timer running): this
 * rank's rows from the other nodes in, their activations packed, and a
 * node barrier (every rank's are). */
static void rows_finish(DptStep *s, size_t cnt, DptTimers *tm)
{
    const DptArch *a = s->arch;
    const DptDist *d = s->d;
    dpt_timer_stop(tm, DPT_T_COMPUTE);
    dpt_timer_start(tm, DPT_T_REDUCE);
    dpt_dist_peers_wait(s->xr_peers);
    dpt_timer_stop(tm, DPT_T_REDUCE);
    dpt_timer_start(tm, DPT_T_COMPUTE);
    for (int l = 0; l < a->n_layers; l++) {
        if (!s->xr[l])
            continue;
        const size_t in = (size_t)a->sizes[l];
        for (int m = 0; m < d->n_nodes; m++) {
            const int q = s->xr_peer[m];
            if (q == d->rank)
                continue;
            size_t gq;
            const size_t nq = rows_of(s, cnt, q, &gq);
            dpt_kern_rowpack(s->xr_pack[l], s->xr_act[l] + gq * in, cnt, in, gq, gq + nq, rows_block(s));
        }
    }
    dpt_timer_stop(tm, DPT_T_COMPUTE);
    node_barrier(s, tm);
    dpt_timer_start(tm, DPT_T_COMPUTE);
}

/* The node's forward team: this rank's rows idx[0..n) of the training split
 * into the node's input rows (at off, of K), then each hidden layer's
 * product split by units among the node's ranks over all K rows (a node
 * barrier after each: the next layer reads every unit), and the output
 * layer (softmax needs whole rows) over this rank's rows; the compute timer
 * is left running. Every element is the product's, bit for bit. */
static void team_forward(DptStep *s, DptWork *v, const float *params, const DptSplit *train, const uint32_t *idx,
                         size_t K, size_t n, DptTimers *tm)
{
    const DptArch *a = s->arch;
    const int L = a->n_layers;
    gather_rows(s, v, train, idx, n, tm);
    for (int l = 0; l + 1 < L; l++) {
        dpt_timer_stop(tm, DPT_T_COMPUTE);
        node_barrier(s, tm);   /* every rank's rows of act[l] are in */
        dpt_timer_start(tm, DPT_T_COMPUTE);
        dpt_kern_forward_act_cols(s->ns_act[l + 1], (size_t)a->sizes[l + 1], s->ns_act[l], params + a->w_off[l],
                                  params + a->b_off[l], a->hidden, K, (size_t)a->sizes[l], s->ns_t0[l], s->ns_t1[l]);
    }
    if (L > 1) {
        dpt_timer_stop(tm, DPT_T_COMPUTE);
        node_barrier(s, tm);
        dpt_timer_start(tm, DPT_T_COMPUTE);
    }
    if (n > 0)
        dpt_kern_forward_act(v->act[L], v->zout, v->act[L - 1], params + a->w_off[L - 1], v->wp_fwd[L - 1],
                             params + a->b_off[L - 1], a->output, n, (size_t)a->sizes[L - 1], (size_t)a->sizes[L]);
}

/* The node's backward team: from the output errors of every rank's rows
 * (in the node's errors), each hidden layer's errors split by units among
 * the node's ranks over all K rows, a node barrier before each layer and
 * after the last (every rank's rows are then complete). Every element is
 * dpt_net_deltas's, bit for bit. */
static void team_backward(DptStep *s, const float *params, size_t K, DptTimers *tm)
{
    const DptArch *a = s->arch;
    for (int l = a->n_layers - 1; l >= 0; l--) {
        dpt_timer_stop(tm, DPT_T_COMPUTE);
        node_barrier(s, tm);
        dpt_timer_start(tm, DPT_T_COMPUTE);
        if (l == 0)
            break;
        const size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1];
        dpt_kern_input_grad_act_cols(s->ns_delta[l], in, s->ns_delta[l + 1], out, params + a->w_off[l], s->ns_act[l],
                                     a->hidden, K, in, out, s->ns_t0[l - 1], s->ns_t1[l - 1]);
    }
}

/* Several nodes: elements [i, i + n) of buf (node sums) allreduced with the
 * same node rank on the other nodes, started now. */
static void cross_start(DptStep *s, void *buf, size_t i, size_t n, DptTimers *tm)
{
    const size_t e = sum_bytes(s, s->ns_float);
    dpt_timer_stop(tm, DPT_T_COMPUTE);
    dpt_timer_start(tm, DPT_T_REDUCE);
    dpt_dist_cross_start(s->ns_cross, (char *)buf + i * e, n);
    dpt_timer_stop(tm, DPT_T_REDUCE);
    dpt_timer_start(tm, DPT_T_COMPUTE);
}

/* Layer l's units ur: their rows of dW, then of db, into buf (float; int64
 * in deterministic mode unless ur->as_float; zeros if bad). With cross
 * (several nodes, the step's last pass) in blocks of XROWS units, each
 * allreduced across nodes as soon as it is complete, so that the transfer
 * of one block overlaps the product of the next. */
enum { XROWS = 128 };

static void layer_slice(DptStep *s, void *buf, int l, const UnitRows *ur, int accumulate, int cross, int bad,
                        DptTimers *tm)
{
    const DptArch *a = s->arch;
    const size_t in = (size_t)a->sizes[l], out = (size_t)a->sizes[l + 1], u0 = ur->u0, u1 = ur->u1, K = ur->K;
    const size_t blk = s->det_block, e = sum_bytes(s, ur->as_float);
    const float *D = ur->D, *pack = ur->pack;
    float *g = buf;
    int64_t *q = buf;
    for (size_t r = u0; r < u1;) {
        const size_t m = cross && u1 - r > XROWS ? XROWS : u1 - r, at = a->w_off[l] + r * in;
        if (!s->deterministic)
            dpt_kern_weight_grad_rows(g + at, accumulate, D + r, out, pack, K, in, m);
        else if (bad)
            memset((char *)buf + at * e, 0, m * in * e);
        else if (ur->as_float)
            dpt_kern_weight_grad_rows_fixed_float(g + at, s->scales[2 * l], D + r, out, pack, K, in, m, blk);
        else
            dpt_kern_weight_grad_rows_fixed(q + at, 0, s->scales[2 * l], D + r, out, pack, K, in, m, blk);
        if (cross)
            cross_start(s, buf, at, m * in, tm);
        r += m;
    }
    const size_t m = u1 - u0, at = a->b_off[l] + u0;
    if (!s->deterministic)
        dpt_kern_bias_grad_cols(g + at, accumulate, D + u0, out, K, m);
    else if (bad)
        memset((char *)buf + at * e, 0, m * e);
    else if (ur->as_float) {
        dpt_kern_bias_grad_cols_fixed(ur->bq, 0, s->scales[2 * l + 1], D + u0, out, K, m, blk);
        dpt_kern_fixed_to_float(g + at, ur->bq, m, 1.0 / s->scales[2 * l + 1]);
    } else {
        dpt_kern_bias_grad_cols_fixed(q + at, 0, s->scales[2 * l + 1], D + u0, out, K, m, blk);
    }
    if (cross && m > 0)
        cross_start(s, buf, at, m, tm);
}

/* This rank's units of layer l on its node, over the node's K rows (its
 * turns, or its fixed share: with cross, several nodes), into buf. */
static void node_layer(DptStep *s, void *buf, int l, size_t K, int accumulate, int cross, int bad, DptTimers *tm)
{
    UnitRows ur = {0, 0, K, s->ns_delta[l + 1], s->ns_pack[l], s->ns_float, s->ns_bq};
    Units it = s->ns_ctr ? units_claimed(s->ns_ctr + (size_t)l * CLAIM_LINE, s->ns_base + l,
                                         (size_t)s->arch->sizes[l + 1], 8, (size_t)s->d->node_size)
                         : units_fixed(s->ns_u0[l], s->ns_u1[l]);
    while (units_next(&it, &ur.u0, &ur.u1))
        layer_slice(s, buf, l, &ur, accumulate, cross, bad, tm);
}

/* Layer l's units over every node's rows (rows across nodes, nothing to
 * send), into buf; the first such layer of the step (*started 0) waits
 * for the other nodes' rows. */
static void rows_layer(DptStep *s, void *buf, int l, size_t cnt, int bad, int *started, DptTimers *tm)
{
    if (!*started)
        rows_finish(s, cnt, tm);
    *started = 1;
    const UnitRows ur = {s->ns_u0[l], s->ns_u1[l], cnt, s->xr_delta[l + 1], s->xr_pack[l], 0, NULL};
    layer_slice(s, buf, l, &ur, 0, 0, bad, tm);
}

static void cross_wait(DptStep *s, DptTimers *tm)
{
    if (!s->ns_cross)
        return;
    dpt_timer_start(tm, DPT_T_REDUCE);
    dpt_dist_cross_wait(s->ns_cross);
    dpt_timer_stop(tm, DPT_T_REDUCE);
}

/* The control words without an allreduce of their own: each rank writes
 * its words into its line of the node's window before a node barrier
 * (ctrl_mine), and after it sums the node's lines in node rank order into a
 * line of its own (ctrl_node_sum), which then goes across nodes with its
 * units (first: it is ready first). After the step's last node barrier the
 * line holds every rank's words: no rank waits for the ranks of other
 * nodes beyond the units it shares with them. */
static float *ctrl_mine(const DptStep *s) { return (float *)(s->ns_ctrl + (size_t)s->d->node_rank * CTRL_LINE); }

static float *ctrl_node_sum(DptStep *s, double loss, DptTimers *tm)
{
    const size_t k = (size_t)s->d->node_size;
    float *out = (float *)(s->ns_ctrl + (k + (size_t)s->d->node_rank) * CTRL_LINE);
    for (size_t w = 0; w < N_CTRL; w++) {
        float f = 0.0f;
        for (size_t j = 0; j < k; j++)
            f += ((const float *)(s->ns_ctrl + j * CTRL_LINE))[w];
        out[w] = f;
    }
    out[C_LOSS] = (float)loss;   /* the node's cost summed over its rows in order (step_sliced) */
    if (s->ns_cross)
        cross_start(s, out, 0, N_CTRL, tm);
    return out;
}

/* This step's rows of each rank (weighted rows, above) into s->ns_at, from
 * the rates the ranks wrote in the step before. The same on every rank. */
static void wrows_shares(DptStep *s, size_t cnt)
{
    const size_t k = (size_t)s->d->node_size;
    const double *rate = s->ns_rate + (s->ns_steps % 2 ? 0 : k);   /* the previous step's slot */
    double total = 0.0;
    int even = node_team(s, cnt);
    for (size_t j = 0; j < k; j++) {
        const double r = rate[j];
        if (r > 0.0 && isfinite(r))
            s->ns_speed[j] = s->ns_speed[j] > 0.0 ? 0.5 * s->ns_speed[j] + 0.5 * r : r;
        even |= !(s->ns_speed[j] > 0.0);
        total += s->ns_speed[j];
    }
    s->ns_at[0] = 0;
    double acc = 0.0;
    for (size_t j = 0; j < k && !even; j++) {
        acc += s->ns_speed[j];
        s->ns_at[j + 1] = j + 1 == k ? cnt : (size_t)llround((double)cnt * acc / total);
        even = s->ns_at[j + 1] < s->ns_at[j] || s->ns_at[j + 1] - s->ns_at[j] > s->chunk || s->ns_at[j + 1] > cnt;
    }
    for (size_t j = 0; j < k && even; j++)
        s->ns_at[j + 1] = cnt * (j + 1) / k;
}

/* This rank's rate over its rows of this step (rows a second) into its
 * word of this step's slot. */
static void wrows_rate(DptStep *s, size_t n, double t0)
{
    const size_t k = (size_t)s->d->node_size;
    const double t = dpt_clock() - t0;
    s->ns_rate[(s->ns_steps % 2) * k + (size_t)s->d->node_rank] = n > 0 && t > 0.0 ? (double)n / t : 0.0;
}

static DptStepResult step_sliced(DptStep *s, const float *params, const DptSplit *train, const uint32_t *idx,
                                 size_t cnt, int ask, DptTimers *tm)
{
    const DptArch *a = s->arch;
    float *g = s->ns_grad, *ctrl = NULL;
    size_t lo, hi, K, off, n;
    const double t0 = dpt_clock();
    if (s->ns_wrows)
        wrows_shares(s, cnt);
    rank_rows(s, cnt, s->d->rank, &lo, &hi);
    double loss = 0.0, node_loss = 0.0;
    int64_t correct = 0;
    const size_t passes = node_pass(s, cnt, 0, &K, &off, &n);
    const int xr = s->xr_on && passes == 1;   /* one pass: rows_init */
    int xr_in = 0;
    for (size_t p = 0; p < passes; p++) {
        if (p > 0) {
            node_barrier(s, tm);   /* no one reads the previous pass's rows any more */
            node_pass(s, cnt, p, &K, &off, &n);
        }
        const int team = node_team(s, K);
        DptWork v = node_view(s, off, team);
        if (team)
            team_forward(s, &v, params, train, idx + lo + p * s->chunk, K, n, tm);   /* every rank: it has units */
        else if (n > 0)
            gather_forward(s, &v, params, train, idx + lo + p * s->chunk, n, tm);
        if (n > 0) {
            int64_t right = 0;
            loss += dpt_net_loss(&v, a, n, 1, &right);
            memcpy(s->ns_loss + off, v.row_loss, n * sizeof *s->ns_loss);
            correct += right;
            if (!team)
                dpt_net_deltas(&v, a, params, n);
        }
        if (team)
            team_backward(s, params, K, tm);
        if (n > 0)
            pack_rows(s, &v, K, off, n, 0, xr);
        if (xr)
            rows_start(s, &v, cnt, off, n);
        if (p == 0 && s->ns_wrows)
            wrows_rate(s, n, t0);
        if (p + 1 == passes)
            encode_ctrl(ctrl_mine(s), (int64_t)(hi - lo), correct, loss, !isfinite(loss), ask);
        if (n > 0 || team)
            dpt_timer_stop(tm, DPT_T_COMPUTE);
        node_barrier(s, tm);
        dpt_timer_start(tm, DPT_T_COMPUTE);
        for (size_t r = 0; r < K; r++)   /* the node's rows in order: the cost whatever the shares */
            node_loss += s->ns_loss[r];
        if (p + 1 == passes)
            ctrl = ctrl_node_sum(s, node_loss, tm);
        for (int l = a->n_layers - 1; l >= 0; l--) {
            if (xr && s->xr[l]) {
                rows_layer(s, g, l, cnt, 0, &xr_in, tm);
                continue;
            }
            node_layer(s, g, l, K, p > 0, s->ns_cross && p + 1 == passes, 0, tm);
        }
        dpt_timer_stop(tm, DPT_T_COMPUTE);
    }
    cross_wait(s, tm);
    node_barrier(s, tm);   /* every rank's units are in g, and every node's words in ctrl */
    s->ns_steps++;
    s->grad = g;
    return decode_ctrl(ctrl);
}

static DptStepResult step_sliced_deterministic(DptStep *s, const float *params, const DptSplit *train,
                                               const uint32_t *idx, size_t cnt, int ask, DptTimers *tm)
{
    const DptDist *d = s->d;
    const DptArch *a = s->arch;
    const int L = a->n_layers;
    const size_t blk = s->det_block, nb = (cnt + blk - 1) / blk;
    int64_t *q = s->ns_grad, cq[N_CTRLQ], correct = 0;
    size_t lo, hi, K, off, n;
    rank_rows(s, cnt, d->rank, &lo, &hi);
    node_pass(s, cnt, 0, &K, &off, &n);   /* one pass: s->chunk holds a rank's blocks */
    const int team = node_team(s, K);
    DptWork v = node_view(s, off, team);
    /* One node and one slab: the sums are final where they are computed,
     * and stored as floats (their int64 never written). */
    s->ns_float = s->ns_bq && K <= dpt_kern_fixed_float_rows(blk);

    if (team)
        team_forward(s, &v, params, train, idx + lo, K, n, tm);
    else
        gather_forward(s, &v, params, train, idx + lo, n, tm);
    dpt_net_loss(&v, a, n, 1, &correct);
    if (team)
        team_backward(s, params, K, tm);
    else
        dpt_net_deltas(&v, a, params, n);
    block_bounds(s, &v, n);
    const int xr = s->xr_on;   /* one pass */
    pack_rows(s, &v, K, off, n, blk, xr);
    if (xr)
        rows_start(s, &v, cnt, off, n);
    dpt_timer_stop(tm, DPT_T_COMPUTE);

    /* an allreduce: when it returns, every rank's rows are in */
    dpt_timer_start(tm, DPT_T_REDUCE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    dpt_dist_max_doubles(d, s->bounds, (size_t)(2 * L + 2));
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    dpt_timer_stop(tm, DPT_T_REDUCE);

    dpt_timer_start(tm, DPT_T_COMPUTE);
    fixed_point_ctrl(s, &v, n, nb, correct, ask, cq);
    const int bad = s->bounds[2 * L + 1] != 0.0;
    for (int l = L - 1, xr_in = 0; l >= 0; l--) {
        if (xr && s->xr[l]) {
            rows_layer(s, q, l, cnt, bad, &xr_in, tm);
            continue;
        }
        node_layer(s, q, l, K, 0, s->ns_cross != NULL, bad, tm);
    }
    dpt_timer_stop(tm, DPT_T_COMPUTE);
    cross_wait(s, tm);

    dpt_timer_start(tm, DPT_T_REDUCE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    dpt_dist_sum_i64(d, cq, N_CTRLQ);   /* and every rank's units are in q */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    dpt_timer_stop(tm, DPT_T_REDUCE);
    return from_fixed_point(s, q, cq, s->ns_float ? s->ns_grad : NULL);
}

DptStepResult dpt_step_gradient(DptStep *s, const float *params, const DptSplit *train, const uint32_t *idx,
                                size_t cnt, int ask, DptTimers *tm)
{
    if (s->sliced)
        return s->deterministic ? step_sliced_deterministic(s, params, train, idx, cnt, ask, tm)
                                : step_sliced(s, params, train, idx, cnt, ask, tm);
    return s->deterministic ? step_deterministic(s, params, train, idx, cnt, ask, tm)
                            : step_default(s, params, train, idx, cnt, ask, tm);
}

/* ---------------------------------------------------------------- averaging */

float dpt_step_average(DptStep *s, const DptStepResult *r, double clip_norm, double decay_per_sample,
                       const float *params, size_t lo, size_t hi)
{
    const DptArch *a = s->arch;
    const float cnt = (float)r->count;
    fixed_to_float(s, clip_norm > 0 ? 0 : lo, clip_norm > 0 ? a->n_params : hi);
    if (clip_norm == 0 && decay_per_sample == 0)
        return cnt;   /* fused into the optimiser's pass: g / cnt there, the same rounding */
    const float *sum = s->grad;
    float *g = s->avg;
    /* The norm needs every average; otherwise only the range is used. */
    const size_t a0 = clip_norm > 0 ? 0 : lo, a1 = clip_norm > 0 ? a->n_params : hi;
    const int whole = a0 == 0 && a1 == a->n_params;
    int bad = 0;
    /* Race-free: element i is written by one thread. */
#pragma omp parallel for schedule(static) reduction(| : bad) if (a1 - a0 > 65536)
    for (size_t i = a0; i < a1; i++) {
        g[i] = sum[i] / cnt;
        bad |= !isfinite(g[i]);
    }
    s->grad = g;
    if (!bad && clip_norm > 0) {
        double norm = dpt_optim_norm(g, a->n_params);
        if (norm > clip_norm) {
            const float f = (float)(clip_norm / norm);
#pragma omp parallel for schedule(static) if (hi - lo > 65536)
            for (size_t i = lo; i < hi; i++)
                g[i] *= f;
        }
    }
    if (decay_per_sample > 0) {
        /* C = C0 + lambda/(2n) sum w^2 over weights (not biases): dC/dw += (lambda/n) w. */
        const float c = (float)decay_per_sample;
        for (int l = 0; l < a->n_layers; l++) {
            size_t w0 = a->w_off[l], w1 = a->b_off[l];
            w0 = w0 > lo ? w0 : lo;
            w1 = w1 < hi ? w1 : hi;
            for (size_t i = w0; i < w1; i++)
                g[i] += c * params[i];
        }
    }
    /* A non-finite average seen by part of the ranks only must not decide
     * alone: then the optimiser's checks, agreed over the node, do. */
    return bad && whole ? 0.0f : 1.0f;
}
