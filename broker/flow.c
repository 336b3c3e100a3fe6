/*  flow.c - flow control per key: limits on a key's calls that back off by themselves

    Store layout (store.h): BK_DB_FLOW holds one record per key under
    team(16) name (so a team's keys list by name), a msgpack map with small
    integer keys (F_* below, F_VERSION the record's version); BK_DB_FLOW_WAIT parks tasks
    under team(16) length(1) name 255-priority(1) seq(8) -> id(16), so a
    key's FIFO is one contiguous range, highest priority, then oldest, first.
*/
#include "flow.h"
#include "aq_time.h"
#include "tasks.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_RECORD      1                      //  the flow record's version
#define S_ID          (17 + BK_FLOW_KEY_MAX) //  team, name length, name zero-padded
#define S_WAIT_KEY    (S_ID + 9)             //  longest BK_DB_FLOW_WAIT key
#define S_RELEASE_MAX 1000                   //  tasks one key releases at a time
#define S_FLOOR_SHARE 100                    //  the effective rate stays >= rate / this
#define S_HOLD_MS     1000                   //  a 429 without Retry-After holds this long
#define S_JITTER_MAX  1000                   //  the rate window's margin, at most (ms)
#define S_NONE        INT64_MAX              //  no limit: room without end

enum { F_VERSION = 0, F_RATE, F_PERIOD, F_PARALLELISM, F_EFF, F_EFF_AT, F_HELD, F_PAUSED };

typedef struct {
    uint8_t id[S_ID];        //  team, name length, name (zero-padded): the memory key
    bool known;              //  the store has its record
    bk_flow_limits_t limits; //  as set
    bool paused;             //  dispatch stopped
    double eff;              //  effective rate (calls per period), with limits.rate
    int64_t eff_at;          //  ms it last changed: climbing counts periods from here
    int64_t held_until;      //  ms a 429 holds the key until, -1 none
    int64_t inflight;        //  tasks processing, waiting or polling
    int64_t waiting;         //  tasks parked in its FIFO
    int64_t queued;          //  tasks it put in the ready queue, not yet taken
    int64_t *starts;         //  recent call starts (ms), a ring, oldest at head
    size_t head;             //  index of the oldest
    size_t count;            //  starts held
    size_t cap;              //  ring capacity
    int64_t timer_at;        //  the timer set for it, -1 none
    bool dirty;              //  in the dirty list
    uint64_t hash;           //  of id (the table's)
} s_key_t;

typedef struct {
    int64_t at;   //  wall ms
    s_key_t *key; //  whose (stale when key->timer_at differs)
} s_timer_t;

typedef struct {
    uint64_t hash; //  the key's, compared before the key is touched
    s_key_t *key;  //  NULL: free
} s_slot_t;

struct _bk_flow_t {
    bk_store_t *store; //  borrowed
    bk_queue_t *queue; //  borrowed: where released tasks go
    s_slot_t *slots;   //  the keys (owned), open addressing by hash
    size_t nslots;     //  a power of two
    size_t nkeys;      //  keys held
    s_key_t *last;     //  the key found last (tasks come by twice in a row)
    s_timer_t *heap;   //  min-heap of key timers
    size_t nheap;      //  entries used
    size_t heap_cap;   //  allocated
    s_key_t **dirty;   //  keys to look at in the next bk_flow_work
    size_t ndirty;     //  used
    size_t dirty_cap;  //  allocated
};

//  --------------------------------------------------------------------------
//  Keys in memory

static uint64_t s_id_hash (const uint8_t id[S_ID]) {
    uint64_t h = 1469598103934665603ULL; //  FNV-1a over team, length and name
    for (size_t i = 0; i < 17u + id[16]; i++)
        h = (h ^ id[i]) * 1099511628211ULL;
    return h;
}

//  The key of id in the table, or NULL; *slot is where it is or would go.
static s_key_t *s_table_find (bk_flow_t *self, const uint8_t id[S_ID], uint64_t hash,
                              size_t *slot) {
    size_t mask = self->nslots - 1, i = (size_t) hash & mask;
    for (; self->slots[i].key; i = (i + 1) & mask)
        if (self->slots[i].hash == hash && memcmp (self->slots[i].key->id, id, 17u + id[16]) == 0)
            break;
    *slot = i;
    return self->slots[i].key;
}

