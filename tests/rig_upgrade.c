/*  rig_upgrade.c - test rig: what the schedule upgrade's selftests share */
#include "rig_upgrade.h"
#include "../broker/sched/upgrade_sched.h"
#include "aq_json.h"
#include "aq_msg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rig_upgrade_uuid (int n, uint8_t id[16], char text[AQ_UUID_TEXT]) {
    static const uint8_t base[16] = {0x01, 0x9a, 0xf1, 0x2c, 0x3b, 0x00, 0x70, 0x00,
                                     0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    memcpy (id, base, 16);
    id[14] = (uint8_t) (n >> 8), id[15] = (uint8_t) n;
    aq_uuid_format (id, text);
}

int rig_upgrade_convert (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                         char *why) {
    bk_val_t val;
    aq_node_t v1;
    assert (bk_store_get (store, db, key, key_size, &val) == 0);
    if (db == BK_DB_RUN_KEYS && val.size == 8)
        v1 = (aq_node_t){
            .type = AQ_NODE_BIN, .count = 8, .data = val.data, .raw = val.data, .raw_size = 8};
    else
        assert (aq_msg_parse (val.data, val.size, &v1) == 0);
    aq_writer_t w;
    aq_writer_init (&w);
    int rc = bk_sched_upgrade_record (store, db, key, key_size, &v1, &w, why, 256);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    if (rc == 0)
        assert (data && size && bk_store_put (store, db, key, key_size, data, size) == 0);
    else
        assert (size == 0 && *why);
    aq_writer_release (&w);
    return rc;
}

void rig_upgrade_json_is (const bk_blob_t *blob, const char *want) {
    aq_node_t node;
    assert (aq_msg_parse (blob->data, blob->size, &node) == 0);
    char *text = aq_json_dumps (&node);
    if (strcmp (text, want) != 0) {
        fprintf (stderr, "bk_sched_upgrade: %s, want %s\n", text, want);
        assert (false);
    }
    free (text);
}
