/*  cron.c - fuzzes cron expressions and their fire times (broker/cron.c)

    Input: a schedule's cron expression. A refusal's message is UTF-8 when
    the expression is (it reaches the client in a msgpack string). An
    accepted expression's fire times, in zones with DST gaps and overlaps
    of an hour and of 30 minutes and odd offsets, come strictly after the
    instant asked, and are the earliest: searching again from one second
    before an answer gives the same answer.
*/
#include "cron.h"
#include "fuzz.h"
#include "zone.h"

static const char *const s_zones[] = {
    "UTC", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia", NULL};
static const int64_t s_starts[] = {1700000000, 1710054000, 1300000000, 4102444800};

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    char *text = fuzz_strndup (data, size);
    bk_cron_t cron;
    char errbuf[BK_CRON_ERRLEN];
    if (bk_cron_parse (text, &cron, errbuf) != 0) {
        FUZZ_CHECK (memchr (errbuf, 0, sizeof errbuf) && *errbuf);
        FUZZ_CHECK (!fuzz_utf8 (data, size) || fuzz_message_ok (errbuf));
        free (text);
        return 0;
    }
    //  one zone and start per input, all of them over the corpus
    size_t pick = 0;
    for (size_t i = 0; i < size; i++)
        pick = pick * 31 + data[i];
    const bk_zone_t *zone = bk_zone_load (s_zones[pick % 5]);
    FUZZ_CHECK (zone);
    int64_t at = s_starts[(pick / 5) % 4];
    for (int i = 0; i < 3; i++) {
        int64_t next = bk_cron_next (&cron, zone, at);
        if (next == -1)
            break;
        int64_t again = bk_cron_next (&cron, zone, next - 1);
        if (next <= at || again != next) {
            fprintf (stderr, "'%s' in %s: after %lld: %lld; after %lld: %lld\n", text,
                     bk_zone_name (zone), (long long) at, (long long) next, (long long) next - 1,
                     (long long) again);
            FUZZ_CHECK (false);
        }
        at = next;
    }
    free (text);
    return 0;
}
