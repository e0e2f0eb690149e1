
/*
 * Copyright (C) The Seadragon authors
 *
 * Health and metrics of a zone.
 *
 * Health asks Ollama itself: a subrequest to a location the user proxies
 * to Ollama's /api/tags, with that location's own timeouts, run in the
 * access phase as auth_request runs its own.  It never waits for the gate,
 * and a hung Ollama ends at the location's proxy_read_timeout.  The last
 * answer is kept in the zone for the metrics.
 *
 * With ps=URI2, a healthy check goes on with a second subrequest, kept in
 * memory, to a location the user proxies to Ollama's /api/ps: the models
 * it lists are what that server holds (ngx_http_seadragon_resident_ps()).
 * A listing that fails, is cut or is not {"models":[{"name":..}..]}
 * changes nothing, and the health answer is the same without it.
 *
 * Metrics are the zone's counters in Prometheus' text exposition format.
 */


#include "ngx_http_seadragon_module.h"

#include <yajl/yajl_parse.h>


/* the zone as the metrics show it, copied under its lock */

typedef struct {
    ngx_str_t                         zone;      /* the label, escaped */
    ngx_http_seadragon_shm_source_t  *sources;
    ngx_uint_t                        nsources;
    ngx_uint_t                        waiting;
    ngx_uint_t                        running;
    ngx_uint_t                        capacity;
    ngx_uint_t                        gate;
    ngx_uint_t                        health;
} ngx_http_seadragon_metrics_t;


static ngx_int_t ngx_http_seadragon_health_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_seadragon_health_ps_start(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_loc_conf_t *slcf);
static ngx_int_t ngx_http_seadragon_health_ps_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_seadragon_health_ps_parse(ngx_pool_t *pool,
    u_char *data, size_t len, ngx_str_t *models, ngx_uint_t *n);
static ngx_int_t ngx_http_seadragon_health_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_seadragon_metrics_counters(u_char *p, u_char *last,
    ngx_http_seadragon_metrics_t *m);
static u_char *ngx_http_seadragon_metrics_histograms(u_char *p, u_char *last,
    ngx_http_seadragon_metrics_t *m);
static u_char *ngx_http_seadragon_metrics_gauges(u_char *p, u_char *last,
    ngx_http_seadragon_metrics_t *m);
static ngx_int_t ngx_http_seadragon_metrics_label(ngx_pool_t *pool,
    ngx_str_t *value, ngx_str_t *label);


/* seadragon_health ZONE URI [ps=URI] */

char *
ngx_http_seadragon_health_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_seadragon_loc_conf_t  *slcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->health_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[2].len == 0 || value[2].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid check URI \"%V\": expected the URI of a "
                           "location that proxies to Ollama's /api/tags, "
                           "such as /_seadragon/tags", &value[2]);
        return NGX_CONF_ERROR;
    }

    slcf->health_zone = ngx_http_seadragon_zone_get(cf, &value[1]);
    if (slcf->health_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    slcf->health_uri = value[2];

    if (cf->args->nelts == 4) {
        if (value[3].len <= sizeof("ps=") - 1
            || ngx_strncmp(value[3].data, "ps=", sizeof("ps=") - 1) != 0
            || value[3].data[sizeof("ps=") - 1] != '/')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": expected "
                               "ps=URI, the URI of a location that proxies "
                               "to Ollama's /api/ps, such as "
                               "ps=/_seadragon/ps", &value[3]);
            return NGX_CONF_ERROR;
        }

        slcf->health_ps_uri.data = value[3].data + sizeof("ps=") - 1;
        slcf->health_ps_uri.len = value[3].len - (sizeof("ps=") - 1);
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_seadragon_health_handler;

    return NGX_CONF_OK;
}


/* seadragon_metrics ZONE */

char *
ngx_http_seadragon_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_seadragon_loc_conf_t  *slcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->metrics_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    slcf->metrics_zone = ngx_http_seadragon_zone_get(cf, &value[1]);
    if (slcf->metrics_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_seadragon_metrics_handler;

    return NGX_CONF_OK;
}


