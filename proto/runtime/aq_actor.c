/*  aq_actor.c - a component (broker, gateway, worker) as a czmq zactor

    The actor's thread runs the component, then says how it ended (DONE or
    FAILED) and stays until zactor_destroy's $TERM, so the program always
    learns the end and zactor_destroy never waits on a thread that left.
*/
#include "aq_actor.h"

#include <assert.h>
#include <signal.h>
#include <pthread.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct _aq_actor_t {
    zsock_t *pipe; //  the actor's end, owned by zactor
    void *ctx;     //  the process's ZeroMQ context (zsys)
    int level;     //  AQ_ACTOR_RUN, _STOP or _HURRY
    bool term;     //  $TERM read: zactor_destroy waits for the end
    bool ready;    //  READY sent
};

//  What aq_actor_start hands its thread; the thread frees it.
typedef struct {
    aq_actor_fn *run;
    const void *cfg;
    char name[16];
} s_args_t;

static bool s_is (const char *msg, const char *word) {
    return msg && strcmp (msg, word) == 0;
}

static void s_read (aq_actor_t *self, const char *msg) {
    if (s_is (msg, "$TERM"))
        self->term = true;
    if (s_is (msg, "$TERM") || s_is (msg, "STOP"))
        self->level = self->level > AQ_ACTOR_STOP ? self->level : AQ_ACTOR_STOP;
    else if (s_is (msg, "HURRY"))
        self->level = AQ_ACTOR_HURRY;
}

static void s_thread (zsock_t *pipe, void *arg) {
    s_args_t *args = (s_args_t *) arg;
    pthread_setname_np (pthread_self (), args->name);
    aq_actor_t self = {.pipe = pipe, .ctx = zsys_init ()};
    zsock_signal (pipe, 0); //  zactor_new returns; READY or FAILED follows
    int rc = args->run (args->cfg, &self);
    free (args);
    const char *end = rc == 0 ? "DONE" : "FAILED";
    zstr_send (pipe, end);
    //  Until zactor_destroy: each STOP (a program that missed the first
    //  word) gets the word again.
    while (!self.term) {
        char *msg = zstr_recv (pipe);
        if (!msg)
            break;
        s_read (&self, msg);
        if (s_is (msg, "STOP") || s_is (msg, "HURRY"))
            zstr_send (pipe, end);
        zstr_free (&msg);
    }
}

zactor_t *aq_actor_start (const char *name, aq_actor_fn *run, const void *cfg) {
    s_args_t *args = (s_args_t *) calloc (1, sizeof *args);
    if (!args)
        return NULL;
    args->run = run;
    args->cfg = cfg;
    snprintf (args->name, sizeof args->name, "%s", name);
    zactor_t *actor = zactor_new (s_thread, args);
    if (!actor) {
        free (args);
        return NULL;
    }
    char *msg = zstr_recv (actor);
    bool ready = s_is (msg, "READY");
    zstr_free (&msg);
    if (!ready)
        zactor_destroy (&actor);
    return actor;
}

//  Reads one pending signal from sigfd.
static void s_take_signal (int sigfd) {
    struct signalfd_siginfo info;
    if (read (sigfd, &info, sizeof info) < 0)
        return; //  nothing to do: the poll said it was readable
}

