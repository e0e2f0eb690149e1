
/*
 * Copyright (C) The Seadragon authors
 *
 * The variables ($seadragon_source, $seadragon_queue_wait, ...): they
 * print what the access phase found out about the request.
 */


#include "ngx_http_seadragon_module.h"


static ngx_int_t ngx_http_seadragon_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_seadragon_variable_endpoint(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_seadragon_ctx_t *ctx);
static void ngx_http_seadragon_variable_stream(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_seadragon_ctx_t *ctx);
static ngx_int_t ngx_http_seadragon_variable_number(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_seadragon_ctx_t *ctx,
    uintptr_t data);
static ngx_int_t ngx_http_seadragon_variable_usage(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


enum {
    NGX_HTTP_SEADRAGON_VAR_SOURCE = 0,
    NGX_HTTP_SEADRAGON_VAR_PRIORITY,
    NGX_HTTP_SEADRAGON_VAR_QUEUE_WAIT,
    NGX_HTTP_SEADRAGON_VAR_QUEUE_POSITION,
    NGX_HTTP_SEADRAGON_VAR_QUEUE_ID,
    NGX_HTTP_SEADRAGON_VAR_MODEL,
    NGX_HTTP_SEADRAGON_VAR_STREAM,
    NGX_HTTP_SEADRAGON_VAR_KEY_NAME,
    NGX_HTTP_SEADRAGON_VAR_ENDPOINT,
    NGX_HTTP_SEADRAGON_VAR_PROMPT_TOKENS,
    NGX_HTTP_SEADRAGON_VAR_COMPLETION_TOKENS,
    NGX_HTTP_SEADRAGON_VAR_LOAD_MS,
    NGX_HTTP_SEADRAGON_VAR_TOKENS_PER_SECOND,
    NGX_HTTP_SEADRAGON_VAR_USER
};


static ngx_http_variable_t  ngx_http_seadragon_vars[] = {

    { ngx_string("seadragon_source"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_SOURCE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_priority"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_PRIORITY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_queue_wait"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_QUEUE_WAIT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_queue_position"), NULL,
      ngx_http_seadragon_variable, NGX_HTTP_SEADRAGON_VAR_QUEUE_POSITION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_queue_id"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_QUEUE_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_model"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_stream"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_STREAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_key_name"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_KEY_NAME, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_user"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_USER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_endpoint"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_ENDPOINT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_prompt_tokens"), NULL,
      ngx_http_seadragon_variable_usage,
      NGX_HTTP_SEADRAGON_VAR_PROMPT_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_completion_tokens"), NULL,
      ngx_http_seadragon_variable_usage,
      NGX_HTTP_SEADRAGON_VAR_COMPLETION_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_load_ms"), NULL,
      ngx_http_seadragon_variable_usage,
      NGX_HTTP_SEADRAGON_VAR_LOAD_MS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("seadragon_tokens_per_second"), NULL,
      ngx_http_seadragon_variable_usage,
      NGX_HTTP_SEADRAGON_VAR_TOKENS_PER_SECOND, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * A request of a location without the queue is classified on demand, so
 * that its source is known in the access log of any location (t/003).
 */

static ngx_int_t
ngx_http_seadragon_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_seadragon_ctx_t        *ctx;
    ngx_http_seadragon_source_t     *source;
    ngx_http_seadragon_main_conf_t  *smcf;

    ctx = ngx_http_seadragon_get_ctx(r->main);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (!ctx->classified
        && (data == NGX_HTTP_SEADRAGON_VAR_SOURCE
            || data == NGX_HTTP_SEADRAGON_VAR_PRIORITY
            || data == NGX_HTTP_SEADRAGON_VAR_KEY_NAME
            || data == NGX_HTTP_SEADRAGON_VAR_USER))
    {
        if (ngx_http_seadragon_classify(r->main, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);
    source = smcf->sources.elts;

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    switch (data) {

    case NGX_HTTP_SEADRAGON_VAR_SOURCE:
        v->len = source[ctx->source].name.len;
        v->data = source[ctx->source].name.data;
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_VAR_MODEL:
        if (ctx->model.len == 0) {
            break;
        }

        v->len = ctx->model.len;
        v->data = ctx->model.data;
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_VAR_ENDPOINT:
        return ngx_http_seadragon_variable_endpoint(r, v, ctx);

    case NGX_HTTP_SEADRAGON_VAR_KEY_NAME:
        if (ctx->key_name.len == 0) {
            break;
        }

        v->len = ctx->key_name.len;
        v->data = ctx->key_name.data;
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_VAR_USER:
        if (ctx->user_name.len == 0) {
            break;
        }

        v->len = ctx->user_name.len;
        v->data = ctx->user_name.data;
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_VAR_STREAM:
        if (!ctx->stream_set && ctx->model.len == 0) {
            break;
        }

        ngx_http_seadragon_variable_stream(r, v, ctx);
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_VAR_QUEUE_WAIT:
    case NGX_HTTP_SEADRAGON_VAR_QUEUE_POSITION:
    case NGX_HTTP_SEADRAGON_VAR_QUEUE_ID:
        if (!ctx->queued) {
            break;
        }

        /* fall through */

    default: /* NGX_HTTP_SEADRAGON_VAR_PRIORITY */
        return ngx_http_seadragon_variable_number(r, v, ctx, data);
    }

    v->not_found = 1;
    return NGX_OK;
}


/* the endpoint as Ollama knows it: "/api/chat", "/v1/models/" for a model */

static ngx_int_t
ngx_http_seadragon_variable_endpoint(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_seadragon_ctx_t *ctx)
{
    u_char  *p;

    ngx_http_seadragon_endpoint_find(r->main, ctx);

    if (ctx->endpoint == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, sizeof("/api/") - 1 + ctx->endpoint->name.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    if (ctx->endpoint->api == NGX_HTTP_SEADRAGON_API_OPENAI) {
        p = ngx_cpymem(p, "/v1/", sizeof("/v1/") - 1);

    } else {
        p = ngx_cpymem(p, "/api/", sizeof("/api/") - 1);
    }

    p = ngx_cpymem(p, ctx->endpoint->name.data, ctx->endpoint->name.len);
    v->len = p - v->data;

    return NGX_OK;
}


/*
 * Ollama's /api/chat and /api/generate (and pull, push, create) stream
 * unless the body says "stream": false; OpenAI's API streams only when it
 * says "stream": true; embeddings and the rest never stream.
 */

static void
ngx_http_seadragon_variable_stream(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_seadragon_ctx_t *ctx)
{
    ngx_uint_t  stream;

    ngx_http_seadragon_endpoint_find(r->main, ctx);

    switch (ctx->endpoint ? ctx->endpoint->stream
                          : NGX_HTTP_SEADRAGON_STREAM_DEFAULT)
    {
    case NGX_HTTP_SEADRAGON_STREAM_NEVER:
        stream = 0;
        break;

    case NGX_HTTP_SEADRAGON_STREAM_ASKED:
        stream = ctx->stream_set && ctx->stream;
        break;

    default: /* NGX_HTTP_SEADRAGON_STREAM_DEFAULT */
        stream = !ctx->stream_set || ctx->stream;
    }

    if (stream) {
        ngx_str_set(v, "true");

    } else {
        ngx_str_set(v, "false");
    }
}


static ngx_int_t
ngx_http_seadragon_variable_number(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_seadragon_ctx_t *ctx,
    uintptr_t data)
{
    u_char                          *p;
    ngx_http_seadragon_source_t     *source;
    ngx_http_seadragon_main_conf_t  *smcf;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    if (data == NGX_HTTP_SEADRAGON_VAR_PRIORITY) {
        smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);
        source = smcf->sources.elts;

        p = ngx_sprintf(p, "%ui", source[ctx->source].priority);

    } else if (data == NGX_HTTP_SEADRAGON_VAR_QUEUE_WAIT) {
        p = ngx_sprintf(p, "%M", ctx->wait);

    } else if (data == NGX_HTTP_SEADRAGON_VAR_QUEUE_POSITION) {
        p = ngx_sprintf(p, "%ui", ctx->position);

    } else {
        p = ngx_sprintf(p, "%uL", ctx->id);
    }

    v->len = p - v->data;

    return NGX_OK;
}


/*
 * What the answer used (ngx_http_seadragon_usage_parse.c): not found
 * ("-" in a log) for an answer that was not read, or that carried no
 * figures and no chunk of text (/api/embeddings); the load time only when
 * Ollama reported one, the rate only when a generation time is known.
 */

static ngx_int_t
ngx_http_seadragon_variable_usage(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                    *p;
    uint64_t                   value;
    ngx_http_seadragon_ctx_t  *ctx;

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 1;

    ctx = ngx_http_get_module_ctx(r->main, ngx_seadragon_module);

    if (ctx == NULL || !ctx->usage.counted
        || !(ctx->usage.reported || ctx->usage.estimated))
    {
        return NGX_OK;
    }

    ngx_http_seadragon_usage_finish(r->main, ctx);

    switch (data) {

    case NGX_HTTP_SEADRAGON_VAR_PROMPT_TOKENS:
        value = ctx->usage.prompt_tokens;
        break;

    case NGX_HTTP_SEADRAGON_VAR_COMPLETION_TOKENS:
        value = ctx->usage.completion_tokens;
        break;

    case NGX_HTTP_SEADRAGON_VAR_LOAD_MS:
        if (!ngx_http_seadragon_usage_load_known(ctx)) {
            return NGX_OK;
        }

        value = ctx->usage.load_ms;
        break;

    default: /* NGX_HTTP_SEADRAGON_VAR_TOKENS_PER_SECOND */
        if (ngx_http_seadragon_usage_rate(ctx, &value) != NGX_OK) {
            return NGX_OK;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN + sizeof(".00"));
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        p = ngx_sprintf(p, "%uL.%02uL", value / 100, value % 100);
        v->len = p - v->data;
        v->not_found = 0;

        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = ngx_sprintf(p, "%uL", value) - p;
    v->not_found = 0;

    return NGX_OK;
}


/* preconfiguration: the variables exist before any directive names them */

ngx_int_t
ngx_http_seadragon_variables_add(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_seadragon_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}
