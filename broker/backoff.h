/*  backoff.h - retry delays: exponential, linear, fixed, exponential_jitter */
#ifndef BK_BACKOFF_H
#define BK_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

//  Delay in ms before retry number n (1 = first retry) under strategy
//  ("exponential" base*2^(n-1), "linear" base*n, "fixed" base,
//  "exponential_jitter" equal jitter: half the exponential delay plus a
//  random part up to the other half), capped at cap_ms. A Retry-After the
//  target sent (retry_after_ms >= 0) is honoured up to the cap.
int64_t bk_backoff_ms (const char *strategy, int n, int64_t base_ms, int64_t cap_ms,
                       int64_t retry_after_ms);

void bk_backoff_test (bool verbose);

#endif
