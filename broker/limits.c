/*  limits.c - per-team token buckets for the request rate limit */
#include "limits.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double tokens; //  left at last
    int64_t last;  //  ms of the last take
} s_bucket_t;

struct _bk_limits_t {
    zhashx_t *buckets; //  team id (16 bytes) -> s_bucket_t (owned)
};

//  zhashx keys that are 16-byte ids (a UUIDv7's last 8 bytes are random).
static size_t s_id_hash (const void *key) {
    uint64_t h;
    memcpy (&h, (const uint8_t *) key + 8, sizeof h);
    return (size_t) h;
}

static int s_id_compare (const void *a, const void *b) {
    return memcmp (a, b, 16);
}

static void *s_id_dup (const void *key) {
    void *copy = malloc (16);
    assert (copy);
    return memcpy (copy, key, 16);
}

static void s_free (void **item) {
    free (*item);
    *item = NULL;
}

bk_limits_t *bk_limits_new (void) {
    bk_limits_t *self = calloc (1, sizeof *self);
    assert (self);
    self->buckets = zhashx_new ();
    assert (self->buckets);
    zhashx_set_key_hasher (self->buckets, s_id_hash);
    zhashx_set_key_comparator (self->buckets, s_id_compare);
    zhashx_set_key_duplicator (self->buckets, s_id_dup);
    zhashx_set_key_destructor (self->buckets, s_free);
    zhashx_set_destructor (self->buckets, s_free);
    return self;
}

void bk_limits_destroy (bk_limits_t **self_p) {
    assert (self_p);
    if (*self_p) {
        zhashx_destroy (&(*self_p)->buckets);
        free (*self_p);
        *self_p = NULL;
    }
}

bool bk_limits_take (bk_limits_t *self, const uint8_t team[16], double rps, double burst,
                     int64_t now_ms, int *retry_after_s) {
    if (rps <= 0)
        return true;
    if (burst < 1)
        burst = rps < 1 ? 1 : rps;
    s_bucket_t *bucket = zhashx_lookup (self->buckets, team);
    if (!bucket) {
        bucket = malloc (sizeof *bucket);
        assert (bucket);
        bucket->tokens = burst;
        bucket->last = now_ms;
        zhashx_insert (self->buckets, team, bucket);
    }
    double tokens = bucket->tokens + (double) (now_ms - bucket->last) / 1000.0 * rps;
    if (tokens > burst)
        tokens = burst;
    bool allowed = tokens >= 1;
    if (allowed)
        tokens -= 1;
    else {
        int wait = (int) ceil ((1 - tokens) / rps);
        *retry_after_s = wait > 0 ? wait : 1;
    }
    bucket->tokens = tokens;
    bucket->last = now_ms;
    return allowed;
}

//  --------------------------------------------------------------------------

void bk_limits_test (bool verbose) {
    bk_limits_t *limits = bk_limits_new ();
    uint8_t a[16] = {1}, b[16] = {2}, c[16] = {3}, d[16] = {4};
    a[15] = b[15] = 7; //  same hash, different teams
    int retry = 0;
    //  burst of 3 at 1/s: three pass, the fourth waits a second
    for (int i = 0; i < 3; i++)
        assert (bk_limits_take (limits, a, 1, 3, 1000, &retry));
    assert (!bk_limits_take (limits, a, 1, 3, 1000, &retry) && retry == 1);
    assert (bk_limits_take (limits, b, 1, 3, 1000, &retry)); //  teams are apart
    assert (!bk_limits_take (limits, a, 1, 3, 1500, &retry));
    assert (bk_limits_take (limits, a, 1, 3, 2000, &retry));
    //  slow rates ask for longer waits; unlimited never refuses
    assert (bk_limits_take (limits, c, 0.1, 1, 0, &retry));
    assert (!bk_limits_take (limits, c, 0.1, 1, 0, &retry) && retry == 10);
    for (int i = 0; i < 1000; i++)
        assert (bk_limits_take (limits, d, 0, 0, 0, &retry));
    //  no burst given: the rate itself (here 2), refilled over time up to it
    assert (bk_limits_take (limits, d, 2, 0, 0, &retry) &&
            bk_limits_take (limits, d, 2, 0, 0, &retry));
    assert (!bk_limits_take (limits, d, 2, 0, 0, &retry) && retry == 1);
    assert (bk_limits_take (limits, d, 2, 0, 60000, &retry) &&
            bk_limits_take (limits, d, 2, 0, 60000, &retry));
    assert (!bk_limits_take (limits, d, 2, 0, 60000, &retry));
    bk_limits_destroy (&limits);
    assert (!limits);
    bk_limits_destroy (&limits);
    if (verbose)
        printf ("bk_limits: ok\n");
}
