/*  limits.h - per-team token buckets for the request rate limit

    One bucket per team, in memory only (a restart refills every bucket).
*/
#ifndef BK_LIMITS_H
#define BK_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct _bk_limits_t bk_limits_t;

bk_limits_t *bk_limits_new (void);
void bk_limits_destroy (bk_limits_t **self_p);

//  Takes one token from team's bucket (rate rps per second, capacity
//  burst, below 1: the larger of rps and 1; rps 0 means unlimited).
//  Returns true when allowed; otherwise sets *retry_after_s to the whole
//  seconds until a token is there (>= 1). now_ms is a monotonic clock.
bool bk_limits_take (bk_limits_t *self, const uint8_t team[16], double rps, double burst,
                     int64_t now_ms, int *retry_after_s);

void bk_limits_test (bool verbose);

#endif
