/*  limits.h - per-team token buckets for the request rate limit */
#ifndef BK_LIMITS_H
#define BK_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct _bk_limits_t bk_limits_t;

bk_limits_t *bk_limits_new (void);
void bk_limits_destroy (bk_limits_t **self_p);

//  Takes one token from team's bucket (rate rps per second, capacity
//  burst; rps 0 means unlimited). Returns true when allowed; otherwise sets
//  *retry_after_s to the whole seconds until a token is there (>= 1).
bool bk_limits_take (bk_limits_t *self, const char *team, double rps, double burst, int64_t now_ms,
                     int *retry_after_s);

void bk_limits_test (bool verbose);

#endif