//  Adds k (not in the table), growing it past half full.
static void s_table_add (bk_flow_t *self, s_key_t *k) {
    size_t slot;
    if (2 * (self->nkeys + 1) > self->nslots) {
        s_slot_t *old = self->slots;
        size_t n = self->nslots;
        self->nslots = n ? 2 * n : 64;
        self->slots = calloc (self->nslots, sizeof *self->slots);
        assert (self->slots);
        for (size_t i = 0; i < n; i++)
            if (old[i].key) {
                s_table_find (self, old[i].key->id, old[i].hash, &slot);
                self->slots[slot] = old[i];
            }
        free (old);
    }
    s_table_find (self, k->id, k->hash, &slot);
    self->slots[slot] = (s_slot_t){k->hash, k};
    self->nkeys++;
}

bk_flow_t *bk_flow_new (bk_store_t *store, bk_queue_t *queue) {
    bk_flow_t *self = calloc (1, sizeof *self);
    assert (self);
    self->store = store;
    self->queue = queue;
    return self;
}

void bk_flow_destroy (bk_flow_t **self_p) {
    assert (self_p);
    bk_flow_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nslots; i++)
        if (self->slots[i].key) {
            free (self->slots[i].key->starts);
            free (self->slots[i].key);
        }
    free (self->slots);
    free (self->heap);
    free (self->dirty);
    free (self);
    *self_p = NULL;
}

//  The memory key of a name (size bytes) in team.
static void s_id (uint8_t id[S_ID], const uint8_t team[16], const char *name, size_t size) {
    assert (size <= BK_FLOW_KEY_MAX);
    memset (id, 0, S_ID);
    memcpy (id, team, 16);
    id[16] = (uint8_t) size;
    memcpy (id + 17, name, size);
}

static size_t s_prefix_size (const uint8_t id[S_ID]) {
    return 17u + id[16];
}

//  The key of id's record in BK_DB_FLOW: team, name.
static size_t s_record_key (uint8_t out[16 + BK_FLOW_KEY_MAX], const uint8_t id[S_ID]) {
    memcpy (out, id, 16);
    memcpy (out + 16, id + 17, id[16]);
    return 16u + id[16];
}

//  A key's FIFO entry for a task: prefix, 255-priority, seq big-endian.
static size_t s_wait_key (uint8_t out[S_WAIT_KEY], const uint8_t id[S_ID], int priority,
                          uint64_t seq) {
    size_t n = s_prefix_size (id);
    memcpy (out, id, n);
    out[n] = (uint8_t) (255 - priority);
    for (int i = 0; i < 8; i++)
        out[n + 1 + i] = (uint8_t) (seq >> (56 - 8 * i));
    return n + 9;
}

//  --------------------------------------------------------------------------
//  The record

static void s_encode (const s_key_t *k, aq_writer_t *w) {
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
#define PUT(key, write)                                                                            \
    do {                                                                                           \
        aq_write_int (w, key);                                                                     \
        write;                                                                                     \
        n++;                                                                                       \
    } while (0)
    PUT (F_VERSION, aq_write_int (w, S_RECORD));
    if (k->limits.rate)
        PUT (F_RATE, aq_write_int (w, k->limits.rate));
    PUT (F_PERIOD, aq_write_int (w, k->limits.period));
    if (k->limits.parallelism)
        PUT (F_PARALLELISM, aq_write_int (w, k->limits.parallelism));
    if (k->limits.rate && k->eff < k->limits.rate) {
        PUT (F_EFF, aq_write_double (w, k->eff));
        PUT (F_EFF_AT, aq_write_int (w, k->eff_at));
    }
    if (k->held_until >= 0)
        PUT (F_HELD, aq_write_int (w, k->held_until));
    if (k->paused)
        PUT (F_PAUSED, aq_write_bool (w, true));
#undef PUT
    aq_write_map_close (w, mark, n);
}

