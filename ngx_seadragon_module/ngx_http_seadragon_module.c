
/*
 * Copyright (C) The Seadragon authors
 *
 * Module glue: the directives and their configuration, the shared zones,
 * the variables, and the access-phase handler that walks a request
 * through classification, body validation and the gate.
 */


#include "ngx_http_seadragon_module.h"


static ngx_int_t ngx_http_seadragon_access_handler(ngx_http_request_t *r);
static void ngx_http_seadragon_body_handler(ngx_http_request_t *r);

static ngx_int_t ngx_http_seadragon_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_seadragon_zone_t *ngx_http_seadragon_zone_lookup(
    ngx_conf_t *cf, ngx_str_t *name, ngx_uint_t add);

static void *ngx_http_seadragon_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_seadragon_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_seadragon_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_seadragon_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_seadragon_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seadragon_source(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seadragon_queue(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_seadragon_parse_aging(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_msec_t *aging);
static void ngx_http_seadragon_source_check_open(ngx_conf_t *cf,
    ngx_http_seadragon_main_conf_t *smcf);
static ngx_int_t ngx_http_seadragon_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_seadragon_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_seadragon_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_seadragon_init_process(ngx_cycle_t *cycle);
static void ngx_http_seadragon_exit_process(ngx_cycle_t *cycle);

static ngx_int_t ngx_http_seadragon_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_command_t  ngx_http_seadragon_commands[] = {

    { ngx_string("seadragon_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_seadragon_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_source"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_seadragon_source,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seadragon_queue,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_seadragon_store_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_pass_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_seadragon_loc_conf_t, pass_key),
      NULL },

    { ngx_string("seadragon_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_seadragon_admin_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_seadragon_health_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seadragon_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_json_errors"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_seadragon_loc_conf_t, json_errors),
      NULL },

    { ngx_string("seadragon_stall_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_seadragon_loc_conf_t, stall_timeout),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_seadragon_module_ctx = {
    ngx_http_seadragon_preconfiguration,   /* preconfiguration */
    ngx_http_seadragon_postconfiguration,  /* postconfiguration */

    ngx_http_seadragon_create_main_conf,   /* create main configuration */
    ngx_http_seadragon_init_main_conf,     /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_seadragon_create_loc_conf,    /* create location configuration */
    ngx_http_seadragon_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_seadragon_module = {
    NGX_MODULE_V1,
    &ngx_http_seadragon_module_ctx,        /* module context */
    ngx_http_seadragon_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_seadragon_init_module,        /* init module */
    ngx_http_seadragon_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_seadragon_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


enum {
    NGX_HTTP_SEADRAGON_VAR_SOURCE = 0,
    NGX_HTTP_SEADRAGON_VAR_PRIORITY,
    NGX_HTTP_SEADRAGON_VAR_QUEUE_WAIT,
    NGX_HTTP_SEADRAGON_VAR_QUEUE_POSITION,
    NGX_HTTP_SEADRAGON_VAR_QUEUE_ID,
    NGX_HTTP_SEADRAGON_VAR_MODEL,
    NGX_HTTP_SEADRAGON_VAR_STREAM,
    NGX_HTTP_SEADRAGON_VAR_KEY_NAME,
    NGX_HTTP_SEADRAGON_VAR_ENDPOINT
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

    { ngx_string("seadragon_endpoint"), NULL, ngx_http_seadragon_variable,
      NGX_HTTP_SEADRAGON_VAR_ENDPOINT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_seadragon_default_source = ngx_string("default");


/*
 * The access phase: classify, read and validate the body, then pass the
 * gate.  The phase checker runs this handler again whenever the request
 * resumes (after the body arrives, after the gate admits it), so the
 * context records how far the request has come.
 */

static ngx_int_t
ngx_http_seadragon_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_seadragon_ctx_t        *ctx;
    ngx_http_seadragon_loc_conf_t   *slcf;
    ngx_http_seadragon_main_conf_t  *smcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);
    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    if (slcf->health_zone) {
        return ngx_http_seadragon_health_access(r, slcf);
    }

    if (slcf->zone == NULL && smcf->store == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_seadragon_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a key never travels further than the gateway, queued or not */

    if (smcf->store && ngx_http_seadragon_key_take(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (slcf->zone == NULL) {
        return NGX_DECLINED;
    }

    switch (ctx->state) {

    case NGX_HTTP_SEADRAGON_NEW:
        break;

    case NGX_HTTP_SEADRAGON_READING_BODY:
        return NGX_DONE;

    case NGX_HTTP_SEADRAGON_BODY_READ:
        goto validate;

    case NGX_HTTP_SEADRAGON_PARKED:
        return NGX_AGAIN;

    case NGX_HTTP_SEADRAGON_ADMITTED:
    case NGX_HTTP_SEADRAGON_BYPASSED:
        return NGX_DECLINED;

    default: /* NGX_HTTP_SEADRAGON_REJECTED */
        return NGX_HTTP_FORBIDDEN;
    }

    ctx->zone = slcf->zone;

    ngx_http_seadragon_endpoint_find(r, ctx);

    rc = ngx_http_seadragon_classify(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_seadragon_gate_track(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_seadragon_access_check(r, ctx);
    if (rc != NGX_OK) {
        ctx->state = NGX_HTTP_SEADRAGON_REJECTED;
        ngx_http_seadragon_counters_add(ctx,
            rc == NGX_HTTP_FORBIDDEN
                ? ngx_http_seadragon_counter(rejected_whitelist)
                : rc == NGX_HTTP_UNAUTHORIZED
                  ? ngx_http_seadragon_counter(rejected_key)
                  : ngx_http_seadragon_counter(rejected_unavailable));
        return rc;
    }

    rc = ngx_http_seadragon_endpoint_check(r, ctx);
    if (rc != NGX_OK) {
        ctx->state = NGX_HTTP_SEADRAGON_REJECTED;
        ngx_http_seadragon_counters_add(ctx,
            ngx_http_seadragon_counter(rejected_endpoint));
        return rc;
    }

    /* what does not generate never waits for the model */

    if (ctx->endpoint->kind != NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE
        || (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS)))
    {
        ctx->state = NGX_HTTP_SEADRAGON_BYPASSED;
        return NGX_DECLINED;
    }

    /*
     * The whole body is read and checked before the request queues, so a
     * slow upload never holds a slot of the gate.
     */

    ctx->state = NGX_HTTP_SEADRAGON_READING_BODY;

    rc = ngx_http_read_client_request_body(r, ngx_http_seadragon_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->state = NGX_HTTP_SEADRAGON_REJECTED;

        if (rc != NGX_HTTP_CLIENT_CLOSED_REQUEST
            && rc != NGX_HTTP_REQUEST_TIME_OUT)
        {
            ngx_http_seadragon_counters_add(ctx,
                ngx_http_seadragon_counter(rejected_invalid));

        } else {
            ngx_http_seadragon_counters_add(ctx,
                ngx_http_seadragon_counter(aborted_parked));
        }

        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;

validate:

    rc = ngx_http_seadragon_body_parse(r, ctx);
    if (rc != NGX_OK) {
        ctx->state = NGX_HTTP_SEADRAGON_REJECTED;
        ngx_http_seadragon_counters_add(ctx,
            ngx_http_seadragon_counter(rejected_invalid));
        return rc;
    }

    return ngx_http_seadragon_gate_enter(r, ctx);
}


static void
ngx_http_seadragon_body_handler(ngx_http_request_t *r)
{
    ngx_http_seadragon_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);

    ctx->state = NGX_HTTP_SEADRAGON_BODY_READ;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


static ngx_int_t
ngx_http_seadragon_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                          *p;
    ngx_uint_t                       stream;
    ngx_http_seadragon_ctx_t        *ctx;
    ngx_http_seadragon_source_t     *source;
    ngx_http_seadragon_main_conf_t  *smcf;

    ctx = ngx_http_seadragon_get_ctx(r->main);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    /* a request of a location without the queue is classified on demand */

    if (!ctx->classified
        && (data == NGX_HTTP_SEADRAGON_VAR_SOURCE
            || data == NGX_HTTP_SEADRAGON_VAR_PRIORITY
            || data == NGX_HTTP_SEADRAGON_VAR_KEY_NAME))
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
        ngx_http_seadragon_endpoint_find(r->main, ctx);

        if (ctx->endpoint == NULL) {
            break;
        }

        /* as Ollama knows it: "/api/chat", "/v1/models/" for a model */

        p = ngx_pnalloc(r->pool, sizeof("/api/") - 1
                                 + ctx->endpoint->name.len);
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

    case NGX_HTTP_SEADRAGON_VAR_KEY_NAME:
        if (ctx->key_name.len == 0) {
            break;
        }

        v->len = ctx->key_name.len;
        v->data = ctx->key_name.data;
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_VAR_STREAM:
        if (!ctx->stream_set && ctx->model.len == 0) {
            break;
        }

        /*
         * Ollama's /api/chat and /api/generate (and pull, push, create)
         * stream unless the body says "stream": false; OpenAI's API
         * streams only when it says "stream": true; embeddings and the
         * rest never stream.
         */

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

        return NGX_OK;

    case NGX_HTTP_SEADRAGON_VAR_QUEUE_WAIT:
    case NGX_HTTP_SEADRAGON_VAR_QUEUE_POSITION:
    case NGX_HTTP_SEADRAGON_VAR_QUEUE_ID:
        if (!ctx->queued) {
            break;
        }

        /* fall through */

    default: /* NGX_HTTP_SEADRAGON_VAR_PRIORITY */

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;

        if (data == NGX_HTTP_SEADRAGON_VAR_PRIORITY) {
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

    v->not_found = 1;
    return NGX_OK;
}


static ngx_int_t
ngx_http_seadragon_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_seadragon_zone_t  *ozone = data;

    size_t                           len;
    ngx_int_t                        slot;
    ngx_uint_t                       i;
    ngx_http_seadragon_zone_t       *zone;
    ngx_http_seadragon_source_t     *source;
    ngx_http_seadragon_main_conf_t  *smcf;

    zone = shm_zone->data;
    smcf = zone->smcf;

    if (ozone) {
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;

    } else {
        zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

        if (shm_zone->shm.exists) {
            zone->sh = zone->shpool->data;

        } else {
            zone->sh = ngx_slab_alloc(zone->shpool,
                                      sizeof(ngx_http_seadragon_shctx_t));
            if (zone->sh == NULL) {
                return NGX_ERROR;
            }

            zone->shpool->data = zone->sh;

            ngx_http_seadragon_queue_init(zone->sh, ngx_time());

            len = sizeof(" in seadragon zone \"\"") + shm_zone->shm.name.len;

            zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
            if (zone->shpool->log_ctx == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(zone->shpool->log_ctx, " in seadragon zone \"%V\"%Z",
                        &shm_zone->shm.name);

            zone->shpool->log_nomem = 0;
        }
    }

    /*
     * Sources keep their zone slot, and so their queue and counters, by
     * name; the newest configuration sets priorities and limits for every
     * worker, old ones still finishing a reload included.
     */

    source = smcf->sources.elts;

    ngx_shmtx_lock(&zone->shpool->mutex);

    zone->sh->capacity = zone->capacity;
    zone->sh->max_queued = zone->max_queued;

    for (i = 0; i < smcf->sources.nelts; i++) {
        slot = ngx_http_seadragon_queue_source_slot(zone->sh, &source[i].name,
                                                    source[i].priority,
                                                    source[i].max_queued,
                                                    source[i].aging
                                                    == NGX_CONF_UNSET_MSEC
                                                    ? zone->aging
                                                    : source[i].aging);
        if (slot == NGX_ERROR) {
            break;
        }

        zone->slot[i] = slot;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (i < smcf->sources.nelts) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "seadragon zone \"%V\" has seen more than %d sources "
                      "since it was created; restart nginx to reset it",
                      &shm_zone->shm.name, NGX_HTTP_SEADRAGON_MAX_SOURCES);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_http_seadragon_zone_t *
ngx_http_seadragon_zone_get(ngx_conf_t *cf, ngx_str_t *name)
{
    return ngx_http_seadragon_zone_lookup(cf, name, 1);
}


static ngx_http_seadragon_zone_t *
ngx_http_seadragon_zone_lookup(ngx_conf_t *cf, ngx_str_t *name,
    ngx_uint_t add)
{
    ngx_uint_t                        i;
    ngx_http_seadragon_zone_t        *zone, **zones;
    ngx_http_seadragon_main_conf_t   *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_seadragon_module);

    zones = smcf->zones.elts;

    for (i = 0; i < smcf->zones.nelts; i++) {
        if (zones[i]->name.len == name->len
            && ngx_strncmp(zones[i]->name.data, name->data, name->len) == 0)
        {
            return zones[i];
        }
    }

    if (!add) {
        return NULL;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_seadragon_zone_t));
    if (zone == NULL) {
        return NULL;
    }

    zone->name = *name;
    zone->smcf = smcf;
    zone->conf_file = cf->conf_file->file.name.data;
    zone->conf_line = cf->conf_file->line;

    zones = ngx_array_push(&smcf->zones);
    if (zones == NULL) {
        return NULL;
    }

    *zones = zone;

    return zone;
}


static void *
ngx_http_seadragon_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_seadragon_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&smcf->sources, cf->pool, 4,
                       sizeof(ngx_http_seadragon_source_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&smcf->zones, cf->pool, 1,
                       sizeof(ngx_http_seadragon_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    smcf->default_source = NGX_CONF_UNSET_UINT;

    return smcf;
}


static char *
ngx_http_seadragon_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_seadragon_main_conf_t  *smcf = conf;

    ngx_uint_t                    i, j;
    ngx_http_seadragon_zone_t   **zones;
    ngx_http_seadragon_source_t  *source;

    if (smcf->sources.nelts == 0) {
        source = ngx_array_push(&smcf->sources);
        if (source == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(source, sizeof(ngx_http_seadragon_source_t));
        source->name = ngx_http_seadragon_default_source;
        source->priority = 1;
        source->aging = NGX_CONF_UNSET_MSEC;
        source->endpoints = NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE
                            |NGX_HTTP_SEADRAGON_ENDPOINT_INFO;
        smcf->default_source = 0;
    }

    if (smcf->default_source == NGX_CONF_UNSET_UINT) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "no default seadragon source: one \"seadragon_source\" "
                      "must have neither \"if=\" nor \"key\"");
        return NGX_CONF_ERROR;
    }

    ngx_http_seadragon_source_check_open(cf, smcf);

    /*
     * Admin keys belong to the source "admin": unless it is configured,
     * it exists with the right to what manages models and nothing that
     * generates, and it never waits in a queue.
     */

    if (smcf->store) {
        source = smcf->sources.elts;

        for (i = 0; i < smcf->sources.nelts; i++) {
            if (source[i].name.len == sizeof(NGX_HTTP_SEADRAGON_ADMIN_SOURCE)
                                      - 1
                && ngx_strncmp(source[i].name.data,
                               NGX_HTTP_SEADRAGON_ADMIN_SOURCE,
                               source[i].name.len) == 0)
            {
                break;
            }
        }

        if (i == smcf->sources.nelts) {

            if (smcf->sources.nelts == NGX_HTTP_SEADRAGON_MAX_SOURCES) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "too many seadragon sources: at most %d, and "
                              "the source \"admin\" of admin keys is one",
                              NGX_HTTP_SEADRAGON_MAX_SOURCES - 1);
                return NGX_CONF_ERROR;
            }

            source = ngx_array_push(&smcf->sources);
            if (source == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(source, sizeof(ngx_http_seadragon_source_t));
            ngx_str_set(&source->name, NGX_HTTP_SEADRAGON_ADMIN_SOURCE);
            source->require_key = 1;
            source->aging = NGX_CONF_UNSET_MSEC;
            source->endpoints = NGX_HTTP_SEADRAGON_ENDPOINT_INFO
                                |NGX_HTTP_SEADRAGON_ENDPOINT_MANAGE;
        }
    }

    source = smcf->sources.elts;

    for (i = 0; i < smcf->sources.nelts; i++) {
        if ((source[i].require_key || source[i].require_whitelist)
            && smcf->store == NULL)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "seadragon source \"%V\" requires %s, which needs "
                          "a store: add \"seadragon_store PATH\"",
                          &source[i].name,
                          source[i].require_key ? "a key" : "a whitelist");
            return NGX_CONF_ERROR;
        }
    }

    zones = smcf->zones.elts;

    for (i = 0; i < smcf->zones.nelts; i++) {

        if (zones[i]->shm_zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"seadragon_queue\" uses the unknown seadragon "
                          "zone \"%V\" in %s:%ui; declare it with "
                          "\"seadragon_zone %V:SIZE\"",
                          &zones[i]->name, zones[i]->conf_file,
                          zones[i]->conf_line, &zones[i]->name);
            return NGX_CONF_ERROR;
        }

        zones[i]->slot = ngx_pcalloc(cf->pool,
                                     smcf->sources.nelts * sizeof(ngx_uint_t));
        if (zones[i]->slot == NULL) {
            return NGX_CONF_ERROR;
        }

        /* max_queued_per_client: the source's, else the zone's */

        zones[i]->client_cap = ngx_pcalloc(cf->pool,
                                     smcf->sources.nelts * sizeof(ngx_uint_t));
        if (zones[i]->client_cap == NULL) {
            return NGX_CONF_ERROR;
        }

        for (j = 0; j < smcf->sources.nelts; j++) {
            zones[i]->client_cap[j] = source[j].per_client_off
                                      ? 0
                                      : source[j].max_queued_per_client
                                        ? source[j].max_queued_per_client
                                        : zones[i]->max_queued_per_client;

            if (zones[i]->client_cap[j]) {
                zones[i]->client_caps = 1;
            }
        }

        if (smcf->min_tick == 0 || zones[i]->tick < smcf->min_tick) {
            smcf->min_tick = zones[i]->tick;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_seadragon_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_seadragon_loc_conf_t  *slcf;

    slcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_seadragon_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     slcf->zone = NULL;
     *     slcf->queue_set = 0;
     */

    slcf->json_errors = NGX_CONF_UNSET;
    slcf->pass_key = NGX_CONF_UNSET;
    slcf->stall_timeout = NGX_CONF_UNSET_MSEC;

    return slcf;
}


static char *
ngx_http_seadragon_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_seadragon_loc_conf_t  *prev = parent;
    ngx_http_seadragon_loc_conf_t  *conf = child;

    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_seadragon_main_conf_t  *smcf;

    if (conf->admin && conf->admin->auth == NGX_HTTP_SEADRAGON_ADMIN_AUTH_KEY) {
        smcf = ngx_http_conf_get_module_main_conf(cf, ngx_seadragon_module);

        if (smcf->store == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"seadragon_admin\" in %s:%ui checks admin keys, "
                          "which needs \"seadragon_store PATH\"; or use "
                          "auth=nginx with this location's own access "
                          "checks (allow, deny, auth_basic)",
                          conf->admin->conf_file, conf->admin->conf_line);
            return NGX_CONF_ERROR;
        }
    }

    if (!conf->queue_set) {
        conf->zone = prev->zone;
        conf->queue_set = prev->queue_set;
    }

    /* a queue location answers in JSON unless told otherwise */

    ngx_conf_merge_value(conf->json_errors, prev->json_errors,
                         NGX_CONF_UNSET);
    ngx_conf_merge_value(conf->pass_key, prev->pass_key, 0);

    /*
     * So do admin, health and metrics locations, whose own answers are
     * JSON; seadragon_json_errors, in the location or above it, decides.
     */

    if (conf->json_errors == NGX_CONF_UNSET
        && (conf->admin || conf->health_zone || conf->metrics_zone))
    {
        conf->json_errors = 1;
    }

    /* a reader that takes nothing for this long lets go of the model */

    ngx_conf_merge_msec_value(conf->stall_timeout, prev->stall_timeout,
                              10000);

    if (conf->zone == NULL) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->satisfy == NGX_HTTP_SATISFY_ANY) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"seadragon_queue\" cannot be used with "
                           "\"satisfy any\": another access module allowing "
                           "a request would let it skip the queue");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* seadragon_zone NAME:SIZE [capacity=N] [tick=TIME] [max_queued=N]
 *                [max_queued_per_client=N] [max_wait=TIME]
 *                [aging=TIME|off] */

static char *
ngx_http_seadragon_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                     *p;
    ssize_t                     size;
    ngx_int_t                   n;
    ngx_str_t                  *value, name, s;
    ngx_uint_t                  i;
    ngx_http_seadragon_zone_t  *zone;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        return "takes a zone as \"NAME:SIZE\", for example "
               "\"seadragon_zone ollama:1m\"";
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small: it needs at least %uzk",
                           &value[1], 8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    zone = ngx_http_seadragon_zone_lookup(cf, &name, 1);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->shm_zone) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate seadragon zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    zone->capacity = 1;
    zone->tick = 100;
    zone->max_queued = 512;
    zone->max_wait = 600000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "capacity=", 9) == 0) {

            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": capacity must be a whole "
                                   "number of requests, at least 1",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            zone->capacity = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_queued=", 11) == 0) {

            n = ngx_atoi(value[i].data + 11, value[i].len - 11);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": max_queued must be a "
                                   "whole number, at least 1", &value[i]);
                return NGX_CONF_ERROR;
            }

            zone->max_queued = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_queued_per_client=", 22) == 0) {

            n = ngx_atoi(value[i].data + 22, value[i].len - 22);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": max_queued_per_client "
                                   "must be a whole number of requests, at "
                                   "least 1", &value[i]);
                return NGX_CONF_ERROR;
            }

            zone->max_queued_per_client = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "tick=", 5) == 0) {

            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n == 0 || n > 10000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": tick must be a time "
                                   "from 1ms to 10s", &value[i]);
                return NGX_CONF_ERROR;
            }

            zone->tick = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_wait=", 9) == 0) {

            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": max_wait must be a time, "
                                   "such as 300s or 10m (0 waits forever)",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            zone->max_wait = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "aging=", 6) == 0) {

            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (ngx_http_seadragon_parse_aging(cf, &value[i], &s,
                                               &zone->aging)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected capacity=, "
                           "tick=, max_queued=, max_queued_per_client=, "
                           "max_wait= or aging=",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    zone->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_seadragon_module);
    if (zone->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "shared memory zone \"%V\" is already used by "
                           "another seadragon_zone", &name);
        return NGX_CONF_ERROR;
    }

    zone->shm_zone->init = ngx_http_seadragon_init_zone;
    zone->shm_zone->data = zone;

    return NGX_CONF_OK;
}


