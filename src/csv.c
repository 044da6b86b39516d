/*
 * The CSV reader of the convert module: tables as pandas and spreadsheets
 * write them. The separator (comma, semicolon or tab) is detected from the
 * first line unless given; fields may be quoted ("a, b", "say ""hi""");
 * a header line is detected (a field that is not a number where the next
 * line has one, or no number at all); pandas' unnamed index column is
 * dropped; the label column is chosen by index, by header name, or is the
 * last; labels are class numbers, class names (mapped to 0..K-1 in sorted
 * order and stored as class_names), or float targets (regression).
 */
#include "dptrain/convert.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/data.h"
#include "dptrain/rng.h"

enum { MAX_FIELDS = 1 << 24, MAX_CLASSES = 65536 };

/* One line split into fields, in place (quotes removed, "" unescaped). */
typedef struct {
    char **f;
    size_t n, cap;
} Fields;

static DptStatus split_line(char *line, char sep, Fields *out, const char *path, size_t lineno)
{
    out->n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || (*p == '\t' && sep != '\t'))
            p++;
        char *start = p, *w = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    return dpt_err(DPT_EINPUT, "%s:%zu: a quoted field is not closed", path, lineno);
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            while (*p == ' ' || (*p == '\t' && sep != '\t'))
                p++;
            if (*p != sep && *p != '\0')
                return dpt_err(DPT_EINPUT, "%s:%zu: text after a quoted field", path, lineno);
        } else {
            while (*p != sep && *p != '\0')
                *w++ = *p++;
            while (w > start && (w[-1] == ' ' || (w[-1] == '\t' && sep != '\t')))
                w--;
        }
        char end = *p;
        *w = '\0';
        if (out->n == out->cap) {
            size_t cap = out->cap ? 2 * out->cap : 64;
            char **nf = cap <= MAX_FIELDS ? realloc(out->f, cap * sizeof *nf) : NULL;
            if (!nf)
                return dpt_err(DPT_EINPUT, "%s:%zu: too many fields", path, lineno);
            out->f = nf;
            out->cap = cap;
        }
        out->f[out->n++] = start;
        if (end == '\0')
            break;
        p++;
    }
    return DPT_OK;
}

/* A finite number; with decimal ',' the comma is the decimal mark ("4,5"). */
static int is_number(const char *s, double *v, char decimal)
{
    char buf[128];
    if (decimal == ',' && strchr(s, ',')) {
        size_t n = strlen(s);
        if (n >= sizeof buf)
            return 0;
        for (size_t i = 0; i <= n; i++)
            buf[i] = s[i] == ',' ? '.' : s[i];
        s = buf;
    }
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(x))
        return 0;
    if (v)
        *v = x;
    return 1;
}

/* The separator among , ; and tab that occurs most in the line (outside
 * quotes); not ',' when it is the decimal mark. */
static char detect_sep(const char *line, char decimal)
{
    size_t n[3] = {0, 0, 0};
    int quoted = 0;
    for (const char *p = line; *p; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (!quoted)
            n[0] += *p == ',', n[1] += *p == ';', n[2] += *p == '\t';
    }
    if (decimal == ',')
        return n[2] > n[1] ? '\t' : ';';
    return n[1] > n[0] && n[1] >= n[2] ? ';' : n[2] > n[0] && n[2] > n[1] ? '\t' : ',';
}

/* Reads the next non-empty line (newline stripped); 0 at the end. */
static int next_line(FILE *fp, char **line, size_t *cap, size_t *lineno)
{
    ssize_t len;
    while ((len = getline(line, cap, fp)) >= 0) {
        (*lineno)++;
        while (len > 0 && ((*line)[len - 1] == '\n' || (*line)[len - 1] == '\r'))
            (*line)[--len] = '\0';
        if (len > 0)
            return 1;
    }
    return 0;
}

/* A column given as a 0-based index, "last", or a header name; -1 if spec is
 * "none"; -2 if not found (the message is set). */
static long find_column(const char *spec, const Fields *head, size_t cols, const char *what, const char *path)
{
    if (!strcmp(spec, "none"))
        return -1;
    if (!strcmp(spec, "last"))
        return (long)cols - 1;
    char *end;
    long v = strtol(spec, &end, 10);
    if (*end == '\0' && end != spec) {
        if (v >= 0 && (size_t)v < cols)
            return v;
        dpt_err(DPT_EUSAGE, "%s %s: %s has %zu columns (0..%zu)", what, spec, path, cols, cols - 1);
        return -2;
    }
    for (size_t j = 0; head && j < head->n; j++)
        if (!strcmp(head->f[j], spec))
            return (long)j;
    dpt_err(DPT_EUSAGE, "%s '%s': %s has no such column%s", what, spec, path,
            head ? "" : " (and no header line to name its columns)");
    return -2;
}

