
/*
 * Copyright (C) The Seadragon authors
 *
 * Which endpoint of Ollama's API a request is for, and whether its source
 * may use it.  Endpoints are of three kinds: those that generate (and
 * queue for the model), those that only describe (tags, show, ps,
 * version, models), and those that manage models (pull, push, create,
 * copy, delete, blobs), which can delete or replace the model everyone
 * uses.  A source may use "generate" and "info" unless configured
 * otherwise; "manage" belongs to admin keys.
 *
 * The endpoint is read from r->uri, which nginx has already decoded and
 * normalized ("//api/../api/delete", "/api%2Fdelete" and "/api/%64elete"
 * are all "/api/delete" here, and choose their location as such).  Ollama
 * matches paths exactly and case-sensitively; anything that is not
 * exactly one of its endpoints is refused here with 404, and anything
 * that merely resembles a management endpoint (case, trailing dots or
 * slashes) counts as one, so no spelling reaches model management.
 */


#include "ngx_http_seadragon_module.h"


#define NGX_HTTP_SEADRAGON_GENERATE  NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE
#define NGX_HTTP_SEADRAGON_INFO      NGX_HTTP_SEADRAGON_ENDPOINT_INFO
#define NGX_HTTP_SEADRAGON_MANAGE    NGX_HTTP_SEADRAGON_ENDPOINT_MANAGE

#define NGX_HTTP_SEADRAGON_NO_ENDPOINT  "404 page not found: no such endpoint"


static ngx_http_seadragon_endpoint_t *ngx_http_seadragon_endpoint_lookup(
    ngx_uint_t api, u_char *tail, size_t len);
static ngx_uint_t ngx_http_seadragon_endpoint_manage_like(u_char *tail,
    size_t len);
static ngx_uint_t ngx_http_seadragon_endpoint_ends(ngx_str_t *s,
    char *suffix);