/* seadragon_source NAME priority=N [if=CONDITION] [max_queued=N]
 *                  [max_queued_per_client=N|off] [key] [whitelist]
 *                  [aging=TIME|off] [endpoints=KIND,...] */

static char *
ngx_http_seadragon_source(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seadragon_main_conf_t  *smcf = conf;

    ngx_int_t                          n;
    ngx_str_t                         *value, s;
    ngx_uint_t                         i, priority_set;
    ngx_http_seadragon_source_t       *source, *sources;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    /* the name must fit the source field of a key record */

    if (value[1].len == 0 || value[1].len >= SEADRAGON_KEY_SOURCE_LEN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid source name \"%V\": it must have 1 to "
                           "%d characters", &value[1],
                           SEADRAGON_KEY_SOURCE_LEN - 1);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[1].len; i++) {
        if (!(isalnum(value[1].data[i])
              || value[1].data[i] == '_' || value[1].data[i] == '-'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid source name \"%V\": use letters, "
                               "digits, \"_\" and \"-\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    sources = smcf->sources.elts;

    for (i = 0; i < smcf->sources.nelts; i++) {
        if (sources[i].name.len == value[1].len
            && ngx_strncmp(sources[i].name.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate seadragon source \"%V\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (smcf->sources.nelts == NGX_HTTP_SEADRAGON_MAX_SOURCES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many seadragon sources: at most %d",
                           NGX_HTTP_SEADRAGON_MAX_SOURCES);
        return NGX_CONF_ERROR;
    }

    source = ngx_array_push(&smcf->sources);
    if (source == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(source, sizeof(ngx_http_seadragon_source_t));
    source->name = value[1];
    source->conf_file = cf->conf_file->file.name.data;
    source->conf_line = cf->conf_file->line;
    source->aging = NGX_CONF_UNSET_MSEC;
    source->endpoints = NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE
                        |NGX_HTTP_SEADRAGON_ENDPOINT_INFO;
    priority_set = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "priority=", 9) == 0) {

            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR || n > 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": priority must be a number "
                                   "from 0 to 1000, lower is served first",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            source->priority = n;
            priority_set = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_queued=", 11) == 0) {

            n = ngx_atoi(value[i].data + 11, value[i].len - 11);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": max_queued must be a "
                                   "whole number, at least 1", &value[i]);
                return NGX_CONF_ERROR;
            }

            source->max_queued = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_queued_per_client=", 22) == 0) {

            s.data = value[i].data + 22;
            s.len = value[i].len - 22;

            if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
                source->per_client_off = 1;
                source->max_queued_per_client = 0;
                continue;
            }

            n = ngx_atoi(s.data, s.len);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": max_queued_per_client "
                                   "must be a whole number of requests, at "
                                   "least 1, or \"off\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            source->per_client_off = 0;
            source->max_queued_per_client = n;
            continue;
        }

        if (ngx_strcmp(value[i].data, "key") == 0) {
            source->require_key = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "whitelist") == 0) {
            source->require_whitelist = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "aging=", 6) == 0) {

            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (ngx_http_seadragon_parse_aging(cf, &value[i], &s,
                                               &source->aging)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "endpoints=", 10) == 0) {

            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

            if (ngx_http_seadragon_endpoint_parse(cf, &s, &source->endpoints)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "if=", 3) == 0) {

            s.data = value[i].data + 3;
            s.len = value[i].len - 3;

            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty condition in \"%V\": expected "
                                   "if=$variable", &value[i]);
                return NGX_CONF_ERROR;
            }

            source->condition = ngx_palloc(cf->pool,
                                           sizeof(ngx_http_complex_value_t));
            if (source->condition == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = source->condition;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected priority=, "
                           "if=, max_queued=, max_queued_per_client=, key, "
                           "whitelist, aging= or endpoints=", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (!priority_set) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "seadragon source \"%V\" needs a priority, "
                           "such as priority=1", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* a key source without a condition is reached by its keys alone */

    if (source->condition == NULL && !source->require_key) {

        if (smcf->default_source != NGX_CONF_UNSET_UINT) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "seadragon source \"%V\" has no \"if=\" but "
                               "\"%V\" is already the default source; give "
                               "one of them a condition", &value[1],
                               &sources[smcf->default_source].name);
            return NGX_CONF_ERROR;
        }

        smcf->default_source = smcf->sources.nelts - 1;
    }

    return NGX_CONF_OK;
}


