/*  aq_main.c - running components as a foreground program */
#include "aq_main.h"

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

void aq_main_block_signals (sigset_t *signals) {
    zsys_handler_set (NULL); //  signals are ours, not czmq's
    sigemptyset (signals);
    sigaddset (signals, SIGINT);
    sigaddset (signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, signals, NULL);
    //  an ignored signal is never queued: a program started in the
    //  background by a shell still takes SIGINT (blocked, so no default
    //  action runs; sigwait and the signalfd see it)
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGPIPE, SIG_IGN);
}

int aq_main_signalfd (void) {
    sigset_t signals;
    aq_main_block_signals (&signals);
    return signalfd (-1, &signals, SFD_CLOEXEC);
}

int aq_main_run (const char *program, aq_actor_fn *run, const void *cfg) {
    int sigfd = aq_main_signalfd ();
    if (sigfd < 0) {
        fprintf (stderr, "%s: cannot take signals: %s\n", program, strerror (errno));
        return 1;
    }
    zactor_t *actor = aq_actor_start (program, run, cfg);
    int rc = actor ? aq_actor_wait (&actor, 1, sigfd) : -1;
    if (aq_actor_stop (&actor, sigfd, NULL) != 0)
        rc = -1;
    close (sigfd);
    return rc == 0 ? 0 : 1;
}
