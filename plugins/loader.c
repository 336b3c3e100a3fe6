/*  loader.c - loads plugins from a directory and keeps them for the host

    The host side of aq_plugin.h beside the host table (host.c) and the
    checked calls of a plugin's ops (calls.c): the directory scan with its
    refusals, the registry of what loaded, and where a provider's requests
    may go. Its selftest is loader_test.c; each shipped plugin's is in that
    plugin's folder.
*/
#include "loaded.h"

#include "aq_log.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_COMPONENT "plugins"
#define S_NAME_MAX  63    //  longest plugin name
#define S_SIZE_MAX  65536 //  a larger descriptor or table is garbage
#define S_LIST_MAX  32    //  most hosts or poll headers a provider declares
#define S_URL_MAX   8192  //  longest status, result or cancel URL followed

//  The smallest tables ABI 1 accepts: every field ABI 1 started with.
#define S_END_OF(type, field) (offsetof (type, field) + sizeof (((type *) 0)->field))
#define S_PLUGIN_MIN          S_END_OF (aq_plugin_t, ops)
#define S_PROVIDER_MIN        S_END_OF (aq_provider_ops_t, poll)
#define S_VAULT_MIN           S_END_OF (aq_vault_ops_t, open)

struct _aq_plugin_loader_t {
    char *config;                 //  passed to every open
    int described;                //  plugins of this kind are not opened (0: none)
    aq_plugin_loaded_t **plugins; //  loaded, in load order
    size_t count;                 //  how many
};

// ---------------------------------------------------------------------------
//  Loading

aq_plugin_loader_t *aq_plugin_loader_new (const char *config) {
    aq_plugin_loader_t *self = calloc (1, sizeof *self);
    if (self && config && !(self->config = strdup (config))) {
        free (self);
        return NULL;
    }
    return self;
}

static void s_plugin_destroy (aq_plugin_loaded_t **self_p) {
    aq_plugin_loaded_t *self = *self_p;
    if (!self)
        return;
    if (self->opened && self->state && self->desc->open && self->desc->close) {
        aq_plugin_host_calling (self->desc->name);
        self->desc->close (&self->state);
        aq_plugin_host_calling (NULL);
    }
    if (self->dl)
        dlclose (self->dl);
    free (self->path);
    free (self);
    *self_p = NULL;
}

void aq_plugin_loader_destroy (aq_plugin_loader_t **self_p) {
    aq_plugin_loader_t *self = *self_p;
    if (!self)
        return;
    while (self->count > 0)
        s_plugin_destroy (&self->plugins[--self->count]);
    free (self->plugins);
    free (self->config);
    free (self);
    *self_p = NULL;
}

static aq_plugin_loaded_t *s_find (aq_plugin_loader_t *self, const char *name, int kind) {
    for (size_t i = 0; i < self->count; i++) {
        aq_plugin_loaded_t *plugin = self->plugins[i];
        if ((!kind || plugin->desc->kind == kind) && strcmp (plugin->desc->name, name) == 0)
            return plugin;
    }
    return NULL;
}