//  Reads a record into k's durable fields; false when it is not one.
static bool s_decode (s_key_t *k, const void *data, size_t size) {
    aq_node_t record;
    if (aq_msg_parse (data, size, &record) != 0 || record.type != AQ_NODE_MAP)
        return false;
    k->limits = (bk_flow_limits_t){0, 1, 0};
    k->paused = false;
    k->eff = -1;
    k->eff_at = 0;
    k->held_until = -1;
    bool versioned = false;
    aq_iter_t it;
    aq_node_iter (&record, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        int64_t i = value.type == AQ_NODE_INT ? value.i : -1;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case F_VERSION:
            versioned = i == S_RECORD;
            break;
        case F_RATE:
            k->limits.rate = i > 0 ? (int) i : 0;
            break;
        case F_PERIOD:
            k->limits.period = i > 0 ? (int) i : 1;
            break;
        case F_PARALLELISM:
            k->limits.parallelism = i > 0 ? (int) i : 0;
            break;
        case F_EFF:
            aq_node_number (&value, &k->eff);
            break;
        case F_EFF_AT:
            k->eff_at = i;
            break;
        case F_HELD:
            k->held_until = i;
            break;
        case F_PAUSED:
            k->paused = value.type == AQ_NODE_BOOL && value.b;
            break;
        }
    }
    if (k->eff <= 0 || k->eff > k->limits.rate)
        k->eff = k->limits.rate;
    return versioned;
}

//  Loads k's record: 0, BK_NOTFOUND (k then has no limits), or an error.
static int s_load (bk_flow_t *self, s_key_t *k) {
    bk_val_t val;
    uint8_t key[16 + BK_FLOW_KEY_MAX];
    int rc = bk_store_get (self->store, BK_DB_FLOW, key, s_record_key (key, k->id), &val);
    k->known = rc == 0 && s_decode (k, val.data, val.size);
    if (!k->known) {
        k->limits = (bk_flow_limits_t){0, 1, 0};
        k->paused = false;
        k->eff = 0;
        k->held_until = -1;
    }
    return rc == 0 && !k->known ? BK_NOTFOUND : rc;
}

static int s_save (bk_flow_t *self, s_key_t *k) {
    aq_writer_t w;
    aq_writer_init (&w);
    s_encode (k, &w);
    uint8_t key[16 + BK_FLOW_KEY_MAX];
    int rc = bk_store_put_writer (self->store, BK_DB_FLOW, key, s_record_key (key, k->id), &w);
    aq_writer_release (&w);
    if (rc == 0)
        k->known = true;
    return rc;
}

//  The key of id: in memory, else read from the store (kept in memory when
//  it has a record or create is set). NULL when there is no such key.
static s_key_t *s_find (bk_flow_t *self, const uint8_t id[S_ID], bool create) {
    uint64_t hash = s_id_hash (id);
    size_t slot;
    s_key_t *k = self->nslots ? s_table_find (self, id, hash, &slot) : NULL;
    if (k)
        return self->last = k;
    k = calloc (1, sizeof *k);
    assert (k);
    memcpy (k->id, id, S_ID);
    k->hash = hash;
    k->timer_at = -1;
    if (s_load (self, k) != 0 && !create) {
        free (k);
        return NULL;
    }
    s_table_add (self, k);
    return self->last = k;
}

static s_key_t *s_task_key (bk_flow_t *self, const bk_task_t *task) {
    size_t size = strlen (task->flow_key);
    s_key_t *k = self->last;
    if (k && k->id[16] == size && memcmp (k->id, task->team, 16) == 0 &&
        memcmp (k->id + 17, task->flow_key, size) == 0)
        return k; //  the same task, or the same key, again
    uint8_t id[S_ID];
    s_id (id, task->team, task->flow_key, size);
    return s_find (self, id, true);
}

//  --------------------------------------------------------------------------
//  Limits at a moment

//  The effective rate after the periods without a 429 since it last
//  changed: a tenth of the rate more for each, up to the rate.
static void s_climb (s_key_t *k, int64_t now) {
    int rate = k->limits.rate;
    if (!rate || k->eff >= rate) {
        k->eff = rate;
        return;
    }
    int64_t period = (int64_t) k->limits.period * 1000;
    if (now <= k->eff_at)
        return;
    int64_t steps = (now - k->eff_at) / period;
    if (steps <= 0)
        return;
    k->eff += (double) steps * rate / 10.0;
    k->eff_at += steps * period;
    if (k->eff >= rate)
        k->eff = rate;
}

