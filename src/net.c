#include "dptrain/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/loss.h"

static const char *const act_names[] = {"sigmoid", "relu", "tanh", "linear", "softmax"};
static const char *const init_names[] = {"nielsen", "xavier", "he"};

const char *dpt_act_name(DptAct a) { return act_names[a]; }
const char *dpt_init_name(DptInit i) { return init_names[i]; }
int dpt_act_parse(const char *s) { return dpt_name_index(act_names, 5, s); }
int dpt_init_parse(const char *s) { return dpt_name_index(init_names, 3, s); }

DptStatus dpt_arch_init(DptArch *arch, const int *sizes, int n_sizes,
                        DptAct hidden, DptAct output, DptCost cost)
{
    memset(arch, 0, sizeof *arch);
    if (n_sizes < 2)
        return dpt_err(DPT_EUSAGE, "--layers needs at least two sizes (inputs and outputs), got %d", n_sizes);
    if (n_sizes > DPT_MAX_LAYERS + 1)
        return dpt_err(DPT_EUSAGE, "--layers has %d sizes; at most %d are supported", n_sizes, DPT_MAX_LAYERS + 1);
    if (hidden == DPT_ACT_SOFTMAX)
        return dpt_err(DPT_EUSAGE, "--hidden softmax is not supported: expected sigmoid, relu, tanh or linear");
    const char *why = dpt_loss_check(output, cost);
    if (why)
        return dpt_err(DPT_EUSAGE, "%s (got --output %s --cost %s)", why, dpt_act_name(output), dpt_cost_name(cost));
    arch->n_layers = n_sizes - 1;
    arch->hidden = hidden;
    arch->output = output;
    arch->cost = cost;
    size_t off = 0;
    for (int l = 0; l < n_sizes; l++) {
        if (sizes[l] <= 0)
            return dpt_err(DPT_EUSAGE, "--layers: size %d of layer %d must be positive", sizes[l], l);
        arch->sizes[l] = sizes[l];
    }
    for (int l = 0; l < arch->n_layers; l++) {
        size_t in = (size_t)sizes[l], out = (size_t)sizes[l + 1];
        if (in * out / out != in || off + in * out + out < off || off + in * out + out > ((size_t)1 << 40))
            return dpt_err(DPT_EUSAGE, "--layers: the network has too many parameters (layer %d is %zu x %zu)", l, out, in);
        arch->w_off[l] = off;
        off += in * out;
        arch->b_off[l] = off;
        off += out;
    }
    arch->n_params = off;
    return DPT_OK;
}

void dpt_arch_format(const DptArch *arch, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int l = 0; l <= arch->n_layers && used < len; l++)
        used += (size_t)snprintf(buf + used, len - used, "%s%d", l ? "," : "", arch->sizes[l]);
}

void dpt_net_init_params(float *params, const DptArch *arch, DptInit scheme, uint64_t seed)
{
    DptRng rng;
    dpt_rng_stream(&rng, seed, DPT_STREAM_INIT, 0);
    for (int l = 0; l < arch->n_layers; l++) {
        size_t in = (size_t)arch->sizes[l], out = (size_t)arch->sizes[l + 1];
        float *W = params + arch->w_off[l], *b = params + arch->b_off[l];
        double sd_w, bound;
        switch (scheme) {
        case DPT_INIT_XAVIER:
            bound = sqrt(6.0 / (double)(in + out));
            for (size_t i = 0; i < in * out; i++)
                W[i] = (float)((2.0 * dpt_rng_uniform(&rng) - 1.0) * bound);
            for (size_t o = 0; o < out; o++)
                b[o] = 0.0f;
            break;
        case DPT_INIT_HE:
            sd_w = sqrt(2.0 / (double)in);
            for (size_t i = 0; i < in * out; i++)
                W[i] = (float)(dpt_rng_normal(&rng) * sd_w);
            for (size_t o = 0; o < out; o++)
                b[o] = 0.0f;
            break;
        case DPT_INIT_NIELSEN:
        default:
            sd_w = 1.0 / sqrt((double)in);
            for (size_t i = 0; i < in * out; i++)
                W[i] = (float)(dpt_rng_normal(&rng) * sd_w);
            for (size_t o = 0; o < out; o++)
                b[o] = (float)dpt_rng_normal(&rng);
            break;
        }
    }
}

DptStatus dpt_work_init(DptWork *w, const DptArch *arch, size_t cap)
{
    memset(w, 0, sizeof *w);
    if (cap == 0)
        cap = 1;
    int L = arch->n_layers;
    size_t k = (size_t)arch->sizes[L];
    /* Each view rounded up to 16 floats so that every one starts 64-byte aligned. */
    size_t total = 0;
    for (int l = 0; l <= L; l++)
        total += 2 * ((cap * (size_t)arch->sizes[l] + 15) / 16 * 16);
    total += 2 * ((cap * k + 15) / 16 * 16);
    w->mem = dpt_aligned_alloc(total * sizeof(float), "activation buffers");
    w->cls = dpt_calloc(cap, sizeof *w->cls, "target classes");
    w->row_loss = dpt_calloc(cap, sizeof *w->row_loss, "per-sample costs");
    if (!w->mem || !w->cls || !w->row_loss) {
        dpt_work_free(w);
        return DPT_ENOMEM;
    }
    float *p = w->mem;
    for (int l = 0; l <= L; l++) {
        size_t n = (cap * (size_t)arch->sizes[l] + 15) / 16 * 16;
        w->act[l] = p;
        p += n;
        w->delta[l] = p;
        p += n;
    }
    size_t nk = (cap * k + 15) / 16 * 16;
    w->zout = p;
    p += nk;
    w->y = p;
    w->cap = cap;
    return DPT_OK;
}

