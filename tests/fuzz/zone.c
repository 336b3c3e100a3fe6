/*  zone.c - fuzzes time zone names and TZif files (broker/sched/zone.c)

    Input: a TZif file when it starts with "TZif", else a zone name as a
    schedule gives it. The module is compiled into the harness (#include
    of its .c) so that its TZif parser can read bytes that are not in
    /usr/share/zoneinfo. A name loads only as that zone; a TZif file is
    refused or gives a zone whose transitions come after the instant
    asked, whose local time resolves back to an instant at or before the
    one it came from, and never before the local time asked.
*/
#include "fuzz.h"

#include "../../broker/sched/zone.c" //  the module, not this file

static const int64_t s_times[] = {
    -62135596800, //  0001-01-01, the earliest a schedule searches from
    -2208988800,  //  1900
    -1,           0, 1000000000, 1700000000, 1710054000, 2147483647, 2147483648,
    4102444800,  //  2100
    16725225600, //  2500
    253402300799 //  9999-12-31T23:59:59
};

static void s_check_at (const bk_zone_t *zone, int64_t t) {
    int32_t off = bk_zone_offset_at (zone, t);
    FUZZ_CHECK (off >= -7 * 86400 && off <= 7 * 86400);
    bk_zone_isdst_at (zone, t);
    int64_t next = bk_zone_next_transition (zone, t);
    FUZZ_CHECK (next > t);
    int64_t civil = bk_zone_utc_to_civil (zone, t);
    int64_t back = bk_zone_civil_to_utc (zone, civil);
    if (back > t || bk_zone_utc_to_civil (zone, back) < civil) {
        fprintf (stderr, "%s: %lld is local %lld, which resolves to %lld (local %lld)\n",
                 bk_zone_name (zone), (long long) t, (long long) civil, (long long) back,
                 (long long) bk_zone_utc_to_civil (zone, back));
        FUZZ_CHECK (false);
    }
    struct tm local;
    bk_zone_to_local (zone, t, &local);
    int64_t again;
    FUZZ_CHECK (bk_zone_local_to_utc (zone, &local, &again) == 0 && again == back);
}

static void s_check (const bk_zone_t *zone) {
    for (size_t i = 0; i < sizeof s_times / sizeof *s_times; i++)
        s_check_at (zone, s_times[i]);
    for (size_t i = 0; i < zone->ntrans && i < 64; i++) {
        if (zone->trans[i] > s_times[0] && zone->trans[i] < s_times[11]) {
            s_check_at (zone, zone->trans[i] - 1);
            s_check_at (zone, zone->trans[i]);
        }
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    if (size >= 4 && memcmp (data, "TZif", 4) == 0) {
        bk_zone_t *zone = calloc (1, sizeof *zone);
        FUZZ_CHECK (zone);
        zone->name = strdup ("fuzz");
        if (s_parse_tzif (zone, data, size) == 0) {
            FUZZ_CHECK (zone->ntypes >= 1);
            s_check (zone);
        }
        s_zone_free (zone);
        return 0;
    }
    char *name = fuzz_strndup (data, size);
    const bk_zone_t *zone = bk_zone_load (name);
    FUZZ_CHECK (bk_zone_valid (name) == (zone != NULL));
    if (zone) {
        FUZZ_CHECK (strcmp (bk_zone_name (zone), name) == 0 && !strstr (name, ".."));
        s_check (zone);
    }
    free (name);
    return 0;
}
