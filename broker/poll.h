/*  poll.h - following a long-running job described by a pollConfig

    A task with a pollConfig makes its call; the first answer fills
    urlTemplate's {{placeholders}} (percent-encoded; the URL is at most
    8 KiB), then the broker GETs that status URL every interval until the
    value at statusPath is one of doneValues or failValues. This module
    reads each answer and says what comes next; the engine schedules the
    requests. Provider plugins do the same for their APIs in provider host
    processes (providers.h).

    Answers are JSON texts; they are read here as msgpack (aq_json_parse),
    and paths walk objects by key and arrays by decimal index
    ("output.0.url").
*/
#ifndef BK_POLL_H
#define BK_POLL_H

#include "aq_msg.h"
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

void bk_poll_test (bool verbose);

#endif
