/*  rrule.h - RFC 5545 recurrence rules (via libical) and their next fire time

    Accepted text, lines or words separated by white space:
        FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0
        RRULE:FREQ=WEEKLY;BYDAY=MO,WE
        DTSTART:20240101T090000  RRULE:FREQ=DAILY           (floating: the zone given)
        DTSTART;TZID=Europe/Chisinau:20240101T090000 RRULE:... (this zone)
        DTSTART:20240101T090000Z RRULE:...                  (recurs in UTC)
        DTSTART;VALUE=DATE:20240101 RRULE:...               (local midnight)
    Without DTSTART the rule starts at anchor_utc_s (the schedule's creation
    time, whole seconds) in the given zone; as RFC 5545 says, parts a rule
    leaves out come from the start, so "FREQ=DAILY;BYHOUR=9" fires at 09
    and the creation time's minute and second: add BYMINUTE=0;BYSECOND=0.

    Occurrences are computed in floating local time and each is resolved to
    UTC with zone.c: a time in a spring-forward gap fires when the gap ends,
    a time in a fall-back overlap fires once, at its first occurrence, and
    "FREQ=HOURLY" follows the wall clock (23 runs on the spring-forward day,
    24 on the fall-back day). Note RFC 5545 itself moves a gap time forward
    by the gap's length (02:30 -> 03:30); we fire at 03:00 like cron does.

    UNTIL with Z is an instant; without, a local time (a DATE includes its
    whole day). BYHOUR, BYMINUTE and BYSECOND limit SECONDLY, MINUTELY and
    HOURLY rules as RFC 5545 says (libical 3.0 alone does not). Refused,
    with a clear error, because libical 3.0 would silently ignore them or
    never match: BYSETPOS except with MONTHLY or YEARLY, BYDAY with a
    position (1MO, -1FR) except with MONTHLY or YEARLY, a negative
    BYMONTHDAY except with MONTHLY or YEARLY, a negative BYYEARDAY except
    with YEARLY, BYWEEKNO without BYDAY (libical 3.0 picks wrong days, or
    spends 60 ms to find none) or with a BYDAY position (RFC 5545 forbids
    it; libical 3.0 resumes it on other days), RSCALE and SKIP; so are
    values outside RFC 5545's ranges that libical 3.0 takes (BYYEARDAY and
    BYSETPOS past 366, BYWEEKNO past 53, BYMONTH 13). EXDATE and RDATE
    lines are not supported.

    The work is bounded by the caller: each search spends work units from a
    budget it is given (about 0.1 microsecond each: a libical iteration is
    25, a new iterator 45) and stops with BK_RRULE_OVER when they run out.
    A rule keeps a cursor between searches, so successive searches for
    later instants (a preview, a schedule's fires) go on where the last one
    stopped: a COUNT rule is counted once, not from DTSTART at every step.
    bk_rrule_cursor and bk_rrule_resume carry the cursor across parses.
    libical can spend long inside one call of a WEEKLY .. YEARLY rule that
    rarely matches (it looks through the periods between): such a call is
    charged the CPU time it took. A rule that can never occur
    (BYMONTH=2;BYMONTHDAY=30, BYDAY=6MO, a BYSETPOS past what a period
    holds) is refused: libical would look to the year 2582 in one call,
    even in icalrecur_iterator_new. A typical search takes 10-30
    microseconds.
*/
#ifndef BK_RRULE_H
#define BK_RRULE_H

#include "zone.h"
#include <stdbool.h>
#include <stdint.h>

#define BK_RRULE_MAX_TEXT 2048 //  longest rule text accepted
#define BK_RRULE_ERRLEN   256  //  size of the errbuf bk_rrule_parse fills
#define BK_RRULE_OVER     -2   //  bk_rrule_next: the work budget ran out first

typedef struct _bk_rrule_t bk_rrule_t;

//  Where a rule's searches stand: every occurrence before the local time
//  pos is taken (seen of them), each at or before the instant bound.
typedef struct {
    int64_t pos;   //  local civil seconds
    int64_t seen;  //  occurrences before pos
    int64_t bound; //  UTC seconds (INT64_MIN: none yet)
} bk_rrule_cursor_t;

//  Parses text, in zone (the schedule's time zone, NULL means UTC) unless
//  DTSTART names another. Returns 0 and a new rule in *rule_p (destroy it
//  with bk_rrule_destroy), or -1 with a message in errbuf
//  (BK_RRULE_ERRLEN bytes), e.g. "unknown time zone 'Mars/Base'".
int bk_rrule_parse (const char *text, const bk_zone_t *zone, int64_t anchor_utc_s,
                    bk_rrule_t **rule_p, char *errbuf);
void bk_rrule_destroy (bk_rrule_t **self_p);

//  The first occurrence strictly after after_utc_s, in seconds; -1 when
//  the rule is exhausted (COUNT, UNTIL) or has no further occurrence; or
//  BK_RRULE_OVER when *work (units, see above) ran out first: the cursor
//  keeps what was done, so a call with more work goes on from there.
//  Spends from *work. Fastest for after_utc_s at or after the last answer.
int64_t bk_rrule_next (bk_rrule_t *self, int64_t after_utc_s, int64_t *work);

//  The cursor, to store; and back, into a rule parsed from the same text,
//  zone and anchor (a cursor that cannot belong to it is ignored). The
//  stored cursor stands before the last answer, so it serves any search
//  after the answer before it: a preview made before the next fire too.
void bk_rrule_cursor (const bk_rrule_t *self, bk_rrule_cursor_t *cursor);
void bk_rrule_resume (bk_rrule_t *self, const bk_rrule_cursor_t *cursor);

//  The rule's start (DTSTART, or the anchor) as local civil seconds, and
//  the zone its times are in.
int64_t bk_rrule_start (const bk_rrule_t *self);
const bk_zone_t *bk_rrule_zone (const bk_rrule_t *self);

void bk_rrule_test (bool verbose);

#endif
