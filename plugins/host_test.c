/*  host_test.c - selftest of the host table (host.c): JSON reads, templates,
    headers, URL resolution and allocation, as a plugin calls them
*/
#include "host.h"
#include "loader.h" //  aq_plugin_response_init: a response as the ops get it

#include <jansson.h>

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define S_STREQ(a, b) ((a) && strcmp ((a), (b)) == 0)

void aq_plugin_host_test (bool verbose) {
    const aq_host_t *host = aq_plugin_host ();
    assert (host->abi == AQ_PLUGIN_ABI && host->size == sizeof (aq_host_t));
    assert (AQ_PLUGIN_HAS (host, url_resolve));
    const char *text = "{\"a\": {\"b\": \"x\", \"n\": 42, \"f\": 1.5, \"t\": true, \"z\": null,"
                       " \"list\": [{\"u\": \"first\"}, \"second\"]}}";
    void *doc = host->json_parse (text, strlen (text));
    assert (doc);
    assert (S_STREQ (host->json_get_str (doc, "a.b"), "x"));
    assert (S_STREQ (host->json_get_str (doc, "a.list.0.u"), "first"));
    assert (S_STREQ (host->json_get_str (doc, "a.list.1"), "second"));
    assert (!host->json_get_str (doc, "a.n"));
    assert (!host->json_get_str (doc, "a.list.2"));
    assert (!host->json_get_str (doc, "a.list.x"));
    assert (!host->json_get_str (doc, "a.b.c"));
    assert (!host->json_get_str (doc, "a..b"));
    assert (!host->json_get_str (NULL, "a"));
    int64_t n = 0;
    assert (host->json_get_int (doc, "a.n", &n) == 0 && n == 42);
    assert (host->json_get_int (doc, "a.b", &n) == -1);
    assert (host->json_get_int (doc, "nope", &n) == -1);
    const char *paths[] = {"a.b", "a.n", "a.f", "a.t", "a.list.0", "a.z", "nope"};
    const char *texts[] = {"x", "42", "1.5", "true", "{\"u\":\"first\"}", NULL, NULL};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        char *value = host->json_get_text (doc, paths[i]);
        assert (texts[i] ? S_STREQ (value, texts[i]) : value == NULL);
        host->free (value);
    }
    char *out = host->render_template ("https://h/{{a.b}}/{{ a.n }}?q={{a.list.1}}&t={{a.t}}", doc);
    assert (S_STREQ (out, "https://h/x/42?q=second&t=true"));
    host->free (out);
    out = host->render_template ("no placeholders", doc);
    assert (S_STREQ (out, "no placeholders"));
    host->free (out);
    out = host->render_template ("", doc);
    assert (S_STREQ (out, ""));
    host->free (out);
    const char *bad[] = {"{{a.nope}}", "x{{a.b", "{{}}", "{{ a.z }}", "{{a.b}}{{a.missing}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert (host->render_template (bad[i], doc) == NULL);
    assert (host->render_template ("{{a.b}}", NULL) == NULL);
    host->json_free (doc);
    host->json_free (NULL);
    assert (host->json_parse ("{nope", 5) == NULL);

    const char *cases[][3] = {
        {"https://api.x.com/v1/predictions", "/v1/predictions/abc",
         "https://api.x.com/v1/predictions/abc"},
        {"http://127.0.0.1:8080/jobs", "jobs/1", "http://127.0.0.1:8080/jobs/1"},
        {"http://h/a/b/c?x=1", "d", "http://h/a/b/d"},
        {"http://h/a/b/c", "../d", "http://h/a/d"},
        {"http://h/a/b/c", "./d/./e", "http://h/a/b/d/e"},
        {"http://h/a/b/c", "../../../../d", "http://h/d"},
        {"http://h/a/b", "?q=1", "http://h/a/b?q=1"},
        {"http://h/a?z#f", "", "http://h/a?z"},
        {"http://h", "x", "http://h/x"},
        {"http://h:1/a", "//other/p", "http://other/p"},
        {"http://h/a", "HTTPS://o/p", "HTTPS://o/p"},
        {"http://h/a/b", "/../x", "http://h/x"},
        {NULL, "https://o/", "https://o/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        out = host->url_resolve (cases[i][0], cases[i][1]);
        if (verbose)
            printf ("resolve '%s' '%s' -> '%s'\n", cases[i][0], cases[i][1], out);
        assert (S_STREQ (out, cases[i][2]));
        host->free (out);
    }
    assert (host->url_resolve ("http://h/a", "ftp://o/p") == NULL);
    assert (host->url_resolve ("not a url", "x") == NULL);
    assert (host->url_resolve ("mailto:x@y", "x") == NULL);
    assert (host->url_resolve ("http://h/", NULL) == NULL);

    json_t *headers = json_pack ("{s:s, s:i}", "retry-after", "7", "x-number", 3);
    aq_http_response_t response;
    aq_plugin_response_init (&response, "http://h/", 200, headers, "[1]", 3);
    assert (json_is_array ((const json_t *) response.body));
    assert (S_STREQ (host->http_header (&response, "Retry-After"), "7"));
    assert (host->http_header (&response, "x-number") == NULL);
    assert (host->http_header (&response, "nope") == NULL);
    aq_plugin_response_release (&response);
    aq_plugin_response_init (&response, "http://h/", 204, NULL, NULL, 0);
    assert (response.body == NULL && S_STREQ (response.text, "") && response.text_len == 0);
    assert (host->http_header (&response, "retry-after") == NULL);
    aq_plugin_response_release (&response);
    aq_plugin_response_init (&response, "http://h/", 200, NULL, "<html>", 6);
    assert (response.body == NULL && S_STREQ (response.text, "<html>"));
    aq_plugin_response_release (&response);
    json_decref (headers);

    uint8_t *zeroed = host->alloc (16);
    for (size_t i = 0; i < 16; i++)
        assert (zeroed[i] == 0);
    host->free (zeroed);
    assert (host->strdup (NULL) == NULL);
}
