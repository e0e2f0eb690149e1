
/*
 * Copyright (C) The Seadragon authors
 *
 * Module glue: the directive table, the main and location
 * configuration, and the access-phase handler that walks a request
 * through classification, body validation and the gate.  The directive
 * handlers and the shared zones are ngx_http_seadragon_conf.c's, the
 * variables ngx_http_seadragon_variables.c's.
 */


#include "ngx_http_seadragon_module.h"


static ngx_int_t ngx_http_seadragon_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_access_start(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
static ngx_int_t ngx_http_seadragon_access_validate(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
static void ngx_http_seadragon_body_handler(ngx_http_request_t *r);

static void *ngx_http_seadragon_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_seadragon_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_seadragon_admin_source_add(ngx_conf_t *cf,
    ngx_http_seadragon_main_conf_t *smcf);
static char *ngx_http_seadragon_zones_init(ngx_conf_t *cf,
    ngx_http_seadragon_main_conf_t *smcf);
static void *ngx_http_seadragon_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_seadragon_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_seadragon_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_seadragon_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_seadragon_init_process(ngx_cycle_t *cycle);
static void ngx_http_seadragon_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_seadragon_commands[] = {

    { ngx_string("seadragon_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_seadragon_zone_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_source"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_seadragon_source_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_seadragon_queue_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_model"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_seadragon_model_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
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

    { ngx_string("seadragon_auth"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_seadragon_auth_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("seadragon_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE23,
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

    { ngx_string("seadragon_usage"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_seadragon_loc_conf_t, usage),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_seadragon_module_ctx = {
    ngx_http_seadragon_variables_add,      /* preconfiguration */
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

    /* a login location is no queue's, even under a server's seadragon_queue */

    if (slcf->auth) {
        ctx = ngx_http_seadragon_get_ctx(r);
        if (ctx == NULL
            || (smcf->store && ngx_http_seadragon_key_take(r, ctx) != NGX_OK))
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

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
        ctx->zone = slcf->zone;
        return ngx_http_seadragon_access_start(r, ctx);

    case NGX_HTTP_SEADRAGON_READING_BODY:
        return NGX_DONE;

    case NGX_HTTP_SEADRAGON_BODY_READ:
        return ngx_http_seadragon_access_validate(r, ctx);

    case NGX_HTTP_SEADRAGON_PARKED:
        return NGX_AGAIN;

    case NGX_HTTP_SEADRAGON_ADMITTED:
    case NGX_HTTP_SEADRAGON_BYPASSED:
        return NGX_DECLINED;

    default: /* NGX_HTTP_SEADRAGON_REJECTED */
        return NGX_HTTP_FORBIDDEN;
    }
}


/*
 * A new request: its source and endpoint, the refusals that need no
 * body, then the body is read.
 */

static ngx_int_t
ngx_http_seadragon_access_start(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    size_t     counter;
    ngx_int_t  rc;

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
        return rc;
    }

    rc = ngx_http_seadragon_endpoint_check(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    /* what does not generate never waits for the model */

    if (ctx->endpoint->kind != NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE
        || (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS)))
    {
        ctx->state = NGX_HTTP_SEADRAGON_BYPASSED;
        return NGX_DECLINED;
    }

    /* a key over one of its limits is refused before anything is read */

    rc = ngx_http_seadragon_limit_check(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    /*
     * The whole body is read and checked before the request queues, so a
     * slow upload never holds a slot of the gate.
     */

    ctx->state = NGX_HTTP_SEADRAGON_READING_BODY;

    rc = ngx_http_read_client_request_body(r, ngx_http_seadragon_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {

        if (rc != NGX_HTTP_CLIENT_CLOSED_REQUEST
            && rc != NGX_HTTP_REQUEST_TIME_OUT)
        {
            counter = ngx_http_seadragon_counter(rejected_invalid);

        } else {
            counter = ngx_http_seadragon_counter(aborted_parked);
        }

        /* nginx answers with its own status: the message is its page's */

        return ngx_http_seadragon_reject(r, ctx, rc, counter, NULL, 0);
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


/* the body has arrived: checked, the request goes to the gate */

static ngx_int_t
ngx_http_seadragon_access_validate(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_seadragon_body_parse(r, ctx);
    if (rc != NGX_OK) {
        return ngx_http_seadragon_reject(r, ctx, rc,
                                  ngx_http_seadragon_counter(rejected_invalid),
                                  NULL, 0);
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

    ngx_uint_t                    i;
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
                      "must have neither \"if=\" nor \"key\" "
                      "(nor \"login\")");
        return NGX_CONF_ERROR;
    }

    ngx_http_seadragon_source_check_open(cf, smcf);

    if (smcf->store
        && ngx_http_seadragon_admin_source_add(cf, smcf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
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
                          source[i].require_login ? "a login"
                          : source[i].require_key ? "a key" : "a whitelist");
            return NGX_CONF_ERROR;
        }
    }

    return ngx_http_seadragon_zones_init(cf, smcf);
}


/*
 * Admin keys belong to the source "admin": unless it is configured, it
 * exists with the right to what manages models and nothing that
 * generates, and it never waits in a queue.
 */

static char *
ngx_http_seadragon_admin_source_add(ngx_conf_t *cf,
    ngx_http_seadragon_main_conf_t *smcf)
{
    ngx_str_t                     name;
    ngx_http_seadragon_source_t  *source;

    ngx_str_set(&name, NGX_HTTP_SEADRAGON_ADMIN_SOURCE);

    if (ngx_http_seadragon_source_find(smcf, &name) != NGX_ERROR) {
        return NGX_CONF_OK;
    }

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
    source->name = name;
    source->require_key = 1;
    source->aging = NGX_CONF_UNSET_MSEC;
    source->endpoints = NGX_HTTP_SEADRAGON_ENDPOINT_INFO
                        |NGX_HTTP_SEADRAGON_ENDPOINT_MANAGE;

    return NGX_CONF_OK;
}


/* the zones' slots and per-client caps, one per source */

static char *
ngx_http_seadragon_zones_init(ngx_conf_t *cf,
    ngx_http_seadragon_main_conf_t *smcf)
{
    ngx_uint_t                    i, j;
    ngx_http_seadragon_zone_t   **zones;
    ngx_http_seadragon_source_t  *source;

    source = smcf->sources.elts;
    zones = smcf->zones.elts;

    for (i = 0; i < smcf->zones.nelts; i++) {

        if (ngx_http_seadragon_zone_models_check(cf, zones[i])
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

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

    slcf->zone = NGX_CONF_UNSET_PTR;
    slcf->json_errors = NGX_CONF_UNSET;
    slcf->pass_key = NGX_CONF_UNSET;
    slcf->stall_timeout = NGX_CONF_UNSET_MSEC;
    slcf->usage = NGX_CONF_UNSET;

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

    if (conf->auth && ngx_http_seadragon_auth_merge(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_ptr_value(conf->zone, prev->zone, NULL);

    /* a queue location answers in JSON unless told otherwise */

    ngx_conf_merge_value(conf->json_errors, prev->json_errors,
                         NGX_CONF_UNSET);
    ngx_conf_merge_value(conf->pass_key, prev->pass_key, 0);

    /*
     * So do admin, health and metrics locations, whose own answers are
     * JSON; seadragon_json_errors, in the location or above it, decides.
     */

    if (conf->json_errors == NGX_CONF_UNSET
        && (conf->admin || conf->auth || conf->health_zone
            || conf->metrics_zone))
    {
        conf->json_errors = 1;
    }

    /* a reader that takes nothing for this long lets go of the model */

    ngx_conf_merge_msec_value(conf->stall_timeout, prev->stall_timeout,
                              10000);

    /* the answers' tokens are counted unless told otherwise */

    ngx_conf_merge_value(conf->usage, prev->usage, 1);

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

    if (ngx_http_seadragon_gate_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_seadragon_usage_init_process(cycle);
}


static void
ngx_http_seadragon_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_seadragon_gate_exit_process(cycle);

    /* what is left of the usage, written while the store is open */

    ngx_http_seadragon_usage_exit_process(cycle);
    ngx_http_seadragon_store_exit_process(cycle);
}
