/*  poll.h - following a long-running job: pollConfig and provider plugins

    A task with a pollConfig makes its call; the first answer fills
    urlTemplate's {{placeholders}} (percent-encoded; the URL is at most
    8 KiB), then the broker GETs that status URL every interval until the
    value at statusPath is one of doneValues or failValues. This module
    reads each answer and says what comes next; the engine schedules the
    requests. Answers are JSON texts; they are read here as msgpack
    (aq_json_parse), and paths walk objects by key and arrays by decimal
    index ("output.0.url").

    A provider task's answers are read by its plugin in a provider host
    (providers.h), asynchronously: the answer waits in the task as its op
    (task->poll.op_pending, op_n, op_stage, op) until the host's reply is
    applied, so a broker restart asks again. Each op gets the next number;
    a reply counts only for the op the task still waits for.

        n = bk_poll_provider_start (task, stage, result_body);     //  save the task
        bk_poll_provider_request (task, &w);
        bk_poll_provider_key (task, key);
        bk_providers_submit (providers, task->provider, key, data, size);
        ...a later turn: bk_providers_take (providers, &key, &reply, ...)
        bk_poll_provider_key_parse (key, id, &n); load the task;
        if (bk_poll_provider_awaits (task, n))
            state = bk_poll_provider_reply (provider, task, &reply_node, ...);
*/
#ifndef BK_POLL_H
#define BK_POLL_H

#include "aq_msg.h"
#include "aq_uuid.h"
#include "task.h"

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
#define BK_POLL_CANCEL  3 //  the cancel request (bk_poll_provider_url_error)

#define BK_POLL_TEMPLATE_MAX 2048 //  longest pollConfig.urlTemplate
#define BK_POLL_URL_MAX      8192 //  longest status URL it may render to

//  Validates a pollConfig map: NULL when fine, else the client message.
const char *bk_poll_check_config (const aq_node_t *config, char *errbuf, size_t errbuf_size);

//  Reads one answer of a pollConfig task (its body text, body_size bytes)
//  at stage, updating task->poll. Returns the state; sets *next_ms
//  (RUNNING: the wait before the next poll) and *error (FAILED: a message
//  in the task's arena). interval_ms is the server's default interval.
bk_poll_state_t bk_poll_config_step (bk_task_t *task, int stage, const char *body, size_t body_size,
                                     int64_t interval_ms, int64_t *next_ms, const char **error);

//  The value at a dot path of a checked msgpack document as text (a string
//  as it is, numbers and booleans as literals, objects and arrays as
//  compact JSON), malloc'd; NULL when absent or null. Caller frees.
char *bk_poll_path_text (const aq_node_t *doc, const char *path);

//  --------------------------------------------------------------------------
//  Provider tasks

typedef struct _aq_plugin_provider_t aq_plugin_provider_t; //  loader.h

#define BK_POLL_KEY_SIZE (AQ_UUID_TEXT + 21) //  "<task id>/<op number>"

//  Keeps answer (a RESULT body; its statusCode, headers, body,
//  bodyTruncated and duration) of stage as the task's op for the provider
//  host, numbered after the task's last op; the task polls from now on,
//  and a poll watchdog (poll.due) is dropped: the host is watched by
//  providers.h. Returns the op's number. The caller saves the task.
int64_t bk_poll_provider_start (bk_task_t *task, int stage, const aq_node_t *answer);
//  Appends to w the provider host's request (provider_host.h, without
//  seq) for the task's pending op: the answer with the URL it came from,
//  the stored plan (status and result stages), and the state and error
//  the status answer gave (result stage).
void bk_poll_provider_request (const bk_task_t *task, aq_writer_t *w);
//  The name of the task's current op for bk_providers_submit, into key;
//  returns key.
char *bk_poll_provider_key (const bk_task_t *task, char key[BK_POLL_KEY_SIZE]);
//  Reads such a name back into the task id and op number. false when key
//  is not one.
bool bk_poll_provider_key_parse (const char *key, uint8_t id[16], int64_t *n);
//  True when the task (as stored now) still waits for op n: polling, with
//  op n pending. A reply to anything else is stale (the task was
//  cancelled or timed out, or the op was sent again after a restart).
bool bk_poll_provider_awaits (const bk_task_t *task, int64_t n);
//  Applies the provider host's reply (a map, provider_host.h) to the op
//  the task waits for, and clears the op (op_pending false; task->poll.op
//  still holds the answer, in the task's arena, to keep as the result).
//  Checks the reply's shape and, for a plan, its URLs (https on the
//  provider's hosts: aq_plugin_provider_url_allowed) before storing it.
//  Returns the state; sets *next_ms (RUNNING: the reply's retry delay, else
//  the plan's interval, else interval_ms, the server's default) and
//  *error (FAILED: the task's error, in its arena).
bk_poll_state_t bk_poll_provider_reply (const aq_plugin_provider_t *provider, bk_task_t *task,
                                        const aq_node_t *reply, int64_t interval_ms,
                                        int64_t *next_ms, const char **error);
//  Forgets the task's op without a reply (its host failed, the task ends).
void bk_poll_provider_drop (bk_task_t *task);
//  Checks a stored plan's URL again before a request goes out: which is
//  BK_POLL_STATUS, BK_POLL_RESULT or BK_POLL_CANCEL. NULL when the URL is
//  absent or one provider may use; else the task's error in errbuf
//  ("provider 'fal' answered a status URL outside its hosts: ..."), or
//  "provider plugin is no longer loaded" when provider is NULL.
const char *bk_poll_provider_url_error (const aq_plugin_provider_t *provider, const bk_task_t *task,
                                        int which, char *errbuf, size_t size);

void bk_poll_test (bool verbose);

#endif
