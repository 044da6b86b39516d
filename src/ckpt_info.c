/* dptrain info on a model or checkpoint file (part of the checkpoint module):
 * architecture, parameters, training state, the stored configuration and
 * metrics history. */
#include "dptrain/ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_format.h"
#include "dptrain/data.h"
#include "h5util.h"

/* The training state of a checkpoint, in two lines (what cannot be read shows
 * as -1 or ?). */
static void describe_train(hid_t f, FILE *out)
{
    static const char *const name[] = {"epoch", "step",  "global_step", "batch",
                                        "seed",  "ranks", "threads",     "deterministic"};
    int64_t v[8] = {-1, -1, -1, -1, -1, 0, 0, 0};
    char kind[32] = "?";
    hid_t g = H5Gopen2(f, G_TRAIN, H5P_DEFAULT), og = H5Gopen2(f, G_OPTIMIZER, H5P_DEFAULT);
    for (int i = 0; g >= 0 && i < 8; i++)
        dpt_h5_read_attr_int64(g, name[i], &v[i]);
    if (g >= 0)
        H5Gclose(g);
    if (og >= 0) {
        dpt_h5_read_attr_string(og, "kind", kind, sizeof kind);
        H5Gclose(og);
    }
    dpt_err_clear();
    fprintf(out, "  training state: epoch %lld, step %lld of it, global step %lld; batch %lld, seed %lld, %s mode\n",
            (long long)v[0] + 1, (long long)v[1], (long long)v[2], (long long)v[3], (long long)v[4],
            v[7] ? "deterministic" : "default");
    fprintf(out, "  optimizer %s; written by %lld rank(s) x %lld thread(s)\n", kind, (long long)v[5],
            (long long)v[6]);
}

/* The text dataset `name` of f under a heading, one indented line per line. */
static void print_text(hid_t f, const char *path, const char *name, const char *heading, FILE *out)
{
    char *text = NULL;
    if (dpt_ckpt_read_text(f, path, name, &text) == DPT_OK && text) {
        fprintf(out, "  %s:\n", heading);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
            fprintf(out, "    %s\n", line);
    }
    free(text);
    dpt_err_clear();
}

DptStatus dpt_ckpt_describe(const char *path, FILE *out)
{
    DptStatus st = DPT_OK;
    hid_t f = H5I_INVALID_HID;
    int is_ckpt = 0;
    char ver[64] = "?", layers[1024];
    DptArch arch;
    DPT_TRY(dpt_h5_open_read(path, &f));
    DPT_TRY_GOTO(st, dpt_ckpt_check_format(f, path, &is_ckpt), done);
    DPT_TRY_GOTO(st, dpt_ckpt_read_arch(f, path, &arch), done);
    if (dpt_h5_read_attr_string(f, A_VERSION, ver, sizeof ver) != DPT_OK)
        dpt_err_clear();
    dpt_arch_format(&arch, layers, sizeof layers);
    fprintf(out, "%s: dptrain %s (format version %d, written by dptrain %s)\n", path,
            is_ckpt ? "checkpoint" : "model", DPT_FORMAT_VERSION, ver);
    fprintf(out, "  layers %s, hidden %s, output %s, cost %s\n", layers, dpt_act_name(arch.hidden),
            dpt_act_name(arch.output), dpt_cost_name(arch.cost));
    fprintf(out, "  parameters %zu (%.2f MiB float32)\n", arch.n_params, (double)arch.n_params * 4.0 / 1048576.0);
    dpt_data_describe_meta(path, out);
    if (is_ckpt)
        describe_train(f, out);
    print_text(f, path, G_CONFIG, "configuration", out);
    if (is_ckpt)
        print_text(f, path, D_HISTORY, "metrics (one line per epoch)", out);
done:
    H5Fclose(f);
    return st;
}