/* The table while it is read: features, labels (class ids, in order of first
 * appearance for names) or targets. */
typedef struct {
    float *x;
    double *y;            /* the label column's values (numbers), or class ids */
    size_t n, d, cap;
    char **names;         /* class names in order of first appearance */
    size_t n_names;
    int text_labels;      /* the label column holds names */
    char decimal;         /* the decimal mark: '.' or ',' */
} Table;

static void table_free(Table *t)
{
    free(t->x);
    free(t->y);
    for (size_t i = 0; i < t->n_names; i++)
        free(t->names[i]);
    free(t->names);
    memset(t, 0, sizeof *t);
}

static long class_id(Table *t, const char *name)
{
    for (size_t i = 0; i < t->n_names; i++)
        if (!strcmp(t->names[i], name))
            return (long)i;
    if (t->n_names >= MAX_CLASSES)
        return -1;
    char **nn = realloc(t->names, (t->n_names + 1) * sizeof *nn);
    if (!nn)
        return -1;
    t->names = nn;
    t->names[t->n_names] = strdup(name);
    return t->names[t->n_names] ? (long)t->n_names++ : -1;
}

static DptStatus append(Table *t, const Fields *row, long label, long index, float scale, const char *path,
                        size_t lineno)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        float *nx = realloc(t->x, cap * (t->d ? t->d : 1) * sizeof *nx);
        if (nx)
            t->x = nx;
        double *ny = realloc(t->y, cap * sizeof *ny);
        if (ny)
            t->y = ny;
        if (!nx || !ny)
            return dpt_err(DPT_ENOMEM, "%s: out of memory at line %zu", path, lineno);
        t->cap = cap;
    }
    float *xr = t->x + t->n * t->d;
    size_t o = 0;
    for (size_t j = 0; j < row->n; j++) {
        if ((long)j == label || (long)j == index)
            continue;
        double v;
        if (!is_number(row->f[j], &v, t->decimal))
            return dpt_err(DPT_EINPUT, "%s:%zu: column %zu ('%s') is not a number; features must be numbers (the "
                           "label column is %s)", path, lineno, j, row->f[j],
                           label >= 0 ? "another" : "none");
        xr[o++] = (float)v * scale;
    }
    double yv = 0.0;
    if (label >= 0) {
        const char *ls = row->f[label];
        if (t->text_labels || !is_number(ls, &yv, t->decimal)) {
            if (!t->text_labels && t->n > 0)
                return dpt_err(DPT_EINPUT, "%s:%zu: label '%s' is text but earlier labels are numbers", path, lineno, ls);
            t->text_labels = 1;
            long id = class_id(t, ls);
            if (id < 0)
                return dpt_err(DPT_EINPUT, "%s: more than %d class names", path, MAX_CLASSES);
            yv = (double)id;
        }
    }
    t->y[t->n++] = yv;
    return DPT_OK;
}

/* Whether the first line (split into head) is a header: o->header if given;
 * else yes when a second line exists and the first holds no number, or a column
 * is text in the first line and a number in the second. */
static DptStatus detect_header(const DptCsvOptions *o, const Fields *head, const char *second, char sep,
                               const char *path, size_t second_no, Fields *row, int *header)
{
    *header = o->header > 0;
    if (o->header >= 0 || !second)
        return DPT_OK;
    size_t numbers = 0;
    for (size_t j = 0; j < head->n; j++)
        numbers += is_number(head->f[j], NULL, o->decimal);
    if (numbers == 0) {
        *header = 1;
        return DPT_OK;
    }
    char *copy = strdup(second);
    if (!copy)
        return dpt_err(DPT_ENOMEM, "%s: out of memory", path);
    DptStatus st = split_line(copy, sep, row, path, second_no);
    for (size_t j = 0; st == DPT_OK && j < head->n && j < row->n && !*header; j++)
        *header = !is_number(head->f[j], NULL, o->decimal) && is_number(row->f[j], NULL, o->decimal);
    free(copy);
    return st;
}

/* The label and index columns (-1: none) of a table of cols columns; head
 * names them when header is set. */
