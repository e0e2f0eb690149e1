
/*
 * Copyright (C) The Seadragon authors
 *
 * The admin API of a zone, as JSON built with yajl: the queue in dispatch
 * order and what holds the gate, the counters of each source, and the
 * gate's maintenance controls (pause, resume, drain).  The authorization
 * of every admin request and the table of its routes are here; the
 * store's endpoints (whitelist, keys) are in ngx_http_seadragon_admin_store.c
 * and the JSON writer they share in ngx_http_seadragon_admin_json.c.
 *
 * The zone is read under its lock into request memory allocated before
 * the lock is taken, and the JSON is written after it is released.
 */


#include "ngx_http_seadragon_module.h"


typedef struct {
    ngx_http_seadragon_entry_t   entry;
    ngx_uint_t                   position;
    ngx_uint_t                   effective;    /* priority, aged */
    ngx_uint_t                   resident;     /* its model, in the view */
    size_t                       tenant_len;   /* 0: none (fair= off) */
    u_char                       tenant[NGX_HTTP_SEADRAGON_TENANT_LEN];
} ngx_http_seadragon_snapshot_entry_t;


typedef struct {
    ngx_http_seadragon_snapshot_entry_t  *waiting;
    ngx_uint_t                            nwaiting;
    ngx_http_seadragon_snapshot_entry_t  *running;
    ngx_uint_t                            nrunning;
    ngx_uint_t                            capacity;
    ngx_uint_t                            gate_state;
    time_t                                gate_changed;
    time_t                                started;
    ngx_uint_t                            nsources;
    ngx_http_seadragon_shm_source_t
                                 sources[NGX_HTTP_SEADRAGON_MAX_SOURCES];
} ngx_http_seadragon_snapshot_t;


/*
 * What the authorization of an admin request decided.  A refusal is not
 * answered there: the handler answers it, and nothing else happens.
 */

typedef enum {
    NGX_HTTP_SEADRAGON_ADMIN_AUTHORIZED = 0,
    NGX_HTTP_SEADRAGON_ADMIN_REFUSED,
    NGX_HTTP_SEADRAGON_ADMIN_FAILED
} ngx_http_seadragon_admin_decision_e;


/* the status and the message of a refusal's JSON answer */

typedef struct {
    ngx_uint_t                            status;
    char                                 *message;
} ngx_http_seadragon_admin_refusal_t;


/* how a route of the table matches the part of the URI after the location */

typedef enum {
    NGX_HTTP_SEADRAGON_ADMIN_EXACT = 0,   /* the path itself */
    NGX_HTTP_SEADRAGON_ADMIN_SEGMENT,     /* the path, or it and "/..." */
    NGX_HTTP_SEADRAGON_ADMIN_UNDER        /* the path and something more */
} ngx_http_seadragon_admin_match_e;


/*
 * A route of the admin API: the methods it takes (0: its handler checks
 * them) and the 405 answer to another one, whether a POST to the path
 * itself reads a body (1), or that and a PATCH of PATH/NAME too (2), and
 * the handler with its argument.
 */

typedef struct {
    ngx_str_t                             path;
    ngx_uint_t                            match;
    ngx_uint_t                            methods;
    char                                 *allow;
    char                                 *message;
    ngx_uint_t                            body;
    ngx_http_seadragon_admin_handler_pt   handler;
    ngx_uint_t                            arg;
} ngx_http_seadragon_admin_route_t;


static ngx_int_t ngx_http_seadragon_admin_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_seadragon_admin_authorize(ngx_http_request_t *r,
    ngx_http_seadragon_admin_conf_t *acf,
    ngx_http_seadragon_admin_refusal_t *refusal);
static ngx_uint_t ngx_http_seadragon_admin_authorize_login(
    ngx_http_request_t *r, ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_admin_refusal_t *refusal);
