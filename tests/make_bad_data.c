/* Writes the malformed and special dataset files used by cli_bad_input.sh
 * into the directory given as argv[1]. Each file is small. */
#include <hdf5.h>
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

int main(int argc, char **argv)
{
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