void dpt_work_free(DptWork *w)
{
    if (!w)
        return;
    free(w->mem);
    free(w->cls);
    free(w->row_loss);
    memset(w, 0, sizeof *w);
}

void dpt_net_forward(DptWork *w, const DptArch *arch, const float *params, size_t n)
{
    int L = arch->n_layers;
    for (int l = 0; l < L; l++) {
        size_t in = (size_t)arch->sizes[l], out = (size_t)arch->sizes[l + 1];
        dpt_kern_forward_act(w->act[l + 1], l == L - 1 ? w->zout : NULL, w->act[l], params + arch->w_off[l],
                             w->wp_fwd[l], params + arch->b_off[l], l == L - 1 ? arch->output : arch->hidden, n, in, out);
    }
}

double dpt_net_loss(DptWork *w, const DptArch *arch, size_t n, int want_delta, int64_t *correct)
{
    int L = arch->n_layers;
    size_t k = (size_t)arch->sizes[L];
    int64_t right = 0;
    /* Rows are independent; per-row costs are summed afterwards in row order so
     * that the total does not depend on the thread count. */
#pragma omp parallel for schedule(static) reduction(+ : right) if (n * k > 8192)
    for (size_t r = 0; r < n; r++) {
        const float *a = w->act[L] + r * k;
        w->row_loss[r] = dpt_loss_sample(want_delta ? w->delta[L] + r * k : NULL, a, w->zout + r * k,
                                         w->y + r * k, k, arch->output, arch->cost);
        right += dpt_loss_predict(a, k) == w->cls[r];
    }
    if (correct)
        *correct = right;
    return dpt_net_rows_cost(w, n);
}

double dpt_net_rows_cost(const DptWork *w, size_t n)
{
    double total = 0.0;
    for (size_t r = 0; r < n; r++)
        total += w->row_loss[r];
    return total;
}

void dpt_net_backward(DptWork *w, const DptArch *arch, const float *params, float *grad,
                      size_t n, int accumulate, DptLayerHook hook, void *ctx)
{
    for (int l = arch->n_layers - 1; l >= 0; l--) {
        size_t in = (size_t)arch->sizes[l], out = (size_t)arch->sizes[l + 1];
        dpt_kern_weight_grad(grad + arch->w_off[l], accumulate, w->delta[l + 1], w->act[l], n, in, out);
        dpt_kern_bias_grad(grad + arch->b_off[l], accumulate, w->delta[l + 1], n, out);
        if (hook)
            hook(ctx, l);
        if (l > 0) {
            dpt_kern_input_grad(w->delta[l], w->delta[l + 1], params + arch->w_off[l], w->wp_bwd[l], n, in, out);
            dpt_kern_act_backward(w->delta[l], w->act[l], arch->hidden, n, in);
        }
    }
}

void dpt_net_deltas(DptWork *w, const DptArch *arch, const float *params, size_t n)
{
    for (int l = arch->n_layers - 1; l > 0; l--) {
        size_t in = (size_t)arch->sizes[l], out = (size_t)arch->sizes[l + 1];
        dpt_kern_input_grad(w->delta[l], w->delta[l + 1], params + arch->w_off[l], w->wp_bwd[l], n, in, out);
        dpt_kern_act_backward(w->delta[l], w->act[l], arch->hidden, n, in);
    }
}

int dpt_net_blocks(const DptArch *arch, DptOptBlock *b)
{
    for (int l = 0; l < arch->n_layers; l++) {
        const size_t in = (size_t)arch->sizes[l], out = (size_t)arch->sizes[l + 1];
        b[2 * l] = (DptOptBlock){.off = arch->w_off[l], .rows = out, .cols = in};
        b[2 * l + 1] = (DptOptBlock){.off = arch->b_off[l], .rows = out, .cols = 1};
    }
    return 2 * arch->n_layers;
}

void dpt_net_wpack(const DptWork *w, const DptArch *arch, const float *params, size_t lo, size_t hi)
{
    for (int l = 0; l < arch->n_layers; l++) {
        const size_t in = (size_t)arch->sizes[l], out = (size_t)arch->sizes[l + 1], w0 = arch->w_off[l];
        const size_t a = lo > w0 ? lo - w0 : 0, z = hi < w0 + in * out ? (hi > w0 ? hi - w0 : 0) : in * out;
        if (a >= z)
            continue;
        if (w->wp_fwd[l])
            dpt_kern_wpack(w->wp_fwd[l], 1, params + w0, in, out, a, z);
        if (w->wp_bwd[l])
            dpt_kern_wpack(w->wp_bwd[l], 0, params + w0, in, out, a, z);
    }
}
