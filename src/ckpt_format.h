/* The checkpoint module's private interface between its files: the names in
 * a model or checkpoint file (defined once) and the readers that ckpt.c
 * (save, load) and ckpt_info.c (dptrain info) share. */
#ifndef DPT_CKPT_FORMAT_H
#define DPT_CKPT_FORMAT_H

#include <hdf5.h>

#include "dptrain/ckpt.h"

/* Names of groups, datasets and attributes: defined once. */
#define G_MODEL "model"
#define G_CONFIG "config"
#define A_FORMAT "format"
#define A_FORMAT_VERSION "format_version"
#define A_VERSION "dptrain_version"
#define A_LAYERS "layers"
#define A_HIDDEN "hidden"
#define A_OUTPUT "output"
#define A_COST "cost"
#define D_WEIGHT "weight"
#define D_BIAS "bias"
#define G_OPTIMIZER "optimizer"
#define G_TRAIN "train"
#define D_HISTORY "metrics/history"
#define A_RUN_ID "run_id"
#define A_KERNEL "kernel"

/* f is a dptrain model or checkpoint of this format version (*is_ckpt: has
 * training state; may be NULL), else a clear error naming path. */
DptStatus dpt_ckpt_check_format(hid_t f, const char *path, int *is_ckpt);
/* The architecture stored in f. */
DptStatus dpt_ckpt_read_arch(hid_t f, const char *path, DptArch *arch);
/* The scalar fixed-length text dataset `name` (NULL if absent; free it). */
DptStatus dpt_ckpt_read_text(hid_t f, const char *path, const char *name, char **text);

#endif
