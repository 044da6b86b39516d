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
/* csv: numeric rows; the label column is `label_col` (0-based, -1 = last);
 * `header` skips the first line. Test file optional. */
DptStatus dpt_convert_csv(const char *train_csv, const char *test_csv, int label_col, int header,
                          float scale, const char *out);

/* A CSV table of inputs only (every column a feature, as for predict); a
 * first line that is not numbers is taken as a header. *x [n, d] is malloc'd. */
DptStatus dpt_convert_read_features(const char *path, float **x, size_t *n, size_t *d);

#endif
