/*  rrule_test.c - the RRULE selftest: fixed cases, and every answer of the
    chunked search checked against a plain walk of libical from DTSTART
*/
#include "rrule.h"
#include "rrule_ical.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Selftest

//  bk_rrule_next with all the work it needs
static int64_t s_next (bk_rrule_t *rule, int64_t after) {
    int64_t work = INT64_MAX;
    int64_t next = bk_rrule_next (rule, after, &work);
    assert (next != BK_RRULE_OVER);
    return next;
}

static int64_t s_utc (const char *iso) {
    int y, mo, d, h, mi, s = 0;
    int n = sscanf (iso, "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &s);
    assert (n >= 5);
    return bk_zone_civil (y, mo, d, h, mi, s);
}

//  Asserts the occurrences of text in zone after base (ISO UTC) are expect
static void s_expect (const char *text, const char *zone_name, const char *anchor, const char *base,
                      const char *expect[]) {
    bk_rrule_t *rule;
    char err[BK_RRULE_ERRLEN];
    if (bk_rrule_parse (text, bk_zone_load (zone_name), anchor ? s_utc (anchor) : 0, &rule, err)) {
        fprintf (stderr, "rrule '%s': %s\n", text, err);
        assert (false);
    }
    int64_t t = s_utc (base);
    for (int i = 0; expect[i]; i++) {
        t = s_next (rule, t);
        int64_t want = strcmp (expect[i], "never") == 0 ? -1 : s_utc (expect[i]);
        if (t != want) {
            fprintf (stderr,
                     "rrule '%s' in %s after %s: #%d is %" PRId64 ", expected %s (%" PRId64 ")\n",
                     text, zone_name, base, i + 1, t, expect[i], want);
            assert (false);
        }
    }
    bk_rrule_destroy (&rule);
    assert (rule == NULL);
}

static void s_expect_error (const char *text, const char *message) {
    bk_rrule_t *rule = NULL;
    char err[BK_RRULE_ERRLEN] = "";
    int rc = bk_rrule_parse (text, NULL, 1704067200, &rule, err);
    if (rc != -1 || rule || !strstr (err, message)) {
        fprintf (stderr, "rrule '%s': rc %d, error '%s', expected '%s'\n", text, rc, err, message);
        assert (false);
    }
}

//  The reference: libical walked from DTSTART with nothing skipped, each
//  local time resolved, equal instants merged. The time-of-day limits of
//  SECONDLY, MINUTELY and HOURLY rules (BYHOUR; BYMINUTE unless HOURLY;
//  BYSECOND if SECONDLY) filter its output, as RFC 5545 says, instead of
//  going to libical. Fills out with up to max instants; returns how many.
static int s_reference (const char *rule_text, const bk_zone_t *zone, int64_t start, int64_t *out,
                        int max) {
    struct icalrecurrencetype r = icalrecurrencetype_from_string (rule_text);
    assert (r.freq != ICAL_NO_RECURRENCE);
    short hours[ICAL_BY_HOUR_SIZE], minutes[ICAL_BY_MINUTE_SIZE], seconds[ICAL_BY_SECOND_SIZE];
    hours[0] = minutes[0] = seconds[0] = ICAL_RECURRENCE_ARRAY_MAX;
    if (r.freq <= ICAL_HOURLY_RECURRENCE) {
        memcpy (hours, r.by_hour, sizeof hours);
        r.by_hour[0] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    if (r.freq <= ICAL_MINUTELY_RECURRENCE) {
        memcpy (minutes, r.by_minute, sizeof minutes);
        r.by_minute[0] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    if (r.freq == ICAL_SECONDLY_RECURRENCE) {
        memcpy (seconds, r.by_second, sizeof seconds);
        r.by_second[0] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    icalrecur_iterator *it = icalrecur_iterator_new (r, s_ical (start));
    assert (it);
    int n = 0;
    for (int guard = 0; n < max && guard < 3000000; guard++) {
        struct icaltimetype t = icalrecur_iterator_next (it);
        if (icaltime_is_null_time (t))
            break;
        bool hour_ok = !s_has (hours), minute_ok = !s_has (minutes), second_ok = !s_has (seconds);
        for (int i = 0; i < ICAL_BY_HOUR_SIZE && hours[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            hour_ok |= hours[i] == t.hour;
        for (int i = 0; i < ICAL_BY_MINUTE_SIZE && minutes[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            minute_ok |= minutes[i] == t.minute;
        for (int i = 0; i < ICAL_BY_SECOND_SIZE && seconds[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            second_ok |= seconds[i] == t.second;
        if (!hour_ok || !minute_ok || !second_ok)
            continue;
        int64_t utc = bk_zone_civil_to_utc (zone, s_civil (t));
        if (n == 0 || utc != out[n - 1])
            out[n++] = utc;
    }
    icalrecur_iterator_free (it);
    return n;
}

//  Compares bk_rrule_next, stepping from before the start and from random
//  points, with the reference; returns the number of instants compared
static int s_differential (const char *rule_text, const char *zone_name, const char *dtstart) {
    const bk_zone_t *zone = bk_zone_load (zone_name);
    char text[512];
    snprintf (text, sizeof text, "DTSTART:%s\nRRULE:%s", dtstart, rule_text);
    bk_rrule_t *rule;
    char err[BK_RRULE_ERRLEN];
    if (bk_rrule_parse (text, zone, 0, &rule, err)) {
        fprintf (stderr, "rrule '%s': %s\n", text, err);
        assert (false);
    }
    enum { MAX = 120 };
    int64_t ref[MAX];
    int n = s_reference (rule_text, zone, bk_rrule_start (rule), ref, MAX);
    assert (n > 0);
    int compared = 0;
    //  Step through every instant from before the start
    int64_t t = ref[0] - 1;
    for (int i = 0; i < n; i++) {
        t = s_next (rule, t);
        if (t != ref[i]) {
            fprintf (stderr, "rrule '%s' in %s: #%d is %" PRId64 ", reference %" PRId64 "\n", text,
                     zone_name, i + 1, t, ref[i]);
            assert (false);
        }
        compared++;
    }
    if (n < MAX) {
        assert (s_next (rule, t) == -1); //  a COUNT rule ends where libical's does
        compared++;
    }
    //  A cursor carried into a fresh parse goes on from where it was
    bk_rrule_t *walker, *fresh;
    int rc = bk_rrule_parse (text, zone, 0, &walker, err);
    assert (rc == 0);
    t = ref[0] - 1;
    for (int i = 0; i + 1 < n; i++) {
        t = s_next (walker, t);
        if (i % 7 != 3)
            continue;
        bk_rrule_cursor_t cursor;
        bk_rrule_cursor (walker, &cursor);
        rc = bk_rrule_parse (text, zone, 0, &fresh, err);
        assert (rc == 0);
        bk_rrule_resume (fresh, &cursor);
        int64_t got = s_next (fresh, t);
        if (got != ref[i + 1]) {
            fprintf (stderr,
                     "rrule '%s' in %s resumed at #%d: %" PRId64 ", reference %" PRId64 "\n", text,
                     zone_name, i + 1, got, ref[i + 1]);
            assert (false);
        }
        bk_rrule_destroy (&fresh);
        compared++;
    }
    bk_rrule_destroy (&walker);
    //  From points between instants, and on them
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t) n;
    for (int i = 0; i + 1 < n && i < 30; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        int j = (int) (seed % (uint64_t) (n - 1));
        int64_t gap = ref[j + 1] - ref[j];
        int64_t from = ref[j] + (int64_t) (seed >> 20) % (gap > 0 ? gap : 1);
        int64_t got = s_next (rule, from);
        if (got != ref[j + 1]) {
            fprintf (stderr,
                     "rrule '%s' in %s after %" PRId64 ": %" PRId64 ", reference %" PRId64 "\n",
                     text, zone_name, from, got, ref[j + 1]);
            assert (false);
        }
        compared++;
    }
    bk_rrule_destroy (&rule);
    return compared;
}

void bk_rrule_test (bool verbose) {
    //  Syntax: bare, RRULE:, DTSTART lines in every form
    s_expect ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0", "UTC", "2024-01-01T10:37:12",
              "2024-01-01T10:37:12",
              (const char *[]){"2024-01-02T09:00:00", "2024-01-03T09:00:00", NULL});
    s_expect ("RRULE:FREQ=DAILY", "UTC", "2024-01-01T10:37:12", "2024-01-01T10:37:12",
              (const char *[]){"2024-01-02T10:37:12", "2024-01-03T10:37:12", NULL});
    //  the anchor's minute and second fill the parts a rule leaves out
    s_expect ("rrule:freq=daily;byhour=9", "UTC", "2024-01-01T10:37:12", "2024-01-01T00:00",
              (const char *[]){"2024-01-02T09:37:12", NULL});
    s_expect ("DTSTART:20240101T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE", "UTC", NULL,
              "2024-01-01T00:00",
              (const char *[]){"2024-01-01T09:00", "2024-01-03T09:00", "2024-01-08T09:00", NULL});
    s_expect ("DTSTART:20240101T090000\r\nRRULE:FREQ=DAILY", "Europe/Chisinau", NULL,
              "2024-01-01T00:00", (const char *[]){"2024-01-01T07:00", NULL});
    s_expect ("DTSTART;TZID=America/New_York:20240101T090000 RRULE:FREQ=DAILY", "Europe/Chisinau",
              NULL, "2024-01-01T00:00", (const char *[]){"2024-01-01T14:00", NULL});
    s_expect ("DTSTART;TZID=\"America/New_York\":20240101T090000 RRULE:FREQ=DAILY", "UTC", NULL,
              "2024-01-01T00:00", (const char *[]){"2024-01-01T14:00", NULL});
    s_expect ("DTSTART:20240101T090000Z\nRRULE:FREQ=DAILY", "America/New_York", NULL,
              "2024-03-09T12:00", //  a UTC start recurs in UTC, across New York's DST
              (const char *[]){"2024-03-10T09:00", "2024-03-11T09:00", NULL});
    s_expect ("DTSTART;VALUE=DATE:20240101\nRRULE:FREQ=MONTHLY", "Europe/Chisinau", NULL,
              "2024-01-15T00:00", (const char *[]){"2024-01-31T22:00", "2024-02-29T22:00", NULL});

    //  Each FREQ, INTERVAL, BY parts, COUNT and UNTIL
    s_expect ("FREQ=SECONDLY;INTERVAL=2", "UTC", "2024-01-01T00:00:01", "2024-01-01T00:00:01",
              (const char *[]){"2024-01-01T00:00:03", "2024-01-01T00:00:05", NULL});
    //  far from the anchor: found by jumping, not by walking
    s_expect ("FREQ=SECONDLY;INTERVAL=2", "UTC", "2024-01-01T00:00:01", "2030-06-01T12:00:00",
              (const char *[]){"2030-06-01T12:00:01", "2030-06-01T12:00:03", NULL});
    s_expect ("FREQ=SECONDLY;INTERVAL=7", "UTC", "2024-01-01T00:00:00", "2024-01-01T00:01:05",
              (const char *[]){"2024-01-01T00:01:10", "2024-01-01T00:01:17", NULL});
    s_expect ("FREQ=SECONDLY;INTERVAL=7", "UTC", "2024-01-01T00:00:00", "2024-01-01T01:00:00",
              (const char *[]){"2024-01-01T01:00:05", NULL}); //  3605 = 7 * 515
    s_expect ("FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10", "UTC", "2024-01-01T00:00",
              "2024-01-01T10:40", (const char *[]){"2024-01-01T10:45", "2024-01-02T09:00", NULL});
    //  BYHOUR limits the minute grid from DTSTART (libical alone says 09:00)
    s_expect ("FREQ=MINUTELY;INTERVAL=7;BYHOUR=9", "UTC", "2024-01-01T00:00", "2024-01-01T00:00",
              (const char *[]){"2024-01-01T09:06", "2024-01-01T09:13", NULL});
    //  a limit of FREQ's own unit filters the grid (libical alone ignores INTERVAL)
    s_expect ("FREQ=SECONDLY;INTERVAL=7;BYSECOND=0,1,2,3,4,5,6", "UTC", "2024-01-01T00:00",
              "2024-01-01T00:00",
              (const char *[]){"2024-01-01T00:01:03", "2024-01-01T00:02:06", "2024-01-01T00:03:02",
                               NULL});
    s_expect ("FREQ=MINUTELY;INTERVAL=7;BYMINUTE=0,1,2", "UTC", "2024-01-01T00:00",
              "2024-01-01T00:00",
              (const char *[]){"2024-01-01T03:02", "2024-01-01T05:01", "2024-01-01T07:00", NULL});
    s_expect ("FREQ=HOURLY;INTERVAL=5;BYHOUR=1,2,3", "UTC", "2024-01-01T00:00", "2024-01-01T00:00",
              (const char *[]){"2024-01-02T01:00", "2024-01-03T02:00", "2024-01-04T03:00", NULL});
    //  libical alone, from 02:15, says 02:15, 02:45, 02:15 (sic)
    s_expect ("FREQ=HOURLY;BYHOUR=1,2,3;BYMINUTE=15,45", "UTC", "2024-03-10T02:15",
              "2024-03-10T02:00",
              (const char *[]){"2024-03-10T02:15", "2024-03-10T02:45", "2024-03-10T03:15",
                               "2024-03-10T03:45", "2024-03-11T01:15", NULL});
    s_expect ("FREQ=SECONDLY;INTERVAL=7;BYMINUTE=1;BYHOUR=0", "UTC", "2024-01-01T00:00",
              "2024-01-01T00:00",
              (const char *[]){"2024-01-01T00:01:03", "2024-01-01T00:01:10", NULL});
    s_expect ("FREQ=HOURLY;INTERVAL=5", "UTC", "2024-01-01T00:00", "2024-01-01T21:00",
              (const char *[]){"2024-01-02T01:00", "2024-01-02T06:00", NULL});
    s_expect ("FREQ=HOURLY;BYMINUTE=15,45;BYDAY=SA", "UTC", "2024-01-01T00:00", "2024-01-01T00:00",
              (const char *[]){"2024-01-06T00:15", "2024-01-06T00:45", "2024-01-06T01:15", NULL});
    s_expect ("FREQ=DAILY;INTERVAL=3;BYMONTH=2", "UTC", "2024-01-01T08:00", "2024-01-01T08:00",
              (const char *[]){"2024-02-03T08:00", "2024-02-06T08:00", NULL});
    s_expect ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=4", "UTC", "2024-01-02T08:00",
              "2023-12-01T00:00",
              (const char *[]){"2024-01-02T08:00", "2024-01-04T08:00", "2024-01-16T08:00",
                               "2024-01-18T08:00", "never", NULL});
    s_expect ("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17;BYMINUTE=0;BYSECOND=0", "UTC", "2024-01-01T00:00",
              "2024-01-01T00:00",
              (const char *[]){"2024-01-26T17:00", "2024-02-23T17:00", "2024-03-29T17:00", NULL});
    s_expect ("FREQ=MONTHLY;BYMONTHDAY=-1", "UTC", "2024-01-01T06:00", "2024-02-01T00:00",
              (const char *[]){"2024-02-29T06:00", "2024-03-31T06:00", NULL});
    s_expect ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "UTC", "2024-01-01T09:00",
              "2024-03-01T00:00", (const char *[]){"2024-03-29T09:00", "2024-04-30T09:00", NULL});
    s_expect ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "UTC", "2024-01-01T00:00", "2024-03-01T00:00",
              (const char *[]){"2028-02-29T00:00", NULL});
    s_expect ("FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "UTC", "2024-01-01T09:00", "2024-01-01T00:00",
              (const char *[]){"2024-05-13T09:00", "2025-05-12T09:00", NULL});
    s_expect ("FREQ=DAILY;COUNT=3", "UTC", "2024-01-01T09:00", "2024-01-01T12:00",
              (const char *[]){"2024-01-02T09:00", "2024-01-03T09:00", "never", NULL});
    s_expect ("FREQ=DAILY;COUNT=3", "UTC", "2024-01-01T09:00", "2024-02-01T00:00",
              (const char *[]){"never", NULL});
    s_expect ("FREQ=DAILY;UNTIL=20240103T090000Z", "UTC", "2024-01-01T09:00", "2024-01-01T09:00",
              (const char *[]){"2024-01-02T09:00", "2024-01-03T09:00", "never", NULL});
    //  a UTC UNTIL is an instant: 14:00Z is 09:00 in New York
    s_expect (
        "DTSTART;TZID=America/New_York:20240101T090000\nRRULE:FREQ=DAILY;UNTIL=20240103T140000Z",
        "UTC", NULL, "2024-01-01T00:00",
        (const char *[]){"2024-01-01T14:00", "2024-01-02T14:00", "2024-01-03T14:00", "never",
                         NULL});
    s_expect (
        "DTSTART;TZID=America/New_York:20240101T090000\nRRULE:FREQ=DAILY;UNTIL=20240103T135959Z",
        "UTC", NULL, "2024-01-01T00:00",
        (const char *[]){"2024-01-01T14:00", "2024-01-02T14:00", "never", NULL});
    //  a DATE UNTIL includes its day; a floating one is local
    s_expect ("FREQ=DAILY;UNTIL=20240103", "Europe/Chisinau", "2024-01-01T07:00",
              "2024-01-01T07:00",
              (const char *[]){"2024-01-02T07:00", "2024-01-03T07:00", "never", NULL});
    s_expect ("FREQ=HOURLY;UNTIL=20240101T113000", "Europe/Chisinau", "2024-01-01T07:00",
              "2024-01-01T08:30", (const char *[]){"2024-01-01T09:00", "never", NULL});
    //  unbounded rules find far-future instants quickly, and never-again rules end
    s_expect ("FREQ=SECONDLY;BYMONTH=12;BYMONTHDAY=31;BYHOUR=23;BYMINUTE=59;BYSECOND=59", "UTC",
              "2024-01-01T00:00", "2024-01-01T00:00",
              (const char *[]){"2024-12-31T23:59:59", NULL});
    s_expect ("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29", "UTC", "2097-01-01T00:00",
              "2097-01-01T00:00",
              (const char *[]){"2104-02-29T00:00:00", "2104-02-29T00:00:01", NULL});
    s_expect ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "UTC", "2024-01-01T00:00",
              "2024-01-01T00:00", (const char *[]){"2044-02-29T00:00", NULL});
    //  COUNT is counted from the start (once: the cursor goes on from there)
    s_expect ("FREQ=SECONDLY;COUNT=50000", "UTC", "2024-01-01T00:00", "2024-01-01T13:53:18",
              (const char *[]){"2024-01-01T13:53:19", "never", NULL});
    s_expect ("FREQ=WEEKLY", "UTC", "2024-01-01T00:00", "2600-01-01T00:00",
              (const char *[]){"never", NULL});
    s_expect ("FREQ=SECONDLY;BYSECOND=0,30;COUNT=1000000", "UTC", "2024-01-01T00:00",
              "2024-01-05T00:00", (const char *[]){"2024-01-05T00:00:30", NULL});
    //  a COUNT without BYxxx parts needs no walk: the last one is start + (COUNT - 1) periods
    s_expect ("FREQ=SECONDLY;COUNT=1000000", "UTC", "2024-01-01T00:00", "2024-01-05T00:00",
              (const char *[]){"2024-01-05T00:00:01", NULL});
    s_expect ("FREQ=SECONDLY;COUNT=1000000", "UTC", "2024-01-01T00:00", "2024-01-12T13:46:38",
              (const char *[]){"2024-01-12T13:46:39", "never", NULL});
    s_expect ("FREQ=WEEKLY;INTERVAL=2;COUNT=3", "UTC", "2024-01-01T09:00", "2024-01-01T09:00",
              (const char *[]){"2024-01-15T09:00", "2024-01-29T09:00", "never", NULL});
    s_expect ("FREQ=DAILY;INTERVAL=32767;COUNT=1000000000", "UTC", "2024-01-01T09:00",
              "2024-01-01T09:00", (const char *[]){"2113-09-18T09:00", NULL});

    //  DST in the three test zones: gaps fire when they end, overlaps once
    s_expect ("FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0", "Europe/Chisinau", "2024-03-29T12:00",
              "2024-03-29T12:00",
              (const char *[]){"2024-03-30T00:30", "2024-03-31T00:00", "2024-03-31T23:30", NULL});
    s_expect ("FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0", "Europe/Chisinau", "2024-10-25T12:00",
              "2024-10-25T12:00",
              (const char *[]){"2024-10-25T23:30", "2024-10-26T23:30", "2024-10-28T00:30", NULL});
    s_expect ("DTSTART;TZID=America/New_York:20240308T023000\nRRULE:FREQ=DAILY", "UTC", NULL,
              "2024-03-08T00:00",
              (const char *[]){"2024-03-08T07:30", "2024-03-09T07:30", "2024-03-10T07:00",
                               "2024-03-11T06:30", NULL});
    s_expect ("DTSTART;TZID=America/New_York:20241101T013000\nRRULE:FREQ=DAILY", "UTC", NULL,
              "2024-11-01T00:00",
              (const char *[]){"2024-11-01T05:30", "2024-11-02T05:30", "2024-11-03T05:30",
                               "2024-11-04T06:30", NULL});
    //  hourly on the wall clock: New York's 02:00 does not exist, 01:00 happens twice
    s_expect ("DTSTART;TZID=America/New_York:20240310T000000\nRRULE:FREQ=HOURLY", "UTC", NULL,
              "2024-03-10T05:00", //  02:00 and 03:00 local are both 07:00Z
              (const char *[]){"2024-03-10T06:00", "2024-03-10T07:00", "2024-03-10T08:00",
                               "2024-03-10T09:00", NULL});
    s_expect ("DTSTART;TZID=America/New_York:20241103T000000\nRRULE:FREQ=HOURLY", "UTC", NULL,
              "2024-11-03T04:00",
              (const char *[]){"2024-11-03T05:00", "2024-11-03T07:00", "2024-11-03T08:00", NULL});
    //  Lord Howe: 02:00 -> 02:30 on 2024-10-06, 02:00 -> 01:30 on 2024-04-07
    s_expect ("DTSTART;TZID=Australia/Lord_Howe:20241004T021500\nRRULE:FREQ=DAILY", "UTC", NULL,
              "2024-10-03T00:00",
              (const char *[]){"2024-10-03T15:45", "2024-10-04T15:45", "2024-10-05T15:30",
                               "2024-10-06T15:15", NULL});
    s_expect ("DTSTART;TZID=Australia/Lord_Howe:20240405T014500\nRRULE:FREQ=DAILY", "UTC", NULL,
              "2024-04-04T00:00",
              (const char *[]){"2024-04-04T14:45", "2024-04-05T14:45", "2024-04-06T14:45",
                               "2024-04-07T15:15", NULL});
    s_expect ("DTSTART;TZID=Australia/Lord_Howe:20241006T000000\nRRULE:FREQ=MINUTELY;INTERVAL=20",
              "UTC", NULL, "2024-10-05T15:10",
              (const char *[]){"2024-10-05T15:30", "2024-10-05T15:40", "2024-10-05T16:00", NULL});
    //  the anchor itself may sit in a fall-back overlap's second pass
    s_expect ("FREQ=MINUTELY;INTERVAL=30", "America/New_York", "2024-11-03T06:10",
              "2024-11-03T06:10", (const char *[]){"2024-11-03T07:10", "2024-11-03T07:40", NULL});

    //  Errors
    s_expect_error (NULL, "rule is empty");
    s_expect_error ("", "rule is empty");
    s_expect_error ("   ", "RRULE is required");
    s_expect_error ("DTSTART:20240101T090000", "RRULE is required");
    s_expect_error ("INTERVAL=2", "FREQ is required");
    s_expect_error ("FREQ=FORTNIGHTLY", "FREQ 'FORTNIGHTLY' is not SECONDLY, MINUTELY");
    s_expect_error ("FREQ=DAILY;X-FOO=1", "unknown rule part 'X-FOO'");
    s_expect_error ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice");
    s_expect_error ("FREQ=DAILY;BYHOUR=25", "invalid BYHOUR value '25'");
    s_expect_error ("FREQ=DAILY;BYDAY=XX", "invalid BYDAY value 'XX'");
    //  RFC 5545's ranges, where libical 3.0 takes more (found by
    //  tests/fuzz/rrule.c: a BYYEARDAY of 384 wrote past a bitmap)
    s_expect_error ("FREQ=MINUTELY;BYYEARDAY=384", "invalid BYYEARDAY value '384'");
    s_expect_error ("FREQ=YEARLY;BYYEARDAY=1,-367", "invalid BYYEARDAY value '1,-367'");
    s_expect_error ("FREQ=YEARLY;BYDAY=MO;BYWEEKNO=54", "invalid BYWEEKNO value '54'");
    s_expect_error ("FREQ=YEARLY;BYMONTH=13", "invalid BYMONTH value '13'");
    s_expect_error ("FREQ=YEARLY;BYDAY=MO;BYSETPOS=367", "invalid BYSETPOS value '367'");
    s_expect ("FREQ=YEARLY;BYYEARDAY=366,-366", "UTC", "2024-01-01T09:00", "2024-01-01T00:00",
              (const char *[]){"2024-01-01T09:00", "2024-12-31T09:00", "2028-01-01T09:00", NULL});
    s_expect_error ("FREQ=DAILY;UNTIL=tomorrow", "invalid UNTIL value 'tomorrow'");
    s_expect_error ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a number from 1 to 32767");
    s_expect_error ("FREQ=DAILY;INTERVAL=70000", "INTERVAL must be a number from 1 to 32767");
    s_expect_error ("FREQ=DAILY;COUNT=-1", "COUNT must be a number");
    s_expect_error ("FREQ=DAILY;COUNT=2;UNTIL=20250101T000000Z", "COUNT and UNTIL cannot both");
    s_expect_error ("FREQ=DAILY;BYHOUR", "'BYHOUR' is not NAME=VALUE");
    s_expect_error ("FREQ=DAILY;RSCALE=HEBREW", "RSCALE is not supported");
    s_expect_error ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=1",
                    "BYSETPOS needs FREQ=MONTHLY or FREQ=YEARLY");
    s_expect_error ("FREQ=DAILY;BYDAY=1MO", "BYDAY with a position");
    s_expect_error ("FREQ=DAILY;BYMONTHDAY=-1", "a negative BYMONTHDAY needs");
    s_expect_error ("FREQ=HOURLY;BYYEARDAY=-1", "a negative BYYEARDAY needs FREQ=YEARLY");
    s_expect_error ("FREQ=DAILY;BYYEARDAY=1", "BYYEARDAY cannot be used with FREQ=DAILY");
    s_expect_error ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY cannot be used with FREQ=WEEKLY");
    s_expect_error ("FREQ=MONTHLY;BYWEEKNO=1", "BYWEEKNO needs FREQ=YEARLY");
    s_expect_error ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "the rule never occurs");
    //  ones libical would search to the year 2582 in one call, and shorter ones
    s_expect_error ("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30", "the rule never occurs");
    s_expect_error ("FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=4,6,9,11", "the rule never occurs");
    s_expect_error ("FREQ=MONTHLY;BYMONTHDAY=-31;BYMONTH=2", "the rule never occurs");
    s_expect_error ("DTSTART:20240130T090000 RRULE:FREQ=MONTHLY;BYMONTH=2", "never occurs");
    s_expect_error ("DTSTART:20240229T090000 RRULE:FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30",
                    "the rule never occurs");
    s_expect_error ("FREQ=MONTHLY;BYDAY=6MO", "the rule never occurs");
    s_expect_error ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", "the rule never occurs");
    s_expect_error ("FREQ=MONTHLY;BYMONTHDAY=1,2,3;BYDAY=MO;BYSETPOS=4", "the rule never occurs");
    s_expect_error ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYSETPOS=2", "never occurs");
    s_expect_error ("FREQ=YEARLY;BYMONTH=3;BYDAY=-6FR", "the rule never occurs");
    //  a period without a part that picks days holds DTSTART's day alone
    //  (found by tests/fuzz/rrule.c: libical looked for the 6th for 7 s)
    s_expect_error ("FREQ=MONTHLY;BYSETPOS=6", "the rule never occurs");
    //  (and 'FREQ=YEARLY;BYWEEKNO=5' took libical 60 ms to find it never occurs)
    s_expect_error ("FREQ=YEARLY;BYWEEKNO=5", "BYWEEKNO needs BYDAY");
    //  (and with a position, which RFC 5545 forbids, libical 3.0 found another
    //  day when it resumed from a cursor than when it walked)
    s_expect_error ("FREQ=YEARLY;BYWEEKNO=01;BYDAY=-1TH", "BYDAY with a position cannot be used");
    s_expect_error ("FREQ=YEARLY;BYMONTH=1,7;BYSETPOS=3", "the rule never occurs");
    s_expect ("FREQ=YEARLY;BYMONTH=1,7;BYSETPOS=2", "UTC", "2024-01-01T09:00", "2024-01-01T00:00",
              (const char *[]){"2024-07-01T09:00", "2025-07-01T09:00", NULL});
    s_expect_error ("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", "the rule never occurs");
    s_expect_error ("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", "the rule never occurs");
    s_expect_error ("RRULE:FREQ=DAILY RRULE:FREQ=WEEKLY", "only one RRULE is allowed");
    s_expect_error ("EXDATE:20240101T090000 RRULE:FREQ=DAILY", "unsupported property 'EXDATE'");
    s_expect_error ("hello", "unsupported line 'hello'");
    s_expect_error ("DTSTART:2024-01-01 RRULE:FREQ=DAILY",
                    "DTSTART '2024-01-01' is not a date-time");
    s_expect_error ("DTSTART:20240230T000000 RRULE:FREQ=DAILY", "is not a date-time");
    s_expect_error ("DTSTART:30000101T000000 RRULE:FREQ=DAILY", "is not a date-time");
    s_expect_error ("DTSTART;VALUE=DATE:20240101T000000 RRULE:FREQ=DAILY", "is not a date-time");
    s_expect_error ("DTSTART;TZID=Mars/Base:20240101T090000 RRULE:FREQ=DAILY",
                    "unknown time zone 'Mars/Base' in DTSTART");
    s_expect_error ("DTSTART;TZID=UTC:20240101T090000Z RRULE:FREQ=DAILY", "both TZID and a Z");
    s_expect_error ("DTSTART;X=1:20240101T090000 RRULE:FREQ=DAILY",
                    "unsupported DTSTART parameter");
    s_expect_error ("DTSTART:20240101T090000 DTSTART:20240101T090000 RRULE:FREQ=DAILY",
                    "only one DTSTART");
    char huge[BK_RRULE_MAX_TEXT + 10];
    memset (huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    s_expect_error (huge, "rule is too long");

    //  The work budget: the review's preview (a COUNT from 68 days ago, every
    //  minute) runs out, goes on where it stopped, then costs one step a time
    bk_rrule_t *rule, *fresh;
    char err[BK_RRULE_ERRLEN];
    const char *attack = "DTSTART:20240101T000000Z RRULE:FREQ=MINUTELY;COUNT=1000000000;BYSECOND=0";
    int rc = bk_rrule_parse (attack, bk_zone_load ("UTC"), 0, &rule, err);
    assert (rc == 0);
    int64_t base = s_utc ("2024-03-09T00:00"), work = 100000, next = BK_RRULE_OVER;
    int rounds = 0;
    while (next == BK_RRULE_OVER) {
        work = 100000;
        next = bk_rrule_next (rule, base, &work);
        rounds++;
    }
    assert (next == base + 60 && rounds > 10 && rounds < 40);
    for (int i = 0; i < 1000; i++) {
        work = 200; //  an iterator and a few steps
        int64_t later = bk_rrule_next (rule, next, &work);
        assert (later == next + 60);
        next = later;
    }
    bk_rrule_cursor_t cursor;
    bk_rrule_cursor (rule, &cursor);
    rc = bk_rrule_parse (attack, bk_zone_load ("UTC"), 0, &fresh, err);
    assert (rc == 0);
    bk_rrule_resume (fresh, &cursor);
    work = 200;
    assert (bk_rrule_next (fresh, next, &work) == next + 60);
    //  an instant before the cursor starts over (and runs out here)
    work = 100000;
    assert (bk_rrule_next (fresh, base, &work) == BK_RRULE_OVER);
    bk_rrule_destroy (&fresh);
    bk_rrule_destroy (&rule);
    //  rare rules are cheap: months and days are skipped without libical
    const char *rare[] = {"FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=23;BYMINUTE=59",
                          "FREQ=MINUTELY;BYMONTHDAY=31;BYDAY=FR;BYHOUR=13",
                          "FREQ=HOURLY;BYYEARDAY=366",
                          "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29",
                          "FREQ=MONTHLY;BYDAY=5FR;BYMONTH=2",
                          "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=9,17",
                          "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYSETPOS=1"};
    for (size_t i = 0; i < sizeof rare / sizeof rare[0]; i++) {
        rc = bk_rrule_parse (rare[i], bk_zone_load ("Europe/Chisinau"), s_utc ("2024-03-01T00:00"),
                             &rule, err);
        assert (rc == 0);
        work = 100000;
        next = bk_rrule_next (rule, s_utc ("2024-03-01T00:00"), &work);
        if (verbose)
            printf ("bk_rrule: '%s' next %" PRId64 " for %" PRId64 " work units\n", rare[i], next,
                    100000 - work);
        assert (next > 0);
        bk_rrule_destroy (&rule);
    }

    //  Against the reference walk: skipping ahead and chunking change nothing
    const char *rules[] = {
        "FREQ=SECONDLY;INTERVAL=2",
        "FREQ=SECONDLY;INTERVAL=7;BYMINUTE=0,1,59",
        "FREQ=SECONDLY;INTERVAL=13;BYHOUR=1,2,3;BYSECOND=0,13,26,39,52",
        "FREQ=SECONDLY;INTERVAL=7;BYSECOND=0,1,2,3",
        "FREQ=MINUTELY;INTERVAL=7",
        "FREQ=MINUTELY;INTERVAL=45;BYSECOND=5,50",
        "FREQ=MINUTELY;INTERVAL=11;BYHOUR=0,1,2,3;BYDAY=SU,MO",
        "FREQ=MINUTELY;INTERVAL=7;BYMINUTE=0,1,2,30;BYSECOND=10,20",
        "FREQ=HOURLY;INTERVAL=5",
        "FREQ=HOURLY;INTERVAL=7;BYMINUTE=0,30",
        "FREQ=HOURLY;BYHOUR=1,2,3;BYMINUTE=15,45",
        "FREQ=HOURLY;INTERVAL=5;BYHOUR=1,2,3,13;BYMINUTE=0,20",
        "FREQ=HOURLY;INTERVAL=25;BYMONTHDAY=1,2,3,28,29,30,31",
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=3;BYHOUR=1,2,3,4;BYMINUTE=0,30",
        "FREQ=DAILY;BYDAY=MO,FR;BYMONTH=3,10,11",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "FREQ=WEEKLY;INTERVAL=3;BYDAY=SU,WE;WKST=SU;BYHOUR=2,14",
        "FREQ=MONTHLY;BYDAY=-1SU;BYHOUR=2;BYMINUTE=30",
        "FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=31",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,-1",
        "FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU;BYHOUR=1,2,3;BYMINUTE=30",
        "FREQ=YEARLY;INTERVAL=2;BYYEARDAY=1,-1,100",
        "FREQ=DAILY;BYDAY=MO,TH;BYMONTH=1,3,10,11;COUNT=30",
        "FREQ=HOURLY;INTERVAL=3;COUNT=50",
        "FREQ=MONTHLY;BYMONTHDAY=31;BYHOUR=2,3;COUNT=7",
    };
    const char *zones[] = {"Europe/Chisinau", "America/New_York", "Australia/Lord_Howe", "UTC"};
    const char *starts[] = {"20240309T231500", "20241026T220007", "20240406T000000"};
    int compared = 0;
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++)
        for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++)
            for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++)
                compared += s_differential (rules[r], zones[z], starts[s]);
    if (verbose)
        printf ("bk_rrule: %d instants agree with a plain libical walk (%zu rules x %zu zones x "
                "%zu starts)\n",
                compared, sizeof rules / sizeof rules[0], sizeof zones / sizeof zones[0],
                sizeof starts / sizeof starts[0]);
    if (verbose)
        printf ("bk_rrule: ok\n");
}
