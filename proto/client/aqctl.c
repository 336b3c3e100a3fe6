/*  aqctl.c - the asyncqueue command-line client: teams, keys, tasks, schedules, flow, stats

    aqctl [--data DIR | --broker EP] [--key-file PATH | --key KEY]
          [--admin-token-file PATH | --admin-token T] [--json] COMMAND

    Built on the client library (aq_client.h); every command is one request
    to the broker's client socket. Output is the reply's JSON, pretty-printed
    (compact with --json); `key create` prints the new key alone. Exit codes:
    0 success, 1 the broker refused or could not be reached (or a secret
    file is refused), 2 bad usage. Secrets are read from files (aq_secret.h)
    or the environment as well as from arguments, which every local user
    can see in ps.
*/
#include "aq_client.h"
#include "aq_curve.h"
#include "aq_secret.h"
#include "aq_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TIMEOUT_MS 5000 //  how long to wait for the broker
#define S_WATCH_WAIT 25   //  long poll seconds per `task watch` round

static const char *s_usage =
    "usage: aqctl [--data DIR | --broker EP] [--key-file PATH | --key KEY]\n"
    "             [--admin-token-file PATH | --admin-token T] [--json] COMMAND\n"
    "\n"
    "Talks to the asyncqueue broker's client socket.\n"
    "  --data DIR                use ipc://DIR/client.ipc and the admin token in\n"
    "                            DIR/admin.token\n"
    "  --broker EP               broker client endpoint (default $AQ_BROKER or\n"
    "                            ipc://data/client.ipc)\n"
    "  --cert PATH_secret        our CURVE certificate, for a tcp:// broker with --cert\n"
    "  --broker-cert PATH        the broker's public certificate\n"
    "  --key-file PATH           the API key for task commands, read from PATH\n"
    "  --key KEY                 the same on the command line (default $AQ_API_KEY)\n"
    "  --admin-token-file PATH   the admin token for team and key commands, from PATH\n"
    "  --admin-token T           the same on the command line (default $AQ_ADMIN_TOKEN,\n"
    "                            or DIR/admin.token with --data)\n"
    "  --json                    compact JSON output (default: pretty-printed)\n"
    "  --help                    this text\n"
    "\n"
    "Secrets: prefer --key-file, --admin-token-file or $AQ_API_KEY / $AQ_ADMIN_TOKEN\n"
    "to --key and --admin-token, whose values every local user sees in ps (and your\n"
    "shell keeps in its history). A secret file (and DIR/admin.token) must be a\n"
    "regular file, not a symbolic link, owned by you, closed to group and others\n"
    "(chmod 600); its trailing newline is ignored.\n"
    "\n"
    "Certificates (no broker needed):\n"
    "  cert create PATH   writes a CURVE key pair: PATH (public, give it to the broker's\n"
    "                     --allow-clients or --allow-workers directory, or to clients as\n"
    "                     --broker-cert) and PATH_secret (0600, stays on this machine)\n"
    "\n"
    "Teams and keys (admin token):\n"
    "  team create NAME\n"
    "  team list\n"
    "  team secret NAME [--rotate]                   the whsec_ signing secret of outgoing calls\n"
    "  team limit NAME --rps N [--burst M]           per-team request rate limit (0 = none)\n"
    "  key create --team NAME [--scope full|read]   prints only the new key\n"
    "  key list [--team NAME]\n"
    "  key revoke ID\n"
    "\n"
    "Tasks (API key):\n"
    "  task create --url URL [--method M] [--header 'K: V']... [--body S]\n"
    "              [--delay-until ISO] [--max-retries N] [--priority N]\n"
    "              [--retry-backoff S] [--timeout N] [--max-wait-time N]\n"
    "              [--on-complete-url URL] [--idempotency-key K]\n"
    "  task create --json '{...}' | --file FILE      a POST /v1/tasks body (flags override);\n"
    "                                                --file - reads stdin: put header\n"
    "                                                secrets there, not in --header\n"
    "  task get ID [--wait N]                        long poll up to N <= 25 s\n"
    "  task list [--status S] [--limit N] [--offset N] [--sort asc|desc]\n"
    "            [--label NAME:VALUE]... [--target-url PREFIX] [--provider P]\n"
    "            [--flow-key K] [--created-after ISO] [--created-before ISO]\n"
    "  task cancel ID\n"
    "  task retry ID                                 replay a failed or timed-out task\n"
    "  task attempts ID\n"
    "  task watch ID                                 one line per status change until done\n"
    "  task batch FILE [--idempotency-key K]         create the tasks of FILE ({\"tasks\": [...]}\n"
    "                                                or an array; - reads stdin), all or none\n"
    "  task bulk cancel|retry FILTER | --ids ID,...  act on every task the filter matches (the\n"
    "                                                task list options; none: all the team's)\n"
    "                                                or on the ids, in the background\n"
    "  bulk get ID                                   a bulk job's progress\n"
    "\n"
    "Scheduled tasks and events (API key):\n"
    "  schedule create --json '{...}' | --file FILE\n"
    "                                                a POST /tasks body; --file - reads stdin\n"
    "  schedule list [--status S] [--kind K] [--created-by UUID] [--limit N] [--offset N]\n"
    "  schedule get ID\n"
    "  schedule update ID --json '{...}' | --file FILE\n"
    "  schedule run-now ID                           start a run now\n"
    "  schedule snooze ID SECONDS [--reason R]       no scheduled run for SECONDS (<= 604800)\n"
    "  schedule pause ID | resume ID | cancel ID\n"
    "  schedule runs ID [--limit N] [--offset N]\n"
    "  schedule preview ID [--count N]               the next N fire times (default 5)\n"
    "  schedule preview --kind K [--expr E] [--timezone Z] [--count N]\n"
    "                                                those of a schedule not created\n"
    "  event fire NAME [--data JSON]                 run the event schedules waiting for NAME\n"
    "                                                (here --data is the event's: put the\n"
    "                                                global --data DIR before the command)\n"
    "\n"
    "Flow control keys (API key): limits on the calls of the tasks naming a key\n"
    "  flow list [--limit N] [--offset N]\n"
    "  flow get KEY                                  limits, effective rate, in flight, waiting\n"
    "  flow set KEY [--rate N] [--period S] [--parallelism N]\n"
    "                                                the key's limits, as a whole\n"
    "  flow pause KEY | resume KEY                   stop or restart starting its calls\n"
    "\n"
    "  stats                                         a key: its team's tasks; the admin\n"
    "                                                token: the whole server's figures\n"
    "  whoami                                        the key's team and scope\n"
    "\n"
    "Exit status: 0 ok, 1 refused by the broker, broker unreachable or a secret file\n"
    "refused, 2 bad usage.\n";

