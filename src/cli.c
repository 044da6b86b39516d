#include "dptrain/cli.h"
#include <errno.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/ckpt.h"
#include "dptrain/config.h"
#include "dptrain/convert.h"
#include "dptrain/data.h"
#include "dptrain/kernels.h"
#include "dptrain/log.h"
#include "dptrain/trace.h"
#include "dptrain/infer.h"
#include "dptrain/train.h"

static const char usage[] =
    "Usage: dptrain COMMAND [options]\n\n"
    "Commands:\n"
    "  train    [--config FILE.ini] [options]           train a network (data-parallel under mpirun)\n"
    "  eval     --model FILE.h5 --data FILE.h5          loss and accuracy of a model or checkpoint\n"
    "  predict  --model FILE.h5 --data FILE.h5 --out FILE.h5\n"
    "  convert  idx|csv ... -o FILE.h5                  make a dataset file from IDX or CSV files\n"
    "  info     FILE.h5                                 describe a dataset, model or checkpoint\n"
    "  compare  A.h5 B.h5 [--atol X] [--rtol Y]         are two models' parameters the same (bitwise by default)?\n\n"
    "'dptrain COMMAND --help' gives the options of each command.\n";

static const char eval_help[] =
    "Usage: dptrain eval --model FILE.h5 --data FILE.h5 [--split train|test|validation]\n"
    "Loss and accuracy of a model (or checkpoint) on one split of a dataset (default: test, else train).\n"
    "Runs sharded over the ranks of an MPI launch.\n";
static const char predict_help[] =
    "Usage: dptrain predict --model FILE.h5 --data FILE.h5 --out FILE.h5 [--split NAME]\n"
    "Writes /predictions/output [N, K] and /predictions/class [N] for one split (default: test, else train).\n";
static const char convert_help[] =
    "Usage: dptrain convert idx TRAIN_IMAGES TRAIN_LABELS [TEST_IMAGES TEST_LABELS] -o FILE.h5 [--description TEXT]\n"
    "       dptrain convert csv TRAIN.csv [TEST.csv] -o FILE.h5 [options]\n"
    "IDX files (MNIST format, gzip or plain) become uint8 x with scale 1/255 and integer labels.\n"
    "CSV tables as pandas or a spreadsheet write them: separator , ; or tab (detected), quoted fields, a header\n"
    "line (detected), pandas' unnamed index column (dropped). Every column but the label (and index) is a feature.\n"
    "  --label-col N|NAME|last|none  the label column: 0-based number, header name, last (default), or none\n"
    "                                (inputs only, for predict)\n"
    "  --index-col N|NAME            a column to drop (an id or row number)\n"
    "  --header, --no-header         whether the first line is a header (default: detected)\n"
    "  --sep ,|;|tab|'|'             the separator (default: detected from the first line)\n"
    "  --decimal ,                   numbers with a decimal comma (4,5), as European spreadsheets write them\n"
    "  --regression                  labels are float targets (y [N, 1]) even when they are whole numbers;\n"
    "                                otherwise whole numbers >= 0 are classes, other numbers targets, and text\n"
    "                                labels class names (sorted; label i is /class_names[i])\n"
    "  --split A,B,C                 shuffle the training file (--seed S, default 0) and cut it into train,\n"
    "                                validation and test fractions\n"
    "  --standardize                 x = (x - mean) / std with the training rows' statistics (stored in\n"
    "                                /standardize), applied to every split\n"
    "  --standardize-from DATA.h5    use the statistics stored in another dataset (for new inputs)\n"
    "  --scale S                     multiply the features by S (before standardising)\n"
    "  --description TEXT            a description attribute\n";
static const char compare_help[] =
    "Usage: dptrain compare A.h5 B.h5 [--atol X] [--rtol Y]\n"
    "Compares the parameters of two model or checkpoint files: bitwise by default, else element by element\n"
    "|a - b| <= X + Y |b|. Exit status 0 if they are the same, 9 if they differ (the largest difference and\n"
    "where it is are printed), 3 if a file cannot be read.\n";
static const char info_help[] = "Usage: dptrain info FILE.h5\nDescribes a dataset, model, checkpoint or trace file.\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

