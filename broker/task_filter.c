/*  task_filter.c - the tasks a filter matches, found through the indexes */
#include "task_filter.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "request.h" //  BK_PAGE_BYTES
#include "task_index.h"
#include "tasks.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Budget units, about 50 ns of the loop each, as measured on a store of
//  a million tasks: stepping a cursor to the next entry (~50 ns), looking
//  the task up in another filter's index (a probe, ~1.3 us), reading and
//  decoding its record (~4 us). BK_QUERY_BUDGET is some 20 ms.
#define S_VISIT 1
#define S_PROBE 25
#define S_CHECK 80

#define S_FLOW_KEY_MAX 100 //  flowControl.key: 1 to 100 of [A-Za-z0-9._:-]

static const char *const s_query_fields[] = {
    "status",         "label",        "targetUrl",     "provider",
    "flowControlKey", "createdAfter", "createdBefore", NULL};
static const char *const s_map_fields[] = {
    "status",         "labels",       "targetUrl",     "provider",
    "flowControlKey", "createdAfter", "createdBefore", NULL};

//  --------------------------------------------------------------------------
//  Reading a filter

//  "<prefix><name> <rest>" into errbuf.
static const char *s_error (char *errbuf, size_t size, const char *prefix, const char *name,
                            const char *rest) {
    snprintf (errbuf, size, "%s%s %s", prefix, name, rest);
    return errbuf;
}

static bool s_flow_key (const aq_node_t *value) {
    if (!aq_node_is_str (value) || value->count < 1 || value->count > S_FLOW_KEY_MAX)
        return false;
    for (uint32_t i = 0; i < value->count; i++) {
        uint8_t c = value->data[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c && strchr ("._:-", c));
        if (!ok)
            return false;
    }
    return true;
}

static bool s_label_value (const uint8_t *value, size_t size) {
    return bk_task_utf8_chars (value, size) <= BK_LABEL_VALUE_MAX;
}

//  One "name:value" of GET /v1/tasks' label parameter.
static bool s_label_text (bk_task_filter_t *self, const aq_node_t *text) {
    if (!aq_node_is_str (text) || self->nlabels == BK_LABELS_MAX)
        return false;
    const uint8_t *colon = memchr (text->data, ':', text->count);
    if (!colon || !bk_task_label_name (text->data, (size_t) (colon - text->data)))
        return false;
    bk_label_match_t *label = &self->labels[self->nlabels++];
    label->name = text->data;
    label->name_size = (size_t) (colon - text->data);
    label->value = colon + 1;
    label->value_size = text->count - label->name_size - 1;
    return s_label_value (label->value, label->value_size);
}