typedef struct {
    const char *endpoint; //  broker client endpoint
    char *admin;          //  admin token or NULL
    bool compact;         //  --json
    aq_client_t *client;  //  the connection
} s_ctl_t;

//  Command arguments after the command words: positionals and --options.
typedef struct {
    int argc;    //  remaining arguments
    char **argv; //  borrowed from main
} s_args_t;

static int s_usage_error (const char *fmt, const char *arg) {
    fprintf (stderr, "aqctl: ");
    fprintf (stderr, fmt, arg);
    fprintf (stderr, "\n(see aqctl --help)\n");
    return 2;
}

//  The secret in path (see aq_secret_read), or NULL after printing why.
static char *s_read_secret (const char *path, const char *what) {
    char err[4400];
    char *secret = aq_secret_read (path, what, err, sizeof err);
    if (!secret)
        fprintf (stderr, "aqctl: %s\n", err);
    return secret;
}

static void s_print (s_ctl_t *self, const json_t *value) {
    size_t flags = JSON_ENCODE_ANY | (self->compact ? JSON_COMPACT : JSON_INDENT (2));
    char *text = json_dumps (value, flags);
    if (text)
        puts (text);
    free (text);
}

//  Checks the outcome of aq_client_call. Returns the REPLY (caller owns) on
//  a 2xx status; otherwise prints why, frees it and returns NULL.
static json_t *s_check (s_ctl_t *self, int status, json_t *reply) {
    if (status < 0) {
        if (errno == ETIMEDOUT)
            fprintf (stderr, "aqctl: no answer from broker at '%s'\n", self->endpoint);
        else if (errno == ENOTCONN)
            fprintf (stderr, "aqctl: cannot reach broker at '%s': is asyncqueue running?\n",
                     self->endpoint);
        else
            fprintf (stderr, "aqctl: cannot talk to broker at '%s': %s\n", self->endpoint,
                     strerror (errno));
        return NULL;
    }
    if (status < 200 || status > 299) {
        const char *error = aq_client_reply_error (reply);
        fprintf (stderr, "aqctl: %s (HTTP %d)\n", error ? error : "request failed", status);
        int64_t retry_after = aq_field_int (reply, "retryAfter", 0);
        if (retry_after > 0)
            fprintf (stderr, "aqctl: retry after %lld s\n", (long long) retry_after);
        json_decref (reply);
        return NULL;
    }
    return reply;
}

//  Sends one request: see s_check.
static json_t *s_request (s_ctl_t *self, int cmd, json_t *fields) {
    json_t *reply = NULL;
    int status = aq_client_call (self->client, cmd, fields, &reply);
    return s_check (self, status, reply);
}

//  Consumes the value of option `name` at argv[*i] (as "--name V" or
//  "--name=V"). Returns the value, or NULL if argv[*i] is not that option.
//  *missing is set when the option has no value.
static const char *s_option (s_args_t *args, int *i, const char *name, bool *missing) {
    const char *arg = args->argv[*i];
    size_t len = strlen (name);
    if (strncmp (arg, name, len) != 0)
        return NULL;
    if (arg[len] == '=')
        return arg + len + 1;
    if (arg[len] != 0)
        return NULL;
    if (*i + 1 >= args->argc) {
        *missing = true;
        return NULL;
    }
    return args->argv[++*i];
}

//  Option parsing shared by every command: a table of names and slots.
typedef struct {
    const char *name;  //  "--team"
    const char **slot; //  where the value goes
} s_opt_t;

//  Splits args into positionals (up to max_pos) and the table's options.
//  Returns 0, or 2 after printing a usage error.
static int s_parse (s_args_t *args, const s_opt_t *opts, const char **pos, int max_pos, int *npos) {
    *npos = 0;
    for (int i = 0; i < args->argc; i++) {
        const char *arg = args->argv[i];
        if (arg[0] == '-' && arg[1] == '-') {
            bool missing = false, known = false;
            for (const s_opt_t *opt = opts; opt && opt->name; opt++) {
                const char *value = s_option (args, &i, opt->name, &missing);
                if (missing)
                    return s_usage_error ("option '%s' needs a value", opt->name);
                if (value) {
                    *opt->slot = value;
                    known = true;
                    break;
                }
            }
            if (!known)
                return s_usage_error ("unknown option '%s'", arg);
        } else if (*npos < max_pos)
            pos[(*npos)++] = arg;
        else
            return s_usage_error ("unexpected argument '%s'", arg);
    }
    return 0;
}

//  A numeric option goes to the broker as an integer when it is one, else as
//  the string given, so the broker's validation message names the field.
static json_t *s_number (const char *text) {
    char *end;
    errno = 0;
    long long value = strtoll (text, &end, 10);
    if (errno == 0 && end != text && *end == 0)
        return json_integer (value);
    return json_string (text);
}

//  Sets fields[name] to the string value when value is given.
static void s_set_str (json_t *fields, const char *name, const char *value) {
    if (value)
        json_object_set_new (fields, name, json_string (value));
}

//  Prints body[member] of a successful reply (the whole body if member is
//  NULL). Returns the exit status.
static int s_show (s_ctl_t *self, int cmd, json_t *fields, const char *member) {
    json_t *reply = s_request (self, cmd, fields);
    json_decref (fields);
    if (!reply)
        return 1;
    json_t *body = aq_client_reply_body (reply);
    json_t *value = member ? json_object_get (body, member) : body;
    s_print (self, value ? value : json_null ());
    json_decref (reply);
    return 0;
}

//  --------------------------------------------------------------------------
//  team, key

