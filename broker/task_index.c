/*  task_index.c - what a task list may filter by, indexed: labels, URL prefixes, provider, flow key
 */
#include "task_index.h"
#include "aq_uuid.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY     40 //  team(16) digest(15) status(1) seq(8)
#define S_COUNTER 32 //  team(16) digest(15) status(1)

void bk_task_index_digest (int kind, const void *a, size_t a_size, const void *b, size_t b_size,
                           uint8_t out[BK_INDEX_DIGEST]) {
    crypto_generichash_state state;
    uint8_t tag = (uint8_t) kind, hash[16];
    crypto_generichash_init (&state, NULL, 0, sizeof hash);
    crypto_generichash_update (&state, &tag, 1);
    crypto_generichash_update (&state, a, a_size);
    if (b) {
        uint8_t nul = 0;
        crypto_generichash_update (&state, &nul, 1);
        crypto_generichash_update (&state, b, b_size);
    }
    crypto_generichash_final (&state, hash, sizeof hash);
    memcpy (out, hash, BK_INDEX_DIGEST);
}

int bk_task_index_url_prefixes (const char *url, size_t size, size_t cuts[BK_INDEX_URL_DEPTH]) {
    const char *scheme = size > 3 ? memmem (url, size < 16 ? size : 16, "://", 3) : NULL;
    if (!scheme)
        return 0;
    size_t at = (size_t) (scheme - url) + 3;
    //  the host ends at the first '/', '?' or '#'; only a '/' starts a path
    while (at < size && url[at] != '/' && url[at] != '?' && url[at] != '#')
        at++;
    if (at == (size_t) (scheme - url) + 3)
        return 0; //  no host
    int n = 0;
    for (; at < size && n < BK_INDEX_URL_DEPTH && url[at] != '?' && url[at] != '#'; at++)
        if (url[at] == '/')
            cuts[n++] = at + 1;
    return n;
}

//  Adds digest to keys unless it is there already.
static void s_add (uint8_t keys[BK_INDEX_KEYS_MAX][BK_INDEX_DIGEST], int *n,
                   const uint8_t digest[BK_INDEX_DIGEST]) {
    for (int i = 0; i < *n; i++)
        if (memcmp (keys[i], digest, BK_INDEX_DIGEST) == 0)
            return;
    if (*n < BK_INDEX_KEYS_MAX)
        memcpy (keys[(*n)++], digest, BK_INDEX_DIGEST);
}

int bk_task_index_keys (const bk_task_t *task, uint8_t keys[BK_INDEX_KEYS_MAX][BK_INDEX_DIGEST]) {
    int n = 0;
    uint8_t digest[BK_INDEX_DIGEST];
    aq_node_t labels, name, value;
    if (task->labels.size && aq_msg_parse (task->labels.data, task->labels.size, &labels) == 0 &&
        labels.type == AQ_NODE_MAP) {
        aq_iter_t it;
        aq_node_iter (&labels, &it);
        for (int i = 0; i < 16 && aq_iter_next (&it, &name, &value); i++)
            if (aq_node_is_str (&name) && aq_node_is_str (&value)) {
                bk_task_index_digest (BK_INDEX_LABEL, name.data, name.count, value.data,
                                      value.count, digest);
                s_add (keys, &n, digest);
            }
    }
    if (task->target_url) {
        size_t cuts[BK_INDEX_URL_DEPTH];
        int ncuts = bk_task_index_url_prefixes (task->target_url, strlen (task->target_url), cuts);
        for (int i = 0; i < ncuts; i++) {
            bk_task_index_digest (BK_INDEX_URL, task->target_url, cuts[i], NULL, 0, digest);
            s_add (keys, &n, digest);
        }
    }
    if (task->provider) {
        bk_task_index_digest (BK_INDEX_PROVIDER, task->provider, strlen (task->provider), NULL, 0,
                              digest);
        s_add (keys, &n, digest);
    }
    if (task->flow_key) {
        bk_task_index_digest (BK_INDEX_FLOW, task->flow_key, strlen (task->flow_key), NULL, 0,
                              digest);
        s_add (keys, &n, digest);
    }
    return n;
}

void bk_task_index_prefix (uint8_t prefix[32], const uint8_t team[16],
                           const uint8_t digest[BK_INDEX_DIGEST], int status) {
    memcpy (prefix, team, 16);
    memcpy (prefix + 16, digest, BK_INDEX_DIGEST);
    prefix[31] = (uint8_t) status;
}

static void s_key (uint8_t key[S_KEY], const uint8_t team[16],
                   const uint8_t digest[BK_INDEX_DIGEST], int status, uint64_t seq) {
    bk_task_index_prefix (key, team, digest, status);
    for (int i = 0; i < 8; i++)
        key[32 + i] = (uint8_t) (seq >> (56 - 8 * i));
}