static const char *s_labels_object (bk_task_filter_t *self, const aq_node_t *labels, char *errbuf,
                                    size_t size) {
    if (labels->type != AQ_NODE_MAP)
        return s_error (errbuf, size, "filter.", "labels", "must be an object of strings");
    if (labels->count > BK_LABELS_MAX)
        return s_error (errbuf, size, "filter.", "labels", "must have at most 16 entries");
    aq_iter_t it;
    aq_node_iter (labels, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        if (!aq_node_is_str (&value))
            return s_error (errbuf, size, "filter.", "labels", "must be an object of strings");
        if (!aq_node_is_str (&name) || !bk_task_label_name (name.data, name.count))
            return s_error (errbuf, size, "filter.", "labels",
                            "names must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
        if (!s_label_value (value.data, value.count))
            return s_error (errbuf, size, "filter.", "labels",
                            "values must be at most 256 characters");
        bk_label_match_t *label = &self->labels[self->nlabels++];
        label->name = name.data, label->name_size = name.count;
        label->value = value.data, label->value_size = value.count;
    }
    return NULL;
}

//  One member of a filter (name, value; value not nil).
static const char *s_member (bk_task_filter_t *self, const aq_node_t *name, const aq_node_t *value,
                             const char *prefix, char *errbuf, size_t size) {
    if (aq_node_streq (name, "status")) {
        if (!aq_node_is_str (value) ||
            !(self->status = bk_status_parse ((const char *) value->data, value->count)))
            return s_error (errbuf, size, prefix, "status",
                            "must be one of: pending, delayed, processing, waiting, polling, "
                            "completed, failed, timeout, cancelled");
    } else if (aq_node_streq (name, "label")) {
        if (value->type == AQ_NODE_ARRAY && value->count > BK_LABELS_MAX)
            return "label may be given at most 16 times";
        aq_node_t item;
        aq_iter_t it;
        bool ok = value->type == AQ_NODE_ARRAY || s_label_text (self, value);
        if (value->type == AQ_NODE_ARRAY)
            for (aq_node_iter (value, &it); ok && aq_iter_next (&it, NULL, &item);)
                ok = s_label_text (self, &item);
        if (!ok)
            return "label must be name:value, the name 1 to 64 characters of A-Z a-z 0-9 . _ - "
                   "and the value at most 256 characters";
    } else if (aq_node_streq (name, "labels")) {
        return s_labels_object (self, value, errbuf, size);
    } else if (aq_node_streq (name, "targetUrl")) {
        size_t cuts[BK_INDEX_URL_DEPTH];
        if (!aq_node_is_str (value) || value->count > 2048 ||
            bk_task_index_url_prefixes ((const char *) value->data, value->count, cuts) == 0)
            return s_error (errbuf, size, prefix, "targetUrl",
                            "must be a URL prefix with a host and a /, such as "
                            "https://api.example.com/");
        self->url = (const char *) value->data, self->url_size = value->count;
    } else if (aq_node_streq (name, "provider")) {
        if (!aq_node_is_str (value) || value->count == 0)
            return s_error (errbuf, size, prefix, "provider", "must be a non-empty string");
        self->provider = (const char *) value->data, self->provider_size = value->count;
    } else if (aq_node_streq (name, "flowControlKey")) {
        if (!s_flow_key (value))
            return s_error (errbuf, size, prefix, "flowControlKey",
                            "must be 1 to 100 characters of A-Z a-z 0-9 . _ : -");
        self->flow_key = (const char *) value->data, self->flow_key_size = value->count;
    } else {
        bool after = aq_node_streq (name, "createdAfter");
        char text[64];
        int64_t *ms = after ? &self->created_after : &self->created_before;
        if (!aq_node_strcpy (value, text, sizeof text) || aq_time_parse (text, ms) != 0)
            return s_error (errbuf, size, prefix, after ? "createdAfter" : "createdBefore",
                            "must be a valid ISO 8601 date");
    }
    return NULL;
}

static const char *s_read (bk_task_filter_t *self, const aq_node_t *map, const char *const fields[],
                           const char *prefix, char *errbuf, size_t size) {
    memset (self, 0, sizeof *self);
    self->created_after = self->created_before = -1;
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ours = false;
        for (int i = 0; fields[i] && !ours; i++)
            ours = aq_node_streq (&name, fields[i]);
        if (!ours || aq_node_is_nil (&value))
            continue;
        const char *error = s_member (self, &name, &value, prefix, errbuf, size);
        if (error)
            return error;
    }
    return NULL;
}

const char *bk_task_filter_query (bk_task_filter_t *self, const aq_node_t *request, char *errbuf,
                                  size_t size) {
    return s_read (self, request, s_query_fields, "", errbuf, size);
}

const char *bk_task_filter_map (bk_task_filter_t *self, const aq_node_t *map, char *errbuf,
                                size_t size) {
    if (map->type != AQ_NODE_MAP)
        return "filter must be an object";
    const char *error = bk_task_unknown_field (map, s_map_fields, "filter.", errbuf, size);
    return error ? error : s_read (self, map, s_map_fields, "filter.", errbuf, size);
}

static bool s_same (const char *text, const char *want, size_t want_size) {
    return text && strlen (text) == want_size && memcmp (text, want, want_size) == 0;
}

//  True when the task's labels (a msgpack map) hold name = value.
static bool s_has_label (const bk_task_t *task, const bk_label_match_t *label) {
    aq_node_t labels, name, value;
    if (!task->labels.size || aq_msg_parse (task->labels.data, task->labels.size, &labels) != 0)
        return false;
    aq_iter_t it;
    aq_node_iter (&labels, &it);
    while (aq_iter_next (&it, &name, &value))
        if (name.count == label->name_size && memcmp (name.data, label->name, name.count) == 0)
            return aq_node_is_str (&value) && value.count == label->value_size &&
                   memcmp (value.data, label->value, value.count) == 0;
    return false;
}

