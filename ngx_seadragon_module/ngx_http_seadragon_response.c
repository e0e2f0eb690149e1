
/*
 * Copyright (C) The Seadragon authors
 *
 * What clients read when something goes wrong: Ollama-style JSON errors
 * ({"error":"..."}) instead of nginx's HTML pages, and, when a stream has
 * already begun and Ollama fails, a final line carrying the error in the
 * stream's own format rather than a silently truncated response.  The
 * body filter nginx calls is the gate's, in ngx_http_seadragon_release.c,
 * which hands the answer to ngx_http_seadragon_body_replace() here.
 */


#include "ngx_http_seadragon_module.h"


typedef struct {
    ngx_uint_t   status;
    char        *message;
} ngx_http_seadragon_status_message_t;


static ngx_int_t ngx_http_seadragon_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_json_error(ngx_http_request_t *r,
    ngx_str_t *message, ngx_str_t *out, ngx_uint_t format,
    ngx_uint_t status, char *code);
static ngx_chain_t *ngx_http_seadragon_stream_error(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
static void ngx_http_seadragon_stream_cleanup(void *data);
static ngx_uint_t ngx_http_seadragon_json_errors_enabled(
    ngx_http_request_t *r);


enum {
    NGX_HTTP_SEADRAGON_FORMAT_JSON = 0,
    NGX_HTTP_SEADRAGON_FORMAT_NDJSON,
    NGX_HTTP_SEADRAGON_FORMAT_OPENAI,
    NGX_HTTP_SEADRAGON_FORMAT_SSE
};


static ngx_http_seadragon_status_message_t  ngx_http_seadragon_messages[] = {
    { NGX_HTTP_BAD_REQUEST,
      "bad request: malformed, or its headers are too large" },
    { NGX_HTTP_UNAUTHORIZED, "unauthorized" },
    { NGX_HTTP_FORBIDDEN, "forbidden" },
    { NGX_HTTP_NOT_FOUND, "not found" },
    { NGX_HTTP_NOT_ALLOWED, "method not allowed" },
    { NGX_HTTP_REQUEST_TIME_OUT, "timed out reading the request" },
    { NGX_HTTP_LENGTH_REQUIRED, "length required" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
      "request body too large: see client_max_body_size" },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, "request URI too large" },
    { NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported media type" },
    { NGX_HTTP_TOO_MANY_REQUESTS, "too many requests" },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "internal server error" },
    { NGX_HTTP_NOT_IMPLEMENTED, "not implemented" },
    { NGX_HTTP_BAD_GATEWAY,
      "Ollama is unavailable: no valid answer from the model server" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "service unavailable" },
    { NGX_HTTP_GATEWAY_TIME_OUT,
      "Ollama did not answer in time: the model server timed out" },
    { 0, NULL }
};


static ngx_str_t  ngx_http_seadragon_stream_broken =
    ngx_string("Ollama stopped before the response was complete");


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_seadragon_response_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_seadragon_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_seadragon_release_filter;

    return NGX_OK;
}


/*
 * A header of the answer; its "next" (nginx 1.23 and later chain headers
 * of one name through it) starts empty.  value may be set by the caller.
 */

ngx_table_elt_t *
ngx_http_seadragon_header_add(ngx_http_request_t *r, char *key,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = value;
    h->value.len = len;

    return h;
}


/*
 * "WWW-Authenticate: Bearer", how to give the credential a refusal wants
 * (RFC 6750): NGX_OK, or NGX_ERROR without memory.
 */