/* the access-phase half: NGX_AGAIN until Ollama has answered */

ngx_int_t
ngx_http_seadragon_health_access(ngx_http_request_t *r,
    ngx_http_seadragon_loc_conf_t *slcf)
{
    ngx_http_request_t          *sr;
    ngx_http_seadragon_ctx_t    *ctx;
    ngx_http_post_subrequest_t  *ps;

    ctx = ngx_http_seadragon_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->health_done) {
        return ngx_http_seadragon_health_ps_start(r, ctx, slcf);
    }

    if (ctx->health_request) {
        return NGX_AGAIN;
    }

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_seadragon_health_done;
    ps->data = ctx;

    ctx->health_started = ngx_current_msec;

    if (ngx_http_subrequest(r, &slcf->health_uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* no request body to send, and Ollama's list of models is not ours */

    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (sr->request_body == NULL) {
        return NGX_ERROR;
    }

    sr->header_only = 1;

    ctx->health_request = sr;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_seadragon_health_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_seadragon_ctx_t  *ctx = data;

    ctx->health_done = 1;
    ctx->health_status = r->headers_out.status;

    if (ctx->health_status == 0 && rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->health_status = rc;
    }

    ctx->health_time = ngx_current_msec - ctx->health_started;

    return rc;
}


/*
 * After a healthy check, the /api/ps subrequest, once; NGX_DECLINED when
 * done, when there is none, or when it cannot start: the health answer
 * never depends on it.
 */

static ngx_int_t
ngx_http_seadragon_health_ps_start(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_loc_conf_t *slcf)
{
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    if (slcf->health_ps_uri.len == 0 || ctx->ps_done
        || ctx->health_status < NGX_HTTP_OK
        || ctx->health_status >= NGX_HTTP_SPECIAL_RESPONSE)
    {
        return NGX_DECLINED;
    }

    if (ctx->ps_request) {
        return NGX_AGAIN;
    }

    ctx->ps_done = 1;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_DECLINED;
    }

    ps->handler = ngx_http_seadragon_health_ps_done;
    ps->data = ctx;

    if (ngx_http_subrequest(r, &slcf->health_ps_uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (sr->request_body == NULL) {
        return NGX_ERROR;
    }

    ctx->ps_done = 0;
    ctx->ps_request = sr;

    return NGX_AGAIN;
}


/*
 * nginx keeps an in-memory subrequest's answer in one buffer of the
 * location's subrequest_output_buffer_size, and an answer that does not
 * fit fails the subrequest and the connection with it: the health check
 * would end with no answer.  So what does not fit of /api/ps's answer is
 * dropped here, before nginx's postpone filter keeps it, and the listing
 * counts as failed: the views stay as they are.
 */

static ngx_http_seadragon_ctx_t *
ngx_http_seadragon_health_ps_ctx(ngx_http_request_t *r)
{
    ngx_http_seadragon_ctx_t  *ctx;

    if (r == r->main || !r->subrequest_in_memory) {
        return NULL;
    }

    ctx = ngx_http_get_module_ctx(r->parent, ngx_seadragon_module);

    return (ctx && ctx->ps_request == r) ? ctx : NULL;
}


void
ngx_http_seadragon_health_ps_header(ngx_http_request_t *r)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_seadragon_ctx_t  *ctx;

    ctx = ngx_http_seadragon_health_ps_ctx(r);
    if (ctx == NULL) {
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->headers_out.content_length_n
        > (off_t) clcf->subrequest_output_buffer_size)
    {
        r->headers_out.content_length_n = -1;
        ctx->ps_cut = 1;
    }
}


void
ngx_http_seadragon_health_ps_body(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                      size;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_seadragon_ctx_t  *ctx;

    ctx = ngx_http_seadragon_health_ps_ctx(r);
    if (ctx == NULL) {
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;
        size = ngx_buf_size(b);

        if (!ctx->ps_cut
            && ctx->ps_size + size
               <= (off_t) clcf->subrequest_output_buffer_size)
        {
            ctx->ps_size += size;
            continue;
        }

        ctx->ps_cut = 1;

        if (ngx_buf_in_memory(b)) {
            b->pos = b->last;
        }

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }
}


static ngx_int_t
ngx_http_seadragon_health_ps_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_seadragon_ctx_t  *ctx = data;

    ngx_buf_t  *b;
    ngx_str_t  *models;

    ctx->ps_done = 1;

    if (ctx->ps_cut) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon health: the answer of \"%V\" is larger "
                      "than subrequest_output_buffer_size, the models "
                      "known are kept", &r->uri);
        return rc;
    }

    if (rc != NGX_OK || r->headers_out.status != NGX_HTTP_OK
        || r->out == NULL || r->out->buf == NULL)
    {
        return rc;
    }

    models = ngx_palloc(r->pool,
                        NGX_HTTP_SEADRAGON_RESIDENT * sizeof(ngx_str_t));
    if (models == NULL) {
        return rc;
    }

    b = r->out->buf;

    if (ngx_http_seadragon_health_ps_parse(r->pool, b->pos, b->last - b->pos,
                                           models, &ctx->ps_nmodels)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon health: the answer of \"%V\" is not "
                      "Ollama's /api/ps, the models known are kept",
                      &r->uri);
        return rc;
    }

    ctx->ps_models = models;     /* ps_server: noted by its header */

    ctx->ps_ok = 1;

    return rc;
}


