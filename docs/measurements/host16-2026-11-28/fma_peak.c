/* FMA throughput probe: 24 independent accumulators, zmm (AVX-512) and ymm (AVX2). */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
__attribute__((target("avx512f"))) static double z(long n){
  __m512 a[24]; __m512 x=_mm512_set1_ps(1.0000001f), y=_mm512_set1_ps(0.9999999f);
  for(int i=0;i<24;i++) a[i]=_mm512_set1_ps((float)i);
  double t=now();
  for(long k=0;k<n;k++){
#define F(i) a[i]=_mm512_fmadd_ps(a[i],x,y);
    F(0)F(1)F(2)F(3)F(4)F(5)F(6)F(7)F(8)F(9)F(10)F(11)F(12)F(13)F(14)F(15)F(16)F(17)F(18)F(19)F(20)F(21)F(22)F(23)
  }
  t=now()-t; float s=0; for(int i=0;i<24;i++){float b[16];_mm512_storeu_ps(b,a[i]);s+=b[0];}
  if(s==1.234f)puts("");
  return n*24.0*16*2/t/1e9;
}
__attribute__((target("avx2,fma"))) static double yy(long n){
  __m256 a[12]; __m256 x=_mm256_set1_ps(1.0000001f), y=_mm256_set1_ps(0.9999999f);
  for(int i=0;i<12;i++) a[i]=_mm256_set1_ps((float)i);
  double t=now();
  for(long k=0;k<n;k++){
#define G(i) a[i]=_mm256_fmadd_ps(a[i],x,y);
    G(0)G(1)G(2)G(3)G(4)G(5)G(6)G(7)G(8)G(9)G(10)G(11)
  }
  t=now()-t; float s=0; for(int i=0;i<12;i++){float b[8];_mm256_storeu_ps(b,a[i]);s+=b[0];}
  if(s==1.234f)puts("");
  return n*12.0*8*2/t/1e9;
}
int main(void){
  for(int r=0;r<3;r++) printf("fma peak 1 core: zmm %.1f GFLOP/s, ymm %.1f GFLOP/s\n", z(100000000L), yy(200000000L));
  return 0;
}
