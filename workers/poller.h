/*  poller.h - one epoll set for a worker: the sockets of its calls and its
    own fds

    The calls' sockets are curl's: curl says which it wants watched, for
    what (wk_poller_want), and which it opened and closed. curl drops a
    connection's socket when a call ends and takes it up again for the next
    call on it: two epoll_ctl per call if followed to the letter. So the
    set follows lazily: wants are applied before each wait, a socket the
    engine opened (wk_poller_opened) stays registered while idle and leaves
    when it fires unwanted or is closed (wk_poller_closed); any other socket
    follows at once, since it may be closed without a word. The worker's
    own fds (ZMQ_FDs) are watched as they are and reported as bits.
*/
#ifndef WK_POLLER_H
#define WK_POLLER_H

#include <stdbool.h>

#define WK_POLLER_IN  1 //  readable
#define WK_POLLER_OUT 2 //  writable
#define WK_POLLER_ERR 4 //  error or hang-up (reported only)

typedef struct _wk_poller_t wk_poller_t;

//  A new, empty set; NULL when out of memory or fds.
wk_poller_t *wk_poller_new (void);
//  Frees the set (not the fds in it). Accepts NULL; sets *self_p to NULL.
void wk_poller_destroy (wk_poller_t **self_p);

//  Watches fd (the caller's) for reading; wk_poller_wait returns bits
//  (nonzero, below 1 << 31) while it is readable. 0, or -1 with errno.
int wk_poller_watch (wk_poller_t *self, int fd, unsigned bits);
//  Stops watching fd (before the caller closes it).
void wk_poller_unwatch (wk_poller_t *self, int fd);

//  A socket the engine just opened: it follows lazily, and its closing
//  must be told. 0, or -1 when out of memory.
int wk_poller_opened (wk_poller_t *self, int fd);
//  That socket is being closed (closing takes it out of the set).
void wk_poller_closed (wk_poller_t *self, int fd);
//  Watch fd for events (WK_POLLER_IN | WK_POLLER_OUT), or not at all (0).
//  0, or -1 when out of memory or epoll refuses.
int wk_poller_want (wk_poller_t *self, int fd, unsigned events);

//  Called by wk_poller_wait for each wanted socket that is ready.
typedef void (wk_poller_fn) (void *arg, int fd, unsigned events);

//  Applies the wants, waits at most timeout_ms (0: not at all, -1: no
//  limit), calls ready for each wanted socket that is ready, and returns
//  the bits of the watched fds that are readable (0 when none).
unsigned wk_poller_wait (wk_poller_t *self, long timeout_ms, wk_poller_fn *ready, void *arg);

void wk_poller_test (bool verbose);

#endif