static bool s_valid_name (const char *name) {
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower ((unsigned char) name[i]) && !isdigit ((unsigned char) name[i]) &&
            name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

//  True for a host a provider may declare: [a-z0-9.-], at most AQ_PLUGIN_HOST_MAX
//  bytes, neither starting nor ending with a dot, optionally after "*.".
static bool s_valid_host (const char *host) {
    if (strncmp (host, "*.", 2) == 0)
        host += 2;
    size_t len = strnlen (host, AQ_PLUGIN_HOST_MAX + 1);
    return len > 0 && len <= AQ_PLUGIN_HOST_MAX && host[0] != '.' && host[len - 1] != '.' &&
           strspn (host, "abcdefghijklmnopqrstuvwxyz0123456789.-") == len;
}

//  True for a header name (an HTTP token of at most 256 bytes).
static bool s_valid_header (const char *name) {
    size_t len = strnlen (name, 257);
    return len > 0 && len <= 256 &&
           strspn (name, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == len;
}

//  True if list (NULL-terminated; NULL is empty) has at most S_LIST_MAX
//  entries, each valid.
static bool s_valid_list (const char *const *list, bool (*valid) (const char *)) {
    for (size_t i = 0; list && list[i]; i++)
        if (i == S_LIST_MAX || !valid (list[i]))
            return false;
    return true;
}

//  Checks the kind-specific table; logs and returns -1 if it is unusable.
static int s_check_ops (aq_plugin_loaded_t *plugin) {
    const aq_plugin_t *desc = plugin->desc;
    const char *name = desc->name;
    const uint32_t *header = desc->ops; //  every table starts {abi, size}
    if (desc->kind != AQ_PLUGIN_PROVIDER && desc->kind != AQ_PLUGIN_VAULT) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "plugin '%s' has unknown kind %d", name, desc->kind);
        return -1;
    }
    bool provider = desc->kind == AQ_PLUGIN_PROVIDER;
    const char *what = provider ? "provider" : "vault";
    unsigned host_abi = provider ? AQ_PROVIDER_ABI : AQ_VAULT_ABI;
    size_t min = provider ? S_PROVIDER_MIN : S_VAULT_MIN;
    if (!header) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "plugin '%s' has no %s table", name, what);
        return -1;
    }
    if (header[0] != host_abi) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT,
                "plugin '%s' is not binary compatible: %s ABI %u, host has %u", name, what,
                header[0], host_abi);
        return -1;
    }
    if (header[1] < min || header[1] > S_SIZE_MAX) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT,
                "plugin '%s' has a malformed %s table: %u bytes, ABI %u needs at least %zu", name,
                what, header[1], host_abi, min);
        return -1;
    }
    bool complete;
    if (provider) {
        plugin->provider.plugin = plugin;
        plugin->provider.ops = desc->ops;
        complete = plugin->provider.ops->plan && plugin->provider.ops->poll;
    } else {
        plugin->vault.plugin = plugin;
        plugin->vault.ops = desc->ops;
        complete = plugin->vault.ops->seal && plugin->vault.ops->open;
    }
    if (!complete) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "plugin '%s' lacks a required %s operation", name, what);
        return -1;
    }
    if (provider &&
        !s_valid_list (AQ_PLUGIN_GET (plugin->provider.ops, hosts, NULL), s_valid_host)) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT,
                "plugin '%s' declares an invalid host: at most %d names of a-z 0-9 . -", name,
                S_LIST_MAX);
        return -1;
    }
    if (provider &&
        !s_valid_list (AQ_PLUGIN_GET (plugin->provider.ops, poll_headers, NULL), s_valid_header)) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT,
                "plugin '%s' declares an invalid poll header: at most %d header names", name,
                S_LIST_MAX);
        return -1;
    }
    return 0;
}

