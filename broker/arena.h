/*  arena.h - memory that lives and dies with one record

    A task, a schedule or a run read from the store holds a dozen strings
    and encoded blobs; they come from one arena and go with it, so loading a
    record costs one or two allocations and freeing it one call.
*/
#ifndef BK_ARENA_H
#define BK_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bk_arena_t bk_arena_t;

//  A new arena whose first chunk holds at least size bytes.
bk_arena_t *bk_arena_new (size_t size);
void bk_arena_destroy (bk_arena_t **self_p);

//  size bytes, 8-aligned, valid until the arena is destroyed (never NULL:
//  out of memory aborts, as for the rest of the broker's small allocations).
void *bk_arena_alloc (bk_arena_t *self, size_t size);
//  A NUL-terminated copy of size bytes at text.
char *bk_arena_strndup (bk_arena_t *self, const char *text, size_t size);
//  A copy of a NUL-terminated string; NULL for NULL.
char *bk_arena_strdup (bk_arena_t *self, const char *text);
//  A copy of size bytes.
void *bk_arena_memdup (bk_arena_t *self, const void *data, size_t size);

void bk_arena_test (bool verbose);

#endif
