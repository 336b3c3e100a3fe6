/*  aq_time.h - wall-clock milliseconds and ISO 8601 timestamps */
#ifndef AQ_TIME_H
#define AQ_TIME_H

#include <stdbool.h>
#include <stdint.h>

//  Milliseconds since the Unix epoch (CLOCK_REALTIME).
int64_t aq_time_now_ms (void);
//  Monotonic milliseconds, for intervals and deadlines.
int64_t aq_time_mono_ms (void);

//  Formats ms as "2024-01-15T10:30:00.000Z" into buf (>= 32 bytes); returns buf.
//  The years 0000 to 9999 have four digits, as aq_time_parse reads them.
char *aq_time_format (int64_t ms, char *buf);

//  Parses an ISO 8601 date or date-time: "2024-01-15", "2024-01-15T10:30:00Z",
//  fractions, "+02:00"/"-0530" offsets, a lower-case t/z. A date-time
//  without an offset is UTC. Returns 0 and sets *ms, or -1 if invalid
//  (including impossible dates such as February 30, and instants outside
//  0000-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z that an offset reaches).
int aq_time_parse (const char *text, int64_t *ms);

void aq_time_test (bool verbose);

#endif
