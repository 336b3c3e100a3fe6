/*  rig_upgrade.h - test rig: what the selftests of the schedule upgrade
    (broker/sched/upgrade_sched.c, upgrade_run.c) share. Selftests only.
*/
#ifndef RIG_UPGRADE_H
#define RIG_UPGRADE_H

#include "../broker/task.h"
#include "../broker/store.h"
#include "aq_uuid.h"

#include <stddef.h>
#include <stdint.h>

//  A UUIDv7 of the fixtures numbered n, as bytes and text.
void rig_upgrade_uuid (int n, uint8_t id[16], char text[AQ_UUID_TEXT]);
//  Converts what key holds in db as upgrade.c does (a dedupe time's 8
//  bytes as a bin node) and, when converted, stores the record; returns
//  what the converter said, its reason in why (256 bytes).
int rig_upgrade_convert (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                         char *why);
//  Asserts the JSON text of a blob of msgpack bytes is want.
void rig_upgrade_json_is (const bk_blob_t *blob, const char *want);

#endif