static ngx_uint_t ngx_http_seadragon_admin_cross_site(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_admin_snapshot(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_snapshot_t *snap);
static void ngx_http_seadragon_admin_copy(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_snapshot_entry_t *copy, ngx_http_seadragon_entry_t *e);
static ngx_int_t ngx_http_seadragon_admin_queue(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);
static ngx_int_t ngx_http_seadragon_admin_stats(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);
static void ngx_http_seadragon_admin_counters(ngx_http_seadragon_json_t *j,
    ngx_http_seadragon_counters_t *c);
static ngx_http_seadragon_admin_route_t *ngx_http_seadragon_admin_find(
    ngx_str_t *route);
static ngx_int_t ngx_http_seadragon_admin_gate(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t state);
static ngx_int_t ngx_http_seadragon_admin_no_control(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);


#define NGX_HTTP_SEADRAGON_ADMIN_READ                                        \
    NGX_HTTP_GET|NGX_HTTP_HEAD, "GET, HEAD",                                 \
    "this endpoint only reads: use GET"

#define NGX_HTTP_SEADRAGON_ADMIN_CONTROL                                     \
    NGX_HTTP_POST, "POST", "gate controls take POST"


/* the first route that matches is taken: gate/NAME before gate/... */

static ngx_http_seadragon_admin_route_t  ngx_http_seadragon_admin_routes[] = {

    { ngx_string(""), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_READ, 0,
      ngx_http_seadragon_admin_queue, 0 },

    { ngx_string("queue"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_READ, 0,
      ngx_http_seadragon_admin_queue, 0 },

    { ngx_string("stats"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_READ, 0,
      ngx_http_seadragon_admin_stats, 0 },

    { ngx_string("gate/pause"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_CONTROL, 0,
      ngx_http_seadragon_admin_gate, NGX_HTTP_SEADRAGON_GATE_PAUSED },

    { ngx_string("gate/resume"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_CONTROL, 0,
      ngx_http_seadragon_admin_gate, NGX_HTTP_SEADRAGON_GATE_OPEN },

    { ngx_string("gate/drain"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_CONTROL, 0,
      ngx_http_seadragon_admin_gate, NGX_HTTP_SEADRAGON_GATE_DRAINING },

    { ngx_string("gate/"), NGX_HTTP_SEADRAGON_ADMIN_UNDER,
      0, NULL, NULL, 0,
      ngx_http_seadragon_admin_no_control, 0 },

    { ngx_string("usage"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_READ, 0,
      ngx_http_seadragon_usage_admin, 0 },

    { ngx_string("models"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_READ, 0,
      ngx_http_seadragon_resident_admin, 0 },
    { ngx_string("history"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_READ, 0,
      ngx_http_seadragon_admin_history, 0 },

    { ngx_string("tenants"), NGX_HTTP_SEADRAGON_ADMIN_EXACT,
      NGX_HTTP_SEADRAGON_ADMIN_READ, 0,
      ngx_http_seadragon_admin_tenants, 0 },

    /* the store's endpoints check their methods themselves */

    { ngx_string("whitelist"), NGX_HTTP_SEADRAGON_ADMIN_SEGMENT,
      0, NULL, NULL, 1,
      ngx_http_seadragon_admin_store, 0 },

    { ngx_string("keys"), NGX_HTTP_SEADRAGON_ADMIN_SEGMENT,
      0, NULL, NULL, 2,
      ngx_http_seadragon_admin_store, 0 },

    { ngx_string("users"), NGX_HTTP_SEADRAGON_ADMIN_SEGMENT,
      0, NULL, NULL, 2,
      ngx_http_seadragon_admin_users, 0 },

    { ngx_null_string, 0, 0, NULL, NULL, 0, NULL, 0 }
};


char *ngx_http_seadragon_gate_states[] = {
    "open", "paused", "draining"
};


/*
 * seadragon_admin ZONE [auth=key|nginx] [thread_pool=NAME]: the users'
 * new passwords are hashed in the thread pool NAME ("default" unless
 * named), as seadragon_auth's logins are.
 */

char *
ngx_http_seadragon_admin_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_seadragon_loc_conf_t  *slcf = conf;

    ngx_str_t                        *value, pool;
    ngx_uint_t                        i;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_seadragon_admin_conf_t  *acf;

    if (slcf->admin) {
        return "is duplicate";
    }

    value = cf->args->elts;

    acf = ngx_pcalloc(cf->pool, sizeof(ngx_http_seadragon_admin_conf_t));
    if (acf == NULL) {
        return NGX_CONF_ERROR;
    }

    acf->zone = ngx_http_seadragon_zone_get(cf, &value[1]);
    if (acf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    acf->auth = NGX_HTTP_SEADRAGON_ADMIN_AUTH_KEY;
    ngx_str_set(&pool, "default");

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "thread_pool=", 12) == 0) {
            if (ngx_http_seadragon_task_pool_name(cf, &value[i], &pool)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "auth=key") == 0) {
            acf->auth = NGX_HTTP_SEADRAGON_ADMIN_AUTH_KEY;
            continue;
        }

        if (ngx_strcmp(value[i].data, "auth=nginx") == 0) {
            acf->auth = NGX_HTTP_SEADRAGON_ADMIN_AUTH_NGINX;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected auth=key "
                           "(an admin key or an admin user's login from the "
                           "store), auth=nginx (this location's own access "
                           "checks) or thread_pool=NAME (where users' "
                           "passwords are hashed)", &value[i]);
        return NGX_CONF_ERROR;
    }

#if (NGX_THREADS)

    /* an unknown name is nginx's own error: "unknown thread pool" */

    acf->thread_pool = ngx_thread_pool_add(cf, &pool);
    if (acf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

#endif

    acf->conf_file = cf->conf_file->file.name.data;
    acf->conf_line = cf->conf_file->line;

    slcf->admin = acf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_seadragon_admin_handler;

    return NGX_CONF_OK;
}


/*
 * The part of the URI after the location's prefix: "queue", "stats",
 * "gate/pause"...; for a regex or exact location, what follows its last
 * "/admin/"-like segment is not known, so the last one or two segments
 * are used.
 */

static void
ngx_http_seadragon_admin_route(ngx_http_request_t *r, ngx_str_t *route)
{
    u_char                    *p, *last;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p = r->uri.data;
    last = r->uri.data + r->uri.len;

    if (!clcf->regex && !clcf->exact_match && r->uri.len >= clcf->name.len
        && ngx_strncmp(p, clcf->name.data, clcf->name.len) == 0)
    {
        p += clcf->name.len;

    } else {
        p = last;

        while (p > r->uri.data && *(p - 1) != '/') {
            p--;
        }

        if (p - r->uri.data > 5 && ngx_strncmp(p - 5, "gate/", 5) == 0) {
            p -= 5;
        }
    }

    while (p < last && *p == '/') {
        p++;
    }

    while (last > p && *(last - 1) == '/') {
        last--;
    }

    route->data = p;
    route->len = last - p;
}


static ngx_int_t
ngx_http_seadragon_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_str_t                            route;
    ngx_http_seadragon_loc_conf_t       *slcf;
    ngx_http_seadragon_admin_conf_t     *acf;
    ngx_http_seadragon_admin_route_t    *rt;
    ngx_http_seadragon_admin_refusal_t   refusal;

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);
    acf = slcf->admin;

    /* a refused request is answered here and does nothing else */

    switch (ngx_http_seadragon_admin_authorize(r, acf, &refusal)) {

    case NGX_HTTP_SEADRAGON_ADMIN_AUTHORIZED:
        break;

    case NGX_HTTP_SEADRAGON_ADMIN_REFUSED:
        return ngx_http_seadragon_admin_error(r, refusal.status,
                                              refusal.message);

    default: /* NGX_HTTP_SEADRAGON_ADMIN_FAILED */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_admin_route(r, &route);

    rt = ngx_http_seadragon_admin_find(&route);

    /*
     * only adding to the whitelist, creating a key and changing a key's
     * limits (PATCH keys/NAME) read a body
     */

    if (!(rt != NULL && rt->body
          && ((r->method == NGX_HTTP_POST && route.len == rt->path.len)
              || (r->method == NGX_HTTP_PATCH && rt->body == 2
                  && route.len > rt->path.len + 1
                  && ngx_strlchr(route.data + rt->path.len + 1,
                                 route.data + route.len, '/')
                     == NULL))))
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (rt == NULL) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                              "no such admin endpoint: use "
                                              "queue, stats, usage, models, "
                                              "history, tenants, "
                                              "gate/pause|resume|drain, "
                                              "whitelist, keys or users");
    }

    if (rt->methods && !(r->method & rt->methods)) {
        return ngx_http_seadragon_admin_not_allowed(r, rt->allow,
                                                    rt->message);
    }

    return rt->handler(r, acf->zone, &route, rt->arg);
}


/* the first route of the table that the part of the URI matches */

static ngx_http_seadragon_admin_route_t *
ngx_http_seadragon_admin_find(ngx_str_t *route)
{
    size_t                             len;
    ngx_http_seadragon_admin_route_t  *rt;

    for (rt = ngx_http_seadragon_admin_routes; rt->handler; rt++) {
        len = rt->path.len;

        if (route->len < len
            || ngx_strncmp(route->data, rt->path.data, len) != 0)
        {
            continue;
        }

        switch (rt->match) {

        case NGX_HTTP_SEADRAGON_ADMIN_EXACT:
            if (route->len == len) {
                return rt;
            }
            break;

        case NGX_HTTP_SEADRAGON_ADMIN_SEGMENT:
            if (route->len == len || route->data[len] == '/') {
                return rt;
            }
            break;

        default: /* NGX_HTTP_SEADRAGON_ADMIN_UNDER */
            if (route->len > len) {
                return rt;
            }
            break;
        }
    }

    return NULL;
}


/* gate/pause, gate/resume, gate/drain: the route's argument is the state */

static ngx_int_t
ngx_http_seadragon_admin_gate(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t state)
{
    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "seadragon zone \"%V\": gate set to %s",
                  &zone->name, ngx_http_seadragon_gate_states[state]);

    ngx_http_seadragon_gate_set_state(zone, state);

    return ngx_http_seadragon_admin_queue(r, zone, route, 0);
}


/* gate/ and any other name, whatever the method */

static ngx_int_t
ngx_http_seadragon_admin_no_control(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg)
{
    return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                          "no such gate control: use "
                                          "pause, resume or drain");
}


/*
 * auth=key: an API key made for the source "admin" (seadragon-store key
 * create NAME --source admin), or a login's token of a user of that
 * source.  auth=nginx: this location's own access checks (allow/deny,
 * auth_basic, auth_request) have already run.  With
 * either, a write that a browser says comes from another site is refused.
 */

static ngx_uint_t
ngx_http_seadragon_admin_authorize(ngx_http_request_t *r,
    ngx_http_seadragon_admin_conf_t *acf,
    ngx_http_seadragon_admin_refusal_t *refusal)
{
    ngx_int_t                        rc;
    seadragon_key_record_t           record;
    ngx_http_seadragon_ctx_t        *ctx;
    ngx_http_seadragon_main_conf_t  *smcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        && ngx_http_seadragon_admin_cross_site(r))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon admin refused a cross-site request");

        refusal->status = NGX_HTTP_FORBIDDEN;
        refusal->message = "cross-site admin requests are refused: use the "
                           "admin page of this origin, or a client that is "
                           "not a browser";
        return NGX_HTTP_SEADRAGON_ADMIN_REFUSED;
    }

    if (acf->auth == NGX_HTTP_SEADRAGON_ADMIN_AUTH_NGINX) {
        return NGX_HTTP_SEADRAGON_ADMIN_AUTHORIZED;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    ctx = ngx_http_seadragon_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_SEADRAGON_ADMIN_FAILED;
    }

    if (ngx_http_seadragon_key_take(r, ctx) != NGX_OK) {
        return NGX_HTTP_SEADRAGON_ADMIN_FAILED;
    }

    if (ctx->key.len == 0) {
        goto unauthorized;
    }

    if (ngx_http_seadragon_login_token_like(&ctx->key)) {
        return ngx_http_seadragon_admin_authorize_login(r, ctx, refusal);
    }

    rc = ngx_http_seadragon_store_key(smcf->store, r->connection, &ctx->key,
                                      &record);

    if (rc == NGX_ERROR) {

        /* the words and the Retry-After of a queue request's refusal */

        if (ngx_http_seadragon_header_add(r, "Retry-After",
                (u_char *) NGX_HTTP_SEADRAGON_STORE_RETRY_TEXT,
                sizeof(NGX_HTTP_SEADRAGON_STORE_RETRY_TEXT) - 1)
            == NULL)
        {
            return NGX_HTTP_SEADRAGON_ADMIN_FAILED;
        }

        refusal->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        refusal->message = NGX_HTTP_SEADRAGON_STORE_FAILED;
        return NGX_HTTP_SEADRAGON_ADMIN_REFUSED;
    }

    if (rc != NGX_OK
        || (record.flags & SEADRAGON_KEY_DISABLED)
        || (record.expires && record.expires <= ngx_time()))
    {
        goto unauthorized;
    }

    if (ngx_strcmp(record.source, NGX_HTTP_SEADRAGON_ADMIN_SOURCE) != 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon admin refused the key \"%s\", which is "
                      "not an admin key", record.name);

        refusal->status = NGX_HTTP_FORBIDDEN;
        refusal->message = "not an admin key";
        return NGX_HTTP_SEADRAGON_ADMIN_REFUSED;
    }

    ctx->key_name.len = ngx_strlen(record.name);
    ctx->key_name.data = ngx_pnalloc(r->pool, ctx->key_name.len);
    if (ctx->key_name.data == NULL) {
        return NGX_HTTP_SEADRAGON_ADMIN_FAILED;
    }

    ngx_memcpy(ctx->key_name.data, record.name, ctx->key_name.len);

    return NGX_HTTP_SEADRAGON_ADMIN_AUTHORIZED;

