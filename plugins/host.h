/*  host.h - the services a plugin calls: aq_host_t as this host fills it

    Logs through aq_log, tagged with the name of the plugin being called;
    allocation with the host's allocator; JSON through jansson (a document
    passed through the ABI is a json_t *): parse, dot-path reads, {{path}}
    templates; response headers; relative URL resolution; error text. The
    table is static and never freed; a plugin reaches the host only
    through it.
*/
#ifndef AQ_PLUGIN_HOST_H
#define AQ_PLUGIN_HOST_H

#include "aq_plugin.h"

#include <stdbool.h>

//  The host table every plugin gets; also usable by the host itself (e.g.
//  render_template and json_get_str for pollConfig). Static, never freed.
const aq_host_t *aq_plugin_host (void);

//  Names the plugin this thread is about to call (NULL: none), so the
//  lines it logs through the host carry its name ("info fal: ..."). name
//  is borrowed until the next call.
void aq_plugin_host_calling (const char *name);

void aq_plugin_host_test (bool verbose);

#endif