bool bk_task_filter_match (const bk_task_filter_t *self, const bk_task_t *task) {
    if (self->status && task->status != self->status)
        return false;
    for (int i = 0; i < self->nlabels; i++)
        if (!s_has_label (task, &self->labels[i]))
            return false;
    if (self->url && (!task->target_url || strlen (task->target_url) < self->url_size ||
                      memcmp (task->target_url, self->url, self->url_size) != 0))
        return false;
    if (self->provider && !s_same (task->provider, self->provider, self->provider_size))
        return false;
    if (self->flow_key && !s_same (task->flow_key, self->flow_key, self->flow_key_size))
        return false;
    if (self->created_after >= 0 && task->created_at < self->created_after)
        return false;
    return self->created_before < 0 || task->created_at < self->created_before;
}

//  --------------------------------------------------------------------------
//  Planning

#define S_RANGES (BK_ST_COUNT - 1) //  one per status at most

#define S_PROBES (BK_LABELS_MAX + 3) //  index filters besides the one walked

struct _bk_task_query_t {
    bk_store_t *store;                         //  borrowed
    uint8_t team[16];                          //  whose tasks
    const bk_task_filter_t *filter;            //  borrowed
    bk_db_t db;                                //  the table walked
    uint8_t prefix[S_RANGES][32];              //  each range's key prefix (the seq follows)
    int status[S_RANGES];                      //  each range's status, 0: any
    size_t prefix_size;                        //  their length
    int nranges;                               //  how many ranges, merged by seq
    uint64_t count;                            //  the tasks in the ranges
    uint64_t seq_lo, seq_hi;                   //  the time range as seqs (inclusive)
    uint8_t probes[S_PROBES][BK_INDEX_DIGEST]; //  the other index filters' digests
    int nprobes;                               //  how many
    bool check;                                //  each task's record must be checked
    bool timed;                                //  a time range bounds the walk
    uint64_t reached;                          //  the seq of the last entry walked
};

static uint64_t s_get64 (const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void s_put64 (uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> (56 - 8 * i));
}

//  The smallest seq from which every task of team was created at ms or
//  later: createdAt grows with seq (engine.h), so a binary search over
//  the team's creation order finds it. hi is the team's highest seq.
static uint64_t s_seq_at (bk_store_t *store, const uint8_t team[16], uint64_t hi, int64_t ms) {
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_TEAM_TASKS);
    uint64_t lo = 1;
    hi++;
    while (cursor && lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint8_t key[24];
        memcpy (key, team, 16);
        s_put64 (key + 16, mid);
        bk_val_t k, v;
        bk_task_t *task = NULL;
        if (bk_cursor_seek (cursor, key, 24, &k, &v) == 0 && k.size == 24 && v.size == 16 &&
            memcmp (k.data, team, 16) == 0) {
            uint8_t id[16];
            memcpy (id, v.data, 16);
            task = bk_tasks_get (store, id);
        }
        if (!task) { //  nothing from mid on (or unreadable): the answer is lower
            hi = mid;
            continue;
        }
        if (task->created_at >= ms)
            hi = mid;
        else
            lo = s_get64 ((const uint8_t *) k.data + 16) + 1;
        bk_task_destroy (&task);
    }
    bk_cursor_close (&cursor);
    return lo;
}

//  The digest an index filter walks, and its count in status.
typedef struct {
    uint8_t digest[BK_INDEX_DIGEST];
    uint64_t count;
} s_candidate_t;

