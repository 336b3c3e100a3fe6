/*  request.c - a client's request as its handler sees it, and the answer */
#include "request.h"
#include "aq_proto.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void bk_req_error (bk_req_t *self, int status, const char *error) {
    aq_writer_t *w = bk_outbox_reply_start (self->outbox, self->corr, status);
    aq_write_kv_str (w, "error", error);
    bk_outbox_reply_queue (self->outbox, self->socket, self->rid, self->rid_size, 1);
}

void bk_req_status (bk_req_t *self, int status) {
    bk_outbox_reply_start (self->outbox, self->corr, status);
    bk_outbox_reply_queue (self->outbox, self->socket, self->rid, self->rid_size, 0);
}

aq_writer_t *bk_req_body (bk_req_t *self, int status) {
    aq_writer_t *w = bk_outbox_reply_start (self->outbox, self->corr, status);
    aq_write_str (w, "body");
    return w;
}

void bk_req_done (bk_req_t *self) {
    bk_outbox_reply_queue (self->outbox, self->socket, self->rid, self->rid_size, 1);
}

aq_writer_t *bk_req_named (bk_req_t *self, int status, const char *name) {
    aq_writer_t *w = bk_req_body (self, status);
    aq_write_map (w, 1);
    aq_write_str (w, name);
    return w;
}

bool bk_req_get (const bk_req_t *self, const char *key, aq_node_t *value) {
    return aq_node_get (&self->body, key, value);
}

bool bk_req_str (const bk_req_t *self, const char *key, char *buf, size_t size) {
    aq_node_t value;
    return bk_req_get (self, key, &value) && aq_node_strcpy (&value, buf, size);
}

int64_t bk_req_query_int (const bk_req_t *self, const char *key, int64_t dflt) {
    aq_node_t value;
    if (!bk_req_get (self, key, &value) || aq_node_is_nil (&value))
        return dflt;
    if (value.type == AQ_NODE_INT)
        return value.i;
    if (!aq_node_is_str (&value) || value.count == 0 || value.count > 9)
        return -1;
    int64_t n = 0;
    for (uint32_t i = 0; i < value.count; i++) {
        uint8_t c = value.data[i];
        if (c < '0' || c > '9')
            return -1;
        n = n * 10 + (c - '0');
    }
    return n;
}

void bk_req_write_pagination (aq_writer_t *w, uint64_t total, int64_t limit, int64_t offset,
                              size_t shown, const char *more_name) {
    bool more = (uint64_t) offset + shown < total;
    bool both = strcmp (more_name, "hasMore") != 0; //  every list has hasMore
    aq_write_map (w, both ? 5 : 4);
    aq_write_kv_int (w, "total", (int64_t) total);
    aq_write_kv_int (w, "limit", limit);
    aq_write_kv_int (w, "offset", offset);
    aq_write_kv_bool (w, more_name, more);
    if (both)
        aq_write_kv_bool (w, "hasMore", more);
}

//  --------------------------------------------------------------------------

void bk_request_test (bool verbose) {
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 4);
    aq_write_kv_str (&w, "id", "abc");
    aq_write_kv_str (&w, "limit", "25");
    aq_write_kv_str (&w, "offset", "x1");
    aq_write_kv_int (&w, "wait", 3);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_req_t req = {0};
    assert (aq_msg_parse (data, size, &req.body) == 0);
    char buf[8];
    assert (bk_req_str (&req, "id", buf, sizeof buf) && strcmp (buf, "abc") == 0);
    assert (!bk_req_str (&req, "id", buf, 3) && !bk_req_str (&req, "wait", buf, sizeof buf));
    assert (bk_req_query_int (&req, "limit", 50) == 25 && bk_req_query_int (&req, "wait", 0) == 3);
    assert (bk_req_query_int (&req, "offset", 0) == -1 && bk_req_query_int (&req, "nope", 7) == 7);
    aq_writer_reset (&w);
    bk_req_write_pagination (&w, 10, 5, 5, 5, "hasMore");
    data = aq_writer_data (&w, &size);
    aq_node_t page, value;
    assert (aq_msg_parse (data, size, &page) == 0);
    assert (aq_node_get (&page, "hasMore", &value) && value.type == AQ_NODE_BOOL && !value.b);
    aq_writer_release (&w);
    if (verbose)
        printf ("bk_request: ok\n");
}
