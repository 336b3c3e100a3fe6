/*  limits.c - per-team token buckets for the request rate limit */
#include "limits.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct _bk_limits_t {
    json_t *buckets; //  team -> [tokens, last refill ms]
};

bk_limits_t *bk_limits_new (void) {
    bk_limits_t *self = calloc (1, sizeof *self);
    assert (self);
    self->buckets = json_object ();
    return self;
}

void bk_limits_destroy (bk_limits_t **self_p) {
    if (*self_p) {
        json_decref ((*self_p)->buckets);
        free (*self_p);
        *self_p = NULL;
    }
}

bool bk_limits_take (bk_limits_t *self, const char *team, double rps, double burst, int64_t now_ms,
                     int *retry_after_s) {
    if (rps <= 0)
        return true;
    if (burst < 1)
        burst = rps < 1 ? 1 : rps;
    json_t *bucket = json_object_get (self->buckets, team);
    double tokens = burst;
    if (bucket) {
        double last = (double) json_integer_value (json_array_get (bucket, 1));
        tokens = json_real_value (json_array_get (bucket, 0)) + (now_ms - last) / 1000.0 * rps;
        if (tokens > burst)
            tokens = burst;
    }
    bool allowed = tokens >= 1;
    if (allowed)
        tokens -= 1;
    else
        *retry_after_s = (int) ceil ((1 - tokens) / rps) > 0 ? (int) ceil ((1 - tokens) / rps) : 1;
    json_object_set_new (self->buckets, team, json_pack ("[f, I]", tokens, (json_int_t) now_ms));
    return allowed;
}

void bk_limits_test (bool verbose) {
    bk_limits_t *limits = bk_limits_new ();
    int retry = 0;
    //  burst of 3 at 1/s: three pass, the fourth waits a second
    for (int i = 0; i < 3; i++)
        assert (bk_limits_take (limits, "a", 1, 3, 1000, &retry));
    assert (!bk_limits_take (limits, "a", 1, 3, 1000, &retry) && retry == 1);
    assert (bk_limits_take (limits, "b", 1, 3, 1000, &retry)); //  teams are apart
    assert (!bk_limits_take (limits, "a", 1, 3, 1500, &retry));
    assert (bk_limits_take (limits, "a", 1, 3, 2000, &retry));
    //  slow rates ask for longer waits; unlimited never refuses
    assert (bk_limits_take (limits, "c", 0.1, 1, 0, &retry));
    assert (!bk_limits_take (limits, "c", 0.1, 1, 0, &retry) && retry == 10);
    for (int i = 0; i < 1000; i++)
        assert (bk_limits_take (limits, "d", 0, 0, 0, &retry));
    bk_limits_destroy (&limits);
    if (verbose)
        printf ("bk_limits: ok\n");
}
