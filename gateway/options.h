/*  options.h - the gateway's settings: what it listens on, which broker it
    speaks to, and its limits; filled by main.c or the all-in-one, read by
    gateway.c and http.c.
*/
#ifndef GW_OPTIONS_H
#define GW_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *listen;          //  HOST:PORT (default 127.0.0.1:8080)
    const char *broker_endpoint; //  the broker's client ROUTER
    const char *cert;            //  our secret certificate for CURVE, or NULL
    const char *broker_cert;     //  the broker's public certificate (with cert)
    size_t max_body;             //  request body limit (default 1 MiB)
    int max_connections;         //  total (default 20000)
    int per_ip_connections;      //  per client address (default 1000)
    int connection_timeout_s;    //  idle timeout (default 30)
    int request_deadline_s;      //  absolute per-request deadline (default 60)
    bool verbose;
} gw_config_t;

//  The defaults (above, per field).
void gw_config_defaults (gw_config_t *cfg);

#endif
