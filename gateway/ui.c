/*  ui.c - the web console's files: which path names which compiled-in file */
#include "ui.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

bool gw_ui_owns (const char *path) {
    return strcmp (path, "/ui") == 0 || strncmp (path, "/ui/", 4) == 0 ||
           strcmp (path, "/favicon.ico") == 0;
}

const gw_ui_asset_t *gw_ui_find (const char *path, bool *redirect) {
    assert (path && redirect);
    *redirect = strcmp (path, "/ui") == 0;
    const char *name = strcmp (path, "/favicon.ico") == 0 ? "favicon.svg"
                       : strcmp (path, "/ui/") == 0       ? "index.html"
                       : strncmp (path, "/ui/", 4) == 0   ? path + 4
                                                          : NULL;
    for (size_t i = 0; name && i < gw_ui_asset_count; i++)
        if (strcmp (gw_ui_assets[i].name, name) == 0)
            return &gw_ui_assets[i];
    return NULL;
}

bool gw_ui_fresh (const char *if_none_match, const char *etag) {
    if (!if_none_match)
        return false;
    size_t length = strlen (etag);
    for (const char *at = if_none_match; *at;) { //  a list: "a", W/"b", *
        at += strspn (at, " \t,");
        if (strncmp (at, "W/", 2) == 0)
            at += 2;
        if (*at == '*' || (strncmp (at, etag, length) == 0 && strchr (" \t,", at[length])))
            return true;
        at += strcspn (at, ",");
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Selftest

void gw_ui_test (bool verbose) {
    if (verbose)
        printf (" * gw_ui: ");
    bool redirect;
    assert (gw_ui_owns ("/ui") && gw_ui_owns ("/ui/") && gw_ui_owns ("/ui/app.js"));
    assert (gw_ui_owns ("/favicon.ico") && !gw_ui_owns ("/uix") && !gw_ui_owns ("/v1/ui/"));
    const gw_ui_asset_t *index = gw_ui_find ("/ui/", &redirect);
    assert (index && !redirect && strcmp (index->name, "index.html") == 0);
    assert (strcmp (index->type, "text/html; charset=utf-8") == 0);
    assert (index->size > 100 && memcmp (index->data, "<!doctype html>", 15) == 0);
    assert (index->data[index->size] == 0 && index->etag[0] == '"');
    assert (gw_ui_find ("/ui/index.html", &redirect) == index);
    assert (gw_ui_find ("/ui", &redirect) == NULL && redirect);
    const gw_ui_asset_t *icon = gw_ui_find ("/favicon.ico", &redirect);
    assert (icon && strcmp (icon->type, "image/svg+xml") == 0 && !redirect);
    const gw_ui_asset_t *app = gw_ui_find ("/ui/app.js", &redirect);
    assert (app && strcmp (app->type, "text/javascript; charset=utf-8") == 0);
    assert (strcmp (app->etag, index->etag) != 0);
    assert (!gw_ui_find ("/ui/nothing.js", &redirect) &&
            !gw_ui_find ("/ui/../Makefile", &redirect));
    assert (!gw_ui_find ("/ui/ui/app.js", &redirect));
    //  Every asset has a known type and a distinct name
    for (size_t i = 0; i < gw_ui_asset_count; i++) {
        assert (gw_ui_assets[i].type && gw_ui_assets[i].size);
        for (size_t j = i + 1; j < gw_ui_asset_count; j++)
            assert (strcmp (gw_ui_assets[i].name, gw_ui_assets[j].name) != 0);
    }
    //  If-None-Match
    assert (gw_ui_fresh (index->etag, index->etag));
    char list[128];
    snprintf (list, sizeof list, "\"x\", W/%s", index->etag);
    assert (gw_ui_fresh (list, index->etag) && gw_ui_fresh ("*", index->etag));
    assert (!gw_ui_fresh (NULL, index->etag) && !gw_ui_fresh ("\"x\"", index->etag));
    snprintf (list, sizeof list, "%.10s", index->etag);
    assert (!gw_ui_fresh (list, index->etag));
    if (verbose)
        printf ("OK\n");
}
