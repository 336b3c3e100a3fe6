/*  arena.c - memory that lives and dies with one record */
#include "arena.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct _s_chunk_t {
    struct _s_chunk_t *next; //  the chunk filled before this one
    size_t used, cap;        //  bytes used and available in data
    max_align_t data[];      //  the memory handed out
} s_chunk_t;

struct _bk_arena_t {
    s_chunk_t *chunk; //  the chunk being filled
};

static s_chunk_t *s_chunk_new (size_t cap) {
    s_chunk_t *chunk = malloc (sizeof *chunk + cap);
    assert (chunk);
    chunk->next = NULL;
    chunk->used = 0;
    chunk->cap = cap;
    return chunk;
}

bk_arena_t *bk_arena_new (size_t size) {
    bk_arena_t *self = malloc (sizeof *self);
    assert (self);
    self->chunk = s_chunk_new (size < 256 ? 256 : size);
    return self;
}

void bk_arena_destroy (bk_arena_t **self_p) {
    assert (self_p);
    bk_arena_t *self = *self_p;
    if (!self)
        return;
    for (s_chunk_t *chunk = self->chunk, *next; chunk; chunk = next) {
        next = chunk->next;
        free (chunk);
    }
    free (self);
    *self_p = NULL;
}

void *bk_arena_alloc (bk_arena_t *self, size_t size) {
    size = (size + 7) & ~(size_t) 7;
    s_chunk_t *chunk = self->chunk;
    if (chunk->used + size > chunk->cap) {
        chunk = s_chunk_new (size > 2 * chunk->cap ? size : 2 * chunk->cap);
        chunk->next = self->chunk;
        self->chunk = chunk;
    }
    void *at = (char *) chunk->data + chunk->used;
    chunk->used += size;
    return at;
}

char *bk_arena_strndup (bk_arena_t *self, const char *text, size_t size) {
    char *copy = bk_arena_alloc (self, size + 1);
    memcpy (copy, text, size);
    copy[size] = '\0';
    return copy;
}

char *bk_arena_strdup (bk_arena_t *self, const char *text) {
    return text ? bk_arena_strndup (self, text, strlen (text)) : NULL;
}

void *bk_arena_memdup (bk_arena_t *self, const void *data, size_t size) {
    void *copy = bk_arena_alloc (self, size ? size : 1);
    if (size)
        memcpy (copy, data, size);
    return copy;
}

void bk_arena_test (bool verbose) {
    bk_arena_t *arena = bk_arena_new (16);
    char *a = bk_arena_strdup (arena, "hello");
    assert (strcmp (a, "hello") == 0 && ((uintptr_t) a & 7) == 0);
    //  more than a chunk holds: a new one, earlier pointers stay valid
    char *big = bk_arena_alloc (arena, 10000);
    memset (big, 'x', 10000);
    char *b = bk_arena_strndup (arena, "world!!", 5);
    assert (strcmp (a, "hello") == 0 && strcmp (b, "world") == 0);
    assert (bk_arena_strdup (arena, NULL) == NULL);
    uint8_t bytes[3] = {1, 2, 3};
    uint8_t *copy = bk_arena_memdup (arena, bytes, 3);
    assert (copy[2] == 3);
    bk_arena_destroy (&arena);
    assert (!arena);
    if (verbose)
        printf ("bk_arena: ok\n");
}
