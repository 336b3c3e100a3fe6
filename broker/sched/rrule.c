/*  rrule.c - RFC 5545 recurrence rules (via libical) and their next fire time

    The only includer of <libical/ical.h>. libical 3.0.16 expands the rule
    in floating local time (its zone handling drifts after a DST gap and
    picks the second of two ambiguous times, and an unknown TZID silently
    becomes UTC), and zone.c resolves each local time to UTC.

    Finding the next occurrence without walking from DTSTART each time:
    - WEEKLY, MONTHLY, YEARLY: icalrecur_iterator_set_start jumps to the
      local time of `after`, or to where the last search stopped (libical
      refuses it for COUNT rules, but COUNT is ours, see below).
    - SECONDLY .. DAILY: libical's own set_start is wrong for intervals
      that do not divide a minute or hour, and its iterator crawls one
      period at a time (two microseconds each) through days a BYMONTH or
      BYMONTHDAY limit excludes, so FREQ=SECONDLY;BYMONTH=12 from January
      would take a minute. So the local time line is cut into chunks (a
      minute for SECONDLY, an hour for MINUTELY, a day for HOURLY and
      DAILY); chunks with no period start or excluded by a limit are
      skipped here, and libical expands each remaining chunk from a start
      moved forward by whole periods (which keeps the rule's phase), with
      UNTIL set to the chunk's end so it cannot wander off.
    COUNT and UNTIL are applied here, not by libical: COUNT because chunks
    restart the iterator, UNTIL because libical compares a UTC UNTIL with
    floating times as if they were UTC. So are the time-of-day limits of
    SECONDLY, MINUTELY and HOURLY rules, which libical 3.0 gets wrong (see
    s_set_limits). The selftest checks all this skipping against a plain
    walk of libical from DTSTART.
*/
#include "rrule.h"
#include "rrule_ical.h"

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MIN_YEAR 1900 //  DTSTART range; libical stops at 2582
#define S_MAX_YEAR 2500

struct _bk_rrule_t {
    struct icalrecurrencetype recur; //  the rule, without UNTIL and COUNT
    const bk_zone_t *zone;           //  zone of the local times
    int64_t start;                   //  DTSTART, local civil seconds
    int64_t count;                   //  COUNT, or 0 for none
    bool until_utc;                  //  UNTIL is an instant (UTC seconds)
    bool until_local;                //  UNTIL is a local time (civil seconds)
    int64_t until;                   //  UNTIL, per the flags
    int64_t unit;                    //  seconds per FREQ unit; 0 for WEEKLY+
    int64_t period;                  //  unit * INTERVAL
    int64_t chunk;                   //  local seconds expanded per iterator
    uint64_t seconds;                //  seconds allowed (bits 0-60)
    uint64_t minutes;                //  minutes allowed (bits 0-59)
    uint32_t hours;                  //  hours allowed (bits 0-23)
    uint32_t mdays;                  //  days of month allowed (bits 1-31)
    uint16_t months;                 //  months allowed (bits 1-12)
    uint8_t wdays;                   //  days of week allowed (bit 0 Sunday)
    uint64_t ydays[6];               //  days of year allowed (bits 1-366)
    icalrecur_iterator *it;          //  the cursor: expanding from pos, or NULL
    int64_t chunk_at;                //  the cursor: start of the chunk it expands
    int64_t pos;                     //  the cursor: occurrences before it are taken
    int64_t seen;                    //  the cursor: how many (for COUNT)
    int64_t bound;                   //  the cursor: each resolved at or before it
    bool done;                       //  the cursor: no occurrence at or after pos
    bk_rrule_cursor_t kept;          //  the cursor before the last answer (to store)
};

static void s_close (bk_rrule_t *self);
static void s_seek (bk_rrule_t *self, int64_t pos, int64_t seen, int64_t bound);

//  --------------------------------------------------------------------------
//  Conversions

