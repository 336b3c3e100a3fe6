/*  loaded.h - a plugin as the loader holds it, for the modules of plugins/

    loader.c loads, checks, opens, finds and frees these records; calls.c
    reads them to call a plugin's ops. Private to plugins/: loader.h keeps
    the handles (aq_plugin_provider_t, aq_plugin_vault_t) opaque to
    everyone else.
*/
#ifndef AQ_PLUGIN_LOADED_H
#define AQ_PLUGIN_LOADED_H

#include "loader.h"

#include <stdbool.h>
#include <stddef.h>

#define AQ_PLUGIN_HOST_MAX 253 //  longest host name
#define AQ_PLUGIN_ORIGINS  8   //  most operator origins per provider

typedef struct _aq_plugin_loaded_t aq_plugin_loaded_t;

//  Where a URL points: scheme, host and port.
typedef struct {
    bool https;                        //  else http
    char host[AQ_PLUGIN_HOST_MAX + 1]; //  lower case
    int port;                          //  given, or the scheme's
} aq_plugin_origin_t;

struct _aq_plugin_provider_t {
    const aq_plugin_loaded_t *plugin; //  the loaded plugin
    const aq_provider_ops_t *ops;     //  its provider table
};

struct _aq_plugin_vault_t {
    const aq_plugin_loaded_t *plugin; //  the loaded plugin
    const aq_vault_ops_t *ops;        //  its vault table
};

struct _aq_plugin_loaded_t {
    void *dl;                      //  dlopen handle
    const aq_plugin_t *desc;       //  the plugin's descriptor
    void *state;                   //  what its open returned
    bool opened;                   //  open ran (or it has none): its ops may be called
    char *path;                    //  where it was loaded from
    aq_plugin_provider_t provider; //  handle, when kind is AQ_PLUGIN_PROVIDER
    aq_plugin_vault_t vault;       //  handle, when kind is AQ_PLUGIN_VAULT
    aq_plugin_origin_t origins[AQ_PLUGIN_ORIGINS]; //  operator origins its URLs may also use
    size_t norigins;                               //  how many
};

#endif
