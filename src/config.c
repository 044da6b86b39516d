#include "dptrain/config.h"
#include "config_opts.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_STR, T_INT, T_DOUBLE, T_FLAG, T_LAYERS, T_BATCH, T_HIDDEN, T_OUTPUT, T_COST, T_OPT, T_INIT, T_SCHED, T_REDUCE, T_AUTOFLAG } OptType;

static const char *const reduce_names[] = {"auto", "mpi", "shm"};

typedef struct {
    const char *name;
    OptType type;
    size_t offset;
    const char *arg;
    const char *help;
} Option;

#define F(field) offsetof(DptConfig, field)

static const Option options[] = {
    {"data", T_STR, F(data), "FILE.h5", "dataset file (HDF5: /train/x, /train/y, optional /test)"},
    {"layers", T_LAYERS, F(sizes), "N,N,...", "units per layer, inputs first (784,100,10)"},
    {"hidden", T_HIDDEN, F(hidden), "ACT", "hidden units: sigmoid|relu|tanh|linear"},
    {"output", T_OUTPUT, F(output), "ACT", "output units: sigmoid|softmax|linear"},
    {"cost", T_COST, F(cost), "COST", "mse|bce|cce"},
    {"optimizer", T_OPT, F(opt.kind), "NAME", "sgd|momentum|nesterov|adagrad|rmsprop|adam|nadam"},
    {"lr", T_DOUBLE, F(sched.lr), "ETA", "learning rate"},
    {"momentum", T_DOUBLE, F(opt.momentum), "ALPHA", "momentum coefficient (momentum, nesterov)"},
    {"beta1", T_DOUBLE, F(opt.beta1), "B1", "first-moment decay (adam, nadam)"},
    {"beta2", T_DOUBLE, F(opt.beta2), "B2", "second-moment decay (adam, nadam)"},
    {"eps", T_DOUBLE, F(opt.eps), "EPS", "denominator epsilon, outside the square root"},
    {"decay", T_DOUBLE, F(opt.decay), "RHO", "RMSprop's decay of the mean square"},
    {"lr-schedule", T_SCHED, F(sched.kind), "NAME", "constant|step|cosine"},
    {"lr-step-epochs", T_INT, F(sched.step_epochs), "N", "step schedule: epochs between decays"},
    {"lr-gamma", T_DOUBLE, F(sched.gamma), "G", "step schedule: factor of each decay"},
    {"lr-min", T_DOUBLE, F(sched.lr_min), "ETA", "cosine schedule: rate at the last step"},
    {"warmup", T_DOUBLE, F(sched.warmup_epochs), "EPOCHS", "linear warm-up over the first EPOCHS epochs"},
    {"warmup-from", T_DOUBLE, F(sched.warmup_from), "F", "warm-up starts at F * lr"},
    {"clip-norm", T_DOUBLE, F(clip_norm), "C", "scale the averaged gradient to norm C when larger (0: off)"},
    {"weight-decay", T_DOUBLE, F(weight_decay), "LAMBDA", "L2 regularisation on weights: C += lambda/(2n) sum w^2"},
    {"batch", T_BATCH, F(batch), "N|full", "global mini-batch (1 = SGD, full = full-batch GD)"},
    {"batch-per-rank", T_INT, F(batch_per_rank), "N", "global mini-batch of N x ranks (weak scaling; replaces --batch)"},
    {"epochs", T_INT, F(epochs), "N", "passes over the training set"},
    {"max-steps", T_INT, F(max_steps), "N", "stop after N optimiser steps (0: no limit; for benchmarks)"},
    {"seed", T_INT, F(seed), "N", "seed of initialisation and shuffling"},
    {"init", T_INIT, F(init), "SCHEME", "nielsen|xavier|he"},
    {"init-from", T_STR, F(init_from), "MODEL.h5", "start from the weights of a model file"},
    {"deterministic", T_FLAG, F(deterministic), NULL, "bitwise-identical results for any ranks and threads"},
    {"det-block", T_INT, F(det_block), "N", "samples per fixed block in deterministic mode (0: from the global batch, 8..64)"},
    {"check-every", T_INT, F(check_every), "N", "steps between replica checks (0: at the end only)"},
    {"reduce", T_REDUCE, F(reduce), "KIND", "gradient reduction: auto|mpi|shm (node-shared memory, hierarchical across nodes)"},
    {"overlap", T_AUTOFLAG, F(overlap), NULL, "reduce each layer's gradient while backprop continues (default auto: with the shared-memory reduction)"},
    {"eval-train", T_FLAG, F(eval_train), NULL, "evaluate the whole training set after each epoch"},
    {"save", T_STR, F(save), "FILE.h5", "write the trained model"},
    {"metrics", T_STR, F(metrics), "FILE.jsonl", "one JSON object per epoch"},
    {"quiet", T_FLAG, F(quiet), NULL, "print errors only"},
    {"log-every", T_INT, F(log_every), "N", "a line every N steps: step, loss, samples/s, ETA (for batch-job logs)"},
    {"print-config", T_FLAG, F(print_config), NULL, "print the whole resolved configuration and exit"},
    {"progress", T_FLAG, F(progress), NULL, "progress bar on a terminal (default on; --no-progress)"},
    {"checkpoint-dir", T_STR, F(checkpoint_dir), "DIR", "write checkpoints (ckpt-<step>.h5) to DIR"},
    {"checkpoint-every", T_INT, F(checkpoint_every), "N", "steps between checkpoints (0: only at stops and the end)"},
    {"checkpoint-epoch", T_FLAG, F(checkpoint_epoch), NULL, "also write a checkpoint at the end of every epoch"},
    {"checkpoint-minutes", T_DOUBLE, F(checkpoint_minutes), "M", "also write a checkpoint once M minutes of wall time have passed since the last (0: off)"},
    {"signal-grace", T_DOUBLE, F(signal_grace), "S", "seconds after a stop request (SIGTERM/SIGINT/SIGUSR1) during which repeats are ignored; a later one ends at once"},
    {"keep", T_INT, F(keep), "N", "newest checkpoints kept (older ones removed once a new one is complete)"},
    {"resume", T_STR, F(resume), "FILE|latest", "continue from a checkpoint (latest: the newest good one in --checkpoint-dir)"},
    {"trace", T_STR, F(trace), "FILE.h5", "per-step trace: loss and per-layer gradient norms (rank 0 writes)"},
    {"trace-every", T_INT, F(trace_every), "N", "record every N steps"},
    {"trace-params", T_STR, F(trace_params), "L:I:J,...", "also record W_L[I,J] (L:I:b for the bias b_L[I])"},
    {"trace-project", T_FLAG, F(trace_project), NULL, "also record theta - theta0 projected on two random directions"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

struct DptConfigString {
    DptConfigString *next;
    char s[];
};

/* Every text value (the T_STR options and the INI file's name) := "". */
static void clear_strings(DptConfig *c)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].type == T_STR)
            *(const char **)((char *)c + options[i].offset) = "";
    c->config = "";
}