static ngx_http_seadragon_endpoint_t  ngx_http_seadragon_endpoints[] = {

    /* Ollama's own API, under /api/ */

    { ngx_string("generate"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_GENERATE, 0, NGX_HTTP_SEADRAGON_STREAM_DEFAULT },
    { ngx_string("chat"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_GENERATE, 0, NGX_HTTP_SEADRAGON_STREAM_DEFAULT },
    { ngx_string("embed"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_GENERATE, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("embeddings"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_GENERATE, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("tags"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_INFO, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("show"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_INFO, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("ps"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_INFO, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("version"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_INFO, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("pull"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_MANAGE, 0, NGX_HTTP_SEADRAGON_STREAM_DEFAULT },
    { ngx_string("push"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_MANAGE, 0, NGX_HTTP_SEADRAGON_STREAM_DEFAULT },
    { ngx_string("create"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_MANAGE, 0, NGX_HTTP_SEADRAGON_STREAM_DEFAULT },
    { ngx_string("copy"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_MANAGE, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("delete"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_MANAGE, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("blobs/"), NGX_HTTP_SEADRAGON_API_OLLAMA,
      NGX_HTTP_SEADRAGON_MANAGE, 1, NGX_HTTP_SEADRAGON_STREAM_NEVER },

    /* the OpenAI-compatible API, under /v1/ */

    { ngx_string("chat/completions"), NGX_HTTP_SEADRAGON_API_OPENAI,
      NGX_HTTP_SEADRAGON_GENERATE, 0, NGX_HTTP_SEADRAGON_STREAM_ASKED },
    { ngx_string("completions"), NGX_HTTP_SEADRAGON_API_OPENAI,
      NGX_HTTP_SEADRAGON_GENERATE, 0, NGX_HTTP_SEADRAGON_STREAM_ASKED },
    { ngx_string("embeddings"), NGX_HTTP_SEADRAGON_API_OPENAI,
      NGX_HTTP_SEADRAGON_GENERATE, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("models"), NGX_HTTP_SEADRAGON_API_OPENAI,
      NGX_HTTP_SEADRAGON_INFO, 0, NGX_HTTP_SEADRAGON_STREAM_NEVER },
    { ngx_string("models/"), NGX_HTTP_SEADRAGON_API_OPENAI,
      NGX_HTTP_SEADRAGON_INFO, 1, NGX_HTTP_SEADRAGON_STREAM_NEVER },

    { ngx_null_string, 0, 0, 0, 0 }
};


static ngx_str_t  ngx_http_seadragon_manage_names[] = {
    ngx_string("pull"),
    ngx_string("push"),
    ngx_string("create"),
    ngx_string("copy"),
    ngx_string("delete"),
    ngx_string("blobs"),
    ngx_null_string
};


static ngx_conf_enum_t  ngx_http_seadragon_endpoint_kinds[] = {
    { ngx_string("generate"), NGX_HTTP_SEADRAGON_GENERATE },
    { ngx_string("info"), NGX_HTTP_SEADRAGON_INFO },
    { ngx_string("manage"), NGX_HTTP_SEADRAGON_MANAGE },
    { ngx_string("all"), NGX_HTTP_SEADRAGON_ENDPOINT_ALL },
    { ngx_null_string, 0 }
};


/*
 * The part of the URI that names the endpoint: after the prefix of the
 * location ("/api/ollama/" proxied to Ollama's "/api/"), or after "api/"
 * or "v1/" when the URI carries them ("location /" in front of
 * everything).  A location whose prefix ends in "/v1/" speaks OpenAI's
 * API.
 */

void
ngx_http_seadragon_endpoint_find(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    size_t                     len;
    u_char                    *tail;
    ngx_uint_t                 api, strict;
    ngx_http_core_loc_conf_t  *clcf;

    if (ctx->endpoint_found) {
        return;
    }

    ctx->endpoint_found = 1;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    tail = r->uri.data;
    len = r->uri.len;
    api = NGX_HTTP_SEADRAGON_API_OLLAMA;
    strict = 0;

    if (clcf->name.len > 1
        && !clcf->exact_match
        && !clcf->named
#if (NGX_PCRE)
        && clcf->regex == NULL
#endif
        && len >= clcf->name.len
        && ngx_strncmp(tail, clcf->name.data, clcf->name.len) == 0)
    {
        tail += clcf->name.len;
        len -= clcf->name.len;

        /* "location /v1/" and "location /api/" say which API it is */

        if (ngx_http_seadragon_endpoint_ends(&clcf->name, "/v1/")) {
            api = NGX_HTTP_SEADRAGON_API_OPENAI;
            strict = 1;

        } else if (ngx_http_seadragon_endpoint_ends(&clcf->name, "/api/")) {
            strict = 1;
        }

    } else if (len && tail[0] == '/') {
        tail++;
        len--;
    }

    if (len >= 4 && ngx_strncmp(tail, "api/", 4) == 0) {
        tail += 4;
        len -= 4;
        api = NGX_HTTP_SEADRAGON_API_OLLAMA;
        strict = 1;

    } else if (len >= 3 && ngx_strncmp(tail, "v1/", 3) == 0) {
        tail += 3;
        len -= 3;
        api = NGX_HTTP_SEADRAGON_API_OPENAI;
        strict = 1;
    }

    ctx->api = api;
    ctx->endpoint = ngx_http_seadragon_endpoint_lookup(api, tail, len);

    /* a location of another name ("/llm/") may front either API */

    if (ctx->endpoint == NULL && !strict) {
        ctx->endpoint = ngx_http_seadragon_endpoint_lookup(!api, tail, len);

        if (ctx->endpoint) {
            ctx->api = ctx->endpoint->api;
        }
    }

    ctx->manage_like = ngx_http_seadragon_endpoint_manage_like(tail, len);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "seadragon endpoint: \"%*s\", %s",
                   len, tail, ctx->endpoint ? "known" : "unknown");
}


static ngx_http_seadragon_endpoint_t *
ngx_http_seadragon_endpoint_lookup(ngx_uint_t api, u_char *tail, size_t len)
{
    ngx_http_seadragon_endpoint_t  *e;

    for (e = ngx_http_seadragon_endpoints; e->name.len; e++) {

        if (e->api != api) {
            continue;
        }

        if (e->prefix) {
            if (len > e->name.len
                && ngx_strncmp(tail, e->name.data, e->name.len) == 0
                && ngx_strlchr(tail + e->name.len, tail + len, '/') == NULL)
            {
                return e;
            }

            continue;
        }

        if (len == e->name.len && ngx_strncmp(tail, e->name.data, len) == 0) {
            return e;
        }
    }

    return NULL;
}


static ngx_uint_t
ngx_http_seadragon_endpoint_ends(ngx_str_t *s, char *suffix)
{
    size_t  n;

    n = ngx_strlen(suffix);

    return s->len >= n
           && ngx_strncmp(s->data + s->len - n, suffix, n) == 0;
}


/* "Delete", "delete.", "delete/", "BLOBS/x": spellings of management */

static ngx_uint_t
ngx_http_seadragon_endpoint_manage_like(u_char *tail, size_t len)
{
    size_t      n;
    ngx_str_t  *name;

    while (len && (tail[len - 1] == '/' || tail[len - 1] == '.')) {
        len--;
    }

    for (name = ngx_http_seadragon_manage_names; name->len; name++) {

        n = name->len;

        if (len >= n
            && ngx_strncasecmp(tail, name->data, n) == 0
            && (len == n || tail[n] == '/' || tail[n] == '.'))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Unknown endpoints get 404; an endpoint outside the source's allowance
 * gets 403.  Runs after the key and whitelist checks, so that nobody
 * learns which paths exist without the right to use them.
 */

ngx_int_t
ngx_http_seadragon_endpoint_check(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_uint_t                       kind;
    ngx_http_seadragon_source_t     *source;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);
    source = smcf->sources.elts;
    source += ctx->source;

    if (ctx->manage_like) {
        kind = NGX_HTTP_SEADRAGON_MANAGE;

    } else if (ctx->endpoint) {
        kind = ctx->endpoint->kind;

    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "seadragon: \"%V\" is no endpoint of Ollama's API",
                      &r->uri);
        return ngx_http_seadragon_reject(r, ctx, NGX_HTTP_NOT_FOUND,
                                  ngx_http_seadragon_counter(rejected_endpoint),
                                  NGX_HTTP_SEADRAGON_NO_ENDPOINT, 0);
    }

    if (!(source->endpoints & kind)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon: the source \"%V\" may not use \"%V\"",
                      &source->name, &r->uri);

        return ngx_http_seadragon_reject(r, ctx, NGX_HTTP_FORBIDDEN,
                   ngx_http_seadragon_counter(rejected_endpoint),
                   kind == NGX_HTTP_SEADRAGON_MANAGE
                   ? "model management needs an admin key"
                   : kind == NGX_HTTP_SEADRAGON_GENERATE
                     ? "this client may not generate: its source allows "
                       "no \"generate\" endpoints"
                     : "this client may not read model information: its "
                       "source allows no \"info\" endpoints", 0);
    }

    /* an exact name is needed to reach Ollama, whoever asks */

    if (ctx->endpoint == NULL) {
        return ngx_http_seadragon_reject(r, ctx, NGX_HTTP_NOT_FOUND,
                                  ngx_http_seadragon_counter(rejected_endpoint),
                                  NGX_HTTP_SEADRAGON_NO_ENDPOINT, 0);
    }

    return NGX_OK;
}


/* endpoints=generate,info,manage or endpoints=all */

char *
ngx_http_seadragon_endpoint_parse(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t *endpoints)
{
    u_char           *p, *last, *comma;
    ngx_str_t         word;
    ngx_conf_enum_t  *k;

    *endpoints = 0;

    p = value->data;
    last = value->data + value->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        word.data = p;
        word.len = comma - p;

        for (k = ngx_http_seadragon_endpoint_kinds; k->name.len; k++) {
            if (k->name.len == word.len
                && ngx_strncmp(k->name.data, word.data, word.len) == 0)
            {
                *endpoints |= k->value;
                break;
            }
        }

        if (k->name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid endpoint kind \"%V\" in "
                               "\"endpoints=%V\": expected generate, info, "
                               "manage or all, separated by commas",
                               &word, value);
            return NGX_CONF_ERROR;
        }

        p = comma + 1;
    }

    if (*endpoints == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty \"endpoints=\": expected generate, info, "
                           "manage or all, separated by commas");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