static DptStatus choose_columns(const DptCsvOptions *o, const Fields *head, int header, const char *path,
                                long *label, long *index)
{
    const size_t cols = head->n;
    *index = -1;
    if (o->index_col)
        *index = find_column(o->index_col, header ? head : NULL, cols, "--index-col", path);
    else if (header && cols > 1 && head->f[0][0] == '\0')
        *index = 0;   /* pandas' default: an unnamed index column */
    *label = o->label_col ? find_column(o->label_col, header ? head : NULL, cols, "--label-col", path)
                          : (long)cols - 1;
    if (*index == -2 || *label == -2)
        return DPT_EUSAGE;
    if (*label >= 0 && *label == *index)
        return dpt_err(DPT_EUSAGE, "%s: the label column is also the index column", path);
    if (cols - (*label >= 0) - (*index >= 0) == 0)
        return dpt_err(DPT_EINPUT, "%s: no feature columns", path);
    return DPT_OK;
}

/* Splits one data line of a table of cols columns and appends it. */
static DptStatus append_line(Table *t, char *line, char sep, size_t cols, long label, long index,
                             const DptCsvOptions *o, const char *path, size_t no, Fields *row)
{
    DPT_TRY(split_line(line, sep, row, path, no));
    if (row->n != cols)
        return dpt_err(DPT_EINPUT, "%s:%zu: %zu fields; the first line has %zu", path, no, row->n, cols);
    return append(t, row, label, index, o->scale, path, no);
}

/* Reads a whole table. label: column spec or "none"; index: spec or NULL
 * (auto: an unnamed first header column, as pandas writes). */
