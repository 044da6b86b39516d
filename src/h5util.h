/*
 * h5util: the HDF5 helpers shared by the file modules data, ckpt and trace
 * (the only modules that talk to HDF5). A private header (src/, not
 * include/): nothing outside the file modules sees <hdf5.h>. Every function checks every return and turns a failure into
 * a one-line message naming the file and the object. Files we write go to a
 * temporary name in the same directory, are flushed and fsync'd, then renamed
 * over the target, and the directory is fsync'd: whole or not at all.
 */
#ifndef DPT_H5UTIL_H
#define DPT_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "dptrain/data.h"
#include "dptrain/status.h"

/* Before any other HDF5 call: no error printing by HDF5, no exit handler.
 * Every helper that opens or creates a file calls it first (idempotent). */
void dpt_h5_init(void);

/* Opens an existing HDF5 file read-only, with a clear message for a missing,
 * empty, unreadable or non-HDF5 file. Silences HDF5's own error printing. */
DptStatus dpt_h5_open_read(const char *path, hid_t *f);
/* H5Fopen read-only / H5Fcreate (truncating) with fapl; where the file
 * system refuses HDF5's file lock, tried again without it (h5util.c). */
hid_t dpt_h5_fopen_read(const char *path, hid_t fapl);
hid_t dpt_h5_fcreate(const char *path, hid_t fapl);
/* Like dpt_h5_open_read, from a file image in memory (core driver). */
DptStatus dpt_h5_open_image(const void *buf, size_t len, hid_t *f);
/* The file the crash net names (h5net.c): every open and create says which
 * file HDF5 works on from now, and whether for writing. */
void dpt_h5_net_file(const char *path, int writing);
/* The crash net's signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) back
 * to their default action, whatever handles them now: for a forked child
 * that is to die quietly. */
void dpt_h5_net_default(void);
/* Does the object at `path` (a/b/c, relative to loc) exist? */
int dpt_h5_exists(hid_t loc, const char *path);
/* Is the type of dataset or attribute obj an integer or a float (cls) of 1 to
 * 8 bytes? A damaged file can claim any size, and HDF5 then allocates
 * conversion buffers of that size per element (found by fuzzing: an
 * "integer" of 4 GB per value). */
int dpt_h5_is_number(hid_t obj, H5T_class_t cls);
/* H5Dread of the whole dataset d into buf (memory type mt), after checking
 * what HDF5 1.10 does not: a dataset with the fletcher32 filter must have
 * every stored chunk at least as long as the 4-byte checksum. The library
 * subtracts 4 from a chunk's stored size unchecked, so a damaged chunk index
 * made it checksum gigabytes past its buffer (found by fuzzing). Returns
 * H5Dread's value, or -1 for such a chunk. */
herr_t dpt_h5_read_all(hid_t d, hid_t mt, void *buf);

DptStatus dpt_h5_read_attr_double(hid_t obj, const char *name, double *v);
DptStatus dpt_h5_read_attr_int64(hid_t obj, const char *name, int64_t *v);
/* Reads a 1-D integer attribute into v[cap]; *n = its length. */
DptStatus dpt_h5_read_attr_ints(hid_t obj, const char *name, int *v, int cap, int *n);
/* A string attribute, fixed- or variable-length (h5py's default for str;
 * read in a child process with a time bound, since a damaged global heap
 * can make HDF5 1.10 loop forever: see h5util.c), into buf[len]. */
DptStatus dpt_h5_read_attr_string(hid_t obj, const char *name, char *buf, size_t len);
/* An attribute that is an array of n strings (fixed- or variable-length, the
 * latter read as dpt_h5_read_attr_string does), into buf as n consecutive
 * NUL-terminated strings; an error if they do not fit len bytes. */
DptStatus dpt_h5_read_attr_strings(hid_t obj, const char *name, char *buf, size_t len, size_t *n);
/* File-access properties for the files we create (checksummed metadata). */
hid_t dpt_h5_create_fapl(void);

DptStatus dpt_h5_write_attr_double(hid_t obj, const char *name, double v, const char *file);
DptStatus dpt_h5_write_attr_int64(hid_t obj, const char *name, int64_t v, const char *file);
DptStatus dpt_h5_write_attr_ints(hid_t obj, const char *name, const int *v, int n, const char *file);
DptStatus dpt_h5_write_attr_string(hid_t obj, const char *name, const char *v, const char *file);

/* Writes a whole dataset. Chunked with the Fletcher32 checksum filter, so that
 * corruption is detected on read; `compress` adds deflate (level 1). */
DptStatus dpt_h5_write_dataset(hid_t loc, const char *name, hid_t mem_type, int rank, const hsize_t *dims,
                               const void *data, int compress, const char *file);

/* Creates "<out>.tmp.<pid>" for writing; tmp receives its name. */
DptStatus dpt_h5_create_tmp(const char *out, char *tmp, size_t tmp_len, hid_t *f);
/* Flushes and closes *f, fsyncs, renames tmp over out, fsyncs the directory.
 * On failure the temporary file is removed and out is left untouched. */
DptStatus dpt_h5_commit_tmp(hid_t *f, const char *tmp, const char *out);

/* The class names (root attribute class_names) and the standardisation
 * (/standardize/mean, /standardize/std) of a dataset or model file. read
 * fills m (to be freed with dpt_data_meta_free, also after an error). */
DptStatus dpt_h5_write_meta(hid_t f, const DptDataMeta *m, const char *file);
DptStatus dpt_h5_read_meta(hid_t f, const char *path, DptDataMeta *m);

#endif
