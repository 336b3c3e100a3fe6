/*  task_request.h - a POST /v1/tasks body checked and made a task

    The validation messages are the API contract (seed 000, SPEC 3): change
    them only together with docs/api.md. The body arrives as a msgpack map
    (the gateway's JSON, or a protocol client's map); null stands for "not
    given" for every optional field.
*/
#ifndef BK_TASK_REQUEST_H
#define BK_TASK_REQUEST_H

#include "aq_msg.h"
#include "request.h" //  bk_task_unknown_field
#include "task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Validates request and returns a new task with defaults applied and
//  status pending or delayed (relative to now, ms), createdAt now; id,
//  team and bookkeeping are unset. On a validation failure returns NULL
//  and sets *error to the client message (static, or written in errbuf).
bk_task_t *bk_task_from_request (const aq_node_t *request, int64_t now, const char **error,
                                 char *errbuf, size_t errbuf_size);

//  True when node is a valid http(s) URL: a host, no spaces or control
//  characters, at most 2048 bytes.
bool bk_task_valid_url (const aq_node_t *node);

void bk_task_request_test (bool verbose);

#endif
