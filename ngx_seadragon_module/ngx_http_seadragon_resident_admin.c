
/*
 * Copyright (C) The Seadragon authors
 *
 * The resident models as the admin API (GET models) and the metrics show
 * them: the zone's residency (ngx_http_seadragon_resident.c) and its
 * per-model slots, copied under the lock, written after it.
 */


#include "ngx_http_seadragon_module.h"


/* the zone's models as they are shown, copied under its lock */

typedef struct {
    ngx_uint_t                          loaded;
    ngx_uint_t                          nslots;
    ngx_http_seadragon_model_slot_t     slots[NGX_HTTP_SEADRAGON_MODELS];
    ngx_http_seadragon_resident_shm_t   resident;
} ngx_http_seadragon_models_copy_t;


static ngx_http_seadragon_models_copy_t *ngx_http_seadragon_models_copy(
    ngx_http_request_t *r, ngx_http_seadragon_zone_t *zone);
static void ngx_http_seadragon_models_sort(
    ngx_http_seadragon_resident_model_t *models, ngx_uint_t n);
static void ngx_http_seadragon_models_servers(ngx_http_seadragon_json_t *jp,
    ngx_http_seadragon_models_copy_t *c);
static ngx_int_t ngx_http_seadragon_models_slot(
    ngx_http_seadragon_models_copy_t *c, u_char *name, size_t len);
static ngx_int_t ngx_http_seadragon_models_counted(
    ngx_http_seadragon_models_copy_t *c, u_char *name, size_t len);


static ngx_http_seadragon_models_copy_t *
ngx_http_seadragon_models_copy(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone)
{
    ngx_uint_t                         i;
    ngx_http_seadragon_shctx_t        *sh;
    ngx_http_seadragon_models_copy_t  *c;

    c = ngx_palloc(r->pool, sizeof(ngx_http_seadragon_models_copy_t));
    if (c == NULL) {
        return NULL;
    }

    sh = zone->sh;

    ngx_shmtx_lock(&zone->shpool->mutex);

    c->loaded = sh->loaded ? sh->loaded : 1;
    c->nslots = ngx_min(sh->nmodels, NGX_HTTP_SEADRAGON_MODELS);
    ngx_memcpy(c->slots, sh->models,
               c->nslots * sizeof(ngx_http_seadragon_model_slot_t));
    c->resident = sh->resident;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    /* bounds checked once here, not at every use */

    c->resident.nmodels = ngx_min(c->resident.nmodels,
                                  NGX_HTTP_SEADRAGON_RESIDENT);
    c->resident.nservers = ngx_min(c->resident.nservers,
                                   NGX_HTTP_SEADRAGON_SERVERS);
    c->resident.nswaps = ngx_min(c->resident.nswaps,
                                 NGX_HTTP_SEADRAGON_SWAP_MODELS + 1);

    ngx_http_seadragon_models_sort(c->resident.models, c->resident.nmodels);

    for (i = 0; i < c->resident.nservers; i++) {
        c->resident.servers[i].nmodels =
            ngx_min(c->resident.servers[i].nmodels,
                    NGX_HTTP_SEADRAGON_RESIDENT);
        ngx_http_seadragon_models_sort(c->resident.servers[i].models,
                                       c->resident.servers[i].nmodels);
    }

    return c;
}


/* the most recently used first */

static void
ngx_http_seadragon_models_sort(ngx_http_seadragon_resident_model_t *models,
    ngx_uint_t n)
{
    ngx_uint_t                           i, k;
    ngx_http_seadragon_resident_model_t  m;

    for (i = 1; i < n; i++) {
        m = models[i];

        for (k = i;
             k > 0 && (ngx_msec_int_t) (models[k - 1].used - m.used) < 0;
             k--)
        {
            models[k] = models[k - 1];
        }

        models[k] = m;
    }
}