/* Where --version says the block of rows came from. */
static const char *block_rows_from(DptBlockRowsFrom from)
{
    switch (from) {
    case DPT_MC_L2: return "an eighth of the L2; DPT_MC overrides";
    case DPT_MC_ENV: return "DPT_MC";
    case DPT_MC_ENV_BAD: return "DPT_MC ignored: expected " DPT_MC_EXPECTED;
    case DPT_MC_SET: return "set by the program";
    case DPT_MC_DEFAULT: break;
    }
    return "the L2's size unknown; DPT_MC overrides";
}

int dpt_cli_early(int argc, char **argv, DptStatus *st)
{
    *st = DPT_OK;
    if (argc < 2) {
        fputs(usage, stderr);
        *st = DPT_EUSAGE;
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version") || (argc > 2 && !strcmp(argv[2], "--version"))) {
        printf("dptrain %s\n", DPT_VERSION);
        if (dpt_kern_init() == DPT_OK && !strcmp(dpt_kern_name(), "cblas")) {
            printf("kernels cblas (the products through the BLAS: built with -DDPT_BLAS=ON)\n");
        } else {
            const int wip = dpt_kern_w_in_place();
            printf("kernels %s (chosen for this CPU; DPT_KERNEL overrides)%s\n", dpt_kern_name(),
                   wip == 2 ? ", W read in place" : wip == 1 ? ", W read in place in small products" : "");
            DptBlockRowsFrom from;
            const size_t mc = dpt_kern_block_rows(&from);
            printf("blocks of %zu rows (%s)\n", mc, block_rows_from(from));
            const char *why;
            const DptLoop loop = dpt_kern_loop(&why, NULL);
            printf("tiles: each thread keeps %s in L1 (%s; DPT_LOOP=a|b overrides)\n",
                   loop == DPT_LOOP_A ? "an A panel across B panels of its own" : "a B panel across the A panels",
                   why);
        }
        dpt_err_clear();
        printf("built with %s\n", "GCC " __VERSION__);
        return 1;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 1;
    }
    if (wants_help(argc - 2, argv + 2)) {
        if (!strcmp(cmd, "train"))
            dpt_config_help(stdout);
        else if (!strcmp(cmd, "eval"))
            fputs(eval_help, stdout);
        else if (!strcmp(cmd, "predict"))
            fputs(predict_help, stdout);
        else if (!strcmp(cmd, "convert"))
            fputs(convert_help, stdout);
        else if (!strcmp(cmd, "info"))
            fputs(info_help, stdout);
        else if (!strcmp(cmd, "compare"))
            fputs(compare_help, stdout);
        else
            return 0;
        return 1;
    }
    return 0;
}

/* --name value pairs for the small commands. */
typedef struct {
    const char *name;
    const char **value;
    int flag;             /* takes no value: set to "1" */
} Opt;

static DptStatus parse_opts(const char *cmd, int argc, char **argv, Opt *opts, int n_opts, const char **positional,
                            int max_pos, int *n_pos)
{
    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] != '\0') {
            const char *name = a + (a[1] == '-' ? 2 : 1);
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            int found = 0;
            for (int j = 0; j < n_opts && !found; j++) {
                if (strlen(opts[j].name) != len || strncmp(opts[j].name, name, len) != 0)
                    continue;
                found = 1;
                if (eq) {
                    *opts[j].value = eq + 1;
                } else if (opts[j].flag) {
                    *opts[j].value = "1";
                } else {
                    if (i + 1 >= argc)
                        return dpt_err(DPT_EUSAGE, "%s: %s needs a value", cmd, a);
                    *opts[j].value = argv[++i];
                }
            }
            if (!found)
                return dpt_err(DPT_EUSAGE, "%s: unknown option '%s' (see dptrain %s --help)", cmd, a, cmd);
        } else {
            if (*n_pos >= max_pos)
                return dpt_err(DPT_EUSAGE, "%s: unexpected argument '%s'", cmd, a);
            positional[(*n_pos)++] = a;
        }
    }
    return DPT_OK;
}

static DptStatus cmd_train(int argc, char **argv, const DptDist *d)
{
    DptConfig cfg;
    dpt_config_defaults(&cfg);
    DptStatus st = dpt_dist_agree(d, dpt_config_parse(&cfg, argc, argv), NULL);
    if (st == DPT_OK)
        dpt_log_init(d->rank, d->world_size, cfg.quiet, cfg.progress);
    if (st == DPT_OK && cfg.print_config) {
        char text[8192];
        dpt_config_format(&cfg, text, sizeof text);
        if (d->rank == 0)
            fputs(text, stdout);
    } else if (st == DPT_OK) {
        st = dpt_train_run(&cfg, d, NULL, NULL);
    }
    dpt_config_free(&cfg);
    return st;
}

