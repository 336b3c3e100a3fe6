/*  aq_notify.c - telling systemd how the program is: READY, STOPPING, WATCHDOG */
#include "aq_notify.h"
#include "aq_log.h"
#include "aq_time.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

typedef struct {
    atomic_llong turned; //  mono ms of its last turn
    char name[32];       //  for the warning when it is late
    bool used;           //  a loop holds this slot
    bool late;           //  warned about since it last turned in time
} s_loop_t;

static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER; //  all below but the atomics
static bool s_started;                                      //  the environment was read
static bool s_enabled;                                      //  NOTIFY_SOCKET is set
static uint64_t s_usec;                                     //  watchdog interval, 0 for none
static atomic_llong s_half_ms;                              //  half of it in ms, 0 for none
static atomic_llong s_last_pet;                             //  mono ms of the last WATCHDOG=1
static atomic_bool s_stopping;                              //  STOPPING=1 went
static atomic_bool s_is_ready;                              //  READY=1 went
static int s_expected = 1;                                  //  parts READY=1 waits for
static int s_ready;                                         //  parts up
static bool s_failed;                                       //  a send failed (warned once)
static s_loop_t s_loops[AQ_NOTIFY_LOOPS];

//  Reads the environment once; call with s_mutex held.
static void s_start (void) {
    if (s_started)
        return;
    s_started = true;
    s_enabled = getenv ("NOTIFY_SOCKET") != NULL;
    uint64_t usec = 0;
    if (s_enabled && sd_watchdog_enabled (0, &usec) > 0 && usec > 0) {
        s_usec = usec;
        int64_t half = (int64_t) (usec / 2000);
        atomic_store (&s_half_ms, half > 0 ? half : 1);
    }
}

//  Sends state; call with s_mutex held.
static void s_send (const char *state) {
    if (!s_enabled)
        return;
    int rc = sd_notify (0, state);
    if (rc < 0 && !s_failed) {
        s_failed = true;
        aq_log (AQ_LOG_WARN, "notify", "cannot notify '%s': %s", getenv ("NOTIFY_SOCKET"),
                strerror (-rc));
    }
}

void aq_notify_expect (int parts) {
    assert (parts >= 1);
    pthread_mutex_lock (&s_mutex);
    s_expected = parts;
    pthread_mutex_unlock (&s_mutex);
}

void aq_notify_ready (const char *part) {
    pthread_mutex_lock (&s_mutex);
    s_start ();
    char state[160];
    if (++s_ready == s_expected) {
        snprintf (state, sizeof state, "READY=1\nSTATUS=ready");
        atomic_store (&s_is_ready, true);
    } else
        snprintf (state, sizeof state, "STATUS=starting: %s up (%d of %d)", part, s_ready,
                  s_expected);
    if (s_ready <= s_expected && !atomic_load (&s_stopping))
        s_send (state);
    pthread_mutex_unlock (&s_mutex);
}

void aq_notify_stopping (void) {
    pthread_mutex_lock (&s_mutex);
    s_start ();
    if (!atomic_exchange (&s_stopping, true))
        s_send ("STOPPING=1\nSTATUS=stopping");
    pthread_mutex_unlock (&s_mutex);
}

int aq_notify_loop_new (const char *name) {
    pthread_mutex_lock (&s_mutex);
    s_start ();
    int loop = -1;
    for (int i = 0; i < AQ_NOTIFY_LOOPS && loop < 0; i++)
        if (!s_loops[i].used) {
            s_loop_t *slot = &s_loops[i];
            slot->used = true;
            slot->late = false;
            snprintf (slot->name, sizeof slot->name, "%s", name);
            atomic_store (&slot->turned, aq_time_mono_ms ());
            loop = i;
        }
    pthread_mutex_unlock (&s_mutex);
    return loop;
}

void aq_notify_loop_end (int loop) {
    if (loop < 0)
        return;
    assert (loop < AQ_NOTIFY_LOOPS);
    pthread_mutex_lock (&s_mutex);
    s_loops[loop].used = false;
    pthread_mutex_unlock (&s_mutex);
}

