/*
 * dptrain: data-parallel training of multilayer perceptrons.
 *
 * main reads as a table of contents: MPI up, the crash net for HDF5 files,
 * run the command, report the one error line (once, from the rank that
 * holds it), MPI down, exit status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/cli.h"
#include "dptrain/data.h"
#include "dptrain/dist.h"
#include "dptrain/kernels.h"
#include "dptrain/log.h"
#include "dptrain/status.h"
#include "dptrain/stop.h"

int main(int argc, char **argv)
{
    DptStatus st;
    if (dpt_cli_early(argc, argv, &st))
        return (int)st;

    /* A stop request may come while MPI starts (SLURM's time-limit warning,
     * scancel): from here it is a request, not the end of the process. */
    DptStopGuard stop;
    int training = strcmp(argv[1], "train") == 0;
    if (training)
        dpt_stop_install(&stop, 30.0, 0);
    DptDist dist;
    st = dpt_dist_init(&dist, &argc, &argv);
    if (st != DPT_OK) {
        dpt_log_error(dpt_err_message());
        return (int)st;
    }
    dpt_log_init(dist.rank, dist.world_size, 0, 0);
    dpt_h5_net_install(dpt_dist_abort, dist.node_rank != 0);   /* after MPI_Init: Open MPI's handlers stay behind it */

    st = dpt_cli_run(argc, argv, &dist);

    if (st != DPT_OK) {
        int reporter = dpt_dist_reporter();
        if (reporter == dist.rank || (reporter < 0 && dpt_err_message()[0])) {
            if (st == DPT_ESTOPPED || st == DPT_EDIFFER)
                fprintf(stderr, "dptrain: %s\n", dpt_err_message());
            else
                dpt_log_error(dpt_err_message()[0] ? dpt_err_message() : dpt_status_name(st));
            if (getenv("DPT_DEBUG") && dpt_err_trace()[0])
                fprintf(stderr, "dptrain: trace: %s\n", dpt_err_trace());
        }
    }
    dpt_kern_free();
    dpt_dist_finalize(&dist);
    if (training)
        dpt_stop_restore(&stop);
    return (int)st;
}