/*
 * A source chosen by a condition that needs neither a key nor the
 * whitelist is given to whoever makes the condition true.  When the
 * condition tests what the client sends (its headers, cookies, URI or
 * arguments), that is anyone: "nginx -t" warns when such a source gives
 * more than the default source would (a place further ahead in line,
 * endpoints the default may not use, or entry without the whitelist).
 * A condition made only of the connection's own facts (its address,
 * after realip, or a verified client certificate) is no claim.  Through
 * map, geo or set nginx cannot see what a variable is made of: then the
 * warning says so.
 */

static void
ngx_http_seadragon_source_check_open(ngx_conf_t *cf,
    ngx_http_seadragon_main_conf_t *smcf)
{
    u_char                       *p, *last;
    ngx_str_t                    *name;
    ngx_uint_t                    i, k, n, sends, client, other;
    ngx_http_variable_t          *v;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_seadragon_source_t  *source, *deflt;
    u_char                        names[256];

    static ngx_str_t  connection[] = {
        ngx_string("remote_addr"),
        ngx_string("binary_remote_addr"),
        ngx_string("realip_remote_addr"),
        ngx_string("server_addr"),
        ngx_string("server_port"),
        ngx_string("ssl_client_verify"),
        ngx_string("ssl_client_s_dn"),
        ngx_string("ssl_client_i_dn"),
        ngx_string("ssl_client_serial"),
        ngx_string("ssl_client_fingerprint"),
        ngx_null_string
    };

    static ngx_str_t  sent[] = {
        ngx_string("http_"),
        ngx_string("cookie_"),
        ngx_string("arg_"),
        ngx_null_string
    };

    static ngx_str_t  request[] = {
        ngx_string("args"),
        ngx_string("query_string"),
        ngx_string("is_args"),
        ngx_string("request"),
        ngx_string("request_uri"),
        ngx_string("uri"),
        ngx_string("document_uri"),
        ngx_string("request_method"),
        ngx_string("request_body"),
        ngx_string("host"),
        ngx_string("content_type"),
        ngx_string("content_length"),
        ngx_string("remote_user"),
        ngx_string("remote_port"),
        ngx_string("server_protocol"),
        ngx_null_string
    };

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    v = cmcf->variables.elts;

    source = smcf->sources.elts;
    deflt = &source[smcf->default_source];

    for (i = 0; i < smcf->sources.nelts; i++) {

        if (source[i].condition == NULL
            || source[i].require_key || source[i].require_whitelist)
        {
            continue;
        }

        /* what the claim would buy over the default source */

        if (!deflt->require_key && !deflt->require_whitelist
            && source[i].priority >= deflt->priority
            && (source[i].endpoints & ~deflt->endpoints) == 0)
        {
            continue;
        }

        client = 0;
        other = 0;
        p = names;
        last = names + sizeof(names) - 1;

        for (n = 0; source[i].condition->flushes
                    && source[i].condition->flushes[n] != (ngx_uint_t) -1;
             n++)
        {
            name = &v[source[i].condition->flushes[n]].name;

            for (k = 0; connection[k].len; k++) {
                if (name->len == connection[k].len
                    && ngx_strncmp(name->data, connection[k].data, name->len)
                       == 0)
                {
                    break;
                }
            }

            if (connection[k].len) {
                continue;
            }

            sends = 0;

            for (k = 0; sent[k].len; k++) {
                if (name->len > sent[k].len
                    && ngx_strncmp(name->data, sent[k].data, sent[k].len)
                       == 0)
                {
                    sends = 1;
                }
            }

            for (k = 0; request[k].len; k++) {
                if (name->len == request[k].len
                    && ngx_strncmp(name->data, request[k].data, name->len)
                       == 0)
                {
                    sends = 1;
                }
            }

            if (sends) {
                client = 1;

            } else {
                other = 1;
            }

            p = ngx_slprintf(p, last, "%s$%V", p == names ? "" : ", ", name);
        }

        *p = '\0';

        if (n == 0) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "seadragon_source \"%V\": \"if=%V\" is true for "
                          "every request and the source needs neither "
                          "\"key\" nor \"whitelist\", so anyone can "
                          "claim it; add \"key\" or \"whitelist\" in %s:%ui",
                          &source[i].name, &source[i].condition->value,
                          source[i].conf_file, source[i].conf_line);

        } else if (client) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "seadragon_source \"%V\": \"if=%V\" tests what "
                          "the client sends (%s) and the source needs "
                          "neither \"key\" nor \"whitelist\", so anyone "
                          "can claim it; add \"key\" or \"whitelist\" "
                          "in %s:%ui",
                          &source[i].name, &source[i].condition->value,
                          names, source[i].conf_file, source[i].conf_line);

        } else if (other) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "seadragon_source \"%V\": \"if=%V\" may test "
                          "what the client sends (nginx cannot see what %s "
                          "is made of) and the source needs neither "
                          "\"key\" nor \"whitelist\", so anyone can "
                          "claim it unless the condition depends only on "
                          "the client's address; add \"key\" or "
                          "\"whitelist\" in %s:%ui",
                          &source[i].name, &source[i].condition->value,
                          names, source[i].conf_file, source[i].conf_line);
        }
    }
}