unauthorized:

    if (ngx_http_seadragon_bearer_challenge(r) != NGX_OK) {
        return NGX_HTTP_SEADRAGON_ADMIN_FAILED;
    }

    refusal->status = NGX_HTTP_UNAUTHORIZED;
    refusal->message = ctx->key.len ? "invalid admin key"
                                    : "admin key required";

    return NGX_HTTP_SEADRAGON_ADMIN_REFUSED;
}


/*
 * A login's token (Authorization: Bearer JWT) of an active user of the
 * admin source counts as an admin key does; ngx_http_seadragon_login.c's
 * check decides, and a user of another source is refused as a key of
 * another source is.
 */

static ngx_uint_t
ngx_http_seadragon_admin_authorize_login(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_admin_refusal_t *refusal)
{
    seadragon_user_record_t           user;
    ngx_http_seadragon_jwt_claims_t   claims;

    switch (ngx_http_seadragon_login_check(r, &ctx->key, &user, &claims)) {

    case NGX_HTTP_SEADRAGON_LOGIN_OK:
        break;

    case NGX_HTTP_SEADRAGON_LOGIN_STORE_ERROR:
        if (ngx_http_seadragon_header_add(r, "Retry-After",
                (u_char *) NGX_HTTP_SEADRAGON_STORE_RETRY_TEXT,
                sizeof(NGX_HTTP_SEADRAGON_STORE_RETRY_TEXT) - 1)
            == NULL)
        {
            return NGX_HTTP_SEADRAGON_ADMIN_FAILED;
        }

        refusal->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        refusal->message = NGX_HTTP_SEADRAGON_STORE_FAILED;
        return NGX_HTTP_SEADRAGON_ADMIN_REFUSED;

    case NGX_HTTP_SEADRAGON_LOGIN_DISABLED:
        refusal->message = "user disabled";
        goto unauthorized;

    default: /* NGX_HTTP_SEADRAGON_LOGIN_INVALID */
        refusal->message = "invalid login token";
        goto unauthorized;
    }

    if (ngx_strcmp(user.source, NGX_HTTP_SEADRAGON_ADMIN_SOURCE) != 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon admin refused a login of the user \"%s\", "
                      "who is not an admin user", user.name);

        refusal->status = NGX_HTTP_FORBIDDEN;
        refusal->message = "not an admin user";
        return NGX_HTTP_SEADRAGON_ADMIN_REFUSED;
    }

    /* $seadragon_user names who did it, as $seadragon_key_name a key */

    if (ngx_http_seadragon_login_name(r, ctx, &claims) != NGX_OK) {
        return NGX_HTTP_SEADRAGON_ADMIN_FAILED;
    }

    return NGX_HTTP_SEADRAGON_ADMIN_AUTHORIZED;

