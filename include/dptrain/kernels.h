/*
 * kernels: the dense products of backprop and the element-wise activations.
 *
 * Matrices are row-major float32. Every kernel partitions its OUTPUT among the
 * OpenMP threads and reduces each output element in one fixed order (k
 * ascending, in fixed KC blocks), so results do not depend on the number of
 * threads, on how many rows are computed together, or on a tile's position:
 * row i of X*W^T is the same whether it is computed in a batch of 1 or 1000.
 * This is what deterministic mode and the "no unordered reduction across
 * threads" rule rest on.
 *
 * Each kernel has a naive _ref twin (kernels_ref in tests) used as the oracle.
 * The packing buffers are static and the micro-kernel is chosen at the first
 * product (or by dpt_kern_init/dpt_kern_select): no kernel allocates, and
 * no init call is required. Not thread-safe across concurrent callers.
 * Not collective; must be called outside any OpenMP parallel region.
 */
#ifndef DPT_KERNELS_H
#define DPT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

typedef enum {
    DPT_ACT_SIGMOID = 0,
    DPT_ACT_RELU,
    DPT_ACT_TANH,
    DPT_ACT_LINEAR,
    DPT_ACT_SOFTMAX
} DptAct;

/* Chooses the micro-kernel and the rows of A a block (idempotent). */
DptStatus dpt_kern_init(void);
void dpt_kern_free(void);
/* Selects a micro-kernel by name ("avx512", "avx2", "generic"); returns 0 if
 * this CPU cannot run it (the best one available is then in use). The
 * environment variable DPT_KERNEL does the same at start-up. */
int dpt_kern_select(const char *name);
/* Name of the micro-kernel chosen at run time ("avx512", "avx2", "generic", "cblas"). */
const char *dpt_kern_name(void);
/* Where the chosen kernel reads W in place (see kernels.c): 0 nowhere, 1 in
 * small products (the forward product up to 32 rows, the input gradient up
 * to 16), 2 in the forward product of any batch too (DPT_W_IN_PLACE=0/1
 * selects 0/2 instead of the default). */
int dpt_kern_w_in_place(void);
/* The rows of A the products pack per block (MC; it does not change a bit
 * of any result): from the L2's size unless DPT_MC gives it; *from (if not
 * NULL) says where it came from. The setter (tests) clamps to the buffers;
 * call it before any dpt_kern_solo_floats whose buffers are still in use. */
#define DPT_MC_EXPECTED "a whole number from 16 to 1024"   /* what DPT_MC must be (kernels.c checks the bounds) */
typedef enum {
    DPT_MC_DEFAULT,   /* the L2's size unknown */
    DPT_MC_L2,        /* an eighth of the L2 */
    DPT_MC_ENV,       /* DPT_MC */
    DPT_MC_ENV_BAD,   /* DPT_MC was not DPT_MC_EXPECTED: ignored */
    DPT_MC_SET        /* dpt_kern_set_block_rows */
} DptBlockRowsFrom;
size_t dpt_kern_block_rows(DptBlockRowsFrom *from);
void dpt_kern_set_block_rows(size_t rows);
/* Which micro-panel each thread of a product keeps in L1 (it does not
 * change a bit of any result): DPT_LOOP_A, a panel of MR rows of A across
 * B panels of the thread's own (each thread packs and computes whole B
 * panels), where a B panel (256 x NR floats) would take more than half of
 * the L1d; otherwise DPT_LOOP_B, a B panel across all A panels, the tiles
 * shared out over the threads. DPT_LOOP=a|b overrides; *why (if not NULL)
 * says where the choice came from, *env_bad (if not NULL) whether DPT_LOOP
 * was set to something else (and ignored). The setter (tests): DPT_LOOP_A
 * or DPT_LOOP_B, anything else back to the rule. */
typedef enum { DPT_LOOP_B, DPT_LOOP_A } DptLoop;
DptLoop dpt_kern_loop(const char **why, int *env_bad);
void dpt_kern_set_loop(int loop);
/* A thread of a caller's parallel region may run products on its own:
 * between dpt_kern_solo_begin(buf) and dpt_kern_solo_end() on that thread,
 * every product it calls packs into buf (dpt_kern_solo_floats() floats,
 * 64-byte aligned, the thread's alone) and runs without a team, so that the
 * threads of the region can each compute their own rows at once. The same
 * bits as the product on a team. Call dpt_kern_solo_floats before the
 * region (it settles the kernel choice). */
size_t dpt_kern_solo_floats(void);
void dpt_kern_solo_begin(float *buf);
void dpt_kern_solo_end(void);
/* Micro-kernels by level of availability: 0 "generic" (every machine), 1
 * "avx2", 2 "avx512". The level of a name (-1: not one of ours, e.g. cblas),
 * and the name of a level. */
int dpt_kern_level(const char *name);
const char *dpt_kern_level_name(int level);

/* The products' own clock: with timing on, the seconds this process spent
 * in forward products, weight gradients (float and fixed point) and input
 * gradients since the start, in t[DPT_KT_*] (off by default; the trainer
 * turns it on for its steps). */
