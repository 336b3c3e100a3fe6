/*  schedule.h - scheduled tasks' schedules: validation, next fire time, preview

    One entry point per question, whatever the kind:
    - cron:  five fields, macros, Vixie's OR rule (cron.h);
    - rrule: RFC 5545 with or without DTSTART (rrule.h); without DTSTART
             the rule starts at the schedule's creation time (the anchor);
    - once:  an ISO 8601 date-time; with Z or an offset it is that instant,
             without one it is a local time in the schedule's zone;
    - event: no fire times of its own (POST /events and run_now fire it).
    The timezone is an IANA name ("Europe/Chisinau"); NULL means UTC.

    DST, the same for every kind (zone.h does the resolving):
    - a local time that does not exist (spring forward) fires at the next
      valid instant, the end of the gap: 02:30 in a 02:00->03:00 gap fires
      at 03:00 local; several gap times that would each fire fire once;
    - a local time that happens twice (fall back) fires once, at its first
      occurrence (on summer time); the repeated hour's second pass fires
      nothing for cron (every-15-minutes has a one-hour hole), and rrule
      HOURLY and finer rules, which follow the wall clock, likewise.

    All times are ms since the epoch, UTC; a next fire time is always
    strictly after the `after` given. Expressions are parsed on every call:
    cheap for cron and once, tens of microseconds for an RRULE.
*/
#ifndef BK_SCHEDULE_H
#define BK_SCHEDULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BK_SCHEDULE_ERRLEN      320  //  size of the errbuf bk_schedule_validate fills
#define BK_SCHEDULE_PREVIEW_MAX 1000 //  most fire times a preview lists
#define BK_SCHEDULE_EVENT_MAX   200  //  longest event name

#define BK_SCHEDULE_KINDS_ERROR "schedule_kind must be one of: cron, rrule, once, event"

//  True when kind is one of cron, rrule, once, event.
bool bk_schedule_kind_known (const char *kind);

//  Checks a schedule as POST /tasks gives it. Returns 0, or -1 with the
//  API error in errbuf (BK_SCHEDULE_ERRLEN bytes), one of:
//  "schedule_kind must be one of: cron, rrule, once, event",
//  "schedule_expr is required", "timezone must be a valid IANA time zone",
//  "Invalid cron expression: <why>", "Invalid RRULE: <why>",
//  "schedule_expr must be an ISO 8601 date-time",
//  "schedule_expr must be an event name of 1 to 200 characters".
int bk_schedule_validate (const char *kind, const char *expr, const char *timezone, char *errbuf);

//  The first fire time strictly after after_utc_ms, or -1 if there is none
//  (an event schedule, a once in the past, an exhausted or impossible rule,
//  an invalid schedule). anchor_utc_ms is the schedule's creation time.
int64_t bk_schedule_next (const char *kind, const char *expr, const char *timezone,
                          int64_t anchor_utc_ms, int64_t after_utc_ms);

//  The next count (at most BK_SCHEDULE_PREVIEW_MAX) fire times after
//  after_utc_ms as an array of ISO 8601 strings ("2024-03-31T00:00:00.000Z"),
//  fewer if the schedule ends. Returns a new reference (the caller owns
//  it), or NULL if the schedule is invalid (bk_schedule_validate says why).
json_t *bk_schedule_preview (const char *kind, const char *expr, const char *timezone,
                             int64_t anchor_utc_ms, int64_t after_utc_ms, int count);

void bk_schedule_test (bool verbose);

#endif