//  The rate window at the effective rate: at most *n calls start within
//  any *w ms (n calls per period, or one per period / eff below one).
static void s_window (const s_key_t *k, int64_t *n, int64_t *w) {
    double eff = k->eff > 0 ? k->eff : 1;
    int64_t calls = (int64_t) floor (eff + 1e-9);
    if (calls < 1)
        calls = 1;
    double span = (double) k->limits.period * 1000.0 * (double) calls / eff;
    *n = calls;
    *w = (int64_t) ceil (span + fmin (span / 40.0, S_JITTER_MAX));
}

static int64_t s_start_at (const s_key_t *k, size_t index) {
    return k->starts[(k->head + index) % k->cap];
}

//  Forgets starts that left the window.
static void s_starts_drop (s_key_t *k, int64_t now, int64_t w) {
    while (k->count && k->starts[k->head] + w <= now) {
        k->head = (k->head + 1) % k->cap;
        k->count--;
    }
}

static void s_starts_push (s_key_t *k, int64_t now) {
    if (k->count == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 4;
        int64_t *grown = malloc (cap * sizeof *grown);
        assert (grown);
        for (size_t i = 0; i < k->count; i++)
            grown[i] = s_start_at (k, i);
        free (k->starts);
        k->starts = grown;
        k->cap = cap;
        k->head = 0;
    }
    k->starts[(k->head + k->count) % k->cap] = now;
    k->count++;
}

static bool s_held (s_key_t *k, int64_t now) {
    if (k->held_until >= 0 && k->held_until <= now)
        k->held_until = -1; //  over (the record keeps it until the next save)
    return k->held_until > now;
}

//  How many more calls k may start now, counting those it already put in
//  the ready queue (queued: they will start). *wake is when that changes
//  by itself (a hold ends, the window turns), -1 when only an event does.
static int64_t s_room (s_key_t *k, int64_t now, bool queued, int64_t *wake) {
    *wake = -1;
    if (k->paused)
        return 0;
    if (s_held (k, now)) {
        *wake = k->held_until;
        return 0;
    }
    int64_t ahead = queued ? k->queued : 0;
    int64_t room = S_NONE;
    if (k->limits.parallelism)
        room = k->limits.parallelism - k->inflight - ahead;
    if (k->limits.rate) {
        int64_t n, w;
        s_climb (k, now);
        s_window (k, &n, &w);
        s_starts_drop (k, now, w);
        int64_t left = n - (int64_t) k->count - ahead;
        if (left <= 0 && room > 0) {
            //  the start that must leave the window for one more
            int64_t index = (int64_t) k->count - n + ahead;
            if (index >= 0 && index < (int64_t) k->count)
                *wake = s_start_at (k, (size_t) index) + w;
        }
        if (left < room)
            room = left;
    }
    return room;
}

//  --------------------------------------------------------------------------
//  Parking and releasing

static void s_dirty (bk_flow_t *self, s_key_t *k) {
    if (k->dirty)
        return;
    if (self->ndirty == self->dirty_cap) {
        self->dirty_cap = self->dirty_cap ? 2 * self->dirty_cap : 64;
        self->dirty = realloc (self->dirty, self->dirty_cap * sizeof *self->dirty);
        assert (self->dirty);
    }
    self->dirty[self->ndirty++] = k;
    k->dirty = true;
}

static void s_heap_swap (bk_flow_t *self, size_t a, size_t b) {
    s_timer_t t = self->heap[a];
    self->heap[a] = self->heap[b];
    self->heap[b] = t;
}

