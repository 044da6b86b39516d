/* Our gradient reduction (dpt_dist_sum_floats, the call a training step
 * makes) against a bare MPI_Allreduce of the same bytes, alternating, on the
 * ranks of the launch. Prints a line per size: bytes, median microseconds of
 * each, and the ratio. Usage: mpiexec -n 2 bench_allreduce [REPS] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/dist.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    DptDist d;
    if (dpt_dist_init(&d, &argc, &argv) != DPT_OK)
        return 1;
    int reps = argc > 1 ? atoi(argv[1]) : 50;
    /* [784,30,10], [784,100,10], [784,1024,1024,10] gradients + 8 control words */
    const size_t sizes[] = {23860 + 8, 79510 + 8, 1863690 + 8};
    float *buf = malloc(sizeof(float) * sizes[2]);
    double *ours = malloc(sizeof(double) * (size_t)reps), *bare = malloc(sizeof(double) * (size_t)reps);
    if (d.rank == 0)
        printf("{\"ranks\":%d,\"sizes\":[", d.world_size);
    for (int s = 0; s < 3; s++) {
        size_t n = sizes[s];
        for (size_t i = 0; i < n; i++)
            buf[i] = (float)(i % 7);
        for (int r = -5; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            dpt_dist_sum_floats(&d, buf, n);
            double t1 = MPI_Wtime();
            MPI_Barrier(MPI_COMM_WORLD);
            double t2 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t3 = MPI_Wtime();
            if (r >= 0) {
                ours[r] = t1 - t0;
                bare[r] = t3 - t2;
            }
        }
        qsort(ours, (size_t)reps, sizeof *ours, cmp);
        qsort(bare, (size_t)reps, sizeof *bare, cmp);
        double o = ours[reps / 2], b = bare[reps / 2];
        if (d.rank == 0)
            printf("%s{\"bytes\":%zu,\"ours_us\":%.2f,\"bare_us\":%.2f,\"ratio\":%.4f}", s ? "," : "", n * 4, o * 1e6,
                   b * 1e6, o / b);
    }
    if (d.rank == 0)
        printf("]}\n");
    free(buf);
    free(ours);
    free(bare);
    dpt_dist_finalize(&d);
    return 0;
}
