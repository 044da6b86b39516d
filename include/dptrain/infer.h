/*
 * infer: what a model does with a dataset, sharded over the ranks: splits
 * loaded once per node into shared memory, the loss and accuracy over a
 * whole split, and the `eval` and `predict` commands.
 * Collective: every function here is called by all ranks.
 */
#ifndef DPT_INFER_H
#define DPT_INFER_H

#include "dptrain/data.h"
#include "dptrain/dist.h"
#include "dptrain/net.h"
#include "dptrain/status.h"

enum { DPT_SPLIT_TRAIN, DPT_SPLIT_TEST, DPT_SPLIT_VALIDATION, DPT_N_SPLITS };
extern const char *const dpt_split_names[DPT_N_SPLITS];

/* Loads /<split> of the dataset at path ("": the root's /x and /y) into
 * node-shared memory: every rank probes (flags: dpt_data_probe's), the
 * node's first rank reads and validates it against the network's input and
 * output sizes, the others attach. An absent optional split leaves *s
 * zeroed. Release with dpt_dist_shared_free(win). */
DptStatus dpt_infer_load_split(const DptDist *d, const char *path, const char *split, int flags, const DptArch *arch,
                               DptSplit *s, void **win);

/* Loss and accuracy over a whole split, sharded by contiguous ranges and
 * reduced, in the work buffers w. */
void dpt_infer_evaluate(const DptDist *d, const DptArch *arch, const float *params, DptWork *w, const DptSplit *s,
                        double *loss, double *acc);

/* `dptrain eval`: loss and accuracy of a model on a split ("" = test if
 * present, else train). */
DptStatus dpt_eval_run(const char *model, const char *data, const char *split, const DptDist *d);

/* `dptrain predict`: outputs [N, K] and predicted classes [N] to out. */
DptStatus dpt_predict_run(const char *model, const char *data, const char *split, const char *out,
                          const DptDist *d);

#endif