void aq_notify_loop_turn (int loop) {
    if (loop < 0)
        return;
    assert (loop < AQ_NOTIFY_LOOPS);
    int64_t now = aq_time_mono_ms ();
    atomic_store (&s_loops[loop].turned, now);
    int64_t half = atomic_load (&s_half_ms);
    if (half == 0 || now - atomic_load (&s_last_pet) < half || atomic_load (&s_stopping) ||
        !atomic_load (&s_is_ready))
        return; //  the usual case: a few atomic loads and a store
    pthread_mutex_lock (&s_mutex);
    bool pet = now - atomic_load (&s_last_pet) >= half && !atomic_load (&s_stopping);
    for (int i = 0; i < AQ_NOTIFY_LOOPS && pet; i++) {
        s_loop_t *slot = &s_loops[i];
        int64_t since = now - atomic_load (&slot->turned);
        if (!slot->used || since <= half)
            slot->late = false;
        else {
            if (!slot->late)
                aq_log (AQ_LOG_WARN, "notify",
                        "the %s loop has not turned for %lld ms: the watchdog is not petted",
                        slot->name, (long long) since);
            slot->late = true;
            pet = false;
        }
    }
    if (pet) {
        s_send ("WATCHDOG=1");
        atomic_store (&s_last_pet, now);
    }
    pthread_mutex_unlock (&s_mutex);
}

uint64_t aq_notify_watchdog_usec (void) {
    pthread_mutex_lock (&s_mutex);
    s_start ();
    uint64_t usec = s_usec;
    pthread_mutex_unlock (&s_mutex);
    return usec;
}

//  --------------------------------------------------------------------------
//  Selftest: a datagram socket of our own as NOTIFY_SOCKET

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

//  Forgets everything, as a fresh process would.
static void s_reset (void) {
    pthread_mutex_lock (&s_mutex);
    s_started = s_enabled = s_failed = false;
    s_usec = 0;
    atomic_store (&s_half_ms, 0);
    atomic_store (&s_last_pet, 0);
    atomic_store (&s_stopping, false);
    atomic_store (&s_is_ready, false);
    s_expected = 1;
    s_ready = 0;
    memset (s_loops, 0, sizeof s_loops);
    pthread_mutex_unlock (&s_mutex);
}

//  The next datagram within ms as a string (caller frees), or NULL.
static char *s_next (int fd, int ms) {
    struct timeval timeout = {ms / 1000, (ms % 1000) * 1000};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char buffer[512];
    ssize_t size = recv (fd, buffer, sizeof buffer - 1, 0);
    if (size < 0)
        return NULL;
    buffer[size] = '\0';
    return strdup (buffer);
}

static void s_expect (int fd, const char *state) {
    char *got = s_next (fd, 1000);
    if (!got || strcmp (got, state) != 0)
        fprintf (stderr, "aq_notify: expected '%s', got '%s'\n", state, got ? got : "(nothing)");
    assert (got && strcmp (got, state) == 0);
    free (got);
}

static void s_expect_nothing (int fd) {
    char *got = s_next (fd, 1);
    if (got)
        fprintf (stderr, "aq_notify: expected nothing, got '%s'\n", got);
    assert (!got);
}

static void s_sleep_ms (int ms) {
    usleep ((useconds_t) ms * 1000);
}

