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

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_TEXT 2048 //  longest rule text we accept
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

static struct icaltimetype s_ical (int64_t civil) {
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

static int64_t s_civil (struct icaltimetype t) {
    return bk_zone_civil (t.year, t.month, t.day, t.hour, t.minute, t.second);
}

//  --------------------------------------------------------------------------
//  Parsing

static const char *s_parts[] = {"FREQ",     "UNTIL",   "COUNT",    "INTERVAL",   "BYSECOND",
                                "BYMINUTE", "BYHOUR",  "BYDAY",    "BYMONTHDAY", "BYYEARDAY",
                                "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST",       NULL};

static bool s_has (const short *array) {
    return array[0] != ICAL_RECURRENCE_ARRAY_MAX;
}

static bool s_number (const char *text, long lo, long hi) {
    if (!*text || strlen (text) > 10)
        return false;
    for (const char *p = text; *p; p++)
        if (!isdigit ((unsigned char) *p))
            return false;
    long v = atol (text);
    return v >= lo && v <= hi;
}

//  Checks the rule's parts by name before libical sees them, so errors
//  can say which part is wrong; returns 0 or -1
static int s_check_parts (const char *rule, char *errbuf) {
    char copy[S_MAX_TEXT + 1];
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
        char probe[S_MAX_TEXT + 32];
        if (strcmp (s_parts[i], "FREQ") == 0)
            snprintf (probe, sizeof probe, "FREQ=%s", value);
        else
            snprintf (probe, sizeof probe, "FREQ=YEARLY;%s=%s", s_parts[i], value);
        struct icalrecurrencetype r = icalrecurrencetype_from_string (probe);
        if (r.freq == ICAL_NO_RECURRENCE) {
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
    if (!text || !*text || strlen (text) > S_MAX_TEXT) {
        snprintf (errbuf, BK_RRULE_ERRLEN, text && *text ? "rule is too long" : "rule is empty");
        return -1;
    }
    bk_rrule_t *self = calloc (1, sizeof *self);
    assert (self);
    self->zone = zone ? zone : bk_zone_load ("UTC");
    char copy[S_MAX_TEXT + 1];
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
    char huge[S_MAX_TEXT + 10];
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
