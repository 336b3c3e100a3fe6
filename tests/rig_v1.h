/*  rig_v1.h - test rig: store records of layout 1, written as the first release wrote them

    Layout 1 kept each record as a jansson document packed as msgpack
    (broker/old: bk_store_put_record, that is aq_proto_pack, now
    aq_codec_pack). The broker no longer includes jansson; this rig does,
    so bk_upgrade's selftest writes layout-1 records with the old code's
    own calls (json_pack formats copied from broker/old/).

        rig_v1_put (store, BK_DB_TEAMS, id, 16, "{s:s, s:s, s:I, s:s}", "id", text,
                    "name", "acme", "createdAt", (json_int_t) 1000, "signingSecret", whsec);

    For selftests only: linked into aq-selftest, never into a component
    library. Failures (a format json_pack refuses, a store error) assert.
*/
#ifndef RIG_V1_H
#define RIG_V1_H

#include "../broker/store.h"

#include <stdbool.h>
#include <stddef.h>

//  json_pack (fmt, ...) packed as layout 1 did, put under key in store's
//  write transaction.
void rig_v1_put (bk_store_t *store, bk_db_t db, const void *key, size_t key_size, const char *fmt,
                 ...);
//  The JSON document of a printf-like format, with ' standing for " (no
//  other ' in it), packed and put as rig_v1_put does: for records whose
//  shape reads better as the old code's JSON than as a json_pack format.
void rig_v1_put_json (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                      const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

//  The same JSON value, maps in any order (layout 1 showed a record's
//  fields in the order they were set): what the first release showed
//  against what the upgraded store shows.
bool rig_v1_equal (const aq_node_t *a, const aq_node_t *b);

#endif
