/* Fuzz target: the HDF5 dataset loader and the model/checkpoint loader, on
 * file images in memory (HDF5's core driver), so that the fuzzer mutates the
 * bytes of real files. */
#include <stdint.h>

#include "dptrain/ckpt.h"
#include "dptrain/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8 || size > (1u << 22))
        return 0;
    dpt_err_clear();
    (void)dpt_data_check_image(data, size, 0, 0);
    dpt_err_clear();
    (void)dpt_ckpt_check_image(data, size);
    dpt_err_clear();
    return 0;
}
