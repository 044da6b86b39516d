/* The gradient reduction micro-benchmark: for each size, on the ranks of the
 * launch, the median time of
 *   bare: MPI_Allreduce of the floats (what Open MPI chooses),
 *   mpi:  dptrain's reducer on its flat path (the same MPI_Allreduce),
 *   shm:  dptrain's reducer through node-shared memory (hierarchical across
 *         nodes), the contribution written into the window as backprop does,
 * each rep starting from a barrier. Sizes: the gradients of [784,30,10],
 * [784,100,10] and [784,1024,1024,10] (+ 8 control words), then 4 KiB to
 * 64 MiB by factors of 4 (up to MAX_MIB). Prints one JSON object: per size the
 * bytes, microseconds, GB/s (bytes / time) and shm/bare. "ours_us" is the
 * reduction --reduce auto takes at that size.
 * Usage: mpiexec -n P bench_allreduce [REPS] [MAX_MIB] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "dptrain/dist.h"

/* Median seconds of the reducer's finish over reps (the contribution filled first). */
static double time_reducer(const DptDist *d, DptReducer *r, size_t n, int reps, double *t)
{
    for (int k = -3; k < reps; k++) {
        float *buf = dpt_dist_reducer_begin(r);
        for (size_t i = 0; i < n; i++)
            buf[i] = (float)((i + (size_t)d->rank) % 7);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        dpt_dist_reducer_finish(r, d);
        double t1 = MPI_Wtime();
        if (k >= 0)
            t[k] = t1 - t0;
    }
    return bench_median(t, reps);
}

int main(int argc, char **argv)
{
    DptDist d;
    if (dpt_dist_init(&d, &argc, &argv) != DPT_OK)
        return 1;
    int reps0 = argc > 1 ? atoi(argv[1]) : 50;
    size_t max_mib = argc > 2 ? (size_t)atol(argv[2]) : 64;
    size_t sizes[32];
    int n_sizes = 0;
    sizes[n_sizes++] = 23860 + 8;
    sizes[n_sizes++] = 79510 + 8;
    sizes[n_sizes++] = 1863690 + 8;
    for (size_t b = 4096; b <= max_mib << 20; b *= 4)
        sizes[n_sizes++] = b / 4;
    size_t biggest = 0;
    for (int s = 0; s < n_sizes; s++)
        biggest = sizes[s] > biggest ? sizes[s] : biggest;
    float *buf = malloc(sizeof(float) * biggest);
    double *t = malloc(sizeof(double) * (size_t)reps0);
    if (d.rank == 0)
        printf("{\"ranks\":%d,\"nodes\":%d,\"sizes\":[", d.world_size, d.n_nodes);
    for (int s = 0; s < n_sizes; s++) {
        size_t n = sizes[s], bytes = n * 4;
        int reps = bytes > (16u << 20) ? (reps0 + 4) / 5 : reps0;
        for (int k = -3; k < reps; k++) {
            for (size_t i = 0; i < n; i++)
                buf[i] = (float)((i + (size_t)d.rank) % 7);
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t1 = MPI_Wtime();
            if (k >= 0)
                t[k] = t1 - t0;
        }
        double bare = bench_median(t, reps);
        DptReducer *flat = NULL, *shm = NULL;
        double mpi = -1, sh = -1;
        if (dpt_dist_reducer_init(&flat, &d, n, 0, NULL, 1, 0, 0) == DPT_OK)
            mpi = time_reducer(&d, flat, n, reps, t);
        dpt_dist_reducer_free(&flat);
        int shared = 0;
        if (dpt_dist_reducer_init(&shm, &d, n, 0, NULL, 1, 1, 0) == DPT_OK) {
            shared = dpt_dist_reducer_shared(shm);
            sh = time_reducer(&d, shm, n, reps, t);
        }
        dpt_dist_reducer_free(&shm);
        /* what --reduce auto takes */
        double ours = shared ? sh : mpi;
        if (d.rank == 0)
            printf("%s{\"bytes\":%zu,\"bare_us\":%.2f,\"mpi_us\":%.2f,\"shm_us\":%.2f,\"shared\":%d,\"ours_us\":%.2f,"
                   "\"bare_gbs\":%.3f,\"shm_gbs\":%.3f,\"ratio\":%.4f,\"shm_over_bare\":%.4f}",
                   s ? "," : "", bytes, bare * 1e6, mpi * 1e6, sh * 1e6, shared, ours * 1e6, bytes / bare * 1e-9,
                   bytes / sh * 1e-9, ours / bare, sh / bare);
        fflush(stdout);
    }
    if (d.rank == 0)
        printf("]}\n");
    free(buf);
    free(t);
    dpt_dist_finalize(&d);
    return 0;
}
