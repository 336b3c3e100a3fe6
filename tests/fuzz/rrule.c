/*  rrule.c - fuzzes RFC 5545 recurrence rules (broker/rrule.c over libical)

    Input: a schedule's RRULE text (with DTSTART lines or not). A refusal's
    message is UTF-8 when the text is. An accepted rule's occurrences,
    each search with the work budget a schedule gets, come strictly after
    the instant asked; a rule parsed again and resumed from the stored
    cursor, and one parsed again without it, give the same next
    occurrence. A search that overruns its budget by far is a timeout.
*/
#include "fuzz.h"
#include "rrule.h"
#include "zone.h"

#define S_ANCHOR 1700000000 //  the schedule's creation, seconds
#define S_WORK   100000     //  what one fire or request may spend (about 10 ms)

static const char *const s_zones[] = {"UTC", "Europe/Chisinau", "America/New_York",
                                      "Australia/Lord_Howe", NULL};

//  The next occurrence after after, or BK_RRULE_OVER.
static int64_t s_next (bk_rrule_t *rule, int64_t after) {
    int64_t work = S_WORK;
    return bk_rrule_next (rule, after, &work);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    char *text = fuzz_strndup (data, size);
    size_t pick = 0;
    for (size_t i = 0; i < size; i++)
        pick = pick * 31 + data[i];
    const bk_zone_t *zone = bk_zone_load (s_zones[pick % 4]);
    FUZZ_CHECK (zone);
    bk_rrule_t *rule = NULL, *again = NULL;
    char errbuf[BK_RRULE_ERRLEN];
    if (bk_rrule_parse (text, zone, S_ANCHOR, &rule, errbuf) != 0) {
        FUZZ_CHECK (!rule && memchr (errbuf, 0, sizeof errbuf) && *errbuf);
        FUZZ_CHECK (!fuzz_utf8 (data, size) || fuzz_message_ok (errbuf));
        free (text);
        return 0;
    }
    FUZZ_CHECK (rule && bk_rrule_zone (rule));
    int64_t first = s_next (rule, S_ANCHOR);
    int64_t second = first >= 0 ? s_next (rule, first) : -1;
    FUZZ_CHECK (first == -1 || first == BK_RRULE_OVER || first > S_ANCHOR);
    FUZZ_CHECK (second == -1 || second == BK_RRULE_OVER || second > first);
    if (first >= 0 && second != BK_RRULE_OVER) {
        //  resumed from the cursor, and afresh: the same answer after first
        bk_rrule_cursor_t cursor;
        bk_rrule_cursor (rule, &cursor);
        FUZZ_CHECK (bk_rrule_parse (text, zone, S_ANCHOR, &again, errbuf) == 0);
        bk_rrule_resume (again, &cursor);
        int64_t resumed = s_next (again, first);
        bk_rrule_destroy (&again);
        FUZZ_CHECK (bk_rrule_parse (text, zone, S_ANCHOR, &again, errbuf) == 0);
        int64_t fresh = s_next (again, first);
        bk_rrule_destroy (&again);
        if ((resumed != BK_RRULE_OVER && resumed != second) ||
            (fresh != BK_RRULE_OVER && fresh != second)) {
            fprintf (stderr, "'%s' in %s: after %lld: %lld, resumed %lld, afresh %lld\n", text,
                     bk_zone_name (zone), (long long) first, (long long) second,
                     (long long) resumed, (long long) fresh);
            FUZZ_CHECK (false);
        }
    }
    bk_rrule_destroy (&rule);
    FUZZ_CHECK (!rule);
    free (text);
    return 0;
}