static int s_count (bk_store_t *store, const uint8_t key[S_KEY], int status, int delta) {
    uint8_t counter[S_COUNTER];
    memcpy (counter, key, S_COUNTER);
    counter[31] = (uint8_t) status;
    return bk_store_add (store, BK_DB_FILTER_COUNTS, counter, S_COUNTER, delta);
}

int bk_task_index_save (bk_store_t *store, const bk_task_t *task, int old_status) {
    if (old_status == task->status)
        return 0;
    uint8_t keys[BK_INDEX_KEYS_MAX][BK_INDEX_DIGEST], key[S_KEY];
    int n = bk_task_index_keys (task, keys), rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (old_status) {
            s_key (key, task->team, keys[i], old_status, task->seq);
            rc = bk_store_del (store, BK_DB_TASK_FILTERS, key, S_KEY);
            if (rc == 0)
                rc = s_count (store, key, old_status, -1);
        }
        s_key (key, task->team, keys[i], task->status, task->seq);
        if (rc == 0 && !old_status)
            rc = s_count (store, key, 0, 1);
        if (rc == 0)
            rc = bk_store_put (store, BK_DB_TASK_FILTERS, key, S_KEY, task->id, 16);
        if (rc == 0)
            rc = s_count (store, key, task->status, 1);
    }
    return rc;
}

uint64_t bk_task_index_count (bk_store_t *store, const uint8_t team[16],
                              const uint8_t digest[BK_INDEX_DIGEST], int status) {
    uint8_t counter[S_COUNTER];
    bk_task_index_prefix (counter, team, digest, status);
    return bk_store_counter (store, BK_DB_FILTER_COUNTS, counter, S_COUNTER);
}

int64_t bk_task_index_build (bk_store_t *store, int64_t max, bool *done) {
    *done = false;
    bk_val_t val;
    uint8_t after[16];
    int rc = bk_store_get (store, BK_DB_META, "filters", 7, &val);
    if (rc == 0 && val.size == 0) {
        *done = true;
        return 0;
    }
    bool resume = rc == 0 && val.size == 16;
    if (resume)
        memcpy (after, val.data, 16);
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_TASKS);
    if (!cursor)
        return -1;
    int64_t n = 0;
    bk_val_t k, v;
    rc = bk_cursor_seek (cursor, resume ? after : NULL, resume ? 16 : 0, &k, &v);
    if (rc == 0 && resume && k.size == 16 && memcmp (k.data, after, 16) == 0)
        rc = bk_cursor_next (cursor, &k, &v); //  that one is indexed
    int failed = 0;
    for (; rc == 0 && n < max && !failed; rc = bk_cursor_next (cursor, &k, &v)) {
        bk_task_t *task = bk_task_decode (v.data, v.size);
        if (task) //  the tables are written apart from the cursor's
            failed = bk_task_index_save (store, task, 0);
        if (k.size == 16)
            memcpy (after, k.data, 16);
        bk_task_destroy (&task);
        n++;
    }
    bk_cursor_close (&cursor);
    if (failed || (rc != 0 && rc != BK_NOTFOUND))
        return -1;
    *done = rc == BK_NOTFOUND;
    //  "" once every task is indexed, else the last one indexed
    if (bk_store_put (store, BK_DB_META, "filters", 7, after, *done ? 0 : 16) != 0)
        return -1;
    return n;
}

//  --------------------------------------------------------------------------

static bk_task_t *s_task (const uint8_t team[16], uint64_t seq, const char *url,
                          const char *label) {
    bk_task_t *task = bk_task_new (0);
    aq_uuid_new (task->id);
    memcpy (task->team, team, 16);
    task->seq = seq;
    task->status = BK_ST_PENDING;
    task->target_url = bk_task_strdup (task, url);
    task->created_at = 0;
    if (label) {
        aq_writer_t w;
        aq_writer_init (&w);
        aq_write_map (&w, 2);
        aq_write_kv_str (&w, "env", label);
        aq_write_kv_str (&w, "team", "search");
        size_t size;
        const uint8_t *data = aq_writer_data (&w, &size);
        bk_task_set_blob (task, &task->labels, data, size);
        aq_writer_release (&w);
    }
    return task;
}

static uint64_t s_label_count (bk_store_t *store, const uint8_t team[16], const char *value,
                               int status) {
    uint8_t digest[BK_INDEX_DIGEST];
    bk_task_index_digest (BK_INDEX_LABEL, "env", 3, value, strlen (value), digest);
    return bk_task_index_count (store, team, digest, status);
}