static DptStatus cmd_eval_predict(int argc, char **argv, const DptDist *d, int predict)
{
    const char *model = NULL, *data = NULL, *split = NULL, *out = NULL, *pos[1];
    int n_pos;
    Opt opts[] = {{"model", &model, 0}, {"data", &data, 0}, {"split", &split, 0}, {"out", &out, 0}};
    const char *cmd = predict ? "predict" : "eval";
    DptStatus st = parse_opts(cmd, argc, argv, opts, predict ? 4 : 3, pos, 0, &n_pos);
    if (st == DPT_OK && !model)
        st = dpt_err(DPT_EUSAGE, "%s: --model FILE.h5 is required", cmd);
    if (st == DPT_OK && !data)
        st = dpt_err(DPT_EUSAGE, "%s: --data FILE.h5 is required", cmd);
    if (st == DPT_OK && predict && !out)
        st = dpt_err(DPT_EUSAGE, "predict: --out FILE.h5 is required");
    DPT_TRY(dpt_dist_agree(d, st, NULL));
    dpt_log_init(d->rank, d->world_size, 0, 0);
    return predict ? dpt_predict_run(model, data, split, out, d) : dpt_eval_run(model, data, split, d);
}

/* --split a,b,c: fractions of the training file for train, validation, test. */
static DptStatus parse_split(const char *v, double f[3])
{
    char *end;
    const char *p = v;
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        f[i] = strtod(p, &end);
        if (end == p || !(f[i] >= 0 && f[i] <= 1) || (i < 2 && *end != ',') || (i == 2 && *end != '\0'))
            return dpt_err(DPT_EUSAGE, "convert csv: --split '%s': expected three fractions TRAIN,VALIDATION,TEST "
                           "that sum to 1 (e.g. 0.8,0.1,0.1)", v);
        sum += f[i];
        p = end + 1;
    }
    if (fabs(sum - 1.0) > 1e-6 || !(f[0] > 0))
        return dpt_err(DPT_EUSAGE, "convert csv: --split '%s': the fractions sum to %g and the training one must "
                       "be above 0; expected a sum of 1", v, sum);
    return DPT_OK;
}

static DptStatus cmd_convert_csv(int argc, char **argv)
{
    const char *out = NULL, *desc = NULL, *label = NULL, *index = NULL, *header = NULL, *no_header = NULL,
               *sep = NULL, *decimal = NULL, *regression = NULL, *split = NULL, *seed = NULL, *stdz = NULL, *stdz_from = NULL,
               *scale = NULL, *pos[2];
    int n_pos;
    Opt opts[] = {{"o", &out, 0},          {"out", &out, 0},           {"description", &desc, 0},
                  {"label-col", &label, 0}, {"index-col", &index, 0},   {"header", &header, 1},
                  {"no-header", &no_header, 1}, {"sep", &sep, 0},       {"decimal", &decimal, 0}, {"regression", &regression, 1},
                  {"split", &split, 0},     {"seed", &seed, 0},         {"standardize", &stdz, 1},
                  {"standardize-from", &stdz_from, 0}, {"scale", &scale, 0}};
    DPT_TRY(parse_opts("convert csv", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, 2, &n_pos));
    if (n_pos < 1)
        return dpt_err(DPT_EUSAGE, "convert csv: expected TRAIN.csv [TEST.csv]");
    if (!out)
        return dpt_err(DPT_EUSAGE, "convert csv: -o FILE.h5 is required");
    if (header && no_header)
        return dpt_err(DPT_EUSAGE, "convert csv: --header and --no-header contradict each other");
    DptCsvOptions o = {.label_col = label, .index_col = index, .header = header ? 1 : no_header ? 0 : -1,
                       .regression = regression != NULL, .scale = 1.0f, .standardize = stdz != NULL,
                       .standardize_from = stdz_from, .description = desc};
    if (sep) {
        o.sep = !strcmp(sep, "tab") || !strcmp(sep, "\\t") ? '\t' : strlen(sep) == 1 ? sep[0] : 0;
        if (o.sep != ',' && o.sep != ';' && o.sep != '\t' && o.sep != '|')
            return dpt_err(DPT_EUSAGE, "convert csv: --sep '%s': expected ',', ';', '|' or 'tab'", sep);
    }
    if (decimal && strcmp(decimal, ".") != 0 && strcmp(decimal, ",") != 0)
        return dpt_err(DPT_EUSAGE, "convert csv: --decimal '%s': expected '.' or ','", decimal);
    o.decimal = decimal ? decimal[0] : '.';
    if (scale) {
        char *end;
        o.scale = strtof(scale, &end);
        if (*end || end == scale || !(o.scale > 0) || !isfinite(o.scale))
            return dpt_err(DPT_EUSAGE, "convert csv: --scale '%s': expected a positive number", scale);
    }
    if (split)
        DPT_TRY(parse_split(split, o.split));
    if (seed) {
        char *end;
        errno = 0;
        o.seed = strtoull(seed, &end, 10);
        if (*end || end == seed || errno || seed[0] == '-')
            return dpt_err(DPT_EUSAGE, "convert csv: --seed '%s': expected a non-negative integer", seed);
        if (!split)
            return dpt_err(DPT_EUSAGE, "convert csv: --seed shuffles rows for --split; give --split too");
    }
    if (stdz && stdz_from)
        return dpt_err(DPT_EUSAGE, "convert csv: give --standardize or --standardize-from FILE.h5, not both");
    if (n_pos > 1 && split && o.split[2] > 0)
        return dpt_err(DPT_EUSAGE, "convert csv: --split with a test fraction and a TEST.csv: give one test set");
    DPT_TRY(dpt_convert_csv(pos[0], n_pos > 1 ? pos[1] : NULL, &o, out));
    printf("wrote %s\n", out);
    return DPT_OK;
}

