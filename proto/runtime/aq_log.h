/*  aq_log.h - structured one-line logs on stderr

    aq_log (AQ_LOG_INFO, "broker", "listening on '%s'", endpoint) prints
      2024-01-15T10:30:00.000Z info broker: listening on 'tcp://...'
    or, with the JSON format (--log-format json), one object per line:
      {"time":"2024-01-15T10:30:00.000Z","level":"info","component":"broker",
       "msg":"listening on 'tcp://...'"}
    Never pass a secret, a token value or a request body.
*/
#ifndef AQ_LOG_H
#define AQ_LOG_H

#include <stdbool.h>

enum { AQ_LOG_DEBUG, AQ_LOG_INFO, AQ_LOG_WARN, AQ_LOG_ERROR };
enum { AQ_LOG_TEXT, AQ_LOG_JSON };

//  Messages below this level are dropped (default AQ_LOG_INFO; the
//  environment variable AQ_LOG_LEVEL=debug|info|warn|error overrides).
void aq_log_set_level (int level);

//  AQ_LOG_TEXT (the default) or AQ_LOG_JSON; the environment variable
//  AQ_LOG_FORMAT=text|json sets it before a program chooses.
void aq_log_set_format (int format);
int aq_log_format (void);
//  The format named "text" or "json" (the --log-format values), or -1.
int aq_log_format_parse (const char *name);

void aq_log (int level, const char *component, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  As aq_log, about one task: task_id and trace_id (either may be NULL)
//  join the line, as "taskId" and "traceId" in JSON, as " task=ID
//  trace=ID" after the message in text.
void aq_log_task (int level, const char *component, const char *task_id, const char *trace_id,
                  const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

void aq_log_test (bool verbose);

#endif
