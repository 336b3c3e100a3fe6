/*  provider_host.h - the provider host process: one provider's ops, apart
    from the broker

    The broker never calls a provider plugin's plan, poll or result itself:
    it starts one provider host per provider (aq_provider_host_spawn), a
    re-execution of the broker's own program (/proc/self/exe) in a hidden
    mode that loads that one plugin and runs its ops on the requests the
    broker sends over a socket pair. A plugin that crashes or loops forever
    takes down its host, never the broker; the broker kills, restarts and
    retries (broker/providers.c).

    Every program that runs a broker starts with

        if (aq_provider_host_wanted (argc, argv))
            return aq_provider_host_main (argc, argv);

    Wire: each message is a 4-byte big-endian length and that many bytes of
    compact JSON, at most AQ_PROVIDER_HOST_FRAME_MAX. The host answers each
    request in order, echoing its "seq".

    Request: {"seq": n, "op": "plan" | "poll" | "result",
              "plan": {"statusUrl", "resultUrl", "cancelUrl", "cancelMethod"}
                      (poll, result: the plan as stored),
              "status": {"state", "error"} (result: as poll left it),
              "response": {"url", "statusCode", "headers", "body"}}
    Reply:   {"seq": n, "state": 0 | 1 | 2 (AQ_POLL_*), "error": text,
              "fetchResult": bool, "retryMs": n,
              "plan": {"statusUrl", "resultUrl", "cancelUrl", "cancelMethod",
                       "intervalMs"} (plan only)}
    The host checks what the plugin answered (loader.h); the broker checks
    the reply again, since a plugin may have broken its host.
*/
#ifndef AQ_PROVIDER_HOST_H
#define AQ_PROVIDER_HOST_H

#include "loader.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define AQ_PROVIDER_HOST_ARG       "--provider-host" //  argv[1] of a provider host
#define AQ_PROVIDER_HOST_FD        3                 //  its end of the socket pair
#define AQ_PROVIDER_HOST_FRAME_MAX (64u << 20)       //  largest message either way

//  True when this process was started as a provider host.
bool aq_provider_host_wanted (int argc, char **argv);
//  The provider host's main: loads the plugin, answers requests on
//  AQ_PROVIDER_HOST_FD until the broker closes it. Returns the exit code:
//  0 at the end, 2 for bad arguments, 3 if the plugin does not load.
int aq_provider_host_main (int argc, char **argv);

//  Starts exe as the provider host of provider name, from the plugin file
//  path, with config (the data directory, may be NULL) for its open. The
//  child gets a clean signal mask, its own process group, the environment
//  without AQ_* variables (AQ_LOG_LEVEL kept: no vault key) and no other
//  descriptor. Sets *pid and *fd (the broker's end, non-blocking,
//  close-on-exec). 0, or -1 with errno.
int aq_provider_host_spawn (const char *exe, const char *name, const char *path, const char *config,
                            pid_t *pid, int *fd);

//  Runs one request (the shape above, without seq) through provider in
//  this process. Returns the reply, a new reference (never NULL).
json_t *aq_provider_host_run (const aq_plugin_provider_t *provider, const json_t *request);

//  The wire form of msg: length prefix and JSON, in *data (*size bytes,
//  caller frees). 0, or -1 if msg cannot be encoded or is too large.
int aq_provider_host_encode (const json_t *msg, char **data, size_t *size);
//  Length of the message at the start of data (size bytes so far): the
//  whole frame's size once it is all there, 0 while incomplete, -1 if the
//  length is over AQ_PROVIDER_HOST_FRAME_MAX.
long aq_provider_host_frame_size (const char *data, size_t size);
//  The JSON object in a complete frame, or NULL. New reference.
json_t *aq_provider_host_decode (const char *frame, size_t size);

void aq_provider_host_test (bool verbose);

#endif
