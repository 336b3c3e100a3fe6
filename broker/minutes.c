/*  minutes.c - per-team counts of tasks created, completed and failed, minute by minute */
#include "minutes.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MINUTE_MS 60000LL

typedef struct {
    uint8_t team[16];           //  whose
    uint64_t changes;           //  status changes of its tasks
    int64_t minute[BK_MINUTES]; //  the minute a slot counts (ms / 60000), -1 unused
    uint32_t count[BK_MINUTES][BK_MINUTE_KINDS]; //  its counts by bk_minute_kind_t
} s_team_t;

struct _bk_minutes_t {
    s_team_t *teams; //  in order of first activity
    size_t count;    //  how many
    size_t cap;      //  allocated
};

bk_minutes_t *bk_minutes_new (void) {
    bk_minutes_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void bk_minutes_destroy (bk_minutes_t **self_p) {
    assert (self_p);
    bk_minutes_t *self = *self_p;
    if (!self)
        return;
    free (self->teams);
    free (self);
    *self_p = NULL;
}

//  The team's ring, or NULL; with create, a new empty one when it has none.
static s_team_t *s_team (bk_minutes_t *self, const uint8_t team[16], bool create) {
    for (size_t i = 0; i < self->count; i++)
        if (memcmp (self->teams[i].team, team, 16) == 0)
            return &self->teams[i];
    if (!create)
        return NULL;
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 8;
        self->teams = realloc (self->teams, self->cap * sizeof *self->teams);
        assert (self->teams);
    }
    s_team_t *ring = &self->teams[self->count++];
    memset (ring, 0, sizeof *ring);
    memcpy (ring->team, team, 16);
    for (int i = 0; i < BK_MINUTES; i++)
        ring->minute[i] = -1;
    return ring;
}

void bk_minutes_add (bk_minutes_t *self, const uint8_t team[16], int kind, int64_t now) {
    assert (self && team && kind >= 0 && kind < BK_MINUTE_KINDS);
    s_team_t *ring = s_team (self, team, true);
    int64_t minute = now / S_MINUTE_MS;
    int slot = (int) (minute % BK_MINUTES);
    if (ring->minute[slot] != minute) {
        ring->minute[slot] = minute;
        memset (ring->count[slot], 0, sizeof ring->count[slot]);
    }
    ring->count[slot][kind]++;
}

void bk_minutes_touch (bk_minutes_t *self, const uint8_t team[16]) {
    assert (self && team);
    s_team (self, team, true)->changes++;
}

uint64_t bk_minutes_changes (bk_minutes_t *self, const uint8_t team[16]) {
    assert (self && team);
    s_team_t *ring = s_team (self, team, false);
    return ring ? ring->changes : 0;
}

void bk_minutes_write (bk_minutes_t *self, const uint8_t team[16], int64_t now, aq_writer_t *w) {
    assert (self && team && w);
    static const char *const names[BK_MINUTE_KINDS] = {"created", "completed", "failed"};
    s_team_t *ring = s_team (self, team, false);
    int64_t last = now / S_MINUTE_MS;
    aq_write_array (w, BK_MINUTES);
    for (int64_t minute = last - BK_MINUTES + 1; minute <= last; minute++) {
        int slot = (int) (minute % BK_MINUTES);
        bool kept = ring && ring->minute[slot] == minute;
        aq_write_map (w, 1 + BK_MINUTE_KINDS);
        aq_write_kv_int (w, "at", minute * S_MINUTE_MS);
        for (int kind = 0; kind < BK_MINUTE_KINDS; kind++)
            aq_write_kv_int (w, names[kind], kept ? ring->count[slot][kind] : 0);
    }
}

//  --------------------------------------------------------------------------
//  Selftest

#include "aq_json.h"

static char *s_dump (bk_minutes_t *self, const uint8_t team[16], int64_t now) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_minutes_write (self, team, now, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (data && aq_msg_parse (data, size, &node) == 0);
    char *text = aq_json_dumps (&node);
    aq_writer_release (&w);
    return text;
}

void bk_minutes_test (bool verbose) {
    if (verbose)
        printf (" * bk_minutes: ");
    bk_minutes_t *self = bk_minutes_new ();
    uint8_t a[16] = {1}, b[16] = {2};
    int64_t t0 = 1700000000000LL / S_MINUTE_MS * S_MINUTE_MS; //  a minute's start
    //  Nothing yet: 60 zero minutes ending with the current one
    char *text = s_dump (self, a, t0 + 5);
    assert (strncmp (text, "[{\"at\":", 7) == 0);
    assert (!strstr (text, "\"created\":1"));
    char last[128];
    snprintf (last, sizeof last, "{\"at\":%lld,\"created\":0,\"completed\":0,\"failed\":0}]",
              (long long) t0);
    assert (strlen (text) > strlen (last) &&
            strcmp (text + strlen (text) - strlen (last), last) == 0);
    free (text);

    bk_minutes_add (self, a, BK_MINUTE_CREATED, t0);
    bk_minutes_add (self, a, BK_MINUTE_CREATED, t0 + 59999);
    bk_minutes_add (self, a, BK_MINUTE_FAILED, t0 + 60000);
    bk_minutes_add (self, b, BK_MINUTE_COMPLETED, t0);
    text = s_dump (self, a, t0 + 60000);
    snprintf (last, sizeof last,
              "{\"at\":%lld,\"created\":2,\"completed\":0,\"failed\":0},"
              "{\"at\":%lld,\"created\":0,\"completed\":0,\"failed\":1}]",
              (long long) t0, (long long) (t0 + 60000));
    assert (strcmp (text + strlen (text) - strlen (last), last) == 0);
    free (text);
    text = s_dump (self, b, t0); //  teams apart
    assert (strstr (text, "\"completed\":1") && !strstr (text, "\"created\":2"));
    free (text);

    //  An hour on, the old minutes are gone, and a reused slot starts at 0
    text = s_dump (self, a, t0 + 60 * S_MINUTE_MS);
    assert (!strstr (text, "\"created\":2") && strstr (text, "\"failed\":1"));
    free (text);
    bk_minutes_add (self, a, BK_MINUTE_COMPLETED, t0 + 60 * S_MINUTE_MS);
    text = s_dump (self, a, t0 + 60 * S_MINUTE_MS);
    assert (!strstr (text, "\"created\":2") && strstr (text, "\"completed\":1"));
    free (text);

    //  Status changes, by team
    assert (bk_minutes_changes (self, a) == 0 && bk_minutes_changes (self, (uint8_t[16]){7}) == 0);
    bk_minutes_touch (self, a);
    bk_minutes_touch (self, a);
    bk_minutes_touch (self, b);
    assert (bk_minutes_changes (self, a) == 2 && bk_minutes_changes (self, b) == 1);

    //  Many teams
    for (int i = 0; i < 40; i++) {
        uint8_t t[16] = {0, (uint8_t) i, 9};
        bk_minutes_add (self, t, BK_MINUTE_CREATED, t0);
    }
    text = s_dump (self, b, t0);
    assert (strstr (text, "\"completed\":1"));
    free (text);
    bk_minutes_destroy (&self);
    bk_minutes_destroy (&self);
    if (verbose)
        printf ("OK\n");
}
