/*  storefill.c - aq-store-fill: writes tasks straight into a stopped broker's store

    aq-store-fill --data DIR --team NAME --count N [--status S] [--url URL]
                  [--label NAME:VALUE]... [--provider P] [--flow-key K]

    A million tasks through the broker's protocol take a while, and a
    million failed ones take their calls too; the list and bulk benchmarks
    (tests/bench.py, phase lists) and tests that need tasks in a state
    the API cannot make quickly write them here instead, with the broker's
    own code (bk_tasks_save keeps every index and counter), into the data
    directory of a broker that is not running (the store is locked while
    one is). The team must exist (aqctl key create --team NAME made it).

    Task i (from 0) gets status S (default failed), targetUrl URL (default
    http://127.0.0.1:9/never), each label, provider and flow key; "{i%M}"
    in a label value or the URL is replaced by i modulo M. createdAt runs
    from now - N ms, one ms apart, and seq continues the store's. Prints
    `filled N tasks in S s` on stderr.
*/
#include "../broker/store.h"
#include "../broker/task.h"
#include "../broker/tasks.h"
#include "aq_time.h"
#include "aq_uuid.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STEP   20000 //  tasks per transaction
#define S_LABELS 16

static int s_usage (void) {
    fprintf (stderr, "usage: aq-store-fill --data DIR --team NAME --count N [--status S] "
                     "[--url URL] [--label NAME:VALUE]... [--provider P] [--flow-key K]\n");
    return 2;
}

//  text with "{i%M}" replaced by i % M, into out.
static const char *s_expand (const char *text, int64_t i, char *out, size_t size) {
    const char *mark = strstr (text, "{i%");
    long long mod = mark ? atoll (mark + 3) : 0;
    const char *end = mark ? strchr (mark, '}') : NULL;
    if (!mark || mod <= 0 || !end) {
        snprintf (out, size, "%s", text);
        return out;
    }
    snprintf (out, size, "%.*s%lld%s", (int) (mark - text), text, (long long) (i % mod), end + 1);
    return out;
}

int main (int argc, char **argv) {
    const char *data = NULL, *team_name = NULL, *url = "http://127.0.0.1:9/never";
    const char *provider = NULL, *flow_key = NULL, *labels[S_LABELS];
    int nlabels = 0, status = BK_ST_FAILED;
    int64_t count = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *name = argv[i], *value = argv[i + 1];
        bool ok = true;
        if (strcmp (name, "--data") == 0)
            data = value;
        else if (strcmp (name, "--team") == 0)
            team_name = value;
        else if (strcmp (name, "--count") == 0)
            count = atoll (value);
        else if (strcmp (name, "--status") == 0)
            ok = (status = bk_status_parse (value, strlen (value))) != 0;
        else if (strcmp (name, "--url") == 0)
            url = value;
        else if (strcmp (name, "--label") == 0)
            ok = nlabels < S_LABELS && strchr (value, ':') && (labels[nlabels++] = value);
        else if (strcmp (name, "--provider") == 0)
            provider = value;
        else if (strcmp (name, "--flow-key") == 0)
            flow_key = value;
        else
            ok = false;
        if (!ok)
            return s_usage ();
    }
    if (!data || !team_name || count <= 0 || argc % 2 == 0)
        return s_usage ();
    char err[512];
    bk_store_t *store = bk_store_open (data, 1LL << 30, true, err, sizeof err);
    if (!store) {
        fprintf (stderr, "aq-store-fill: %s\n", err);
        return 1;
    }
    int rc = 1;
    aq_writer_t w;
    aq_writer_init (&w);
    uint8_t team[16];
    uint64_t seq = 0;
    bk_val_t val;
    if (bk_store_begin (store, false) != 0)
        goto out;
    if (bk_store_get (store, BK_DB_TEAM_NAMES, team_name, strlen (team_name), &val) != 0 ||
        val.size != 16) {
        fprintf (stderr, "aq-store-fill: no team '%s' in '%s'\n", team_name, data);
        bk_store_abort (store);
        goto out;
    }
    memcpy (team, val.data, 16);
    if (bk_store_get (store, BK_DB_META, "seq", 3, &val) == 0 && val.size == 8)
        memcpy (&seq, val.data, 8);
    bk_store_abort (store);

    int64_t start = aq_time_mono_ms (), base = aq_time_now_ms () - count;
    for (int64_t i = 0; i < count;) {
        if (bk_store_begin (store, true) != 0)
            goto out;
        int failed = 0;
        for (int64_t end = i + S_STEP; i < count && i < end && !failed; i++) {
            bk_task_t *task = bk_task_new (0);
            aq_uuid_new (task->id);
            memcpy (task->team, team, 16);
            task->seq = ++seq;
            task->status = status;
            char text[2048];
            task->target_url = bk_task_strdup (task, s_expand (url, i, text, sizeof text));
            task->max_wait_s = task->timeout_s = 30;
            task->max_retries = 0;
            task->priority = 5;
            task->created_at = base + i;
            if (bk_status_terminal (status))
                task->completed_at = task->created_at, task->error = "fetch failed: ECONNREFUSED";
            task->provider = provider ? bk_task_strdup (task, provider) : NULL;
            task->flow_key = flow_key ? bk_task_strdup (task, flow_key) : NULL;
            if (nlabels) {
                aq_writer_reset (&w);
                aq_write_map (&w, (uint32_t) nlabels);
                for (int l = 0; l < nlabels; l++) {
                    const char *colon = strchr (labels[l], ':');
                    aq_write_strn (&w, labels[l], (size_t) (colon - labels[l]));
                    aq_write_str (&w, s_expand (colon + 1, i, text, sizeof text));
                }
                size_t size;
                const uint8_t *bytes = aq_writer_data (&w, &size);
                bk_task_set_blob (task, &task->labels, bytes, size);
            }
            failed = bk_tasks_save (store, task, 0);
            bk_task_destroy (&task);
        }
        if (!failed)
            failed = bk_store_put (store, BK_DB_META, "seq", 3, &seq, 8);
        if (failed) {
            bk_store_abort (store);
            fprintf (stderr, "aq-store-fill: cannot write to '%s'\n", data);
            goto out;
        }
        if (bk_store_commit (store) != 0)
            goto out;
        bk_store_settle (store);
    }
    fprintf (stderr, "filled %lld tasks in %.1f s\n", (long long) count,
             (double) (aq_time_mono_ms () - start) / 1000.0);
    rc = 0;
out:
    aq_writer_release (&w);
    bk_store_destroy (&store);
    return rc;
}