static int s_team (s_ctl_t *self, const char *verb, s_args_t *args) {
    const char *pos[1], *rps = NULL, *burst = NULL;
    int npos;
    bool rotate = false;
    for (int i = 0; i < args->argc; i++) //  a switch s_parse does not know
        if (strcmp (args->argv[i], "--rotate") == 0) {
            rotate = true;
            args->argv[i--] = args->argv[--args->argc];
        }
    const s_opt_t opts[] = {{"--rps", &rps}, {"--burst", &burst}, {NULL, NULL}};
    if (s_parse (args, opts, pos, 1, &npos))
        return 2;
    if (strcmp (verb, "secret") == 0 && npos == 1 && !rps && !burst)
        return s_show (self, AQ_CMD_TEAM_SECRET,
                       json_pack ("{s:s, s:b}", "team", pos[0], "rotate", rotate), "team");
    if (strcmp (verb, "limit") == 0 && npos == 1 && rps && !rotate) {
        json_t *fields = json_pack ("{s:s, s:f}", "team", pos[0], "rps", atof (rps));
        if (burst)
            json_object_set_new (fields, "burst", json_real (atof (burst)));
        return s_show (self, AQ_CMD_TEAM_LIMIT, fields, "team");
    }
    if (strcmp (verb, "create") == 0) {
        if (npos != 1)
            return s_usage_error ("%s", "team create needs a NAME");
        return s_show (self, AQ_CMD_TEAM_CREATE, json_pack ("{s:s}", "name", pos[0]), "team");
    }
    if (strcmp (verb, "list") == 0 && npos == 0)
        return s_show (self, AQ_CMD_TEAM_LIST, NULL, "teams");
    return s_usage_error ("unknown command 'team %s'", verb);
}

static int s_key (s_ctl_t *self, const char *verb, s_args_t *args) {
    const char *team = NULL, *scope = NULL;
    const s_opt_t opts[] = {{"--team", &team}, {"--scope", &scope}, {NULL, NULL}};
    const char *pos[1];
    int npos;
    if (s_parse (args, opts, pos, 1, &npos))
        return 2;
    if (strcmp (verb, "create") == 0) {
        if (!team || npos)
            return s_usage_error ("%s", "usage: key create --team NAME [--scope full|read]");
        json_t *fields = json_pack ("{s:s}", "team", team);
        if (scope)
            json_object_set_new (fields, "scope", json_string (scope));
        json_t *reply = s_request (self, AQ_CMD_KEY_CREATE, fields);
        json_decref (fields);
        if (!reply)
            return 1;
        const char *secret =
            aq_field_str (json_object_get (aq_client_reply_body (reply), "key"), "secret");
        int rc = 0;
        if (secret)
            puts (secret);
        else {
            fprintf (stderr, "aqctl: the broker's reply holds no key secret\n");
            rc = 1;
        }
        json_decref (reply);
        return rc;
    }
    if (strcmp (verb, "list") == 0 && !scope && !npos) {
        json_t *fields = team ? json_pack ("{s:s}", "team", team) : NULL;
        return s_show (self, AQ_CMD_KEY_LIST, fields, "keys");
    }
    if (strcmp (verb, "revoke") == 0 && !team && !scope) {
        if (npos != 1)
            return s_usage_error ("%s", "key revoke needs a key ID");
        return s_show (self, AQ_CMD_KEY_REVOKE, json_pack ("{s:s}", "id", pos[0]), "key");
    }
    return s_usage_error ("bad arguments to 'key %s'", verb);
}

//  --------------------------------------------------------------------------
//  task

//  The JSON object of --json TEXT or --file FILE ("-" for stdin), exactly
//  one of them given. Returns it (caller owns) or NULL after printing a
//  usage error.
static json_t *s_body_arg (const char *text, const char *file, const char *command) {
    if (text && file) {
        s_usage_error ("%s: give --json or --file, not both", command);
        return NULL;
    }
    if (!text && !file) {
        s_usage_error ("%s needs --json '{...}' or --file FILE", command);
        return NULL;
    }
    json_error_t error;
    json_t *body = NULL;
    if (text)
        body = json_loads (text, JSON_REJECT_DUPLICATES, &error);
    else if (strcmp (file, "-") == 0)
        body = json_loadf (stdin, JSON_REJECT_DUPLICATES, &error);
    else {
        FILE *in = fopen (file, "r");
        if (!in) {
            fprintf (stderr, "aqctl: cannot read '%s': %s\n", file, strerror (errno));
            return NULL;
        }
        body = json_loadf (in, JSON_REJECT_DUPLICATES, &error);
        fclose (in);
    }
    const char *where = text ? "--json" : file;
    if (!body)
        fprintf (stderr, "aqctl: invalid JSON in '%s' at line %d, column %d: %s\n", where,
                 error.line, error.column, error.text);
    else if (!json_is_object (body)) {
        fprintf (stderr, "aqctl: '%s' must hold a JSON object\n", where);
        json_decref (body);
        body = NULL;
    }
    if (!body)
        fprintf (stderr, "(see aqctl --help)\n");
    return body;
}

