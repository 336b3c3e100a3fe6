/*  aq_main.c - running one component as a foreground program */
#include "aq_main.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <zmq.h>

static atomic_int s_stop; //  signals received

static void s_on_signal (int signum) {
    atomic_fetch_add (&s_stop, 1);
}

int aq_main_run (const char *program, aq_main_fn run, const void *cfg) {
    zsys_handler_set (NULL); //  signals are ours: czmq's actors must not take them
    struct sigaction action = {.sa_handler = s_on_signal};
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
    void *ctx = zmq_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "%s: cannot create a ZeroMQ context: %s\n", program, zmq_strerror (errno));
        return 1;
    }
    int rc = run (cfg, ctx, &s_stop);
    zmq_ctx_term (ctx);
    return rc == 0 ? 0 : 1;
}

void aq_main_block_signals (sigset_t *signals) {
    zsys_handler_set (NULL);
    sigemptyset (signals);
    sigaddset (signals, SIGINT);
    sigaddset (signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, signals, NULL);
    signal (SIGPIPE, SIG_IGN);
}
