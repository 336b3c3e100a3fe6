/*  providers.h - the provider hosts: provider ops run in child processes

    The broker hands each provider op (the plan, poll or result of a task's
    answer) to the provider host of that provider (plugins/provider_host.h),
    started on the first op and kept running. Ops go out in order and come
    back in order; the broker's loop never waits for them. A host that dies
    (a crash, an exit) or stalls (no answer within the time limit: it is
    killed) is started again, at once the first time and then with a
    growing back-off while it keeps failing. The op it was running is sent
    again, up to three times in all, then fails with an error naming the
    provider; the ops queued behind it are sent again as they were.

    Requests and replies are msgpack maps (provider_host.h has their
    fields), as bytes: poll.h writes the requests and reads the replies.
    The broker keeps every op in its store too (the task's poll plan), so a
    broker restart sends them again; this module only holds them in memory.
*/
#ifndef BK_PROVIDERS_H
#define BK_PROVIDERS_H

#include "loader.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define BK_PROVIDERS_TRIES 3 //  runs of one op before it fails

typedef struct _bk_providers_t bk_providers_t;

//  Hosts run exe (normally "/proc/self/exe": the broker's own program) with
//  config (the data directory) for their plugins' open; an op may run
//  timeout_ms before its host is killed. plugins (borrowed, outlives self;
//  loaded with aq_plugin_loader_describe_only) says where each provider's
//  plugin file is and what its polls carry. NULL when out of memory.
bk_providers_t *bk_providers_new (const char *exe, const char *config, int64_t timeout_ms,
                                  aq_plugin_loader_t *plugins);
//  Stops every host (closes its socket, waits a moment, then kills it).
//  Accepts NULL, sets *self_p = NULL.
void bk_providers_destroy (bk_providers_t **self_p);

//  Queues an op for provider's host: request is the msgpack map of
//  provider_host.h's request without seq (size bytes), copied. key names
//  the op in bk_providers_take. A provider that is not loaded fails the op
//  ("provider plugin is no longer loaded"), as does a request that is no
//  map or too large for the wire; bk_providers_take hands such failures out
//  like any other.
void bk_providers_submit (bk_providers_t *self, const char *provider, const char *key,
                          const uint8_t *request, size_t size);
//  Moves bytes, reads replies, notices dead and stalled hosts and restarts
//  them; never blocks (but for reaping a host that closed its socket and
//  did not exit, at most 100 ms). mono is the loop's monotonic ms.
void bk_providers_work (bk_providers_t *self, int64_t mono);
//  One finished op: its key in *key (caller frees) and either the host's
//  reply in *reply (a msgpack map without seq, *reply_size bytes; caller
//  frees) with *error NULL, or, when the op failed, *reply NULL and the
//  task's error in *error (caller frees), e.g. "provider 'x' crashed while
//  reading the status answer". false when none is finished.
bool bk_providers_take (bk_providers_t *self, char **key, uint8_t **reply, size_t *reply_size,
                        char **error);
//  The sockets to wait on, in items (at most max); returns how many.
int bk_providers_poll_items (bk_providers_t *self, zmq_pollitem_t *items, int max);
//  Monotonic ms by which bk_providers_work must run (an op's time limit, a
//  restart), INT64_MAX if none; 0 when finished ops are waiting.
int64_t bk_providers_next_wake (bk_providers_t *self);
//  Ops queued or running, in all.
size_t bk_providers_pending (bk_providers_t *self);

//  The task headers (names, any case) provider's status, result and cancel
//  requests carry: its auth_header and its poll_headers. NULL-terminated,
//  borrowed while self lives; never NULL (a provider that is not loaded
//  gets an empty list: its polls carry no task header).
const char *const *bk_providers_poll_headers (bk_providers_t *self, const char *provider);

void bk_providers_test (bool verbose);

#endif