void bk_task_index_test (bool verbose) {
    //  URL prefixes: after the host, each '/' before the query, three at most
    size_t cuts[BK_INDEX_URL_DEPTH];
    const char *url = "https://api.example.com/v1/jobs/42/logs?next=/a/b";
    assert (bk_task_index_url_prefixes (url, strlen (url), cuts) == 3);
    assert (cuts[0] == strlen ("https://api.example.com/"));
    assert (cuts[2] == strlen ("https://api.example.com/v1/jobs/"));
    url = "http://h:8080?x=/y";
    assert (bk_task_index_url_prefixes (url, strlen (url), cuts) == 0);
    url = "http://h/a?b/";
    assert (bk_task_index_url_prefixes (url, strlen (url), cuts) == 1 && cuts[0] == 9);
    assert (bk_task_index_url_prefixes ("https:///x", 10, cuts) == 0);
    assert (bk_task_index_url_prefixes ("/x/y/", 5, cuts) == 0);
    //  a prefix cut short has the cuts it holds
    assert (bk_task_index_url_prefixes ("https://api.example.com/v1/jo", 29, cuts) == 2);

    //  digests: kind and the split of name and value count
    uint8_t a[BK_INDEX_DIGEST], b[BK_INDEX_DIGEST];
    bk_task_index_digest (BK_INDEX_LABEL, "ab", 2, "c", 1, a);
    bk_task_index_digest (BK_INDEX_LABEL, "a", 1, "bc", 2, b);
    assert (memcmp (a, b, BK_INDEX_DIGEST) != 0);
    bk_task_index_digest (BK_INDEX_PROVIDER, "fal", 3, NULL, 0, a);
    bk_task_index_digest (BK_INDEX_FLOW, "fal", 3, NULL, 0, b);
    assert (memcmp (a, b, BK_INDEX_DIGEST) != 0);

    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t team[16], other[16];
    aq_uuid_new (team);
    aq_uuid_new (other);
    bk_task_t *task = s_task (team, 1, "https://api.example.com/v1/x", "prod");
    task->provider = bk_task_strdup (task, "fal");
    task->flow_key = bk_task_strdup (task, "fal-prod");
    uint8_t keys[BK_INDEX_KEYS_MAX][BK_INDEX_DIGEST];
    assert (bk_task_index_keys (task, keys) == 2 + 2 + 1 + 1);
    assert (bk_task_index_save (store, task, 0) == 0);
    assert (s_label_count (store, team, "prod", 0) == 1);
    assert (s_label_count (store, team, "prod", BK_ST_PENDING) == 1);
    assert (s_label_count (store, other, "prod", 0) == 0);
    //  a status change moves the entries and the counters
    task->status = BK_ST_FAILED;
    assert (bk_task_index_save (store, task, BK_ST_PENDING) == 0);
    assert (s_label_count (store, team, "prod", BK_ST_PENDING) == 0);
    assert (s_label_count (store, team, "prod", BK_ST_FAILED) == 1);
    assert (s_label_count (store, team, "prod", 0) == 1);
    uint8_t prefix[32], key[S_KEY];
    bk_task_index_digest (BK_INDEX_URL, "https://api.example.com/v1/", 27, NULL, 0, a);
    assert (bk_task_index_count (store, team, a, 0) == 1);
    s_key (key, team, a, BK_ST_FAILED, 1);
    bk_val_t val;
    assert (bk_store_get (store, BK_DB_TASK_FILTERS, key, S_KEY, &val) == 0 && val.size == 16 &&
            memcmp (val.data, task->id, 16) == 0);
    s_key (key, team, a, BK_ST_PENDING, 1);
    assert (bk_store_get (store, BK_DB_TASK_FILTERS, key, S_KEY, &val) == BK_NOTFOUND);
    bk_task_index_prefix (prefix, team, a, BK_ST_FAILED);
    assert (memcmp (prefix, key, 31) == 0 && prefix[31] == BK_ST_FAILED);
    bk_task_destroy (&task);

    //  build: indexes stored tasks once, in steps, then says it is done
    for (uint64_t seq = 2; seq <= 6; seq++) {
        task = s_task (team, seq, "http://h/x", "dev");
        aq_writer_t w;
        aq_writer_init (&w);
        bk_task_encode (task, &w);
        assert (bk_store_put_writer (store, BK_DB_TASKS, task->id, 16, &w) == 0);
        aq_writer_release (&w);
        bk_task_destroy (&task);
    }
    bool done = false;
    assert (bk_task_index_build (store, 4, &done) == 4 && !done);
    assert (bk_task_index_build (store, 4, &done) == 1 && done);
    assert (s_label_count (store, team, "dev", 0) == 5);
    assert (bk_task_index_build (store, 4, &done) == 0 && done);
    assert (s_label_count (store, team, "dev", BK_ST_PENDING) == 5);

    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_task_index: ok\n");
}
