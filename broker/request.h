/*  request.h - a client's request as its handler sees it, and the answer

    The loop reads a request's frame, the handlers check its credentials
    (handlers.c) and fill team; a handler reads the fields from body and
    answers exactly once through the outbox (sent after the commit).
*/
#ifndef BK_REQUEST_H
#define BK_REQUEST_H

#include "aq_msg.h"
#include "outbox.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  A list's page (tasks, schedules, runs) stops once its items take this
//  many bytes, even short of its limit (it holds one item at least; an
//  item is at most about 1.2 MiB, a body within a 1 MiB request and a
//  64 KiB result): its REPLY stays within AQ_PROTO_MAX_MSG (8 MiB), the
//  most a gateway or client takes before ZeroMQ drops its connection.
#define BK_PAGE_BYTES (4 << 20)

typedef struct {
    bk_outbox_t *outbox; //  where the answer goes
    void *socket;        //  the client socket it came in on
    const uint8_t *rid;  //  routing id of the client
    size_t rid_size;     //  its length
    int64_t corr;        //  correlation id, echoed
    aq_node_t body;      //  the request's fields (a map), borrowing the frame
    uint8_t team[16];    //  the caller's team, once authenticated
    bool read_only;      //  the caller's key is read-scope
} bk_req_t;

//  Answers status with {"error": error}.
void bk_req_error (bk_req_t *self, int status, const char *error);
//  Answers status with no body (a 2xx the client needs no more of).
void bk_req_status (bk_req_t *self, int status);
//  Starts an answer with a body: returns the writer positioned for the
//  body value, which the caller writes (a map), then bk_req_done.
aq_writer_t *bk_req_body (bk_req_t *self, int status);
void bk_req_done (bk_req_t *self);
//  The common body {name: <a map the caller writes>}: returns the writer
//  positioned for that map.
aq_writer_t *bk_req_named (bk_req_t *self, int status, const char *name);

//  A field of the request (false when absent).
bool bk_req_get (const bk_req_t *self, const char *key, aq_node_t *value);
//  A string field copied into buf (NUL-terminated); false when absent, not
//  a string or longer than size - 1.
bool bk_req_str (const bk_req_t *self, const char *key, char *buf, size_t size);
//  A query value given as an integer or a decimal string of at most 9
//  digits: dflt when absent or null, -1 when invalid.
int64_t bk_req_query_int (const bk_req_t *self, const char *key, int64_t dflt);

//  The pagination object of a list page: {"total", "limit", "offset",
//  more_name: offset + shown < total}; more_name is "hasMore" in /v1, and
//  "has_more" (deprecated) in /tasks, where "hasMore" follows it.
void bk_req_write_pagination (aq_writer_t *w, uint64_t total, int64_t limit, int64_t offset,
                              size_t shown, const char *more_name);

//  Checks every key of map is one of known (NULL-terminated). Returns
//  NULL, or errbuf holding "Unknown field: <prefix><name>".
const char *bk_task_unknown_field (const aq_node_t *map, const char *const known[],
                                   const char *prefix, char *errbuf, size_t size);

void bk_request_test (bool verbose);

#endif
