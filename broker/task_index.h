/*  task_index.h - what a task list may filter by, indexed: labels, URL prefixes, provider, flow key

    A task is indexed under a digest of each thing GET /v1/tasks filters
    by besides status and creation time: each label (name and value), each
    prefix of its targetUrl that ends with a '/' of the URL's path (at most
    BK_INDEX_URL_DEPTH of them: "https://api.example.com/",
    "https://api.example.com/v1/", "https://api.example.com/v1/jobs/"),
    its provider and its flow-control key. Entries are kept per status, in
    creation order, with a counter for each:

        BK_DB_TASK_FILTERS   team(16) digest(15) status(1) seq(8) -> id(16)
        BK_DB_FILTER_COUNTS  team(16) digest(15) status(1) -> uint64
                             (status 0 counts every status)

    so "the team's failed tasks labelled env=prod, newest first" is one
    range of one table, and its size one counter. A digest is BLAKE2b of
    a kind byte and the value (labels: name, NUL, value), cut to 15 bytes:
    keys stay short whatever the values (a label value may be 1 KiB of
    UTF-8), and a counter key fits the store's in-memory counters.

    bk_tasks_save calls bk_task_index_save with every change of a task, in
    the caller's transaction. A task's indexed fields never change after
    it is created; only its status does, which moves its entries.
*/
#ifndef BK_TASK_INDEX_H
#define BK_TASK_INDEX_H

#include "store.h"
#include "task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_INDEX_DIGEST    15                            //  bytes of a digest
#define BK_INDEX_URL_DEPTH 3                             //  URL prefixes indexed per task
#define BK_INDEX_KEYS_MAX  (16 + BK_INDEX_URL_DEPTH + 2) //  digests per task

//  What a digest is of.
typedef enum {
    BK_INDEX_LABEL = 'l',    //  a label: name, NUL, value
    BK_INDEX_URL = 'u',      //  a targetUrl prefix
    BK_INDEX_PROVIDER = 'p', //  a provider's name
    BK_INDEX_FLOW = 'f'      //  a flow-control key
} bk_index_kind_t;

//  The digest of kind with a and b (b may be NULL: then a alone) into out.
void bk_task_index_digest (int kind, const void *a, size_t a_size, const void *b, size_t b_size,
                           uint8_t out[BK_INDEX_DIGEST]);

//  The lengths of url's indexed prefixes (size bytes; it need not end in
//  NUL): each ends with a '/' after "scheme://host", before any '?' or '#',
//  shortest first, at most BK_INDEX_URL_DEPTH. Returns how many (0 for
//  text without "://" and a '/' after the host).
int bk_task_index_url_prefixes (const char *url, size_t size, size_t cuts[BK_INDEX_URL_DEPTH]);

//  The digests task is indexed under into keys; returns how many.
int bk_task_index_keys (const bk_task_t *task, uint8_t keys[BK_INDEX_KEYS_MAX][BK_INDEX_DIGEST]);

//  Indexes a task whose stored status was old_status (0: a new task):
//  adds its entries, or moves them to its status, with the counters.
//  0 or a store error.
int bk_task_index_save (bk_store_t *store, const bk_task_t *task, int old_status);

//  How many of team's tasks are indexed under digest in status (0: any).
uint64_t bk_task_index_count (bk_store_t *store, const uint8_t team[16],
                              const uint8_t digest[BK_INDEX_DIGEST], int status);

//  The key prefix of digest's entries in status: team digest status, 32
//  bytes into prefix (the seq follows it in each key).
void bk_task_index_prefix (uint8_t prefix[32], const uint8_t team[16],
                           const uint8_t digest[BK_INDEX_DIGEST], int status);

//  Indexes tasks stored before these indexes existed (an upgraded store,
//  or one written by an older build): walks BK_DB_TASKS from where the
//  last call stopped (kept in BK_DB_META "filters"), indexing up to max
//  tasks in the current write transaction. Returns how many it indexed
//  and sets *done once every task is; -1 on a store error. A store whose
//  tasks are all indexed has *done at once.
int64_t bk_task_index_build (bk_store_t *store, int64_t max, bool *done);

void bk_task_index_test (bool verbose);

#endif
