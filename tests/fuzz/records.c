/*  records.c - fuzzes the team, key, token, schedule and run store records

    Input: a selector byte (0 mod 5: team, 1: API key, 2: token, broker/
    keys.c and tokens.c; 3: scheduled task, 4: its run, broker/sched/
    sched_task.c and sched_run.c) and the record's bytes. A decoder refuses what is not such a
   record, or fills one whose encoding decodes to the same record (the same bytes once encoded
   again) and whose public shape is one well-formed msgpack map.
*/
#include "aq_msg.h"
#include "fuzz.h"
#include "keys.h"
#include "sched_run.h"
#include "sched_task.h"
#include "tokens.h"

//  Checks w holds one msgpack map and empties it.
static void s_map (aq_writer_t *w) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    aq_node_t node;
    FUZZ_CHECK (data && aq_msg_parse (data, size, &node) == 0 && node.type == AQ_NODE_MAP);
    aq_writer_reset (w);
}

//  Checks that a and b hold the same bytes and empties both.
static void s_same (aq_writer_t *a, aq_writer_t *b) {
    size_t a_size, b_size;
    const uint8_t *a_data = aq_writer_data (a, &a_size);
    const uint8_t *b_data = aq_writer_data (b, &b_size);
    FUZZ_CHECK (a_data && b_data && a_size == b_size && memcmp (a_data, b_data, a_size) == 0);
    aq_writer_reset (a);
    aq_writer_reset (b);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    int which = (int) (fuzz_take (&data, &size, 1) % 5);
    aq_writer_t w, again;
    aq_writer_init (&w);
    aq_writer_init (&again);
    size_t encoded_size;
    const uint8_t *encoded;
    if (which == 0) {
        bk_team_t team, copy;
        if (bk_team_decode (data, size, &team) == 0) {
            FUZZ_CHECK (memchr (team.name, 0, sizeof team.name));
            bk_team_encode (&team, &w);
            encoded = aq_writer_data (&w, &encoded_size);
            FUZZ_CHECK (encoded && bk_team_decode (encoded, encoded_size, &copy) == 0);
            bk_team_encode (&copy, &again);
            s_same (&w, &again);
            bk_team_write_public (&team, true, &w);
            s_map (&w);
        }
    } else if (which == 1) {
        bk_key_t key, copy;
        if (bk_key_decode (data, size, &key) == 0) {
            FUZZ_CHECK (memchr (key.id, 0, sizeof key.id));
            bk_key_encode (&key, &w);
            encoded = aq_writer_data (&w, &encoded_size);
            FUZZ_CHECK (encoded && bk_key_decode (encoded, encoded_size, &copy) == 0);
            bk_key_encode (&copy, &again);
            s_same (&w, &again);
            bk_key_write_public (&key, "team", NULL, &w);
            s_map (&w);
        }
    } else if (which == 3) {
        bk_sched_task_t *record = bk_sched_task_decode (data, size), *copy;
        if (record) {
            bk_sched_task_encode (record, &w);
            encoded = aq_writer_data (&w, &encoded_size);
            FUZZ_CHECK (encoded && (copy = bk_sched_task_decode (encoded, encoded_size)));
            bk_sched_task_encode (copy, &again);
            s_same (&w, &again);
            bk_sched_task_write_public (record, &w);
            s_map (&w);
            bk_sched_task_destroy (&copy);
            bk_sched_task_destroy (&record);
        }
    } else if (which == 4) {
        bk_sched_run_t *run = bk_sched_run_decode (data, size), *copy;
        if (run) {
            bk_sched_run_encode (run, &w);
            encoded = aq_writer_data (&w, &encoded_size);
            FUZZ_CHECK (encoded && (copy = bk_sched_run_decode (encoded, encoded_size)));
            bk_sched_run_encode (copy, &again);
            s_same (&w, &again);
            bk_sched_run_write_public (run, &w);
            s_map (&w);
            bk_sched_run_destroy (&copy);
            bk_sched_run_destroy (&run);
        }
    } else {
        bk_token_t token, copy;
        if (bk_token_decode (data, size, &token) == 0) {
            FUZZ_CHECK (memchr (token.id, 0, sizeof token.id));
            FUZZ_CHECK (memchr (token.name, 0, sizeof token.name));
            FUZZ_CHECK (!token.sealed ||
                        (token.sealed >= data && token.sealed + token.sealed_size <= data + size));
            bk_token_encode (&token, &w);
            encoded = aq_writer_data (&w, &encoded_size);
            FUZZ_CHECK (encoded && bk_token_decode (encoded, encoded_size, &copy) == 0);
            bk_token_encode (&copy, &again);
            s_same (&w, &again);
            bk_token_write_public (&token, &w);
            s_map (&w);
        }
    }
    aq_writer_release (&w);
    aq_writer_release (&again);
    return 0;
}