/* {"models":[{"name":"llama3:latest",...},...],...}, read with yajl */

typedef struct {
    ngx_pool_t   *pool;
    ngx_str_t    *models;
    ngx_uint_t    n;
    ngx_uint_t    depth;
    ngx_uint_t    in_models:1;      /* the top's "models" array */
    ngx_uint_t    models_seen:1;
    ngx_uint_t    key_models:1;     /* the last top key was "models" */
    ngx_uint_t    key_name:1;       /* the last key of a model: "name" */
    ngx_uint_t    failed:1;
} ngx_http_seadragon_ps_parse_t;


static int
ngx_http_seadragon_ps_map_key(void *data, const unsigned char *key,
    size_t len)
{
    ngx_http_seadragon_ps_parse_t  *pp = data;

    if (pp->depth == 1) {
        pp->key_models = (len == 6 && ngx_strncmp(key, "models", 6) == 0);
    }

    if (pp->depth == 3 && pp->in_models) {
        pp->key_name = (len == 4 && ngx_strncmp(key, "name", 4) == 0);
    }

    return 1;
}


static int
ngx_http_seadragon_ps_open(void *data, ngx_uint_t array)
{
    ngx_http_seadragon_ps_parse_t  *pp = data;

    pp->depth++;

    if (pp->depth == 1 && array) {
        return 0;
    }

    if (pp->depth == 2 && pp->key_models) {
        if (!array || pp->models_seen) {
            return 0;
        }

        pp->in_models = 1;
        pp->models_seen = 1;
    }

    if (pp->depth > 8) {
        return 0;
    }

    pp->key_name = 0;

    return 1;
}


static int
ngx_http_seadragon_ps_start_map(void *data)
{
    return ngx_http_seadragon_ps_open(data, 0);
}


static int
ngx_http_seadragon_ps_start_array(void *data)
{
    return ngx_http_seadragon_ps_open(data, 1);
}


static int
ngx_http_seadragon_ps_close(void *data)
{
    ngx_http_seadragon_ps_parse_t  *pp = data;

    if (pp->depth == 2) {
        pp->in_models = 0;
        pp->key_models = 0;
    }

    pp->depth--;
    pp->key_name = 0;

    return 1;
}