void dpt_config_defaults(DptConfig *c)
{
    memset(c, 0, sizeof *c);
    clear_strings(c);
    c->hidden = DPT_ACT_SIGMOID;
    c->output = DPT_ACT_SOFTMAX;
    c->cost = DPT_COST_CCE;
    c->opt.kind = DPT_OPT_SGD;
    c->opt.momentum = 0.9;
    c->opt.beta1 = 0.9;
    c->opt.beta2 = 0.999;
    c->opt.eps = 1e-8;
    c->opt.decay = 0.9;
    c->sched.lr = 0.1;
    c->sched.kind = DPT_SCHED_CONSTANT;
    c->sched.gamma = 0.1;
    c->sched.step_epochs = 10;
    c->batch = 10;
    c->epochs = 10;
    c->seed = 1;
    c->init = DPT_INIT_NIELSEN;
    c->det_block = 0;
    c->check_every = 1000;
    c->overlap = -1;
    c->progress = 1;
    c->keep = 3;
    c->signal_grace = 30.0;
    c->trace_every = 1;
}

void dpt_config_free(DptConfig *c)
{
    for (DptConfigString *s = c->strings, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    c->strings = NULL;
    clear_strings(c);   /* no field points to freed memory */
}

DptStatus dpt_config_set_string(DptConfig *c, const char **field, const char *v)
{
    size_t n = strlen(v) + 1;
    DptConfigString *s = malloc(sizeof *s + n);
    if (!s)
        return dpt_err(DPT_ENOMEM, "out of memory for an option's value");
    memcpy(s->s, v, n);
    s->next = c->strings;
    c->strings = s;
    *field = s->s;
    return DPT_OK;
}

/* Edit distance between a[0..la) and b (small strings). */
static size_t distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b), row[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            best = row[j] + 1 < best ? row[j] + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *dpt_config_suggestion(const char *name, size_t len)
{
    static char buf[96];
    size_t best = 3;
    const char *hit = NULL;
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        size_t dd = distance(name, len, options[i].name);
        if (dd < best) {
            best = dd;
            hit = options[i].name;
        }
    }
    if (!hit)
        return "";
    snprintf(buf, sizeof buf, "; did you mean --%s?", hit);
    return buf;
}

