/*  clockshift.c - LD_PRELOAD shim for the process tests: moves the wall clock

    AQ_CLOCK_SHIFT_MS=<signed ms> LD_PRELOAD=build/lib/aq-clockshift.so PROGRAM

    Adds the shift to CLOCK_REALTIME (and its coarse variant), gettimeofday
    and time; the monotonic clocks are left alone, so intervals, heartbeats
    and timers behave. tests/test_upgrade.py starts a broker on an old data
    directory as if only seconds had passed since it was written (an
    idempotency key lives 24 h, a waiting task maxWaitTime), or hours later
    (a schedule's next fire time). Under AddressSanitizer preload its
    runtime first: LD_PRELOAD="libasan.so.N aq-clockshift.so". A test tool:
    never installed.
*/
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*s_clock_gettime_fn) (clockid_t, struct timespec *);
typedef int (*s_gettimeofday_fn) (struct timeval *, void *);

static int64_t s_shift_ms (void) {
    static int64_t shift;
    static int known;
    if (!known) {
        const char *text = getenv ("AQ_CLOCK_SHIFT_MS");
        shift = text ? strtoll (text, NULL, 10) : 0;
        known = 1;
    }
    return shift;
}

static void s_shift_timespec (struct timespec *ts) {
    int64_t ns = (int64_t) ts->tv_sec * 1000000000LL + ts->tv_nsec + s_shift_ms () * 1000000LL;
    int64_t sec = ns / 1000000000LL, rest = ns % 1000000000LL;
    if (rest < 0) {
        rest += 1000000000LL;
        sec--;
    }
    ts->tv_sec = (time_t) sec;
    ts->tv_nsec = (long) rest;
}

__attribute__ ((visibility ("default"))) int clock_gettime (clockid_t clock, struct timespec *ts) {
    static s_clock_gettime_fn real;
    if (!real)
        real = (s_clock_gettime_fn) dlsym (RTLD_NEXT, "clock_gettime");
    int rc = real (clock, ts);
    if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        s_shift_timespec (ts);
    return rc;
}

__attribute__ ((visibility ("default"))) int gettimeofday (struct timeval *tv, void *tz) {
    static s_gettimeofday_fn real;
    if (!real)
        real = (s_gettimeofday_fn) dlsym (RTLD_NEXT, "gettimeofday");
    int rc = real (tv, tz);
    if (rc == 0) {
        struct timespec ts = {tv->tv_sec, (long) tv->tv_usec * 1000};
        s_shift_timespec (&ts);
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

__attribute__ ((visibility ("default"))) time_t time (time_t *out) {
    struct timespec ts;
    if (clock_gettime (CLOCK_REALTIME, &ts) != 0)
        return (time_t) -1;
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
