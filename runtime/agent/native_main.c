/* edgeforge native harness: runs a generated C package on a Linux board (agent.py native).
 *
 * Usage: model IN OUT WARMUP RUNS
 *   IN   samples back to back; each is every input's bytes in order (EF_MODEL_INPUT_BYTES)
 *   OUT  receives every sample's outputs in the same layout (EF_MODEL_OUTPUT_BYTES)
 *   then WARMUP + RUNS invocations on the last sample; stdout gets one line per timed run,
 *   the latency in nanoseconds (CLOCK_MONOTONIC); stderr gets the "VmHWM:" line of
 *   /proc/self/status (peak RSS of this program alone, unlike getrusage after a fork).
 * Exit: 0 ok, 2 usage or I/O error, 3 the model's invoke returned non-zero.
 * Uses only the name-independent glue macros of model.h, so any --name compiles.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

/* Copy the saved sample into the input tensors (the arena may reuse them for activations). */
static void load_inputs(const uint8_t *sample)
{
    size_t pos = 0;
    int i;
    for (i = 0; i < EF_MODEL_NUM_INPUTS; ++i) {
        memcpy(EF_MODEL_INPUT(i), sample + pos, (size_t)EF_MODEL_INPUT_BYTES(i));
        pos += (size_t)EF_MODEL_INPUT_BYTES(i);
    }
}

static void report_peak_rss(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            fputs(line, stderr);
        }
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    size_t in_bytes = 0;
    uint8_t *sample;
    FILE *fin;
    FILE *fout;
    long warmup;
    long runs;
    long r;
    int i;
    int have = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: %s IN OUT WARMUP RUNS\n", argv[0]);
        return 2;
    }
    warmup = strtol(argv[3], NULL, 10);
    runs = strtol(argv[4], NULL, 10);
    for (i = 0; i < EF_MODEL_NUM_INPUTS; ++i) {
        in_bytes += (size_t)EF_MODEL_INPUT_BYTES(i);
    }
    sample = (uint8_t *)malloc(in_bytes);
    fin = fopen(argv[1], "rb");
    fout = fopen(argv[2], "wb");
    if (sample == NULL || fin == NULL || fout == NULL) {
        fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    for (;;) {
        size_t got = fread(sample, 1, in_bytes, fin);
        if (got == 0) {
            break;
        }
        if (got != in_bytes) {
            fprintf(stderr, "truncated input: %zu of %zu bytes\n", got, in_bytes);
            return 2;
        }
        have = 1;
        load_inputs(sample);
        if (EF_MODEL_INVOKE() != 0) {
            fprintf(stderr, "invoke failed\n");
            return 3;
        }
        for (i = 0; i < EF_MODEL_NUM_OUTPUTS; ++i) {
            size_t n = (size_t)EF_MODEL_OUTPUT_BYTES(i);
            if (fwrite(EF_MODEL_OUTPUT(i), 1, n, fout) != n) {
                fprintf(stderr, "cannot write %s\n", argv[2]);
                return 2;
            }
        }
    }
    fclose(fin);
    if (fclose(fout) != 0) {
        return 2;
    }
    if (!have && warmup + runs > 0) {
        fprintf(stderr, "no input sample to time\n");
        return 2;
    }
    for (r = 0; r < warmup + runs; ++r) {
        int64_t t0;
        int64_t t1;
        load_inputs(sample);
        t0 = now_ns();
        if (EF_MODEL_INVOKE() != 0) {
            fprintf(stderr, "invoke failed\n");
            return 3;
        }
        t1 = now_ns();
        if (r >= warmup) {
            printf("%lld\n", (long long)(t1 - t0));
        }
    }
    free(sample);
    report_peak_rss();
    return 0;
}