static const Option *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

static DptStatus parse_int(const char *opt, const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || errno == ERANGE)
        return dpt_err(DPT_EUSAGE, "--%s '%s': expected an integer", opt, v);
    *out = x;
    return DPT_OK;
}

static DptStatus parse_flag(const char *opt, const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
        *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
        *out = 0;
    else
        return dpt_err(DPT_EUSAGE, "%s '%s': expected true or false", opt, v);
    return DPT_OK;
}

static DptStatus parse_layers(const char *v, DptConfig *c)
{
    int n = 0;
    const char *p = v;
    for (;;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0'))
            return dpt_err(DPT_EUSAGE, "--layers '%s': expected positive integers separated by commas (784,100,10)", v);
        if (errno == ERANGE || x <= 0 || x > (1L << 24))
            return dpt_err(DPT_EUSAGE, "--layers '%s': size %ld is out of range 1..16777216", v, x);
        if (n > DPT_MAX_LAYERS)
            return dpt_err(DPT_EUSAGE, "--layers '%s': at most %d sizes", v, DPT_MAX_LAYERS + 1);
        c->sizes[n++] = (int)x;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    if (n < 2)
        return dpt_err(DPT_EUSAGE, "--layers '%s': expected at least two sizes (inputs and outputs)", v);
    c->n_sizes = n;
    return DPT_OK;
}

static DptStatus set_option(DptConfig *c, const Option *o, const char *v)
{
    char *field = (char *)c + o->offset;
    int k;
    switch (o->type) {
    case T_STR:
        if (strlen(v) >= DPT_PATH_MAX)
            return dpt_err(DPT_EUSAGE, "--%s: value longer than %d characters", o->name, DPT_PATH_MAX - 1);
        if (v[0] == '\0')
            return dpt_err(DPT_EUSAGE, "--%s: empty value", o->name);
        return dpt_config_set_string(c, (const char **)field, v);
    case T_INT:
        return parse_int(o->name, v, (int64_t *)field);
    case T_DOUBLE: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end != '\0' || errno == ERANGE || !isfinite(x))
            return dpt_err(DPT_EUSAGE, "--%s '%s': expected a finite number", o->name, v);
        *(double *)field = x;
        return DPT_OK;
    }
    case T_FLAG:
        return parse_flag(o->name, v, (int *)field);
    case T_AUTOFLAG:
        if (!strcmp(v, "auto")) {
            *(int *)field = -1;
            return DPT_OK;
        }
        return parse_flag(o->name, v, (int *)field);
    case T_LAYERS:
        return parse_layers(v, c);
    case T_BATCH:
        if (!strcmp(v, "full")) {
            c->batch = 0;
            return DPT_OK;
        }
        DPT_TRY(parse_int(o->name, v, &c->batch));
        if (c->batch < 1)
            return dpt_err(DPT_EUSAGE, "--batch '%s': expected a positive integer or 'full'", v);
        return DPT_OK;
    case T_HIDDEN:
        if ((k = dpt_act_parse(v)) < 0 || k == DPT_ACT_SOFTMAX)
            return dpt_err(DPT_EUSAGE, "--hidden '%s': expected sigmoid, relu, tanh or linear", v);
        c->hidden = (DptAct)k;
        return DPT_OK;
    case T_OUTPUT:
        if ((k = dpt_act_parse(v)) < 0 || k == DPT_ACT_RELU || k == DPT_ACT_TANH)
            return dpt_err(DPT_EUSAGE, "--output '%s': expected sigmoid, softmax or linear", v);
        c->output = (DptAct)k;
        return DPT_OK;
    case T_COST:
        if ((k = dpt_cost_parse(v)) < 0)
            return dpt_err(DPT_EUSAGE, "--cost '%s': expected mse, bce or cce", v);
        c->cost = (DptCost)k;
        return DPT_OK;
    case T_OPT:
        if ((k = dpt_optim_parse(v)) < 0)
            return dpt_err(DPT_EUSAGE, "--optimizer '%s': expected sgd, momentum, nesterov, adagrad, rmsprop, adam or nadam", v);
        c->opt.kind = (DptOptKind)k;
        return DPT_OK;
    case T_SCHED:
        if ((k = dpt_schedule_parse(v)) < 0)
            return dpt_err(DPT_EUSAGE, "--lr-schedule '%s': expected constant, step or cosine", v);
        c->sched.kind = (DptSchedKind)k;
        return DPT_OK;
    case T_REDUCE:
        if ((k = dpt_name_index(reduce_names, 3, v)) < 0)
            return dpt_err(DPT_EUSAGE, "--reduce '%s': expected auto, mpi or shm", v);
        c->reduce = (DptReduceKind)k;
        return DPT_OK;
    case T_INIT:
        if ((k = dpt_init_parse(v)) < 0)
            return dpt_err(DPT_EUSAGE, "--init '%s': expected nielsen, xavier or he", v);
        c->init = (DptInit)k;
        return DPT_OK;
    }
    return DPT_EINTERNAL;
}