static int
ngx_http_seadragon_ps_string(void *data, const unsigned char *s, size_t len)
{
    ngx_http_seadragon_ps_parse_t  *pp = data;

    u_char  *p;

    if (pp->depth == 0) {
        return 0;
    }

    if (pp->depth != 3 || !pp->in_models || !pp->key_name) {
        return 1;
    }

    pp->key_name = 0;

    if (pp->n == NGX_HTTP_SEADRAGON_RESIDENT || len == 0) {
        return 1;
    }

    p = ngx_pnalloc(pp->pool, NGX_HTTP_SEADRAGON_MODEL_LEN);
    if (p == NULL) {
        return 0;
    }

    pp->models[pp->n].data = p;
    pp->models[pp->n].len =
        ngx_http_seadragon_model_canonical(p, NGX_HTTP_SEADRAGON_MODEL_LEN,
                                           (u_char *) s, len);
    pp->n++;

    return 1;
}


static int
ngx_http_seadragon_ps_scalar(void *data)
{
    ngx_http_seadragon_ps_parse_t  *pp = data;

    if (pp->depth == 0) {
        return 0;
    }

    pp->key_name = 0;

    return 1;
}


static int
ngx_http_seadragon_ps_null(void *data)
{
    return ngx_http_seadragon_ps_scalar(data);
}


static int
ngx_http_seadragon_ps_boolean(void *data, int value)
{
    return ngx_http_seadragon_ps_scalar(data);
}


static int
ngx_http_seadragon_ps_number(void *data, const char *s, size_t len)
{
    return ngx_http_seadragon_ps_scalar(data);
}


static yajl_callbacks  ngx_http_seadragon_ps_callbacks = {
    ngx_http_seadragon_ps_null,
    ngx_http_seadragon_ps_boolean,
    NULL,
    NULL,
    ngx_http_seadragon_ps_number,
    ngx_http_seadragon_ps_string,
    ngx_http_seadragon_ps_start_map,
    ngx_http_seadragon_ps_map_key,
    ngx_http_seadragon_ps_close,
    ngx_http_seadragon_ps_start_array,
    ngx_http_seadragon_ps_close
};


