/* The data module's private interface between its files: the names in a
 * dataset file (defined once) and the helpers that data.c (probe, load,
 * write) and data_info.c (dptrain info) share. */
#ifndef DPT_DATA_FORMAT_H
#define DPT_DATA_FORMAT_H

#include <hdf5.h>
#include <stddef.h>

#include "dptrain/data.h"

/* Dataset and attribute names: defined once. */
#define DS_X "x"
#define DS_Y "y"
#define ATTR_SCALE "scale"
#define ATTR_DESCRIPTION "description"

/* "<split>/<ds>", or "<ds>" at the root (split ""). */
void dpt_data_ds_name(char *name, size_t len, const char *split, const char *ds);
/* Probes /<split> of the open file f; path names it in messages. */
DptStatus dpt_data_probe_f(hid_t f, const char *path, const char *split, int flags, DptSplitInfo *info);

#endif
