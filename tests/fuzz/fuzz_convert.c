/* Fuzz target: the IDX and CSV converters. The first byte chooses the
 * format; for IDX the next two bytes give where the images file ends and the
 * labels file begins. The files are written to /tmp and converted to an HDF5
 * file there, which is then checked as a dataset. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dptrain/convert.h"
#include "dptrain/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fwrite(p, 1, n, f);
    fclose(f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > (1u << 20))
        return 0;
    char a[64], b[64], out[64];
    long pid = (long)getpid();
    snprintf(a, sizeof a, "/tmp/dpt-fuzz-%ld-a", pid);
    snprintf(b, sizeof b, "/tmp/dpt-fuzz-%ld-b", pid);
    snprintf(out, sizeof out, "/tmp/dpt-fuzz-%ld.h5", pid);
    dpt_err_clear();
    DptStatus st;
    if (data[0] & 1) {
        size_t cut = 3 + ((size_t)data[1] << 8 | data[2]);
        if (cut > size)
            cut = size;
        write_file(a, data + 3, cut - 3);
        write_file(b, data + cut, size - cut);
        st = dpt_convert_idx(a, b, NULL, NULL, out, NULL);
    } else {
        write_file(a, data + 1, size - 1);
        DptCsvOptions o = {.label_col = (data[0] >> 1) % 3 == 2 ? "0" : (data[0] >> 1) % 3 == 1 ? "none" : NULL,
                           .header = (data[0] >> 3) % 3 - 1, .scale = 1.0f, .standardize = (data[0] >> 5) & 1,
                           .split = {(data[0] >> 6) & 1 ? 0.5 : 0.0, (data[0] >> 6) & 1 ? 0.5 : 0.0, 0.0}};
        st = dpt_convert_csv(a, NULL, &o, out);
    }
    if (st == DPT_OK) {
        DptSplitInfo info;
        dpt_err_clear();
        (void)dpt_data_probe(out, "train", 1, &info);
    }
    unlink(a);
    unlink(b);
    unlink(out);
    dpt_err_clear();
    return 0;
}