static DptStatus cmd_convert(int argc, char **argv)
{
    const char *out = NULL, *desc = NULL, *pos[4];
    int n_pos;
    if (argc < 1)
        return dpt_err(DPT_EUSAGE, "convert: expected 'idx' or 'csv' (see dptrain convert --help)");
    const char *kind = argv[0];
    if (!strcmp(kind, "csv"))
        return cmd_convert_csv(argc - 1, argv + 1);
    if (strcmp(kind, "idx") != 0)
        return dpt_err(DPT_EUSAGE, "convert: unknown format '%s'; expected idx or csv", kind);
    Opt opts[] = {{"o", &out, 0}, {"out", &out, 0}, {"description", &desc, 0}};
    DPT_TRY(parse_opts("convert idx", argc - 1, argv + 1, opts, 3, pos, 4, &n_pos));
    if (n_pos != 2 && n_pos != 4)
        return dpt_err(DPT_EUSAGE, "convert idx: expected TRAIN_IMAGES TRAIN_LABELS [TEST_IMAGES TEST_LABELS], got %d files", n_pos);
    if (!out)
        return dpt_err(DPT_EUSAGE, "convert idx: -o FILE.h5 is required");
    DPT_TRY(dpt_convert_idx(pos[0], pos[1], n_pos == 4 ? pos[2] : NULL, n_pos == 4 ? pos[3] : NULL, out, desc));
    printf("wrote %s\n", out);
    return DPT_OK;
}

/* Compares the parameters of two model or checkpoint files: bitwise, or
 * |a - b| <= atol + rtol |b| element by element. Prints a verdict and the
 * largest difference (and where); DPT_EDIFFER when they differ. */