static DptStatus read_table(const char *path, const DptCsvOptions *o, Table *t)
{
    memset(t, 0, sizeof *t);
    t->decimal = o->decimal;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return dpt_err(DPT_EINPUT, "%s: cannot open (%s)", path, strerror(errno));
    char *line = NULL, *first = NULL, *second = NULL;
    size_t cap = 0, lineno = 0, first_no, second_no = 0;
    Fields head = {0}, row = {0};
    DptStatus st = DPT_OK;
    if (!next_line(fp, &line, &cap, &lineno)) {
        st = dpt_err(DPT_EINPUT, "%s: no data rows", path);
        goto done;
    }
    const char sep = o->sep ? o->sep : detect_sep(line, o->decimal);
    if (o->decimal == ',' && sep == ',') {
        st = dpt_err(DPT_EUSAGE, "%s: --decimal , needs another separator (';' or tab), but the separator is ','",
                     path);
        goto done;
    }
    /* The first two lines decide the header and the columns. */
    first = strdup(line);
    first_no = lineno;
    if (next_line(fp, &line, &cap, &lineno)) {
        second = strdup(line);
        second_no = lineno;
    }
    if (!first || (second_no && !second)) {
        st = dpt_err(DPT_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    int header;
    long label, index;
    DPT_TRY_GOTO(st, split_line(first, sep, &head, path, first_no), done);
    DPT_TRY_GOTO(st, detect_header(o, &head, second, sep, path, second_no, &row, &header), done);
    DPT_TRY_GOTO(st, choose_columns(o, &head, header, path, &label, &index), done);
    const size_t cols = head.n;
    t->d = cols - (label >= 0) - (index >= 0);
    if (!header)
        DPT_TRY_GOTO(st, append(t, &head, label, index, o->scale, path, first_no), done);
    if (second)
        DPT_TRY_GOTO(st, append_line(t, second, sep, cols, label, index, o, path, second_no, &row), done);
    while (next_line(fp, &line, &cap, &lineno))
        DPT_TRY_GOTO(st, append_line(t, line, sep, cols, label, index, o, path, lineno, &row), done);
    if (t->n == 0)
        st = dpt_err(DPT_EINPUT, "%s: no data rows", path);
done:
    free(line);
    free(first);
    free(second);
    free(head.f);
    free(row.f);
    fclose(fp);
    if (st != DPT_OK)
        table_free(t);
    return st;
}

/* The class names of t[0] (with those of t[1] added) sorted, and the ids of
 * both tables remapped to that order. */
static DptStatus sort_classes(Table *t, int has_test, const char *path)
{
    for (size_t r = 0; has_test && r < t[1].n; r++) {
        long id = class_id(&t[0], t[1].names[(size_t)t[1].y[r]]);
        if (id < 0)
            return dpt_err(DPT_ENOMEM, "%s: out of memory", path);
        t[1].y[r] = (double)id;
    }
    size_t k = t[0].n_names;
    size_t *order = malloc(k * sizeof *order), *rank = malloc(k * sizeof *rank);
    char **sorted = malloc(k * sizeof *sorted);
    if (!order || !rank || !sorted) {
        free(order);
        free(rank);
        free(sorted);
        return dpt_err(DPT_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < k; i++)
        order[i] = i;
    for (size_t i = 1; i < k; i++)   /* insertion sort: few classes */
        for (size_t j = i; j > 0 && strcmp(t[0].names[order[j - 1]], t[0].names[order[j]]) > 0; j--) {
            size_t tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    for (size_t i = 0; i < k; i++) {
        rank[order[i]] = i;
        sorted[i] = t[0].names[order[i]];
    }
    for (int w = 0; w <= has_test; w++)
        for (size_t r = 0; r < t[w].n; r++)
            t[w].y[r] = (double)rank[(size_t)t[w].y[r]];
    free(t[0].names);
    t[0].names = sorted;
    free(order);
    free(rank);
    return DPT_OK;
}

/* Integer class labels (numbers >= 0 without fraction), or else targets. */
static int labels_are_classes(const Table *t)
{
    if (t->text_labels)
        return 1;
    for (size_t r = 0; r < t->n; r++)
        if (t->y[r] < 0 || t->y[r] > 1e9 || t->y[r] != floor(t->y[r]))
            return 0;
    return 1;
}

DptStatus dpt_convert_read_features(const char *path, float **x, size_t *n, size_t *d)
{
    DptCsvOptions o = {.label_col = "none", .header = -1, .scale = 1.0f};
    Table t;
    DPT_TRY(read_table(path, &o, &t));
    *x = t.x;
    *n = t.n;
    *d = t.d;
    t.x = NULL;
    table_free(&t);
    return DPT_OK;
}

/* The split's rows rows[0..n) of t as a dataset split. */
static DptStatus make_split(const Table *t, const char *name, const size_t *rows, size_t n, int classes,
                            const float *mean, const float *sd, DptSplitData *sp, void **mem)
{
    size_t d = t->d;
    float *x = malloc((n ? n : 1) * d * sizeof *x);
    void *y = malloc((n ? n : 1) * (classes ? sizeof(int32_t) : sizeof(float)));
    if (!x || !y) {
        free(x);
        free(y);
        return dpt_err(DPT_ENOMEM, "out of memory for the %s split", name);
    }
    for (size_t i = 0; i < n; i++) {
        const float *src = t->x + rows[i] * d;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = mean ? (src[j] - mean[j]) / sd[j] : src[j];
        if (classes)
            ((int32_t *)y)[i] = (int32_t)t->y[rows[i]];
        else
            ((float *)y)[i] = (float)t->y[rows[i]];
    }
    *sp = (DptSplitData){.name = name, .n = n, .d = d, .x = x, .y_labels = classes, .k = classes ? 0 : 1,
                         .lab = classes ? y : NULL, .tgt = classes ? NULL : y};
    mem[0] = x;
    mem[1] = y;
    return DPT_OK;
}

/* Mean and standard deviation of each feature over the rows (a column
 * without spread keeps sd 1). */
static void standardize_stats(const Table *t, const size_t *rows, size_t n, float *mean, float *sd)
{
    for (size_t j = 0; j < t->d; j++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) {
            double v = t->x[rows[i] * t->d + j];
            s += v;
            s2 += v * v;
        }
        double m = n ? s / (double)n : 0, var = n ? s2 / (double)n - m * m : 0;
        mean[j] = (float)m;
        sd[j] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
    }
}

/* The statistics stored in a dataset (or model) file, for d features. */
static DptStatus stats_from(const char *path, float *mean, float *sd, size_t d)
{
    DptDataMeta m;
    DptStatus st = dpt_data_read_meta(path, &m);
    if (st == DPT_OK && !m.mean)
        st = dpt_err(DPT_EINPUT, "--standardize-from %s: no /standardize/mean and /standardize/std (was it converted "
                     "with --standardize?)", path);
    else if (st == DPT_OK && m.d != d)
        st = dpt_err(DPT_EINPUT, "--standardize-from %s: statistics of %zu features; the table has %zu", path, m.d, d);
    if (st == DPT_OK) {
        memcpy(mean, m.mean, d * sizeof *mean);
        memcpy(sd, m.sd, d * sizeof *sd);
    }
    dpt_data_meta_free(&m);
    return st;
}

/* Rows 0..n) of the training table, shuffled by (seed) when split. */
static size_t *row_order(size_t n, const DptCsvOptions *o)
{
    size_t *rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows)
        return NULL;
    for (size_t i = 0; i < n; i++)
        rows[i] = i;
    if (o->split[0] > 0 && n <= UINT32_MAX) {
        uint32_t *perm = malloc((n ? n : 1) * sizeof *perm);
        if (!perm) {
            free(rows);
            return NULL;
        }
        DptRng rng;
        dpt_rng_stream(&rng, o->seed, DPT_STREAM_SHUFFLE, 0xC5);
        dpt_rng_permutation(&rng, perm, n);
        for (size_t i = 0; i < n; i++)
            rows[i] = perm[i];
        free(perm);
    }
    return rows;
}

/* The tables as a dataset: train (and validation, test by --split, or the
 * test file), standardised if asked, with the class names. */
static DptStatus build(Table *t, int has_test, const DptCsvOptions *o, const char *out, const char *path)
{
    if (t[0].text_labels && o->regression)
        return dpt_err(DPT_EUSAGE, "--regression: %s has class names in its label column", path);
    if (t[0].text_labels)
        DPT_TRY(sort_classes(t, has_test, path));
    const int unlabeled = o->label_col && !strcmp(o->label_col, "none");
    const int classes = !unlabeled && !o->regression && labels_are_classes(&t[0]) &&
                        (!has_test || labels_are_classes(&t[1]));
    size_t n = t[0].n, d = t[0].d, *rows = row_order(n, o);
    float *mean = malloc(d * sizeof *mean), *sd = malloc(d * sizeof *sd);
    DptSplitData sp[3];
    void *mem[6] = {0};
    int n_sp = 0;
    DptStatus st = rows && mean && sd ? DPT_OK : dpt_err(DPT_ENOMEM, "%s: out of memory", path);
    /* --split train,validation,test fractions of the training file's rows. */
    size_t cut[4] = {0, n, n, n};
    if (st == DPT_OK && o->split[0] > 0) {
        cut[1] = (size_t)llround(o->split[0] * (double)n);
        cut[2] = cut[1] + (size_t)llround(o->split[1] * (double)n);
        cut[2] = cut[2] > n ? n : cut[2];
        if (cut[1] == 0 || cut[1] > n)
            st = dpt_err(DPT_EUSAGE, "--split: the training part of %s would have %zu of %zu rows", path, cut[1], n);
    }
    if (st == DPT_OK && o->standardize_from)
        st = stats_from(o->standardize_from, mean, sd, d);
    else if (st == DPT_OK && o->standardize)
        standardize_stats(&t[0], rows, cut[1], mean, sd);
    const int stdz = o->standardize || o->standardize_from;
    const char *names[3] = {"train", "validation", "test"};
    for (int s = 0; st == DPT_OK && s < 3; s++) {
        if (cut[s + 1] <= cut[s])
            continue;
        st = make_split(&t[0], names[s], rows + cut[s], cut[s + 1] - cut[s], classes, stdz ? mean : NULL,
                        stdz ? sd : NULL, &sp[n_sp], mem + 2 * n_sp);
        n_sp++;
    }
    if (st == DPT_OK && has_test) {
        size_t *trows = malloc((t[1].n ? t[1].n : 1) * sizeof *trows);
        for (size_t i = 0; trows && i < t[1].n; i++)
            trows[i] = i;
        st = trows ? make_split(&t[1], "test", trows, t[1].n, classes, stdz ? mean : NULL, stdz ? sd : NULL,
                                &sp[n_sp], mem + 2 * n_sp)
                   : dpt_err(DPT_ENOMEM, "out of memory");
        n_sp += st == DPT_OK;
        free(trows);
    }
    for (int s = 0; s < n_sp; s++)
        sp[s].unlabeled = unlabeled;
    if (st == DPT_OK) {
        DptDataMeta meta = {.class_names = t[0].names, .n_classes = t[0].text_labels ? t[0].n_names : 0,
                            .mean = stdz ? mean : NULL, .sd = stdz ? sd : NULL, .d = d};
        st = dpt_data_write_meta(out, sp, n_sp, o->description, &meta);
    }
    for (int i = 0; i < 6; i++)
        free(mem[i]);
    free(rows);
    free(mean);
    free(sd);
    return st;
}

DptStatus dpt_convert_csv(const char *train_csv, const char *test_csv, const DptCsvOptions *o, const char *out)
{
    Table t[2];
    memset(t, 0, sizeof t);
    DptStatus st = read_table(train_csv, o, &t[0]);
    if (st == DPT_OK && test_csv) {
        st = read_table(test_csv, o, &t[1]);
        if (st == DPT_OK && t[1].d != t[0].d)
            st = dpt_err(DPT_EINPUT, "%s has %zu features but %s has %zu", test_csv, t[1].d, train_csv, t[0].d);
        if (st == DPT_OK && t[1].text_labels != t[0].text_labels)
            st = dpt_err(DPT_EINPUT, "%s and %s: one has class names, the other numbers", train_csv, test_csv);
    }
    if (st == DPT_OK)
        st = build(t, test_csv != NULL, o, out, train_csv);
    table_free(&t[0]);
    table_free(&t[1]);
    return st;
}