//  Loads, checks and opens the plugin at path. 0 if it joined self, else -1
//  (logged once).
static int s_load (aq_plugin_loader_t *self, const char *path, const char *stem) {
    int rc = -1;
    aq_plugin_loaded_t *plugin = calloc (1, sizeof *plugin);
    if (!plugin || !(plugin->path = strdup (path))) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "cannot load plugin '%s': out of memory", stem);
        goto out;
    }
    plugin->dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
    if (!plugin->dl) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "cannot load plugin '%s': %s", stem, dlerror ());
        goto out;
    }
    aq_plugin_entry_fn *entry;
    *(void **) &entry = dlsym (plugin->dl, "aq_plugin_entry");
    if (!entry) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "plugin '%s' has no aq_plugin_entry symbol", stem);
        goto out;
    }
    const aq_plugin_t *desc = entry ();
    if (!desc) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "plugin '%s' returned no descriptor", stem);
        goto out;
    }
    //  Only {abi, size} are common to every ABI: check them before anything.
    if (desc->abi != AQ_PLUGIN_ABI) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT,
                "plugin '%s' is not binary compatible: ABI %u, host has %d", stem, desc->abi,
                AQ_PLUGIN_ABI);
        goto out;
    }
    if (desc->size < S_PLUGIN_MIN || desc->size > S_SIZE_MAX) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT,
                "plugin '%s' has a malformed descriptor: %u bytes, ABI %d needs at least %zu", stem,
                desc->size, AQ_PLUGIN_ABI, S_PLUGIN_MIN);
        goto out;
    }
    if (!s_valid_name (desc->name)) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT,
                "plugin '%s' has an invalid name: it needs 1 to %d of a-z 0-9 - _", stem,
                S_NAME_MAX);
        goto out;
    }
    plugin->desc = desc;
    if (s_check_ops (plugin) != 0)
        goto out;
    aq_plugin_loaded_t *loaded = s_find (self, desc->name, 0);
    if (loaded) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "plugin '%s' is already loaded from '%s'; ignoring '%s'",
                desc->name, loaded->path, path);
        goto out;
    }
    aq_plugin_loaded_t **plugins = realloc (self->plugins, (self->count + 1) * sizeof *plugins);
    if (!plugins) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "cannot load plugin '%s': out of memory", stem);
        goto out;
    }
    self->plugins = plugins;
    plugin->opened = desc->kind != self->described;
    aq_plugin_host_calling (desc->name);
    if (!plugin->opened)
        plugin->state = NULL; //  described only: no plugin code beyond its entry
    else
        plugin->state =
            desc->open ? desc->open (aq_plugin_host (), self->config) : (void *) aq_plugin_host ();
    aq_plugin_host_calling (NULL);
    if (plugin->opened && !plugin->state) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "plugin '%s' failed to open; skipped", desc->name);
        goto out;
    }
    aq_log (AQ_LOG_INFO, S_COMPONENT, "loaded %s plugin '%s' %s from '%s'",
            desc->kind == AQ_PLUGIN_PROVIDER ? "provider" : "vault", desc->name,
            desc->version ? desc->version : "", path);
    self->plugins[self->count++] = plugin;
    plugin = NULL;
    rc = 0;
out:
    s_plugin_destroy (&plugin);
    return rc;
}

static int s_is_shared_object (const struct dirent *entry) {
    size_t len = strlen (entry->d_name);
    return entry->d_name[0] != '.' && len > 3 && strcmp (entry->d_name + len - 3, ".so") == 0;
}

int aq_plugin_loader_load_dir (aq_plugin_loader_t *self, const char *dir) {
    assert (self);
    assert (dir);
    struct dirent **entries;
    int n = scandir (dir, &entries, s_is_shared_object, alphasort);
    if (n < 0) {
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "cannot read plugin directory '%s': %s", dir,
                strerror (errno));
        return -1;
    }
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], stem[256];
        const char *name = entries[i]->d_name;
        snprintf (stem, sizeof stem, "%.*s", (int) (strlen (name) - 3), name);
        struct stat st;
        if (snprintf (path, sizeof path, "%s/%s", dir, name) >= (int) sizeof path)
            aq_log (AQ_LOG_ERROR, S_COMPONENT, "cannot load plugin '%s': path too long", stem);
        else if (stat (path, &st) != 0 || !S_ISREG (st.st_mode))
            aq_log (AQ_LOG_ERROR, S_COMPONENT, "cannot load plugin '%s': '%s' is not a file", stem,
                    path);
        else if (s_load (self, path, stem) == 0)
            loaded++;
        free (entries[i]);
    }
    free (entries);
    return loaded;
}

void aq_plugin_loader_describe_only (aq_plugin_loader_t *self, int kind) {
    assert (self);
    self->described = kind;
}