static DptStatus cmd_compare(int argc, char **argv)
{
    const char *atol_s = NULL, *rtol_s = NULL, *pos[2];
    int n_pos;
    Opt opts[] = {{"atol", &atol_s, 0}, {"rtol", &rtol_s, 0}};
    DPT_TRY(parse_opts("compare", argc, argv, opts, 2, pos, 2, &n_pos));
    if (n_pos != 2)
        return dpt_err(DPT_EUSAGE, "compare: expected two files (dptrain compare A.h5 B.h5 [--atol X] [--rtol Y])");
    double tol[2] = {0.0, 0.0};
    const char *tol_s[2] = {atol_s, rtol_s}, *tol_name[2] = {"--atol", "--rtol"};
    for (int i = 0; i < 2; i++) {
        char *end;
        if (tol_s[i] && ((tol[i] = strtod(tol_s[i], &end)) < 0 || *end || end == tol_s[i] || !isfinite(tol[i])))
            return dpt_err(DPT_EUSAGE, "compare: %s '%s': expected a number >= 0", tol_name[i], tol_s[i]);
    }
    DptArch a, b;
    float *pa = NULL, *pb = NULL;
    DptStatus st = dpt_ckpt_load_model(pos[0], &a, &pa);
    if (st == DPT_OK)
        st = dpt_ckpt_load_model(pos[1], &b, &pb);
    char la[1024], lb[1024];
    if (st == DPT_OK) {
        dpt_arch_format(&a, la, sizeof la);
        dpt_arch_format(&b, lb, sizeof lb);
        if (strcmp(la, lb) != 0 || a.hidden != b.hidden || a.output != b.output)
            st = dpt_err(DPT_EDIFFER, "%s and %s differ: layers %s (%s, %s) against %s (%s, %s)", pos[0], pos[1], la,
                         dpt_act_name(a.hidden), dpt_act_name(a.output), lb, dpt_act_name(b.hidden),
                         dpt_act_name(b.output));
    }
    if (st == DPT_OK) {
        const int bitwise = tol[0] == 0.0 && tol[1] == 0.0;
        size_t n_diff = 0, worst = 0;
        double worst_d = -1.0;
        for (size_t i = 0; i < a.n_params; i++) {
            double d = fabs((double)pa[i] - (double)pb[i]);
            int differ = bitwise ? memcmp(pa + i, pb + i, sizeof(float)) != 0 : !(d <= tol[0] + tol[1] * fabs(pb[i]));
            n_diff += (size_t)differ;
            if (differ && (d > worst_d || isnan(d))) {
                worst_d = d;
                worst = i;
            }
        }
        if (n_diff == 0) {
            printf("%s and %s: the same %zu parameters (%s)\n", pos[0], pos[1], a.n_params,
                   bitwise ? "bitwise" : "within the tolerance");
        } else {
            int l = a.n_layers - 1;
            while (l > 0 && worst < a.w_off[l])
                l--;
            int bias = worst >= a.b_off[l];
            size_t off = worst - (bias ? a.b_off[l] : a.w_off[l]);
            char where[64];
            if (bias)
                snprintf(where, sizeof where, "layer %d bias [%zu]", l, off);
            else
                snprintf(where, sizeof where, "layer %d weight [%zu, %zu]", l, off / (size_t)a.sizes[l],
                         off % (size_t)a.sizes[l]);
            st = dpt_err(DPT_EDIFFER, "%s and %s differ in %zu of %zu parameters; largest |a - b| = %.3g at %s "
                         "(%.9g against %.9g)", pos[0], pos[1], n_diff, a.n_params, worst_d, where, pa[worst], pb[worst]);
        }
    }
    free(pa);
    free(pb);
    return st;
}

static DptStatus cmd_info(int argc, char **argv)
{
    if (argc != 1)
        return dpt_err(DPT_EUSAGE, "info: expected one file (dptrain info FILE.h5)");
    if (dpt_trace_is_trace(argv[0]))
        return dpt_trace_describe(argv[0], stdout);
    if (dpt_ckpt_is_ours(argv[0]))
        return dpt_ckpt_describe(argv[0], stdout);
    return dpt_data_describe_dataset(argv[0], stdout);
}

DptStatus dpt_cli_run(int argc, char **argv, const DptDist *d)
{
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train"))
        return cmd_train(argc - 2, argv + 2, d);
    if (!strcmp(cmd, "eval"))
        return cmd_eval_predict(argc - 2, argv + 2, d, 0);
    if (!strcmp(cmd, "predict"))
        return cmd_eval_predict(argc - 2, argv + 2, d, 1);
    if (!strcmp(cmd, "convert") || !strcmp(cmd, "info") || !strcmp(cmd, "compare")) {
        /* File tools: rank 0 works, the others wait for its verdict. */
        DptStatus st = DPT_OK;
        if (d->rank == 0)
            st = !strcmp(cmd, "convert") ? cmd_convert(argc - 2, argv + 2)
                 : !strcmp(cmd, "info")  ? cmd_info(argc - 2, argv + 2)
                                         : cmd_compare(argc - 2, argv + 2);
        return dpt_dist_agree(d, st, NULL);
    }
    return dpt_dist_agree(d, dpt_err(DPT_EUSAGE, "unknown command '%s' (expected train, eval, predict, convert, info "
                                     "or compare)", cmd), NULL);
}
