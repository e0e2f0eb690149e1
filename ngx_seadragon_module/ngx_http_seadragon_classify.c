
/*
 * Copyright (C) The Seadragon authors
 *
 * Who is asking, and for what: the request context, the choice of a
 * source from the configured conditions, and the JSON body read from
 * memory or its temporary file and checked by ngx_http_seadragon_json.c
 * (which also yields the model and the stream flag).
 */


#include "ngx_http_seadragon_module.h"
#include "ngx_http_seadragon_json.h"


static ngx_int_t ngx_http_seadragon_classify_by_key(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_main_conf_t *smcf);
static ngx_int_t ngx_http_seadragon_classify_by_login(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_main_conf_t *smcf);
static ngx_int_t ngx_http_seadragon_classify_by_condition(
    ngx_http_request_t *r, ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_main_conf_t *smcf);
static ngx_int_t ngx_http_seadragon_classify_whitelist(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_main_conf_t *smcf);
static ngx_int_t ngx_http_seadragon_json_feed(ngx_http_request_t *r,
    seadragon_json_t *js);
static void *ngx_http_seadragon_json_alloc(void *data, size_t size);
static ngx_uint_t ngx_http_seadragon_key_header(ngx_table_elt_t *h,
    ngx_uint_t *bearer);


ngx_http_seadragon_ctx_t *
ngx_http_seadragon_get_ctx(ngx_http_request_t *r)
{
    ngx_http_seadragon_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_seadragon_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->request = r;

    ngx_http_set_ctx(r, ctx, ngx_seadragon_module);

    return ctx;
}


/*
 * Which source a request belongs to, and whether it may be served.
 *
 * A Seadragon key ("sd-...") decides by itself: valid, it grants its
 * source whatever the conditions say; unknown, revoked, expired or
 * disabled, the request is refused.  A login's token (a JWT) decides the
 * same way: valid and of an active user, it grants the user's source.
 * Without either, the first source whose condition is neither empty nor
 * "0" wins, in the order of the seadragon_source directives, else the
 * default one; a source that wants a key or a login is never given by a
 * condition alone, so a high priority cannot be claimed with a header.
 * A source that wants a login ("login") is not given by an API key
 * either.  Other bearer tokens (clients that must send something, such
 * as "ollama") count as no key.
 */