static int64_t s_floordiv (int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

//  --------------------------------------------------------------------------
//  Parsing

static const char *s_parts[] = {"FREQ",     "UNTIL",   "COUNT",    "INTERVAL",   "BYSECOND",
                                "BYMINUTE", "BYHOUR",  "BYDAY",    "BYMONTHDAY", "BYYEARDAY",
                                "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST",       NULL};

static bool s_number (const char *text, long lo, long hi) {
    if (!*text || strlen (text) > 10)
        return false;
    for (const char *p = text; *p; p++)
        if (!isdigit ((unsigned char) *p))
            return false;
    long v = atol (text);
    return v >= lo && v <= hi;
}

//  True when every value of a BYxxx list is within +-max and not 0.
static bool s_in_range (const short *array, int size, int max) {
    for (int i = 0; i < size && array[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
        if (array[i] == 0 || array[i] > max || array[i] < -max)
            return false;
    return true;
}

//  RFC 5545's ranges, where libical 3.0 takes more: BYYEARDAY and BYSETPOS
//  up to +-384 (a BYYEARDAY of 384 wrote past the days-of-year bitmap),
//  BYWEEKNO up to +-54, BYMONTH up to 13
static bool s_rfc_ranges (const struct icalrecurrencetype *r) {
    for (int i = 0; i < ICAL_BY_MONTH_SIZE && r->by_month[i] != ICAL_RECURRENCE_ARRAY_MAX; i++) {
        int month = icalrecurrencetype_month_month (r->by_month[i]);
        if (month < 1 || month > 12)
            return false;
    }
    return s_in_range (r->by_year_day, ICAL_BY_YEARDAY_SIZE, 366) &&
           s_in_range (r->by_set_pos, ICAL_BY_SETPOS_SIZE, 366) &&
           s_in_range (r->by_week_no, ICAL_BY_WEEKNO_SIZE, 53);
}

//  Checks the rule's parts by name before libical sees them, so errors
//  can say which part is wrong; returns 0 or -1
static int s_check_parts (const char *rule, char *errbuf) {
    char copy[BK_RRULE_MAX_TEXT + 1];
    snprintf (copy, sizeof copy, "%s", rule);
    bool seen[sizeof s_parts / sizeof s_parts[0]] = {false};
    char *save = NULL;
    for (char *part = strtok_r (copy, ";", &save); part; part = strtok_r (NULL, ";", &save)) {
        char *eq = strchr (part, '=');
        if (!eq || eq == part || !eq[1]) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "'%.60s' is not NAME=VALUE", part);
            return -1;
        }
        *eq = '\0';
        const char *value = eq + 1;
        if (strcasecmp (part, "RSCALE") == 0 || strcasecmp (part, "SKIP") == 0) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "%s is not supported", part);
            return -1;
        }
        int i = 0;
        while (s_parts[i] && strcasecmp (part, s_parts[i]) != 0)
            i++;
        if (!s_parts[i]) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "unknown rule part '%.60s'", part);
            return -1;
        }
        if (seen[i]) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "%s is given twice", s_parts[i]);
            return -1;
        }
        seen[i] = true;
        if (strcmp (s_parts[i], "COUNT") == 0 && !s_number (value, 1, 1000000000)) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "COUNT must be a number from 1 to 1000000000");
            return -1;
        }
        if (strcmp (s_parts[i], "INTERVAL") == 0 && !s_number (value, 1, 32767)) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "INTERVAL must be a number from 1 to 32767");
            return -1;
        }
        //  Each part alone, so a bad value is named
        char probe[BK_RRULE_MAX_TEXT + 32];
        if (strcmp (s_parts[i], "FREQ") == 0)
            snprintf (probe, sizeof probe, "FREQ=%s", value);
        else
            snprintf (probe, sizeof probe, "FREQ=YEARLY;%s=%s", s_parts[i], value);
        struct icalrecurrencetype r = icalrecurrencetype_from_string (probe);
        if (r.freq == ICAL_NO_RECURRENCE || !s_rfc_ranges (&r)) {
            if (strcmp (s_parts[i], "FREQ") == 0)
                snprintf (errbuf, BK_RRULE_ERRLEN,
                          "FREQ '%.40s' is not SECONDLY, MINUTELY, HOURLY, DAILY, WEEKLY, "
                          "MONTHLY or YEARLY",
                          value);
            else
                snprintf (errbuf, BK_RRULE_ERRLEN, "invalid %s value '%.60s'", s_parts[i], value);
            return -1;
        }
    }
    if (!seen[0]) {
        snprintf (errbuf, BK_RRULE_ERRLEN, "FREQ is required");
        return -1;
    }
    if (seen[1] && seen[2]) {
        snprintf (errbuf, BK_RRULE_ERRLEN, "COUNT and UNTIL cannot both be given");
        return -1;
    }
    return 0;
}

