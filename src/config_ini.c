/* The config module's INI reader (private part of config; the only user of
 * libinih): `--config FILE.ini` reads [train] (or keys before any section),
 * one option per key, with the option's own parsing and errors named by the
 * file; relative paths are taken from the file's folder. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "dptrain/config.h"
#include "config_opts.h"

#include <errno.h>
#include <limits.h>
#ifdef DPT_HAVE_INIH
#include <ini.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DPT_HAVE_INIH
typedef struct {
    DptConfig *c;
    const char *path;
    DptStatus st;
} IniCtx;

static int config_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    IniCtx *ctx = user;
    if (section[0] && strcmp(section, "train") != 0) {
        ctx->st = dpt_err(DPT_EUSAGE, "%s: section [%s] (key '%s'): dptrain reads [train] only (or keys before any "
                          "section)", ctx->path, section, name);
        return 0;
    }
    const int kind = dpt_config_option_kind(name, strlen(name));
    if (!kind) {
        ctx->st = dpt_err(DPT_EUSAGE, "%s: unknown key '%s'%s", ctx->path, name, dpt_config_suggestion(name, strlen(name)));
        return 0;
    }
    if (!strcmp(name, "config")) {
        ctx->st = dpt_err(DPT_EUSAGE, "%s: a config file cannot include another", ctx->path);
        return 0;
    }
    /* An inline comment: "value  # why" or "value ; why". */
    char v[2 * DPT_PATH_MAX + 2];
    snprintf(v, sizeof v, "%s", value);
    for (char *p = v; *p; p++)
        if ((*p == '#' || *p == ';') && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    for (size_t n = strlen(v); n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'); n--)
        v[n - 1] = '\0';
    /* A file named by a relative path is taken from the INI file's folder,
     * not from wherever dptrain is started. */
    if (kind == 2 && v[0] && v[0] != '/' && strcmp(v, "latest") != 0) {
        /* Absolute, so that the resolved configuration reads back the same. */
        char dir[DPT_PATH_MAX], abs_dir[PATH_MAX], joined[PATH_MAX + sizeof v];
        const char *slash = strrchr(ctx->path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - ctx->path) : 1, slash ? ctx->path : ".");
        if (realpath(dir[0] ? dir : "/", abs_dir)) {
            snprintf(joined, sizeof joined, "%s/%s", abs_dir, v);
            snprintf(v, sizeof v, "%.*s", (int)(sizeof v - 1), joined);
        }
    }
    DptStatus st = dpt_config_set(ctx->c, name, v);
    if (st != DPT_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", dpt_err_message());
        dpt_err_clear();
        ctx->st = dpt_err(st, "%s: %s", ctx->path, why + (why[0] == '-' && why[1] == '-' ? 2 : 0));
        return 0;
    }
    return 1;
}

DptStatus dpt_config_load_ini(DptConfig *c, const char *path)
{
    IniCtx ctx = {c, path, DPT_OK};
    FILE *fp = fopen(path, "r");
    if (!fp)
        return dpt_err(DPT_EUSAGE, "--config %s: cannot open (%s)", path, strerror(errno));
    int line = ini_parse_file(fp, config_ini_handler, &ctx);
    fclose(fp);
    if (ctx.st != DPT_OK)
        return ctx.st;
    if (line != 0)
        return dpt_err(DPT_EUSAGE, "%s:%d: syntax error; expected 'key = value'", path, line);
    return dpt_config_set_string(c, &c->config, path);
}

#else
DptStatus dpt_config_load_ini(DptConfig *c, const char *path)
{
    (void)c;
    return dpt_err(DPT_EUSAGE, "--config %s: this dptrain was built without libinih (no INI files); give the "
                   "options on the command line, or rebuild with libinih", path);
}

#endif
