/*  rig_v1.c - test rig: store records of layout 1, written as the first release wrote them */
#include "rig_v1.h"
#include "aq_codec.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  record packed as layout 1 did, put under key; takes the reference.
static void s_put (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                   json_t *record) {
    assert (record);
    size_t size;
    uint8_t *data = aq_codec_pack (record, &size); //  bk_store_put_record's encoding
    json_decref (record);
    assert (data);
    assert (bk_store_put (store, db, key, key_size, data, size) == 0);
    free (data);
}

void rig_v1_put (bk_store_t *store, bk_db_t db, const void *key, size_t key_size, const char *fmt,
                 ...) {
    va_list ap;
    va_start (ap, fmt);
    json_error_t error;
    json_t *record = json_vpack_ex (&error, 0, fmt, ap);
    va_end (ap);
    s_put (store, db, key, key_size, record);
}

void rig_v1_put_json (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                      const char *fmt, ...) {
    char text[8192];
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    assert (n > 0 && (size_t) n < sizeof text);
    for (char *c = text; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_error_t error;
    json_t *record = json_loads (text, 0, &error);
    if (!record)
        fprintf (stderr, "rig_v1_put_json: %s at %d: %s\n", error.text, error.position, text);
    s_put (store, db, key, key_size, record);
}

//  The same JSON value, maps in any order (layout 1 showed a record's
//  fields in the order they were set).
bool rig_v1_equal (const aq_node_t *a, const aq_node_t *b) {
    double x, y;
    if (aq_node_number (a, &x) && aq_node_number (b, &y))
        return x == y;
    if (a->type != b->type || a->count != b->count)
        return false;
    aq_iter_t it, other;
    aq_node_t key, value, match;
    switch (a->type) {
    case AQ_NODE_MAP:
        aq_node_iter (a, &it);
        while (aq_iter_next (&it, &key, &value)) {
            char name[128];
            if (!aq_node_strcpy (&key, name, sizeof name) || !aq_node_get (b, name, &match) ||
                !rig_v1_equal (&value, &match))
                return false;
        }
        return true;
    case AQ_NODE_ARRAY:
        aq_node_iter (a, &it);
        aq_node_iter (b, &other);
        while (aq_iter_next (&it, NULL, &value) && aq_iter_next (&other, NULL, &match))
            if (!rig_v1_equal (&value, &match))
                return false;
        return true;
    case AQ_NODE_BOOL:
        return a->b == b->b;
    default:
        return a->raw_size == b->raw_size && memcmp (a->raw, b->raw, a->raw_size) == 0;
    }
}
