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

    Wire: each message is a 4-byte big-endian length and that many bytes
    holding one msgpack map (string keys), at most
    AQ_PROVIDER_HOST_FRAME_MAX. The host answers each request in order,
    echoing its "seq".

    Request: {"seq": n, "op": "plan" | "poll" | "result",
              "plan": {"statusUrl", "resultUrl", "cancelUrl", "cancelMethod"}
                      (poll, result: the plan as stored),
              "status": {"state", "error"} (result: as poll left it),
              "response": {"url", "statusCode", "headers", "body"}}
    Reply:   {"seq": n, "state": 0 | 1 | 2 (AQ_POLL_*), "error": text,
              "fetchResult": bool, "retryMs": n,
              "plan": {"statusUrl", "resultUrl", "cancelUrl", "cancelMethod",
                       "intervalMs"} (plan only)}
    Absent strings are absent keys. The host checks what the plugin
    answered (loader.h); the broker checks the reply again, since a plugin
    may have broken its host. The broker reads and writes these maps with
    aq_msg.h; the host reads them into jansson documents for the plugin.
*/
#ifndef AQ_PROVIDER_HOST_H
#define AQ_PROVIDER_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct _aq_plugin_provider_t aq_plugin_provider_t; //  loader.h

#define AQ_PROVIDER_HOST_ARG       "--provider-host" //  argv[1] of a provider host
#define AQ_PROVIDER_HOST_FD        3                 //  its end of the socket pair
#define AQ_PROVIDER_HOST_FRAME_MAX (64u << 20)       //  largest message either way
#define AQ_PROVIDER_HOST_HEAD      4                 //  bytes of a frame's length prefix

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

//  Runs one request (the msgpack map above, without seq: size bytes)
//  through provider in this process. Returns the reply map (caller frees,
//  *reply_size bytes); a request that is no map gets a FAILED reply. NULL
//  only when out of memory.
uint8_t *aq_provider_host_run (const aq_plugin_provider_t *provider, const uint8_t *request,
                               size_t size, size_t *reply_size);

//  Writes the length prefix of a frame of size bytes (at most
//  AQ_PROVIDER_HOST_FRAME_MAX) into head.
void aq_provider_host_frame_head (uint8_t head[AQ_PROVIDER_HOST_HEAD], size_t size);
//  Length of the frame at the start of data (size bytes so far): the whole
//  frame's size, prefix included, once it is all there; 0 while incomplete;
//  -1 if the length is over AQ_PROVIDER_HOST_FRAME_MAX.
long aq_provider_host_frame_size (const uint8_t *data, size_t size);

void aq_provider_host_test (bool verbose);

#endif
