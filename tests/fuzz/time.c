/*  time.c - fuzzes ISO 8601 timestamps (proto/runtime/aq_time.c)

    Input: the text of a timestamp, as delayUntil and the schedule bodies
    give it. What aq_time_parse accepts must print back (aq_time_format)
    as a timestamp that parses to the same instant.
*/
#include "aq_time.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    char *text = fuzz_strndup (data, size);
    int64_t ms;
    if (aq_time_parse (text, &ms) == 0) {
        char printed[32];
        aq_time_format (ms, printed);
        int64_t again = -1;
        if (aq_time_parse (printed, &again) != 0 || again != ms) {
            fprintf (stderr, "'%s' -> %lld -> '%s'\n", text, (long long) ms, printed);
            FUZZ_CHECK (false);
        }
    }
    free (text);
    return 0;
}