int dpt_config_option_kind(const char *name, size_t len)
{
    static const char *const paths[] = {"data", "init-from", "save", "metrics", "checkpoint-dir", "resume", "trace"};
    const Option *o = find_option(name, len);
    return !o ? 0 : dpt_name_index(paths, 7, o->name) >= 0 ? 2 : 1;
}

DptStatus dpt_config_set(DptConfig *c, const char *name, const char *value)
{
    const Option *o = find_option(name, strlen(name));
    if (!o)
        return dpt_err(DPT_EUSAGE, "unknown option '--%s'%s", name, dpt_config_suggestion(name, strlen(name)));
    return set_option(c, o, value);
}

DptStatus dpt_config_parse(DptConfig *c, int argc, char **argv)
{
    /* The file first, so that the command line overrides it. */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            if (i + 1 >= argc)
                return dpt_err(DPT_EUSAGE, "--config needs a value (FILE.ini)");
            DPT_TRY(dpt_config_load_ini(c, argv[i + 1]));
        } else if (!strncmp(a, "--config=", 9)) {
            DPT_TRY(dpt_config_load_ini(c, a + 9));
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return dpt_err(DPT_EUSAGE, "unexpected argument '%s'; options start with --", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && !strncmp(name, "config", 6)) {
            if (!eq)
                i++;
            continue;
        }
        int negate = 0;
        const Option *o = find_option(name, len);
        if (!o && len > 3 && !strncmp(name, "no-", 3)) {
            o = find_option(name + 3, len - 3);
            if (o && o->type != T_FLAG && o->type != T_AUTOFLAG)
                o = NULL;
            negate = 1;
        }
        if (!o)
            return dpt_err(DPT_EUSAGE, "unknown option '--%.*s'%s (see dptrain train --help)", (int)len, name,
                           dpt_config_suggestion(name, len));
        if (o->type == T_FLAG || o->type == T_AUTOFLAG) {
            if (eq) {
                DPT_TRY(set_option(c, o, eq + 1));
            } else {
                *(int *)((char *)c + o->offset) = !negate;
            }
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc)
                return dpt_err(DPT_EUSAGE, "--%s needs a value (%s)", o->name, o->arg);
            v = argv[++i];
        }
        DPT_TRY(set_option(c, o, v));
    }
    return DPT_OK;
}

