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

/* ---------------------------------------------------------------- CSV */

typedef struct {
    float *x;
    int32_t *lab;
    size_t n, d, cap;
} CsvTable;

/* The numeric fields of one line (separated by commas) into *vals (grown as
 * needed); *count receives how many. */
static DptStatus parse_fields(char *line, const char *path, size_t lineno, float **vals, size_t *cap, size_t *count)
{
    size_t c = 0;
    char *p = line;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        while (end && (*end == ' ' || *end == '\t'))
            end++;
        if (end == p || (*end != ',' && *end != '\0') || errno == ERANGE || !isfinite(v))
            return dpt_err(DPT_EINPUT, "%s:%zu: field %zu is not a finite number", path, lineno, c + 1);
        if (c >= *cap) {
            size_t ncap = *cap ? 2 * *cap : 64;
            if (ncap > (1u << 24))
                return dpt_err(DPT_EINPUT, "%s:%zu: more than 16M fields", path, lineno);
            float *nv = realloc(*vals, ncap * sizeof *nv);
            if (!nv)
                return dpt_err(DPT_ENOMEM, "%s: out of memory", path);
            *vals = nv;
            *cap = ncap;
        }
        (*vals)[c++] = (float)v;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    *count = c;
    return DPT_OK;
}

enum { NO_LABEL = -2 };   /* label_col: every column is a feature */

/* Appends one row (features scaled, the label column lc apart unless it is
 * NO_LABEL) to the table. */
static DptStatus append_row(CsvTable *t, const float *vals, size_t cols, long lc, float scale, const char *path,
                            size_t lineno)
{
    float lv = lc >= 0 ? vals[lc] : 0.0f;
    if (lv < 0 || lv > 1e9f || lv != floorf(lv))
        return dpt_err(DPT_EINPUT, "%s:%zu: label %g is not a non-negative integer", path, lineno, lv);
    if (t->n == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 1024;
        float *nx = realloc(t->x, ncap * t->d * sizeof(float));
        if (nx)
            t->x = nx;
        int32_t *nl = realloc(t->lab, ncap * sizeof(int32_t));
        if (nl)
            t->lab = nl;
        if (!nx || !nl)
            return dpt_err(DPT_ENOMEM, "%s: out of memory at line %zu", path, lineno);
        t->cap = ncap;
    }
    float *xr = t->x + t->n * t->d;
    for (size_t j = 0, o = 0; j < cols; j++)
        if ((long)j != lc)
            xr[o++] = vals[j] * scale;
    t->lab[t->n++] = (int32_t)lv;
    return DPT_OK;
}

/* header < 0: the first line is a header when it does not parse as numbers. */
static DptStatus read_csv(const char *path, int label_col, int header, float scale, CsvTable *t)
{
    DptStatus st = DPT_OK;
    memset(t, 0, sizeof *t);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return dpt_err(DPT_EINPUT, "%s: cannot open (%s)", path, strerror(errno));
    char *line = NULL;
    size_t linecap = 0, lineno = 0, cols = 0, vals_cap = 0, c = 0;
    ssize_t len;
    float *vals = NULL;
    while (st == DPT_OK && (len = getline(&line, &linecap, fp)) >= 0) {
        lineno++;
        if (header && lineno == 1)
            continue;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        st = parse_fields(line, path, lineno, &vals, &vals_cap, &c);
        if (st != DPT_OK && header < 0 && lineno == 1) {
            dpt_err_clear();   /* a header line */
            st = DPT_OK;
            continue;
        }
        if (st != DPT_OK)
            goto done;
        if (cols == 0) {
            cols = c;
            if (label_col == NO_LABEL)
                t->d = cols;
            else if (cols < 2)
                st = dpt_err(DPT_EINPUT, "%s:%zu: expected a label and at least one feature", path, lineno);
            else if (label_col >= (int)cols)
                st = dpt_err(DPT_EUSAGE, "--label-col %d: %s has only %zu columns", label_col, path, cols);
            else
                t->d = cols - 1;
        } else if (c != cols) {
            st = dpt_err(DPT_EINPUT, "%s:%zu: %zu fields; the first row has %zu", path, lineno, c, cols);
        }
        if (st == DPT_OK)
            st = append_row(t, vals, cols, label_col == NO_LABEL ? NO_LABEL : label_col < 0 ? (long)cols - 1 : label_col,
                            scale, path, lineno);
    }
    if (st == DPT_OK && t->n == 0)
        st = dpt_err(DPT_EINPUT, "%s: no data rows", path);
done:
    free(line);
    free(vals);
    fclose(fp);
    if (st != DPT_OK) {
        free(t->x);
        free(t->lab);
        memset(t, 0, sizeof *t);
    }
    return st;
}

DptStatus dpt_convert_csv(const char *train_csv, const char *test_csv, int label_col, int header,
                          float scale, const char *out)
{
    CsvTable t[2];
    memset(t, 0, sizeof t);
    DptSplitData sp[2];
    int n = 0;
    DptStatus st = read_csv(train_csv, label_col, header, scale, &t[0]);
    if (st == DPT_OK && test_csv) {
        st = read_csv(test_csv, label_col, header, scale, &t[1]);
        if (st == DPT_OK && t[1].d != t[0].d)
            st = dpt_err(DPT_EINPUT, "%s has %zu features but %s has %zu", test_csv, t[1].d, train_csv, t[0].d);
    }
    if (st == DPT_OK) {
        const char *names[2] = {"train", "test"};
        for (int i = 0; i < (test_csv ? 2 : 1); i++, n++)
            sp[i] = (DptSplitData){.name = names[i], .n = t[i].n, .d = t[i].d, .x = t[i].x, .y_labels = 1,
                                   .lab = t[i].lab};
        st = dpt_data_write(out, sp, n, NULL);
    }
    for (int i = 0; i < 2; i++) {
        free(t[i].x);
        free(t[i].lab);
    }
    return st;
}


DptStatus dpt_convert_read_features(const char *path, float **x, size_t *n, size_t *d)
{
    CsvTable t;
    DPT_TRY(read_csv(path, NO_LABEL, -1, 1.0f, &t));
    free(t.lab);
    *x = t.x;
    *n = t.n;
    *d = t.d;
    return DPT_OK;
}