int aq_plugin_loader_load_file (aq_plugin_loader_t *self, const char *path) {
    assert (self);
    assert (path);
    const char *base = strrchr (path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen (base);
    if (len > 3 && strcmp (base + len - 3, ".so") == 0)
        len -= 3;
    char stem[256];
    snprintf (stem, sizeof stem, "%.*s", (int) len, base);
    return s_load (self, path, stem);
}

char *aq_plugin_loader_default_dir (void) {
    const char *env = getenv ("AQ_PLUGIN_DIR");
    if (env && *env)
        return strdup (env);
    char exe[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = 0;
    char *slash = strrchr (exe, '/');
    if (!slash)
        return NULL;
    *slash = 0; //  exe is now the program's directory
    const char *candidates[] = {"../plugins", "../lib/asyncqueue/plugins"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        char *dir = NULL;
        struct stat st;
        if (asprintf (&dir, "%s/%s", exe, candidates[i]) < 0)
            return NULL;
        char *real = stat (dir, &st) == 0 && S_ISDIR (st.st_mode) ? realpath (dir, NULL) : NULL;
        free (dir);
        if (real)
            return real;
    }
    return NULL;
}

// ---------------------------------------------------------------------------
//  Finding

const aq_plugin_provider_t *aq_plugin_loader_provider (aq_plugin_loader_t *self, const char *name) {
    assert (self);
    aq_plugin_loaded_t *plugin = name ? s_find (self, name, AQ_PLUGIN_PROVIDER) : NULL;
    return plugin ? &plugin->provider : NULL;
}

static int s_compare_names (const void *a, const void *b) {
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

char *aq_plugin_loader_providers (aq_plugin_loader_t *self) {
    assert (self);
    const char **names = calloc (self->count + 1, sizeof *names);
    if (!names)
        return NULL;
    size_t count = 0, size = 1;
    for (size_t i = 0; i < self->count; i++)
        if (self->plugins[i]->desc->kind == AQ_PLUGIN_PROVIDER) {
            names[count] = self->plugins[i]->desc->name;
            size += strlen (names[count++]) + 2;
        }
    qsort (names, count, sizeof *names, s_compare_names);
    char *list = malloc (size);
    if (list) {
        *list = 0;
        for (size_t i = 0; i < count; i++) {
            if (i)
                strcat (list, ", ");
            strcat (list, names[i]);
        }
    }
    free (names);
    return list;
}

const aq_plugin_vault_t *aq_plugin_loader_vault (aq_plugin_loader_t *self, const char *name) {
    assert (self);
    aq_plugin_loaded_t *plugin = s_find (self, name ? name : "vault-sodium", AQ_PLUGIN_VAULT);
    for (size_t i = 0; !plugin && !name && i < self->count; i++)
        if (self->plugins[i]->desc->kind == AQ_PLUGIN_VAULT)
            plugin = self->plugins[i];
    return plugin ? &plugin->vault : NULL;
}

const char *aq_plugin_provider_name (const aq_plugin_provider_t *self) {
    return self->plugin->desc->name;
}

const char *aq_plugin_vault_name (const aq_plugin_vault_t *self) {
    return self->plugin->desc->name;
}

const char *aq_plugin_provider_auth_format (const aq_plugin_provider_t *self) {
    return AQ_PLUGIN_GET (self->ops, auth_format, NULL);
}

const aq_provider_ops_t *aq_plugin_provider_ops (const aq_plugin_provider_t *self) {
    return self->ops;
}

const char *aq_plugin_provider_path (const aq_plugin_provider_t *self) {
    return self->plugin->path;
}

// ---------------------------------------------------------------------------
//  Where a provider's requests may go, and what they carry

//  Reads the origin of an absolute http(s) URL into *origin; *rest is where
//  its path begins. 0, or -1 if url is not one the host follows: longer
//  than S_URL_MAX, with a space or control character, userinfo, an IP
//  literal in brackets, a host beyond [A-Za-z0-9.-] or a bad port.
static int s_origin_parse (const char *url, aq_plugin_origin_t *origin, const char **rest) {
    size_t len = url ? strnlen (url, S_URL_MAX + 1) : S_URL_MAX + 1;
    if (len > S_URL_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) url[i] <= 0x20 || url[i] == 0x7F)
            return -1;
    memset (origin, 0, sizeof *origin);
    const char *at = url;
    if (strncasecmp (url, "https://", 8) == 0) {
        origin->https = true;
        origin->port = 443;
        at += 8;
    } else if (strncasecmp (url, "http://", 7) == 0) {
        origin->port = 80;
        at += 7;
    } else
        return -1;
    size_t authority = strcspn (at, "/?#");
    size_t host = strcspn (at, ":/?#");
    if (host == 0 || host > AQ_PLUGIN_HOST_MAX)
        return -1;
    for (size_t i = 0; i < host; i++) {
        if (!isalnum ((unsigned char) at[i]) && at[i] != '-' && at[i] != '.')
            return -1; //  '@' (userinfo), '[', '%', '\\' and the like
        origin->host[i] = (char) tolower ((unsigned char) at[i]);
    }
    if (host < authority) {
        size_t digits = authority - host - 1;
        if (digits == 0 || digits > 5 || strspn (at + host + 1, "0123456789") < digits)
            return -1;
        origin->port = atoi (at + host + 1);
        if (origin->port < 1 || origin->port > 65535)
            return -1;
    }
    *rest = at + authority;
    return 0;
}

//  True if host is pattern, or pattern is "*.name" and host ends in ".name".
static bool s_host_matches (const char *pattern, const char *host) {
    if (strncmp (pattern, "*.", 2) != 0)
        return strcmp (pattern, host) == 0;
    size_t suffix = strlen (pattern + 1), len = strlen (host);
    return len > suffix && strcmp (host + len - suffix, pattern + 1) == 0;
}

bool aq_plugin_origin_valid (const char *origin) {
    aq_plugin_origin_t parsed;
    const char *rest;
    return s_origin_parse (origin, &parsed, &rest) == 0 && (!*rest || strcmp (rest, "/") == 0);
}

int aq_plugin_loader_allow_origin (aq_plugin_loader_t *self, const char *name, const char *origin) {
    assert (self);
    aq_plugin_loaded_t *plugin = name ? s_find (self, name, AQ_PLUGIN_PROVIDER) : NULL;
    if (!plugin || plugin->norigins == AQ_PLUGIN_ORIGINS || !aq_plugin_origin_valid (origin))
        return -1;
    const char *rest;
    s_origin_parse (origin, &plugin->origins[plugin->norigins++], &rest);
    return 0;
}

bool aq_plugin_provider_url_allowed (const aq_plugin_provider_t *self, const char *url) {
    aq_plugin_origin_t origin;
    const char *rest;
    if (s_origin_parse (url, &origin, &rest) != 0)
        return false;
    const aq_plugin_loaded_t *plugin = self->plugin;
    for (size_t i = 0; i < plugin->norigins; i++)
        if (plugin->origins[i].https == origin.https && plugin->origins[i].port == origin.port &&
            strcmp (plugin->origins[i].host, origin.host) == 0)
            return true;
    const char *const *hosts = AQ_PLUGIN_GET (self->ops, hosts, NULL);
    for (size_t i = 0; origin.https && origin.port == 443 && hosts && hosts[i]; i++)
        if (s_host_matches (hosts[i], origin.host))
            return true;
    return false;
}

bool aq_plugin_provider_sends_header (const aq_plugin_provider_t *self, const char *name) {
    const char *auth = AQ_PLUGIN_GET (self->ops, auth_header, NULL);
    if (!name || (auth && strcasecmp (auth, name) == 0))
        return name != NULL;
    const char *const *list = AQ_PLUGIN_GET (self->ops, poll_headers, NULL);
    for (size_t i = 0; list && list[i]; i++)
        if (strcasecmp (list[i], name) == 0)
            return true;
    return false;
}
