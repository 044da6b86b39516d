/*
 * rng: our own seeded pseudo-random generator (xoshiro256**, seeded through
 * splitmix64), with uniform, normal and bounded integers and Fisher-Yates
 * permutations. Identical on every platform: no rand(), no libc state.
 *
 * Streams are derived, not continued: the permutation of epoch e comes from
 * dpt_rng_stream(seed, DPT_STREAM_SHUFFLE, e), so every rank computes it alone
 * and a resumed run needs only (seed, epoch, step).
 */
#ifndef DPT_RNG_H
#define DPT_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4]; /* xoshiro256** state; never all zero */
} DptRng;

enum { DPT_STREAM_INIT = 1, DPT_STREAM_SHUFFLE = 2, DPT_STREAM_PROJECT = 3 };

void dpt_rng_seed(DptRng *rng, uint64_t seed);
/* A generator for (seed, stream, index), independent of any other. */
void dpt_rng_stream(DptRng *rng, uint64_t seed, uint64_t stream, uint64_t index);

uint64_t dpt_rng_next(DptRng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double dpt_rng_uniform(DptRng *rng);
/* Standard normal (Box-Muller, one value per call: no hidden cached state). */
double dpt_rng_normal(DptRng *rng);
/* Uniform integer in [0, n), unbiased (Lemire's method); n > 0. */
uint64_t dpt_rng_below(DptRng *rng, uint64_t n);
/* perm[0..n) := a uniformly random permutation of 0..n-1 (Fisher-Yates). */
void dpt_rng_permutation(DptRng *rng, uint32_t *perm, size_t n);

/* 64-bit FNV-1a over bytes, continuing from h (start with DPT_HASH_INIT). */
#define DPT_HASH_INIT 0xcbf29ce484222325ULL
uint64_t dpt_hash_bytes(uint64_t h, const void *data, size_t n);

#endif