unauthorized:

    if (ngx_http_seadragon_bearer_challenge(r) != NGX_OK) {
        return NGX_HTTP_SEADRAGON_ADMIN_FAILED;
    }

    refusal->status = NGX_HTTP_UNAUTHORIZED;

    return NGX_HTTP_SEADRAGON_ADMIN_REFUSED;
}


/*
 * Where a browser says a request comes from: Sec-Fetch-Site, or, in a
 * browser without it, Origin against Host.  A write from another site is
 * what CSRF looks like: a page elsewhere makes the browser send what it
 * adds by itself (the client's address, basic auth, a client
 * certificate).  Requests that say neither do not come from a page of
 * another site (curl, scripts, a navigation).
 *
 * The list of headers is read as it is: the shortcuts in r->headers_in
 * are not needed.
 */

static ngx_uint_t
ngx_http_seadragon_admin_cross_site(ngx_http_request_t *r)
{
    u_char           *p, *last;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *site, *origin, *host;

    site = NULL;
    origin = NULL;
    host = NULL;

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

        if (h[i].key.len == sizeof("Sec-Fetch-Site") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-Fetch-Site",
                               sizeof("Sec-Fetch-Site") - 1) == 0)
        {
            site = &h[i];

        } else if (h[i].key.len == sizeof("Origin") - 1
                   && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin",
                                      sizeof("Origin") - 1) == 0)
        {
            origin = &h[i];

        } else if (h[i].key.len == sizeof("Host") - 1
                   && ngx_strncasecmp(h[i].key.data, (u_char *) "Host",
                                      sizeof("Host") - 1) == 0)
        {
            host = &h[i];
        }
    }

    if (site) {
        return !((site->value.len == sizeof("same-origin") - 1
                  && ngx_strncasecmp(site->value.data,
                                     (u_char *) "same-origin",
                                     sizeof("same-origin") - 1) == 0)
                 || (site->value.len == sizeof("none") - 1
                     && ngx_strncasecmp(site->value.data, (u_char *) "none",
                                        sizeof("none") - 1) == 0));
    }

    if (origin == NULL) {
        return 0;
    }

    /* "null" (a sandboxed or file page) has no host; "scheme://host:port" */

    p = ngx_strlcasestrn(origin->value.data,
                         origin->value.data + origin->value.len,
                         (u_char *) "://", 3 - 1);

    if (p == NULL || host == NULL) {
        return 1;
    }

    p += 3;
    last = origin->value.data + origin->value.len;

    return !((size_t) (last - p) == host->value.len
             && ngx_strncasecmp(p, host->value.data, host->value.len) == 0);
}