//  Wakes k at (wall ms), unless it wakes sooner already.
static void s_timer (bk_flow_t *self, s_key_t *k, int64_t at) {
    if (k->timer_at >= 0 && k->timer_at <= at)
        return;
    if (self->nheap == self->heap_cap) {
        self->heap_cap = self->heap_cap ? 2 * self->heap_cap : 64;
        self->heap = realloc (self->heap, self->heap_cap * sizeof *self->heap);
        assert (self->heap);
    }
    size_t i = self->nheap++;
    self->heap[i] = (s_timer_t){at, k};
    while (i && self->heap[(i - 1) / 2].at > self->heap[i].at) {
        s_heap_swap (self, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    k->timer_at = at;
}

static s_timer_t s_heap_pop (bk_flow_t *self) {
    s_timer_t top = self->heap[0];
    self->heap[0] = self->heap[--self->nheap];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, least = i;
        if (l < self->nheap && self->heap[l].at < self->heap[least].at)
            least = l;
        if (r < self->nheap && self->heap[r].at < self->heap[least].at)
            least = r;
        if (least == i)
            break;
        s_heap_swap (self, i, least);
        i = least;
    }
    return top;
}

static int s_park (bk_flow_t *self, s_key_t *k, const bk_task_t *task) {
    uint8_t key[S_WAIT_KEY];
    size_t size = s_wait_key (key, k->id, task->priority, task->seq);
    int rc = bk_store_put (self->store, BK_DB_FLOW_WAIT, key, size, task->id, 16);
    if (rc == 0)
        k->waiting++;
    return rc;
}

//  Moves the head of k's FIFO into the ready queue. 0, BK_NOTFOUND when
//  the FIFO is empty, or a store error.
static int s_release_one (bk_flow_t *self, s_key_t *k) {
    size_t prefix = s_prefix_size (k->id);
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_FLOW_WAIT);
    if (!cursor)
        return BK_ESTORE;
    bk_val_t key, val;
    int rc = bk_cursor_seek (cursor, k->id, prefix, &key, &val);
    if (rc == 0 &&
        (key.size != prefix + 9 || memcmp (key.data, k->id, prefix) != 0 || val.size != 16))
        rc = BK_NOTFOUND;
    int priority = 0;
    uint64_t seq = 0;
    uint8_t id[16];
    if (rc == 0) {
        const uint8_t *bytes = key.data;
        priority = 255 - bytes[prefix];
        for (int i = 0; i < 8; i++)
            seq = seq << 8 | bytes[prefix + 1 + i];
        memcpy (id, val.data, 16);
        rc = bk_cursor_del (cursor);
    }
    bk_cursor_close (&cursor);
    if (rc == 0)
        rc = bk_queue_push (self->queue, priority, k->id, seq, id);
    if (rc == 0) {
        k->waiting--;
        k->queued++;
    }
    return rc;
}

//  Releases what k can start now (S_RELEASE_MAX at a time, then it is
//  marked for the next turn) and sets its timer for what it waits for.
static void s_settle (bk_flow_t *self, s_key_t *k, int64_t now) {
    if (k->waiting <= 0)
        return;
    int64_t wake;
    int64_t room = s_room (k, now, true, &wake);
    int released = 0;
    while (room > 0 && k->waiting > 0 && released < S_RELEASE_MAX) {
        int rc = s_release_one (self, k);
        if (rc == BK_NOTFOUND)
            k->waiting = 0; //  the count ran ahead of the FIFO: it is empty
        if (rc != 0)
            return;
        room--;
        released++;
    }
    if (k->waiting > 0 && room > 0)
        s_dirty (self, k);
    else if (k->waiting > 0 && wake >= 0)
        s_timer (self, k, wake);
}

static bool s_in_flight (int status) {
    return status == BK_ST_PROCESSING || status == BK_ST_WAITING || status == BK_ST_POLLING;
}

int bk_flow_ready (bk_flow_t *self, const bk_task_t *task, int64_t now) {
    assert (task->flow_key);
    s_key_t *k = s_task_key (self, task);
    int64_t wake;
    if (k->waiting == 0 && s_room (k, now, true, &wake) > 0) {
        int rc = bk_queue_push (self->queue, task->priority, task->team, task->seq, task->id);
        if (rc == 0)
            k->queued++;
        return rc;
    }
    int rc = s_park (self, k, task);
    if (rc == 0)
        s_settle (self, k, now);
    return rc;
}

bool bk_flow_admit (bk_flow_t *self, const bk_task_t *task, int64_t now) {
    assert (task->flow_key);
    s_key_t *k = s_task_key (self, task);
    if (k->queued > 0)
        k->queued--;
    int64_t wake;
    //  the queued ones are not counted: a slot is taken by a start only
    if (s_room (k, now, false, &wake) > 0) {
        if (k->limits.rate)
            s_starts_push (k, now);
        return true; //  its save (bk_flow_moved) settles the parked
    }
    if (s_park (self, k, task) != 0)
        return true; //  a store error: let it run rather than lose it
    s_settle (self, k, now);
    return false;
}