static ngx_int_t
ngx_http_seadragon_models_slot(ngx_http_seadragon_models_copy_t *c,
    u_char *name, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < c->nslots; i++) {
        if (c->slots[i].len == len
            && ngx_memcmp(c->slots[i].name, name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


static ngx_int_t
ngx_http_seadragon_models_counted(ngx_http_seadragon_models_copy_t *c,
    u_char *name, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < c->resident.nswaps; i++) {
        if (c->resident.swaps[i].len == len
            && ngx_memcmp(c->resident.swaps[i].name, name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


/*
 * The upstream server that answers, noted by the header filter while
 * nginx still holds its peer: by the time the slot is given back, or a
 * health check's /api/ps has ended, nginx may have freed the peer's name
 * (a server of an upstream with "resolve" that a new lookup removed).
 */

void
ngx_http_seadragon_resident_peer(ngx_http_request_t *r)
{
    size_t                     len;
    ngx_str_t                 *name;
    ngx_http_seadragon_ctx_t  *ctx;

    if (r->upstream == NULL || r->upstream->peer.name == NULL) {
        return;
    }

    name = r->upstream->peer.name;
    len = ngx_min(name->len, NGX_HTTP_SEADRAGON_ADDR_LEN);

    if (r == r->main) {
        ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);

        if (ctx) {
            ngx_memcpy(ctx->server, name->data, len);
            ctx->server_len = len;
        }

        return;
    }

    ctx = ngx_http_get_module_ctx(r->parent, ngx_seadragon_module);

    if (ctx == NULL || ctx->ps_request != r) {
        return;
    }

    ctx->ps_server.data = ngx_pnalloc(r->pool, len);
    if (ctx->ps_server.data == NULL) {
        ctx->ps_server.len = 0;
        return;
    }

    ngx_memcpy(ctx->ps_server.data, name->data, len);
    ctx->ps_server.len = len;
}


/* GET models' "servers": what each upstream server holds, as last seen */

static void
ngx_http_seadragon_models_servers(ngx_http_seadragon_json_t *jp,
    ngx_http_seadragon_models_copy_t *c)
{
    ngx_uint_t                    i, m;
    ngx_http_seadragon_server_t  *srv;

    ngx_http_seadragon_json_str(jp, "servers");
    ngx_http_seadragon_json_array_open(jp);

    for (i = 0; i < c->resident.nservers; i++) {
        srv = &c->resident.servers[i];
        ngx_http_seadragon_json_map_open(jp);
        ngx_http_seadragon_json_field(jp, "server", srv->name,
                                      ngx_min(srv->len,
                                              NGX_HTTP_SEADRAGON_ADDR_LEN));

        ngx_http_seadragon_json_str(jp, "checked");

        if (srv->checked) {
            ngx_http_seadragon_json_check(jp,
                yajl_gen_integer(jp->gen, (long long) srv->checked));

        } else {
            ngx_http_seadragon_json_check(jp, yajl_gen_null(jp->gen));
        }

        ngx_http_seadragon_json_str(jp, "models");
        ngx_http_seadragon_json_array_open(jp);

        for (m = 0; m < srv->nmodels; m++) {
            ngx_http_seadragon_json_text(jp, srv->models[m].name,
                                         ngx_min(srv->models[m].len,
                                                 NGX_HTTP_SEADRAGON_MODEL_LEN));
        }

        ngx_http_seadragon_json_array_close(jp);
        ngx_http_seadragon_json_map_close(jp);
    }

    ngx_http_seadragon_json_array_close(jp);
}


/*
 * GET models: {"zone","loaded","resident":[{"model","since"}],
 * "servers":[{"server","checked","models":[names]}],"models":[{"model",
 * "dispatched","predicted_swaps","loads","load_seconds","slots",
 * "running"}]}, the resident models the most recently used first.
 */

ngx_int_t
ngx_http_seadragon_resident_admin(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg)
{
    ngx_int_t                             k;
    ngx_uint_t                            i;
    ngx_http_seadragon_json_t             j;
    ngx_http_seadragon_swap_t            *swap;
    ngx_http_seadragon_model_slot_t      *slot;
    ngx_http_seadragon_models_copy_t     *c;
    ngx_http_seadragon_resident_model_t  *rm;

    c = ngx_http_seadragon_models_copy(r, zone);
    if (c == NULL || ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_field(&j, "zone", zone->name.data, zone->name.len);
    ngx_http_seadragon_json_int(&j, "loaded", (long long) c->loaded);

    ngx_http_seadragon_json_str(&j, "resident");
    ngx_http_seadragon_json_array_open(&j);

    for (i = 0; i < c->resident.nmodels; i++) {
        rm = &c->resident.models[i];
        ngx_http_seadragon_json_map_open(&j);
        ngx_http_seadragon_json_field(&j, "model", rm->name,
                                      ngx_min(rm->len,
                                              NGX_HTTP_SEADRAGON_MODEL_LEN));
        ngx_http_seadragon_json_int(&j, "since", (long long) rm->since);
        ngx_http_seadragon_json_map_close(&j);
    }

    ngx_http_seadragon_json_array_close(&j);

    ngx_http_seadragon_models_servers(&j, c);

    /* every model counted, then the models with slots never dispatched */

    ngx_http_seadragon_json_str(&j, "models");
    ngx_http_seadragon_json_array_open(&j);

    for (i = 0; i < c->resident.nswaps; i++) {
        swap = &c->resident.swaps[i];
        swap->len = ngx_min(swap->len, NGX_HTTP_SEADRAGON_MODEL_LEN);
        k = ngx_http_seadragon_models_slot(c, swap->name, swap->len);

        ngx_http_seadragon_json_map_open(&j);
        ngx_http_seadragon_json_field(&j, "model", swap->name, swap->len);
        ngx_http_seadragon_json_int(&j, "dispatched",
                                    (long long) swap->dispatched);
        ngx_http_seadragon_json_int(&j, "predicted_swaps",
                                    (long long) swap->predicted);
        ngx_http_seadragon_json_int(&j, "loads", (long long) swap->loads);
        ngx_http_seadragon_json_seconds(&j, "load_seconds",
                                        (ngx_msec_t) swap->load_ms);
        ngx_http_seadragon_json_int(&j, "slots",
                                    k >= 0 ? (long long) c->slots[k].slots : 0);
        ngx_http_seadragon_json_int(&j, "running",
                                    k >= 0 ? (long long) c->slots[k].running
                                           : 0);
        ngx_http_seadragon_json_map_close(&j);
    }

    for (i = 0; i < c->nslots; i++) {
        slot = &c->slots[i];
        slot->len = ngx_min(slot->len, NGX_HTTP_SEADRAGON_MODEL_LEN);

        if (ngx_http_seadragon_models_counted(c, slot->name, slot->len) >= 0) {
            continue;
        }

        ngx_http_seadragon_json_map_open(&j);
        ngx_http_seadragon_json_field(&j, "model", slot->name, slot->len);
        ngx_http_seadragon_json_int(&j, "dispatched", 0);
        ngx_http_seadragon_json_int(&j, "predicted_swaps", 0);
        ngx_http_seadragon_json_int(&j, "loads", 0);
        ngx_http_seadragon_json_seconds(&j, "load_seconds", 0);
        ngx_http_seadragon_json_int(&j, "slots", (long long) slot->slots);
        ngx_http_seadragon_json_int(&j, "running", (long long) slot->running);
        ngx_http_seadragon_json_map_close(&j);
    }

    ngx_http_seadragon_json_array_close(&j);
    ngx_http_seadragon_json_map_close(&j);

    return ngx_http_seadragon_admin_send(r, &j);
}


/*
 * The metrics of the zone's models, in Prometheus' text format, after the
 * zone's own: swaps seen, swaps predicted, dispatches, the resident
 * models, and the running requests of the models with slots.
 */

ngx_int_t
ngx_http_seadragon_resident_metrics(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *zn, ngx_str_t *out)
{
    u_char                            *p, *last, *start;
    size_t                             len;
    uint64_t                           value;
    ngx_uint_t                         i, f;
    ngx_http_seadragon_swap_t         *swap;
    ngx_http_seadragon_model_slot_t   *slot;
    ngx_http_seadragon_models_copy_t  *c;

    static struct {
        char    *name;
        char    *help;
        size_t   offset;
    } families[] = {
        { "seadragon_model_swaps_total",
          "Model loads seen in Ollama's answers (a load_duration of 250 ms "
          "or more), by model.",
          offsetof(ngx_http_seadragon_swap_t, loads) },
        { "seadragon_model_predicted_swaps_total",
          "Requests dispatched for a model that was not resident in the "
          "gate's view, by model.",
          offsetof(ngx_http_seadragon_swap_t, predicted) },
        { "seadragon_model_dispatched_total",
          "Requests the gate let in, by model.",
          offsetof(ngx_http_seadragon_swap_t, dispatched) }
    };

    c = ngx_http_seadragon_models_copy(r, zone);
    if (c == NULL) {
        return NGX_ERROR;
    }

    /* a line: its names escaped (twice their length at most), a number */

    len = 2048 + (3 * c->resident.nswaps + c->resident.nmodels + c->nslots)
                 * (256 + zn->len + 2 * NGX_HTTP_SEADRAGON_MODEL_LEN);

    start = ngx_pnalloc(r->pool, len);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;
    last = start + len;

    for (f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s counter\n",
                         families[f].name, families[f].help,
                         families[f].name);

        for (i = 0; i < c->resident.nswaps; i++) {
            swap = &c->resident.swaps[i];
            value = *(uint64_t *) ((u_char *) swap + families[f].offset);

            p = ngx_slprintf(p, last, "%s{zone=\"%V\",model=\"",
                             families[f].name, zn);
            p = ngx_http_seadragon_usage_label(p, last, swap->name,
                                                ngx_min(swap->len,
                                                 NGX_HTTP_SEADRAGON_MODEL_LEN));
            p = ngx_slprintf(p, last, "\"} %uL\n", value);
        }
    }

    p = ngx_slprintf(p, last, "# HELP seadragon_model_resident 1 for each "
                     "model resident in the gate's view.\n"
                     "# TYPE seadragon_model_resident gauge\n");

    for (i = 0; i < c->resident.nmodels; i++) {
        p = ngx_slprintf(p, last, "seadragon_model_resident{zone=\"%V\","
                         "model=\"", zn);
        p = ngx_http_seadragon_usage_label(p, last,
                                            c->resident.models[i].name,
                                            ngx_min(c->resident.models[i].len,
                                                 NGX_HTTP_SEADRAGON_MODEL_LEN));
        p = ngx_slprintf(p, last, "\"} 1\n");
    }

    if (c->nslots) {
        p = ngx_slprintf(p, last, "# HELP seadragon_model_running Requests "
                         "holding a slot now, for each model with slots of "
                         "its own.\n"
                         "# TYPE seadragon_model_running gauge\n");

        for (i = 0; i < c->nslots; i++) {
            slot = &c->slots[i];

            if (slot->slots == 0) {
                continue;
            }

            p = ngx_slprintf(p, last, "seadragon_model_running{zone=\"%V\","
                             "model=\"", zn);
            p = ngx_http_seadragon_usage_label(p, last, slot->name,
                                                ngx_min(slot->len,
                                                 NGX_HTTP_SEADRAGON_MODEL_LEN));
            p = ngx_slprintf(p, last, "\"} %ui\n", slot->running);
        }
    }

    out->data = start;
    out->len = p - start;

    return NGX_OK;
}