//  Builds a POST /v1/tasks body from --json or --file and the flags.
//  Returns it (caller owns) or NULL after printing a usage error.
static json_t *s_task_body (s_args_t *args, const char **idem) {
    const char *url = NULL, *method = NULL, *body = NULL, *delay = NULL, *retries = NULL,
               *priority = NULL, *backoff = NULL, *timeout = NULL, *max_wait = NULL,
               *on_complete = NULL, *json = NULL, *file = NULL;
    const s_opt_t opts[] = {{"--url", &url},
                            {"--method", &method},
                            {"--body", &body},
                            {"--delay-until", &delay},
                            {"--max-retries", &retries},
                            {"--priority", &priority},
                            {"--retry-backoff", &backoff},
                            {"--timeout", &timeout},
                            {"--max-wait-time", &max_wait},
                            {"--on-complete-url", &on_complete},
                            {"--idempotency-key", idem},
                            {"--json", &json},
                            {"--file", &file},
                            {NULL, NULL}};
    //  --header repeats, so take those out first.
    json_t *headers = json_object ();
    s_args_t rest = {0, calloc ((size_t) args->argc + 1, sizeof (char *))};
    for (int i = 0; i < args->argc; i++) {
        bool missing = false;
        const char *header = s_option (args, &i, "--header", &missing);
        if (missing) {
            s_usage_error ("option '%s' needs a value", "--header");
            goto fail;
        }
        if (!header) {
            rest.argv[rest.argc++] = args->argv[i];
            continue;
        }
        const char *colon = strchr (header, ':');
        if (!colon || colon == header) {
            s_usage_error ("--header '%s' is not 'Name: value'", header);
            goto fail;
        }
        const char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        char *name = strndup (header, (size_t) (colon - header));
        json_object_set_new (headers, name, json_string (value));
        free (name);
    }
    const char *pos[1];
    int npos;
    if (s_parse (&rest, opts, pos, 0, &npos))
        goto fail;
    json_t *task = json || file ? s_body_arg (json, file, "task create") : json_object ();
    if (!task)
        goto fail;
    if (!url && !json_object_get (task, "targetUrl")) {
        json_decref (task);
        s_usage_error ("%s", "task create needs --url URL (or --json or --file with targetUrl)");
        goto fail;
    }
    if (url)
        json_object_set_new (task, "targetUrl", json_string (url));
    if (method)
        json_object_set_new (task, "method", json_string (method));
    if (json_object_size (headers)) {
        json_t *given = json_object_get (task, "headers");
        if (json_is_object (given))
            json_object_update (given, headers);
        else
            json_object_set (task, "headers", headers);
    }
    if (body)
        json_object_set_new (task, "body", json_string (body));
    if (delay)
        json_object_set_new (task, "delayUntil", json_string (delay));
    if (backoff)
        json_object_set_new (task, "retryBackoff", json_string (backoff));
    if (on_complete)
        json_object_set_new (task, "onCompleteUrl", json_string (on_complete));
    if (retries)
        json_object_set_new (task, "maxRetries", s_number (retries));
    if (priority)
        json_object_set_new (task, "priority", s_number (priority));
    if (timeout)
        json_object_set_new (task, "timeout", s_number (timeout));
    if (max_wait)
        json_object_set_new (task, "maxWaitTime", s_number (max_wait));
    json_decref (headers);
    free (rest.argv);
    return task;
fail:
    json_decref (headers);
    free (rest.argv);
    return NULL;
}

static const char *s_terminal[] = {"completed", "failed", "timeout", "cancelled", NULL};

static bool s_is_terminal (const char *status) {
    for (const char **t = s_terminal; status && *t; t++)
        if (strcmp (status, *t) == 0)
            return true;
    return false;
}

//  One line per observed status: time, id, status and what is known.
static void s_watch_line (s_ctl_t *self, json_t *task) {
    if (self->compact) {
        s_print (self, task);
        fflush (stdout);
        return;
    }
    char now[32];
    aq_time_format (aq_time_now_ms (), now);
    const char *status = aq_field_str (task, "status");
    printf ("%s %s %s", now, aq_field_str (task, "id"), status ? status : "?");
    json_t *result = json_object_get (task, "result");
    int64_t code = aq_field_int (result, "statusCode", -1);
    if (code >= 0)
        printf (" HTTP %lld in %lld ms", (long long) code,
                (long long) aq_field_int (result, "duration", 0));
    int64_t retries = aq_field_int (task, "retryCount", 0);
    if (retries > 0)
        printf (" retry %lld/%lld", (long long) retries,
                (long long) aq_field_int (task, "maxRetries", 0));
    const char *next = aq_field_str (task, "nextAttemptAt");
    if (next && strcmp (status ? status : "", "delayed") == 0)
        printf (" next at %s", next);
    const char *error = aq_field_str (task, "error");
    if (error)
        printf (": %s", error);
    printf ("\n");
    fflush (stdout);
}

static int s_task_watch (s_ctl_t *self, const char *id) {
    char *last = NULL;
    int rc = 0;
    for (int wait = 0;; wait = S_WATCH_WAIT) {
        json_t *fields = json_pack ("{s:s}", "id", id);
        if (wait)
            json_object_set_new (fields, "wait", json_integer (wait));
        json_t *reply = NULL;
        int code = aq_client_call (self->client, AQ_CMD_TASK_GET, fields, &reply);
        int err = errno;
        json_decref (fields);
        errno = err;
        if (code < 0 && errno == ETIMEDOUT)
            continue; //  the broker restarted under the long poll: ask again
        reply = s_check (self, code, reply);
        if (!reply) {
            rc = 1;
            break;
        }
        json_t *task = aq_client_reply_task (reply);
        const char *status = aq_field_str (task, "status");
        if (!last || !status || strcmp (last, status) != 0) {
            s_watch_line (self, task);
            free (last);
            last = strdup (status ? status : "");
        }
        bool done = s_is_terminal (status);
        json_decref (reply);
        if (done)
            break;
    }
    free (last);
    return rc;
}