void bk_flow_moved (bk_flow_t *self, const bk_task_t *task, int old_status, int64_t now) {
    if (!task->flow_key)
        return;
    bool was = s_in_flight (old_status), is = s_in_flight (task->status);
    bool unqueued = old_status == BK_ST_PENDING && task->status == BK_ST_CANCELLED;
    if (was == is && old_status != BK_ST_PENDING)
        return; //  (out of pending: a start may turn the window for the parked)
    s_key_t *k = s_task_key (self, task);
    if (!was && is)
        k->inflight++;
    else if (was && !is && k->inflight > 0)
        k->inflight--;
    if (unqueued) {
        //  parked (then it leaves the FIFO) or in the ready queue (removed)
        uint8_t key[S_WAIT_KEY];
        size_t size = s_wait_key (key, k->id, task->priority, task->seq);
        bk_val_t val;
        if (bk_store_get (self->store, BK_DB_FLOW_WAIT, key, size, &val) == 0) {
            if (bk_store_del (self->store, BK_DB_FLOW_WAIT, key, size) == 0 && k->waiting > 0)
                k->waiting--;
        } else if (k->queued > 0)
            k->queued--;
    }
    s_settle (self, k, now);
}

int bk_flow_throttled (bk_flow_t *self, const bk_task_t *task, int64_t retry_after_ms,
                       int64_t cap_ms, int64_t now) {
    assert (task->flow_key);
    s_key_t *k = s_task_key (self, task);
    int64_t hold = retry_after_ms >= 0 ? retry_after_ms : S_HOLD_MS;
    if (cap_ms > 0 && hold > cap_ms)
        hold = cap_ms;
    bool held = s_held (k, now);
    int rate = k->limits.rate;
    if (rate && !held) { //  a 429 of a call started before the hold says nothing new
        s_climb (k, now);
        k->eff = fmax (k->eff / 2, (double) rate / S_FLOOR_SHARE);
    }
    if (now + hold > k->held_until)
        k->held_until = now + hold;
    if (rate && k->eff < rate)
        k->eff_at = k->held_until > now ? k->held_until : now; //  climbs once the hold ends
    int rc = k->known ? s_save (self, k) : 0;
    s_settle (self, k, now);
    return rc;
}

//  --------------------------------------------------------------------------
//  The API

bool bk_flow_key_valid (const char *name, size_t size) {
    if (!name || size < 1 || size > BK_FLOW_KEY_MAX)
        return false;
    for (size_t i = 0; i < size; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

const char *bk_flow_parse (const aq_node_t *map, bool with_key, const char *prefix,
                           char key[BK_FLOW_KEY_MAX + 1], bk_flow_limits_t *limits, char *errbuf,
                           size_t size) {
    int plen = prefix ? (int) strlen (prefix) : 0;
    if (map->type != AQ_NODE_MAP) {
        if (!plen)
            return "Request body must be a JSON object";
        snprintf (errbuf, size, "%.*s must be an object", plen - 1, prefix);
        return errbuf;
    }
    static const char *const fields[] = {"key", "rate", "period", "parallelism", NULL};
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool found = false;
        for (int i = with_key ? 0 : 1; fields[i] && !found; i++)
            found = aq_node_streq (&name, fields[i]);
        if (!found) {
            int shown = name.type == AQ_NODE_STR ? (int) (name.count < 100 ? name.count : 100) : 0;
            snprintf (errbuf, size, "Unknown field: %.*s%.*s", plen, prefix ? prefix : "", shown,
                      name.type == AQ_NODE_STR ? (const char *) name.data : "");
            return errbuf;
        }
    }
#define GIVEN(field) (aq_node_get (map, field, &value) && !aq_node_is_nil (&value))
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf (errbuf, size, __VA_ARGS__);                                                      \
        return errbuf;                                                                             \
    } while (0)
    if (with_key) {
        if (!GIVEN ("key"))
            FAIL ("%.*skey is required", plen, prefix);
        if (!aq_node_is_str (&value) || !bk_flow_key_valid ((const char *) value.data, value.count))
            FAIL ("%.*skey must be 1-100 characters of A-Z a-z 0-9 . _ : -", plen, prefix);
        memcpy (key, value.data, value.count);
        key[value.count] = '\0';
    }
    int64_t number = 0;
    *limits = (bk_flow_limits_t){0, 1, 0};
    if (GIVEN ("rate")) {
        if (!aq_node_int_in (&value, 1, 100000, &number))
            FAIL ("%.*srate must be a number between 1 and 100000", plen, prefix);
        limits->rate = (int) number;
    }
    if (GIVEN ("period")) {
        if (!aq_node_int_in (&value, 1, 86400, &number))
            FAIL ("%.*speriod must be a number between 1 and 86400", plen, prefix);
        limits->period = (int) number;
    }
    if (GIVEN ("parallelism")) {
        if (!aq_node_int_in (&value, 1, 10000, &number))
            FAIL ("%.*sparallelism must be a number between 1 and 10000", plen, prefix);
        limits->parallelism = (int) number;
    }
    if (!limits->rate && !limits->parallelism)
        FAIL ("%.*srate or %.*sparallelism is required", plen, prefix, plen, prefix);
#undef GIVEN
#undef FAIL
    return NULL;
}