ngx_int_t
ngx_http_seadragon_bearer_challenge(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_http_seadragon_header_add(r, "WWW-Authenticate",
                                      (u_char *) "Bearer", 6);
    if (h == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.www_authenticate = h;

    return NGX_OK;
}


/*
 * Every refusal ends here, whichever check made it: the request is marked
 * refused (so that a resumed access phase refuses it again), counted under
 * its reason, and given its message (NULL: the one the check set) and, for
 * a refusal that passes, a Retry-After.  The status returned goes through
 * nginx's special response path, which discards the body and decides on
 * keepalive, and the header filter puts the message in place of the HTML
 * page.  The check that refused logs why, with what only it knows.
 */

ngx_int_t
ngx_http_seadragon_reject(ngx_http_request_t *r, ngx_http_seadragon_ctx_t *ctx,
    ngx_uint_t status, size_t counter, char *message, time_t retry_after)
{
    ngx_table_elt_t  *h;

    ctx->state = NGX_HTTP_SEADRAGON_REJECTED;
    ngx_http_seadragon_counters_add(ctx, counter);

    if (message) {
        ctx->error.data = (u_char *) message;
        ctx->error.len = ngx_strlen(message);
    }

    if (retry_after) {
        h = ngx_http_seadragon_header_add(r, "Retry-After", NULL, 0);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%T", retry_after)
                       - h->value.data;
    }

    return status;
}


/* a whole response from memory the request owns: JSON, metrics */

ngx_int_t
ngx_http_seadragon_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *content_type, u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type = *content_type;
    r->headers_out.content_type_len = content_type->len;
    r->headers_out.content_type_lowcase = NULL;

    if (r->method == NGX_HTTP_HEAD || len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_seadragon_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len)
{
    static ngx_str_t  json = ngx_string("application/json");

    return ngx_http_seadragon_send(r, status, &json, data, len);
}


static ngx_uint_t
ngx_http_seadragon_json_errors_enabled(ngx_http_request_t *r)
{
    ngx_http_seadragon_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    if (slcf->json_errors == NGX_CONF_UNSET) {
        return slcf->zone != NULL;
    }

    return slcf->json_errors;
}


/* the words of an HTTP status nginx answers with, "error" for others */

static void
ngx_http_seadragon_status_message(ngx_uint_t status, ngx_str_t *message)
{
    ngx_http_seadragon_status_message_t  *m;

    for (m = ngx_http_seadragon_messages; m->status; m++) {
        if (m->status == status) {
            message->data = (u_char *) m->message;
            message->len = ngx_strlen(m->message);
            return;
        }
    }

    ngx_str_set(message, "error");
}


static ngx_int_t
ngx_http_seadragon_header_filter(ngx_http_request_t *r)
{
    ngx_uint_t                            format;
    ngx_str_t                             message, *type;
    ngx_http_cleanup_t                   *cln;
    ngx_http_seadragon_ctx_t             *ctx;

    if (r != r->main) {
        ngx_http_seadragon_resident_peer(r);    /* health's /api/ps */
        ngx_http_seadragon_health_ps_header(r);
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);

    /*
     * nginx's own error page: r->err_status is set and the page is HTML;
     * a page the user chose with error_page (r->error_page) is theirs.
     */

    if (r->err_status >= NGX_HTTP_BAD_REQUEST
        && !r->error_page
        && r->headers_out.content_type.len == sizeof("text/html") - 1
        && ngx_strncmp(r->headers_out.content_type.data, "text/html",
                       sizeof("text/html") - 1) == 0
        && ((ctx && ctx->error.len)
            || ngx_http_seadragon_json_errors_enabled(r)))
    {
        ctx = ngx_http_seadragon_get_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_http_seadragon_endpoint_find(r, ctx);

        message = ctx->error;

        if (message.len == 0) {
            ngx_http_seadragon_status_message(r->err_status, &message);
        }

        format = (ctx->api == NGX_HTTP_SEADRAGON_API_OPENAI)
                 ? NGX_HTTP_SEADRAGON_FORMAT_OPENAI
                 : NGX_HTTP_SEADRAGON_FORMAT_JSON;

        /* a key over its limit: the type and code OpenAI's clients expect */

        if (ngx_http_seadragon_json_error(r, &message, &ctx->error_body,
                                          format, r->err_status,
                                          ctx->quota ? "rate_limit_exceeded"
                                                     : NULL)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ctx->replace_error = 1;

        r->headers_out.content_length_n = ctx->error_body.len;
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = sizeof("application/json") - 1;
        r->headers_out.content_type_lowcase = NULL;
        r->headers_out.charset.len = 0;

        return ngx_http_next_header_filter(r);
    }

    /*
     * A response that streams from Ollama: if it breaks off, the cleanup
     * below ends it with an error line the client can parse.
     */

    if (r->upstream
        && r->headers_out.status >= NGX_HTTP_OK
        && r->headers_out.status < NGX_HTTP_SPECIAL_RESPONSE
        && !r->header_only
        && ngx_http_seadragon_json_errors_enabled(r))
    {
        ctx = ngx_http_seadragon_get_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        if (!ctx->response_started) {
            ctx->response_started = 1;

            type = &r->headers_out.content_type;

            if (type->len
                && ngx_strlcasestrn(type->data, type->data + type->len,
                                    (u_char *) "event-stream",
                                    sizeof("event-stream") - 2)
                   != NULL)
            {
                ctx->sse = 1;
            }

            cln = ngx_http_cleanup_add(r, 0);
            if (cln == NULL) {
                return NGX_ERROR;
            }

            cln->handler = ngx_http_seadragon_stream_cleanup;
            cln->data = ctx;
        }
    }

    /* Ollama's answer to a generating request: its tokens are counted */

    if (ctx && ngx_http_seadragon_usage_start(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


/*
 * The error output's part of the body filter, called by the gate's
 * (ngx_http_seadragon_release_filter()) for every answer: the JSON error
 * in place of nginx's page, or the error line at the end of a broken
 * stream; anything else goes down the chain as it is.
 */

ngx_int_t
ngx_http_seadragon_body_replace(ngx_http_request_t *r, ngx_chain_t *in,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_buf_t                 *b;
    ngx_uint_t                 flush;
    ngx_chain_t               *cl, out, *out_chain, **ll;

    if (ctx == NULL || r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    if (!ctx->replace_error) {

        if (!ctx->response_started || ctx->last_sent) {
            return ngx_http_next_body_filter(r, in);
        }

        flush = 0;
        ll = &out_chain;

        for (cl = in; cl; cl = cl->next) {
            if (cl->buf->last_buf) {
                ctx->last_sent = 1;
            }

            if (cl->buf->flush) {
                flush = 1;
            }

            *ll = ngx_alloc_chain_link(r->pool);
            if (*ll == NULL) {
                return NGX_ERROR;
            }

            (*ll)->buf = cl->buf;
            ll = &(*ll)->next;
        }

        /*
         * nginx ends a stream whose upstream failed midway with a flush and
         * no last buffer, the upstream connection already closed: the
         * stream is ended here with the error line instead.
         */

        if (ctx->last_sent || !flush || r->upstream == NULL
            || r->upstream->peer.connection != NULL)
        {
            return ngx_http_next_body_filter(r, in);
        }

        *ll = ngx_http_seadragon_stream_error(r, ctx);
        if (*ll == NULL) {
            return NGX_ERROR;
        }

        return ngx_http_next_body_filter(r, out_chain);
    }

    /* the HTML page is dropped; our JSON goes out once, as the whole body */

    if (ctx->error_sent || in == NULL) {
        return ngx_http_next_body_filter(r, NULL);
    }

    ctx->error_sent = 1;
    ctx->last_sent = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->error_body.data;
    b->last = ctx->error_body.data + ctx->error_body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/*
 * The final line of a broken stream, in the stream's own format, as the
 * last buffer of the response.
 */

static ngx_chain_t *
ngx_http_seadragon_stream_error(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_buf_t    *b;
    ngx_str_t     line;
    ngx_chain_t  *cl;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "seadragon ends the interrupted stream with an error line");

    if (ngx_http_seadragon_json_error(r, &ngx_http_seadragon_stream_broken,
                                      &line,
                                      ctx->sse ? NGX_HTTP_SEADRAGON_FORMAT_SSE
                                             : NGX_HTTP_SEADRAGON_FORMAT_NDJSON,
                                      NGX_HTTP_BAD_GATEWAY, NULL)
        != NGX_OK)
    {
        return NULL;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NULL;
    }

    b->pos = line.data;
    b->last = line.data + line.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;

    ctx->last_sent = 1;
    ctx->stream_broken = 1;
    r->keepalive = 0;

    return cl;
}


/*
 * A backstop for the ways nginx ends a broken stream by terminating the
 * request (a malformed chunk from Ollama, say): the request's cleanups run
 * while the client connection is still open.  A client that timed out
 * takes nothing more: no line can reach it.
 */

static void
ngx_http_seadragon_stream_cleanup(void *data)
{
    ngx_http_seadragon_ctx_t  *ctx = data;

    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->last_sent
        || r->connection->error
        || r->connection->timedout
        || r->connection->destroyed
        || !r->header_sent
        || r->header_only)
    {
        return;
    }

    cl = ngx_http_seadragon_stream_error(r, ctx);
    if (cl == NULL) {
        return;
    }

    (void) ngx_http_output_filter(r, cl);
}


/*
 * {"error":"..."} as a body or an NDJSON line; on the OpenAI-compatible
 * routes, OpenAI's {"error":{"message":...,"type":...}} as a body or an
 * SSE event, with the types Ollama's own /v1 errors use, or "code" as
 * both the type and the code (NULL: a null code).
 */

static ngx_int_t
ngx_http_seadragon_json_error(ngx_http_request_t *r, ngx_str_t *message,
    ngx_str_t *out, ngx_uint_t format, ngx_uint_t status, char *code)
{
    char    *type;
    size_t   len, escaped;
    u_char  *p;

    escaped = message->len + ngx_escape_json(NULL, message->data,
                                             message->len);

    len = sizeof("data: {\"error\":{\"message\":\"\",\"type\":"
                 "\"invalid_request_error\",\"param\":null,"
                 "\"code\":null}}\n\n") + escaped
          + (code ? 2 * ngx_strlen(code) + 2 : 0);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    if (format == NGX_HTTP_SEADRAGON_FORMAT_SSE
        || format == NGX_HTTP_SEADRAGON_FORMAT_OPENAI)
    {
        switch (status) {
        case NGX_HTTP_UNAUTHORIZED:
            type = "authentication_error";
            break;
        case NGX_HTTP_FORBIDDEN:
            type = "permission_error";
            break;
        case NGX_HTTP_NOT_FOUND:
            type = "not_found_error";
            break;
        case NGX_HTTP_TOO_MANY_REQUESTS:
            type = "rate_limit_error";
            break;
        default:
            type = status < NGX_HTTP_INTERNAL_SERVER_ERROR
                   ? "invalid_request_error" : "api_error";
        }

        if (code) {
            type = code;
        }

        if (format == NGX_HTTP_SEADRAGON_FORMAT_SSE) {
            p = ngx_cpymem(p, "data: ", sizeof("data: ") - 1);
        }

        p = ngx_cpymem(p, "{\"error\":{\"message\":\"",
                       sizeof("{\"error\":{\"message\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, message->data, message->len);
        p = ngx_sprintf(p, "\",\"type\":\"%s\",\"param\":null,", type);
        p = code ? ngx_sprintf(p, "\"code\":\"%s\"}}", code)
                 : ngx_cpymem(p, "\"code\":null}}",
                              sizeof("\"code\":null}}") - 1);

        if (format == NGX_HTTP_SEADRAGON_FORMAT_SSE) {
            *p++ = '\n';
            *p++ = '\n';
        }

    } else {
        p = ngx_cpymem(p, "{\"error\":\"", sizeof("{\"error\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, message->data, message->len);
        *p++ = '"';
        *p++ = '}';

        /* a body is bare JSON, as Ollama's; a stream line ends a line */

        if (format == NGX_HTTP_SEADRAGON_FORMAT_NDJSON) {
            *p++ = '\n';
        }
    }

    out->len = p - out->data;

    return NGX_OK;
}