DptStatus dpt_config_validate(const DptConfig *c)
{
    if (!c->data[0])
        return dpt_err(DPT_EUSAGE, "--data is required (a dataset file, e.g. data/fashion-mnist.h5)");
    if (c->n_sizes < 2 && !c->init_from[0])
        return dpt_err(DPT_EUSAGE, "--layers is required (e.g. --layers 784,100,10)");
    if (!(c->sched.lr > 0))
        return dpt_err(DPT_EUSAGE, "--lr %g: expected a positive number", c->sched.lr);
    if (c->epochs < 1 || c->epochs > 1000000000)
        return dpt_err(DPT_EUSAGE, "--epochs %lld: expected 1 or more", (long long)c->epochs);
    if (c->opt.momentum < 0 || c->opt.momentum >= 1)
        return dpt_err(DPT_EUSAGE, "--momentum %g: expected 0 <= alpha < 1", c->opt.momentum);
    if (c->opt.beta1 < 0 || c->opt.beta1 >= 1)
        return dpt_err(DPT_EUSAGE, "--beta1 %g: expected 0 <= beta1 < 1", c->opt.beta1);
    if (c->opt.beta2 < 0 || c->opt.beta2 >= 1)
        return dpt_err(DPT_EUSAGE, "--beta2 %g: expected 0 <= beta2 < 1", c->opt.beta2);
    if (c->opt.decay < 0 || c->opt.decay >= 1)
        return dpt_err(DPT_EUSAGE, "--decay %g: expected 0 <= rho < 1", c->opt.decay);
    if (!(c->opt.eps > 0))
        return dpt_err(DPT_EUSAGE, "--eps %g: expected a positive number", c->opt.eps);
    if (c->sched.lr_min < 0 || c->sched.lr_min > c->sched.lr)
        return dpt_err(DPT_EUSAGE, "--lr-min %g: expected 0 <= lr-min <= lr", c->sched.lr_min);
    if (!(c->sched.gamma > 0) || c->sched.gamma > 1)
        return dpt_err(DPT_EUSAGE, "--lr-gamma %g: expected 0 < gamma <= 1", c->sched.gamma);
    if (c->sched.step_epochs < 1)
        return dpt_err(DPT_EUSAGE, "--lr-step-epochs %lld: expected 1 or more", (long long)c->sched.step_epochs);
    if (c->sched.warmup_epochs < 0)
        return dpt_err(DPT_EUSAGE, "--warmup %g: expected 0 or more epochs", c->sched.warmup_epochs);
    if (c->sched.warmup_from < 0 || c->sched.warmup_from > 1)
        return dpt_err(DPT_EUSAGE, "--warmup-from %g: expected 0..1", c->sched.warmup_from);
    if (c->clip_norm < 0)
        return dpt_err(DPT_EUSAGE, "--clip-norm %g: expected 0 (off) or a positive norm", c->clip_norm);
    if (c->weight_decay < 0)
        return dpt_err(DPT_EUSAGE, "--weight-decay %g: expected 0 or more", c->weight_decay);
    if (c->det_block < 0 || c->det_block > 256)
        return dpt_err(DPT_EUSAGE, "--det-block %lld: expected 1..256, or 0 (from the global batch)",
                       (long long)c->det_block);
    if (c->checkpoint_every < 0)
        return dpt_err(DPT_EUSAGE, "--checkpoint-every %lld: expected 0 or more steps", (long long)c->checkpoint_every);
    if (c->checkpoint_minutes < 0 || c->checkpoint_minutes > 525600)
        return dpt_err(DPT_EUSAGE, "--checkpoint-minutes %g: expected 0 (off) up to 525600 (a year)",
                       c->checkpoint_minutes);
    if (c->signal_grace < 0 || c->signal_grace > 86400)
        return dpt_err(DPT_EUSAGE, "--signal-grace %g: expected 0..86400 seconds", c->signal_grace);
    if (c->keep < 1 || c->keep > 4096)
        return dpt_err(DPT_EUSAGE, "--keep %lld: expected 1..4096", (long long)c->keep);
    if (strcmp(c->resume, "latest") == 0 && !c->checkpoint_dir[0])
        return dpt_err(DPT_EUSAGE, "--resume latest needs --checkpoint-dir");
    if ((c->checkpoint_every > 0 || c->checkpoint_epoch || c->checkpoint_minutes > 0) && !c->checkpoint_dir[0])
        return dpt_err(DPT_EUSAGE, "--checkpoint-every, --checkpoint-epoch and --checkpoint-minutes need --checkpoint-dir");
    if (c->trace_every < 1)
        return dpt_err(DPT_EUSAGE, "--trace-every %lld: expected 1 or more", (long long)c->trace_every);
    if ((c->trace_params[0] || c->trace_project || c->trace_every != 1) && !c->trace[0])
        return dpt_err(DPT_EUSAGE, "--trace-params, --trace-project and --trace-every need --trace FILE.h5");
    if (c->trace_params[0] && c->trace_project)
        return dpt_err(DPT_EUSAGE, "--trace-params and --trace-project: choose one");
    if (c->batch_per_rank < 0 || c->batch_per_rank > ((int64_t)1 << 24))
        return dpt_err(DPT_EUSAGE, "--batch-per-rank %lld: expected 1..16777216 (0: use --batch)",
                       (long long)c->batch_per_rank);
    if (c->log_every < 0)
        return dpt_err(DPT_EUSAGE, "--log-every %lld: expected 0 (off) or more steps", (long long)c->log_every);
    if (c->max_steps < 0)
        return dpt_err(DPT_EUSAGE, "--max-steps %lld: expected 0 or more", (long long)c->max_steps);
    if (c->check_every < 0)
        return dpt_err(DPT_EUSAGE, "--check-every %lld: expected 0 or more", (long long)c->check_every);
    if (c->seed < 0)
        return dpt_err(DPT_EUSAGE, "--seed %lld: expected 0 or more", (long long)c->seed);
    if (c->batch > ((int64_t)1 << 31))
        return dpt_err(DPT_EUSAGE, "--batch %lld: too large", (long long)c->batch);
    if (c->n_sizes >= 2) {
        DptArch arch;
        DPT_TRY(dpt_arch_init(&arch, c->sizes, c->n_sizes, c->hidden, c->output, c->cost));
    }
    return DPT_OK;
}