//  task list and task bulk: the list filters as options (--label may be
//  repeated), then the list's page options or the bulk action and --ids.
static int s_task_filter (s_ctl_t *self, const char *verb, s_args_t *args) {
    bool bulk = strcmp (verb, "bulk") == 0;
    const char *status = NULL, *limit = NULL, *offset = NULL, *sort = NULL, *url = NULL,
               *provider = NULL, *flow_key = NULL, *after = NULL, *before = NULL, *ids = NULL;
    json_t *labels = json_array ();
    s_args_t rest = {0, args->argv};
    for (int i = 0; i < args->argc; i++) { //  --label, repeated: s_parse keeps one
        bool missing = false;
        const char *label = s_option (args, &i, "--label", &missing);
        if (missing) {
            json_decref (labels);
            return s_usage_error ("option '%s' needs a value", "--label");
        }
        if (label)
            json_array_append_new (labels, json_string (label));
        else
            rest.argv[rest.argc++] = args->argv[i];
    }
    const s_opt_t list_opts[] = {{"--status", &status},       {"--target-url", &url},
                                 {"--provider", &provider},   {"--flow-key", &flow_key},
                                 {"--created-after", &after}, {"--created-before", &before},
                                 {"--limit", &limit},         {"--offset", &offset},
                                 {"--sort", &sort},           {NULL, NULL}};
    const s_opt_t bulk_opts[] = {{"--status", &status},
                                 {"--target-url", &url},
                                 {"--provider", &provider},
                                 {"--flow-key", &flow_key},
                                 {"--created-after", &after},
                                 {"--created-before", &before},
                                 {"--ids", &ids},
                                 {NULL, NULL}};
    const char *pos[1];
    int npos;
    if (s_parse (&rest, bulk ? bulk_opts : list_opts, pos, bulk ? 1 : 0, &npos)) {
        json_decref (labels);
        return 2;
    }
    if (bulk && npos != 1) {
        json_decref (labels);
        return s_usage_error ("%s", "usage: task bulk cancel|retry [FILTER] | --ids ID,...");
    }
    json_t *filter = json_object ();
    s_set_str (filter, "status", status);
    s_set_str (filter, "targetUrl", url);
    s_set_str (filter, "provider", provider);
    s_set_str (filter, "flowControlKey", flow_key);
    s_set_str (filter, "createdAfter", after);
    s_set_str (filter, "createdBefore", before);
    if (!bulk) { //  as a query string carries them
        if (json_array_size (labels))
            json_object_set (filter, "label", labels);
        s_set_str (filter, "limit", limit);
        s_set_str (filter, "offset", offset);
        s_set_str (filter, "sortOrder", sort);
        json_decref (labels);
        return s_show (self, AQ_CMD_TASK_LIST, filter, NULL);
    }
    json_t *object = json_object ();
    size_t index;
    json_t *label;
    json_array_foreach (labels, index, label) {
        const char *text = json_string_value (label), *colon = strchr (text, ':');
        if (!colon) {
            int rc = s_usage_error ("--label '%s' is not NAME:VALUE", text);
            json_decref (labels), json_decref (object), json_decref (filter);
            return rc;
        }
        char name[128];
        snprintf (name, sizeof name, "%.*s", (int) (colon - text), text);
        json_object_set_new (object, name, json_string (colon + 1));
    }
    json_decref (labels);
    if (json_object_size (object))
        json_object_set (filter, "labels", object);
    json_decref (object);
    json_t *body = json_pack ("{s:s}", "action", pos[0]);
    if (ids) {
        json_t *list = json_array ();
        for (const char *at = ids; *at;) {
            size_t len = strcspn (at, ",");
            json_array_append_new (list, json_stringn (at, len));
            at += len + (at[len] == ',');
        }
        json_object_set_new (body, "ids", list);
        json_decref (filter);
    } else
        json_object_set_new (body, "filter", filter);
    return s_show (self, AQ_CMD_TASK_BULK, json_pack ("{s:o}", "bulk", body), "bulk");
}

