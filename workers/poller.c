/*  poller.c - one epoll set for a worker: the sockets of its calls and its
    own fds

    Each socket has an entry by fd number: what its owner wants, what is
    registered, whether it is the engine's own (opened and closed through
    this module) and whether its want changed since the last wait.
*/
#include "poller.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_EVENTS_MAX 256          //  events taken per wait
#define S_WATCHED    (1ULL << 32) //  epoll data of a watched fd: this | its bits
#define S_NONE       0xFF         //  s_fd_t.have: not in the set

typedef struct {
    uint8_t want; //  EPOLLIN | EPOLLOUT as wanted; 0: not watched
    uint8_t have; //  as registered, or S_NONE
    bool ours;    //  opened by the engine: its close is told
    bool dirty;   //  want changed since the last wait
} s_fd_t;

struct _wk_poller_t {
    int epoll;        //  the set
    s_fd_t *fds;      //  sockets, by number
    size_t fds_max;   //  entries in fds
    int *dirty;       //  fds whose want changed, to apply before the wait
    size_t ndirty;    //  how many
    size_t dirty_max; //  allocated entries
};

wk_poller_t *wk_poller_new (void) {
    wk_poller_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->epoll = epoll_create1 (EPOLL_CLOEXEC);
    if (self->epoll < 0) {
        free (self);
        return NULL;
    }
    return self;
}

void wk_poller_destroy (wk_poller_t **self_p) {
    assert (self_p);
    wk_poller_t *self = *self_p;
    if (!self)
        return;
    close (self->epoll);
    free (self->fds);
    free (self->dirty);
    free (self);
    *self_p = NULL;
}

int wk_poller_watch (wk_poller_t *self, int fd, unsigned bits) {
    assert (self);
    assert (fd >= 0 && bits && bits < (1U << 31));
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = S_WATCHED | bits};
    return epoll_ctl (self->epoll, EPOLL_CTL_ADD, fd, &event);
}

void wk_poller_unwatch (wk_poller_t *self, int fd) {
    assert (self);
    epoll_ctl (self->epoll, EPOLL_CTL_DEL, fd, NULL);
}

//  The entry of fd, the table grown as needed; NULL when out of memory.
static s_fd_t *s_fd (wk_poller_t *self, int fd) {
    if (fd < 0)
        return NULL;
    if ((size_t) fd >= self->fds_max) {
        size_t max = self->fds_max ? self->fds_max : 64;
        while (max <= (size_t) fd)
            max *= 2;
        s_fd_t *fds = realloc (self->fds, max * sizeof *fds);
        if (!fds)
            return NULL;
        for (size_t i = self->fds_max; i < max; i++)
            fds[i] = (s_fd_t){.have = S_NONE};
        self->fds = fds;
        self->fds_max = max;
    }
    return &self->fds[fd];
}

//  Brings fd's registration in line with its want: an idle socket of ours
//  stays as it is. 0, or -1 when epoll refuses.
static int s_apply (wk_poller_t *self, int fd) {
    s_fd_t *entry = &self->fds[fd];
    entry->dirty = false;
    if (entry->want == 0) {
        if (!entry->ours && entry->have != S_NONE) {
            epoll_ctl (self->epoll, EPOLL_CTL_DEL, fd, NULL); //  may be closed: no matter
            entry->have = S_NONE;
        }
        return 0;
    }
    if (entry->want == entry->have && entry->ours)
        return 0; //  a socket of ours is in the set until it is closed
    struct epoll_event event = {.events = entry->want, .data.u64 = (uint64_t) fd};
    int rc =
        epoll_ctl (self->epoll, entry->have == S_NONE ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event);
    if (rc != 0 && (errno == EEXIST || errno == ENOENT))
        rc = epoll_ctl (self->epoll, errno == EEXIST ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event);
    entry->have = rc == 0 ? entry->want : S_NONE;
    return rc;
}

int wk_poller_opened (wk_poller_t *self, int fd) {
    assert (self);
    s_fd_t *entry = s_fd (self, fd);
    if (!entry)
        return -1;
    //  A new socket is in no epoll set, whatever its number was before
    *entry = (s_fd_t){.have = S_NONE, .ours = true, .dirty = entry->dirty};
    return 0;
}

void wk_poller_closed (wk_poller_t *self, int fd) {
    assert (self);
    if (fd >= 0 && (size_t) fd < self->fds_max)
        self->fds[fd] = (s_fd_t){.have = S_NONE, .dirty = self->fds[fd].dirty};
}

int wk_poller_want (wk_poller_t *self, int fd, unsigned events) {
    assert (self);
    s_fd_t *entry = s_fd (self, fd);
    if (!entry)
        return -1;
    entry->want =
        (uint8_t) ((events & WK_POLLER_IN ? EPOLLIN : 0) | (events & WK_POLLER_OUT ? EPOLLOUT : 0));
    if (!entry->ours)
        return s_apply (self, fd); //  at once: it may close without a word
    if (!entry->dirty) {
        if (self->ndirty == self->dirty_max) {
            size_t max = self->dirty_max ? 2 * self->dirty_max : 64;
            int *dirty = realloc (self->dirty, max * sizeof *dirty);
            if (!dirty)
                return s_apply (self, fd);
            self->dirty = dirty;
            self->dirty_max = max;
        }
        self->dirty[self->ndirty++] = fd;
        entry->dirty = true;
    }
    return 0;
}

