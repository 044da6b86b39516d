/*
 * convert: datasets from common formats, written as dptrain dataset files
 * (through data): MNIST-style IDX files (gzip or plain) and CSV tables.
 * Not collective.
 */
#ifndef DPT_CONVERT_H
#define DPT_CONVERT_H

#include "dptrain/status.h"

/* idx: image and label files (gzip or plain), test pair optional. */
DptStatus dpt_convert_idx(const char *train_images, const char *train_labels,
                          const char *test_images, const char *test_labels,
                          const char *out, const char *description);
#include <stdint.h>

/* csv: tables as pandas and spreadsheets write them (see src/csv.c). */
typedef struct {
    const char *label_col;        /* 0-based index, header name, "last" or "none"; NULL = last */
    const char *index_col;        /* a column to drop; NULL = pandas' unnamed first column if any */
    int header;                   /* 1 yes, 0 no, -1 detect */
    char sep;                     /* ',' ';' '\t', or 0 = detect */
    char decimal;                 /* ',' for a decimal comma ("4,5"; with ';' or tab), else '.' */
    int regression;               /* labels are float targets even if whole numbers */
    float scale;                  /* features multiplied by this (before standardising) */
    double split[3];              /* train, validation, test fractions of the training file; [0] = 0: none */
    uint64_t seed;                /* the shuffle before --split */
    int standardize;              /* x = (x - mean) / std, statistics of the training rows */
    const char *standardize_from; /* or the statistics stored in this dataset file */
    const char *description;
} DptCsvOptions;

/* The train table (and optional test table) as a dataset file. */
DptStatus dpt_convert_csv(const char *train_csv, const char *test_csv, const DptCsvOptions *o, const char *out);

/* A CSV table of inputs only (every column a feature, as for predict); a
 * first line that is not numbers is taken as a header. *x [n, d] is malloc'd. */
DptStatus dpt_convert_read_features(const char *path, float **x, size_t *n, size_t *d);

#endif
