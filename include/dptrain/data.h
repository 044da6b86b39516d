/*
 * data: dataset files (HDF5, layout in DESIGN.md), their validation, the
 * gathering of a batch, and the writing of datasets and predictions (the
 * converters from IDX and CSV are in convert).
 *
 *   /<split>/x  [N, D] float32 (or float64, read as float32), or uint8 with an
 *               optional attribute `scale` (x = scale * value; default 1)
 *   /<split>/y  [N] integer class labels, or [N, K] float targets
 *
 * Loading is two-phase so that the node's ranks can share one copy: every
 * rank probes the shapes (cheap), the caller provides memory (dist's shared
 * window), one rank per node loads into it. One of the file modules (data,
 * ckpt, trace) that talk to HDF5. Not collective.
 */
#ifndef DPT_DATA_H
#define DPT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

typedef struct {
    int present;          /* 0 if the split is not in the file */
    size_t n, d;          /* rows, features */
    int x_u8;             /* 1: stored as uint8 (kept so in memory), 0: float32 */
    float x_scale;        /* uint8 only */
    int y_labels;         /* 1: integer labels [n], 0: float targets [n, k] */
    size_t k;             /* target columns (float targets) */
    int unlabeled;        /* 1: no /y (inputs only, for predict) */
} DptSplitInfo;

/* Flags of dpt_data_probe. */
enum { DPT_PROBE_REQUIRED = 1, DPT_PROBE_UNLABELED_OK = 2 };

typedef struct {
    DptSplitInfo info;
    const void *x;        /* [n, d] uint8 or float, not owned (shared window or heap) */
    const int32_t *lab;   /* [n] labels, when info.y_labels */
    const float *tgt;     /* [n, k] targets, otherwise */
} DptSplit;

/* Bytes of memory a split needs: x, then y, each padded to 64 bytes. */
size_t dpt_data_bytes(const DptSplitInfo *info);

/* Reads the shapes and types of /<split> (split "": the file's root, /x and
 * /y). A missing split gives present = 0 and DPT_OK unless flags has
 * DPT_PROBE_REQUIRED; a missing y is an error unless DPT_PROBE_UNLABELED_OK
 * (then unlabeled = 1). Bad shapes or types give DPT_EINPUT. */
DptStatus dpt_data_probe(const char *path, const char *split, int flags, DptSplitInfo *info);

/* Reads /<split> into mem (dpt_data_bytes(info) bytes) and points s into it. */
DptStatus dpt_data_load(const char *path, const char *split, const DptSplitInfo *info, void *mem, DptSplit *s);
/* Points s into memory already loaded (by another rank of the node). */
void dpt_data_attach(DptSplit *s, const DptSplitInfo *info, void *mem);

/* Probes, loads and validates every split of an HDF5 file image in memory
 * (the fuzzers' entry point; n_in, n_out <= 0: taken from the file, 10 classes). */
DptStatus dpt_data_check_image(const void *buf, size_t len, int n_in, int n_out);

/* Checks values: finite x and targets, labels in [0, n_out) (or {0, 1} when
 * n_out == 1), D == n_in, K == n_out. Names the file, dataset and row. */
DptStatus dpt_data_validate(const DptSplit *s, const char *path, const char *split, int n_in, int n_out);

/* Fills x[n, d], dense targets y[n, k_out] and classes cls[n] with rows
 * idx[0..n) of s, or rows first..first+n when idx is NULL. */
void dpt_data_gather(float *restrict x, float *restrict y, int32_t *restrict cls, const DptSplit *s,
                     const uint32_t *idx, size_t first, size_t n, size_t k_out);

/* Writes a dataset file from memory (used by converters, tools and tests).
 * x is uint8 (with scale) when x_u8, else float; y labels or targets. */
typedef struct {
    const char *name;     /* "train", "test", "validation" */
    size_t n, d;
    int x_u8;
    float x_scale;
    const void *x;
    int y_labels;
    size_t k;
    const int32_t *lab;
    const float *tgt;
    int unlabeled;        /* 1: write x only (inputs for predict) */
} DptSplitData;
DptStatus dpt_data_write(const char *out, const DptSplitData *splits, int n_splits, const char *description);

/* What a dataset knows besides its splits, and what a model trained on it
 * keeps: the names of the classes (label i is class_names[i]; the root
 * attribute class_names, K strings) and the standardisation applied to x
 * (x = (raw - mean) / std; /standardize/mean and /standardize/std, [D]
 * float32), so that new inputs are converted the same way. NULL/0: none. */
typedef struct {
    char **class_names;   /* [n_classes], pointing into name_buf when read */
    size_t n_classes;
    float *mean, *sd;     /* [d] */
    size_t d;
    char *name_buf;       /* owned by a meta that dpt_data_read_meta filled */
} DptDataMeta;
DptStatus dpt_data_write_meta(const char *out, const DptSplitData *splits, int n_splits, const char *description,
                              const DptDataMeta *meta);
/* Reads the meta of a dataset, model or checkpoint file (none is not an
 * error); free with dpt_data_meta_free (also after an error). */
DptStatus dpt_data_read_meta(const char *path, DptDataMeta *m);
void dpt_data_meta_free(DptDataMeta *m);
/* Prints the class names and standardisation of a file, if any. */
void dpt_data_describe_meta(const char *path, void *stream);

/* Writes /predictions/output [n, k] float32 and /predictions/class [n] int32
 * to an HDF5 file (with the class_names attribute when names has them), or,
 * when out ends in ".csv", a CSV table with a header
 * (class[,name],output_0,...,output_{k-1}) and one row per sample. */
DptStatus dpt_data_write_predictions(const char *out, const float *outputs, const int32_t *cls, size_t n, size_t k,
                                     const char *model, const char *split, const DptDataMeta *names);

/* Prints a description of an HDF5 file (dataset, model or checkpoint). */
DptStatus dpt_data_describe_dataset(const char *path, void *stream);

/* The crash net for every HDF5 file dptrain reads or writes (data, models,
 * checkpoints, traces; src/h5net.c): a crash inside the HDF5 library (a
 * damaged file can make HDF5 1.10 read through a null pointer) ends in the
 * one-line error naming the file and status 3 (reading) or 4 (writing);
 * fatal(status), if given, runs first (main: MPI_Abort, so that no other
 * rank waits); quiet: no line (main: on ranks other than the first of
 * their node, which read the same files at the same time and would print
 * the same line). Crashes elsewhere go to the handlers installed before.
 * Call after MPI_Init (Open MPI installs its own handlers there). Returns 1
 * if installed, 0 where the library's code cannot be told from ours (HDF5
 * linked statically). */
int dpt_h5_net_install(void (*fatal)(int status), int quiet);

#endif