static ngx_int_t
ngx_http_seadragon_health_ps_parse(ngx_pool_t *pool, u_char *data,
    size_t len, ngx_str_t *models, ngx_uint_t *n)
{
    yajl_handle                     h;
    yajl_status                     st;
    ngx_http_seadragon_ps_parse_t   pp;

    ngx_memzero(&pp, sizeof(ngx_http_seadragon_ps_parse_t));
    pp.pool = pool;
    pp.models = models;

    h = yajl_alloc(&ngx_http_seadragon_ps_callbacks, NULL, &pp);
    if (h == NULL) {
        return NGX_ERROR;
    }

    st = yajl_parse(h, data, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    yajl_free(h);

    if (st != yajl_status_ok || !pp.models_seen) {
        return NGX_ERROR;
    }

    *n = pp.n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_seadragon_health_handler(ngx_http_request_t *r)
{
    u_char                         *p, *last, *start, reason[96];
    size_t                          len;
    ngx_int_t                       rc;
    ngx_uint_t                      healthy, status, waiting, running;
    ngx_uint_t                      capacity, gate;
    ngx_http_seadragon_ctx_t       *ctx;
    ngx_http_seadragon_zone_t      *zone;
    ngx_http_seadragon_loc_conf_t  *slcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);
    zone = slcf->health_zone;

    ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);
    if (ctx == NULL || !ctx->health_done) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    status = ctx->health_status;
    healthy = (status >= NGX_HTTP_OK && status < NGX_HTTP_SPECIAL_RESPONSE);

    last = reason + sizeof(reason);

    if (healthy) {
        p = reason;

    } else if (status == NGX_HTTP_GATEWAY_TIME_OUT) {
        p = ngx_slprintf(reason, last, "Ollama did not answer within %Mms",
                         ctx->health_time);

    } else if (status == NGX_HTTP_BAD_GATEWAY || status == 0) {
        p = ngx_slprintf(reason, last, "Ollama is not reachable");

    } else {
        p = ngx_slprintf(reason, last, "Ollama answered HTTP %ui", status);
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    zone->sh->health = healthy ? 1 : 2;
    zone->sh->health_checked = ngx_time();

    if (ctx->ps_ok) {
        ngx_http_seadragon_resident_ps(zone->sh, ctx->ps_server.data,
                                       ctx->ps_server.len, ctx->ps_models,
                                       ctx->ps_nmodels, ngx_current_msec,
                                       ngx_time());
    }

    waiting = zone->sh->nwaiting;
    running = zone->sh->nrunning;
    capacity = zone->sh->capacity;
    gate = zone->sh->gate_state;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    len = sizeof("{\"status\":\"unhealthy\",\"reason\":\"\",\"ollama\":"
                 "{\"status\":,\"time\":},\"gate\":\"draining\",\"capacity\":"
                 ",\"processing\":,\"queue_length\":}") + (p - reason)
          + 5 * NGX_INT_T_LEN + NGX_INT64_LEN + 8;

    start = ngx_pnalloc(r->pool, len);
    if (start == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = start + len;

    if (healthy) {
        p = ngx_slprintf(start, last, "{\"status\":\"healthy\"");

    } else {
        p = ngx_slprintf(start, last,
                         "{\"status\":\"unhealthy\",\"reason\":\"%*s\"",
                         (size_t) (p - reason), reason);
    }

    p = ngx_slprintf(p, last, ",\"ollama\":{\"status\":%ui,\"time\":%M.%03M}"
                     ",\"gate\":\"%s\",\"capacity\":%ui,\"processing\":%ui"
                     ",\"queue_length\":%ui}",
                     status, ctx->health_time / 1000, ctx->health_time % 1000,
                     ngx_http_seadragon_gate_states[gate], capacity, running,
                     waiting);

    return ngx_http_seadragon_send_json(r,
                                        healthy ? NGX_HTTP_OK
                                                : NGX_HTTP_SERVICE_UNAVAILABLE,
                                        start, p - start);
}


/*
 * Prometheus' text format, version 0.0.4.  The zone is copied under its
 * lock into request memory; the text is written after, into a buffer
 * sized from the names it repeats, and never past it.
 */

/* a sample line without its names: metric, other labels, value */
#define NGX_HTTP_SEADRAGON_METRIC_LINE   256

/* sample lines: per source, and for the zone */
#define NGX_HTTP_SEADRAGON_SOURCE_LINES  (19 + NGX_HTTP_SEADRAGON_BUCKETS)
#define NGX_HTTP_SEADRAGON_ZONE_LINES    7


#define ngx_http_seadragon_metric_head(metric, type, help)                    \
    p = ngx_slprintf(p, last, "# HELP " metric " " help "\n# TYPE " metric    \
                     " " type "\n")

#define ngx_http_seadragon_source_name(src)                                   \
    (size_t) ngx_min((src)->name_len, NGX_HTTP_SEADRAGON_NAME_LEN),           \
    (src)->name


#define ngx_http_seadragon_stat(field, kind, name, help)                      \
    { name, offsetof(ngx_http_seadragon_counters_t, field),                   \
      NGX_HTTP_SEADRAGON_STAT_ ## kind, help },

ngx_http_seadragon_stat_t  ngx_http_seadragon_stats[] = {
    NGX_HTTP_SEADRAGON_STATS(ngx_http_seadragon_stat)
    { NULL, 0, 0, NULL }
};

#undef ngx_http_seadragon_stat


/* the metric and the admin stats' map of a kind with one of each */

char  *ngx_http_seadragon_stat_groups[] = {
    NULL, "rejected", "aborted", NULL
};


/* the label of a kind's metric, and its HELP */

static char  *ngx_http_seadragon_stat_labels[] = {
    NULL, "reason", "when", NULL
};

static char  *ngx_http_seadragon_stat_helps[] = {
    NULL,
    "Requests refused by the gateway, by reason.",
    "Requests whose client left, while parked or streaming, or whose worker "
    "died (reaped).",
    NULL
};


uint64_t
ngx_http_seadragon_stat_value(ngx_http_seadragon_counters_t *c,
    ngx_http_seadragon_stat_t *stat)
{
    u_char  *p;

    p = (u_char *) c + stat->offset;

    if (stat->kind == NGX_HTTP_SEADRAGON_STAT_SECONDS) {
        return *(uint64_t *) p;
    }

    return (uint64_t) *(ngx_atomic_uint_t *) p;
}


/*
 * The counts from the table: one metric for each count, then one for each
 * kind of the others, by source then by its label; the waits are the
 * histogram's.
 */

static u_char *
ngx_http_seadragon_metrics_counters(u_char *p, u_char *last,
    ngx_http_seadragon_metrics_t *m)
{
    ngx_str_t                        *zn;
    ngx_uint_t                        i, kind;
    ngx_http_seadragon_stat_t        *stat, *first, *next;
    ngx_http_seadragon_shm_source_t  *src;

    zn = &m->zone;

    for (first = ngx_http_seadragon_stats; first->name; first = next) {
        kind = first->kind;

        /* a count is a metric alone; the others, all of their kind */

        next = first + 1;

        while (kind != NGX_HTTP_SEADRAGON_STAT_COUNT
               && next->name && next->kind == kind)
        {
            next++;
        }

        if (kind == NGX_HTTP_SEADRAGON_STAT_SECONDS) {
            continue;
        }

        if (kind == NGX_HTTP_SEADRAGON_STAT_COUNT) {
            p = ngx_slprintf(p, last, "# HELP seadragon_requests_%s_total %s\n"
                             "# TYPE seadragon_requests_%s_total counter\n",
                             first->name, first->help, first->name);

            for (i = 0; i < m->nsources; i++) {
                src = &m->sources[i];
                p = ngx_slprintf(p, last, "seadragon_requests_%s_total"
                                 "{zone=\"%V\",source=\"%*s\"} %uL\n",
                                 first->name, zn,
                                 ngx_http_seadragon_source_name(src),
                                 ngx_http_seadragon_stat_value(&src->counters,
                                                               first));
            }

            continue;
        }

        p = ngx_slprintf(p, last, "# HELP seadragon_requests_%s_total %s\n"
                         "# TYPE seadragon_requests_%s_total counter\n",
                         ngx_http_seadragon_stat_groups[kind],
                         ngx_http_seadragon_stat_helps[kind],
                         ngx_http_seadragon_stat_groups[kind]);

        for (i = 0; i < m->nsources; i++) {
            src = &m->sources[i];

            for (stat = first; stat < next; stat++) {
                p = ngx_slprintf(p, last, "seadragon_requests_%s_total"
                                 "{zone=\"%V\",source=\"%*s\",%s=\"%s\"} "
                                 "%uL\n",
                                 ngx_http_seadragon_stat_groups[kind], zn,
                                 ngx_http_seadragon_source_name(src),
                                 ngx_http_seadragon_stat_labels[kind],
                                 stat->name,
                                 ngx_http_seadragon_stat_value(&src->counters,
                                                               stat));
            }
        }
    }

    return p;
}


/* the wait-time histogram of each source */

static u_char *
ngx_http_seadragon_metrics_histograms(u_char *p, u_char *last,
    ngx_http_seadragon_metrics_t *m)
{
    uint64_t                          cumulative;
    ngx_str_t                        *zn;
    ngx_uint_t                        i, j;
    ngx_http_seadragon_counters_t    *c;
    ngx_http_seadragon_shm_source_t  *src;

    zn = &m->zone;

    ngx_http_seadragon_metric_head("seadragon_queue_wait_seconds",
        "histogram", "Time requests waited for the gate before it let "
        "them in.");

    for (i = 0; i < m->nsources; i++) {
        src = &m->sources[i];
        c = &src->counters;
        cumulative = 0;

        for (j = 0; j < NGX_HTTP_SEADRAGON_BUCKETS; j++) {
            cumulative += c->wait_buckets[j];

            p = ngx_slprintf(p, last, "seadragon_queue_wait_seconds_bucket"
                             "{zone=\"%V\",source=\"%*s\",le=\"%M.%03M\"} "
                             "%uL\n",
                             zn, ngx_http_seadragon_source_name(src),
                             ngx_http_seadragon_wait_buckets[j] / 1000,
                             ngx_http_seadragon_wait_buckets[j] % 1000,
                             cumulative);
        }

        p = ngx_slprintf(p, last, "seadragon_queue_wait_seconds_bucket"
                         "{zone=\"%V\",source=\"%*s\",le=\"+Inf\"} %uL\n"
                         "seadragon_queue_wait_seconds_sum"
                         "{zone=\"%V\",source=\"%*s\"} %uL.%03uL\n"
                         "seadragon_queue_wait_seconds_count"
                         "{zone=\"%V\",source=\"%*s\"} %uL\n",
                         zn, ngx_http_seadragon_source_name(src), c->waited,
                         zn, ngx_http_seadragon_source_name(src),
                         c->wait_total_ms / 1000, c->wait_total_ms % 1000,
                         zn, ngx_http_seadragon_source_name(src), c->waited);
    }

    return p;
}


/* what the gate and the queue hold now, and Ollama's last health check */

static u_char *
ngx_http_seadragon_metrics_gauges(u_char *p, u_char *last,
    ngx_http_seadragon_metrics_t *m)
{
    ngx_str_t                        *zn;
    ngx_uint_t                        i;
    ngx_http_seadragon_shm_source_t  *src;

    zn = &m->zone;

    ngx_http_seadragon_metric_head("seadragon_queue_waiting", "gauge",
        "Requests waiting for the gate now.");

    for (i = 0; i < m->nsources; i++) {
        src = &m->sources[i];
        p = ngx_slprintf(p, last,
                         "seadragon_queue_waiting{zone=\"%V\",source=\"%*s\"} "
                         "%uL\n", zn, ngx_http_seadragon_source_name(src),
                         (uint64_t) src->nwaiting);
    }

    ngx_http_seadragon_metric_head("seadragon_queue_length", "gauge",
        "Requests waiting for the gate now, all sources.");
    p = ngx_slprintf(p, last, "seadragon_queue_length{zone=\"%V\"} %ui\n", zn,
                     m->waiting);

    ngx_http_seadragon_metric_head("seadragon_gate_busy", "gauge",
        "Requests holding a slot of the gate now.");
    p = ngx_slprintf(p, last, "seadragon_gate_busy{zone=\"%V\"} %ui\n", zn,
                     m->running);

    ngx_http_seadragon_metric_head("seadragon_gate_capacity", "gauge",
        "Slots of the gate: requests it lets through at once.");
    p = ngx_slprintf(p, last, "seadragon_gate_capacity{zone=\"%V\"} %ui\n",
                     zn, m->capacity);

    ngx_http_seadragon_metric_head("seadragon_gate_state", "gauge",
        "1 for the gate's current state (open, paused, draining).");

    for (i = NGX_HTTP_SEADRAGON_GATE_OPEN;
         i <= NGX_HTTP_SEADRAGON_GATE_DRAINING;
         i++)
    {
        p = ngx_slprintf(p, last,
                         "seadragon_gate_state{zone=\"%V\",state=\"%s\"} %d\n",
                         zn, ngx_http_seadragon_gate_states[i],
                         (int) (m->gate == i));
    }

    ngx_http_seadragon_metric_head("seadragon_upstream_up", "gauge",
        "1 when the last health check found Ollama answering, 0 when it "
        "did not, -1 before any check.");
    p = ngx_slprintf(p, last, "seadragon_upstream_up{zone=\"%V\"} %i\n", zn,
                     (ngx_int_t) (m->health == 1 ? 1
                                  : m->health == 2 ? 0 : -1));

    return p;
}


static ngx_int_t
ngx_http_seadragon_metrics_handler(ngx_http_request_t *r)
{
    u_char                         *p, *last, *start;
    size_t                          len;
    ngx_int_t                       rc;
    ngx_str_t                       usage, models, tenants, logins;
    ngx_http_seadragon_zone_t      *zone;
    ngx_http_seadragon_metrics_t    m;
    ngx_http_seadragon_loc_conf_t  *slcf;

    static ngx_str_t  type =
        ngx_string("text/plain; version=0.0.4; charset=utf-8");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);
    zone = slcf->metrics_zone;

    /* label values escape "\", '"' and newlines: a zone name may have them */

    if (ngx_http_seadragon_metrics_label(r->pool, &zone->name, &m.zone)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    m.sources = ngx_palloc(r->pool, NGX_HTTP_SEADRAGON_MAX_SOURCES
                                    * sizeof(ngx_http_seadragon_shm_source_t));
    if (m.sources == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    m.nsources = zone->sh->nsources;
    ngx_memcpy(m.sources, zone->sh->sources,
               m.nsources * sizeof(ngx_http_seadragon_shm_source_t));
    m.waiting = zone->sh->nwaiting;
    m.running = zone->sh->nrunning;
    m.capacity = zone->sh->capacity;
    m.gate = zone->sh->gate_state;
    m.health = zone->sh->health;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (ngx_http_seadragon_usage_metrics(r, zone, &m.zone, &usage)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_seadragon_resident_metrics(r, zone, &m.zone, &models)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_seadragon_tenant_metrics(r, zone, &m.zone, &tenants)
        != NGX_OK
        || ngx_http_seadragon_auth_limit_metrics(r, zone, &m.zone, &logins)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the HELP and TYPE lines, then every sample line with its names */

    len = usage.len + models.len + tenants.len + logins.len + 4096
          + (m.nsources * NGX_HTTP_SEADRAGON_SOURCE_LINES
             + NGX_HTTP_SEADRAGON_ZONE_LINES)
            * (NGX_HTTP_SEADRAGON_METRIC_LINE + m.zone.len
               + NGX_HTTP_SEADRAGON_NAME_LEN);

    start = ngx_pnalloc(r->pool, len);
    if (start == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = start;
    last = start + len;

    p = ngx_http_seadragon_metrics_counters(p, last, &m);
    p = ngx_http_seadragon_metrics_histograms(p, last, &m);
    p = ngx_http_seadragon_metrics_gauges(p, last, &m);

    if ((size_t) (last - p) > usage.len) {
        p = ngx_cpymem(p, usage.data, usage.len);
    }

    if ((size_t) (last - p) > models.len) {
        p = ngx_cpymem(p, models.data, models.len);
    }

    if ((size_t) (last - p) > tenants.len) {
        p = ngx_cpymem(p, tenants.data, tenants.len);
    }

    if ((size_t) (last - p) > logins.len) {
        p = ngx_cpymem(p, logins.data, logins.len);
    }

    /* the size above has room to spare: a full buffer means a cut text */

    if (p == last) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "seadragon metrics of zone \"%V\" did not fit in %uz "
                      "bytes", &zone->name, len);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_seadragon_send(r, NGX_HTTP_OK, &type, start, p - start);
}


/* a label value in the text format: "\", '"' and a newline escaped */

static ngx_int_t
ngx_http_seadragon_metrics_label(ngx_pool_t *pool, ngx_str_t *value,
    ngx_str_t *label)
{
    u_char      *p;
    ngx_uint_t   i, n;

    n = 0;

    for (i = 0; i < value->len; i++) {
        if (value->data[i] == '\\' || value->data[i] == '"'
            || value->data[i] == '\n')
        {
            n++;
        }
    }

    if (n == 0) {
        *label = *value;
        return NGX_OK;
    }

    label->data = ngx_pnalloc(pool, value->len + n);
    if (label->data == NULL) {
        return NGX_ERROR;
    }

    p = label->data;

    for (i = 0; i < value->len; i++) {
        switch (value->data[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = value->data[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = value->data[i];
        }
    }

    label->len = p - label->data;

    return NGX_OK;
}