enum { DPT_KT_FORWARD, DPT_KT_WGRAD, DPT_KT_IGRAD, DPT_KT_COUNT };
void dpt_kern_timing(int on);
void dpt_kern_times(double t[DPT_KT_COUNT]);

/* C[M,N] (+)= A[M,K] * B[K,N]. A's element (i,k) is A[i*rsa + k*csa], B's (k,j)
 * is B[k*rsb + j*csb]; C is row-major with leading dimension ldc. With
 * accumulate = 0, C is overwritten. */
void dpt_gemm(float *C, size_t ldc, int accumulate,
              const float *A, size_t rsa, size_t csa,
              const float *B, size_t rsb, size_t csb,
              size_t M, size_t N, size_t K);

/* Z[n,out] = X[n,in] * W[out,in]^T + b[out]  (forward, before the activation) */
void dpt_kern_forward(float *restrict Z, const float *restrict X, const float *restrict W,
                      const float *restrict b, size_t n, size_t in, size_t out);
/* A[n,out] = f(X[n,in] * W[out,in]^T + b[out]), the bias and the activation
 * applied in one pass over each row after the product; the pre-activations
 * are also stored in zsave[n,out] when it is not NULL (the output layer's
 * costs are computed from them). */
void dpt_kern_forward_act(float *restrict A, float *restrict zsave, const float *restrict X, const float *restrict W,
                          const float *restrict Wp, const float *restrict b, DptAct f, size_t n, size_t in,
                          size_t out);
/* Columns [c0, c1) of dpt_kern_forward_act's A (no zsave; not softmax, which
 * needs whole rows), A's rows lda apart: the ranks of a node each compute
 * their units of a layer over all the node's rows. Bitwise the same
 * elements as the whole product. */
void dpt_kern_forward_act_cols(float *restrict A, size_t lda, const float *restrict X, const float *restrict W,
                               const float *restrict b, DptAct f, size_t n, size_t in, size_t c0, size_t c1);
/* dW[out,in] (+)= D[n,out]^T * A[n,in]   (weight gradient, summed over samples) */
void dpt_kern_weight_grad(float *restrict dW, int accumulate, const float *restrict D,
                          const float *restrict A, size_t n, size_t in, size_t out);
/* db[out] (+)= sum_r D[r,out]   (bias gradient; rows summed in order 0..n-1) */
void dpt_kern_bias_grad(float *restrict db, int accumulate, const float *restrict D,
                        size_t n, size_t out);
/* dA[n,in] = D[n,out] * W[out,in]   (error propagated to the layer's input) */
void dpt_kern_input_grad(float *restrict dA, const float *restrict D, const float *restrict W,
                         const float *restrict Wp, size_t n, size_t in, size_t out);
/* Columns [c0, c1) of dA = (D W) times f'(A) elementwise (the errors of a
 * hidden layer whose activations are A), dA's and A's rows lda apart, D's
 * ldd: the ranks of a node each compute their units over all the node's
 * rows. Bitwise dpt_kern_input_grad then dpt_kern_act_backward. */
void dpt_kern_input_grad_act_cols(float *restrict dA, size_t lda, const float *restrict D, size_t ldd,
                                  const float *restrict W, const float *restrict A, DptAct f, size_t n, size_t in,
                                  size_t out, size_t c0, size_t c1);

/* W kept packed. The two products above read W through packed panels
 * unless they read it in place; Wp (NULL: pack at each call) is a copy of W
 * already in those panels, kept by dpt_kern_wpack: fwd = 1 for the forward
 * product's copy, 0 for the input gradient's. The results are bitwise those
 * without it.
 *   dpt_kern_wpack_floats: the copy's size in floats for a product of `rows`
 *     rows (0 where such a product reads W in place, or with a BLAS); the
 *     copy must start zeroed (its padding is never written).
 *   dpt_kern_wpack: elements [lo, hi) of W (row-major, flat) into the copy;
 *     disjoint ranges may be packed by different callers (ranks sharing the
 *     copy), all of them before the next product reads it. */
size_t dpt_kern_wpack_floats(size_t in, size_t out, int fwd, size_t rows);
/* The chosen kernel's panel width (the copies' layout depends on it). */
int dpt_kern_panel_width(void);
/* The chosen kernel's panel height: a team's weight gradient and forward
 * product give each thread whole panels of this many of a layer's units. */
int dpt_kern_panel_rows(void);
void dpt_kern_wpack(float *restrict wp, int fwd, const float *restrict W, size_t in, size_t out, size_t lo,
                    size_t hi);

