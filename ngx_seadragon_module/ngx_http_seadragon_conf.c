
/*
 * Copyright (C) The Seadragon authors
 *
 * The configuration: the zone, source, queue and model directives with
 * their KEY=VALUE parameters, the shared zone's set-up, and the check that
 * warns of a source anyone can claim.
 */


#include "ngx_http_seadragon_module.h"


static ngx_int_t ngx_http_seadragon_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_seadragon_params_parse(ngx_conf_t *cf,
    ngx_http_seadragon_param_t *params, void *conf, char *expected);
static ngx_uint_t ngx_http_seadragon_condition_claims(ngx_http_variable_t *v,
    ngx_http_complex_value_t *condition, u_char *names, size_t size,
    ngx_uint_t *client, ngx_uint_t *other);


static ngx_int_t
ngx_http_seadragon_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_seadragon_zone_t  *ozone = data;

    size_t                           len;
    ngx_int_t                        slot, models;
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
     * name; the newest configuration sets priorities and limits, and the
     * scheduler's policy, for every worker, old ones still finishing a
     * reload included.
     */

    source = smcf->sources.elts;

    ngx_shmtx_lock(&zone->shpool->mutex);

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

    /* the models' own slots, by name like the sources: append-only */

    models = ngx_http_seadragon_queue_models_set(zone->sh,
                                                 zone->models
                                                 ? zone->models->elts : NULL,
                                                 zone->models
                                                 ? zone->models->nelts : 0);

    /* the policy of a configuration that the zone cannot take stays out */

    if (i == smcf->sources.nelts && models != NGX_ERROR) {
        zone->sh->capacity = zone->capacity;
        zone->sh->max_queued = zone->max_queued;
        zone->sh->fair = zone->fair;
        zone->sh->prompt_weight = zone->prompt_weight;
        zone->sh->completion_weight = zone->completion_weight;
        zone->sh->affinity = zone->affinity;
        zone->sh->loaded = zone->loaded;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (models == NGX_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "seadragon zone \"%V\" has seen more than %d models "
                      "of seadragon_model since it was created; restart "
                      "nginx to reset it",
                      &shm_zone->shm.name, NGX_HTTP_SEADRAGON_MODELS);
        return NGX_ERROR;
    }

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


/* the index of the source of this name, or NGX_ERROR */

