/*  backoff.h - retry delays: exponential, linear, fixed, exponential_jitter */
#ifndef BK_BACKOFF_H
#define BK_BACKOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BK_BACKOFF_EXPONENTIAL, //  base*2^(n-1)
    BK_BACKOFF_LINEAR,      //  base*n
    BK_BACKOFF_FIXED,       //  base
    BK_BACKOFF_JITTER,      //  "exponential_jitter": half the exponential delay plus a random
                            //  part up to the other half (equal jitter)
    BK_BACKOFF_COUNT
} bk_backoff_t;

//  "exponential", "linear", "fixed", "exponential_jitter"; NULL if invalid.
const char *bk_backoff_name (int strategy);
//  The strategy named name (n bytes), or -1.
int bk_backoff_parse (const char *name, size_t n);

//  Delay in ms before retry number n (1 = first retry) under strategy,
//  capped at cap_ms. A Retry-After the target sent (retry_after_ms >= 0)
//  is honoured up to the cap.
int64_t bk_backoff_ms (int strategy, int n, int64_t base_ms, int64_t cap_ms,
                       int64_t retry_after_ms);

void bk_backoff_test (bool verbose);

#endif