/* Rows kept packed, for the node-sliced weight gradient (step.h): a K x N
 * row-major operand (a layer's input activations over a node's K rows)
 * packed as the weight gradient's B, each caller packing its own rows.
 *   dpt_kern_rowpack_floats: the copy's size in floats, for any kernel
 *     (0 with a BLAS: no such path); the copy need not start zeroed.
 *   dpt_kern_rowpack: rows [r0, r1) (rows[(r - r0) * N + c]) into the copy
 *     of a K-row operand; block: 0 for the float product, else the
 *     deterministic block (its slabs are whole blocks). Disjoint row ranges
 *     may be packed by different callers before the products read it.
 *   dpt_kern_weight_grad_rows: dW[m,in] (+)= D[n, 0..m)^T * B, D's rows ldd
 *     apart (the columns of a slice of the layer's units), B the copy of
 *     n rows: each element bitwise that of dpt_kern_weight_grad over the
 *     same n rows (the same 256-slabs, whatever part of dW is computed).
 *   dpt_kern_weight_grad_rows_fixed: the same in fixed point (block as in
 *     dpt_kern_weight_grad_fixed; the copy packed with that block).
 *   dpt_kern_bias_grad_cols(_fixed): the bias gradients of m units whose
 *     errors are D's first m columns, rows ldd apart. */
size_t dpt_kern_rowpack_floats(size_t K, size_t N);
void dpt_kern_rowpack(float *restrict bp, const float *restrict rows, size_t K, size_t N, size_t r0, size_t r1,
                      size_t block);
void dpt_kern_weight_grad_rows(float *restrict dW, int accumulate, const float *restrict D, size_t ldd,
                               const float *restrict Bp, size_t n, size_t in, size_t m);
void dpt_kern_weight_grad_rows_fixed(int64_t *restrict dWq, int accumulate, double scale, const float *restrict D,
                                     size_t ldd, const float *restrict Bp, size_t n, size_t in, size_t m,
                                     size_t block);
/* dpt_kern_weight_grad_rows_fixed's sums over one slab (n <=
 * dpt_kern_fixed_float_rows(block)) as floats, as dpt_kern_weight_grad_fixed_float. */
void dpt_kern_weight_grad_rows_fixed_float(float *restrict dW, double scale, const float *restrict D, size_t ldd,
                                           const float *restrict Bp, size_t n, size_t in, size_t m, size_t block);
void dpt_kern_bias_grad_cols(float *restrict db, int accumulate, const float *restrict D, size_t ldd, size_t n,
                             size_t out);
void dpt_kern_bias_grad_cols_fixed(int64_t *restrict dbq, int accumulate, double scale, const float *restrict D,
                                   size_t ldd, size_t n, size_t out, size_t block);

/* Deterministic-mode weight gradient, in 64-bit fixed point:
 *   dWq[out,in] (+)= sum over blocks b of llrint(scale * sum_{r in b} D[r,out] A[r,in])
 * where the rows 0..n-1 are cut into consecutive blocks of `block` rows (the
 * last may be shorter) and each block's float sum is computed in a fixed
 * order. Integer addition is associative, so the total is the same however
 * the blocks are spread over ranks and threads. block <= 256; scale is a
 * power of two (scale * a float is then exact, and rounded once). */
void dpt_kern_weight_grad_fixed(int64_t *restrict dWq, int accumulate, double scale, const float *restrict D,
                                const float *restrict A, size_t n, size_t in, size_t out, size_t block);
/* The same sums over n <= dpt_kern_fixed_float_rows(block) rows (one slab),
 * stored as floats: dW[o,i] = (float)((double)dWq[o,i] / scale), bitwise
 * dpt_kern_weight_grad_fixed then dpt_kern_fixed_to_float, without writing
 * or reading the int64 sums (where no other rank adds to them). */
size_t dpt_kern_fixed_float_rows(size_t block);
void dpt_kern_weight_grad_fixed_float(float *restrict dW, double scale, const float *restrict D,
                                      const float *restrict A, size_t n, size_t in, size_t out, size_t block);
/* dbq[out] (+)= sum over blocks of llrint(scale * sum_{r in block} D[r,out]) */
void dpt_kern_bias_grad_fixed(int64_t *restrict dbq, int accumulate, double scale, const float *restrict D,
                              size_t n, size_t out, size_t block);

/* dst[i] = (float)((double)q[i] * inv_scale) for i < n: the fixed-point sums
 * back to float (the int64 rounded to double, the power of two applied, then
 * rounded to float), vectorised where the CPU can; bitwise the scalar
 * expression. */
void dpt_kern_fixed_to_float(float *restrict dst, const int64_t *restrict q, size_t n, double inv_scale);

/* A[n,m] := f(A) in place; softmax is taken over each row. */
void dpt_kern_activate(float *restrict A, DptAct f, size_t n, size_t m);
/* D[n,m] *= f'(z), expressed through the activation a = f(z) (sigmoid: a(1-a),
 * tanh: 1-a^2, relu: a>0, linear: 1). Not for softmax. */
void dpt_kern_act_backward(float *restrict D, const float *restrict A, DptAct f, size_t n, size_t m);

/* Naive twins, for tests. */
void dpt_kern_forward_ref(float *Z, const float *X, const float *W, const float *b,
                          size_t n, size_t in, size_t out);
void dpt_kern_weight_grad_ref(float *dW, int accumulate, const float *D, const float *A,
                              size_t n, size_t in, size_t out);
void dpt_kern_input_grad_ref(float *dA, const float *D, const float *W, size_t n, size_t in, size_t out);

#endif