ngx_int_t
ngx_http_seadragon_classify(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_int_t                        rc;
    ngx_str_t                        value;
    ngx_uint_t                       other_key;
    ngx_http_seadragon_source_t     *source;
    ngx_http_seadragon_main_conf_t  *smcf;

    if (ctx->classified) {
        return NGX_OK;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);
    source = smcf->sources.elts;

    ctx->source = smcf->default_source;
    ctx->access = NGX_HTTP_SEADRAGON_ACCESS_OK;
    ctx->classified = 1;

    if (ngx_http_seadragon_key_take(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    other_key = 0;

    if (ctx->key.len && smcf->store) {

        value = ctx->key;

        while (value.len && value.data[value.len - 1] == ' ') {
            value.len--;
        }

        if (ctx->key.len > sizeof(SEADRAGON_KEY_PREFIX) - 1
            && ngx_strncmp(ctx->key.data, SEADRAGON_KEY_PREFIX,
                           sizeof(SEADRAGON_KEY_PREFIX) - 1) == 0)
        {
            rc = ngx_http_seadragon_classify_by_key(r, ctx, smcf);

        } else if (ngx_http_seadragon_login_token_like(&value)) {
            rc = ngx_http_seadragon_classify_by_login(r, ctx, smcf);

        } else {
            other_key = 1;
            rc = NGX_DECLINED;
        }

        if (rc != NGX_DECLINED) {

            if (rc != NGX_OK || ctx->access != NGX_HTTP_SEADRAGON_ACCESS_OK) {
                return rc;
            }

            /* a source of logins only: an API key made for it is not one */

            if (source[ctx->source].require_login && ctx->user_name.len == 0)
            {
                ctx->access = NGX_HTTP_SEADRAGON_ACCESS_LOGIN_REQUIRED;
                return NGX_OK;
            }

            return ngx_http_seadragon_classify_whitelist(r, ctx, smcf);
        }
    }

    if (ngx_http_seadragon_classify_by_condition(r, ctx, smcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (source[ctx->source].require_login) {
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_LOGIN_REQUIRED;
        return NGX_OK;
    }

    if (source[ctx->source].require_key) {
        ctx->access = other_key ? NGX_HTTP_SEADRAGON_ACCESS_KEY_INVALID
                                : NGX_HTTP_SEADRAGON_ACCESS_KEY_REQUIRED;
        return NGX_OK;
    }

    return ngx_http_seadragon_classify_whitelist(r, ctx, smcf);
}


/*
 * A Seadragon key: its record in the store gives the source, or the
 * verdict that refuses it (ctx->access).
 */

static ngx_int_t
ngx_http_seadragon_classify_by_key(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_main_conf_t *smcf)
{
    ngx_int_t                rc;
    ngx_str_t                value;
    seadragon_key_record_t   record;

    rc = ngx_http_seadragon_store_key(smcf->store, r->connection,
                                      &ctx->key, &record);

    if (rc == NGX_ERROR) {
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_STORE_ERROR;
        return NGX_OK;
    }

    if (rc == NGX_DECLINED) {
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_KEY_INVALID;
        return NGX_OK;
    }

    ctx->key_name.len = ngx_strlen(record.name);
    ctx->key_name.data = ngx_pnalloc(r->pool, ctx->key_name.len);
    if (ctx->key_name.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->key_name.data, record.name, ctx->key_name.len);

    /* as the record says now: a changed limit applies from this request */

    ctx->limits.rpm = record.rpm;
    ctx->limits.tokens_per_day = record.tokens_per_day;
    ctx->limits.max_concurrent = record.max_concurrent;
    ctx->limits.weight = record.weight;

    if (record.flags & SEADRAGON_KEY_DISABLED) {
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_KEY_DISABLED;
        return NGX_OK;
    }

    if (record.expires && record.expires <= ngx_time()) {
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_KEY_EXPIRED;
        return NGX_OK;
    }

    value.data = (u_char *) record.source;
    value.len = ngx_strlen(record.source);

    rc = ngx_http_seadragon_source_find(smcf, &value);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon key \"%V\" grants the source \"%V\", "
                      "which is not configured", &ctx->key_name, &value);
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_KEY_SOURCE;
        return NGX_OK;
    }

    ctx->source = rc;

    return NGX_OK;
}


/*
 * A login's token, checked by ngx_http_seadragon_login_check() (the one
 * check of a token): valid, it gives the user's source; else the verdict
 * that refuses it (ctx->access).  The token itself is never logged.
 */

static ngx_int_t
ngx_http_seadragon_classify_by_login(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_main_conf_t *smcf)
{
    ngx_int_t                         rc;
    ngx_str_t                         value;
    seadragon_user_record_t           user;
    ngx_http_seadragon_jwt_claims_t   claims;

    switch (ngx_http_seadragon_login_check(r, &ctx->key, &user, &claims)) {

    case NGX_HTTP_SEADRAGON_LOGIN_OK:
        break;

    case NGX_HTTP_SEADRAGON_LOGIN_DISABLED:
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_USER_DISABLED;
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_LOGIN_STORE_ERROR:
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_STORE_ERROR;
        return NGX_OK;

    default: /* NGX_HTTP_SEADRAGON_LOGIN_INVALID */
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_LOGIN_INVALID;
        return NGX_OK;
    }

    if (ngx_http_seadragon_login_name(r, ctx, &claims) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = (u_char *) user.source;
    value.len = ngx_strlen(user.source);

    rc = ngx_http_seadragon_source_find(smcf, &value);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon user \"%V\" is of the source \"%V\", "
                      "which is not configured", &ctx->user_name, &value);
        ctx->access = NGX_HTTP_SEADRAGON_ACCESS_USER_SOURCE;
        return NGX_OK;
    }

    ctx->source = rc;

    return NGX_OK;
}


/* the first source whose condition is neither empty nor "0" */

static ngx_int_t
ngx_http_seadragon_classify_by_condition(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_main_conf_t *smcf)
{
    ngx_str_t                     value;
    ngx_uint_t                    i;
    ngx_http_seadragon_source_t  *source;

    source = smcf->sources.elts;

    for (i = 0; i < smcf->sources.nelts; i++) {

        if (source[i].condition == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, source[i].condition, &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (value.len == 0 || (value.len == 1 && value.data[0] == '0')) {
            continue;
        }

        ctx->source = i;
        break;
    }

    return NGX_OK;
}


/* a source that wants the whitelist, by the client's address */

static ngx_int_t
ngx_http_seadragon_classify_whitelist(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_main_conf_t *smcf)
{
    ngx_int_t                     rc;
    ngx_http_seadragon_source_t  *source;

    source = smcf->sources.elts;

    if (source[ctx->source].require_whitelist) {

        rc = ngx_http_seadragon_store_whitelisted(smcf->store, r->connection);

        if (rc == NGX_ERROR) {
            ctx->access = NGX_HTTP_SEADRAGON_ACCESS_STORE_ERROR;

        } else if (rc == NGX_DECLINED) {
            ctx->access = NGX_HTTP_SEADRAGON_ACCESS_NOT_WHITELISTED;
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "seadragon source: \"%V\", priority %ui, access %ui",
                   &source[ctx->source].name, source[ctx->source].priority,
                   ctx->access);

    return NGX_OK;
}


/*
 * The refusal that goes with a verdict, or NGX_OK.  The key itself never
 * appears in a message or a log line; its name may.
 */

ngx_int_t
ngx_http_seadragon_access_check(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    char             *message;
    ngx_str_t        *who;
    ngx_uint_t        status;

    status = NGX_HTTP_UNAUTHORIZED;

    switch (ctx->access) {

    case NGX_HTTP_SEADRAGON_ACCESS_OK:
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_ACCESS_KEY_REQUIRED:
        message = "API key required";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_KEY_INVALID:
        message = "invalid API key";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_KEY_EXPIRED:
        message = "API key expired";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_KEY_DISABLED:
        message = "API key disabled";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_KEY_SOURCE:
        message = "API key grants a source this gateway does not serve";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_LOGIN_REQUIRED:
        message = "login required";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_LOGIN_INVALID:
        message = "invalid login token";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_USER_DISABLED:
        message = "user disabled";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_USER_SOURCE:
        message = "login grants a source this gateway does not serve";
        break;

    case NGX_HTTP_SEADRAGON_ACCESS_NOT_WHITELISTED:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "seadragon: client %V is not whitelisted",
                      &r->connection->addr_text);
        return ngx_http_seadragon_reject(r, ctx, NGX_HTTP_FORBIDDEN,
                                 ngx_http_seadragon_counter(rejected_whitelist),
                                 "IP not whitelisted", 0);

    default: /* NGX_HTTP_SEADRAGON_ACCESS_STORE_ERROR */
        return ngx_http_seadragon_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                               ngx_http_seadragon_counter(rejected_unavailable),
                               NGX_HTTP_SEADRAGON_STORE_FAILED,
                               NGX_HTTP_SEADRAGON_STORE_RETRY);
    }

    who = ctx->key_name.len ? &ctx->key_name : &ctx->user_name;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "seadragon: %s%s%V%s", message,
                  who->len ? (ctx->key_name.len ? " (key \"" : " (user \"")
                           : "",
                  who, who->len ? "\")" : "");

    if (ngx_http_seadragon_bearer_challenge(r) != NGX_OK) {
        return ngx_http_seadragon_reject(r, ctx,
                               NGX_HTTP_INTERNAL_SERVER_ERROR,
                               ngx_http_seadragon_counter(rejected_unavailable),
                               NULL, 0);
    }

    return ngx_http_seadragon_reject(r, ctx, status,
                                     ngx_http_seadragon_counter(rejected_key),
                                     message, 0);
}


