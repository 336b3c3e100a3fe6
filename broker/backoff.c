/*  backoff.c - retry delays: exponential, linear, fixed, exponential_jitter */
#include "backoff.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char *s_names[BK_BACKOFF_COUNT] = {"exponential", "linear", "fixed",
                                                "exponential_jitter"};

const char *bk_backoff_name (int strategy) {
    return strategy >= 0 && strategy < BK_BACKOFF_COUNT ? s_names[strategy] : NULL;
}

int bk_backoff_parse (const char *name, size_t n) {
    for (int i = 0; name && i < BK_BACKOFF_COUNT; i++)
        if (strlen (s_names[i]) == n && memcmp (s_names[i], name, n) == 0)
            return i;
    return -1;
}

int64_t bk_backoff_ms (int strategy, int n, int64_t base_ms, int64_t cap_ms,
                       int64_t retry_after_ms) {
    if (n < 1)
        n = 1;
    int64_t delay;
    if (strategy == BK_BACKOFF_LINEAR)
        delay = base_ms * n;
    else if (strategy == BK_BACKOFF_FIXED)
        delay = base_ms;
    else {
        int shift = n - 1 > 40 ? 40 : n - 1;
        delay = base_ms << shift;
        if (delay > cap_ms || delay < 0)
            delay = cap_ms;
        if (strategy == BK_BACKOFF_JITTER && delay > 1)
            delay = delay / 2 + (int64_t) randombytes_uniform ((uint32_t) (delay / 2 + 1));
    }
    if (delay > cap_ms)
        delay = cap_ms;
    if (retry_after_ms > delay)
        delay = retry_after_ms < cap_ms ? retry_after_ms : cap_ms;
    return delay;
}

void bk_backoff_test (bool verbose) {
    assert (bk_backoff_ms (BK_BACKOFF_EXPONENTIAL, 1, 1000, 3600000, -1) == 1000);
    assert (bk_backoff_ms (BK_BACKOFF_EXPONENTIAL, 3, 1000, 3600000, -1) == 4000);
    assert (bk_backoff_ms (BK_BACKOFF_EXPONENTIAL, 30, 1000, 3600000, -1) == 3600000);
    assert (bk_backoff_ms (BK_BACKOFF_EXPONENTIAL, 100, 1000, 3600000, -1) == 3600000);
    assert (bk_backoff_ms (BK_BACKOFF_LINEAR, 3, 1000, 3600000, -1) == 3000);
    assert (bk_backoff_ms (BK_BACKOFF_FIXED, 7, 1000, 3600000, -1) == 1000);
    for (int i = 0; i < 1000; i++) {
        int64_t d = bk_backoff_ms (BK_BACKOFF_JITTER, 3, 1000, 3600000, -1);
        assert (d >= 2000 && d <= 4000);
    }
    assert (bk_backoff_parse ("exponential_jitter", 18) == BK_BACKOFF_JITTER);
    assert (bk_backoff_parse ("linea", 5) == -1 && !bk_backoff_name (BK_BACKOFF_COUNT));
    assert (strcmp (bk_backoff_name (BK_BACKOFF_FIXED), "fixed") == 0);
    //  Retry-After lengthens a delay, never shortens it, and obeys the cap
    assert (bk_backoff_ms (BK_BACKOFF_FIXED, 1, 1000, 3600000, 5000) == 5000);
    assert (bk_backoff_ms (BK_BACKOFF_FIXED, 1, 1000, 3600000, 10) == 1000);
    assert (bk_backoff_ms (BK_BACKOFF_FIXED, 1, 1000, 60000, 7200000) == 60000);
    if (verbose)
        printf ("bk_backoff: ok\n");
}
