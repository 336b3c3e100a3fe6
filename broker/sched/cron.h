/*  cron.h - five-field cron expressions and their next fire time in a zone

    "minute hour day-of-month month day-of-week", each field a list of
    items: `*`, a value, a range `a-b`, or one of these with a step `/n`
    (`a/n` runs from a to the field's end; `*` then `/15` is every 15th).
    Months take JAN-DEC, days of week SUN-SAT (case-insensitive); 0 and 7
    are both Sunday. Macros: @yearly and @annually (0 0 1 1 *), @monthly
    (0 0 1 * *), @weekly (0 0 * * 0), @daily and @midnight (0 0 * * *),
    @hourly (0 * * * *).

    Vixie's rule: when both day fields are restricted (neither starts with
    `*`), a day matches if EITHER matches ("0 0 1,15 * MON" fires on the
    1st, the 15th and every Monday); otherwise both must match.

    Fire times are local wall-clock minutes in the schedule's zone,
    resolved as zone.h says: a minute in a spring-forward gap fires at the
    instant the gap ends (once, however many gap minutes match); in a
    fall-back overlap a minute fires once, at its first occurrence, and
    the repeated hour's second pass fires nothing.
*/
#ifndef BK_CRON_H
#define BK_CRON_H

#include "zone.h"
#include <stdbool.h>
#include <stdint.h>

#define BK_CRON_ERRLEN 256 //  size of the errbuf bk_cron_parse fills

//  A parsed expression: one bit per allowed value
typedef struct {
    uint64_t minute; //  bits 0-59
    uint32_t hour;   //  bits 0-23
    uint32_t mday;   //  bits 1-31
    uint16_t month;  //  bits 1-12
    uint8_t wday;    //  bits 0-6, Sunday 0
    bool mday_star;  //  day-of-month field starts with '*'
    bool wday_star;  //  day-of-week field starts with '*'
} bk_cron_t;

//  Parses expr into *cron. Returns 0, or -1 with a message such as
//  "hour: 24 is out of range 0-23" in errbuf (BK_CRON_ERRLEN bytes).
int bk_cron_parse (const char *expr, bk_cron_t *cron, char *errbuf);

//  True if the local civil minute civil_s (see zone.h) matches.
bool bk_cron_matches (const bk_cron_t *cron, int64_t civil_s);

//  The first fire time strictly after after_utc_s (seconds), in zone's
//  local time. Returns -1 if none within BK_CRON_HORIZON_YEARS years
//  (e.g. "0 0 30 2 *").
#define BK_CRON_HORIZON_YEARS 10
int64_t bk_cron_next (const bk_cron_t *cron, const bk_zone_t *zone, int64_t after_utc_s);

void bk_cron_test (bool verbose);

#endif