/*
 * The key a client sends, as Ollama's and OpenAI's clients do:
 * "Authorization: Bearer KEY", or "X-API-Key: KEY".  It is kept in the
 * context and, unless seadragon_pass_key is on, the headers that carry a
 * key are left out of the request, so that no upstream module (proxy,
 * grpc, fastcgi, ...) and no $http_ variable sees them.
 *
 * The entries of r->headers_in.headers are never moved or changed: nginx
 * keeps pointers to them (r->headers_in.user_agent, referer, host, ...,
 * and from 1.23.0 the ->next chains of repeated headers), so moving one
 * would make those point at another header, or nowhere.  Instead the
 * request gets a new list, with copies of every other entry; the old
 * entries stay where they are, whole, for the pointers that lead to them.
 */

ngx_int_t
ngx_http_seadragon_key_take(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_str_t                       *v;
    ngx_uint_t                       i, n, keys, bearer;
    ngx_list_t                       headers;
    ngx_list_part_t                 *part;
    ngx_table_elt_t                 *h, *copy;
    ngx_http_seadragon_loc_conf_t   *slcf;

    if (ctx->key_taken) {
        return NGX_OK;
    }

    n = 0;
    keys = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        n++;

        if (!ngx_http_seadragon_key_header(&h[i], &bearer)) {
            continue;
        }

        keys++;

        if (ctx->key.len == 0) {
            v = &h[i].value;

            ctx->key.data = v->data + (bearer ? sizeof("Bearer ") - 1 : 0);
            ctx->key.len = v->len - (bearer ? sizeof("Bearer ") - 1 : 0);
            ctx->key_bearer = bearer;

            while (ctx->key.len
                   && (ctx->key.data[0] == ' ' || ctx->key.data[0] == '\t'))
            {
                ctx->key.data++;
                ctx->key.len--;
            }
        }
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    if (keys == 0 || slcf->pass_key) {
        ctx->key_taken = 1;
        return NGX_OK;
    }

    if (ngx_list_init(&headers, r->pool, n > keys ? n - keys : 1,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (ngx_http_seadragon_key_header(&h[i], &bearer)) {

            if (r->headers_in.authorization == &h[i]) {
                r->headers_in.authorization = NULL;
            }

            continue;
        }

        copy = ngx_list_push(&headers);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        *copy = h[i];
    }

    r->headers_in.headers = headers;

    /*
     * The list's last part is the local one when the copies fit in it:
     * a later ngx_list_push() (a module that sets a request header after
     * this phase, as ngx_lua's ngx.req.set_header() does) would write
     * through a pointer into this function's finished stack frame.
     */

    if (headers.last == &headers.part) {
        r->headers_in.headers.last = &r->headers_in.headers.part;
    }

    ctx->key_taken = 1;

    return NGX_OK;
}


/* a header that carries a key: "Authorization: Bearer ...", "X-API-Key" */

static ngx_uint_t
ngx_http_seadragon_key_header(ngx_table_elt_t *h, ngx_uint_t *bearer)
{
    *bearer = 0;

    if (h->key.len == sizeof("Authorization") - 1
        && ngx_strncasecmp(h->key.data, (u_char *) "Authorization",
                           sizeof("Authorization") - 1) == 0)
    {
        /* "Bearer", any case, then a space or a tab (as nginx's own
         * header parsing takes either for whitespace) */

        if (h->value.len <= sizeof("Bearer ") - 1
            || ngx_strncasecmp(h->value.data, (u_char *) "Bearer",
                               sizeof("Bearer") - 1) != 0
            || (h->value.data[sizeof("Bearer") - 1] != ' '
                && h->value.data[sizeof("Bearer") - 1] != '\t'))
        {
            return 0;    /* Basic and the like are not ours */
        }

        *bearer = 1;
        return 1;
    }

    return h->key.len == sizeof("X-API-Key") - 1
           && ngx_strncasecmp(h->key.data, (u_char *) "X-API-Key",
                              sizeof("X-API-Key") - 1) == 0;
}


/*
 * Validates the request body as one JSON object, in memory or in the
 * temporary file nginx wrote it to, without copying it (the checks are
 * ngx_http_seadragon_json.c's).  A failure sets the message the client
 * will read and returns the status.
 */

ngx_int_t
ngx_http_seadragon_body_parse(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_int_t                 rc;
    seadragon_json_t          js;
    seadragon_json_verdict_e  verdict;

    if (r->request_body == NULL || r->request_body->bufs == NULL
        || r->headers_in.content_length_n == 0)
    {
        ngx_str_set(&ctx->error, "missing request body");
        return NGX_HTTP_BAD_REQUEST;
    }

    if (seadragon_json_init(&js, NGX_HTTP_SEADRAGON_JSON_MAX_DEPTH,
                            ngx_http_seadragon_json_alloc, r->pool)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_seadragon_json_feed(r, &js);

    if (rc == NGX_OK) {
        verdict = seadragon_json_finish(&js);

    } else {
        seadragon_json_free(&js);
        verdict = SEADRAGON_JSON_NO_MEMORY;
    }

    /* what was read, for the variables, even of a refused body */

    if (js.model_len) {
        ctx->model.data = js.model;
        ctx->model.len = js.model_len;
    }

    if (js.stream_set) {
        ctx->stream = js.stream;
        ctx->stream_set = 1;
    }

    switch (verdict) {

    case SEADRAGON_JSON_OK:
        return NGX_OK;

    case SEADRAGON_JSON_NO_MEMORY:    /* or the file could not be read */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    case SEADRAGON_JSON_TOO_DEEP:
        ngx_str_set(&ctx->error, "Invalid JSON: nested too deeply");
        return NGX_HTTP_BAD_REQUEST;

    case SEADRAGON_JSON_NOT_OBJECT:
        ngx_str_set(&ctx->error,
                    "Invalid JSON: the request body must be a JSON object");
        return NGX_HTTP_BAD_REQUEST;

    case SEADRAGON_JSON_MODEL_TOO_LONG:
        ngx_str_set(&ctx->error, "invalid model name: longer than "
                    SEADRAGON_JSON_TEXT(SEADRAGON_JSON_MODEL_MAX) " bytes");
        return NGX_HTTP_BAD_REQUEST;

    default: /* SEADRAGON_JSON_INVALID, SEADRAGON_JSON_EMPTY */
        ngx_str_set(&ctx->error, "Invalid JSON");
        return NGX_HTTP_BAD_REQUEST;
    }
}


/* NGX_OK: fed until the end or a verdict; NGX_ERROR: could not read */

static ngx_int_t
ngx_http_seadragon_json_feed(ngx_http_request_t *r, seadragon_json_t *js)
{
    off_t         offset;
    size_t        size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;
    u_char        buf[4096];

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            if (b->last > b->pos) {
                if (seadragon_json_feed(js, b->pos, b->last - b->pos) != 0) {
                    return NGX_OK;
                }
            }

            continue;
        }

        for (offset = b->file_pos; offset < b->file_last; offset += n) {
            size = (size_t) ngx_min((off_t) sizeof(buf),
                                    b->file_last - offset);

            n = ngx_read_file(b->file, buf, size, offset);

            if (n == NGX_ERROR || n == 0) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "seadragon could not read the request body "
                              "from \"%V\"", &b->file->name);
                return NGX_ERROR;
            }

            if (seadragon_json_feed(js, buf, n) != 0) {
                return NGX_OK;
            }
        }
    }

    return NGX_OK;
}


static void *
ngx_http_seadragon_json_alloc(void *data, size_t size)
{
    ngx_pool_t  *pool = data;

    return ngx_pnalloc(pool, size);
}
