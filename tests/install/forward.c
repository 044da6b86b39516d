/* A program built against the installed library (pkg-config or
 * find_package): loads a model file and a dataset, runs the forward pass
 * over the test split (else train) and prints, one line per sample, the
 * predicted class and the outputs. No init call: the library initialises
 * itself. Usage: forward MODEL.h5 DATA.h5 */
#include <stdio.h>
#include <stdlib.h>

#include "dptrain/ckpt.h"
#include "dptrain/data.h"
#include "dptrain/loss.h"
#include "dptrain/net.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: forward MODEL.h5 DATA.h5\n");
        return 2;
    }
    DptArch arch;
    float *params = NULL;
    if (dpt_ckpt_load_model(argv[1], &arch, &params) != DPT_OK) {
        fprintf(stderr, "forward: %s\n", dpt_err_message());
        return 3;
    }
    const char *split = "test";
    DptSplitInfo info;
    if (dpt_data_probe(argv[2], split, 0, &info) != DPT_OK || !info.present) {
        split = "train";
        if (dpt_data_probe(argv[2], split, 1, &info) != DPT_OK) {
            fprintf(stderr, "forward: %s\n", dpt_err_message());
            return 3;
        }
    }
    void *mem = malloc(dpt_data_bytes(&info));
    DptSplit s;
    if (!mem || dpt_data_load(argv[2], split, &info, mem, &s) != DPT_OK) {
        fprintf(stderr, "forward: %s\n", dpt_err_message());
        return 3;
    }
    DptWork w;
    const size_t k = (size_t)arch.sizes[arch.n_layers], cap = 256;
    if (dpt_work_init(&w, &arch, cap) != DPT_OK)
        return 5;
    for (size_t r = 0; r < info.n; r += cap) {
        size_t m = info.n - r < cap ? info.n - r : cap;
        dpt_data_gather(w.act[0], w.y, w.cls, &s, NULL, r, m, k);
        dpt_net_forward(&w, &arch, params, m);
        for (size_t i = 0; i < m; i++) {
            const float *a = w.act[arch.n_layers] + i * k;
            printf("%d", dpt_loss_predict(a, k));
            for (size_t j = 0; j < k; j++)
                printf(" %.9g", a[j]);
            printf("\n");
        }
    }
    dpt_work_free(&w);
    free(mem);
    free(params);
    return 0;
}