unsigned wk_poller_wait (wk_poller_t *self, long timeout_ms, wk_poller_fn *ready, void *arg) {
    assert (self && ready);
    for (size_t i = 0; i < self->ndirty; i++)
        if (self->fds[self->dirty[i]].dirty)
            s_apply (self, self->dirty[i]);
    self->ndirty = 0;
    struct epoll_event events[S_EVENTS_MAX];
    int timeout = timeout_ms > INT32_MAX ? INT32_MAX : (int) timeout_ms;
    int n = epoll_wait (self->epoll, events, S_EVENTS_MAX, timeout);
    unsigned fired = 0;
    for (int i = 0; i < n; i++) {
        uint64_t data = events[i].data.u64;
        if (data & S_WATCHED) {
            fired |= (unsigned) data;
            continue;
        }
        int fd = (int) data;
        s_fd_t *entry = (size_t) fd < self->fds_max ? &self->fds[fd] : NULL;
        if (entry && entry->want == 0 && !entry->dirty) {
            //  An idle socket of ours (a peer closing it): out of the set
            //  until it is wanted again
            epoll_ctl (self->epoll, EPOLL_CTL_DEL, fd, NULL);
            entry->have = S_NONE;
            continue;
        }
        uint32_t got = events[i].events;
        ready (arg, fd,
               (got & EPOLLIN ? WK_POLLER_IN : 0) | (got & EPOLLOUT ? WK_POLLER_OUT : 0) |
                   (got & (EPOLLERR | EPOLLHUP) ? WK_POLLER_ERR : 0));
    }
    return fired;
}

//  --------------------------------------------------------------------------
//  Selftest

typedef struct {
    int fd;          //  the last socket reported
    unsigned events; //  its events
    int calls;       //  reports
} s_seen_t;

static void s_ready (void *arg, int fd, unsigned events) {
    s_seen_t *seen = arg;
    seen->fd = fd;
    seen->events = events;
    seen->calls++;
}

void wk_poller_test (bool verbose) {
    wk_poller_t *poller = wk_poller_new ();
    assert (poller);
    s_seen_t seen = {0};
    assert (wk_poller_wait (poller, 0, s_ready, &seen) == 0 && seen.calls == 0);

    //  A watched fd is reported by its bits while readable
    int pipe_fds[2];
    assert (pipe (pipe_fds) == 0);
    assert (wk_poller_watch (poller, pipe_fds[0], 2) == 0);
    assert (write (pipe_fds[1], "x", 1) == 1);
    assert (wk_poller_wait (poller, 1000, s_ready, &seen) == 2 && seen.calls == 0);
    assert (wk_poller_wait (poller, 0, s_ready, &seen) == 2); //  level-triggered
    char byte;
    assert (read (pipe_fds[0], &byte, 1) == 1);
    assert (wk_poller_wait (poller, 0, s_ready, &seen) == 0);
    wk_poller_unwatch (poller, pipe_fds[0]);

    //  A socket of ours: reported while wanted; unwanted, it stays quiet
    //  (and leaves the set when it fires); wanted again, it is back
    int pair[2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    assert (wk_poller_opened (poller, pair[0]) == 0);
    assert (wk_poller_want (poller, pair[0], WK_POLLER_OUT) == 0);
    assert (wk_poller_wait (poller, 1000, s_ready, &seen) == 0);
    assert (seen.calls == 1 && seen.fd == pair[0] && seen.events == WK_POLLER_OUT);
    assert (wk_poller_want (poller, pair[0], WK_POLLER_IN) == 0);
    assert (wk_poller_wait (poller, 0, s_ready, &seen) == 0 && seen.calls == 1);
    assert (write (pair[1], "y", 1) == 1);
    assert (wk_poller_wait (poller, 1000, s_ready, &seen) == 0);
    assert (seen.calls == 2 && seen.events == WK_POLLER_IN);
    assert (wk_poller_want (poller, pair[0], 0) == 0);
    assert (wk_poller_wait (poller, 0, s_ready, &seen) == 0 && seen.calls == 2);
    assert (wk_poller_want (poller, pair[0], WK_POLLER_IN) == 0);
    assert (wk_poller_wait (poller, 0, s_ready, &seen) == 0 && seen.calls == 3);
    assert (read (pair[0], &byte, 1) == 1);

    //  Closed and its number taken by a new socket: that one is registered
    wk_poller_closed (poller, pair[0]);
    close (pair[0]);
    close (pair[1]);
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    assert (wk_poller_opened (poller, pair[0]) == 0);
    assert (wk_poller_want (poller, pair[0], WK_POLLER_IN) == 0);
    assert (write (pair[1], "z", 1) == 1);
    assert (wk_poller_wait (poller, 1000, s_ready, &seen) == 0);
    assert (seen.calls == 4 && seen.fd == pair[0] && seen.events == WK_POLLER_IN);

    //  A socket not ours follows at once: unwanted, it leaves the set
    assert (wk_poller_want (poller, pair[1], WK_POLLER_OUT) == 0);
    assert (wk_poller_want (poller, pair[0], 0) == 0);
    assert (wk_poller_wait (poller, 0, s_ready, &seen) == 0);
    assert (seen.calls == 5 && seen.fd == pair[1]);
    assert (wk_poller_want (poller, pair[1], 0) == 0);
    assert (wk_poller_wait (poller, 0, s_ready, &seen) == 0 && seen.calls == 5);
    if (verbose)
        printf ("  %d socket events reported\n", seen.calls);
    close (pair[0]);
    close (pair[1]);
    close (pipe_fds[0]);
    close (pipe_fds[1]);
    wk_poller_destroy (&poller);
    assert (!poller);
}
