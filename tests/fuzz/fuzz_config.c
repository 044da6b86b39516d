/* Fuzz target: the command line and the INI file of `dptrain train`.
 * The input is split at NUL bytes and newlines into argument words, parsed
 * and validated; then the whole input is parsed as an INI file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dptrain/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[256];
    int argc = 0;
    char *p = buf;
    for (size_t i = 0; i <= size && argc < 256; i++) {
        if (buf[i] == '\0' || buf[i] == '\n') {
            buf[i] = '\0';
            if (*p && strcmp(p, "--config") != 0 && strncmp(p, "--config=", 9) != 0)
                argv[argc++] = p;
            p = buf + i + 1;
        }
    }
    DptConfig c;
    dpt_config_defaults(&c);
    dpt_err_clear();
    if (dpt_config_parse(&c, argc, argv) == DPT_OK)
        (void)dpt_config_validate(&c);
    char text[16384];
    dpt_config_format(&c, text, sizeof text);
    /* the same bytes as an INI file */
    char path[64];
    snprintf(path, sizeof path, "/tmp/dpt-fuzz-%ld.ini", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, size, f);
        fclose(f);
        dpt_config_defaults(&c);
        dpt_err_clear();
        if (dpt_config_load_ini(&c, path) == DPT_OK)
            (void)dpt_config_validate(&c);
        unlink(path);
    }
    dpt_err_clear();
    free(buf);
    return 0;
}
