/*
 * log: what the trainer prints. Rank 0 prints information (stdout) and the
 * progress bar (stderr, only on a terminal); warnings from any rank go to
 * stderr with a "[rank r]" prefix; errors are printed once, by main.
 */
#ifndef DPT_LOG_H
#define DPT_LOG_H

void dpt_log_init(int rank, int world_size, int quiet, int progress);
void dpt_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dpt_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dpt_log_error(const char *msg);
/* Redraws the progress bar (epoch, steps, loss, samples/s, time left) at
 * most 10 times a second; done == total clears it. */
void dpt_log_progress(long epoch, long done, long total, double loss, double samples_per_s, double eta_s);

#endif