int aq_actor_stop (zactor_t **self_p, int sigfd, bool *hurry) {
    assert (self_p);
    if (!*self_p)
        return 0;
    zactor_t *self = *self_p;
    int rc = 0;
    zstr_send (self, hurry && *hurry ? "HURRY" : "STOP");
    for (;;) {
        zmq_pollitem_t items[] = {{zsock_resolve (self), 0, ZMQ_POLLIN, 0},
                                  {NULL, sigfd, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, sigfd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            s_take_signal (sigfd);
            zstr_send (self, "HURRY");
            if (hurry)
                *hurry = true;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char *msg = zstr_recv (self);
            bool done = !msg || s_is (msg, "DONE") || s_is (msg, "FAILED");
            rc = s_is (msg, "FAILED") ? -1 : 0;
            zstr_free (&msg);
            if (done)
                break;
        }
    }
    zactor_destroy (self_p);
    return rc;
}

int aq_actor_wait (zactor_t **actors, int n, int sigfd) {
    zmq_pollitem_t *items = (zmq_pollitem_t *) calloc ((size_t) n + 1, sizeof *items);
    assert (items);
    int rc = 0;
    for (int i = 0; i < n; i++)
        items[i] = (zmq_pollitem_t){zsock_resolve (actors[i]), 0, ZMQ_POLLIN, 0};
    items[n] = (zmq_pollitem_t){NULL, sigfd, ZMQ_POLLIN, 0};
    for (bool over = false; !over;) {
        if (zmq_poll (items, sigfd >= 0 ? n + 1 : n, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        if (items[n].revents & ZMQ_POLLIN) {
            s_take_signal (sigfd);
            over = true;
        }
        for (int i = 0; i < n; i++)
            if (items[i].revents & ZMQ_POLLIN) {
                char *msg = zstr_recv (actors[i]);
                if (!msg || s_is (msg, "FAILED") || s_is (msg, "DONE"))
                    rc = -1, over = true; //  a component ended by itself
                zstr_free (&msg);
            }
    }
    free (items);
    return rc;
}

//  --------------------------------------------------------------------------

void *aq_actor_ctx (aq_actor_t *self) {
    return self->ctx;
}

void *aq_actor_socket (aq_actor_t *self) {
    return zsock_resolve (self->pipe);
}

void aq_actor_ready (aq_actor_t *self) {
    if (!self->ready)
        zstr_send (self->pipe, "READY");
    self->ready = true;
}

int aq_actor_command (aq_actor_t *self) {
    for (;;) {
        char *msg = zstr_recv_nowait (self->pipe);
        if (!msg)
            break;
        s_read (self, msg);
        zstr_free (&msg);
    }
    return self->level;
}

int aq_actor_level (const aq_actor_t *self) {
    return self->level;
}

//  --------------------------------------------------------------------------
//  Selftest

//  A component that serves until told, counting its turns.
static int s_counter (const void *cfg, aq_actor_t *actor) {
    int mode = *(const int *) cfg; //  0 serve, 1 fail to start, 2 fail after start
    if (mode == 1)
        return -1;
    aq_actor_ready (actor);
    if (mode == 2)
        return -1;
    while (true) {
        zmq_pollitem_t item = {aq_actor_socket (actor), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 1000) > 0 && aq_actor_command (actor) != AQ_ACTOR_RUN)
            break;
    }
    return 0;
}

//  A component that stops only when hurried.
static int s_slow (const void *cfg, aq_actor_t *actor) {
    aq_actor_ready (actor);
    while (aq_actor_level (actor) < AQ_ACTOR_HURRY) {
        zmq_pollitem_t item = {aq_actor_socket (actor), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 1000) > 0)
            aq_actor_command (actor);
    }
    return 0;
}

void aq_actor_test (bool verbose) {
    if (verbose)
        printf (" * aq_actor: ");
    //  serves until STOP; zactor_destroy's $TERM also stops it
    int serve = 0, fail = 1, late = 2;
    zactor_t *actor = aq_actor_start ("aq-test", s_counter, &serve);
    assert (actor);
    assert (aq_actor_stop (&actor, -1, NULL) == 0 && !actor);
    actor = aq_actor_start ("aq-test", s_counter, &serve);
    assert (actor);
    zactor_destroy (&actor);

    //  a component that cannot start gives NULL, joined
    assert (aq_actor_start ("aq-test", s_counter, &fail) == NULL);

    //  one that fails after READY wakes aq_actor_wait, and stops as failed
    zactor_t *two[2] = {aq_actor_start ("aq-test", s_counter, &serve),
                        aq_actor_start ("aq-test", s_counter, &late)};
    assert (two[0] && two[1]);
    assert (aq_actor_wait (two, 2, -1) == -1);
    assert (aq_actor_stop (&two[1], -1, NULL) == -1);
    assert (aq_actor_stop (&two[0], -1, NULL) == 0);

    //  a signal on sigfd ends the wait, and a second one hurries a stop
    sigset_t signals, old;
    sigemptyset (&signals);
    sigaddset (&signals, SIGUSR1);
    pthread_sigmask (SIG_BLOCK, &signals, &old);
    int sigfd = signalfd (-1, &signals, SFD_CLOEXEC);
    assert (sigfd >= 0);
    actor = aq_actor_start ("aq-test", s_slow, NULL);
    assert (actor);
    pthread_kill (pthread_self (), SIGUSR1);
    assert (aq_actor_wait (&actor, 1, sigfd) == 0);
    pthread_kill (pthread_self (), SIGUSR1);
    bool hurry = false;
    assert (aq_actor_stop (&actor, sigfd, &hurry) == 0 && !actor && hurry);
    //  after a hurried stop, the next one hurries at once
    actor = aq_actor_start ("aq-test", s_slow, NULL);
    assert (actor && aq_actor_stop (&actor, -1, &hurry) == 0 && !actor);
    close (sigfd);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (verbose)
        printf ("OK\n");
}