size_t dpt_config_format(const DptConfig *c, char *buf, size_t len)
{
    size_t used = 0;
#define OUT(...) used += (size_t)snprintf(buf + (used < len ? used : len), used < len ? len - used : 0, __VA_ARGS__)
    OUT("[train]\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const Option *o = &options[i];
        const char *field = (const char *)c + o->offset;
        switch (o->type) {
        case T_STR:
            if ((*(const char *const *)field)[0])
                OUT("%s = %s\n", o->name, *(const char *const *)field);
            break;
        case T_INT: OUT("%s = %lld\n", o->name, (long long)*(const int64_t *)field); break;
        case T_DOUBLE: {
            /* The shortest of %.15g / %.17g that reads back exactly. */
            char num[40];
            double v = *(const double *)field;
            snprintf(num, sizeof num, "%.15g", v);
            if (strtod(num, NULL) != v)
                snprintf(num, sizeof num, "%.17g", v);
            OUT("%s = %s\n", o->name, num);
            break;
        }
        case T_FLAG: OUT("%s = %s\n", o->name, *(const int *)field ? "true" : "false"); break;
        case T_AUTOFLAG: {
            int v = *(const int *)field;
            OUT("%s = %s\n", o->name, v < 0 ? "auto" : v ? "true" : "false");
            break;
        }
        case T_LAYERS:
            if (c->n_sizes == 0)
                break;
            OUT("layers = ");
            for (int l = 0; l < c->n_sizes; l++)
                OUT("%s%d", l ? "," : "", c->sizes[l]);
            OUT("\n");
            break;
        case T_BATCH:
            if (c->batch == 0)
                OUT("batch = full\n");
            else
                OUT("batch = %lld\n", (long long)c->batch);
            break;
        case T_HIDDEN: OUT("hidden = %s\n", dpt_act_name(c->hidden)); break;
        case T_OUTPUT: OUT("output = %s\n", dpt_act_name(c->output)); break;
        case T_COST: OUT("cost = %s\n", dpt_cost_name(c->cost)); break;
        case T_OPT: OUT("optimizer = %s\n", dpt_optim_name(c->opt.kind)); break;
        case T_INIT: OUT("init = %s\n", dpt_init_name(c->init)); break;
        case T_SCHED: OUT("lr-schedule = %s\n", dpt_schedule_name(c->sched.kind)); break;
        case T_REDUCE: OUT("reduce = %s\n", reduce_names[c->reduce]); break;
        }
    }
#undef OUT
    return used;
}

