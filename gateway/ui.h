/*  ui.h - the web console's files, compiled into the gateway

    The files of gateway/ui/ become byte arrays at build time
    (tools/ui_embed.c writes $(BUILD)/gen/ui_assets.c); http.c serves them
    at /ui/ with the headers below. They need no key: every figure the
    console shows comes from the REST API, called with the user's key.
*/
#ifndef GW_UI_H
#define GW_UI_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;          //  "index.html"
    const char *type;          //  its Content-Type
    const unsigned char *data; //  its bytes (static)
    size_t size;               //  how many
    const char *etag;          //  strong ETag, quoted
} gw_ui_asset_t;

extern const gw_ui_asset_t gw_ui_assets[]; //  generated
extern const size_t gw_ui_asset_count;

//  No script, style, image or connection from anywhere but the gateway
//  itself, no inline script, no framing.
#define GW_UI_CSP                                                                                  \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"
//  Revalidated on every load (the ETag makes that a 304), so a new gateway
//  build is picked up at once.
#define GW_UI_CACHE "no-cache"

//  True when path is the console's: /ui, /ui/..., /favicon.ico.
bool gw_ui_owns (const char *path);

//  The asset a path of the console names (/ui/ is index.html,
//  /favicon.ico the SVG icon), or NULL: 404. Sets *redirect for "/ui",
//  which must become "/ui/" so relative module paths resolve.
const gw_ui_asset_t *gw_ui_find (const char *path, bool *redirect);

//  True when an If-None-Match header value names etag (or is "*").
bool gw_ui_fresh (const char *if_none_match, const char *etag);

void gw_ui_test (bool verbose);

#endif
