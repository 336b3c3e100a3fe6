/*  task.h - a task record: validation of requests, statuses, public shape

    A task record is a JSON object with the public field names of seed 000;
    times are integer milliseconds, and bookkeeping fields start with '_'
    (_seq creation order, _attempts dispatches so far, _due delay-queue time).
    bk_task_public turns a record into what clients see.
*/
#ifndef BK_TASK_H
#define BK_TASK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    BK_ST_PENDING = 1,
    BK_ST_DELAYED,
    BK_ST_PROCESSING,
    BK_ST_WAITING,
    BK_ST_POLLING,
    BK_ST_COMPLETED,
    BK_ST_FAILED,
    BK_ST_TIMEOUT,
    BK_ST_CANCELLED,
    BK_ST_COUNT
} bk_status_t;

//  "pending" ... "cancelled"; NULL for an invalid code.
const char *bk_status_name (int status);
//  Code of a status name, or 0 if it is none.
int bk_status_parse (const char *name);
bool bk_status_terminal (int status);
//  The record's status code (0 if missing).
int bk_task_status (const json_t *task);

//  Validates a POST /v1/tasks body and returns a new record with defaults
//  applied and status pending or delayed (relative to now), without id,
//  teamId or bookkeeping. On a validation failure returns NULL and sets
//  *error to the client message (a static string or one written in errbuf).
json_t *bk_task_from_request (const json_t *request, int64_t now, const char **error, char *errbuf,
                              size_t errbuf_size);

//  The public JSON object of a record: ISO 8601 times, no '_' fields.
//  Team and key records use it too.
//  Returns a new reference.
json_t *bk_task_public (const json_t *task);
//  The same walk for any record: fields is_time says are times, when
//  integers (ms), become ISO 8601; '_' fields are left out.
json_t *bk_task_public_with (const json_t *record, bool (*is_time) (const char *field));

//  Checks that every field of object is one of known (NULL-terminated).
//  Returns NULL, or errbuf holding "Unknown field: <prefix><name>".
const char *bk_task_unknown_field (const json_t *object, const char *const known[],
                                   const char *prefix, char *errbuf, size_t size);

//  True when value is an integer (or a real without fraction) in
//  [min, max]; sets *out.
bool bk_task_integer_in (const json_t *value, int64_t min, int64_t max, int64_t *out);

//  Sets a field to an integer millisecond time, or removes it when ms < 0.
void bk_task_set_time (json_t *task, const char *field, int64_t ms);

void bk_task_test (bool verbose);

#endif