size_t dpt_config_format_changed(const DptConfig *c, char *buf, size_t len)
{
    DptConfig d;
    dpt_config_defaults(&d);
    char mine[8192], dflt[8192];
    dpt_config_format(c, mine, sizeof mine);
    dpt_config_format(&d, dflt, sizeof dflt);
    size_t used = 0;
    buf[0] = '\0';
    for (char *line = mine, *end; *line; line = end + (*end != '\0')) {
        end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        char one[1200];
        snprintf(one, sizeof one, "\n%.*s\n", (int)(end - line), line);
        /* a line of the defaults (bounded by newlines), or the section header */
        char padded[8200];
        snprintf(padded, sizeof padded, "\n%s", dflt);
        if (strstr(padded, one) || !strncmp(line, "[train]", 7) || !strncmp(line, "print-config", 12))
            continue;
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "%.*s\n", (int)(end - line), line);
    }
    return used;
}

void dpt_config_help(FILE *out)
{
    DptConfig d;
    dpt_config_defaults(&d);
    char defaults[8192];
    dpt_config_format(&d, defaults, sizeof defaults);
    fprintf(out, "Usage: dptrain train [--config FILE.ini] [options]\n\n"
                 "Every option may also be given as 'name = value' in the INI file; the command line wins.\n"
                 "Threads per rank come from OMP_NUM_THREADS, ranks from the MPI launcher.\n\nOptions:\n");
    fprintf(out, "  --%-18s %s\n", "config FILE.ini", "read options from an INI file");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", options[i].name, options[i].arg ? " " : "", options[i].arg ? options[i].arg : "");
        fprintf(out, "  --%-18s %s\n", left, options[i].help);
    }
    fprintf(out, "\nDefaults:\n%s", defaults);
}
