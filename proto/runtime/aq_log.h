/*  aq_log.h - structured one-line logs on stderr

    aq_log (AQ_LOG_INFO, "broker", "listening on '%s'", endpoint) prints
      2024-01-15T10:30:00.000Z info broker: listening on 'tcp://...'
    Never pass a secret, a token value or a request body.
*/
#ifndef AQ_LOG_H
#define AQ_LOG_H

enum { AQ_LOG_DEBUG, AQ_LOG_INFO, AQ_LOG_WARN, AQ_LOG_ERROR };

//  Messages below this level are dropped (default AQ_LOG_INFO; the
//  environment variable AQ_LOG_LEVEL=debug|info|warn|error overrides).
void aq_log_set_level (int level);
void aq_log (int level, const char *component, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
