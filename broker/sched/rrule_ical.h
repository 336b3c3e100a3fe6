/*  rrule_ical.h - libical conversions shared by rrule.c and its selftest */
#ifndef BK_RRULE_ICAL_H
#define BK_RRULE_ICAL_H

#include "zone.h"

#include <libical/ical.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

//  Local civil seconds as a libical time, and back.
static inline struct icaltimetype s_ical (int64_t civil) {
    struct tm tm;
    bk_zone_civil_split (civil, &tm);
    struct icaltimetype t = icaltime_null_time ();
    t.year = tm.tm_year + 1900;
    t.month = tm.tm_mon + 1;
    t.day = tm.tm_mday;
    t.hour = tm.tm_hour;
    t.minute = tm.tm_min;
    t.second = tm.tm_sec;
    return t;
}

static inline int64_t s_civil (struct icaltimetype t) {
    return bk_zone_civil (t.year, t.month, t.day, t.hour, t.minute, t.second);
}

//  A BY* part of the rule is given.
static inline bool s_has (const short *array) {
    return array[0] != ICAL_RECURRENCE_ARRAY_MAX;
}

#endif