/* aging=TIME: how long a wait makes a request one step more urgent */

static char *
ngx_http_seadragon_parse_aging(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_msec_t *aging)
{
    ngx_int_t  n;

    if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        *aging = 0;
        return NGX_CONF_OK;
    }

    n = ngx_parse_time(value, 0);

    if (n == NGX_ERROR || n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": aging must be a time, such as "
                           "30s (each 30s waited is one step of priority), "
                           "or off", param);
        return NGX_CONF_ERROR;
    }

    *aging = n;

    return NGX_CONF_OK;
}


/* seadragon_queue ZONE | off */

static char *
ngx_http_seadragon_queue(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_seadragon_loc_conf_t  *slcf = conf;

    ngx_str_t  *value;

    if (slcf->queue_set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    slcf->queue_set = 1;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        slcf->zone = NULL;
        return NGX_CONF_OK;
    }

    slcf->zone = ngx_http_seadragon_zone_lookup(cf, &value[1], 1);
    if (slcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_seadragon_preconfiguration(ngx_conf_t *cf)
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


static ngx_int_t
ngx_http_seadragon_postconfiguration(ngx_conf_t *cf)
{
    ngx_array_t                *handlers;
    ngx_http_handler_pt        *h, *first;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * Handlers of a phase run from the last registered to the first, and
     * a dynamic module registers after nginx's own: putting ours first in
     * the array makes it run after allow/deny, auth_basic and
     * auth_request, so a request they refuse never takes a place in the
     * queue.
     */

    handlers = &cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers;

    h = ngx_array_push(handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    first = handlers->elts;
    ngx_memmove(first + 1, first,
                (handlers->nelts - 1) * sizeof(ngx_http_handler_pt));
    first[0] = ngx_http_seadragon_access_handler;

    return ngx_http_seadragon_response_init(cf);
}


static ngx_int_t
ngx_http_seadragon_init_module(ngx_cycle_t *cycle)
{
    if (ngx_http_seadragon_store_init_module(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_seadragon_gate_init_module(cycle);
}


static ngx_int_t
ngx_http_seadragon_init_process(ngx_cycle_t *cycle)
{
    if (ngx_http_seadragon_store_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_seadragon_gate_init_process(cycle);
}


static void
ngx_http_seadragon_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_seadragon_gate_exit_process(cycle);
    ngx_http_seadragon_store_exit_process(cycle);
}
