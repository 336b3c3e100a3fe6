/*  aq_time.c - wall-clock milliseconds and ISO 8601 timestamps */
#include "aq_time.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define S_MIN_MS -62167219200000LL //  0000-01-01T00:00:00.000Z
#define S_MAX_MS 253402300799999LL //  9999-12-31T23:59:59.999Z

int64_t aq_time_now_ms (void) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t aq_time_mono_ms (void) {
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *aq_time_format (int64_t ms, char *buf) {
    int64_t whole = ms / 1000;
    int milli = (int) (ms % 1000);
    if (milli < 0) //  floor: -1 ms is 999 ms into the second before the epoch
        whole--, milli += 1000;
    time_t secs = (time_t) whole;
    struct tm tm = {0};
    gmtime_r (&secs, &tm);
    //  not strftime's %Y, which gives "999" for the year 999; room for any
    //  int fields, then the 31 characters buf holds (24 for years 0-9999)
    char text[96];
    snprintf (text, sizeof text, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
              (long long) tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
              tm.tm_sec, milli);
    size_t n = strnlen (text, 31);
    memcpy (buf, text, n);
    buf[n] = '\0';
    return buf;
}

//  Reads exactly n digits; returns -1 when they are not there.
static int s_digits (const char **p, int n) {
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit ((unsigned char) (*p)[i]))
            return -1;
        value = value * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return value;
}

static int64_t s_days_from_civil (int y, int m, int d) {
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t) era * 146097 + doe - 719468;
}

static int s_month_days (int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int aq_time_parse (const char *text, int64_t *ms) {
    if (!text)
        return -1;
    const char *p = text;
    int year = s_digits (&p, 4);
    if (year < 0 || *p++ != '-')
        return -1;
    int month = s_digits (&p, 2);
    if (month < 1 || month > 12 || *p++ != '-')
        return -1;
    int day = s_digits (&p, 2);
    if (day < 1 || day > s_month_days (year, month))
        return -1;
    int hour = 0, minute = 0, second = 0, milli = 0, offset = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        hour = s_digits (&p, 2);
        if (hour < 0 || hour > 23 || *p++ != ':')
            return -1;
        minute = s_digits (&p, 2);
        if (minute < 0 || minute > 59)
            return -1;
        if (*p == ':') {
            p++;
            second = s_digits (&p, 2);
            if (second < 0 || second > 59)
                return -1;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit ((unsigned char) *p))
                    return -1;
                for (int scale = 100; isdigit ((unsigned char) *p); p++, scale /= 10)
                    milli += (*p - '0') * scale;
            }
        }
        if (*p == 'Z' || *p == 'z')
            p++;
        else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1;
            int oh = s_digits (&p, 2);
            if (oh < 0 || oh > 23)
                return -1;
            if (*p == ':')
                p++;
            int om = s_digits (&p, 2);
            if (om < 0 || om > 59)
                return -1;
            offset = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0')
        return -1;
    int64_t days = s_days_from_civil (year, month, day);
    int64_t at =
        ((days * 86400 + hour * 3600 + minute * 60 + second) - (int64_t) offset * 60) * 1000 +
        milli;
    //  An offset may carry a time past the four-digit years (9999-12-31T23:00-05:00)
    if (at < S_MIN_MS || at > S_MAX_MS)
        return -1;
    *ms = at;
    return 0;
}

void aq_time_test (bool verbose) {
    char buf[32];
    assert (strcmp (aq_time_format (0, buf), "1970-01-01T00:00:00.000Z") == 0);
    assert (strcmp (aq_time_format (1705314600123, buf), "2024-01-15T10:30:00.123Z") == 0);
    int64_t ms;
    assert (aq_time_parse ("2024-01-15T10:30:00.123Z", &ms) == 0 && ms == 1705314600123);
    assert (aq_time_parse ("2024-01-15T10:30:00Z", &ms) == 0 && ms == 1705314600000);
    assert (aq_time_parse ("2024-01-15T12:30:00+02:00", &ms) == 0 && ms == 1705314600000);
    assert (aq_time_parse ("2024-01-15T05:00-0530", &ms) == 0 && ms == 1705314600000);
    assert (aq_time_parse ("2024-01-15", &ms) == 0 && ms == 1705276800000);
    assert (aq_time_parse ("2024-02-29T00:00:00Z", &ms) == 0);
    const char *bad[] = {"",
                         "tomorrow",
                         "2023-02-29T00:00:00Z",
                         "2024-13-01",
                         "2024-01-15T24:00Z",
                         "2024-01-15T10:30:00Zjunk",
                         "2024-1-5",
                         "2024-01-15T10:30:00.Z",
                         NULL};
    for (int i = 0; bad[i]; i++)
        assert (aq_time_parse (bad[i], &ms) == -1);
    //  every instant parsed prints back as four-digit years (found by tests/fuzz/time.c)
    assert (aq_time_parse ("9999-12-31T23:59:59.999-23:59", &ms) == -1);
    assert (aq_time_parse ("0000-01-01T00:00:00+00:01", &ms) == -1);
    assert (aq_time_parse ("0000-01-01", &ms) == 0 && ms == S_MIN_MS);
    assert (strcmp (aq_time_format (ms, buf), "0000-01-01T00:00:00.000Z") == 0);
    assert (aq_time_parse ("0999-03-04T05:06:07.089Z", &ms) == 0);
    assert (strcmp (aq_time_format (ms, buf), "0999-03-04T05:06:07.089Z") == 0);
    assert (strcmp (aq_time_format (-1, buf), "1969-12-31T23:59:59.999Z") == 0);
    assert (aq_time_parse (NULL, &ms) == -1);
    int64_t now = aq_time_now_ms ();
    assert (aq_time_parse (aq_time_format (now, buf), &ms) == 0 && ms == now);
    if (verbose)
        printf ("aq_time: ok\n");
}
