/* Tile shapes for the AVX-512 packed kernel, measured alone (2026-11-29): a
 * 1008 x 1024 x 1024 product on one thread in the A-panel loop (each A panel
 * across 16 B panels of 256 x 32), k unrolled by 4, MR = 8, 12, 14, 16 rows;
 * GFLOP/s of the tiles alone (packing not timed). Build: gcc -O2 tile_rows.c;
 * argument: the A block rows (MC). */
/* 1008 x 1024 x 1024 product, loop A (A panel across 16 B panels), MR = 8/12/14 x NR = 32, kc 256, mc ~256 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define NR 32
#define KC 256
#define ROW(r) { __m512 av = _mm512_set1_ps(a[(o)*MR + r]); c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]); c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]); }
#define KER(NAME, MRV) \
__attribute__((target("avx512f"))) static void NAME(size_t kc, const float *restrict a, const float *restrict b, float *restrict cc, size_t ldc, int acc) { \
  enum { MR = MRV }; __m512 c[MR][2]; for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps(); \
  for (size_t k = 0; k < kc; k += 4) { \
    for (int o = 0; o < 4; o++) { __m512 b0 = _mm512_loadu_ps(b + o*NR), b1 = _mm512_loadu_ps(b + o*NR + 16); \
      _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) { __m512 av = _mm512_set1_ps(a[o*MR + r]); c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]); c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]); } } \
    a += 4*MR; b += 4*NR; } \
  for (int r = 0; r < MR; r++) { float *cr = cc + r*ldc; \
    if (acc) { c[r][0] = _mm512_add_ps(c[r][0], _mm512_loadu_ps(cr)); c[r][1] = _mm512_add_ps(c[r][1], _mm512_loadu_ps(cr+16)); } \
    _mm512_storeu_ps(cr, c[r][0]); _mm512_storeu_ps(cr+16, c[r][1]); } }
KER(k8, 8) KER(k12, 12) KER(k14, 14) KER(k16,16)
typedef void (*K)(size_t, const float *, const float *, float *, size_t, int);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
  int M = 1008, N = 1024, Kd = 1024, mc = argc > 1 ? atoi(argv[1]) : 256;
  float *A = aligned_alloc(64, 4ul*M*Kd), *B = aligned_alloc(64, 4ul*Kd*N), *C = aligned_alloc(64, 4ul*M*N);
  for (long i = 0; i < (long)M*Kd; i++) A[i] = rand() / (float)RAND_MAX;
  for (long i = 0; i < (long)Kd*N; i++) B[i] = rand() / (float)RAND_MAX;
  float *pa = aligned_alloc(64, 4ul*(mc+16)*KC), *pb = aligned_alloc(64, 4ul*KC*N);
  struct { K k; int mr; const char *n; } ks[] = {{k8, 8, "8x32"}, {k12, 12, "12x32"}, {k14, 14, "14x32"}, {k16, 16, "16x32"}};
  for (int rep = 0; rep < 5; rep++) for (int v = 0; v < 4; v++) {
    K ker = ks[v].k; int mr = ks[v].mr; int mcv = mc / mr * mr;
    double tk = 0;
    for (int it = 0; it < 5; it++)
    for (int pc = 0; pc < Kd; pc += KC) {
      for (int q = 0; q < N / NR; q++) for (int k = 0; k < KC; k++) memcpy(pb + (size_t)q*KC*NR + k*NR, B + (size_t)(pc+k)*N + q*NR, NR*4);
      for (int ic = 0; ic < M; ic += mcv) { int m = M - ic < mcv ? M - ic : mcv; int np = (m + mr - 1) / mr;
        for (int p = 0; p < np; p++) for (int k = 0; k < KC; k++) for (int r = 0; r < mr; r++) { int i = ic + p*mr + r; pa[(size_t)p*mr*KC + k*mr + r] = i < M ? A[(size_t)i*Kd + pc + k] : 0; }
        double t1 = now(); for (int qc = 0; qc < N/NR; qc += 16) for (int p = 0; p < np; p++) for (int q = qc; q < qc + 16; q++) {
          if (ic + p*mr + mr > M) continue;
          ker(KC, pa + (size_t)p*mr*KC, pb + (size_t)q*KC*NR, C + (size_t)(ic + p*mr)*N + q*NR, N, pc > 0); } tk += now() - t1; } }
    double t = tk / 5; printf("%s mc %d: %.1f GFLOP/s\n", ks[v].n, mcv, 2.0*M*N*Kd/t/1e9);
  }
}
