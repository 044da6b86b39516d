/* The config module's private interface between its option table
 * (config.c) and its INI reader (config_ini.c). */
#ifndef DPT_CONFIG_OPTS_H
#define DPT_CONFIG_OPTS_H

#include <stddef.h>

#include "dptrain/config.h"

/* 0 if name[0..len) is no option, 2 if the option names a file (a relative
 * value in an INI file is taken from the file's folder), else 1. */
int dpt_config_option_kind(const char *name, size_t len);
/* "; did you mean --x?" for the nearest option name (at most 2 edits away),
 * or "" (a static buffer). */
const char *dpt_config_suggestion(const char *name, size_t len);
/* *field := a copy of v that c owns (freed by dpt_config_free). */
DptStatus dpt_config_set_string(DptConfig *c, const char **field, const char *v);

#endif