int bk_flow_set (bk_flow_t *self, const uint8_t team[16], const char *key,
                 const bk_flow_limits_t *limits, int64_t now) {
    uint8_t id[S_ID];
    s_id (id, team, key, strlen (key));
    s_key_t *k = s_find (self, id, true);
    if (k->known && k->limits.rate == limits->rate && k->limits.period == limits->period &&
        k->limits.parallelism == limits->parallelism)
        return 0; //  the same again: the AIMD state stays
    k->limits = *limits;
    k->eff = limits->rate;
    k->eff_at = now;
    int rc = s_save (self, k);
    s_settle (self, k, now);
    return rc;
}

int bk_flow_pause (bk_flow_t *self, const uint8_t team[16], const char *key, bool paused,
                   int64_t now) {
    uint8_t id[S_ID];
    s_id (id, team, key, strlen (key));
    s_key_t *k = s_find (self, id, false);
    if (!k || !k->known)
        return BK_NOTFOUND;
    if (k->paused == paused)
        return 0;
    k->paused = paused;
    int rc = s_save (self, k);
    s_settle (self, k, now);
    return rc;
}

static void s_info (s_key_t *k, int64_t now, bk_flow_info_t *info) {
    memset (info, 0, sizeof *info);
    memcpy (info->key, k->id + 17, k->id[16]);
    info->limits = k->limits;
    s_climb (k, now);
    info->effective_rate = k->limits.rate ? k->eff : 0;
    info->in_flight = k->inflight;
    info->waiting = k->waiting;
    info->paused = k->paused;
    info->held_until = s_held (k, now) ? k->held_until : -1;
}

int bk_flow_get (bk_flow_t *self, const uint8_t team[16], const char *key, int64_t now,
                 bk_flow_info_t *info) {
    size_t size = strlen (key);
    if (!bk_flow_key_valid (key, size))
        return BK_NOTFOUND;
    uint8_t id[S_ID];
    s_id (id, team, key, size);
    s_key_t *k = s_find (self, id, false);
    if (!k || !k->known)
        return BK_NOTFOUND;
    s_info (k, now, info);
    return 0;
}

void bk_flow_write_public (const bk_flow_info_t *info, int64_t now, aq_writer_t *w) {
    const bk_flow_limits_t *limits = &info->limits;
    bool held = info->held_until > now;
    aq_write_map (w, 5 + 2 * (limits->rate > 0) + (limits->parallelism > 0) + held);
    aq_write_kv_str (w, "key", info->key);
    if (limits->rate)
        aq_write_kv_int (w, "rate", limits->rate);
    aq_write_kv_int (w, "period", limits->period);
    if (limits->parallelism)
        aq_write_kv_int (w, "parallelism", limits->parallelism);
    if (limits->rate) {
        aq_write_str (w, "effectiveRate");
        double rate = round (info->effective_rate * 1000.0) / 1000.0;
        if (rate == floor (rate))
            aq_write_int (w, (int64_t) rate);
        else
            aq_write_double (w, rate);
    }
    aq_write_kv_int (w, "inFlight", info->in_flight);
    aq_write_kv_int (w, "waiting", info->waiting);
    aq_write_kv_bool (w, "paused", info->paused);
    if (held) {
        char stamp[32];
        aq_write_kv_str (w, "heldUntil", aq_time_format (info->held_until, stamp));
    }
}

