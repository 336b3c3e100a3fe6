/*  poll.h - following a long-running job: pollConfig and provider plugins

    A task with "provider" or "pollConfig" makes its call, then the broker
    polls a status URL until the job is done or failed. This module reads
    each answer and says what comes next; the broker schedules the requests.
    The plan lives in the task record ("_poll": statusUrl, resultUrl,
    cancelUrl, cancelMethod, interval), so polling survives a restart.

    A pollConfig is read here, in the broker. A provider's answers are read
    by its plugin in a provider host (providers.h), asynchronously: the
    answer waits in the task as "_poll"."op" ({n, stage, answer}) until the
    host's reply is applied, so a broker restart asks again.
*/
#ifndef BK_POLL_H
#define BK_POLL_H

#include "loader.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    BK_POLL_RUNNING, //  poll statusUrl again after *next_ms
    BK_POLL_FETCH,   //  GET resultUrl next: its answer is the result
    BK_POLL_DONE,    //  completed
    BK_POLL_FAILED   //  failed, *error says why
} bk_poll_state_t;

#define BK_POLL_INITIAL 0 //  the answer to the task's own call
#define BK_POLL_STATUS  1 //  the answer to a GET of statusUrl
#define BK_POLL_RESULT  2 //  the answer to a GET of resultUrl

//  Validates a pollConfig object: NULL when fine, else the client message.
const char *bk_poll_check_config (const json_t *config, char *errbuf, size_t errbuf_size);

//  Reads one answer (a RESULT body: statusCode, headers, body) of the given
//  stage for a pollConfig task, updating task's "_poll". Returns the state;
//  sets *next_ms (RUNNING: the wait before the next poll) and *error
//  (FAILED: a malloc'd message the caller frees). interval_ms is the wait
//  when pollConfig sets none.
bk_poll_state_t bk_poll_step (json_t *task, int stage, const json_t *answer, int64_t interval_ms,
                              int64_t *next_ms, char **error);

//  Keeps answer (statusCode, headers, body, bodyTruncated, duration) of
//  stage in a provider task as its op for the provider host, numbered
//  after the task's last op. Returns the op's number.
int64_t bk_poll_provider_start (json_t *task, int stage, const json_t *answer);
//  The provider host's request for the op task keeps (plugins/
//  provider_host.h), or NULL if it keeps none. New reference.
json_t *bk_poll_provider_request (const json_t *task);
//  Applies the provider host's reply to the op task keeps and removes the
//  op: checks the reply's shape and a new plan's URLs (https on the
//  provider's hosts, aq_plugin_provider_url_allowed), updates "_poll".
//  Returns the state; *next_ms and *error as bk_poll_step.
bk_poll_state_t bk_poll_provider_reply (const aq_plugin_provider_t *provider, json_t *task,
                                        const json_t *reply, int64_t interval_ms, int64_t *next_ms,
                                        char **error);
//  NULL if the URL stored under key ("statusUrl", "resultUrl", "cancelUrl")
//  in task's "_poll" is absent or one the provider may use; else the task's
//  error ("provider 'fal' answered a status URL outside its hosts: ..."),
//  malloc'd.
char *bk_poll_provider_url_error (const aq_plugin_provider_t *provider, const json_t *task,
                                  const char *key);

void bk_poll_test (bool verbose);

#endif