//  task batch FILE: {"tasks": [...]} or a bare array.
static int s_task_batch (s_ctl_t *self, s_args_t *args) {
    const char *idem = NULL, *pos[1];
    const s_opt_t opts[] = {{"--idempotency-key", &idem}, {NULL, NULL}};
    int npos;
    if (s_parse (args, opts, pos, 1, &npos))
        return 2;
    if (npos != 1)
        return s_usage_error ("%s", "usage: task batch FILE [--idempotency-key K]");
    json_error_t error;
    FILE *in = strcmp (pos[0], "-") == 0 ? stdin : fopen (pos[0], "r");
    if (!in) {
        fprintf (stderr, "aqctl: cannot read '%s': %s\n", pos[0], strerror (errno));
        return 1;
    }
    json_t *batch = json_loadf (in, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (in != stdin)
        fclose (in);
    if (!batch) {
        fprintf (stderr, "aqctl: invalid JSON in '%s' at line %d, column %d: %s\n", pos[0],
                 error.line, error.column, error.text);
        return 2;
    }
    if (json_is_array (batch))
        batch = json_pack ("{s:o}", "tasks", batch);
    json_t *fields = json_pack ("{s:o}", "batch", batch);
    if (idem)
        json_object_set_new (fields, "idem", json_string (idem));
    return s_show (self, AQ_CMD_TASK_BATCH, fields, "tasks");
}

static int s_task (s_ctl_t *self, const char *verb, s_args_t *args) {
    if (strcmp (verb, "create") == 0) {
        const char *idem = NULL;
        json_t *task = s_task_body (args, &idem);
        if (!task)
            return 2;
        json_t *fields = json_pack ("{s:o}", "task", task);
        if (idem)
            json_object_set_new (fields, "idem", json_string (idem));
        return s_show (self, AQ_CMD_TASK_CREATE, fields, "task");
    }
    if (strcmp (verb, "list") == 0 || strcmp (verb, "bulk") == 0)
        return s_task_filter (self, verb, args);
    if (strcmp (verb, "batch") == 0)
        return s_task_batch (self, args);
    const char *verbs[] = {"get", "cancel", "retry", "attempts", "watch", NULL};
    const char **known = verbs;
    while (*known && strcmp (*known, verb) != 0)
        known++;
    if (!*known)
        return s_usage_error ("unknown command 'task %s'", verb);
    const char *wait = NULL;
    const s_opt_t get_opts[] = {{"--wait", &wait}, {NULL, NULL}};
    bool is_get = strcmp (verb, "get") == 0;
    const char *pos[1];
    int npos;
    if (s_parse (args, is_get ? get_opts : NULL, pos, 1, &npos))
        return 2;
    if (npos != 1)
        return s_usage_error ("task %s needs a task ID", verb);
    json_t *fields = json_pack ("{s:s}", "id", pos[0]);
    if (is_get) {
        if (wait)
            json_object_set_new (fields, "wait", s_number (wait));
        return s_show (self, AQ_CMD_TASK_GET, fields, "task");
    }
    if (strcmp (verb, "cancel") == 0)
        return s_show (self, AQ_CMD_TASK_CANCEL, fields, "task");
    if (strcmp (verb, "retry") == 0)
        return s_show (self, AQ_CMD_TASK_RETRY, fields, "task");
    if (strcmp (verb, "attempts") == 0)
        return s_show (self, AQ_CMD_TASK_ATTEMPTS, fields, "attempts");
    json_decref (fields);
    return s_task_watch (self, pos[0]);
}

//  --------------------------------------------------------------------------
//  schedule, event

static int s_schedule (s_ctl_t *self, const char *verb, s_args_t *args) {
    const char *json = NULL, *file = NULL, *status = NULL, *kind = NULL, *created_by = NULL,
               *limit = NULL, *offset = NULL, *reason = NULL, *count = NULL, *expr = NULL,
               *timezone = NULL;
    const s_opt_t body_opts[] = {{"--json", &json}, {"--file", &file}, {NULL, NULL}};
    const s_opt_t list_opts[] = {{"--status", &status},         {"--kind", &kind},
                                 {"--created-by", &created_by}, {"--limit", &limit},
                                 {"--offset", &offset},         {NULL, NULL}};
    const s_opt_t page_opts[] = {{"--limit", &limit}, {"--offset", &offset}, {NULL, NULL}};
    const s_opt_t snooze_opts[] = {{"--reason", &reason}, {NULL, NULL}};
    const s_opt_t preview_opts[] = {{"--count", &count},
                                    {"--kind", &kind},
                                    {"--expr", &expr},
                                    {"--timezone", &timezone},
                                    {NULL, NULL}};
    //  Each verb: its command, options, positionals and the reply member shown
    static const struct {
        const char *verb; //  as typed
        int cmd;          //  AQ_CMD_*
        int npos;         //  positionals (ID, SECONDS); -1: ID, or none with --kind
        const char *show; //  member of the reply body printed, NULL for all of it
    } verbs[] = {{"create", AQ_CMD_SCHEDULE_CREATE, 0, "task"},
                 {"list", AQ_CMD_SCHEDULE_LIST, 0, NULL},
                 {"get", AQ_CMD_SCHEDULE_GET, 1, "task"},
                 {"update", AQ_CMD_SCHEDULE_UPDATE, 1, "task"},
                 {"run-now", AQ_CMD_SCHEDULE_RUN_NOW, 1, "run"},
                 {"snooze", AQ_CMD_SCHEDULE_SNOOZE, 2, "task"},
                 {"pause", AQ_CMD_SCHEDULE_PAUSE, 1, "task"},
                 {"resume", AQ_CMD_SCHEDULE_RESUME, 1, "task"},
                 {"cancel", AQ_CMD_SCHEDULE_CANCEL, 1, "task"},
                 {"runs", AQ_CMD_SCHEDULE_RUNS, 1, NULL},
                 {"preview", AQ_CMD_SCHEDULE_PREVIEW, -1, NULL}};
    size_t v = 0, nverbs = sizeof verbs / sizeof verbs[0];
    while (v < nverbs && strcmp (verbs[v].verb, verb) != 0)
        v++;
    if (v == nverbs)
        return s_usage_error ("unknown command 'schedule %s'", verb);
    const s_opt_t *opts = NULL;
    if (verbs[v].cmd == AQ_CMD_SCHEDULE_CREATE || verbs[v].cmd == AQ_CMD_SCHEDULE_UPDATE)
        opts = body_opts;
    else if (verbs[v].cmd == AQ_CMD_SCHEDULE_LIST)
        opts = list_opts;
    else if (verbs[v].cmd == AQ_CMD_SCHEDULE_RUNS)
        opts = page_opts;
    else if (verbs[v].cmd == AQ_CMD_SCHEDULE_SNOOZE)
        opts = snooze_opts;
    else if (verbs[v].cmd == AQ_CMD_SCHEDULE_PREVIEW)
        opts = preview_opts;
    const char *pos[2];
    int npos;
    if (s_parse (args, opts, pos, 2, &npos))
        return 2;
    int want = verbs[v].npos;
    if (want < 0) //  preview: ID, or a schedule given by --kind
        want = kind || expr || timezone ? 0 : 1;
    if (npos != want) {
        if (verbs[v].cmd == AQ_CMD_SCHEDULE_SNOOZE)
            return s_usage_error ("%s", "usage: schedule snooze ID SECONDS [--reason R]");
        if (verbs[v].cmd == AQ_CMD_SCHEDULE_PREVIEW)
            return s_usage_error ("%s", "usage: schedule preview ID [--count N] | "
                                        "preview --kind K [--expr E] [--timezone Z] [--count N]");
        return npos < want ? s_usage_error ("schedule %s needs a scheduled task ID", verb)
                           : s_usage_error ("unexpected argument '%s'", pos[want]);
    }
    json_t *fields = json_object ();
    if (want >= 1)
        json_object_set_new (fields, "id", json_string (pos[0]));
    switch (verbs[v].cmd) {
    case AQ_CMD_SCHEDULE_CREATE:
    case AQ_CMD_SCHEDULE_UPDATE: {
        char command[32];
        snprintf (command, sizeof command, "schedule %s", verb);
        json_t *body = s_body_arg (json, file, command);
        if (!body) {
            json_decref (fields);
            return 2;
        }
        json_object_set_new (fields, "schedule", body);
        break;
    }
    case AQ_CMD_SCHEDULE_LIST: //  as a query string carries them
        s_set_str (fields, "status", status);
        s_set_str (fields, "schedule_kind", kind);
        s_set_str (fields, "created_by", created_by);
        s_set_str (fields, "limit", limit);
        s_set_str (fields, "offset", offset);
        break;
    case AQ_CMD_SCHEDULE_RUNS:
        s_set_str (fields, "limit", limit);
        s_set_str (fields, "offset", offset);
        break;
    case AQ_CMD_SCHEDULE_SNOOZE: {
        json_t *snooze = json_pack ("{s:o}", "delay_seconds", s_number (pos[1]));
        s_set_str (snooze, "reason", reason);
        json_object_set_new (fields, "snooze", snooze);
        break;
    }
    case AQ_CMD_SCHEDULE_PREVIEW:
        if (want == 1) //  GET /tasks/:id/preview?count=N
            s_set_str (fields, "count", count);
        else { //  POST /tasks/preview
            if (!kind) {
                json_decref (fields);
                return s_usage_error ("%s", "schedule preview needs an ID or --kind K");
            }
            json_t *schedule = json_pack ("{s:s}", "schedule_kind", kind);
            s_set_str (schedule, "schedule_expr", expr);
            s_set_str (schedule, "timezone", timezone);
            if (count)
                json_object_set_new (schedule, "count", s_number (count));
            json_object_set_new (fields, "schedule", schedule);
        }
        break;
    default:
        break;
    }
    return s_show (self, verbs[v].cmd, fields, verbs[v].show);
}

static int s_bulk (s_ctl_t *self, const char *verb, s_args_t *args) {
    const char *pos[1];
    int npos;
    if (strcmp (verb, "get") != 0)
        return s_usage_error ("unknown command 'bulk %s'", verb);
    if (s_parse (args, NULL, pos, 1, &npos))
        return 2;
    if (npos != 1)
        return s_usage_error ("%s", "usage: bulk get ID");
    return s_show (self, AQ_CMD_BULK_GET, json_pack ("{s:s}", "id", pos[0]), "bulk");
}

static int s_event (s_ctl_t *self, const char *verb, s_args_t *args) {
    if (strcmp (verb, "fire") != 0)
        return s_usage_error ("unknown command 'event %s'", verb);
    const char *data = NULL;
    const s_opt_t opts[] = {{"--data", &data}, {NULL, NULL}};
    const char *pos[1];
    int npos;
    if (s_parse (args, opts, pos, 1, &npos))
        return 2;
    if (npos != 1)
        return s_usage_error ("%s", "usage: event fire NAME [--data JSON]");
    json_t *event = json_pack ("{s:s}", "name", pos[0]);
    if (data) {
        json_error_t error;
        json_t *value = json_loads (data, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
        if (!value) {
            json_decref (event);
            fprintf (stderr, "aqctl: invalid --data at line %d, column %d: %s\n", error.line,
                     error.column, error.text);
            fprintf (stderr, "(see aqctl --help)\n");
            return 2;
        }
        json_object_set_new (event, "data", value);
    }
    return s_show (self, AQ_CMD_EVENT_FIRE, json_pack ("{s:o}", "event", event), NULL);
}

//  --------------------------------------------------------------------------
//  flow

static int s_flow (s_ctl_t *self, const char *verb, s_args_t *args) {
    const char *limit = NULL, *offset = NULL, *rate = NULL, *period = NULL, *parallelism = NULL;
    const s_opt_t list_opts[] = {{"--limit", &limit}, {"--offset", &offset}, {NULL, NULL}};
    const s_opt_t set_opts[] = {
        {"--rate", &rate}, {"--period", &period}, {"--parallelism", &parallelism}, {NULL, NULL}};
    bool list = strcmp (verb, "list") == 0, set = strcmp (verb, "set") == 0;
    int cmd = list                           ? AQ_CMD_FLOW_LIST
              : strcmp (verb, "get") == 0    ? AQ_CMD_FLOW_GET
              : set                          ? AQ_CMD_FLOW_SET
              : strcmp (verb, "pause") == 0  ? AQ_CMD_FLOW_PAUSE
              : strcmp (verb, "resume") == 0 ? AQ_CMD_FLOW_RESUME
                                             : 0;
    if (!cmd)
        return s_usage_error ("unknown command 'flow %s'", verb);
    const char *pos[1];
    int npos;
    if (s_parse (args, list ? list_opts : set ? set_opts : NULL, pos, 1, &npos))
        return 2;
    if (npos != !list)
        return npos ? s_usage_error ("unexpected argument '%s'", pos[0])
                    : s_usage_error ("flow %s needs a flow control KEY", verb);
    json_t *fields = json_object ();
    if (list) { //  as a query string carries them
        s_set_str (fields, "limit", limit);
        s_set_str (fields, "offset", offset);
        return s_show (self, cmd, fields, NULL);
    }
    json_object_set_new (fields, "id", json_string (pos[0]));
    if (set) {
        json_t *limits = json_object ();
        if (rate)
            json_object_set_new (limits, "rate", s_number (rate));
        if (period)
            json_object_set_new (limits, "period", s_number (period));
        if (parallelism)
            json_object_set_new (limits, "parallelism", s_number (parallelism));
        json_object_set_new (fields, "limits", limits);
    }
    return s_show (self, cmd, fields, "flowControl");
}

//  --------------------------------------------------------------------------

typedef struct {
    const char *data, *broker, *key, *admin; //  global options as given
    const char *cert, *broker_cert;          //  CURVE certificates, or NULL
    const char *key_file, *admin_file;       //  --key-file, --admin-token-file
    bool compact;                            //  --json
} s_globals_t;

//  Options a command takes for itself, which are global options elsewhere.
#define S_OWN_JSON 1 //  --json carries a body: task create, schedule create and update
#define S_OWN_DATA 2 //  --data carries the event's data: event fire

//  If argv[*i] is a global option, consumes it (and its value) and returns
//  1; 0 if it is not one (or is the command's own); 2 after a usage error.
//  --json is compact output.
static int s_global (s_globals_t *g, int argc, char **argv, int *i, unsigned own) {
    s_args_t all = {argc, argv};
    bool missing = false;
    const char *value;
    if ((own & S_OWN_DATA) && strncmp (argv[*i], "--data", 6) == 0 &&
        (argv[*i][6] == 0 || argv[*i][6] == '='))
        return 0;
    if (strcmp (argv[*i], "--json") == 0 && !(own & S_OWN_JSON))
        g->compact = true;
    else if ((value = s_option (&all, i, "--data", &missing)))
        g->data = value;
    else if ((value = s_option (&all, i, "--broker", &missing)))
        g->broker = value;
    else if ((value = s_option (&all, i, "--key", &missing)))
        g->key = value;
    else if ((value = s_option (&all, i, "--admin-token", &missing)))
        g->admin = value;
    else if ((value = s_option (&all, i, "--cert", &missing)))
        g->cert = value;
    else if ((value = s_option (&all, i, "--broker-cert", &missing)))
        g->broker_cert = value;
    else if ((value = s_option (&all, i, "--key-file", &missing)))
        g->key_file = value;
    else if ((value = s_option (&all, i, "--admin-token-file", &missing)))
        g->admin_file = value;
    else if (missing)
        return s_usage_error ("option '%s' needs a value", argv[*i]);
    else
        return 0;
    return 1;
}

int main (int argc, char **argv) {
    s_ctl_t ctl = {.endpoint = NULL};
    s_globals_t g = {0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
            fputs (s_usage, stdout);
            return 0;
        }
        int rc = s_global (&g, argc, argv, &i, 0);
        if (rc == 0)
            return s_usage_error ("unknown option '%s'", argv[i]);
        if (rc == 2)
            return 2;
    }
    if (i >= argc)
        return s_usage_error ("%s", "no command given");
    const char *group = argv[i++];
    const char *verb = i < argc && argv[i][0] != '-' ? argv[i++] : "";
    if (strcmp (group, "help") == 0 || strcmp (verb, "--help") == 0) {
        fputs (s_usage, stdout);
        return 0;
    }
    //  Global options may also follow the command.
    unsigned own = 0;
    if ((strcmp (group, "task") == 0 && strcmp (verb, "create") == 0) ||
        (strcmp (group, "schedule") == 0 &&
         (strcmp (verb, "create") == 0 || strcmp (verb, "update") == 0)))
        own |= S_OWN_JSON;
    if (strcmp (group, "event") == 0)
        own |= S_OWN_DATA;
    s_args_t args = {0, argv + i};
    for (; i < argc; i++) {
        int rc = s_global (&g, argc, argv, &i, own);
        if (rc == 2)
            return 2;
        if (rc == 0)
            args.argv[args.argc++] = argv[i];
    }
    const char *data = g.data, *broker = g.broker, *key = g.key, *admin = g.admin;
    ctl.compact = g.compact;
    if (data && broker)
        return s_usage_error ("%s", "give --data or --broker, not both");
    if (key && g.key_file)
        return s_usage_error ("%s", "give --key or --key-file, not both");
    if (admin && g.admin_file)
        return s_usage_error ("%s", "give --admin-token or --admin-token-file, not both");
    if (strcmp (group, "cert") == 0) {
        char err[512];
        if (strcmp (verb, "create") != 0 || args.argc != 1)
            return s_usage_error ("%s", "usage: cert create PATH");
        if (aq_curve_create (args.argv[0], err, sizeof err) != 0) {
            fprintf (stderr, "aqctl: %s\n", err);
            return 1;
        }
        printf ("%s\n%s_secret\n", args.argv[0], args.argv[0]);
        return 0;
    }
    if (strcmp (group, "stats") == 0 || strcmp (group, "whoami") == 0) {
        if (*verb || args.argc)
            return s_usage_error ("unexpected argument '%s'", *verb ? verb : args.argv[0]);
    } else if (strcmp (group, "team") && strcmp (group, "key") && strcmp (group, "task") &&
               strcmp (group, "schedule") && strcmp (group, "event") && strcmp (group, "bulk") &&
               strcmp (group, "flow"))
        return s_usage_error ("unknown command '%s'", group);

    char endpoint[4200];
    if (data)
        snprintf (endpoint, sizeof endpoint, "ipc://%s/client.ipc", data);
    else
        snprintf (endpoint, sizeof endpoint, "%s",
                  broker                 ? broker
                  : getenv ("AQ_BROKER") ? getenv ("AQ_BROKER")
                                         : "ipc://data/client.ipc");
    ctl.endpoint = endpoint;
    char *key_read = NULL; //  from --key-file
    if (g.key_file && !(key = key_read = s_read_secret (g.key_file, "key file")))
        return 1;
    key = key ? key : getenv ("AQ_API_KEY");
    bool wants_admin = strcmp (group, "team") == 0 || strcmp (group, "key") == 0;
    admin = admin ? admin : getenv ("AQ_ADMIN_TOKEN");
    const char *admin_file = g.admin_file;
    char path[4200];
    if (!admin_file && !admin && data && (wants_admin || (!key && strcmp (group, "stats") == 0))) {
        snprintf (path, sizeof path, "%s/admin.token", data);
        admin_file = path;
    }
    if (admin_file) {
        ctl.admin =
            s_read_secret (admin_file, admin_file == path ? "admin token" : "admin token file");
        if (!ctl.admin) {
            free (key_read);
            return 1;
        }
    } else if (admin)
        ctl.admin = strdup (admin);
    char err[512] = "";
    ctl.client = g.cert || g.broker_cert
                     ? aq_client_new_secure (endpoint, g.cert, g.broker_cert, err, sizeof err)
                     : aq_client_new (endpoint);
    if (!ctl.client) {
        if (*err)
            fprintf (stderr, "aqctl: %s\n", err);
        else
            fprintf (stderr, "aqctl: bad broker endpoint '%s': %s\n", endpoint, strerror (errno));
        free (ctl.admin);
        free (key_read);
        return 2;
    }
    aq_client_set_timeout (ctl.client, S_TIMEOUT_MS);
    if (key)
        aq_client_set_key (ctl.client, key);
    if (ctl.admin)
        aq_client_set_admin (ctl.client, ctl.admin);

    int rc;
    if (strcmp (group, "team") == 0)
        rc = s_team (&ctl, verb, &args);
    else if (strcmp (group, "key") == 0)
        rc = s_key (&ctl, verb, &args);
    else if (strcmp (group, "task") == 0)
        rc = s_task (&ctl, verb, &args);
    else if (strcmp (group, "schedule") == 0)
        rc = s_schedule (&ctl, verb, &args);
    else if (strcmp (group, "event") == 0)
        rc = s_event (&ctl, verb, &args);
    else if (strcmp (group, "bulk") == 0)
        rc = s_bulk (&ctl, verb, &args);
    else if (strcmp (group, "flow") == 0)
        rc = s_flow (&ctl, verb, &args);
    else if (strcmp (group, "whoami") == 0)
        rc = s_show (&ctl, AQ_CMD_AUTH, NULL, NULL);
    else
        rc = s_show (&ctl, AQ_CMD_STATS, NULL, NULL);
    aq_client_destroy (&ctl.client);
    free (ctl.admin);
    free (key_read);
    return rc;
}
