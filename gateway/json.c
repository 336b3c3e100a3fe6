/*  json.c - strict parsing of REST request bodies, straight to msgpack

    The only gateway file that parses JSON. The text is read once and
    written as the msgpack the broker reads; no document tree is built.
*/
#include "json.h"
#include "lexer.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_not_object[] = "Request body must be a JSON object";
static const char s_no_memory[] = "Internal error";

static bool s_blank (const char *text, size_t size) {
    for (size_t i = 0; i < size; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Parsing straight to msgpack
//
//  One pass, no document tree: lexer.c reads a token as jansson would, the
//  parser checks it against jansson's grammar (parse_object, parse_array,
//  parse_value as three states, so the 2048 levels jansson allows cost no
//  C stack) and writes it. The limits were checked after jansson's parse,
//  over the document: a body that breaks one is still read to its end,
//  since a syntax error anywhere comes first, then "must be a JSON
//  object", then the first limit broken in document order.

#define S_JANSSON_DEPTH 2048 //  jansson's JSON_PARSER_MAX_DEPTH: deeper is a syntax error
#define S_LINEAR_KEYS   16   //  an object's keys are compared one by one up to this many
#define S_INLINE        32   //  containers and keys held without allocating

typedef struct {
    size_t mark;   //  where its msgpack header is (while writing)
    uint32_t size; //  members or items so far
    bool map;      //  an object
    uint32_t id;   //  objects: the id its keys carry
    uint32_t last; //  objects: its last key, index + 1 into keys (0: none)
    bool hashed;   //  objects: its keys are in the hash table too
} s_open_t;

typedef struct {
    uint32_t at;   //  offset in the text, or in the arena
    uint32_t size; //  bytes
    uint32_t prev; //  its object's key before it, index + 1 (0: none)
    uint32_t obj;  //  its object's id
    uint32_t hash; //  set once its object is hashed
    bool arena;    //  at is in the arena (the key had escapes)
} s_key_t;

typedef struct {
    gw_lexer_t lex;                  //  the tokens
    aq_writer_t *out;                //  where the msgpack goes
    bool write;                      //  still writing (false once the body is refused)
    bool oom;                        //  out of memory
    const char *limit;               //  the first limit broken, or NULL
    s_open_t *stack;                 //  open containers, innermost last
    size_t depth;                    //  how many
    size_t stack_cap;                //  allocated
    s_key_t *keys;                   //  every object key so far, for duplicates
    size_t key_count;                //  how many
    size_t key_cap;                  //  allocated
    uint32_t *table;                 //  keys of large objects: index + 1, 0 empty
    size_t table_cap;                //  a power of two, 0 until needed
    size_t table_used;               //  slots taken
    uint32_t objects;                //  ids given
    aq_writer_t arena;               //  keys that had escapes, unescaped
    s_open_t stack_inline[S_INLINE]; //  the first containers
    s_key_t keys_inline[S_INLINE];   //  the first keys
} s_parser_t;

//  Records a limit broken (the first one counts): the body will be
//  refused, so nothing more is written.
static void s_limit (s_parser_t *self, const char *message) {
    if (!self->limit)
        self->limit = message;
    self->write = false;
}

//  Room for one more in *items (cap of them, the first ones in
//  inline_items); false when out of memory.
static bool s_reserve (void **items, void *inline_items, size_t *cap, size_t count, size_t size) {
    if (count < *cap)
        return true;
    size_t more = *cap * 2;
    void *grown = *items == inline_items ? malloc (more * size) : realloc (*items, more * size);
    if (!grown)
        return false;
    if (*items == inline_items)
        memcpy (grown, inline_items, count * size);
    *items = grown;
    *cap = more;
    return true;
}

//  --------------------------------------------------------------------------
//  Keys given twice

static uint32_t s_hash (const uint8_t *bytes, size_t size, uint32_t obj) {
    uint32_t hash = 2166136261u ^ obj * 16777619u; //  FNV-1a, seeded with the object
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ bytes[i]) * 16777619u;
    return hash;
}

static const uint8_t *s_key_bytes (s_parser_t *self, const s_key_t *key) {
    size_t size;
    return key->arena ? aq_writer_data (&self->arena, &size) + key->at : self->lex.text + key->at;
}

//  Puts key index k (its hash set) into the table, grown at half full.
static bool s_table_put (s_parser_t *self, uint32_t k) {
    if ((self->table_used + 1) * 2 > self->table_cap) {
        size_t cap = self->table_cap ? self->table_cap * 2 : 64;
        uint32_t *table = calloc (cap, sizeof *table);
        if (!table)
            return false;
        for (size_t s = 0; s < self->table_cap; s++) {
            if (!self->table[s])
                continue;
            size_t at = self->keys[self->table[s] - 1].hash & (cap - 1);
            while (table[at])
                at = (at + 1) & (cap - 1);
            table[at] = self->table[s];
        }
        free (self->table);
        self->table = table;
        self->table_cap = cap;
    }
    size_t at = self->keys[k].hash & (self->table_cap - 1);
    while (self->table[at])
        at = (at + 1) & (self->table_cap - 1);
    self->table[at] = k + 1;
    self->table_used++;
    return true;
}

//  True when object has a key of these bytes already. A few keys are
//  compared one by one; past S_LINEAR_KEYS an object's keys are hashed, so
//  a body of 100,000 keys costs no more than its length says (jansson
//  hashes them too).
static bool s_key_seen (s_parser_t *self, s_open_t *object, const uint8_t *bytes, size_t size,
                        uint32_t *hash) {
    if (!object->hashed) {
        for (uint32_t k = object->last; k; k = self->keys[k - 1].prev) {
            const s_key_t *key = &self->keys[k - 1];
            if (key->size == size && memcmp (s_key_bytes (self, key), bytes, size) == 0)
                return true;
        }
        return false;
    }
    *hash = s_hash (bytes, size, object->id);
    for (size_t at = *hash & (self->table_cap - 1); self->table[at];
         at = (at + 1) & (self->table_cap - 1)) {
        const s_key_t *key = &self->keys[self->table[at] - 1];
        if (key->hash == *hash && key->obj == object->id && key->size == size &&
            memcmp (s_key_bytes (self, key), bytes, size) == 0)
            return true;
    }
    return false;
}

//  The key just read, for the innermost object: a syntax error when given
//  twice, else noted and written. 0, or -1 when out of memory.
static int s_key (s_parser_t *self, s_open_t *object) {
    gw_lexer_t *lex = &self->lex;
    const uint8_t *bytes = lex->text + lex->start;
    size_t size = lex->length, at = lex->start, used;
    if (lex->escaped) { //  unescaped into the arena, to compare
        aq_writer_data (&self->arena, &at);
        gw_lexer_string (lex, &self->arena);
        if (self->arena.err)
            return -1;
        bytes = aq_writer_data (&self->arena, &used) + at;
    }
    uint32_t hash = 0;
    if (s_key_seen (self, object, bytes, size, &hash)) {
        gw_lexer_fail (lex); //  duplicate object key
        return 0;
    }
    if (self->key_count >= UINT32_MAX - 1 || at > UINT32_MAX ||
        !s_reserve ((void **) &self->keys, self->keys_inline, &self->key_cap, self->key_count,
                    sizeof *self->keys))
        return -1;
    uint32_t k = (uint32_t) self->key_count++;
    self->keys[k] = (s_key_t){.at = (uint32_t) at,
                              .size = (uint32_t) size,
                              .prev = object->last,
                              .obj = object->id,
                              .hash = hash,
                              .arena = lex->escaped};
    object->last = k + 1;
    if (object->hashed && !s_table_put (self, k))
        return -1;
    if (!object->hashed && object->size + 1 >= S_LINEAR_KEYS) { //  from now on, hashed
        object->hashed = true;
        for (uint32_t j = object->last; j; j = self->keys[j - 1].prev) {
            s_key_t *key = &self->keys[j - 1];
            key->hash = s_hash (s_key_bytes (self, key), key->size, object->id);
            if (!s_table_put (self, j - 1))
                return -1;
        }
    }
    if (size > GW_JSON_MAX_KEY)
        s_limit (self, "JSON object keys must be at most 256 bytes");
    if (self->write)
        aq_write_strn (self->out, (const char *) s_key_bytes (self, &self->keys[k]), size);
    return 0;
}

//  --------------------------------------------------------------------------
//  Values

enum { S_VALUE, S_MEMBER, S_NEXT, S_DONE };

//  Opens a container for the '{' or '[' just read. 0, or -1 when out of memory.
static int s_open (s_parser_t *self, bool map) {
    if (!s_reserve ((void **) &self->stack, self->stack_inline, &self->stack_cap, self->depth,
                    sizeof *self->stack))
        return -1;
    s_open_t *open = &self->stack[self->depth++];
    *open = (s_open_t){.map = map, .id = map ? ++self->objects : 0};
    if (self->depth > GW_JSON_MAX_DEPTH)
        s_limit (self, GW_JSON_TOO_DEEP);
    if (self->write)
        open->mark = map ? aq_write_map_open (self->out) : aq_write_array_open (self->out);
    return 0;
}

static void s_close (s_parser_t *self) {
    s_open_t *open = &self->stack[--self->depth];
    if (self->write && open->map)
        aq_write_map_close (self->out, open->mark, open->size);
    else if (self->write)
        aq_write_array_close (self->out, open->mark, open->size);
}

//  A msgpack str header for size bytes (aq_write_strn's, without the bytes).
static void s_str_header (aq_writer_t *out, size_t size) {
    uint8_t head[5] = {0xDB, (uint8_t) (size >> 24), (uint8_t) (size >> 16), (uint8_t) (size >> 8),
                       (uint8_t) size};
    if (size < 32)
        head[4] = (uint8_t) (0xA0 | size), aq_write_raw (out, head + 4, 1);
    else if (size <= 0xFF)
        head[3] = 0xD9, aq_write_raw (out, head + 3, 2);
    else if (size <= 0xFFFF)
        head[2] = 0xDA, aq_write_raw (out, head + 2, 3);
    else
        aq_write_raw (out, head, 5);
}

//  A value, its first token just read (jansson's parse_value).
static int s_value (s_parser_t *self) {
    gw_lexer_t *lex = &self->lex;
    aq_writer_t *out = self->out;
    if (self->depth + 1 > S_JANSSON_DEPTH) { //  maximum parsing depth reached
        gw_lexer_fail (lex);
        return S_DONE;
    }
    switch (lex->token) {
    case '{':
    case '[': {
        bool map = lex->token == '{';
        if (s_open (self, map) != 0) {
            self->oom = true;
            return S_DONE;
        }
        if (gw_lexer_next (lex) == (map ? '}' : ']')) {
            s_close (self);
            return S_NEXT;
        }
        return map ? S_MEMBER : S_VALUE;
    }
    case GW_TOKEN_STRING:
        if (lex->nul) { //  \u0000 is not allowed
            gw_lexer_fail (lex);
            return S_DONE;
        }
        if (lex->length > GW_JSON_MAX_STRING)
            s_limit (self, "JSON strings must be at most 262144 bytes");
        if (self->write && !lex->escaped)
            aq_write_strn (out, (const char *) lex->text + lex->start, lex->length);
        else if (self->write) {
            s_str_header (out, lex->length);
            gw_lexer_string (lex, out);
        }
        return S_NEXT;
    case GW_TOKEN_INTEGER:
        if (self->write)
            aq_write_int (out, lex->integer);
        return S_NEXT;
    case GW_TOKEN_REAL:
        if (self->write)
            aq_write_double (out, lex->real);
        return S_NEXT;
    case GW_TOKEN_TRUE:
    case GW_TOKEN_FALSE:
        if (self->write)
            aq_write_bool (out, lex->token == GW_TOKEN_TRUE);
        return S_NEXT;
    case GW_TOKEN_NULL:
        if (self->write)
            aq_write_nil (out);
        return S_NEXT;
    default: //  an invalid or unexpected token
        gw_lexer_fail (lex);
        return S_DONE;
    }
}

//  A member: its key just read, then ':' and the first token of its value.
static int s_member (s_parser_t *self) {
    gw_lexer_t *lex = &self->lex;
    if (lex->token != GW_TOKEN_STRING || lex->nul) { //  string or '}' expected; NUL in a key
        gw_lexer_fail (lex);
        return S_DONE;
    }
    if (s_key (self, &self->stack[self->depth - 1]) != 0) {
        self->oom = true;
        return S_DONE;
    }
    if (lex->failed)
        return S_DONE;
    if (gw_lexer_next (lex) != ':') {
        gw_lexer_fail (lex);
        return S_DONE;
    }
    gw_lexer_next (lex);
    return S_VALUE;
}

//  After a value: the next member or item, or its container's end.
static int s_next (s_parser_t *self) {
    if (self->depth == 0)
        return S_DONE; //  the whole document
    gw_lexer_t *lex = &self->lex;
    s_open_t *open = &self->stack[self->depth - 1];
    open->size++;
    if (gw_lexer_next (lex) == ',') {
        gw_lexer_next (lex);
        return open->map ? S_MEMBER : S_VALUE;
    }
    if (lex->token != (open->map ? '}' : ']')) {
        gw_lexer_fail (lex);
        return S_DONE;
    }
    s_close (self);
    return S_NEXT;
}

int gw_json_parse (const char *text, size_t size, aq_writer_t *out, char *error,
                   size_t error_size) {
    assert (out && error && error_size >= GW_JSON_ERROR_MAX);
    if (!text || s_blank (text, size)) {
        snprintf (error, error_size, "%s", s_not_object);
        return -1;
    }
    s_parser_t self = {.out = out, .stack_cap = S_INLINE, .key_cap = S_INLINE};
    self.stack = self.stack_inline;
    self.keys = self.keys_inline;
    gw_lexer_init (&self.lex, text, size);
    aq_writer_init (&self.arena);
    size_t start = out->size;

    bool object = gw_lexer_next (&self.lex) == '{';
    self.write = object; //  anything else is refused anyway
    int state = S_VALUE;
    while (state != S_DONE && !self.lex.failed && !self.oom)
        state = state == S_VALUE    ? s_value (&self)
                : state == S_MEMBER ? s_member (&self)
                                    : s_next (&self);
    if (!self.lex.failed && !self.oom && gw_lexer_next (&self.lex) != GW_TOKEN_EOF)
        gw_lexer_fail (&self.lex); //  end of file expected

    int rc = -1, line, column;
    if (self.oom || self.lex.oom) {
        snprintf (error, error_size, "%s", s_no_memory);
        rc = -2;
    } else if (self.lex.failed) {
        gw_lexer_where (&self.lex, &line, &column);
        snprintf (error, error_size, "Invalid JSON at line %d, column %d", line,
                  column > 0 ? column : 1);
    } else if (!object)
        snprintf (error, error_size, "%s", s_not_object);
    else if (self.limit)
        snprintf (error, error_size, "%s", self.limit);
    else
        rc = 0;
    if (rc != 0 && !out->err)
        out->size = start; //  as it was
    if (self.stack != self.stack_inline)
        free (self.stack);
    if (self.keys != self.keys_inline)
        free (self.keys);
    free (self.table);
    aq_writer_release (&self.arena);
    return rc;
}

bool gw_json_utf8 (const char *text, size_t size) {
    const uint8_t *p = (const uint8_t *) text;
    for (size_t i = 0; i < size;) {
        size_t length = p[i] < 0x80 ? 1 : gw_lexer_utf8_char (p + i, size - i);
        if (!length)
            return false;
        i += length;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  Selftest: gw_json_parse against the old path (jansson and the codec, in
//  tests/rig_jansson.c) on a corpus and on bodies made at random, both ways.

#include "../tests/rig_jansson.h"
#include "aq_json.h"

//  Prints text (size bytes) escaped, for a failure report.
static void s_show (const char *what, const char *text, size_t size) {
    fprintf (stderr, "%s: \"", what);
    for (size_t i = 0; i < size && i < 300; i++) {
        unsigned char c = (unsigned char) text[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\')
            fputc (c, stderr);
        else
            fprintf (stderr, "\\x%02x", c);
    }
    fprintf (stderr, "%s\" (%zu bytes)\n", size > 300 ? "..." : "", size);
}

//  Parses text (size bytes, copied to a buffer of exactly that size, so a
//  read past it is caught) both ways: the same message, or the same msgpack
//  bytes, which render back to the text jansson made of them. Returns the
//  outcome: 0 parsed, -1 refused.
static int s_same (const char *text, size_t size) {
    char *copy = malloc (size ? size : 1);
    assert (copy);
    memcpy (copy, text, size);
    char mine[GW_JSON_ERROR_MAX], theirs[GW_JSON_ERROR_MAX];
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_nil (&w); //  a byte before: kept, and all there is after a failure
    int rc = gw_json_parse (copy, size, &w, mine, sizeof mine);
    uint8_t *data;
    size_t data_size = 0, got_size;
    int old = rig_jansson_parse (copy, size, &data, &data_size, theirs, sizeof theirs);
    const uint8_t *got = aq_writer_data (&w, &got_size);
    bool same = rc == old &&
                (rc != 0 ? strcmp (mine, theirs) == 0 && got_size == 1
                         : got_size - 1 == data_size && memcmp (got + 1, data, data_size) == 0);
    if (!same) {
        s_show ("gw_json: body", text, size);
        fprintf (stderr, "  gw_json_parse: %d %s\n  jansson: %d %s\n", rc, rc ? mine : "", old,
                 old ? theirs : "");
        if (rc == 0 && old == 0) {
            s_show ("  msgpack", (const char *) got + 1, got_size - 1);
            s_show ("  jansson", (const char *) data, data_size);
        }
        assert (false);
    }
    if (rc == 0) { //  and back: the reply renderer writes what jansson wrote
        aq_node_t node;
        assert (aq_msg_parse (got + 1, got_size - 1, &node) == 0 && node.type == AQ_NODE_MAP);
        char *back = aq_json_dumps (&node), *dumped = rig_jansson_dump (data, data_size);
        if (!back || !dumped || strcmp (back, dumped) != 0) {
            s_show ("gw_json: body", text, size);
            fprintf (stderr, "  aq_json: %s\n  jansson: %s\n", back ? back : "(null)",
                     dumped ? dumped : "(null)");
            assert (false);
        }
        free (back);
        free (dumped);
    }
    free (data);
    aq_writer_release (&w);
    free (copy);
    return rc == 0 ? 0 : -1;
}

static int s_same_text (const char *text) {
    return s_same (text, strlen (text));
}

//  Parses text, expecting message (and the same from jansson).
static void s_expect_error (const char *text, const char *message) {
    char error[GW_JSON_ERROR_MAX];
    aq_writer_t w;
    aq_writer_init (&w);
    int rc = gw_json_parse (text, text ? strlen (text) : 0, &w, error, sizeof error);
    if (rc != -1 || strcmp (error, message) != 0) {
        fprintf (stderr, "gw_json: '%s' gave '%s', expected '%s'\n", text, rc ? error : "ok",
                 message);
        assert (false);
    }
    size_t size;
    aq_writer_data (&w, &size);
    assert (size == 0);
    aq_writer_release (&w);
    if (text)
        assert (s_same_text (text) == -1);
}

static char *s_nested (int depth, const char *open, const char *inner, const char *close) {
    size_t unit = strlen (open) + strlen (close);
    char *text = malloc ((size_t) depth * unit + strlen (inner) + 1);
    assert (text);
    char *p = text;
    for (int i = 0; i < depth; i++)
        p = stpcpy (p, open);
    p = stpcpy (p, inner);
    for (int i = 0; i < depth; i++)
        p = stpcpy (p, close);
    return text;
}

void gw_json_test (bool verbose) {
    if (verbose)
        printf (" * gw_json: ");

    //  A good body: a map, members in order, numbers typed
    const char *good = "{\"targetUrl\": \"https://api.example.com/webhook\", \"maxRetries\": 3,"
                       " \"headers\": {\"Authorization\": \"Bearer x\"}, \"body\": \"\\u00e9\","
                       " \"priority\": 2.5, \"tags\": [true, null, -7]}";
    char error[GW_JSON_ERROR_MAX];
    aq_writer_t w;
    aq_writer_init (&w);
    assert (gw_json_parse (good, strlen (good), &w, error, sizeof error) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t map, value;
    assert (aq_msg_parse (data, size, &map) == 0 && map.type == AQ_NODE_MAP && map.count == 6);
    assert (aq_node_get (&map, "maxRetries", &value) && value.type == AQ_NODE_INT && value.i == 3);
    assert (aq_node_get (&map, "body", &value) && aq_node_streq (&value, "\xc3\xa9"));
    assert (aq_node_get (&map, "priority", &value) && value.type == AQ_NODE_FLOAT &&
            value.f == 2.5 && value.raw[0] == 0xCB);
    char *text = aq_json_dumps (&map);
    assert (strcmp (text, "{\"targetUrl\":\"https://api.example.com/webhook\",\"maxRetries\":3,"
                          "\"headers\":{\"Authorization\":\"Bearer x\"},\"body\":\"\xc3\xa9\","
                          "\"priority\":2.5,\"tags\":[true,null,-7]}") == 0);
    free (text);
    assert (s_same_text (good) == 0);

    //  Only size bytes are read; what out held stays in front
    aq_writer_reset (&w);
    aq_write_str (&w, "task");
    assert (gw_json_parse ("{\"a\":1}garbage", 7, &w, error, sizeof error) == 0);
    data = aq_writer_data (&w, &size);
    assert (size == 9 && memcmp (data,
                                 "\xa4task\x81\xa1"
                                 "a\x01",
                                 9) == 0);
    aq_writer_release (&w);

    //  Empty, blank and non-object bodies
    s_expect_error (NULL, "Request body must be a JSON object");
    s_expect_error ("", "Request body must be a JSON object");
    s_expect_error (" \r\n\t", "Request body must be a JSON object");
    s_expect_error ("[1, 2]", "Request body must be a JSON object");
    s_expect_error ("\"text\"", "Request body must be a JSON object");
    s_expect_error ("42", "Request body must be a JSON object");
    s_expect_error ("null", "Request body must be a JSON object");

    //  Malformed JSON is located as jansson locates it
    s_expect_error ("{\"targetUrl\": \"x\", bad}", "Invalid JSON at line 1, column 22");
    s_expect_error ("{\"a\": 1,}", "Invalid JSON at line 1, column 9");
    s_expect_error ("{\n  \"a\": tru\n}", "Invalid JSON at line 2, column 10");
    s_expect_error ("{\"a\":", "Invalid JSON at line 1, column 5");
    s_expect_error ("{\"a\":1} x", "Invalid JSON at line 1, column 9");
    s_expect_error ("{\"a\":1,\"a\":2}", "Invalid JSON at line 1, column 10");
    s_expect_error ("{\"a\":\"\\u0000\"}", "Invalid JSON at line 1, column 13");
    s_expect_error ("\xff", "Invalid JSON at line 1, column 1");
    s_expect_error ("{\"a\":\"\xc3\x28\"}", "Invalid JSON at line 1, column 6");
    s_expect_error ("nul", "Invalid JSON at line 1, column 3");
    s_expect_error ("{\"\xc3\xa9\xc3\xa9\": x}", "Invalid JSON at line 1, column 8");
    s_expect_error ("{\"a\":\"\\\n\"}", "Invalid JSON at line 2, column 1");
    s_expect_error ("{\"a\":\"\\ud83d\"}", "Invalid JSON at line 1, column 13");
    s_expect_error ("{\"a\":1e400}", "Invalid JSON at line 1, column 10");
    s_expect_error ("{\"a\":9223372036854775808}", "Invalid JSON at line 1, column 24");

    //  Nesting: 32 levels pass, 33 do not; arrays count as levels too; a
    //  syntax error anywhere comes first, and past jansson's 2048 levels
    //  the depth itself is one
    char *deep = s_nested (GW_JSON_MAX_DEPTH, "{\"a\":", "1", "}");
    assert (s_same_text (deep) == 0);
    free (deep);
    deep = s_nested (GW_JSON_MAX_DEPTH + 1, "{\"a\":", "1", "}");
    s_expect_error (deep, "JSON nesting must be at most 32 levels deep");
    free (deep);
    s_expect_error ("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
                    "JSON nesting must be at most 32 levels deep");
    deep = s_nested (40, "[", "1", "]");
    s_expect_error (deep, "Request body must be a JSON object");
    free (deep);
    deep = s_nested (40, "{\"a\":", "1,\"b\":2,\"b\":3", "}");
    s_expect_error (deep, "Invalid JSON at line 1, column 211");
    free (deep);
    char *inner = s_nested (2047, "[", "1", "]");
    deep = malloc (strlen (inner) + 8);
    sprintf (deep, "{\"a\":%s}", inner);
    s_same_text (deep);
    free (deep);
    free (inner);
    inner = s_nested (2048, "[", "", "]");
    deep = malloc (strlen (inner) + 8);
    sprintf (deep, "{\"a\":%s}", inner);
    s_expect_error (deep, "Invalid JSON at line 1, column 2053");
    free (deep);
    free (inner);

    //  String and key sizes (unescaped), and the first limit in document order
    size_t big = GW_JSON_MAX_STRING + 1;
    char *long_text = malloc (big * 6 + 32);
    assert (long_text);
    memcpy (long_text, "{\"a\":\"", 6);
    memset (long_text + 6, 'x', big);
    memcpy (long_text + 6 + big, "\"}", 3);
    s_expect_error (long_text, "JSON strings must be at most 262144 bytes");
    memcpy (long_text + 6 + big - 1, "\"}", 3); //  exactly the limit
    assert (s_same_text (long_text) == 0);
    memcpy (long_text, "{\"", 2);
    memset (long_text + 2, 'k', GW_JSON_MAX_KEY + 1);
    memcpy (long_text + 2 + GW_JSON_MAX_KEY + 1, "\":1}", 5);
    s_expect_error (long_text, "JSON object keys must be at most 256 bytes");
    memcpy (long_text + 2 + GW_JSON_MAX_KEY, "\":1}", 5);
    assert (s_same_text (long_text) == 0);
    char *p = stpcpy (long_text, "{\"");
    for (int i = 0; i < 129; i++) //  258 bytes once unescaped
        p = stpcpy (p, "\\u00e9");
    strcpy (p, "\":1}");
    s_expect_error (long_text, "JSON object keys must be at most 256 bytes");
    p = stpcpy (long_text, "{\"s\":\"");
    for (int i = 0; i < 131073; i++) //  262146 bytes once unescaped
        p = stpcpy (p, "\\u00e9");
    strcpy (p, "\",\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}");
    s_expect_error (long_text, "JSON strings must be at most 262144 bytes");
    free (long_text);

    //  A corpus of the corners, and bodies made at random, each against jansson
    const char *body;
    for (size_t i = 0; (body = rig_jansson_corpus (i, &size)); i++)
        s_same (body, size);
    assert (s_same ("{\"a\":1\0}", 8) == 0); //  jansson's quirk, kept
    int parsed = 0, refused = 0;
    uint64_t state = 0x9E3779B97F4A7C15ull;
    aq_writer_t random;
    aq_writer_init (&random);
    for (int n = 0; n < 30000; n++) {
        rig_jansson_random (&state, &random);
        data = aq_writer_data (&random, &size);
        s_same ((const char *) data, size) == 0 ? parsed++ : refused++;
    }
    aq_writer_release (&random);
    if (verbose)
        printf ("%d random bodies parsed, %d refused, as jansson did; ", parsed, refused);
    assert (parsed > 5000 && refused > 5000);

    //  Many keys: past S_LINEAR_KEYS they are hashed; a repeat is still found
    aq_writer_t many;
    aq_writer_init (&many);
    for (int keys = 10; keys <= 5000; keys *= 5) {
        for (int repeat = 0; repeat < 3; repeat++) {
            aq_writer_reset (&many);
            aq_write_raw (&many, "{", 1);
            for (int k = 0; k < keys; k++) {
                char member[64];
                int n = snprintf (member, sizeof member, "%s\"k%d\":{\"k%d\":%d}", k ? "," : "", k,
                                  k, k);
                aq_write_raw (&many, member, (size_t) n);
            }
            const char *tail = repeat == 0 ? "}" : repeat == 1 ? ",\"k3\":0}" : ",\"\\u006b7\":0}";
            aq_write_raw (&many, tail, strlen (tail));
            data = aq_writer_data (&many, &size);
            assert (s_same ((const char *) data, size) == (repeat ? -1 : 0));
        }
    }
    aq_writer_release (&many);

    //  UTF-8 as jansson checks it
    assert (gw_json_utf8 ("", 0) && gw_json_utf8 ("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
    assert (gw_json_utf8 ("\0", 1));
    assert (!gw_json_utf8 ("\xc3", 1) && !gw_json_utf8 ("\xc0\x80", 2));
    assert (!gw_json_utf8 ("\xed\xa0\x80", 3) && !gw_json_utf8 ("\xf4\x90\x80\x80", 4));
    assert (!gw_json_utf8 ("a\xff", 2) && !gw_json_utf8 ("\x80", 1));

    if (verbose)
        printf ("OK\n");
}