void aq_notify_test (bool verbose) {
    if (verbose)
        printf (" * aq_notify: ");
    aq_log_set_level (verbose ? AQ_LOG_DEBUG : AQ_LOG_ERROR);

    //  No NOTIFY_SOCKET: a plain program, every call does nothing
    unsetenv ("NOTIFY_SOCKET");
    setenv ("WATCHDOG_USEC", "1000000", 1);
    s_reset ();
    assert (aq_notify_watchdog_usec () == 0);
    int quiet = aq_notify_loop_new ("quiet");
    assert (quiet >= 0);
    aq_notify_ready ("all");
    aq_notify_loop_turn (quiet);
    aq_notify_stopping ();
    aq_notify_loop_end (quiet);

    //  A socket of our own
    char path[108];
    snprintf (path, sizeof path, "/tmp/aq-notify-test-%d", (int) getpid ());
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf (address.sun_path, sizeof address.sun_path, "%s", path);
    unlink (path);
    assert (fd >= 0 && bind (fd, (struct sockaddr *) &address, sizeof address) == 0);
    setenv ("NOTIFY_SOCKET", path, 1);
    s_reset ();
    assert (aq_notify_watchdog_usec () == 1000000);

    //  READY=1 waits for every expected part; no WATCHDOG=1 before it
    int a = aq_notify_loop_new ("broker"), b = aq_notify_loop_new ("gateway");
    assert (a >= 0 && b >= 0 && a != b);
    aq_notify_expect (3);
    aq_notify_ready ("broker");
    s_expect (fd, "STATUS=starting: broker up (1 of 3)");
    aq_notify_ready ("gateway");
    s_expect (fd, "STATUS=starting: gateway up (2 of 3)");
    aq_notify_loop_turn (a);
    aq_notify_loop_turn (b);
    s_expect_nothing (fd);
    aq_notify_ready ("worker");
    s_expect (fd, "READY=1\nSTATUS=ready");
    aq_notify_ready ("late");
    s_expect_nothing (fd);

    //  WATCHDOG=1 at most every half interval (500 ms here)...
    aq_notify_loop_turn (a);
    s_expect (fd, "WATCHDOG=1");
    aq_notify_loop_turn (a);
    aq_notify_loop_turn (b);
    s_expect_nothing (fd);
    s_sleep_ms (300);
    aq_notify_loop_turn (b);
    s_sleep_ms (300);
    aq_notify_loop_turn (a);
    s_expect (fd, "WATCHDOG=1");

    //  ...and not while one loop stalls, however busy the others are
    for (int i = 0; i < 6; i++) {
        s_sleep_ms (150);
        aq_notify_loop_turn (a);
    }
    s_expect_nothing (fd);
    aq_notify_loop_turn (b);
    s_expect (fd, "WATCHDOG=1");

    //  A loop that ended is not waited on
    aq_notify_loop_end (b);
    s_sleep_ms (600);
    aq_notify_loop_turn (a);
    s_expect (fd, "WATCHDOG=1");
    aq_notify_loop_turn (-1);
    aq_notify_loop_end (-1);

    //  Every slot taken: -1, which is then ignored
    for (int i = 0; i < AQ_NOTIFY_LOOPS - 1; i++)
        assert (aq_notify_loop_new ("many") >= 0);
    assert (aq_notify_loop_new ("one too many") == -1);
    for (int i = 0; i < AQ_NOTIFY_LOOPS; i++)
        if (i != a)
            aq_notify_loop_end (i);

    //  STOPPING=1 once; no WATCHDOG=1 after it
    aq_notify_stopping ();
    s_expect (fd, "STOPPING=1\nSTATUS=stopping");
    aq_notify_stopping ();
    s_sleep_ms (600);
    aq_notify_loop_turn (a);
    s_expect_nothing (fd);
    aq_notify_loop_end (a);

    //  WATCHDOG_USEC unset: no watchdog, READY=1 still goes
    unsetenv ("WATCHDOG_USEC");
    s_reset ();
    assert (aq_notify_watchdog_usec () == 0);
    a = aq_notify_loop_new ("broker");
    aq_notify_ready ("broker");
    s_expect (fd, "READY=1\nSTATUS=ready");
    aq_notify_loop_turn (a);
    s_expect_nothing (fd);
    aq_notify_loop_end (a);

    close (fd);
    unlink (path);
    unsetenv ("NOTIFY_SOCKET");
    s_reset ();
    if (verbose)
        printf ("OK\n");
}
