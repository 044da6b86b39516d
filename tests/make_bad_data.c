#define _POSIX_C_SOURCE 200809L
/* Writes the malformed and special dataset files used by cli_bad_input.sh
 * into the directory given as argv[1]. Each file is small.
 *   make_bad_data DIR                   the dataset files
 *   make_bad_data flip FILE DATASET     flips one byte inside the dataset's first chunk
 *   make_bad_data version FILE N        sets the root attribute format_version to N */
#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dataset(hid_t g, const char *name, hid_t type, int rank, const hsize_t *dims, const void *data)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (data)
        H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(sp);
}

/* /train/x [n, d] (type xt, rank xr), /train/y [n] int32 or as given. */
static void make(const char *dir, const char *file, hid_t xt, int xr, const hsize_t *xd, const void *x, hid_t yt,
                 int yr, const hsize_t *yd, const void *y)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (x || xd)
        dataset(g, "x", xt, xr, xd, x);
    if (y || yd)
        dataset(g, "y", yt, yr, yd, y);
    H5Gclose(g);
    H5Fclose(f);
}

static int flip(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (d >= 0) {
        hid_t sp = H5Dget_space(d);
        hsize_t offset[8];
        unsigned mask;
        if (H5Dget_chunk_info(d, sp, 0, offset, &mask, &addr, &size) < 0)
            addr = H5Dget_offset(d);
        H5Sclose(sp);
        H5Dclose(d);
    }
    if (f >= 0)
        H5Fclose(f);
    if (addr == HADDR_UNDEF) {
        fprintf(stderr, "flip: cannot locate %s in %s\n", name, path);
        return 1;
    }
    int fd = open(path, O_RDWR);
    unsigned char b;
    off_t at = (off_t)addr + 5;
    if (fd < 0 || pread(fd, &b, 1, at) != 1)
        return 1;
    b ^= 0x5a;
    int ok = pwrite(fd, &b, 1, at) == 1;
    close(fd);
    return ok ? 0 : 1;
}

static int set_version(const char *path, long long v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        return 1;
    int64_t x = v;
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &x) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5Fclose(f);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "flip") == 0)
        return flip(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "version") == 0)
        return set_version(argv[2], atoll(argv[3]));
    if (argc != 2) {
        fprintf(stderr, "usage: make_bad_data DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    float x[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    int32_t y[4] = {0, 1, 2, 1}, yo[4] = {0, 1, 7, 1};
    hsize_t d42[2] = {4, 2}, d4[1] = {4}, d3[1] = {3}, d421[3] = {4, 2, 1}, d02[2] = {0, 2}, d0[1] = {0};
    make(dir, "good.h5", H5T_NATIVE_FLOAT, 2, d42, x, H5T_NATIVE_INT32, 1, d4, y);
    make(dir, "labels-out-of-range.h5", H5T_NATIVE_FLOAT, 2, d42, x, H5T_NATIVE_INT32, 1, d4, yo);
    make(dir, "wrong-rank.h5", H5T_NATIVE_FLOAT, 3, d421, x, H5T_NATIVE_INT32, 1, d4, y);
    make(dir, "wrong-type.h5", H5T_NATIVE_INT32, 2, d42, x, H5T_NATIVE_INT32, 1, d4, y);
    make(dir, "zero-rows.h5", H5T_NATIVE_FLOAT, 2, d02, NULL, H5T_NATIVE_INT32, 1, d0, NULL);
    make(dir, "mismatched.h5", H5T_NATIVE_FLOAT, 2, d42, x, H5T_NATIVE_INT32, 1, d3, y);
    make(dir, "no-labels.h5", H5T_NATIVE_FLOAT, 2, d42, x, 0, 0, NULL, NULL);
    float xn[8];
    memcpy(xn, x, sizeof x);
    xn[5] = NAN;
    make(dir, "nan.h5", H5T_NATIVE_FLOAT, 2, d42, xn, H5T_NATIVE_INT32, 1, d4, y);
    xn[5] = INFINITY;
    make(dir, "inf.h5", H5T_NATIVE_FLOAT, 2, d42, xn, H5T_NATIVE_INT32, 1, d4, y);
    hsize_t dwide[2] = {2, 1000000}, d2[1] = {2};
    float *wide = calloc(2000000, sizeof(float));
    make(dir, "million-columns.h5", H5T_NATIVE_FLOAT, 2, dwide, wide, H5T_NATIVE_INT32, 1, d2, y);
    free(wide);
    /* a file with no /train group */
    char path[1024];
    snprintf(path, sizeof path, "%s/no-train.h5", dir);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "other", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);
    return 0;
}