size_t bk_flow_write_page (bk_flow_t *self, const uint8_t team[16], int limit, int offset,
                           int64_t now, aq_writer_t *w, uint64_t *total) {
    size_t mark = aq_write_array_open (w), shown = 0;
    uint64_t index = 0;
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_FLOW);
    bk_val_t key, val;
    for (int rc = cursor ? bk_cursor_seek (cursor, team, 16, &key, &val) : BK_ESTORE; rc == 0;
         rc = bk_cursor_next (cursor, &key, &val)) {
        const uint8_t *bytes = key.data;
        if (key.size < 16 || memcmp (bytes, team, 16) != 0)
            break;
        if (!bk_flow_key_valid ((const char *) bytes + 16, key.size - 16))
            continue;
        if (index++ < (uint64_t) offset || shown >= (size_t) limit)
            continue;
        uint8_t id[S_ID];
        s_id (id, team, (const char *) bytes + 16, key.size - 16);
        size_t slot;
        s_key_t *k = self->nslots ? s_table_find (self, id, s_id_hash (id), &slot) : NULL;
        s_key_t loaded = {.held_until = -1};
        if (!k) { //  not in memory: nothing in flight, nothing parked
            memcpy (loaded.id, id, S_ID);
            if (!s_decode (&loaded, val.data, val.size))
                continue;
            k = &loaded;
        }
        bk_flow_info_t info;
        s_info (k, now, &info);
        bk_flow_write_public (&info, now, w);
        shown++;
    }
    bk_cursor_close (&cursor);
    aq_write_array_close (w, mark, (uint32_t) shown);
    *total = index;
    return shown;
}

//  --------------------------------------------------------------------------
//  The turn

void bk_flow_work (bk_flow_t *self, int64_t now) {
    while (self->nheap && self->heap[0].at <= now) {
        s_timer_t timer = s_heap_pop (self);
        if (timer.key->timer_at != timer.at)
            continue; //  replaced by a sooner one, or recovered
        timer.key->timer_at = -1;
        s_settle (self, timer.key, now);
    }
    size_t n = self->ndirty;
    s_key_t **list = self->dirty;
    self->dirty = NULL;
    self->ndirty = self->dirty_cap = 0;
    for (size_t i = 0; i < n; i++)
        list[i]->dirty = false;
    for (size_t i = 0; i < n; i++)
        s_settle (self, list[i], now);
    free (list);
}

int64_t bk_flow_next_wake (bk_flow_t *self, int64_t now) {
    if (self->ndirty)
        return now;
    while (self->nheap && self->heap[0].key->timer_at != self->heap[0].at)
        s_heap_pop (self); //  stale
    return self->nheap ? self->heap[0].at : INT64_MAX;
}

static int s_count_in_flight (void *arg, const uint8_t id[16]) {
    bk_flow_t *self = arg;
    bk_task_t *task = bk_tasks_get (self->store, id);
    if (task && task->flow_key)
        s_task_key (self, task)->inflight++;
    bk_task_destroy (&task);
    return 0;
}

void bk_flow_recover (bk_flow_t *self) {
    for (size_t i = 0; i < self->nslots; i++) {
        s_key_t *k = self->slots[i].key;
        if (!k)
            continue;
        s_load (self, k); //  a failed commit may have taken back a change
        k->inflight = k->waiting = k->queued = 0;
        k->timer_at = -1;
        k->dirty = false;
    }
    self->nheap = self->ndirty = 0;
    //  parked tasks, key by key
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_FLOW_WAIT);
    bk_val_t key;
    s_key_t *k = NULL;
    for (int rc = cursor ? bk_cursor_seek (cursor, NULL, 0, &key, NULL) : BK_ESTORE; rc == 0;
         rc = bk_cursor_next (cursor, &key, NULL)) {
        const uint8_t *bytes = key.data;
        if (key.size < 18 || bytes[16] > BK_FLOW_KEY_MAX || key.size != 17u + bytes[16] + 9)
            continue;
        if (!k || memcmp (k->id, bytes, 17u + bytes[16]) != 0) {
            uint8_t id[S_ID];
            s_id (id, bytes, (const char *) bytes + 17, bytes[16]);
            k = s_find (self, id, true);
        }
        k->waiting++;
    }
    bk_cursor_close (&cursor);
    int statuses[] = {BK_ST_PROCESSING, BK_ST_WAITING, BK_ST_POLLING};
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++)
        bk_tasks_each_in_status (self->store, statuses[i], s_count_in_flight, self);
    for (size_t i = 0; i < self->nslots; i++)
        if (self->slots[i].key && self->slots[i].key->waiting > 0)
            s_dirty (self, self->slots[i].key);
}