bk_task_query_t *bk_task_query_new (bk_store_t *store, const uint8_t team[16],
                                    const bk_task_filter_t *filter) {
    bk_task_query_t *self = calloc (1, sizeof *self);
    assert (self);
    self->store = store;
    memcpy (self->team, team, 16);
    self->filter = filter;
    self->seq_lo = 1;
    self->seq_hi = bk_tasks_seq_hi (store, team);
    if (filter->created_after >= 0 || filter->created_before >= 0) {
        self->timed = true;
        if (filter->created_after >= 0)
            self->seq_lo = s_seq_at (store, team, self->seq_hi, filter->created_after);
        if (filter->created_before >= 0)
            self->seq_hi = s_seq_at (store, team, self->seq_hi, filter->created_before) - 1;
    }
    //  each index filter, counted in the status asked for
    s_candidate_t candidates[BK_LABELS_MAX + 3];
    int n = 0;
    for (int i = 0; i < filter->nlabels; i++)
        bk_task_index_digest (BK_INDEX_LABEL, filter->labels[i].name, filter->labels[i].name_size,
                              filter->labels[i].value, filter->labels[i].value_size,
                              candidates[n++].digest);
    bool url_exact = true;
    if (filter->url) {
        size_t cuts[BK_INDEX_URL_DEPTH];
        int ncuts = bk_task_index_url_prefixes (filter->url, filter->url_size, cuts);
        assert (ncuts > 0); //  the filter was checked
        url_exact = cuts[ncuts - 1] == filter->url_size;
        bk_task_index_digest (BK_INDEX_URL, filter->url, cuts[ncuts - 1], NULL, 0,
                              candidates[n++].digest);
    }
    if (filter->provider)
        bk_task_index_digest (BK_INDEX_PROVIDER, filter->provider, filter->provider_size, NULL, 0,
                              candidates[n++].digest);
    if (filter->flow_key)
        bk_task_index_digest (BK_INDEX_FLOW, filter->flow_key, filter->flow_key_size, NULL, 0,
                              candidates[n++].digest);
    int best = -1;
    for (int i = 0; i < n; i++) {
        candidates[i].count =
            bk_task_index_count (store, team, candidates[i].digest, filter->status);
        if (best < 0 || candidates[i].count < candidates[best].count)
            best = i;
    }
    //  the others are probed: the task's key in their index, in its status
    for (int i = 0; i < n; i++)
        if (i != best)
            memcpy (self->probes[self->nprobes++], candidates[i].digest, BK_INDEX_DIGEST);
    self->check = !url_exact;
    if (best >= 0) {
        self->db = BK_DB_TASK_FILTERS;
        self->prefix_size = 32;
        self->count = candidates[best].count;
        for (int st = filter->status ? filter->status : 1;
             st <= (filter->status ? filter->status : BK_ST_COUNT - 1); st++) {
            self->status[self->nranges] = st;
            bk_task_index_prefix (self->prefix[self->nranges++], team, candidates[best].digest, st);
        }
    } else {
        self->db = filter->status ? BK_DB_TEAM_STATUS : BK_DB_TEAM_TASKS;
        memcpy (self->prefix[0], team, 16);
        self->prefix_size = 16;
        if (filter->status)
            self->prefix[0][self->prefix_size++] = (uint8_t) filter->status;
        self->nranges = 1;
        self->count = bk_tasks_count (store, team, filter->status);
    }
    return self;
}

