/*  aq_uuid.h - time-ordered UUIDs (version 7) as keys and as text */
#ifndef AQ_UUID_H
#define AQ_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AQ_UUID_SIZE 16 //  raw bytes
#define AQ_UUID_TEXT 37 //  36 characters and a NUL

//  A new UUIDv7: 48-bit ms timestamp, then random bits (libsodium's RNG).
//  Raw UUIDs sort by creation time, which keeps LMDB inserts append-like;
//  within one thread they strictly increase, even within a millisecond.
void aq_uuid_new (uint8_t uuid[AQ_UUID_SIZE]);

//  n random bytes from the same per-thread pool (kernel randomness drawn
//  4 KiB at a time): for ids and one-time tokens on hot paths.
void aq_uuid_random (uint8_t *out, size_t n);

//  "550e8400-e29b-41d4-a716-446655440000" into text; returns text.
char *aq_uuid_format (const uint8_t uuid[AQ_UUID_SIZE], char *text);

//  Parses the canonical 36-character form (any case). 0, or -1 if invalid.
int aq_uuid_parse (const char *text, uint8_t uuid[AQ_UUID_SIZE]);

void aq_uuid_test (bool verbose);

#endif