//  RFC 5545's table of which BYxxx parts go with which FREQ, plus the
//  cases libical 3.0 accepts but ignores or never matches; 0 or -1
static int s_check_combination (const struct icalrecurrencetype *r, char *errbuf) {
    icalrecurrencetype_frequency f = r->freq;
    bool long_freq = f == ICAL_MONTHLY_RECURRENCE || f == ICAL_YEARLY_RECURRENCE;
    const char *msg = NULL;
    if (s_has (r->by_set_pos) && !long_freq)
        msg = "BYSETPOS needs FREQ=MONTHLY or FREQ=YEARLY";
    else if (s_has (r->by_week_no) && f != ICAL_YEARLY_RECURRENCE)
        msg = "BYWEEKNO needs FREQ=YEARLY";
    else if (s_has (r->by_week_no) && !s_has (r->by_day))
        msg = "BYWEEKNO needs BYDAY"; //  libical 3.0 alone: wrong days, or 60 ms to find none
    else if (s_has (r->by_year_day) && (f == ICAL_DAILY_RECURRENCE || f == ICAL_WEEKLY_RECURRENCE ||
                                        f == ICAL_MONTHLY_RECURRENCE))
        msg = "BYYEARDAY cannot be used with FREQ=DAILY, WEEKLY or MONTHLY";
    else if (s_has (r->by_month_day) && f == ICAL_WEEKLY_RECURRENCE)
        msg = "BYMONTHDAY cannot be used with FREQ=WEEKLY";
    for (int i = 0; !msg && i < ICAL_BY_DAY_SIZE && r->by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
        if (icalrecurrencetype_day_position (r->by_day[i]) != 0 && !long_freq)
            msg = "BYDAY with a position (1MO, -1FR) needs FREQ=MONTHLY or FREQ=YEARLY";
        else if (icalrecurrencetype_day_position (r->by_day[i]) != 0 && s_has (r->by_week_no))
            msg = "BYDAY with a position cannot be used with BYWEEKNO"; //  RFC 5545 3.3.10
    for (int i = 0;
         !msg && i < ICAL_BY_MONTHDAY_SIZE && r->by_month_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
        if (r->by_month_day[i] < 0 && !long_freq)
            msg = "a negative BYMONTHDAY needs FREQ=MONTHLY or FREQ=YEARLY";
    for (int i = 0;
         !msg && i < ICAL_BY_YEARDAY_SIZE && r->by_year_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
        if (r->by_year_day[i] < 0 && f != ICAL_YEARLY_RECURRENCE)
            msg = "a negative BYYEARDAY needs FREQ=YEARLY";
    if (msg) {
        snprintf (errbuf, BK_RRULE_ERRLEN, "%s", msg);
        return -1;
    }
    return 0;
}

//  "20240101T090000[Z]" or "20240101" -> civil seconds; returns 0 or -1
static int s_parse_datetime (const char *text, int64_t *civil, bool *utc, bool *date) {
    int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
    size_t len = strlen (text);
    for (size_t i = 0; i < len; i++)
        if (!isdigit ((unsigned char) text[i]) && !(i == 8 && text[i] == 'T') &&
            !(i == 15 && text[i] == 'Z'))
            return -1;
    *date = len == 8;
    *utc = len == 16;
    if (len == 8)
        n = sscanf (text, "%4d%2d%2d", &y, &mo, &d) == 3;
    else if (len == 15 || len == 16)
        n = sscanf (text, "%4d%2d%2dT%2d%2d%2d", &y, &mo, &d, &h, &mi, &s) == 6;
    if (!n || y < S_MIN_YEAR || y > S_MAX_YEAR || mo < 1 || mo > 12 || d < 1 ||
        d > bk_zone_month_days (y, mo) || h > 23 || mi > 59 || s > 59)
        return -1;
    *civil = bk_zone_civil (y, mo, d, h, mi, s);
    return 0;
}

//  "DTSTART[;TZID=Zone][;VALUE=DATE]:value" into self; returns 0 or -1
static int s_parse_dtstart (bk_rrule_t *self, char *line, char *errbuf) {
    char *colon = strchr (line, ':');
    if (!colon) {
        snprintf (errbuf, BK_RRULE_ERRLEN, "DTSTART needs a ':' before its value");
        return -1;
    }
    *colon = '\0';
    const char *value = colon + 1;
    char *params = line + strlen ("DTSTART");
    const bk_zone_t *zone = NULL;
    bool want_date = false;
    char *save = NULL;
    for (char *param = strtok_r (params, ";", &save); param; param = strtok_r (NULL, ";", &save)) {
        if (strncasecmp (param, "TZID=", 5) == 0) {
            char *name = param + 5;
            size_t len = strlen (name);
            if (len >= 2 && name[0] == '"' && name[len - 1] == '"')
                name[len - 1] = '\0', name++;
            if (!(zone = bk_zone_load (name))) {
                snprintf (errbuf, BK_RRULE_ERRLEN, "unknown time zone '%.60s' in DTSTART", name);
                return -1;
            }
        } else if (strcasecmp (param, "VALUE=DATE") == 0)
            want_date = true;
        else if (strcasecmp (param, "VALUE=DATE-TIME") != 0) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "unsupported DTSTART parameter '%.60s'", param);
            return -1;
        }
    }
    bool utc, date;
    if (s_parse_datetime (value, &self->start, &utc, &date) || date != want_date) {
        snprintf (errbuf, BK_RRULE_ERRLEN,
                  "DTSTART '%.40s' is not a date-time like 20240101T090000 (or a DATE with "
                  "VALUE=DATE), years %d-%d",
                  value, S_MIN_YEAR, S_MAX_YEAR);
        return -1;
    }
    if (utc && zone) {
        snprintf (errbuf, BK_RRULE_ERRLEN, "DTSTART cannot have both TZID and a Z suffix");
        return -1;
    }
    if (utc)
        self->zone = bk_zone_load ("UTC");
    else if (zone)
        self->zone = zone;
    return 0;
}

//  Sets the limits the chunked search checks before calling libical: the
//  BYxxx parts RFC 5545 makes limits (not expansions) for this FREQ
static void s_set_limits (bk_rrule_t *self) {
    const struct icalrecurrencetype *r = &self->recur;
    icalrecurrencetype_frequency f = r->freq;
    self->seconds = ~0ull;
    self->minutes = ~0ull;
    self->hours = ~0u;
    self->mdays = ~0u;
    self->months = 0xFFFF;
    self->wdays = 0xFF;
    memset (self->ydays, 0xFF, sizeof self->ydays);
    if (f > ICAL_DAILY_RECURRENCE)
        return; //  WEEKLY and longer: libical alone
    if (s_has (r->by_month)) {
        self->months = 0;
        for (int i = 0; i < ICAL_BY_MONTH_SIZE && r->by_month[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            self->months |= (uint16_t) (1u << icalrecurrencetype_month_month (r->by_month[i]));
    }
    if (s_has (r->by_month_day)) {
        self->mdays = 0;
        for (int i = 0;
             i < ICAL_BY_MONTHDAY_SIZE && r->by_month_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            self->mdays |= 1u << r->by_month_day[i]; //  positive: s_check_combination
    }
    if (s_has (r->by_day)) {
        self->wdays = 0;
        for (int i = 0; i < ICAL_BY_DAY_SIZE && r->by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            self->wdays |=
                (uint8_t) (1u << (icalrecurrencetype_day_day_of_week (r->by_day[i]) - 1));
    }
    if (s_has (r->by_year_day)) {
        memset (self->ydays, 0, sizeof self->ydays);
        for (int i = 0; i < ICAL_BY_YEARDAY_SIZE && r->by_year_day[i] != ICAL_RECURRENCE_ARRAY_MAX;
             i++)
            self->ydays[r->by_year_day[i] / 64] |= 1ull << (r->by_year_day[i] % 64);
    }
    //  BYHOUR, BYMINUTE and BYSECOND limit SECONDLY, MINUTELY and HOURLY
    //  rules to times of day (those finer than FREQ expand instead), and
    //  libical 3.0 gets such limits wrong: it starts the iterator at the
    //  first listed value, shifting the phase ("FREQ=MINUTELY;INTERVAL=7;
    //  BYHOUR=9" from midnight gives 09:00, 09:07, RFC 5545 09:06, 09:13),
    //  walks a limit of its own unit as a list, ignoring INTERVAL, and
    //  from a start outside the list goes back in time ("FREQ=HOURLY;
    //  BYHOUR=1,2,3;BYMINUTE=15,45" from 02:15 gives 02:15, 02:45, 02:15).
    //  So libical never sees them: we apply them, to chunks and times.
    bool hour_limit = f <= ICAL_HOURLY_RECURRENCE, minute_limit = f <= ICAL_MINUTELY_RECURRENCE;
    if (s_has (r->by_hour) && hour_limit) {
        self->hours = 0;
        for (int i = 0; i < ICAL_BY_HOUR_SIZE && r->by_hour[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            self->hours |= 1u << r->by_hour[i];
        self->recur.by_hour[0] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    if (s_has (r->by_minute) && minute_limit) {
        self->minutes = 0;
        for (int i = 0; i < ICAL_BY_MINUTE_SIZE && r->by_minute[i] != ICAL_RECURRENCE_ARRAY_MAX;
             i++)
            self->minutes |= 1ull << r->by_minute[i];
        self->recur.by_minute[0] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    if (s_has (r->by_second) && f == ICAL_SECONDLY_RECURRENCE) {
        self->seconds = 0;
        for (int i = 0; i < ICAL_BY_SECOND_SIZE && r->by_second[i] != ICAL_RECURRENCE_ARRAY_MAX;
             i++)
            self->seconds |= 1ull << r->by_second[i];
        self->recur.by_second[0] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    static const int64_t units[] = {[ICAL_SECONDLY_RECURRENCE] = 1,
                                    [ICAL_MINUTELY_RECURRENCE] = 60,
                                    [ICAL_HOURLY_RECURRENCE] = 3600,
                                    [ICAL_DAILY_RECURRENCE] = 86400};
    static const int64_t chunks[] = {[ICAL_SECONDLY_RECURRENCE] = 60,
                                     [ICAL_MINUTELY_RECURRENCE] = 3600,
                                     [ICAL_HOURLY_RECURRENCE] = 86400,
                                     [ICAL_DAILY_RECURRENCE] = 86400};
    self->unit = units[f];
    self->chunk = chunks[f];
    self->period = self->unit * r->interval;
    //  A DAILY rule without day limits skips nothing: 128 days per iterator
    static const uint64_t every_yday[6] = {~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull};
    if (f == ICAL_DAILY_RECURRENCE && self->months == 0xFFFF && self->mdays == ~0u &&
        self->wdays == 0xFF && memcmp (self->ydays, every_yday, sizeof every_yday) == 0)
        self->chunk = 128 * 86400;
}

static int s_count (const short *array, int size) {
    int n = 0;
    while (n < size && array[n] != ICAL_RECURRENCE_ARRAY_MAX)
        n++;
    return n;
}

//  The most occurrences one period of a MONTHLY or YEARLY rule can have:
//  days (each BYxxx day part can only narrow them) times the times of day
static int64_t s_set_most (const struct icalrecurrencetype *r) {
    int months = s_has (r->by_month) ? s_count (r->by_month, ICAL_BY_MONTH_SIZE) : 12;
    bool yearly = r->freq == ICAL_YEARLY_RECURRENCE;
    int64_t days = yearly ? 366 : 31;
    if (yearly && s_has (r->by_month) && 31 * months < days)
        days = 31 * months;
    //  no part that picks days: DTSTART's day alone, in each month listed
    if (!s_has (r->by_month_day) && !s_has (r->by_year_day) && !s_has (r->by_week_no) &&
        !s_has (r->by_day))
        days = yearly && s_has (r->by_month) ? months : 1;
    if (s_has (r->by_month_day)) {
        int64_t most =
            (int64_t) s_count (r->by_month_day, ICAL_BY_MONTHDAY_SIZE) * (yearly ? months : 1);
        days = most < days ? most : days;
    }
    if (s_has (r->by_year_day) && s_count (r->by_year_day, ICAL_BY_YEARDAY_SIZE) < days)
        days = s_count (r->by_year_day, ICAL_BY_YEARDAY_SIZE);
    if (s_has (r->by_week_no) && 7 * s_count (r->by_week_no, ICAL_BY_WEEKNO_SIZE) < days)
        days = 7 * s_count (r->by_week_no, ICAL_BY_WEEKNO_SIZE);
    if (s_has (r->by_day)) {
        int64_t most = 0, per = !yearly ? 5 : s_has (r->by_month) ? 5 * months : 53;
        for (int i = 0; i < ICAL_BY_DAY_SIZE && r->by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            most += icalrecurrencetype_day_position (r->by_day[i]) ? (yearly ? months : 1) : per;
        days = most < days ? most : days;
    }
    int64_t times = 1;
    if (s_has (r->by_hour))
        times *= s_count (r->by_hour, ICAL_BY_HOUR_SIZE);
    if (s_has (r->by_minute))
        times *= s_count (r->by_minute, ICAL_BY_MINUTE_SIZE);
    if (s_has (r->by_second))
        times *= s_count (r->by_second, ICAL_BY_SECOND_SIZE);
    return days * times;
}

//  True when the rule can never occur: no month it recurs in has a day its
//  BYMONTHDAY (or, MONTHLY and YEARLY alone, DTSTART's day) names, or no
//  month has the nth weekday its BYDAY asks for, or BYSETPOS asks for more
//  than a period can hold. For MONTHLY and YEARLY libical 3.0 would look
//  for one until the year 2582, up to a second in one call (even in
//  icalrecur_iterator_new) that no budget can stop; shorter rules get a
//  clear error too.
static bool s_never (const bk_rrule_t *self) {
    const struct icalrecurrencetype *r = &self->recur;
    bool long_freq = r->freq >= ICAL_MONTHLY_RECURRENCE;
    //  BYSETPOS past the most a period's set can hold
    bool position = !s_has (r->by_set_pos) || !long_freq;
    int64_t set = long_freq ? s_set_most (r) : 0;
    for (int i = 0; i < ICAL_BY_SETPOS_SIZE && r->by_set_pos[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
        position |= abs (r->by_set_pos[i]) <= set;
    if (!position)
        return true;
    if (s_has (r->by_year_day) || s_has (r->by_week_no) || (!long_freq && !s_has (r->by_month_day)))
        return false;
    struct tm tm;
    bk_zone_civil_split (self->start, &tm);
    uint16_t months = 0x1FFE; //  the months it recurs in (bits 1-12)
    if (r->freq == ICAL_MONTHLY_RECURRENCE) {
        months = 0;
        for (int64_t k = 0; k < 12; k++)
            months |= (uint16_t) (1u << ((tm.tm_mon + k * r->interval) % 12 + 1));
    }
    if (s_has (r->by_month)) {
        uint16_t listed = 0;
        for (int i = 0; i < ICAL_BY_MONTH_SIZE && r->by_month[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            listed |= (uint16_t) (1u << icalrecurrencetype_month_month (r->by_month[i]));
        months &= listed;
    }
    static const int longest[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool day = !s_has (r->by_month_day) && (s_has (r->by_day) || !long_freq);
    for (int m = 1; m <= 12 && !day; m++) {
        if (!(months >> m & 1))
            continue;
        if (!s_has (r->by_month_day))
            day = tm.tm_mday <= longest[m];
        for (int i = 0;
             i < ICAL_BY_MONTHDAY_SIZE && r->by_month_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            day |= abs (r->by_month_day[i]) <= longest[m];
    }
    bool weekday = !s_has (r->by_day);
    int most = r->freq == ICAL_YEARLY_RECURRENCE && !s_has (r->by_month) ? 53 : 5;
    for (int i = 0; i < ICAL_BY_DAY_SIZE && r->by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
        weekday |= abs (icalrecurrencetype_day_position (r->by_day[i])) <= most;
    return !day || !weekday;
}

int bk_rrule_parse (const char *text, const bk_zone_t *zone, int64_t anchor_utc_s,
                    bk_rrule_t **rule_p, char *errbuf) {
    assert (rule_p && errbuf);
    *rule_p = NULL;
    if (!text || !*text || strlen (text) > BK_RRULE_MAX_TEXT) {
        snprintf (errbuf, BK_RRULE_ERRLEN, text && *text ? "rule is too long" : "rule is empty");
        return -1;
    }
    bk_rrule_t *self = calloc (1, sizeof *self);
    assert (self);
    self->zone = zone ? zone : bk_zone_load ("UTC");
    char copy[BK_RRULE_MAX_TEXT + 1];
    snprintf (copy, sizeof copy, "%s", text);
    const char *rule = NULL;
    bool have_start = false;
    int rc = -1;
    char *save = NULL;
    for (char *word = strtok_r (copy, " \t\r\n", &save); word;
         word = strtok_r (NULL, " \t\r\n", &save)) {
        if (strncasecmp (word, "DTSTART", 7) == 0 && (word[7] == ':' || word[7] == ';')) {
            if (have_start) {
                snprintf (errbuf, BK_RRULE_ERRLEN, "only one DTSTART is allowed");
                goto out;
            }
            if (s_parse_dtstart (self, word, errbuf))
                goto out;
            have_start = true;
            continue;
        }
        const char *body = strncasecmp (word, "RRULE:", 6) == 0 ? word + 6 : word;
        const char *colon = strchr (word, ':'), *eq = strchr (word, '=');
        if (body == word && colon && (!eq || colon < eq)) {
            int len = (int) (colon - word);
            snprintf (errbuf, BK_RRULE_ERRLEN,
                      "unsupported property '%.*s' (only DTSTART and RRULE are)",
                      len > 40 ? 40 : len, word);
            goto out;
        }
        if (body == word && !eq) {
            snprintf (errbuf, BK_RRULE_ERRLEN,
                      "unsupported line '%.40s' (only DTSTART and RRULE are)", word);
            goto out;
        }
        if (rule) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "only one RRULE is allowed");
            goto out;
        }
        rule = body;
    }
    if (!rule) {
        snprintf (errbuf, BK_RRULE_ERRLEN, "RRULE is required");
        goto out;
    }
    if (s_check_parts (rule, errbuf))
        goto out;
    icalerror_clear_errno ();
    self->recur = icalrecurrencetype_from_string (rule);
    if (self->recur.freq == ICAL_NO_RECURRENCE) {
        snprintf (errbuf, BK_RRULE_ERRLEN, "cannot parse '%.80s'", rule);
        goto out;
    }
    if (s_check_combination (&self->recur, errbuf))
        goto out;
    if (!have_start) {
        self->start = bk_zone_utc_to_civil (self->zone, anchor_utc_s);
        struct tm tm;
        bk_zone_civil_split (self->start, &tm);
        if (tm.tm_year + 1900 < S_MIN_YEAR || tm.tm_year + 1900 > S_MAX_YEAR) {
            snprintf (errbuf, BK_RRULE_ERRLEN, "the start is outside the years %d-%d", S_MIN_YEAR,
                      S_MAX_YEAR);
            goto out;
        }
    }
    //  UNTIL and COUNT are ours to apply (see the top of this file)
    struct icaltimetype until = self->recur.until;
    if (!icaltime_is_null_time (until)) {
        if (until.is_date) {
            self->until_local = true;
            self->until = bk_zone_civil (until.year, until.month, until.day, 23, 59, 59);
        } else if (icaltime_is_utc (until)) {
            self->until_utc = true;
            self->until = s_civil (until); //  fields of a UTC time: UTC seconds
        } else {
            self->until_local = true;
            self->until = s_civil (until);
        }
    }
    self->count = self->recur.count;
    self->recur.until = icaltime_null_time ();
    self->recur.count = 0;
    bool plain = !s_has (self->recur.by_second) && !s_has (self->recur.by_minute) &&
                 !s_has (self->recur.by_hour) && !s_has (self->recur.by_day) &&
                 !s_has (self->recur.by_month_day) && !s_has (self->recur.by_year_day) &&
                 !s_has (self->recur.by_week_no) && !s_has (self->recur.by_month) &&
                 !s_has (self->recur.by_set_pos);
    s_set_limits (self);
    //  Without BYxxx parts a rule up to WEEKLY recurs exactly every period,
    //  so its COUNT is a local UNTIL and needs no walk from the start
    if (self->count && plain && self->recur.freq <= ICAL_WEEKLY_RECURRENCE) {
        int64_t period = (self->unit ? self->unit : 7 * 86400) * self->recur.interval;
        int64_t horizon = bk_zone_civil (S_MAX_YEAR + 1, 1, 1, 0, 0, 0);
        if (self->count - 1 <= (horizon - self->start) / period) {
            self->until_local = true;
            self->until = self->start + (self->count - 1) * period;
        }
        self->count = 0;
    }
    //  libical checks the rest (and finds rules that can never occur)
    icalrecur_iterator *it =
        s_never (self) ? NULL : icalrecur_iterator_new (self->recur, s_ical (self->start));
    if (!it) {
        snprintf (errbuf, BK_RRULE_ERRLEN,
                  "the rule never occurs or combines parts RFC 5545 forbids");
        goto out;
    }
    icalrecur_iterator_free (it);
    s_seek (self, self->start, 0, INT64_MIN);
    self->kept = (bk_rrule_cursor_t){self->start, 0, INT64_MIN};
    rc = 0;
out:
    if (rc == 0)
        *rule_p = self;
    else
        free (self);
    return rc;
}

void bk_rrule_destroy (bk_rrule_t **self_p) {
    assert (self_p);
    if (*self_p) {
        s_close (*self_p);
        free (*self_p);
        *self_p = NULL;
    }
}

int64_t bk_rrule_start (const bk_rrule_t *self) {
    assert (self);
    return self->start;
}

const bk_zone_t *bk_rrule_zone (const bk_rrule_t *self) {
    assert (self);
    return self->zone;
}

//  --------------------------------------------------------------------------
//  Next occurrence
//
//  A search pulls occurrences in local time order from the rule's cursor,
//  which stays between calls: a preview or a run of fires goes on where the
//  last search stopped instead of starting over, and a COUNT rule is
//  counted once. The cursor has consumed every occurrence before pos (seen
//  of them) and all of those resolve to bound or earlier, so it serves any
//  search after bound. A search for an earlier instant starts over.

//  The work units a search spends, about 0.1 microsecond each (libical
//  3.0.16 on a 2-core x86-64: 2.5-8 microseconds a step, 4.5-16 to make an
//  iterator; our own look at a chunk takes 0.03)
#define S_WORK_VISIT 1      //  a chunk looked at and maybe skipped
#define S_WORK_NEW   45     //  icalrecur_iterator_new
#define S_WORK_STEP  25     //  icalrecur_iterator_next
#define S_SLOW_NS    200000 //  a libical call using more CPU is charged its time

//  Charges a libical call begun at since (this thread's CPU time): its
//  units, or, if it took over S_SLOW_NS (libical looks through periods that
//  cannot match inside one call: years of them for a rare MONTHLY rule),
//  the time it took, in units. CPU time, so being preempted costs nothing.
static void s_charge (int64_t *work, int64_t units, const struct timespec *since) {
    struct timespec now;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &now);
    int64_t ns =
        (int64_t) (now.tv_sec - since->tv_sec) * 1000000000 + (now.tv_nsec - since->tv_nsec);
    *work -= ns > S_SLOW_NS ? ns / 100 : units;
}

static void s_close (bk_rrule_t *self) {
    if (self->it)
        icalrecur_iterator_free (self->it);
    self->it = NULL;
}

//  Moves the cursor to local time pos, with seen occurrences before it,
//  all at or before the instant bound
static void s_seek (bk_rrule_t *self, int64_t pos, int64_t seen, int64_t bound) {
    s_close (self);
    self->pos = pos;
    self->seen = seen;
    self->bound = bound;
    self->done = false;
    if (self->unit)
        self->chunk_at = s_floordiv (pos, self->chunk) * self->chunk;
}

//  The occurrence at local time civil, taken: returns civil, or -1 when
//  COUNT or a local UNTIL ends the rule there
static int64_t s_take (bk_rrule_t *self, int64_t civil) {
    if ((self->count && self->seen >= self->count) || (self->until_local && civil > self->until)) {
        s_close (self);
        self->done = true;
        return -1;
    }
    self->seen++;
    self->pos = civil + 1;
    return civil;
}

//  The start of the next chunk at or after c that the limits allow, or c
//  (a chunk is a minute, an hour or a day, or 128 days for a DAILY rule
//  without day limits: limits finer than it are checked on each time)
static int64_t s_chunk_allowed (const bk_rrule_t *self, int64_t c) {
    struct tm tm;
    bk_zone_civil_split (c, &tm);
    int64_t day = s_floordiv (c, 86400) * 86400;
    int yday = tm.tm_yday + 1;
    if (!(self->months >> (tm.tm_mon + 1) & 1)) //  to the 1st of the next month
        return day + 86400 * (int64_t) (bk_zone_month_days (tm.tm_year + 1900, tm.tm_mon + 1) -
                                        tm.tm_mday + 1);
    if (!(self->mdays >> tm.tm_mday & 1)) { //  to the next day of the month allowed
        uint32_t later = self->mdays & (~0u << tm.tm_mday);
        int next = later ? __builtin_ctz (later) : 32;
        int last = bk_zone_month_days (tm.tm_year + 1900, tm.tm_mon + 1);
        return day + 86400 * (int64_t) ((next <= last ? next : last + 1) - tm.tm_mday);
    }
    if (!(self->wdays >> tm.tm_wday & 1) || !(self->ydays[yday / 64] >> (yday % 64) & 1))
        return day + 86400;
    if (self->chunk <= 3600 && !(self->hours >> tm.tm_hour & 1)) {
        uint32_t later = self->hours & (~0u << tm.tm_hour);
        return later ? day + 3600 * __builtin_ctz (later) : day + 86400;
    }
    if (self->chunk <= 60 && !(self->minutes >> tm.tm_min & 1)) {
        int64_t hour = day + 3600 * tm.tm_hour;
        uint64_t later = self->minutes & (~0ull << tm.tm_min) & ((1ull << 60) - 1);
        return later ? hour + 60 * __builtin_ctzll (later) : hour + 3600;
    }
    return c;
}

//  SECONDLY .. DAILY: see the top of this file. Returns the next occurrence
//  (local), -1 when there is none, or BK_RRULE_OVER when *work runs out.
static int64_t s_pull_chunked (bk_rrule_t *self, int64_t *work) {
    int64_t base = s_floordiv (self->start, self->unit) * self->unit; //  period 0 starts here
    int64_t limit = bk_zone_civil (S_MAX_YEAR + 1, 1, 1, 0, 0, 0);
    for (;;) {
        if (*work <= 0)
            return BK_RRULE_OVER;
        if (!self->it) { //  find the next chunk to expand
            int64_t c = self->chunk_at;
            *work -= S_WORK_VISIT;
            if (c >= limit || (self->until_local && c > self->until) ||
                (self->until_utc && bk_zone_civil_to_utc (self->zone, c) > self->until))
                break;
            //  The first period starting in or after this chunk
            int64_t k = c > base ? s_floordiv (c - base + self->period - 1, self->period) : 0;
            int64_t period_start = base + k * self->period;
            if (period_start >= c + self->chunk) {
                self->chunk_at = s_floordiv (period_start, self->chunk) * self->chunk;
                continue;
            }
            int64_t allowed = s_chunk_allowed (self, c);
            if (allowed != c) {
                self->chunk_at = allowed;
                continue;
            }
            //  Expand this chunk from a start moved forward by whole periods,
            //  at least one period before the chunk or the cursor in it, so
            //  that a moved start, which libical returns first, rule or no
            //  rule, is before the cursor and skipped
            int64_t skip_to = self->pos > c ? self->pos : c;
            int64_t whole = skip_to > base ? s_floordiv (skip_to - base, self->period) - 1 : 0;
            struct icalrecurrencetype recur = self->recur;
            recur.until = s_ical (c + self->chunk - 1);
            self->it = icalrecur_iterator_new (
                recur, s_ical (self->start + (whole > 0 ? whole : 0) * self->period));
            *work -= S_WORK_NEW;
            if (!self->it)
                break;
            continue;
        }
        struct icaltimetype t = icalrecur_iterator_next (self->it);
        *work -= S_WORK_STEP; //  no slow calls: UNTIL at the chunk's end stops libical
        int64_t civil = icaltime_is_null_time (t) ? INT64_MAX : s_civil (t);
        if (civil >= self->chunk_at + self->chunk) { //  this chunk is done
            s_close (self);
            self->chunk_at += self->chunk;
            continue;
        }
        if (civil < self->pos || !(self->hours >> t.hour & 1) || !(self->minutes >> t.minute & 1) ||
            !(self->seconds >> t.second & 1))
            continue; //  taken already, or a time-of-day limit excludes it
        return s_take (self, civil);
    }
    s_close (self);
    self->done = true;
    return -1;
}

//  WEEKLY .. YEARLY: one iterator from the start, jumped to the cursor
static int64_t s_pull_walk (bk_rrule_t *self, int64_t *work) {
    for (;;) {
        if (*work <= 0)
            return BK_RRULE_OVER;
        struct timespec since;
        clock_gettime (CLOCK_THREAD_CPUTIME_ID, &since);
        if (!self->it) {
            self->it = icalrecur_iterator_new (self->recur, s_ical (self->start));
            if (self->it && self->pos > self->start &&
                !icalrecur_iterator_set_start (self->it, s_ical (self->pos))) {
                icalrecur_iterator_free (self->it); //  refused: walk from the start
                self->it = icalrecur_iterator_new (self->recur, s_ical (self->start));
            }
            s_charge (work, S_WORK_NEW, &since);
            if (!self->it)
                break;
            continue;
        }
        struct icaltimetype t = icalrecur_iterator_next (self->it);
        s_charge (work, S_WORK_STEP, &since);
        if (icaltime_is_null_time (t))
            break;
        int64_t civil = s_civil (t);
        if (civil >= self->pos)
            return s_take (self, civil);
    }
    s_close (self);
    self->done = true;
    return -1;
}

int64_t bk_rrule_next (bk_rrule_t *self, int64_t after_utc_s, int64_t *work) {
    assert (self && work);
    //  Resolution never goes backwards (zone.h), so occurrences at or
    //  before the local time of `after` cannot fire after it
    if (after_utc_s > bk_zone_civil (S_MAX_YEAR + 1, 1, 1, 0, 0, 0))
        return -1; //  no occurrences that late (and libical stops at 2582)
    int64_t target = bk_zone_utc_to_civil (self->zone, after_utc_s);
    if (target < self->start)
        target = self->start;
    if (self->bound > after_utc_s) //  the cursor went past `after`: start over
        s_seek (self, self->count ? self->start : target, 0, INT64_MIN);
    else if (!self->count && target > self->pos) //  nothing to count: jump
        s_seek (self, target, self->seen, self->bound);
    int64_t next = -1;
    while (!self->done) {
        int64_t civil = self->unit ? s_pull_chunked (self, work) : s_pull_walk (self, work);
        if (civil == BK_RRULE_OVER) {
            next = BK_RRULE_OVER;
            break;
        }
        if (civil < 0)
            break;
        int64_t utc = bk_zone_civil_to_utc (self->zone, civil);
        if (self->until_utc && utc > self->until) {
            s_close (self);
            self->done = true;
            break;
        }
        if (utc > after_utc_s) {
            //  kept without this answer: it is still ahead of whoever
            //  stores the cursor now and searches again before it comes
            self->kept = (bk_rrule_cursor_t){civil, self->seen - 1, self->bound};
            self->bound = utc;
            return utc;
        }
        self->bound = utc;
    }
    self->kept = (bk_rrule_cursor_t){self->pos, self->seen, self->bound};
    return next;
}

void bk_rrule_cursor (const bk_rrule_t *self, bk_rrule_cursor_t *cursor) {
    assert (self && cursor);
    *cursor = self->kept;
}

void bk_rrule_resume (bk_rrule_t *self, const bk_rrule_cursor_t *cursor) {
    assert (self && cursor);
    if (cursor->pos >= self->start && cursor->seen >= 0 &&
        (!self->count || cursor->seen <= self->count)) {
        s_seek (self, cursor->pos, cursor->seen, cursor->bound);
        self->kept = *cursor;
    }
}
