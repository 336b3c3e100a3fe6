/*  zone.h - IANA time zones: validation, UTC offsets, local civil time <-> UTC

    A zone is valid when its name is sane (letters, digits, "_+-./", no
    leading '/', no "." or ".." component) and BK_ZONE_DIR/<name> is a TZif
    file without leap seconds; "UTC" is always valid. This module reads the
    TZif file itself (the 64-bit v2+ transitions, then the POSIX TZ footer
    for times past the last transition) and never touches the process TZ,
    so every call is thread-safe.

    Loaded zones are cached for the life of the process: a bk_zone_t
    pointer is borrowed, immutable and valid until exit; nobody frees it.

    Times are int64 seconds. "Civil" seconds count a local wall-clock date
    and time as if it were UTC (what timegm would return for its fields),
    so local date arithmetic is plain integer arithmetic.

    Resolving local time to UTC (bk_zone_civil_to_utc), the DST rules of
    every schedule:
    - a local time that does not exist (spring forward, e.g. 02:30 in a
      02:00->03:00 gap) resolves to the instant the gap ends, 03:00 local;
    - a local time that occurs twice (fall back, e.g. 01:30 when 02:00
      summer time becomes 01:00 standard time) resolves to its FIRST
      occurrence, the earlier instant (still on summer time).
    Put together: the result is the earliest instant whose local time is at
    or after the given local time, so resolution never goes backwards.
*/
#ifndef BK_ZONE_H
#define BK_ZONE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define BK_ZONE_DIR "/usr/share/zoneinfo"

typedef struct _bk_zone_t bk_zone_t;

//  Returns the zone called name ("UTC", "Europe/Chisinau"), loading and
//  caching it on first use, or NULL if name is NULL or not a valid zone.
//  Borrowed: valid until the process exits.
const bk_zone_t *bk_zone_load (const char *name);
//  True if bk_zone_load (name) would succeed.
bool bk_zone_valid (const char *name);
//  The zone's name, as given to bk_zone_load.
const char *bk_zone_name (const bk_zone_t *self);

//  UTC offset in seconds, east of Greenwich positive, in effect at utc_s.
int32_t bk_zone_offset_at (const bk_zone_t *self, int64_t utc_s);
//  True if daylight-saving time is in effect at utc_s.
bool bk_zone_isdst_at (const bk_zone_t *self, int64_t utc_s);
//  The first instant after utc_s at which the zone's offset or DST flag
//  may change, or INT64_MAX if it never changes again.
int64_t bk_zone_next_transition (const bk_zone_t *self, int64_t utc_s);

//  Local civil seconds at utc_s.
int64_t bk_zone_utc_to_civil (const bk_zone_t *self, int64_t utc_s);
//  The instant of local civil time civil_s, gaps and overlaps resolved as
//  described above.
int64_t bk_zone_civil_to_utc (const bk_zone_t *self, int64_t civil_s);
//  Fills *local with the local time at utc_s (tm_wday, tm_yday, tm_isdst
//  and tm_gmtoff set; tm_zone NULL).
void bk_zone_to_local (const bk_zone_t *self, int64_t utc_s, struct tm *local);
//  The instant of the local time in *local (tm_year .. tm_sec; out-of-range
//  fields are normalised as timegm does; tm_isdst is ignored), gaps and
//  overlaps resolved as above. Returns 0 and sets *utc_s, or -1 if the
//  year is out of range (beyond +-1,000,000).
int bk_zone_local_to_utc (const bk_zone_t *self, const struct tm *local, int64_t *utc_s);

//  Calendar arithmetic on civil seconds, for the schedule modules.
//  Days since 1970-01-01 of a proleptic Gregorian date (month 1-12).
int64_t bk_zone_days_from_civil (int64_t year, int month, int day);
//  Civil seconds of a date and time; fields must be in range.
int64_t bk_zone_civil (int64_t year, int month, int day, int hour, int minute, int second);
//  Splits civil seconds into *tm (tm_wday 0 = Sunday, tm_yday, tm_isdst 0).
void bk_zone_civil_split (int64_t civil_s, struct tm *tm);
//  Days in a month (1-12) of a year.
int bk_zone_month_days (int64_t year, int month);

void bk_zone_test (bool verbose);

#endif