void bk_task_query_destroy (bk_task_query_t **self_p) {
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

bool bk_task_query_counted (bk_task_query_t *self, uint64_t *total) {
    *total = self->count;
    return !self->check && !self->nprobes && !self->timed;
}

//  --------------------------------------------------------------------------
//  Walking

typedef struct {
    bk_cursor_t *cursor; //  on the range's current entry, NULL once it ended
    uint64_t seq;        //  that entry's seq
    uint8_t id[16];      //  and task id
} s_head_t;

//  Reads the entry under a cursor into head, or ends it when the entry is
//  outside the range or [lo, hi].
static void s_head (bk_task_query_t *self, s_head_t *head, int range, int rc, const bk_val_t *k,
                    const bk_val_t *v, uint64_t lo, uint64_t hi) {
    size_t size = self->prefix_size;
    if (rc == 0 && k->size == size + 8 && v->size == 16 &&
        memcmp (k->data, self->prefix[range], size) == 0) {
        head->seq = s_get64 ((const uint8_t *) k->data + size);
        memcpy (head->id, v->data, 16);
        if (head->seq >= lo && head->seq <= hi)
            return;
    }
    bk_cursor_close (&head->cursor);
}

int bk_task_query_walk (bk_task_query_t *self, bool ascending, uint64_t seq_min, uint64_t seq_max,
                        int64_t *budget, bk_task_query_fn *fn, void *arg) {
    uint64_t lo = seq_min > self->seq_lo ? seq_min : self->seq_lo;
    uint64_t hi = seq_max < self->seq_hi ? seq_max : self->seq_hi;
    self->reached = 0;
    if (lo > hi || self->count == 0)
        return BK_WALK_END;
    s_head_t heads[S_RANGES] = {{0}};
    //  a cursor per probe and range: consecutive probes of one range land
    //  on the same leaf page, which LMDB then searches alone
    bk_cursor_t *probes[S_PROBES][S_RANGES] = {{0}};
    int rc = BK_WALK_END;
    for (int r = 0; r < self->nranges; r++) {
        heads[r].cursor = bk_cursor_open (self->store, self->db);
        if (!heads[r].cursor) {
            rc = -1;
            break;
        }
        uint8_t key[40];
        size_t size = self->prefix_size;
        memcpy (key, self->prefix[r], size);
        s_put64 (key + size, ascending ? lo : hi);
        bk_val_t k, v;
        int found = bk_cursor_seek (heads[r].cursor, key, size + 8, &k, &v);
        if (!ascending &&
            !(found == 0 && k.size == size + 8 && memcmp (k.data, key, size + 8) == 0))
            found = found == 0 ? bk_cursor_prev (heads[r].cursor, &k, &v)
                               : bk_cursor_last (heads[r].cursor, &k, &v);
        s_head (self, &heads[r], r, found, &k, &v, lo, hi);
        *budget -= S_VISIT;
    }
    while (rc == BK_WALK_END) {
        int next = -1;
        for (int r = 0; r < self->nranges; r++)
            if (heads[r].cursor && (next < 0 || (ascending ? heads[r].seq < heads[next].seq
                                                           : heads[r].seq > heads[next].seq)))
                next = r;
        if (next < 0)
            break;
        if (*budget <= 0) {
            rc = BK_WALK_BUDGET;
            break;
        }
        s_head_t *head = &heads[next];
        bk_task_t *task = NULL;
        bool match = true;
        for (int p = 0; p < self->nprobes && match; p++) {
            uint8_t key[40];
            bk_task_index_prefix (key, self->team, self->probes[p], self->status[next]);
            s_put64 (key + 32, head->seq);
            bk_cursor_t **probe = &probes[p][next];
            if (!*probe)
                *probe = bk_cursor_open (self->store, BK_DB_TASK_FILTERS);
            bk_val_t k;
            *budget -= S_PROBE;
            match = *probe && bk_cursor_seek (*probe, key, 40, &k, NULL) == 0 && k.size == 40 &&
                    memcmp (k.data, key, 40) == 0;
        }
        if (self->check && match) {
            *budget -= S_CHECK;
            task = bk_tasks_get (self->store, head->id);
            match = task && bk_task_filter_match (self->filter, task);
        }
        if (match && fn (arg, head->seq, head->id, task))
            rc = BK_WALK_STOP;
        self->reached = head->seq;
        bk_task_destroy (&task);
        bk_val_t k, v;
        int found = ascending ? bk_cursor_next (head->cursor, &k, &v)
                              : bk_cursor_prev (head->cursor, &k, &v);
        s_head (self, head, next, found, &k, &v, lo, hi);
        *budget -= S_VISIT;
    }
    for (int r = 0; r < self->nranges; r++) {
        bk_cursor_close (&heads[r].cursor);
        for (int p = 0; p < self->nprobes; p++)
            bk_cursor_close (&probes[p][r]);
    }
    return rc;
}

uint64_t bk_task_query_reached (bk_task_query_t *self) {
    return self->reached;
}

//  --------------------------------------------------------------------------
//  A page

typedef struct {
    bk_store_t *store; //  to read tasks the walk did not
    aq_writer_t *w;    //  where they go
    int64_t offset;    //  matches to skip
    int64_t limit;     //  matches to show
    int64_t seen;      //  matches so far
    size_t shown;      //  written
    size_t mark;       //  where the page's array starts in w
    bool full;         //  the page took BK_PAGE_BYTES: the rest is the next page's
    bool counting;     //  go on past the page to count the total
} s_page_t;

static int s_page_fn (void *arg, uint64_t seq, const uint8_t id[16], bk_task_t *task) {
    s_page_t *page = arg;
    page->full = page->full || page->w->size - page->mark >= BK_PAGE_BYTES;
    if (page->seen >= page->offset && (int64_t) page->shown < page->limit && !page->full) {
        bk_task_t *read = task ? NULL : bk_tasks_get (page->store, id);
        if (task || read) {
            bk_task_write_public (task ? task : read, page->w);
            page->shown++;
        }
        bk_task_destroy (&read);
    }
    page->seen++;
    return !page->counting && (page->full || page->seen >= page->offset + page->limit);
}

size_t bk_task_query_page (bk_task_query_t *self, bool ascending, int64_t offset, int64_t limit,
                           int64_t budget, aq_writer_t *w, uint64_t *total, bool *exact,
                           bool *more) {
    uint64_t counted;
    bool by_counter = bk_task_query_counted (self, &counted);
    size_t mark = aq_write_array_open (w);
    s_page_t page = {self->store, w, offset, limit, 0, 0, mark, false, !by_counter};
    int rc = by_counter && (uint64_t) offset >= counted
                 ? BK_WALK_END //  past the end: nothing to walk
                 : bk_task_query_walk (self, ascending, 0, UINT64_MAX, &budget, s_page_fn, &page);
    aq_write_array_close (w, mark, (uint32_t) page.shown);
    if (by_counter && rc != BK_WALK_BUDGET) {
        *total = counted;
        *exact = true;
        *more = (uint64_t) offset + page.shown < counted;
    } else if (by_counter) { //  the page itself ran out of budget (a deep offset)
        *total = counted;
        *exact = true;
        *more = true;
    } else {
        *total = (uint64_t) page.seen;
        *exact = rc == BK_WALK_END;
        *more = rc != BK_WALK_END || (uint64_t) offset + page.shown < *total;
    }
    return page.shown;
}

//  --------------------------------------------------------------------------
//  Selftest

#include "aq_json.h"

//  A filter from a JSON text of TASK_LIST fields, kept in w.
static const char *s_filter (bk_task_filter_t *filter, aq_writer_t *w, const char *json) {
    static char errbuf[256];
    aq_writer_reset (w);
    assert (aq_json_parse (json, w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    aq_node_t request;
    assert (aq_msg_parse (data, size, &request) == 0);
    return bk_task_filter_query (filter, &request, errbuf, sizeof errbuf);
}

static bk_task_t *s_task (const uint8_t team[16], uint64_t seq, int status, const char *url,
                          const char *env, const char *provider) {
    bk_task_t *task = bk_task_new (0);
    aq_uuid_new (task->id);
    memcpy (task->team, team, 16);
    task->seq = seq;
    task->status = status;
    task->target_url = bk_task_strdup (task, url);
    task->created_at = 1000 * (int64_t) seq;
    task->provider = provider ? bk_task_strdup (task, provider) : NULL;
    if (env) {
        aq_writer_t w;
        aq_writer_init (&w);
        aq_write_map (&w, 2);
        aq_write_kv_str (&w, "env", env);
        aq_write_kv_str (&w, "batch", seq % 2 ? "odd" : "even");
        size_t size;
        const uint8_t *data = aq_writer_data (&w, &size);
        bk_task_set_blob (task, &task->labels, data, size);
        aq_writer_release (&w);
    }
    return task;
}

//  The seqs a filter's page holds, as "3,2,1", with total and exactness.
static char *s_page (bk_store_t *store, const uint8_t team[16], const char *json, bool ascending,
                     int64_t offset, int64_t limit, int64_t budget, uint64_t *total, bool *exact,
                     bool *more) {
    static char out[512];
    aq_writer_t fw, w;
    aq_writer_init (&fw);
    aq_writer_init (&w);
    bk_task_filter_t filter;
    const char *error = s_filter (&filter, &fw, json);
    assert (!error);
    bk_task_query_t *query = bk_task_query_new (store, team, &filter);
    bk_task_query_page (query, ascending, offset, limit, budget, &w, total, exact, more);
    bk_task_query_destroy (&query);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t page, item, value;
    assert (aq_msg_parse (data, size, &page) == 0);
    aq_iter_t it;
    out[0] = '\0';
    for (aq_node_iter (&page, &it); aq_iter_next (&it, NULL, &item);) {
        assert (aq_node_get (&item, "createdAt", &value));
        char stamp[40];
        int64_t ms;
        assert (aq_node_strcpy (&value, stamp, sizeof stamp) && aq_time_parse (stamp, &ms) == 0);
        snprintf (out + strlen (out), sizeof out - strlen (out), "%s%lld", *out ? "," : "",
                  (long long) (ms / 1000));
    }
    aq_writer_release (&w);
    aq_writer_release (&fw);
    return out;
}

void bk_task_filter_test (bool verbose) {
    bk_task_filter_t filter;
    aq_writer_t w;
    aq_writer_init (&w);
    struct {
        const char *json, *error;
    } bad[] = {
        {"{\"status\": \"done\"}", "status must be one of: pending, delayed, processing, waiting, "
                                   "polling, completed, failed, timeout, cancelled"},
        {"{\"label\": \"env\"}", "label must be name:value, the name 1 to 64 characters of A-Z "
                                 "a-z 0-9 . _ - and the value at most 256 characters"},
        {"{\"label\": \":x\"}", "label must be name:value, the name 1 to 64 characters of A-Z "
                                "a-z 0-9 . _ - and the value at most 256 characters"},
        {"{\"label\": [\"a:1\", 5]}", "label must be name:value, the name 1 to 64 characters of "
                                      "A-Z a-z 0-9 . _ - and the value at most 256 characters"},
        {"{\"label\": [\"a:1\", \"a:2\", \"a:3\", \"a:4\", \"a:5\", \"a:6\", \"a:7\", \"a:8\", "
         "\"a:9\", \"a:10\", \"a:11\", \"a:12\", \"a:13\", \"a:14\", \"a:15\", \"a:16\", "
         "\"a:17\"]}",
         "label may be given at most 16 times"},
        {"{\"targetUrl\": \"https://api.example.com\"}",
         "targetUrl must be a URL prefix with a host and a /, such as https://api.example.com/"},
        {"{\"targetUrl\": \"api.example.com/x\"}",
         "targetUrl must be a URL prefix with a host and a /, such as https://api.example.com/"},
        {"{\"flowControlKey\": \"a b\"}",
         "flowControlKey must be 1 to 100 characters of A-Z a-z 0-9 . _ : -"},
        {"{\"provider\": \"\"}", "provider must be a non-empty string"},
        {"{\"createdAfter\": \"yesterday\"}", "createdAfter must be a valid ISO 8601 date"},
        {"{\"createdBefore\": 5}", "createdBefore must be a valid ISO 8601 date"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *error = s_filter (&filter, &w, bad[i].json);
        if (!error || strcmp (error, bad[i].error) != 0) {
            fprintf (stderr, "bk_task_filter: %s -> %s\n", bad[i].json, error ? error : "(ok)");
            assert (false);
        }
    }
    assert (!s_filter (&filter, &w, "{\"label\": \"url:https://x/y?a=b:c\", \"limit\": \"5\"}"));
    assert (filter.nlabels == 1 && filter.labels[0].name_size == 3 &&
            filter.labels[0].value_size == strlen ("https://x/y?a=b:c"));
    assert (!s_filter (&filter, &w, "{\"status\": null, \"createdAfter\": \"2024-01-15\"}"));
    assert (filter.status == 0 && filter.created_after == 1705276800000 &&
            filter.created_before == -1);

    //  the bulk shape: labels as an object, unknown members refused
    aq_writer_reset (&w);
    aq_json_parse ("{\"labels\": {\"env\": \"prod\", \"a\": \"b\"}, \"status\": \"failed\"}", &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t map;
    char errbuf[128];
    assert (aq_msg_parse (data, size, &map) == 0);
    assert (!bk_task_filter_map (&filter, &map, errbuf, sizeof errbuf));
    assert (filter.nlabels == 2 && filter.status == BK_ST_FAILED);
    aq_writer_reset (&w);
    aq_json_parse ("{\"label\": \"env:prod\"}", &w);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &map) == 0);
    assert (strcmp (bk_task_filter_map (&filter, &map, errbuf, sizeof errbuf),
                    "Unknown field: filter.label") == 0);
    aq_writer_reset (&w);
    aq_json_parse ("{\"labels\": {\"env\": 1}, \"status\": \"x\"}", &w);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &map) == 0);
    assert (strcmp (bk_task_filter_map (&filter, &map, errbuf, sizeof errbuf),
                    "filter.labels must be an object of strings") == 0);
    aq_writer_release (&w);

    //  a store: team's tasks 1..40, other's 41..44
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t team[16], other[16];
    aq_uuid_new (team);
    aq_uuid_new (other);
    for (uint64_t seq = 1; seq <= 44; seq++) {
        const uint8_t *owner = seq <= 40 ? team : other;
        int status = seq % 3 == 0 ? BK_ST_FAILED : BK_ST_COMPLETED;
        const char *url =
            seq % 4 == 0 ? "https://a.example.com/v1/jobs/x" : "https://b.example/hook";
        const char *env = seq % 5 == 0 ? NULL : seq % 2 ? "prod" : "dev";
        bk_task_t *task = s_task (owner, seq, BK_ST_PENDING, url, env, seq == 7 ? "fal" : NULL);
        assert (bk_tasks_save (store, task, 0) == 0);
        task->status = status; //  as a task ends: its entries move
        assert (bk_tasks_save (store, task, BK_ST_PENDING) == 0);
        bk_task_destroy (&task);
    }
    uint64_t total;
    bool exact, more;
    //  one index, any status: nine ranges merged, the total from counters
    char *seqs = s_page (store, team, "{\"label\": \"env:prod\"}", false, 0, 5, BK_QUERY_BUDGET,
                         &total, &exact, &more);
    assert (strcmp (seqs, "39,37,33,31,29") == 0 && total == 16 && exact && more);
    seqs = s_page (store, team, "{\"label\": \"env:prod\"}", true, 14, 5, BK_QUERY_BUDGET, &total,
                   &exact, &more);
    assert (strcmp (seqs, "37,39") == 0 && total == 16 && !more);
    //  with a status: one range
    seqs = s_page (store, team, "{\"label\": \"env:prod\", \"status\": \"failed\"}", true, 0, 50,
                   BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "3,9,21,27,33,39") == 0 && total == 6 && exact && !more);
    //  two labels: walk the smaller, check the other
    seqs =
        s_page (store, team, "{\"label\": [\"env:prod\", \"batch:odd\"], \"status\": \"failed\"}",
                true, 0, 50, BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "3,9,21,27,33,39") == 0 && total == 6 && exact && !more);
    seqs = s_page (store, team, "{\"label\": [\"env:prod\", \"batch:even\"]}", true, 0, 50,
                   BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "") == 0 && total == 0 && exact && !more);
    //  targetUrl: at a '/' from the counters, in between checked
    seqs = s_page (store, team, "{\"targetUrl\": \"https://a.example.com/v1/\"}", false, 0, 3,
                   BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "40,36,32") == 0 && total == 10 && exact && more);
    seqs = s_page (store, team, "{\"targetUrl\": \"https://a.example.com/v1/jobs/x\"}", false, 0, 3,
                   BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "40,36,32") == 0 && total == 10 && exact && more);
    seqs = s_page (store, team, "{\"targetUrl\": \"https://a.example.com/v1/jobs/y\"}", false, 0, 3,
                   BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "") == 0 && total == 0 && exact && !more);
    seqs = s_page (store, team, "{\"provider\": \"fal\"}", false, 0, 3, BK_QUERY_BUDGET, &total,
                   &exact, &more);
    assert (strcmp (seqs, "7") == 0 && total == 1 && exact);
    //  time: [createdAfter, createdBefore) as seqs; status alone; nothing
    seqs = s_page (store, team,
                   "{\"createdAfter\": \"1970-01-01T00:00:10Z\", \"createdBefore\": "
                   "\"1970-01-01T00:00:13Z\"}",
                   true, 0, 50, BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "10,11,12") == 0 && total == 3 && exact && !more);
    seqs = s_page (store, team,
                   "{\"status\": \"failed\", \"createdBefore\": \"1970-01-01T00:00:10Z\"}", false,
                   0, 50, BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "9,6,3") == 0 && total == 3);
    seqs = s_page (store, team, "{\"createdAfter\": \"1970-01-01T00:01:00Z\"}", false, 0, 50,
                   BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "") == 0 && total == 0 && exact);
    seqs = s_page (store, team, "{}", false, 38, 50, BK_QUERY_BUDGET, &total, &exact, &more);
    assert (strcmp (seqs, "2,1") == 0 && total == 40 && exact && !more);
    seqs = s_page (store, other, "{\"label\": \"env:prod\"}", true, 0, 50, BK_QUERY_BUDGET, &total,
                   &exact, &more);
    assert (strcmp (seqs, "41,43") == 0 && total == 2);
    //  a budget too small to count all: a lower bound, hasMore
    seqs = s_page (store, team, "{\"label\": [\"env:prod\", \"batch:odd\"]}", true, 0, 2, 120,
                   &total, &exact, &more);
    assert (strcmp (seqs, "1,3") == 0 && !exact && more && total >= 2 && total < 16);

    //  a walk from a seq on, as bulk jobs resume
    filter = (bk_task_filter_t){.status = BK_ST_FAILED, .created_after = -1, .created_before = -1};
    bk_task_query_t *query = bk_task_query_new (store, team, &filter);
    s_page_t page = {store, NULL, 0, 0, 0, 0, 0, false, true};
    aq_writer_t sink;
    aq_writer_init (&sink);
    page.w = &sink;
    int64_t budget = BK_QUERY_BUDGET;
    assert (bk_task_query_walk (query, true, 20, 30, &budget, s_page_fn, &page) == BK_WALK_END);
    assert (page.seen == 4); //  21 24 27 30
    bk_task_query_destroy (&query);
    aq_writer_release (&sink);

    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_task_filter: ok\n");
}
