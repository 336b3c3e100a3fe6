/*  aq_uuid.c - time-ordered UUIDs (version 7) as keys and as text */
#include "aq_uuid.h"
#include "aq_time.h"

#include <assert.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

//  Random bytes drawn from the kernel 4 KiB at a time: one getrandom()
//  per UUID was the broker's most frequent system call. (A process that
//  forks after drawing would repeat the pool in the child; none does.)
static __thread uint8_t s_pool[4096];
static __thread size_t s_pool_left;

void aq_uuid_random (uint8_t *out, size_t n) {
    while (n > 0) {
        if (s_pool_left == 0) {
            randombytes_buf (s_pool, sizeof s_pool);
            s_pool_left = sizeof s_pool;
        }
        size_t take = n < s_pool_left ? n : s_pool_left;
        uint8_t *from = s_pool + sizeof s_pool - s_pool_left;
        memcpy (out, from, take);
        sodium_memzero (from, take); //  never hand out the same bytes twice
        s_pool_left -= take, out += take, n -= take;
    }
}

void aq_uuid_new (uint8_t uuid[AQ_UUID_SIZE]) {
    uint64_t ms = (uint64_t) aq_time_now_ms ();
    for (int i = 0; i < 6; i++)
        uuid[i] = (uint8_t) (ms >> (40 - 8 * i));
    aq_uuid_random (uuid + 6, AQ_UUID_SIZE - 6);
    uuid[6] = (uint8_t) (0x70 | (uuid[6] & 0x0F)); //  version 7
    uuid[8] = (uint8_t) (0x80 | (uuid[8] & 0x3F)); //  RFC 4122 variant
    //  Monotonic per thread (RFC 9562 6.2, method 3): within a millisecond,
    //  or when the clock steps back, the next id is the last one plus one
    //  in its low 56 random bits, so ids sort in creation order.
    static __thread uint8_t last[AQ_UUID_SIZE];
    if (memcmp (uuid, last, AQ_UUID_SIZE) <= 0) {
        memcpy (uuid, last, AQ_UUID_SIZE);
        for (int i = AQ_UUID_SIZE - 1; i >= 9 && ++uuid[i] == 0; i--)
            ;
    }
    memcpy (last, uuid, AQ_UUID_SIZE);
}

char *aq_uuid_format (const uint8_t uuid[AQ_UUID_SIZE], char *text) {
    static const char hex[] = "0123456789abcdef";
    char *p = text;
    for (int i = 0; i < AQ_UUID_SIZE; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[uuid[i] >> 4];
        *p++ = hex[uuid[i] & 15];
    }
    *p = '\0';
    return text;
}

static int s_nibble (char c) {
    if (isdigit ((unsigned char) c))
        return c - '0';
    c = (char) tolower ((unsigned char) c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int aq_uuid_parse (const char *text, uint8_t uuid[AQ_UUID_SIZE]) {
    if (!text || strlen (text) != 36)
        return -1;
    const char *p = text;
    for (int i = 0; i < AQ_UUID_SIZE; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (*p++ != '-')
                return -1;
        }
        int hi = s_nibble (p[0]), lo = s_nibble (p[1]);
        if (hi < 0 || lo < 0)
            return -1;
        uuid[i] = (uint8_t) (hi << 4 | lo);
        p += 2;
    }
    return 0;
}

void aq_uuid_test (bool verbose) {
    uint8_t a[AQ_UUID_SIZE], b[AQ_UUID_SIZE], c[AQ_UUID_SIZE];
    char text[AQ_UUID_TEXT];
    aq_uuid_new (a);
    aq_uuid_format (a, text);
    assert (strlen (text) == 36 && text[14] == '7');
    memcpy (b, a, AQ_UUID_SIZE);
    for (int i = 0; i < 1000; i++) { //  across pool refills: increasing, so never a repeat
        aq_uuid_new (c);
        assert (memcmp (b, c, AQ_UUID_SIZE) < 0);
        memcpy (b, c, AQ_UUID_SIZE);
    }
    assert (aq_uuid_parse (text, b) == 0 && memcmp (a, b, AQ_UUID_SIZE) == 0);
    assert (aq_uuid_parse ("550E8400-E29B-41D4-A716-446655440000", c) == 0);
    assert (strcmp (aq_uuid_format (c, text), "550e8400-e29b-41d4-a716-446655440000") == 0);
    assert (aq_uuid_parse ("550e8400e29b-41d4-a716-4466554400000", c) == -1);
    assert (aq_uuid_parse ("550e8400-e29b-41d4-a716-44665544000g", c) == -1);
    assert (aq_uuid_parse ("", c) == -1 && aq_uuid_parse (NULL, c) == -1);
    if (verbose)
        printf ("aq_uuid: ok\n");
}
