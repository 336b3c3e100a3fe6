/*  rig_v1.c - test rig: store records of layout 1, written as the first release wrote them */
#include "rig_v1.h"
#include "aq_codec.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>

void rig_v1_put (bk_store_t *store, bk_db_t db, const void *key, size_t key_size, const char *fmt,
                 ...) {
    va_list ap;
    va_start (ap, fmt);
    json_error_t error;
    json_t *record = json_vpack_ex (&error, 0, fmt, ap);
    va_end (ap);
    assert (record);
    size_t size;
    uint8_t *data = aq_codec_pack (record, &size); //  bk_store_put_record's encoding
    json_decref (record);
    assert (data);
    assert (bk_store_put (store, db, key, key_size, data, size) == 0);
    free (data);
}
