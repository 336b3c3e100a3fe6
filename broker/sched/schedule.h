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

    Bounded work: cron (ten years of days at most) and once cost
    microseconds by construction. An RRULE search spends work units from a
    budget the caller gives (BK_SCHEDULE_WORK, about 10 ms: rrule.h) and
    says BK_SCHEDULE_OVER when they run out; its cursor (which the caller
    keeps with the schedule) lets the next search go on from there, so a
    COUNT rule is counted once, not from DTSTART at every fire.
*/
#ifndef BK_SCHEDULE_H
#define BK_SCHEDULE_H

#include "rrule.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_SCHEDULE_ERRLEN      320  //  size of the errbuf bk_schedule_validate fills
#define BK_SCHEDULE_PREVIEW_MAX 1000 //  most fire times a preview lists
#define BK_SCHEDULE_EVENT_MAX   200  //  longest event name

#ifndef BK_SCHEDULE_WORK        //  a test build may shrink it to reach the paths that run out
#define BK_SCHEDULE_WORK 100000 //  work units one request or fire may spend (about 10 ms)
#endif
#define BK_SCHEDULE_PREVIEW_ITEM 100 //  more units a preview gets per fire time asked
#define BK_SCHEDULE_OVER         -2  //  bk_schedule_next: the work ran out first

#define BK_SCHEDULE_KINDS_ERROR "schedule_kind must be one of: cron, rrule, once, event"
#define BK_SCHEDULE_OVER_ERROR                                                                     \
    "Invalid RRULE: its next fire time takes too long to find (a COUNT counted from a "            \
    "distant DTSTART, or parts that rarely match)"

typedef enum {
    BK_SCHEDULE_CRON,
    BK_SCHEDULE_RRULE,
    BK_SCHEDULE_ONCE,
    BK_SCHEDULE_EVENT,
    BK_SCHEDULE_KINDS
} bk_schedule_kind_t;

//  "cron", "rrule", "once", "event"; NULL for another code.
const char *bk_schedule_kind_name (int kind);
//  The kind named by n bytes at name, or -1.
int bk_schedule_kind_parse (const char *name, size_t n);

//  Where a schedule's RRULE searches stand, kept with the schedule.
typedef struct {
    bool set;             //  a cursor is kept (an rrule schedule searched before)
    bk_rrule_cursor_t at; //  rrule.h
} bk_schedule_cursor_t;

//  Checks a schedule as POST /tasks gives it: kind is the schedule_kind
//  text (NULL or "" when none). Returns 0, or -1 with the API error in
//  errbuf (BK_SCHEDULE_ERRLEN bytes), one of:
//  "schedule_kind must be one of: cron, rrule, once, event",
//  "schedule_expr is required", "timezone must be a valid IANA time zone",
//  "Invalid cron expression: <why>", "Invalid RRULE: <why>",
//  "schedule_expr must be an ISO 8601 date-time",
//  "schedule_expr must be an event name of 1 to 200 characters".
int bk_schedule_validate (const char *kind, const char *expr, const char *timezone, char *errbuf);

//  The first fire time strictly after after_utc_ms, or -1 if there is none
//  (an event schedule, a once in the past, an exhausted or impossible rule,
//  an invalid schedule), or BK_SCHEDULE_OVER if *work ran out before it was
//  found. anchor_utc_ms is the schedule's creation time. cursor (NULL:
//  none) is read and updated: the same schedule's last search, to go on
//  from; one that cannot belong to the schedule is ignored, and it is
//  cleared for a kind other than rrule.
int64_t bk_schedule_next (int kind, const char *expr, const char *timezone, int64_t anchor_utc_ms,
                          int64_t after_utc_ms, bk_schedule_cursor_t *cursor, int64_t *work);

//  The next count (at most BK_SCHEDULE_PREVIEW_MAX) fire times after
//  after_utc_ms into times (room for count), fewer if the schedule ends, or
//  if *work runs out after some were found (then *truncated is set).
//  Returns how many, or -1 with the API error in errbuf
//  (BK_SCHEDULE_ERRLEN bytes): the schedule is invalid, or *work ran out
//  before the first fire time (BK_SCHEDULE_OVER_ERROR). cursor as for
//  bk_schedule_next, read only.
int bk_schedule_preview (int kind, const char *expr, const char *timezone, int64_t anchor_utc_ms,
                         int64_t after_utc_ms, int count, const bk_schedule_cursor_t *cursor,
                         int64_t *work, int64_t *times, bool *truncated, char *errbuf);

void bk_schedule_test (bool verbose);

#endif
