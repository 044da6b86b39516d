#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#ifndef MR
#define MR 12
#endif
__attribute__((target("avx512f"),noinline))
static void k(size_t kc,const float*restrict a,const float*restrict b,float*restrict c,size_t ldc){
  __m512 c0[MR],c1[MR];
  for(int r=0;r<MR;r++){c0[r]=_mm512_setzero_ps();c1[r]=_mm512_setzero_ps();}
  for(size_t k=0;k<kc;k++){__m512 b0=_mm512_loadu_ps(b),b1=_mm512_loadu_ps(b+16);
    #pragma GCC unroll 16
    for(int r=0;r<MR;r++){__m512 av=_mm512_set1_ps(a[r]);c0[r]=_mm512_fmadd_ps(av,b0,c0[r]);c1[r]=_mm512_fmadd_ps(av,b1,c1[r]);}
    a+=MR;b+=32;}
  for(int r=0;r<MR;r++){_mm512_storeu_ps(c+r*ldc,_mm512_add_ps(_mm512_loadu_ps(c+r*ldc),c0[r]));_mm512_storeu_ps(c+r*ldc+16,_mm512_add_ps(_mm512_loadu_ps(c+r*ldc+16),c1[r]));}
}
int main(int argc,char**argv){
  size_t kc=argc>1?atoi(argv[1]):256, nt=argc>2?atoi(argv[2]):8;
  float *a=aligned_alloc(64,MR*kc*4*nt),*b=aligned_alloc(64,32*kc*4),*c=aligned_alloc(64,MR*32*4*nt);
  for(size_t i=0;i<MR*kc*nt;i++)a[i]=1e-3f*(i%7);for(size_t i=0;i<32*kc;i++)b[i]=1e-3f*(i%5);for(size_t i=0;i<MR*32*nt;i++)c[i]=0;
  long reps=2000000/(kc*nt)+1;double best=0;
  for(int r=0;r<5;r++){double t0=now();for(long i=0;i<reps;i++)for(size_t p=0;p<nt;p++)k(kc,a+p*MR*kc,b,c+p*MR*32,32);
    double g=2.0*MR*32*kc*reps*nt/(now()-t0)/1e9;if(g>best)best=g;}
  printf("MR %d kc %zu tiles %zu: %.1f GFLOP/s (%g)\n",MR,kc,nt,best,c[3]);
}