ngx_int_t
ngx_http_seadragon_source_find(ngx_http_seadragon_main_conf_t *smcf,
    ngx_str_t *name)
{
    ngx_uint_t                    i;
    ngx_http_seadragon_source_t  *source;

    source = smcf->sources.elts;

    for (i = 0; i < smcf->sources.nelts; i++) {
        if (source[i].name.len == name->len
            && ngx_strncmp(source[i].name.data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


/*
 * The KEY=VALUE parameters after a directive's first argument, each
 * handed to the setter of its entry; an entry whose name has no "="
 * is a flag, matched whole.
 */

static char *
ngx_http_seadragon_params_parse(ngx_conf_t *cf,
    ngx_http_seadragon_param_t *params, void *conf, char *expected)
{
    ngx_str_t                   *args, value;
    ngx_uint_t                   i;
    ngx_http_seadragon_param_t  *p;

    args = cf->args->elts;

    for (i = 2; i < cf->args->nelts; i++) {

        for (p = params; p->name.len; p++) {

            if (p->name.data[p->name.len - 1] == '='
                ? args[i].len >= p->name.len
                : args[i].len == p->name.len)
            {
                if (ngx_strncmp(args[i].data, p->name.data, p->name.len)
                    == 0)
                {
                    break;
                }
            }
        }

        if (p->name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": expected %s",
                               &args[i], expected);
            return NGX_CONF_ERROR;
        }

        value.data = args[i].data + p->name.len;
        value.len = args[i].len - p->name.len;

        if (p->set(cf, &args[i], &value, p, conf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The setters of the parameters.  Each sets the field at the entry's
 * offset in conf (a zone or a source), within the entry's bounds, and
 * names what the value must be in its error.
 */

static char *
ngx_http_seadragon_param_bounded(ngx_conf_t *cf, ngx_str_t *param,
    ngx_int_t n, ngx_http_seadragon_param_t *p)
{
    if (n == NGX_ERROR || n < (ngx_int_t) p->low
        || (p->high && n > (ngx_int_t) p->high))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"%V\": %s",
                           param, p->error);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_seadragon_param_number(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    ngx_int_t  n;

    n = ngx_atoi(value->data, value->len);

    if (ngx_http_seadragon_param_bounded(cf, param, n, p) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    *(ngx_uint_t *) ((u_char *) conf + p->offset) = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_seadragon_param_time(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    ngx_int_t  n;

    n = ngx_parse_time(value, 0);

    if (ngx_http_seadragon_param_bounded(cf, param, n, p) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    *(ngx_msec_t *) ((u_char *) conf + p->offset) = n;

    return NGX_CONF_OK;
}


/*
 * aging=TIME|off: how long a wait makes a request one step more urgent;
 * affinity=TIME|off: how long a request may be passed over for one whose
 * model is resident
 */

static char *
ngx_http_seadragon_param_aging(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        *(ngx_msec_t *) ((u_char *) conf + p->offset) = 0;
        return NGX_CONF_OK;
    }

    return ngx_http_seadragon_param_time(cf, param, value, p, conf);
}


/* fair=off|tokens|requests: how a priority's turns are shared */

static char *
ngx_http_seadragon_param_fair(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    ngx_uint_t  i;

    static ngx_str_t  names[] = {
        ngx_string("off"),                    /* FAIR_OFF */
        ngx_string("tokens"),                 /* FAIR_TOKENS */
        ngx_string("requests"),               /* FAIR_REQUESTS */
        ngx_null_string
    };

    for (i = 0; names[i].len; i++) {
        if (value->len == names[i].len
            && ngx_strncmp(value->data, names[i].data, value->len) == 0)
        {
            *(ngx_uint_t *) ((u_char *) conf + p->offset) = i;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"%V\": %s",
                       param, p->error);
    return NGX_CONF_ERROR;
}


/*
 * tenant=VALUE: who a request without a key is, for fair shares; any
 * complex value, a constant too (every keyless request one tenant)
 */

static char *
ngx_http_seadragon_param_tenant(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    ngx_http_seadragon_zone_t  *zone = conf;

    ngx_http_compile_complex_value_t  ccv;

    if (value->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"%V\": %s",
                           param, p->error);
        return NGX_CONF_ERROR;
    }

    zone->tenant = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (zone->tenant == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = zone->tenant;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a flag, such as "key": present, it is set */

static char *
ngx_http_seadragon_param_flag(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    *(ngx_uint_t *) ((u_char *) conf + p->offset) = 1;

    return NGX_CONF_OK;
}


#define NGX_HTTP_SEADRAGON_AGING_ERROR                                       \
    "aging must be a time, such as 30s (each 30s waited is one step of "     \
    "priority), or off"

#define NGX_HTTP_SEADRAGON_MAX_QUEUED_ERROR                                  \
    "max_queued must be a whole number, at least 1"


static ngx_http_seadragon_param_t  ngx_http_seadragon_zone_params[] = {

    { ngx_string("capacity="), ngx_http_seadragon_param_number,
      offsetof(ngx_http_seadragon_zone_t, capacity), 1, 0,
      "capacity must be a whole number of requests, at least 1" },

    { ngx_string("max_queued="), ngx_http_seadragon_param_number,
      offsetof(ngx_http_seadragon_zone_t, max_queued), 1, 0,
      NGX_HTTP_SEADRAGON_MAX_QUEUED_ERROR },

    { ngx_string("max_queued_per_client="), ngx_http_seadragon_param_number,
      offsetof(ngx_http_seadragon_zone_t, max_queued_per_client), 1, 0,
      "max_queued_per_client must be a whole number of requests, at "
      "least 1" },

    { ngx_string("tick="), ngx_http_seadragon_param_time,
      offsetof(ngx_http_seadragon_zone_t, tick), 1, 10000,
      "tick must be a time from 1ms to 10s" },

    { ngx_string("max_wait="), ngx_http_seadragon_param_time,
      offsetof(ngx_http_seadragon_zone_t, max_wait), 0, 0,
      "max_wait must be a time, such as 300s or 10m (0 waits forever)" },

    { ngx_string("aging="), ngx_http_seadragon_param_aging,
      offsetof(ngx_http_seadragon_zone_t, aging), 1, 0,
      NGX_HTTP_SEADRAGON_AGING_ERROR },

    { ngx_string("fair="), ngx_http_seadragon_param_fair,
      offsetof(ngx_http_seadragon_zone_t, fair), 0, 0,
      "fair must be off, tokens (shares by tokens served) or requests "
      "(shares by requests)" },

    { ngx_string("tenant="), ngx_http_seadragon_param_tenant, 0, 0, 0,
      "tenant must be a value, such as $binary_remote_addr, that tells "
      "who a request without a key is" },

    { ngx_string("prompt_weight="), ngx_http_seadragon_param_number,
      offsetof(ngx_http_seadragon_zone_t, prompt_weight), 0,
      NGX_HTTP_SEADRAGON_WEIGHT_MAX,
      "prompt_weight must be a whole number from 0 to 1000, what a "
      "prompt token counts for in fair=tokens" },

    { ngx_string("completion_weight="), ngx_http_seadragon_param_number,
      offsetof(ngx_http_seadragon_zone_t, completion_weight), 0,
      NGX_HTTP_SEADRAGON_WEIGHT_MAX,
      "completion_weight must be a whole number from 0 to 1000, what a "
      "completion token counts for in fair=tokens" },

    { ngx_string("affinity="), ngx_http_seadragon_param_aging,
      offsetof(ngx_http_seadragon_zone_t, affinity), 0, 0,
      "affinity must be a time, such as 30s (the longest a request may "
      "be passed over for one whose model is loaded), or off" },

    { ngx_string("loaded="), ngx_http_seadragon_param_number,
      offsetof(ngx_http_seadragon_zone_t, loaded), 1,
      NGX_HTTP_SEADRAGON_RESIDENT,
      "loaded must be a whole number from 1 to 8, the models the server "
      "holds at once (OLLAMA_MAX_LOADED_MODELS)" },

    { ngx_null_string, NULL, 0, 0, 0, NULL }
};


/* seadragon_zone NAME:SIZE [capacity=N] [tick=TIME] [max_queued=N]
 *                [max_queued_per_client=N] [max_wait=TIME]
 *                [aging=TIME|off] [fair=off|tokens|requests]
 *                [tenant=VALUE] [prompt_weight=N] [completion_weight=N]
 *                [affinity=TIME|off] [loaded=N] */

char *
ngx_http_seadragon_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                     *p;
    size_t                      min;
    ssize_t                     size;
    ngx_str_t                  *value, name, s;
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

    /* the zone's header, and room for a few pages of requests */

    min = ngx_align(sizeof(ngx_http_seadragon_shctx_t), ngx_pagesize)
          + 8 * ngx_pagesize;

    if (size < (ssize_t) min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small: it needs at least %uzk",
                           &value[1], min / 1024);
        return NGX_CONF_ERROR;
    }

    zone = ngx_http_seadragon_zone_get(cf, &name);
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
    zone->fair = NGX_HTTP_SEADRAGON_FAIR_OFF;
    zone->prompt_weight = 1;
    zone->completion_weight = 1;
    zone->affinity = 0;
    zone->loaded = 1;

    if (ngx_http_seadragon_params_parse(cf, ngx_http_seadragon_zone_params,
                                        zone,
                                        "capacity=, tick=, max_queued=, "
                                        "max_queued_per_client=, max_wait=, "
                                        "aging=, fair=, tenant=, "
                                        "prompt_weight=, completion_weight=, "
                                        "affinity= or loaded=")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (zone->fair == NGX_HTTP_SEADRAGON_FAIR_TOKENS
        && zone->prompt_weight == 0 && zone->completion_weight == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "seadragon zone \"%V\" has fair=tokens with "
                           "prompt_weight=0 and completion_weight=0: no "
                           "token would count; give one of them a weight "
                           "of 1 or more, or use fair=requests", &name);
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


/* the parameters of seadragon_source that are more than a field */

static char *
ngx_http_seadragon_source_per_client(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    ngx_http_seadragon_source_t  *source = conf;

    if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        source->per_client_off = 1;
        source->max_queued_per_client = 0;
        return NGX_CONF_OK;
    }

    source->per_client_off = 0;

    return ngx_http_seadragon_param_number(cf, param, value, p, conf);
}


static char *
ngx_http_seadragon_source_endpoints(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    ngx_http_seadragon_source_t  *source = conf;

    return ngx_http_seadragon_endpoint_parse(cf, value, &source->endpoints);
}


static char *
ngx_http_seadragon_source_if(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, ngx_http_seadragon_param_t *p, void *conf)
{
    ngx_http_seadragon_source_t  *source = conf;

    ngx_http_compile_complex_value_t  ccv;

    if (value->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty condition in \"%V\": expected "
                           "if=$variable", param);
        return NGX_CONF_ERROR;
    }

    source->condition = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (source->condition == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = source->condition;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_http_seadragon_param_t  ngx_http_seadragon_source_params[] = {

    { ngx_string("priority="), ngx_http_seadragon_param_number,
      offsetof(ngx_http_seadragon_source_t, priority), 0, 1000,
      "priority must be a number from 0 to 1000, lower is served first" },

    { ngx_string("max_queued="), ngx_http_seadragon_param_number,
      offsetof(ngx_http_seadragon_source_t, max_queued), 1, 0,
      NGX_HTTP_SEADRAGON_MAX_QUEUED_ERROR },

    { ngx_string("max_queued_per_client="),
      ngx_http_seadragon_source_per_client,
      offsetof(ngx_http_seadragon_source_t, max_queued_per_client), 1, 0,
      "max_queued_per_client must be a whole number of requests, at "
      "least 1, or \"off\"" },

    { ngx_string("key"), ngx_http_seadragon_param_flag,
      offsetof(ngx_http_seadragon_source_t, require_key), 0, 0, NULL },

    { ngx_string("login"), ngx_http_seadragon_param_flag,
      offsetof(ngx_http_seadragon_source_t, require_login), 0, 0, NULL },

    { ngx_string("whitelist"), ngx_http_seadragon_param_flag,
      offsetof(ngx_http_seadragon_source_t, require_whitelist), 0, 0, NULL },

    { ngx_string("aging="), ngx_http_seadragon_param_aging,
      offsetof(ngx_http_seadragon_source_t, aging), 1, 0,
      NGX_HTTP_SEADRAGON_AGING_ERROR },

    { ngx_string("endpoints="), ngx_http_seadragon_source_endpoints,
      0, 0, 0, NULL },

    { ngx_string("if="), ngx_http_seadragon_source_if, 0, 0, 0, NULL },

    { ngx_null_string, NULL, 0, 0, 0, NULL }
};


/* seadragon_source NAME priority=N [if=CONDITION] [max_queued=N]
 *                  [max_queued_per_client=N|off] [key] [login]
 *                  [whitelist] [aging=TIME|off] [endpoints=KIND,...] */

char *
ngx_http_seadragon_source_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_seadragon_main_conf_t  *smcf = conf;

    ngx_str_t                    *value;
    ngx_http_seadragon_source_t  *source, *sources;

    value = cf->args->elts;

    /* the name must fit the source field of a key record */

    if (value[1].len == 0 || value[1].len >= SEADRAGON_KEY_SOURCE_LEN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid source name \"%V\": it must have 1 to "
                           "%d characters", &value[1],
                           SEADRAGON_KEY_SOURCE_LEN - 1);
        return NGX_CONF_ERROR;
    }

    /* the check the admin API makes of a key's source */

    if (!seadragon_name_valid((const char *) value[1].data, value[1].len,
                              SEADRAGON_KEY_SOURCE_LEN - 1, "_-"))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid source name \"%V\": use letters, "
                           "digits, \"_\" and \"-\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_seadragon_source_find(smcf, &value[1]) != NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate seadragon source \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
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
    source->priority = NGX_CONF_UNSET_UINT;
    source->aging = NGX_CONF_UNSET_MSEC;
    source->endpoints = NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE
                        |NGX_HTTP_SEADRAGON_ENDPOINT_INFO;

    if (ngx_http_seadragon_params_parse(cf, ngx_http_seadragon_source_params,
                                        source,
                                        "priority=, if=, max_queued=, "
                                        "max_queued_per_client=, key, login, "
                                        "whitelist, aging= or endpoints=")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (source->priority == NGX_CONF_UNSET_UINT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "seadragon source \"%V\" needs a priority, "
                           "such as priority=1", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* "login" is a credential; a source of one, by credentials alone */
    source->require_key |= source->require_login;

    if (source->condition == NULL && !source->require_key) {

        if (smcf->default_source != NGX_CONF_UNSET_UINT) {
            sources = smcf->sources.elts;

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


/* seadragon_queue ZONE | off */

char *
ngx_http_seadragon_queue_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_seadragon_loc_conf_t  *slcf = conf;

    ngx_str_t  *value;

    if (slcf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        slcf->zone = NULL;
        return NGX_CONF_OK;
    }

    slcf->zone = ngx_http_seadragon_zone_get(cf, &value[1]);
    if (slcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* seadragon_model ZONE MODEL slots=N */

char *
ngx_http_seadragon_model_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                           *name;
    size_t                            len;
    ngx_int_t                         n;
    ngx_str_t                        *value;
    ngx_uint_t                        i;
    ngx_http_seadragon_zone_t        *zone;
    ngx_http_seadragon_model_conf_t  *model;

    value = cf->args->elts;

    /* the gate keeps 64 bytes of a request's model, canonical */

    if (value[2].len == 0 || value[2].len > NGX_HTTP_SEADRAGON_MODEL_LEN - 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid model name \"%V\": it must have "
                           "1 to %d bytes", &value[2],
                           NGX_HTTP_SEADRAGON_MODEL_LEN - 1);
        return NGX_CONF_ERROR;
    }

    if (!seadragon_name_valid((const char *) value[2].data, value[2].len,
                              NGX_HTTP_SEADRAGON_MODEL_LEN - 1, "_-.:/")
        || value[2].data[value[2].len - 1] == ':'
        || value[2].data[0] == ':')
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid model name \"%V\": expected a model "
                           "such as \"nomic-embed-text\" or "
                           "\"llama3:70b\", of letters, digits and "
                           "\"_-.:/\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    name = ngx_pnalloc(cf->pool, NGX_HTTP_SEADRAGON_MODEL_LEN);
    if (name == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_http_seadragon_model_canonical(name,
                                             NGX_HTTP_SEADRAGON_MODEL_LEN,
                                             value[2].data, value[2].len);

    if (value[3].len <= sizeof("slots=") - 1
        || ngx_strncmp(value[3].data, "slots=", sizeof("slots=") - 1) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected slots=N, "
                           "the requests of this model that may run at "
                           "once", &value[3]);
        return NGX_CONF_ERROR;
    }

    n = ngx_atoi(value[3].data + sizeof("slots=") - 1,
                 value[3].len - (sizeof("slots=") - 1));

    if (n == NGX_ERROR || n < 1 || n > 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": slots must be a whole number "
                           "from 1 to 1024, the requests of this model "
                           "that may run at once", &value[3]);
        return NGX_CONF_ERROR;
    }

    /* the zone may be declared further on: zones_init() checks it is */

    zone = ngx_http_seadragon_zone_get(cf, &value[1]);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->models == NULL) {
        zone->models = ngx_array_create(cf->pool, 4,
                                    sizeof(ngx_http_seadragon_model_conf_t));
        if (zone->models == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    model = zone->models->elts;

    for (i = 0; i < zone->models->nelts; i++) {
        if (model[i].name.len == len
            && ngx_strncmp(model[i].name.data, name, len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate seadragon_model \"%*s\" for the "
                               "zone \"%V\", first in %s:%ui", len, name,
                               &value[1], model[i].conf_file,
                               model[i].conf_line);
            return NGX_CONF_ERROR;
        }
    }

    if (zone->models->nelts == NGX_HTTP_SEADRAGON_MODELS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many seadragon_model lines for the zone "
                           "\"%V\": at most %d", &value[1],
                           NGX_HTTP_SEADRAGON_MODELS);
        return NGX_CONF_ERROR;
    }

    model = ngx_array_push(zone->models);
    if (model == NULL) {
        return NGX_CONF_ERROR;
    }

    model->name.data = name;
    model->name.len = len;
    model->slots = n;
    model->conf_file = cf->conf_file->file.name.data;
    model->conf_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * Once every zone is declared: a zone named only by seadragon_model lines
 * is unknown, and a model's slots beyond the zone's capacity could never
 * be used, which is a mistake rather than a limit.
 */

char *
ngx_http_seadragon_zone_models_check(ngx_conf_t *cf,
    ngx_http_seadragon_zone_t *zone)
{
    ngx_uint_t                        i;
    ngx_http_seadragon_model_conf_t  *model;

    if (zone->models == NULL) {
        return NGX_CONF_OK;
    }

    model = zone->models->elts;

    if (zone->shm_zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"seadragon_model\" uses the unknown seadragon "
                      "zone \"%V\" in %s:%ui; declare it with "
                      "\"seadragon_zone %V:SIZE\"",
                      &zone->name, model[0].conf_file, model[0].conf_line,
                      &zone->name);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < zone->models->nelts; i++) {
        if (model[i].slots > zone->capacity) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "seadragon_model \"%V\" has slots=%ui, more than "
                          "the capacity=%ui of its zone \"%V\", so they "
                          "could never all run, in %s:%ui; give it at most "
                          "slots=%ui", &model[i].name, model[i].slots,
                          zone->capacity, &zone->name, model[i].conf_file,
                          model[i].conf_line, zone->capacity);
            return NGX_CONF_ERROR;
        }
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

void
ngx_http_seadragon_source_check_open(ngx_conf_t *cf,
    ngx_http_seadragon_main_conf_t *smcf)
{
    ngx_uint_t                    i, n, client, other;
    ngx_http_variable_t          *v;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_seadragon_source_t  *source, *deflt;
    u_char                        names[256];

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

        n = ngx_http_seadragon_condition_claims(v, source[i].condition,
                                                 names, sizeof(names),
                                                 &client, &other);

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


/*
 * What a condition is made of: the names of its variables, written to
 * names, and whether one is what the client sends (client) or one nginx
 * cannot see into (other).  Returns how many variables it has.
 */

static ngx_uint_t
ngx_http_seadragon_condition_claims(ngx_http_variable_t *v,
    ngx_http_complex_value_t *condition, u_char *names, size_t size,
    ngx_uint_t *client, ngx_uint_t *other)
{
    u_char      *p, *last;
    ngx_str_t   *name;
    ngx_uint_t   k, n, sends;

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

    *client = 0;
    *other = 0;
    p = names;
    last = names + size - 1;

    for (n = 0; condition->flushes
                && condition->flushes[n] != (ngx_uint_t) -1;
         n++)
    {
        name = &v[condition->flushes[n]].name;

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
            *client = 1;

        } else {
            *other = 1;
        }

        p = ngx_slprintf(p, last, "%s$%V", p == names ? "" : ", ", name);
    }

    *p = '\0';

    return n;
}
