#include "dptrain/convert.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dptrain/data.h"

/* ---------------------------------------------------------------- IDX */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads a whole IDX file of unsigned bytes (type 0x08) with `want_dims`
 * dimensions. *count = first dimension, *row = product of the others. */
static DptStatus read_idx(const char *path, int want_dims, uint8_t **data, size_t *count, size_t *row)
{
    DptStatus st = DPT_OK;
    unsigned char hdr[4 + 4 * 3];
    *data = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return dpt_err(DPT_EINPUT, "%s: cannot open (%s)", path, strerror(errno ? errno : ENOENT));
    if (gzread(gz, hdr, 4) != 4 || hdr[0] != 0 || hdr[1] != 0) {
        st = dpt_err(DPT_EINPUT, "%s: not an IDX file (bad magic number)", path);
        goto done;
    }
    if (hdr[2] != 0x08) {
        st = dpt_err(DPT_EINPUT, "%s: IDX element type 0x%02x; expected 0x08 (unsigned byte)", path, hdr[2]);
        goto done;
    }
    if (hdr[3] != want_dims) {
        st = dpt_err(DPT_EINPUT, "%s: IDX file has %d dimensions; expected %d", path, hdr[3], want_dims);
        goto done;
    }
    if (gzread(gz, hdr + 4, 4 * (unsigned)want_dims) != 4 * want_dims) {
        st = dpt_err(DPT_EINPUT, "%s: truncated IDX header", path);
        goto done;
    }
    *count = be32(hdr + 4);
    *row = 1;
    for (int i = 1; i < want_dims; i++) {
        uint32_t dim = be32(hdr + 4 + 4 * i);
        if (dim == 0 || *row > (1u << 24) / dim) {
            st = dpt_err(DPT_EINPUT, "%s: IDX dimension %d is %u; expected 1..16M elements per item", path, i, dim);
            goto done;
        }
        *row *= dim;
    }
    if (*count == 0 || *count > (1u << 28) || *count * *row > ((size_t)1 << 34)) {
        st = dpt_err(DPT_EINPUT, "%s: IDX file claims %zu items of %zu bytes; expected a plausible size", path, *count,
                     *row);
        goto done;
    }
    size_t total = *count * *row;
    /* The buffer grows with the data actually read, so that a header that
     * claims gigabytes costs nothing until the bytes are there. */
    size_t got = 0, cap = 0;
    while (got < total) {
        if (got == cap) {
            size_t ncap = cap ? 2 * cap : ((size_t)1 << 20);
            if (ncap > total)
                ncap = total;
            uint8_t *nd = realloc(*data, ncap);
            if (!nd) {
                st = dpt_err(DPT_ENOMEM, "%s: cannot allocate %zu bytes", path, ncap);
                goto done;
            }
            *data = nd;
            cap = ncap;
        }
        size_t want = cap - got;
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int r = gzread(gz, *data + got, chunk);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got != total) {
        st = dpt_err(DPT_EINPUT, "%s: truncated IDX data (%zu of %zu bytes)", path, got, total);
        goto done;
    }
done:
    gzclose(gz);
    if (st != DPT_OK) {
        free(*data);
        *data = NULL;
    }
    return st;
}

static DptStatus idx_pair(const char *images, const char *labels, const char *name, DptSplitData *sp,
                          uint8_t **img, int32_t **lab)
{
    uint8_t *lb = NULL;
    size_t ni = 0, d = 0, nl = 0, one = 0;
    DPT_TRY(read_idx(images, 3, img, &ni, &d));
    DptStatus st = read_idx(labels, 1, &lb, &nl, &one);
    if (st != DPT_OK)
        return st;
    if (nl != ni) {
        free(lb);
        return dpt_err(DPT_EINPUT, "%s has %zu images but %s has %zu labels", images, ni, labels, nl);
    }
    *lab = malloc(nl * sizeof(int32_t));
    if (!*lab) {
        free(lb);
        return dpt_err(DPT_ENOMEM, "cannot allocate labels");
    }
    for (size_t i = 0; i < nl; i++)
        (*lab)[i] = lb[i];
    free(lb);
    *sp = (DptSplitData){.name = name, .n = ni, .d = d, .x_u8 = 1, .x_scale = 1.0f / 255.0f, .x = *img,
                         .y_labels = 1, .lab = *lab};
    return DPT_OK;
}

DptStatus dpt_convert_idx(const char *train_images, const char *train_labels,
                          const char *test_images, const char *test_labels,
                          const char *out, const char *description)
{
    DptStatus st;
    DptSplitData sp[2];
    uint8_t *img[2] = {NULL, NULL};
    int32_t *lab[2] = {NULL, NULL};
    int n = 1;
    st = idx_pair(train_images, train_labels, "train", &sp[0], &img[0], &lab[0]);
    if (st == DPT_OK && test_images) {
        st = idx_pair(test_images, test_labels, "test", &sp[1], &img[1], &lab[1]);
        if (st == DPT_OK && sp[1].d != sp[0].d)
            st = dpt_err(DPT_EINPUT, "%s has %zu values per image but %s has %zu", test_images, sp[1].d,
                         train_images, sp[0].d);
        n = 2;
    }
    if (st == DPT_OK)
        st = dpt_data_write(out, sp, n, description);
    for (int i = 0; i < 2; i++) {
        free(img[i]);
        free(lab[i]);
    }
    return st;
}

