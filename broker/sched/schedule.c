/*  schedule.c - scheduled tasks' schedules: validation, next fire time, preview

    Dispatches on the schedule kind to cron.c, rrule.c and aq_time; zone.c
    resolves local times. See schedule.h for the rules.
*/
#include "schedule.h"

#include "aq_time.h"
#include "cron.h"
#include "rrule.h"
#include "zone.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *s_kinds[BK_SCHEDULE_KINDS] = {"cron", "rrule", "once", "event"};

//  A schedule, parsed
typedef struct {
    int kind;              //  bk_schedule_kind_t
    const bk_zone_t *zone; //  its time zone
    bk_cron_t cron;        //  BK_SCHEDULE_CRON: the expression
    bk_rrule_t *rrule;     //  BK_SCHEDULE_RRULE: the rule (owned)
    int64_t once_ms;       //  BK_SCHEDULE_ONCE: the instant
} s_parsed_t;

static int64_t s_floordiv (int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

//  An ISO 8601 date-time: with Z or an offset, that instant; without, a
//  local time in zone. Returns 0 and sets *ms, or -1.
static int s_parse_once (const char *expr, const bk_zone_t *zone, int64_t *ms) {
    size_t len = strlen (expr);
    if (len < 16 || len > 40 || !strchr ("Tt ", expr[10]))
        return -1; //  a date alone is not a date-time
    if (strpbrk (expr + 11, "Zz+-"))
        return aq_time_parse (expr, ms);
    char buf[48];
    snprintf (buf, sizeof buf, "%sZ", expr);
    int64_t civil_ms;
    if (aq_time_parse (buf, &civil_ms))
        return -1;
    int64_t civil = s_floordiv (civil_ms, 1000);
    int64_t utc = bk_zone_civil_to_utc (zone, civil);
    //  In a spring-forward gap the fraction goes too: the gap's end, exactly
    *ms = utc * 1000 + (bk_zone_utc_to_civil (zone, utc) == civil ? civil_ms - civil * 1000 : 0);
    return 0;
}

const char *bk_schedule_kind_name (int kind) {
    return kind >= 0 && kind < BK_SCHEDULE_KINDS ? s_kinds[kind] : NULL;
}

int bk_schedule_kind_parse (const char *name, size_t n) {
    for (int i = 0; name && i < BK_SCHEDULE_KINDS; i++)
        if (strlen (s_kinds[i]) == n && memcmp (name, s_kinds[i], n) == 0)
            return i;
    return -1;
}

//  Parses a schedule; returns 0, or -1 with the API error in errbuf
static int s_parse (int kind, const char *expr, const char *timezone, int64_t anchor_ms,
                    s_parsed_t *self, char *errbuf) {
    memset (self, 0, sizeof *self);
    self->kind = bk_schedule_kind_name (kind) ? kind : -1;
    if (self->kind < 0) {
        snprintf (errbuf, BK_SCHEDULE_ERRLEN, BK_SCHEDULE_KINDS_ERROR);
        return -1;
    }
    bool blank = !expr || expr[strspn (expr, " \t\r\n")] == '\0';
    if (self->kind != BK_SCHEDULE_EVENT && blank) {
        snprintf (errbuf, BK_SCHEDULE_ERRLEN, "schedule_expr is required");
        return -1;
    }
    self->zone = bk_zone_load (timezone ? timezone : "UTC");
    if (!self->zone) {
        snprintf (errbuf, BK_SCHEDULE_ERRLEN, "timezone must be a valid IANA time zone");
        return -1;
    }
    char why[BK_CRON_ERRLEN > BK_RRULE_ERRLEN ? BK_CRON_ERRLEN : BK_RRULE_ERRLEN];
    switch (self->kind) {
    case BK_SCHEDULE_CRON:
        if (bk_cron_parse (expr, &self->cron, why)) {
            snprintf (errbuf, BK_SCHEDULE_ERRLEN, "Invalid cron expression: %s", why);
            return -1;
        }
        break;
    case BK_SCHEDULE_RRULE:
        if (bk_rrule_parse (expr, self->zone, s_floordiv (anchor_ms, 1000), &self->rrule, why)) {
            snprintf (errbuf, BK_SCHEDULE_ERRLEN, "Invalid RRULE: %s", why);
            return -1;
        }
        break;
    case BK_SCHEDULE_ONCE:
        if (s_parse_once (expr, self->zone, &self->once_ms)) {
            snprintf (errbuf, BK_SCHEDULE_ERRLEN, "schedule_expr must be an ISO 8601 date-time");
            return -1;
        }
        break;
    default:
        if (expr && (!*expr || strlen (expr) > BK_SCHEDULE_EVENT_MAX)) {
            snprintf (errbuf, BK_SCHEDULE_ERRLEN,
                      "schedule_expr must be an event name of 1 to %d characters",
                      BK_SCHEDULE_EVENT_MAX);
            return -1;
        }
    }
    return 0;
}

static void s_release (s_parsed_t *self) {
    if (self->rrule)
        bk_rrule_destroy (&self->rrule);
}

//  -1 none, BK_SCHEDULE_OVER when *work ran out, else the next fire time
static int64_t s_next (s_parsed_t *self, int64_t after_ms, int64_t *work) {
    //  cron and rrule times are whole seconds: after a whole second is
    //  after the ms in it
    int64_t after_s = s_floordiv (after_ms, 1000), next = -1;
    switch (self->kind) {
    case BK_SCHEDULE_CRON: //  bounded by itself: at most ten years of days looked at
        next = bk_cron_next (&self->cron, self->zone, after_s);
        break;
    case BK_SCHEDULE_RRULE:
        next = bk_rrule_next (self->rrule, after_s, work);
        if (next == BK_RRULE_OVER)
            return BK_SCHEDULE_OVER;
        break;
    case BK_SCHEDULE_ONCE:
        return self->once_ms > after_ms ? self->once_ms : -1;
    default:
        return -1;
    }
    return next < 0 ? -1 : next * 1000;
}

//  A stored cursor into a parsed rrule
static void s_resume (s_parsed_t *self, const bk_schedule_cursor_t *cursor) {
    if (self->kind == BK_SCHEDULE_RRULE && cursor && cursor->set)
        bk_rrule_resume (self->rrule, &cursor->at);
}

static void s_keep (const s_parsed_t *self, bk_schedule_cursor_t *cursor) {
    if (!cursor)
        return;
    cursor->set = self->kind == BK_SCHEDULE_RRULE;
    if (cursor->set)
        bk_rrule_cursor (self->rrule, &cursor->at);
}

int bk_schedule_validate (const char *kind, const char *expr, const char *timezone, char *errbuf) {
    assert (errbuf);
    s_parsed_t parsed;
    int code = bk_schedule_kind_parse (kind, kind ? strlen (kind) : 0);
    int rc = s_parse (code, expr, timezone, aq_time_now_ms (), &parsed, errbuf);
    s_release (&parsed);
    return rc;
}

int64_t bk_schedule_next (int kind, const char *expr, const char *timezone, int64_t anchor_utc_ms,
                          int64_t after_utc_ms, bk_schedule_cursor_t *cursor, int64_t *work) {
    assert (work);
    s_parsed_t parsed;
    char errbuf[BK_SCHEDULE_ERRLEN];
    int64_t next = -1;
    if (s_parse (kind, expr, timezone, anchor_utc_ms, &parsed, errbuf) == 0) {
        s_resume (&parsed, cursor);
        next = s_next (&parsed, after_utc_ms, work);
        s_keep (&parsed, cursor);
    }
    s_release (&parsed);
    return next;
}

int bk_schedule_preview (int kind, const char *expr, const char *timezone, int64_t anchor_utc_ms,
                         int64_t after_utc_ms, int count, const bk_schedule_cursor_t *cursor,
                         int64_t *work, int64_t *times, bool *truncated, char *errbuf) {
    assert (work && truncated && errbuf);
    *truncated = false;
    s_parsed_t parsed;
    int found = -1;
    if (s_parse (kind, expr, timezone, anchor_utc_ms, &parsed, errbuf) == 0) {
        s_resume (&parsed, cursor);
        found = 0;
        if (count > BK_SCHEDULE_PREVIEW_MAX)
            count = BK_SCHEDULE_PREVIEW_MAX;
        int64_t at = after_utc_ms;
        while (found < count && (at = s_next (&parsed, at, work)) >= 0)
            times[found++] = at;
        if (at == BK_SCHEDULE_OVER && found == 0) {
            snprintf (errbuf, BK_SCHEDULE_ERRLEN, BK_SCHEDULE_OVER_ERROR);
            found = -1;
        } else if (at == BK_SCHEDULE_OVER)
            *truncated = true;
    }
    s_release (&parsed);
    return found;
}

//  --------------------------------------------------------------------------
//  Selftest

static int s_kind (const char *name) {
    return bk_schedule_kind_parse (name, name ? strlen (name) : 0);
}

//  bk_schedule_next and bk_schedule_preview with a full budget, no cursor
static int64_t s_next_ms (const char *kind, const char *expr, const char *tz, int64_t anchor,
                          int64_t after) {
    int64_t work = BK_SCHEDULE_WORK;
    int64_t next = bk_schedule_next (s_kind (kind), expr, tz, anchor, after, NULL, &work);
    assert (next != BK_SCHEDULE_OVER);
    return next;
}

//  The ISO times of a preview, each followed by a space, into text (NULL:
//  an invalid schedule); returns text.
static char *s_format (const int64_t *times, int found, char *text) {
    if (found < 0)
        return NULL;
    text[0] = '\0';
    for (int i = 0; i < found; i++) {
        char iso[32];
        strcat (strcat (text, aq_time_format (times[i], iso)), " ");
    }
    return text;
}

static char *s_preview (const char *kind, const char *expr, const char *tz, int64_t anchor,
                        int64_t after, int count, char text[512]) {
    int64_t work = BK_SCHEDULE_WORK + BK_SCHEDULE_PREVIEW_ITEM * count, times[5];
    assert (count <= 5);
    bool truncated;
    char errbuf[BK_SCHEDULE_ERRLEN];
    int found = bk_schedule_preview (s_kind (kind), expr, tz, anchor, after, count, NULL, &work,
                                     times, &truncated, errbuf);
    assert (!truncated);
    return s_format (times, found, text);
}

static void s_expect_invalid (const char *kind, const char *expr, const char *tz,
                              const char *message) {
    char err[BK_SCHEDULE_ERRLEN] = "", text[512];
    int rc = bk_schedule_validate (kind, expr, tz, err);
    if (rc != -1 || strcmp (err, message) != 0) {
        fprintf (stderr, "schedule %s '%s' in %s: rc %d, error '%s', expected '%s'\n",
                 kind ? kind : "(null)", expr ? expr : "(null)", tz ? tz : "(null)", rc, err,
                 message);
        assert (false);
    }
    assert (s_next_ms (kind, expr, tz, 0, 0) == -1);
    assert (s_preview (kind, expr, tz, 0, 0, 5, text) == NULL);
}

static int64_t s_ms (const char *iso) {
    int64_t ms;
    int rc = aq_time_parse (iso, &ms);
    assert (rc == 0);
    return ms;
}

//  Asserts the preview of a schedule after base is exactly expect (ISO
//  times, each followed by a space)
static void s_expect_preview (const char *kind, const char *expr, const char *tz,
                              const char *anchor, const char *base, int count, const char *expect) {
    char text[512];
    char *got = s_preview (kind, expr, tz, s_ms (anchor), s_ms (base), count, text);
    if (!got || strcmp (got, expect) != 0) {
        fprintf (stderr, "preview %s '%s' in %s after %s: %s, expected %s\n", kind, expr, tz, base,
                 got ? got : "NULL", expect);
        assert (false);
    }
}

void bk_schedule_test (bool verbose) {
    char err[BK_SCHEDULE_ERRLEN];

    //  Valid schedules of every kind
    assert (bk_schedule_validate ("cron", "*/15 9-17 * * MON-FRI", "Europe/Chisinau", err) == 0);
    assert (bk_schedule_validate ("cron", "@daily", NULL, err) == 0);
    assert (bk_schedule_validate ("rrule", "FREQ=SECONDLY;INTERVAL=2", "UTC", err) == 0);
    assert (bk_schedule_validate ("rrule",
                                  "DTSTART;TZID=America/New_York:20240101T090000\n"
                                  "RRULE:FREQ=WEEKLY;BYDAY=MO",
                                  "UTC", err) == 0);
    assert (bk_schedule_validate ("once", "2030-01-15T10:30:00Z", NULL, err) == 0);
    assert (bk_schedule_validate ("once", "2030-01-15T10:30:00", "Australia/Lord_Howe", err) == 0);
    assert (bk_schedule_validate ("once", "2030-01-15T10:30:00.250+02:00", "UTC", err) == 0);
    assert (bk_schedule_validate ("event", "invoice.paid", NULL, err) == 0);
    assert (bk_schedule_validate ("event", NULL, NULL, err) == 0);

    //  Errors in the API's words
    s_expect_invalid (NULL, "* * * * *", NULL,
                      "schedule_kind must be one of: cron, rrule, once, event");
    s_expect_invalid ("weekly", "* * * * *", NULL,
                      "schedule_kind must be one of: cron, rrule, once, event");
    s_expect_invalid ("CRON", "* * * * *", NULL,
                      "schedule_kind must be one of: cron, rrule, once, event");
    s_expect_invalid ("cron", NULL, NULL, "schedule_expr is required");
    s_expect_invalid ("cron", "  ", NULL, "schedule_expr is required");
    s_expect_invalid ("rrule", "", NULL, "schedule_expr is required");
    s_expect_invalid ("once", NULL, NULL, "schedule_expr is required");
    s_expect_invalid ("cron", "* * * * *", "Mars/Olympus_Mons",
                      "timezone must be a valid IANA time zone");
    s_expect_invalid ("cron", "* * * * *", "", "timezone must be a valid IANA time zone");
    s_expect_invalid ("cron", "* * * * *", "../../etc/passwd",
                      "timezone must be a valid IANA time zone");
    s_expect_invalid ("event", "x", "Europe/Nowhere", "timezone must be a valid IANA time zone");
    s_expect_invalid ("cron", "61 * * * *", NULL,
                      "Invalid cron expression: minute: 61 is out of range 0-59");
    s_expect_invalid ("cron", "* * * *", NULL,
                      "Invalid cron expression: expected 5 fields (minute hour day-of-month month "
                      "day-of-week), got 4");
    s_expect_invalid ("rrule", "FREQ=DAILY;BYHOUR=25", NULL,
                      "Invalid RRULE: invalid BYHOUR value '25'");
    s_expect_invalid ("rrule", "DTSTART;TZID=Mars/Base:20240101T090000\nRRULE:FREQ=DAILY", NULL,
                      "Invalid RRULE: unknown time zone 'Mars/Base' in DTSTART");
    s_expect_invalid ("once", "2030-01-15", NULL, "schedule_expr must be an ISO 8601 date-time");
    s_expect_invalid ("once", "tomorrow at noon", NULL,
                      "schedule_expr must be an ISO 8601 date-time");
    s_expect_invalid ("once", "2030-02-30T10:00:00Z", NULL,
                      "schedule_expr must be an ISO 8601 date-time");
    s_expect_invalid ("once", "2030-01-15T25:00:00", NULL,
                      "schedule_expr must be an ISO 8601 date-time");
    s_expect_invalid ("event", "", NULL,
                      "schedule_expr must be an event name of 1 to 200 characters");

    //  Next fire times in ms, strictly after `after`
    int64_t anchor = s_ms ("2024-01-01T00:00:00.400Z");
    assert (s_next_ms ("cron", "*/15 * * * *", NULL, anchor, s_ms ("2024-01-01T00:14:59.999Z")) ==
            s_ms ("2024-01-01T00:15:00Z"));
    assert (s_next_ms ("cron", "*/15 * * * *", NULL, anchor, s_ms ("2024-01-01T00:15:00Z")) ==
            s_ms ("2024-01-01T00:30:00Z"));
    assert (s_next_ms ("cron", "*/15 * * * *", NULL, anchor, s_ms ("2024-01-01T00:15:00.001Z")) ==
            s_ms ("2024-01-01T00:30:00Z"));
    assert (s_next_ms ("cron", "0 0 30 2 *", NULL, anchor, anchor) == -1);
    //  an RRULE without DTSTART starts at the anchor, in whole seconds
    assert (s_next_ms ("rrule", "FREQ=SECONDLY;INTERVAL=2", NULL, anchor, anchor) ==
            s_ms ("2024-01-01T00:00:02Z"));
    assert (s_next_ms ("rrule", "FREQ=SECONDLY;INTERVAL=2", NULL, anchor,
                       s_ms ("2024-01-01T00:00:01.999Z")) == s_ms ("2024-01-01T00:00:02Z"));
    assert (s_next_ms ("rrule", "FREQ=SECONDLY;INTERVAL=2", NULL, anchor,
                       s_ms ("2024-01-01T00:00:02Z")) == s_ms ("2024-01-01T00:00:04Z"));
    assert (s_next_ms ("rrule", "FREQ=DAILY;COUNT=2", NULL, anchor,
                       s_ms ("2024-01-02T00:00:00Z")) == -1);
    assert (s_next_ms ("rrule", "FREQ=DAILY;COUNT=2", NULL, anchor,
                       s_ms ("2024-01-01T12:00:00Z")) == s_ms ("2024-01-02T00:00:00Z"));
    //  once: its instant while in the future, ms kept
    int64_t once = s_ms ("2024-06-01T10:00:00.250Z");
    assert (s_next_ms ("once", "2024-06-01T10:00:00.250Z", NULL, anchor, once - 1) == once);
    assert (s_next_ms ("once", "2024-06-01T10:00:00.250Z", NULL, anchor, once) == -1);
    assert (s_next_ms ("once", "2024-06-01T13:00:00.250+03:00", "America/New_York", anchor,
                       anchor) == once);
    //  without an offset it is local time in the zone, DST rules included
    assert (s_next_ms ("once", "2024-06-01T13:00:00.250", "Europe/Chisinau", anchor, anchor) ==
            once);
    assert (s_next_ms ("once", "2024-03-31T02:30:00.500", "Europe/Chisinau", anchor,
                       anchor) == s_ms ("2024-03-31T00:00:00Z")); //  gap: its end
    assert (s_next_ms ("once", "2024-11-03 01:30", "America/New_York", anchor, anchor) ==
            s_ms ("2024-11-03T05:30:00Z")); //  overlap: the first (EDT)
    assert (s_next_ms ("event", "invoice.paid", NULL, anchor, anchor) == -1);

    //  Previews: the DST rules in the three test zones, as ISO strings
    s_expect_preview ("cron", "30 2 * * *", "Europe/Chisinau", "2024-01-01T00:00:00Z",
                      "2024-03-29T12:00:00Z", 4,
                      "2024-03-30T00:30:00.000Z 2024-03-31T00:00:00.000Z "
                      "2024-03-31T23:30:00.000Z 2024-04-01T23:30:00.000Z ");
    s_expect_preview ("cron", "30 1 * * *", "America/New_York", "2024-01-01T00:00:00Z",
                      "2024-11-02T12:00:00Z", 2,
                      "2024-11-03T05:30:00.000Z 2024-11-04T06:30:00.000Z ");
    s_expect_preview ("rrule", "FREQ=DAILY;BYHOUR=2;BYMINUTE=15;BYSECOND=0", "Australia/Lord_Howe",
                      "2024-10-01T00:00:00Z", "2024-10-04T00:00:00Z", 3,
                      "2024-10-04T15:45:00.000Z 2024-10-05T15:30:00.000Z "
                      "2024-10-06T15:15:00.000Z ");
    s_expect_preview ("rrule", "FREQ=DAILY;COUNT=2", "UTC", "2024-01-01T00:00:00Z",
                      "2023-12-01T00:00:00Z", 5,
                      "2024-01-01T00:00:00.000Z 2024-01-02T00:00:00.000Z ");
    s_expect_preview ("once", "2024-06-01T10:00:00Z", NULL, "2024-01-01T00:00:00Z",
                      "2024-01-01T00:00:00Z", 3, "2024-06-01T10:00:00.000Z ");
    s_expect_preview ("once", "2024-06-01T10:00:00Z", NULL, "2024-01-01T00:00:00Z",
                      "2024-07-01T00:00:00Z", 3, "");
    s_expect_preview ("event", "invoice.paid", NULL, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z",
                      3, "");
    s_expect_preview ("cron", "@hourly", NULL, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", 0,
                      "");
    //  A cursor: a COUNT rule is counted once, by the first search; then a
    //  search from its cursor (a fire, a preview before it) costs little
    const char *count = "DTSTART:20240101T000000Z RRULE:FREQ=MINUTELY;COUNT=1000000;BYSECOND=0";
    bk_schedule_cursor_t cursor = {0};
    int64_t after = s_ms ("2024-01-02T00:00:30Z"), work = BK_SCHEDULE_WORK, times[1000];
    assert (bk_schedule_next (BK_SCHEDULE_RRULE, count, NULL, 0, after, &cursor, &work) ==
            s_ms ("2024-01-02T00:01:00Z"));
    assert (cursor.set && BK_SCHEDULE_WORK - work > 30000); //  1440 steps
    bool truncated;
    work = 2000;
    assert (bk_schedule_preview (BK_SCHEDULE_RRULE, count, NULL, 0, after + 10000, 3, &cursor,
                                 &work, times, &truncated, err) == 3);
    assert (!truncated && times[0] == s_ms ("2024-01-02T00:01:00Z"));
    work = 2000; //  the same without the cursor counts from DTSTART, and runs out
    assert (bk_schedule_preview (BK_SCHEDULE_RRULE, count, NULL, 0, after + 10000, 3, NULL, &work,
                                 times, &truncated, err) == -1);
    assert (strcmp (err, BK_SCHEDULE_OVER_ERROR) == 0);
    work = 2000; //  the next fire goes on from the cursor too
    assert (bk_schedule_next (BK_SCHEDULE_RRULE, count, NULL, 0, s_ms ("2024-01-02T00:01:00Z"),
                              &cursor, &work) == s_ms ("2024-01-02T00:02:00Z"));
    //  a preview that runs out after some fire times lists them, truncated
    work = BK_SCHEDULE_WORK;
    int found = bk_schedule_preview (BK_SCHEDULE_RRULE, "FREQ=SECONDLY;BYSECOND=0,30", NULL, 0, 0,
                                     1000, NULL, &work, times, &truncated, err);
    assert (found > 0 && found < 1000 && truncated);
    //  cron and once keep no cursor
    cursor = (bk_schedule_cursor_t){true, {1, 2, 3}};
    work = 10;
    assert (bk_schedule_next (BK_SCHEDULE_CRON, "@hourly", NULL, 0, 0, &cursor, &work) == 3600000);
    assert (!cursor.set);

    work = BK_SCHEDULE_WORK;
    assert (bk_schedule_preview (BK_SCHEDULE_CRON, "* * * * *", NULL, 0, 0, 5000, NULL, &work,
                                 times, &truncated, err) == BK_SCHEDULE_PREVIEW_MAX);
    assert (!truncated && times[999] == 1000 * 60000);
    assert (strcmp (bk_schedule_kind_name (BK_SCHEDULE_ONCE), "once") == 0);
    assert (bk_schedule_kind_parse ("event", 5) == BK_SCHEDULE_EVENT);
    assert (bk_schedule_kind_parse ("even", 4) == -1 && !bk_schedule_kind_name (BK_SCHEDULE_KINDS));
    if (verbose)
        printf ("bk_schedule: ok\n");
}