/*
 * Copies the zone's queue under its lock.  The memory is taken before the
 * lock, with room for what may arrive meanwhile; entries beyond it are
 * left out of this answer rather than allocated under the lock.
 */

static ngx_int_t
ngx_http_seadragon_admin_snapshot(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_snapshot_t *snap)
{
    ngx_uint_t                            i, n, room;
    ngx_queue_t                          *q;
    ngx_http_seadragon_shctx_t           *sh;
    ngx_http_seadragon_entry_t           *e, **order;
    ngx_http_seadragon_snapshot_entry_t  *copy;

    sh = zone->sh;

    room = sh->nwaiting + sh->nrunning + 64;

    copy = ngx_palloc(r->pool,
                      2 * room * sizeof(ngx_http_seadragon_snapshot_entry_t));
    order = ngx_palloc(r->pool, room * sizeof(ngx_http_seadragon_entry_t *));
    if (copy == NULL || order == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    snap->capacity = sh->capacity;
    snap->gate_state = sh->gate_state;
    snap->gate_changed = sh->gate_changed;
    snap->started = sh->started;
    snap->nsources = sh->nsources;
    ngx_memcpy(snap->sources, sh->sources,
               sh->nsources * sizeof(ngx_http_seadragon_shm_source_t));

    /* the order of dispatch is the queue's own */

    snap->waiting = copy;
    n = ngx_http_seadragon_queue_order(sh, ngx_current_msec, order, room);

    for (i = 0; i < n; i++) {
        ngx_http_seadragon_admin_copy(sh, &copy[i], order[i]);
        copy[i].position = i + 1;
        copy[i].effective = ngx_http_seadragon_queue_effective(sh, order[i],
                                                          ngx_current_msec);
    }

    snap->nwaiting = n;

    snap->running = &copy[room];
    snap->nrunning = 0;

    for (q = ngx_queue_head(&sh->running);
         q != ngx_queue_sentinel(&sh->running) && snap->nrunning < room;
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);
        ngx_http_seadragon_admin_copy(sh, &snap->running[snap->nrunning++], e);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


/*
 * An entry as the answer shows it, under the lock: what it points to in
 * the zone (its tenant) may be gone once the lock is released.
 */

static void
ngx_http_seadragon_admin_copy(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_snapshot_entry_t *copy, ngx_http_seadragon_entry_t *e)
{
    copy->entry = *e;
    copy->entry.tenant = NULL;
    copy->resident = ngx_http_seadragon_queue_resident(sh, e);
    copy->tenant_len = 0;

    if (e->tenant) {
        copy->tenant_len = ngx_min(e->tenant->len,
                                   NGX_HTTP_SEADRAGON_TENANT_LEN);
        ngx_memcpy(copy->tenant, e->tenant->name, copy->tenant_len);
    }
}


static void
ngx_http_seadragon_admin_entry(ngx_http_seadragon_json_t *j,
    ngx_http_seadragon_snapshot_t *snap,
    ngx_http_seadragon_snapshot_entry_t *copy, ngx_uint_t position,
    ngx_msec_t since, ngx_uint_t effective)
{
    ngx_http_seadragon_entry_t       *e;
    ngx_http_seadragon_shm_source_t  *src;

    e = &copy->entry;
    src = &snap->sources[e->source];

    ngx_http_seadragon_json_map_open(j);
    ngx_http_seadragon_json_int(j, "id", (long long) e->id);
    ngx_http_seadragon_json_field(j, "source", src->name, src->name_len);
    ngx_http_seadragon_json_int(j, "priority", (long long) e->priority);

    if (position) {
        ngx_http_seadragon_json_int(j, "effective_priority",
                                    (long long) effective);
    }

    ngx_http_seadragon_json_field(j, "model", e->model, e->model_len);
    ngx_http_seadragon_json_field(j, "client", e->addr, e->addr_len);
    ngx_http_seadragon_json_field(j, "tenant", copy->tenant,
                                  copy->tenant_len);
    ngx_http_seadragon_json_str(j, "resident");
    ngx_http_seadragon_json_check(j, yajl_gen_bool(j->gen, copy->resident));

    if (position) {
        ngx_http_seadragon_json_int(j, "position", (long long) position);
        ngx_http_seadragon_json_seconds(j, "wait_time",
                                        ngx_current_msec - since);

    } else {
        ngx_http_seadragon_json_seconds(j, "running_time",
                                        ngx_current_msec - since);
    }

    ngx_http_seadragon_json_int(j, "enqueued_at",
                                (long long) e->enqueued_sec);
    ngx_http_seadragon_json_int(j, "worker", (long long) e->owner_pid);
    ngx_http_seadragon_json_map_close(j);
}


/*
 * The start of an answer about the zone: its snapshot, and a JSON map
 * opened with the zone's name.  NULL when memory runs out.
 */

static ngx_http_seadragon_snapshot_t *
ngx_http_seadragon_admin_begin(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_json_t *j)
{
    ngx_http_seadragon_snapshot_t  *snap;

    snap = ngx_palloc(r->pool, sizeof(ngx_http_seadragon_snapshot_t));
    if (snap == NULL
        || ngx_http_seadragon_admin_snapshot(r, zone, snap) != NGX_OK
        || ngx_http_seadragon_json_begin(r, j) != NGX_OK)
    {
        return NULL;
    }

    ngx_http_seadragon_json_map_open(j);
    ngx_http_seadragon_json_field(j, "zone", zone->name.data, zone->name.len);

    return snap;
}


/*
 * The reference design's shape (queue_length, processing, entries[] with
 * id, source, priority and wait_time), extended.
 */

static ngx_int_t
ngx_http_seadragon_admin_queue(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg)
{
    ngx_uint_t                      i;
    ngx_http_seadragon_json_t       j;
    ngx_http_seadragon_entry_t     *e;
    ngx_http_seadragon_snapshot_t  *snap;

    snap = ngx_http_seadragon_admin_begin(r, zone, &j);
    if (snap == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_http_seadragon_json_str(&j, "gate");
    ngx_http_seadragon_json_str(&j, ngx_http_seadragon_gate_states[
                                         snap->gate_state]);
    ngx_http_seadragon_json_int(&j, "gate_changed_at",
                                (long long) snap->gate_changed);
    ngx_http_seadragon_json_int(&j, "capacity", (long long) snap->capacity);
    ngx_http_seadragon_json_int(&j, "queue_length",
                                (long long) snap->nwaiting);
    ngx_http_seadragon_json_int(&j, "processing",
                                (long long) snap->nrunning);

    ngx_http_seadragon_json_str(&j, "running");
    ngx_http_seadragon_json_array_open(&j);

    for (i = 0; i < snap->nrunning; i++) {
        e = &snap->running[i].entry;
        ngx_http_seadragon_admin_entry(&j, snap, &snap->running[i], 0,
                                       e->granted, e->priority);
    }

    ngx_http_seadragon_json_array_close(&j);

    ngx_http_seadragon_json_str(&j, "entries");
    ngx_http_seadragon_json_array_open(&j);

    for (i = 0; i < snap->nwaiting; i++) {
        e = &snap->waiting[i].entry;
        ngx_http_seadragon_admin_entry(&j, snap, &snap->waiting[i],
                                       snap->waiting[i].position, e->enqueued,
                                       snap->waiting[i].effective);
    }

    ngx_http_seadragon_json_array_close(&j);
    ngx_http_seadragon_json_map_close(&j);

    return ngx_http_seadragon_admin_send(r, &j);
}


/*
 * A source's counters from the table: the counts, the refusals and the
 * clients gone as a map each, the waits in seconds.
 */

static void
ngx_http_seadragon_admin_counters(ngx_http_seadragon_json_t *j,
    ngx_http_seadragon_counters_t *c)
{
    uint64_t                    value;
    ngx_uint_t                  group;
    ngx_http_seadragon_stat_t  *stat;

    group = NGX_HTTP_SEADRAGON_STAT_COUNT;

    for (stat = ngx_http_seadragon_stats; stat->name; stat++) {

        if (stat->kind != group) {
            if (ngx_http_seadragon_stat_groups[group]) {
                ngx_http_seadragon_json_map_close(j);
            }

            group = stat->kind;

            if (ngx_http_seadragon_stat_groups[group]) {
                ngx_http_seadragon_json_str(j,
                                         ngx_http_seadragon_stat_groups[group]);
                ngx_http_seadragon_json_map_open(j);
            }
        }

        value = ngx_http_seadragon_stat_value(c, stat);

        if (stat->kind == NGX_HTTP_SEADRAGON_STAT_SECONDS) {
            ngx_http_seadragon_json_seconds(j, stat->name, (ngx_msec_t) value);

        } else {
            ngx_http_seadragon_json_int(j, stat->name, (long long) value);
        }
    }

    if (ngx_http_seadragon_stat_groups[group]) {
        ngx_http_seadragon_json_map_close(j);
    }
}


static ngx_int_t
ngx_http_seadragon_admin_stats(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg)
{
    uint64_t                          logins[NGX_HTTP_SEADRAGON_LOGINS_RESULTS];
    uint64_t                          untracked;
    ngx_uint_t                        i, records;
    ngx_http_seadragon_json_t         j;
    ngx_http_seadragon_snapshot_t    *snap;
    ngx_http_seadragon_shm_source_t  *src;

    static char  *results[] = { "ok", "refused", "limited", "inactive" };

    ngx_http_seadragon_auth_limit_counts(zone, logins, &untracked, &records);

    snap = ngx_http_seadragon_admin_begin(r, zone, &j);
    if (snap == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_http_seadragon_json_int(&j, "since", (long long) snap->started);
    ngx_http_seadragon_json_str(&j, "sources");
    ngx_http_seadragon_json_map_open(&j);

    for (i = 0; i < snap->nsources; i++) {
        src = &snap->sources[i];

        ngx_http_seadragon_json_text(&j, src->name, src->name_len);
        ngx_http_seadragon_json_map_open(&j);

        ngx_http_seadragon_json_int(&j, "priority", src->priority);
        ngx_http_seadragon_json_int(&j, "waiting", src->nwaiting);
        ngx_http_seadragon_json_int(&j, "running", src->nrunning);
        ngx_http_seadragon_admin_counters(&j, &src->counters);
        ngx_http_seadragon_json_map_close(&j);
    }

    ngx_http_seadragon_json_map_close(&j);

    /* seadragon_auth's logins by result (ngx_http_seadragon_auth_limit.c) */

    ngx_http_seadragon_json_str(&j, "logins");
    ngx_http_seadragon_json_map_open(&j);

    for (i = 0; i < NGX_HTTP_SEADRAGON_LOGINS_RESULTS; i++) {
        ngx_http_seadragon_json_int(&j, results[i], (long long) logins[i]);
    }

    ngx_http_seadragon_json_int(&j, "untracked", (long long) untracked);
    ngx_http_seadragon_json_map_close(&j);

    ngx_http_seadragon_json_map_close(&j);

    return ngx_http_seadragon_admin_send(r, &j);
}
