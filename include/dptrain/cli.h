/*
 * cli: the commands (train, eval, predict, convert, info), their options and
 * help texts. Returns a status; main decides how the process ends.
 * Collective: every rank runs the same command.
 */
#ifndef DPT_CLI_H
#define DPT_CLI_H

#include "dptrain/dist.h"
#include "dptrain/status.h"

/* Handles --help and --version without MPI; returns 1 if it did (and sets *st). */
int dpt_cli_early(int argc, char **argv, DptStatus *st);
DptStatus dpt_cli_run(int argc, char **argv, const DptDist *d);

#endif
