
/*
 * Copyright (C) The Seadragon authors
 *
 * Types shared by the files of ngx_seadragon_module: the configuration,
 * the shared-zone layout of the queue (ngx_http_seadragon_zone.h) and the
 * per-request context; the logins' part is ngx_http_seadragon_auth.h.
 * The files include this header only.
 */


#ifndef _NGX_HTTP_SEADRAGON_MODULE_H_INCLUDED_
#define _NGX_HTTP_SEADRAGON_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <setjmp.h>

#include "ngx_http_seadragon_store_codec.h"

#include <yajl/yajl_gen.h>


#define NGX_HTTP_SEADRAGON_MAX_SOURCES     32
#define NGX_HTTP_SEADRAGON_NAME_LEN        32
#define NGX_HTTP_SEADRAGON_MODEL_LEN       64
#define NGX_HTTP_SEADRAGON_ADDR_LEN        48
/* "user:" or "key:" and a name of at most 63 bytes */
#define NGX_HTTP_SEADRAGON_PRINCIPAL_LEN   72
#define NGX_HTTP_SEADRAGON_JSON_MAX_DEPTH  512
#define NGX_HTTP_SEADRAGON_BUCKETS         12
/* "key:" and a key's name of up to 63 bytes ("user:" and a user's also
 * fits), or "addr:" and an address */
#define NGX_HTTP_SEADRAGON_CLIENT_LEN                                         \
    (sizeof("key:") - 1 + SEADRAGON_KEY_NAME_LEN)

/* fair shares within a priority (seadragon_zone fair=) */
#define NGX_HTTP_SEADRAGON_FAIR_OFF        0
#define NGX_HTTP_SEADRAGON_FAIR_TOKENS     1   /* by tokens served */
#define NGX_HTTP_SEADRAGON_FAIR_REQUESTS   2   /* by requests: round robin */
/* a tenant's counter moves by this many units per token at weight 1 */
#define NGX_HTTP_SEADRAGON_VTC_UNIT        1000
#define NGX_HTTP_SEADRAGON_WEIGHT_MAX      1000
#define NGX_HTTP_SEADRAGON_TENANT_LEN      NGX_HTTP_SEADRAGON_CLIENT_LEN
#define NGX_HTTP_SEADRAGON_TENANTS_IDLE    1024   /* idle tenants kept */
#define NGX_HTTP_SEADRAGON_MODELS          16     /* seadragon_model lines */
#define NGX_HTTP_SEADRAGON_RESIDENT        8      /* models in a view */
#define NGX_HTTP_SEADRAGON_SERVERS         4      /* upstream servers seen */
#define NGX_HTTP_SEADRAGON_SWAP_MODELS     32     /* then "other" */
#define NGX_HTTP_SEADRAGON_HISTORY         300    /* one sample a second */
/* models whose waiting entries have FIFOs of their own (affinity's index) */
#define NGX_HTTP_SEADRAGON_WAIT_MODELS     4
/* with fair shares, entries of those offered per source, then a walk */
#define NGX_HTTP_SEADRAGON_WAIT_BUDGET     64
/* a load_duration this long or longer is a model load (a swap) */
#define NGX_HTTP_SEADRAGON_LOAD_MS         250

#define NGX_HTTP_SEADRAGON_GATE_OPEN       0
#define NGX_HTTP_SEADRAGON_GATE_PAUSED     1
#define NGX_HTTP_SEADRAGON_GATE_DRAINING   2

/* what an endpoint of Ollama's API does, as bits of a source's allowance */
#define NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE  0x01
#define NGX_HTTP_SEADRAGON_ENDPOINT_INFO      0x02
#define NGX_HTTP_SEADRAGON_ENDPOINT_MANAGE    0x04
#define NGX_HTTP_SEADRAGON_ENDPOINT_ALL       0x07

/* the API a request speaks, which decides the shape of its errors */
#define NGX_HTTP_SEADRAGON_API_OLLAMA      0
#define NGX_HTTP_SEADRAGON_API_OPENAI      1

/* whether an endpoint streams its answer: by default, or when asked */
#define NGX_HTTP_SEADRAGON_STREAM_NEVER     0
#define NGX_HTTP_SEADRAGON_STREAM_DEFAULT   1   /* unless "stream": false */
#define NGX_HTTP_SEADRAGON_STREAM_ASKED     2   /* only with "stream": true */

/* a store that cannot be read: the queue and the admin API say the same */
#define NGX_HTTP_SEADRAGON_STORE_FAILED                                      \
    "the gateway cannot check access right now, please try again"
#define NGX_HTTP_SEADRAGON_STORE_RETRY      5
#define NGX_HTTP_SEADRAGON_STORE_RETRY_TEXT "5"   /* the same, as text */

#define ngx_http_seadragon_counter(name)                                     \
    offsetof(ngx_http_seadragon_counters_t, name)

#define NGX_HTTP_SEADRAGON_QUEUE_FULL                                        \
    "server busy, please try again.  maximum pending requests exceeded"


/* the shared zone's layout: the queue's types, by themselves */
#include "ngx_http_seadragon_zone.h"


/* a source as configured with seadragon_source */

typedef struct {
    ngx_str_t                        name;
    ngx_uint_t                       priority;
    ngx_uint_t                       max_queued;
    ngx_uint_t                       max_queued_per_client; /* 0: zone's */
    ngx_msec_t                       aging;           /* unset: the zone's */
    ngx_uint_t                       endpoints;       /* ENDPOINT_* bits */
    ngx_http_complex_value_t        *condition;       /* NULL: the default */
    u_char                          *conf_file;
    ngx_uint_t                       conf_line;
    ngx_uint_t                       require_key;     /* key or login */
    ngx_uint_t                       require_login;   /* a login only */
    ngx_uint_t                       require_whitelist;
    unsigned                         per_client_off:1; /* not the zone's */
} ngx_http_seadragon_source_t;


/*
 * The LMDB store of seadragon_store, opened by each worker: read-only,
 * and for the length of an admin API change read-write (env is one or
 * the other, never both: see ngx_http_seadragon_store.c).
 */

#define NGX_HTTP_SEADRAGON_STORE_REASON  512    /* bytes of a reason */

typedef struct {
    ngx_str_t                        path;
    size_t                           map_size;
    MDB_env                         *env;             /* NULL: closed */
    MDB_txn                         *txn;             /* reset between uses */
    seadragon_store_dbs_t            dbs;
    ngx_uint_t                       writable;        /* env is read-write */
    ngx_uint_t                       check_layout;    /* meta pages checked */
    int                              fd;              /* env's data.mdb */
    seadragon_store_file_t           file;            /* at the last check */
    ngx_file_info_t                  data_info;       /* of fd then */
    ngx_file_info_t                  lock_info;       /* lock.mdb at open */
    u_char                          *data_path;
    u_char                          *lock_path;
    u_char                          *conf_file;       /* of the directive */
    ngx_uint_t                       conf_line;
    ngx_msec_t                       retry;           /* next reopen */
    ngx_msec_t                       logged_at;
    u_char                          *fault_lo;        /* around the map */
    u_char                          *fault_hi;
    ngx_event_t                      tick;
    u_char                           reason[NGX_HTTP_SEADRAGON_STORE_REASON];
    u_char                           logged[NGX_HTTP_SEADRAGON_STORE_REASON];
} ngx_http_seadragon_store_t;


/* a change of the admin API, in a write transaction: an MDB_* code */
typedef int (*ngx_http_seadragon_store_change_pt)(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data);

/* a listing's step: one entry of a database, read in the map */
typedef void (*ngx_http_seadragon_store_each_pt)(MDB_val *key, MDB_val *value,
    void *data);


typedef struct ngx_http_seadragon_main_conf_s
    ngx_http_seadragon_main_conf_t;

typedef struct {
    ngx_str_t                        name;
    ngx_shm_zone_t                  *shm_zone;    /* NULL until declared */
    ngx_http_seadragon_main_conf_t  *smcf;
    ngx_http_seadragon_shctx_t      *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_uint_t                       capacity;
    ngx_msec_t                       tick;
    ngx_uint_t                       max_queued;
    ngx_uint_t                       max_queued_per_client; /* 0: none */
    ngx_uint_t                       client_caps;     /* a cap applies */
    ngx_msec_t                       max_wait;
    ngx_msec_t                       aging;           /* 0: off */
    ngx_uint_t                      *slot;            /* source -> zone slot */
    ngx_uint_t                      *client_cap;      /* source -> its cap */
    ngx_uint_t                       fair;            /* FAIR_* */
    ngx_uint_t                       prompt_weight;   /* default 1 */
    ngx_uint_t                       completion_weight; /* default 1 */
    ngx_msec_t                       affinity;        /* 0: off */
    ngx_uint_t                       loaded;          /* default 1 */
    ngx_http_complex_value_t        *tenant;          /* NULL: the address */
    ngx_array_t                     *models;          /* ..._model_conf_t */
    ngx_uint_t                       nparked;         /* in this worker */
    ngx_http_seadragon_owner_t      *owner;           /* this worker's */
    ngx_msec_t                       reaped;          /* last check when full */
    u_char                          *conf_file;
    ngx_uint_t                       conf_line;
} ngx_http_seadragon_zone_t;


/* seadragon_model ZONE MODEL slots=N */

typedef struct {
    ngx_str_t                        name;            /* canonical */
    ngx_uint_t                       slots;
    u_char                          *conf_file;
    ngx_uint_t                       conf_line;
} ngx_http_seadragon_model_conf_t;


/*
 * The zone's trees by name (clients, keys with limits, tenants) key their
 * nodes by FNV-1a of the name, continued from "h" (NGX_HTTP_SEADRAGON_FNV
 * for a fresh hash), and order the names of equal keys by length, then
 * bytes (any order will do).
 */

#define NGX_HTTP_SEADRAGON_FNV        2166136261u
#define NGX_HTTP_SEADRAGON_FNV_PRIME  16777619u

static ngx_inline ngx_rbtree_key_t
ngx_http_seadragon_name_hash(uint32_t h, u_char *name, size_t len)
{
    while (len--) {
        h = (h ^ *name++) * NGX_HTTP_SEADRAGON_FNV_PRIME;
    }

    return h;
}


static ngx_inline ngx_int_t
ngx_http_seadragon_name_cmp(u_char *a, size_t alen, u_char *b, size_t blen)
{
    if (alen != blen) {
        return alen < blen ? -1 : 1;
    }

    return ngx_memcmp(a, b, alen);
}


/* whether a zone, its lock held, may give a page to limits or usage */
#define ngx_http_seadragon_zone_spare(zone)                                  \
    ngx_http_seadragon_queue_spare((zone)->shpool, (zone)->max_queued,       \
                                   (zone)->capacity)


struct ngx_http_seadragon_main_conf_s {
    ngx_array_t                      sources;   /* of ..._source_t */
    ngx_array_t                      zones;     /* of ..._zone_t * */
    ngx_http_seadragon_store_t      *store;
    ngx_uint_t                       default_source;
    ngx_msec_t                       min_tick;
};


#define NGX_HTTP_SEADRAGON_ADMIN_AUTH_KEY    1
#define NGX_HTTP_SEADRAGON_ADMIN_AUTH_NGINX  2


/* a location of seadragon_auth (ngx_http_seadragon_auth.c) */

typedef struct {
    ngx_http_seadragon_zone_t       *zone;
    time_t                           expires;         /* a token's life */
    ngx_uint_t                       attempts;        /* 0: off */
    time_t                           attempts_period; /* seconds */
#if (NGX_THREADS)
    ngx_thread_pool_t               *thread_pool;     /* of the hashes */
#endif
    u_char                          *conf_file;
    ngx_uint_t                       conf_line;
} ngx_http_seadragon_auth_conf_t;


/* a location of seadragon_admin */

typedef struct {
    ngx_http_seadragon_zone_t       *zone;
    ngx_uint_t                       auth;
#if (NGX_THREADS)
    ngx_thread_pool_t               *thread_pool;     /* users' passwords */
#endif
    u_char                          *conf_file;
    ngx_uint_t                       conf_line;
} ngx_http_seadragon_admin_conf_t;


typedef struct {
    ngx_http_seadragon_zone_t       *zone;
    ngx_http_seadragon_admin_conf_t *admin;
    ngx_http_seadragon_zone_t       *health_zone;
    ngx_str_t                        health_uri;
    ngx_str_t                        health_ps_uri;   /* ps=; "": none */
    ngx_http_seadragon_zone_t       *metrics_zone;
    ngx_flag_t                       json_errors;
    ngx_flag_t                       pass_key;
    ngx_msec_t                       stall_timeout;   /* 0: off */
    ngx_flag_t                       usage;           /* seadragon_usage */
    ngx_http_seadragon_auth_conf_t  *auth;            /* seadragon_auth */
} ngx_http_seadragon_loc_conf_t;


/* an endpoint of Ollama's native API or of its OpenAI-compatible one */

typedef struct {
    ngx_str_t                        name;       /* after /api/ or /v1/ */
    ngx_uint_t                       api;
    ngx_uint_t                       kind;       /* one ENDPOINT_* bit */
    ngx_uint_t                       prefix;     /* "blobs/" + a digest */
    ngx_uint_t                       stream;     /* STREAM_* */
} ngx_http_seadragon_endpoint_t;


/*
 * What one answer used: Ollama's own figures (the last line of a stream,
 * a whole answer, OpenAI's "usage"), or, for an OpenAI stream without
 * usage, the content chunks counted (one token each) and marked
 * estimated.  Filled in by the body filter as the answer passes.
 */

typedef struct {
    uint64_t                         prompt_tokens;
    uint64_t                         completion_tokens;
    uint64_t                         total_ms;        /* total_duration */
    uint64_t                         load_ms;         /* load_duration */
    uint64_t                         prompt_ms;       /* prompt_eval_... */
    uint64_t                         generation_ms;   /* eval_duration */
    unsigned                         counted:1;       /* the answer was read */
    unsigned                         reported:1;      /* Ollama's figures */
    unsigned                         estimated:1;     /* chunks counted */
} ngx_http_seadragon_usage_t;


/*
 * Usage kept in the zone (ngx_http_seadragon_usage.c): a row per day,
 * principal ("key:NAME" or "source:NAME") and model, with what the zone
 * counted and what is not in the store yet; and per model, for the
 * metrics, the tokens of each source, Ollama's load time and a histogram
 * of the tokens per second of its answers.  Both are bounded: what does
 * not fit is counted as dropped, never lost silently.
 */

#define NGX_HTTP_SEADRAGON_USAGE_ROWS      4096
#define NGX_HTTP_SEADRAGON_USAGE_MODELS    64     /* then "other" */
#define NGX_HTTP_SEADRAGON_USAGE_TPS       10     /* histogram buckets */

typedef struct {
    ngx_rbtree_node_t                node;      /* key: crc32 of the names */
    ngx_queue_t                      link;      /* in usage->rows */
    uint32_t                         day;       /* days since 1970-01-01 */
    size_t                           plen;
    size_t                           mlen;
    u_char                           principal[SEADRAGON_USAGE_PRINCIPAL_LEN];
    u_char                           model[SEADRAGON_USAGE_MODEL_LEN];
    seadragon_usage_record_t         total;     /* counted in this zone */
    seadragon_usage_record_t         pending;   /* not in the store yet */
    seadragon_usage_record_t         writing;   /* in a worker's write */
    uint64_t                         writer;    /* its token; 0: none */
    time_t                           writing_since;
} ngx_http_seadragon_usage_row_t;


typedef struct {
    u_char                           model[SEADRAGON_USAGE_MODEL_LEN];
    size_t                           mlen;
    uint64_t                         load_ms;
    uint64_t                         tokens[NGX_HTTP_SEADRAGON_MAX_SOURCES][2];
    uint64_t                         tps[NGX_HTTP_SEADRAGON_USAGE_TPS];
    uint64_t                         tps_count;
    uint64_t                         tps_sum;   /* tokens/s, thousandths */
} ngx_http_seadragon_usage_model_t;


typedef struct ngx_http_seadragon_usage_shm_s {
    ngx_rbtree_t                     tree;      /* of rows */
    ngx_rbtree_node_t                sentinel;
    ngx_queue_t                      rows;
    ngx_uint_t                       nrows;
    ngx_uint_t                       npending;  /* rows not yet written */
    ngx_uint_t                       nmodels;
    ngx_http_seadragon_usage_model_t
                        *models[NGX_HTTP_SEADRAGON_USAGE_MODELS + 1];
    uint64_t                         dropped;   /* answers not kept */
    uint64_t                         dropped_metrics;
    uint64_t                         written;   /* rows settled as written */
} ngx_http_seadragon_usage_shm_t;


/* a row taken for a write, copied out of the zone */

typedef struct {
    ngx_http_seadragon_usage_row_t  *row;
    uint32_t                         day;
    size_t                           plen;
    size_t                           mlen;
    u_char                           principal[SEADRAGON_USAGE_PRINCIPAL_LEN];
    u_char                           model[SEADRAGON_USAGE_MODEL_LEN];
    seadragon_usage_record_t         delta;
} ngx_http_seadragon_usage_batch_t;


/* upper bounds of the tokens-per-second histogram */
extern ngx_uint_t  ngx_http_seadragon_usage_tps_buckets[
                                               NGX_HTTP_SEADRAGON_USAGE_TPS];


/* the tenant a request is to wait as, found before the zone is locked */

typedef struct {
    u_char                           name[NGX_HTTP_SEADRAGON_TENANT_LEN];
    size_t                           len;             /* 0: fair= off */
    ngx_uint_t                       weight;
    uint64_t                         estimate;        /* prompt tokens */
    ngx_http_seadragon_tenant_t     *tenant;
    unsigned                         created:1;       /* not yet in tree */
} ngx_http_seadragon_fair_place_t;


typedef enum {
    NGX_HTTP_SEADRAGON_NEW = 0,
    NGX_HTTP_SEADRAGON_READING_BODY,
    NGX_HTTP_SEADRAGON_BODY_READ,
    NGX_HTTP_SEADRAGON_PARKED,
    NGX_HTTP_SEADRAGON_ADMITTED,
    NGX_HTTP_SEADRAGON_BYPASSED,
    NGX_HTTP_SEADRAGON_REJECTED
} ngx_http_seadragon_state_e;


typedef struct {
    ngx_http_request_t              *request;
    ngx_http_seadragon_zone_t       *zone;
    ngx_http_seadragon_entry_t      *entry;
    ngx_event_t                      wake;       /* admission or max wait */
    ngx_uint_t                       state;
    ngx_uint_t                       source;     /* index in main conf */
    ngx_http_seadragon_endpoint_t   *endpoint;   /* NULL: unknown */
    ngx_uint_t                       api;        /* API_OLLAMA, ... */
    ngx_str_t                        model;
    ngx_str_t                        key;        /* as the client sent it */
    ngx_str_t                        key_name;   /* of a valid key */
    ngx_str_t                        user_name;  /* of a valid token */
    ngx_uint_t                       access;     /* the access verdict */
    ngx_str_t                        error;      /* message of our error */
    ngx_str_t                        error_body; /* its JSON */
    ngx_msec_t                       enqueued;
    ngx_msec_t                       wait;       /* ms spent parked */
    ngx_uint_t                       position;   /* 1 = first in line */
    uint64_t                         id;
    ngx_http_request_t              *health_request;
    ngx_uint_t                       health_status;
    ngx_msec_t                       health_started;
    ngx_msec_t                       health_time;
    ngx_http_request_t              *ps_request; /* Ollama's /api/ps */
    ngx_str_t                       *ps_models;  /* what it listed */
    ngx_uint_t                       ps_nmodels;
    ngx_str_t                        ps_server;  /* the server it asked */
    off_t                            ps_size;    /* of its answer, kept */
    u_char                           server[NGX_HTTP_SEADRAGON_ADDR_LEN];
    size_t                           server_len; /* the one that answered */
    ngx_event_t                      stall;      /* the client takes nothing */
    off_t                            stall_mark; /* what it had taken */
    ngx_msec_t                       stall_since;
    ngx_http_seadragon_usage_t       usage;
    void                            *usage_parser; /* its reading state */
    ngx_http_seadragon_limits_t      limits;     /* of its key */
    ngx_http_seadragon_limit_t      *limit;      /* the zone's, while held */
    ngx_http_seadragon_limit_hold_t *limit_hold; /* NULL: not in a record */
    ngx_str_t                        admin_name; /* PATCH keys/NAME */
    void                            *auth;       /* its thread task */

    unsigned                         classified:1;
    unsigned                         endpoint_found:1;
    unsigned                         manage_like:1;
    unsigned                         health_done:1;
    unsigned                         ps_done:1;
    unsigned                         ps_cut:1;   /* too big: dropped */
    unsigned                         ps_ok:1;    /* a listing was read */
    unsigned                         admin_keys:1;
    unsigned                         key_taken:1;
    unsigned                         key_bearer:1; /* key: Authorization */
    unsigned                         queued:1;
    unsigned                         stream:1;
    unsigned                         stream_set:1;
    unsigned                         holds_slot:1;
    unsigned                         released:1;
    unsigned                         replace_error:1;
    unsigned                         error_sent:1;
    unsigned                         last_sent:1;
    unsigned                         response_started:1;
    unsigned                         sse:1;
    unsigned                         stream_broken:1;
    unsigned                         tracked:1;  /* in zone->owner */
    unsigned                         stall_watched:1;
    unsigned                         stalled:1;
    unsigned                         quota:1;    /* refused by a limit */
    unsigned                         usage_kept:1; /* in the zone */
} ngx_http_seadragon_ctx_t;


extern ngx_module_t  ngx_seadragon_module;


/* what classification found out about the request's right to be served */

typedef enum {
    NGX_HTTP_SEADRAGON_ACCESS_OK = 0,
    NGX_HTTP_SEADRAGON_ACCESS_KEY_REQUIRED,
    NGX_HTTP_SEADRAGON_ACCESS_KEY_INVALID,
    NGX_HTTP_SEADRAGON_ACCESS_KEY_EXPIRED,
    NGX_HTTP_SEADRAGON_ACCESS_KEY_DISABLED,
    NGX_HTTP_SEADRAGON_ACCESS_KEY_SOURCE,
    NGX_HTTP_SEADRAGON_ACCESS_NOT_WHITELISTED,
    NGX_HTTP_SEADRAGON_ACCESS_STORE_ERROR,
    NGX_HTTP_SEADRAGON_ACCESS_LOGIN_REQUIRED,
    NGX_HTTP_SEADRAGON_ACCESS_LOGIN_INVALID,
    NGX_HTTP_SEADRAGON_ACCESS_USER_DISABLED,
    NGX_HTTP_SEADRAGON_ACCESS_USER_SOURCE
} ngx_http_seadragon_access_e;


/* the implicit source of admin keys, unless one is configured */
#define NGX_HTTP_SEADRAGON_ADMIN_SOURCE  "admin"


/* a KEY=VALUE parameter of a directive and what sets it */

typedef struct ngx_http_seadragon_param_s  ngx_http_seadragon_param_t;

typedef char *(*ngx_http_seadragon_param_set_pt)(ngx_conf_t *cf,
    ngx_str_t *param, ngx_str_t *value, ngx_http_seadragon_param_t *p,
    void *conf);

struct ngx_http_seadragon_param_s {
    ngx_str_t                        name;    /* "tick=", or "key" whole */
    ngx_http_seadragon_param_set_pt  set;
    size_t                           offset;  /* of the field it sets */
    ngx_uint_t                       low;     /* of a number or a time */
    ngx_uint_t                       high;    /* 0: no upper bound */
    char                            *error;   /* what the value must be */
};


/*
 * A JSON answer being written: "failed" remembers that a yajl_gen_*
 * call did not succeed, so that a half-written answer never goes out.
 */

typedef struct {
    yajl_gen                              gen;
    ngx_pool_t                           *pool;
    ngx_uint_t                            failed;
} ngx_http_seadragon_json_t;


/* an endpoint of the admin API: the route after the location, its argument */

typedef ngx_int_t (*ngx_http_seadragon_admin_handler_pt)(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);


/* ngx_http_seadragon_conf.c */

ngx_http_seadragon_zone_t *ngx_http_seadragon_zone_get(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_int_t ngx_http_seadragon_source_find(ngx_http_seadragon_main_conf_t *smcf,
    ngx_str_t *name);
char *ngx_http_seadragon_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_seadragon_source_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_seadragon_queue_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_seadragon_model_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_seadragon_zone_models_check(ngx_conf_t *cf,
    ngx_http_seadragon_zone_t *zone);
void ngx_http_seadragon_source_check_open(ngx_conf_t *cf,
    ngx_http_seadragon_main_conf_t *smcf);

/* ngx_http_seadragon_variables.c */
ngx_int_t ngx_http_seadragon_variables_add(ngx_conf_t *cf);

/* ngx_http_seadragon_admin.c */
/* the names of the gate states, by NGX_HTTP_SEADRAGON_GATE_* */
extern char *ngx_http_seadragon_gate_states[];
char *ngx_http_seadragon_admin_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_seadragon_admin_json.c */
ngx_int_t ngx_http_seadragon_admin_error(ngx_http_request_t *r,
    ngx_uint_t status, char *message);
ngx_int_t ngx_http_seadragon_admin_not_allowed(ngx_http_request_t *r,
    char *allow, char *message);
ngx_int_t ngx_http_seadragon_admin_send(ngx_http_request_t *r,
    ngx_http_seadragon_json_t *j);
ngx_int_t ngx_http_seadragon_admin_list_send(ngx_http_request_t *r,
    ngx_http_seadragon_json_t *j, ngx_int_t rc);
ngx_int_t ngx_http_seadragon_json_begin(ngx_http_request_t *r,
    ngx_http_seadragon_json_t *j);
void ngx_http_seadragon_json_check(ngx_http_seadragon_json_t *j,
    yajl_gen_status status);
void ngx_http_seadragon_json_map_open(ngx_http_seadragon_json_t *j);
void ngx_http_seadragon_json_map_close(ngx_http_seadragon_json_t *j);
void ngx_http_seadragon_json_array_open(ngx_http_seadragon_json_t *j);
void ngx_http_seadragon_json_array_close(ngx_http_seadragon_json_t *j);
void ngx_http_seadragon_json_str(ngx_http_seadragon_json_t *j,
    char *s);
void ngx_http_seadragon_json_text(ngx_http_seadragon_json_t *j,
    u_char *data, size_t len);
void ngx_http_seadragon_json_field(ngx_http_seadragon_json_t *j,
    char *key, u_char *value, size_t len);
void ngx_http_seadragon_json_int(ngx_http_seadragon_json_t *j,
    char *key, long long value);
void ngx_http_seadragon_json_seconds(ngx_http_seadragon_json_t *j,
    char *key, ngx_msec_t ms);

/* ngx_http_seadragon_admin_store.c */
ngx_int_t ngx_http_seadragon_admin_store(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);
/* the admin API's writes: NGX_OK, or the status and message to answer */
ngx_uint_t ngx_http_seadragon_admin_write_begin(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, MDB_txn **txn, char **message);
ngx_uint_t ngx_http_seadragon_admin_commit(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, int rc, char **message);

/* ngx_http_seadragon_health.c */
extern ngx_http_seadragon_stat_t  ngx_http_seadragon_stats[]; /* NULL name */
extern char  *ngx_http_seadragon_stat_groups[];  /* by kind: "rejected".. */
uint64_t ngx_http_seadragon_stat_value(ngx_http_seadragon_counters_t *c,
    ngx_http_seadragon_stat_t *stat);
char *ngx_http_seadragon_health_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_seadragon_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_seadragon_health_access(ngx_http_request_t *r,
    ngx_http_seadragon_loc_conf_t *slcf);

/* ngx_http_seadragon_classify.c */
ngx_http_seadragon_ctx_t *ngx_http_seadragon_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_seadragon_classify(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
ngx_int_t ngx_http_seadragon_body_parse(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
ngx_int_t ngx_http_seadragon_access_check(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
ngx_int_t ngx_http_seadragon_key_take(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);

/* ngx_http_seadragon_endpoint.c */
void ngx_http_seadragon_endpoint_find(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
ngx_int_t ngx_http_seadragon_endpoint_check(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
char *ngx_http_seadragon_endpoint_parse(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t *endpoints);

/* ngx_http_seadragon_store.c */
char *ngx_http_seadragon_store_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_seadragon_store_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_seadragon_store_init_process(ngx_cycle_t *cycle);
void ngx_http_seadragon_store_exit_process(ngx_cycle_t *cycle);
/* a read of the store, run inside the guard by store_read() */
typedef int (*ngx_http_seadragon_store_read_pt)(
    ngx_http_seadragon_store_t *store, void *data);
ngx_int_t ngx_http_seadragon_store_read(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, const char *what, ngx_http_seadragon_store_read_pt read,
    void *data);
ngx_int_t ngx_http_seadragon_store_walk(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, MDB_dbi dbi, ngx_http_seadragon_store_each_pt each,
    void *data);
ngx_int_t ngx_http_seadragon_store_write_begin(
    ngx_http_seadragon_store_t *store, ngx_log_t *log, MDB_txn **txn);
int ngx_http_seadragon_store_write(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, MDB_txn *txn, ngx_http_seadragon_store_change_pt change,
    void *data);
void ngx_http_seadragon_store_fail(ngx_http_seadragon_store_t *store,
    const char *fmt, ...);

/* ngx_http_seadragon_store_lookup.c: the lookups of a request's path */
ngx_int_t ngx_http_seadragon_store_whitelisted(
    ngx_http_seadragon_store_t *store, ngx_connection_t *c);
ngx_int_t ngx_http_seadragon_store_key(ngx_http_seadragon_store_t *store,
    ngx_connection_t *c, ngx_str_t *key, seadragon_key_record_t *record);
ngx_int_t ngx_http_seadragon_store_usage_sum(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, ngx_str_t *principal, uint32_t day,
    seadragon_usage_record_t *sum);

ngx_int_t ngx_http_seadragon_store_user(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, ngx_str_t *name, seadragon_user_record_t *record);
ngx_int_t ngx_http_seadragon_store_secrets(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, seadragon_secret_t *current, seadragon_secret_t *previous,
    ngx_uint_t *has_previous);

/* ngx_http_seadragon_store_guard.c: the fault guard, the file checks */
ngx_int_t ngx_http_seadragon_store_guard_install(ngx_log_t *log);
void ngx_http_seadragon_store_guard_remove(void);
ngx_int_t ngx_http_seadragon_store_check(ngx_http_seadragon_store_t *store,
    ngx_uint_t force);
ngx_int_t ngx_http_seadragon_store_check_paths(
    ngx_http_seadragon_store_t *store);

extern sigjmp_buf *volatile  ngx_http_seadragon_store_jmp;
extern volatile int          ngx_http_seadragon_store_signo;
extern void *volatile        ngx_http_seadragon_store_addr;
extern u_char               *ngx_http_seadragon_store_lo;
extern u_char               *ngx_http_seadragon_store_hi;

/* ngx_http_seadragon_queue.c: the zone's data structure, no requests */
void ngx_http_seadragon_queue_init(ngx_http_seadragon_shctx_t *sh,
    time_t now);
ngx_int_t ngx_http_seadragon_queue_source_slot(ngx_http_seadragon_shctx_t *sh,
    ngx_str_t *name, ngx_uint_t priority, ngx_uint_t max_queued,
    ngx_msec_t aging);
ngx_uint_t ngx_http_seadragon_queue_effective(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now);
void ngx_http_seadragon_queue_push(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry);
ngx_uint_t ngx_http_seadragon_queue_position(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now);
ngx_http_seadragon_entry_t *ngx_http_seadragon_queue_head(
    ngx_http_seadragon_shctx_t *sh, ngx_msec_t now);
ngx_uint_t ngx_http_seadragon_queue_spare(ngx_slab_pool_t *shpool,
    ngx_uint_t max_queued, ngx_uint_t capacity);
ngx_uint_t ngx_http_seadragon_queue_order(ngx_http_seadragon_shctx_t *sh,
    ngx_msec_t now, ngx_http_seadragon_entry_t **out, ngx_uint_t max);
void ngx_http_seadragon_queue_remove(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry);
void ngx_http_seadragon_queue_grant(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now);
void ngx_http_seadragon_queue_owner_add(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_owner_t *owner);
ngx_uint_t ngx_http_seadragon_queue_foreign_owners(
    ngx_http_seadragon_shctx_t *sh, uint64_t token,
    ngx_http_seadragon_owner_t *out, ngx_uint_t max, ngx_uint_t *entries);
ngx_http_seadragon_owner_t *ngx_http_seadragon_queue_purge(
    ngx_http_seadragon_shctx_t *sh, ngx_pid_t pid, uint64_t token,
    ngx_queue_t *out, ngx_uint_t *entries, ngx_uint_t *requests);
uint64_t ngx_http_seadragon_queue_parse_start(u_char *stat, size_t len,
    ngx_uint_t *dead);
ngx_http_seadragon_client_t *ngx_http_seadragon_queue_client_find(
    ngx_http_seadragon_shctx_t *sh, u_char *name, size_t len);
void ngx_http_seadragon_queue_client_insert(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_client_t *client, u_char *name, size_t len);

/*
 * ngx_http_seadragon_queue_fair.c: fair shares, affinity and per-model
 * slots, pure like the queue.  queue_head() (in the queue) gives what
 * this file chooses: see the comment at its top for the order.
 */
ngx_http_seadragon_entry_t *ngx_http_seadragon_queue_choose(
    ngx_http_seadragon_shctx_t *sh, ngx_msec_t now);
ngx_uint_t ngx_http_seadragon_queue_resident(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry);
ngx_http_seadragon_tenant_t *ngx_http_seadragon_queue_tenant_find(
    ngx_http_seadragon_shctx_t *sh, ngx_uint_t source, u_char *name,
    size_t len);
void ngx_http_seadragon_queue_tenant_insert(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_tenant_t *tenant, ngx_uint_t source, u_char *name,
    size_t len, ngx_uint_t weight);
ngx_http_seadragon_tenant_t *ngx_http_seadragon_queue_tenant_trim(
    ngx_http_seadragon_shctx_t *sh, ngx_uint_t keep);
void ngx_http_seadragon_queue_charge(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, uint64_t prompt, uint64_t completion);
ngx_int_t ngx_http_seadragon_queue_model_slot(ngx_http_seadragon_shctx_t *sh,
    u_char *name, size_t len);
ngx_int_t ngx_http_seadragon_queue_models_set(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_model_conf_t *models, ngx_uint_t n);
/* the queue's own hooks into queue_fair.c */
void ngx_http_seadragon_queue_fair_init(ngx_http_seadragon_shctx_t *sh);
void ngx_http_seadragon_queue_fair_source(
    ngx_http_seadragon_shm_source_t *src);
void ngx_http_seadragon_queue_wait_enter(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry);
void ngx_http_seadragon_queue_wait_leave(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry);
void ngx_http_seadragon_queue_fair_push(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry);
void ngx_http_seadragon_queue_fair_grant(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now);
void ngx_http_seadragon_queue_fair_leave(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry);
ngx_uint_t ngx_http_seadragon_queue_fair_before(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_entry_t *a,
    ngx_http_seadragon_entry_t *b, ngx_msec_t now);

/* ngx_http_seadragon_gate_fair.c: a request's tenant, under the gate */
ngx_int_t ngx_http_seadragon_fair_prepare(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_fair_place_t *place);
ngx_int_t ngx_http_seadragon_fair_tenant_locked(
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_fair_place_t *place);
void ngx_http_seadragon_fair_drop_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_fair_place_t *place);
void ngx_http_seadragon_fair_enter_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_fair_place_t *place,
    ngx_http_seadragon_entry_t *entry);
void ngx_http_seadragon_fair_leave_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_entry_t *entry);
void ngx_http_seadragon_fair_trim_locked(ngx_http_seadragon_zone_t *zone);

/* ngx_http_seadragon_queue_tenant.c: tenants and models by name */
void ngx_http_seadragon_queue_tenant_init(ngx_http_seadragon_shctx_t *sh);

/* ngx_http_seadragon_resident.c: which models are loaded, no requests */
size_t ngx_http_seadragon_model_canonical(u_char *dst, size_t size,
    u_char *src, size_t len);
void ngx_http_seadragon_resident_dispatch(ngx_http_seadragon_shctx_t *sh,
    u_char *model, size_t len, ngx_msec_t now, time_t now_sec);
void ngx_http_seadragon_resident_answer(ngx_http_seadragon_shctx_t *sh,
    u_char *server, size_t slen, u_char *model, size_t len,
    uint64_t load_ms, ngx_msec_t now, time_t now_sec);
void ngx_http_seadragon_resident_ps(ngx_http_seadragon_shctx_t *sh,
    u_char *server, size_t slen, ngx_str_t *models, ngx_uint_t n,
    ngx_msec_t now, time_t now_sec);

/* ngx_http_seadragon_resident_admin.c: GET models and the models' metrics */
void ngx_http_seadragon_health_ps_header(ngx_http_request_t *r);
void ngx_http_seadragon_health_ps_body(ngx_http_request_t *r,
    ngx_chain_t *in);
void ngx_http_seadragon_resident_peer(ngx_http_request_t *r);
ngx_int_t ngx_http_seadragon_resident_admin(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);
ngx_int_t ngx_http_seadragon_resident_metrics(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *zn, ngx_str_t *out);

/* ngx_http_seadragon_history.c: the queue's last minutes, no requests */
void ngx_http_seadragon_history_sample(ngx_http_seadragon_shctx_t *sh,
    time_t now_sec, ngx_msec_t now);
ngx_uint_t ngx_http_seadragon_history_read(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_sample_t *out, ngx_uint_t max);

/* ngx_http_seadragon_limit_window.c: a key's limits, no requests */
void ngx_http_seadragon_limit_init(ngx_http_seadragon_shctx_t *sh);
ngx_uint_t ngx_http_seadragon_limit_take(
    ngx_http_seadragon_limit_state_t *state,
    ngx_http_seadragon_limits_t *limits, time_t now, time_t *retry_after);
void ngx_http_seadragon_limit_give(ngx_http_seadragon_limit_state_t *state,
    uint64_t tokens, time_t now);
uint64_t ngx_http_seadragon_limit_tokens(
    ngx_http_seadragon_limit_state_t *state, time_t now);
ngx_http_seadragon_limit_t *ngx_http_seadragon_limit_find(
    ngx_http_seadragon_shctx_t *sh, u_char *name, size_t len);
void ngx_http_seadragon_limit_insert(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_limit_t *limit, u_char *name, size_t len,
    uint64_t tokens, time_t now);

/* ngx_http_seadragon_limit.c: the limits of a request's key */
ngx_int_t ngx_http_seadragon_limit_check(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
void ngx_http_seadragon_limit_end(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
void ngx_http_seadragon_limit_purge_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_owner_t *owner);

/* upper bounds of the wait-time histogram, in milliseconds */
extern ngx_msec_t  ngx_http_seadragon_wait_buckets[NGX_HTTP_SEADRAGON_BUCKETS];


/* ngx_http_seadragon_counters.c: statistics, not gate operations */
void ngx_http_seadragon_counters_add(ngx_http_seadragon_ctx_t *ctx,
    size_t counter);
void ngx_http_seadragon_counters_wait(ngx_http_seadragon_counters_t *counters,
    ngx_msec_t wait);

/* ngx_http_seadragon_gate.c */
extern uint64_t  ngx_http_seadragon_worker_token;
extern uint64_t  ngx_http_seadragon_worker_started;   /* 0: no /proc */

ngx_int_t ngx_http_seadragon_gate_track(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
void ngx_http_seadragon_gate_release(ngx_http_seadragon_ctx_t *ctx);
void ngx_http_seadragon_gate_free_clients_locked(
    ngx_http_seadragon_zone_t *zone);
ngx_int_t ngx_http_seadragon_gate_enter(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
ngx_int_t ngx_http_seadragon_gate_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_seadragon_gate_init_process(ngx_cycle_t *cycle);
void ngx_http_seadragon_gate_set_state(ngx_http_seadragon_zone_t *zone,
    ngx_uint_t state);
void ngx_http_seadragon_gate_exit_process(ngx_cycle_t *cycle);

/* ngx_http_seadragon_gate_wake.c: the workers' wake-up pipes */
extern uint64_t  ngx_http_seadragon_generation;
ngx_uint_t ngx_http_seadragon_gate_wakeable(ngx_uint_t worker);
void ngx_http_seadragon_gate_wake_worker(ngx_int_t worker);
void ngx_http_seadragon_gate_wake_watch(ngx_cycle_t *cycle);
void ngx_http_seadragon_gate_woken(void);

/* ngx_http_seadragon_gate_reap.c: the workers' records in the zone */
ngx_http_seadragon_owner_t *ngx_http_seadragon_gate_register_locked(
    ngx_http_seadragon_zone_t *zone);
ngx_uint_t ngx_http_seadragon_gate_reap(ngx_http_seadragon_zone_t *zone,
    ngx_uint_t *foreign);
uint64_t ngx_http_seadragon_gate_process_start(ngx_pid_t pid,
    ngx_uint_t *dead);
ngx_uint_t ngx_http_seadragon_gate_purge(ngx_http_seadragon_zone_t *zone,
    ngx_pid_t pid, uint64_t token);

/* ngx_http_seadragon_response.c */
ngx_int_t ngx_http_seadragon_response_init(ngx_conf_t *cf);
ngx_table_elt_t *ngx_http_seadragon_header_add(ngx_http_request_t *r,
    char *key, u_char *value, size_t len);
ngx_int_t ngx_http_seadragon_bearer_challenge(ngx_http_request_t *r);
ngx_int_t ngx_http_seadragon_reject(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_uint_t status, size_t counter,
    char *message, time_t retry_after);
ngx_int_t ngx_http_seadragon_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *content_type, u_char *data, size_t len);
ngx_int_t ngx_http_seadragon_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *data, size_t len);
ngx_int_t ngx_http_seadragon_body_replace(ngx_http_request_t *r,
    ngx_chain_t *in, ngx_http_seadragon_ctx_t *ctx);

/*
 * The reading of an answer's usage (ngx_http_seadragon_usage_parse.c) and
 * its JSON scan (ngx_http_seadragon_usage_scan.c): the parser's state.
 */

/* the longest key that is compared: longer ones are someone else's */
#define NGX_HTTP_SEADRAGON_USAGE_KEY_LEN  24

/* a figure beyond it stays there */
#define NGX_HTTP_SEADRAGON_USAGE_MAX      SEADRAGON_USAGE_COUNT_MAX

/* the levels followed: deeper, and elsewhere, a figure cannot be */
#define NGX_HTTP_SEADRAGON_USAGE_DEPTH    4


/* where the JSON scan is */

typedef enum {
    NGX_HTTP_SEADRAGON_SCAN_VALUE = 0,    /* a value is next */
    NGX_HTTP_SEADRAGON_SCAN_VALUE_OR_END, /* after "[" */
    NGX_HTTP_SEADRAGON_SCAN_KEY,          /* after "," in an object */
    NGX_HTTP_SEADRAGON_SCAN_KEY_OR_END,   /* after "{" */
    NGX_HTTP_SEADRAGON_SCAN_COLON,
    NGX_HTTP_SEADRAGON_SCAN_AFTER,        /* after a value: , } ] */
    NGX_HTTP_SEADRAGON_SCAN_STRING,
    NGX_HTTP_SEADRAGON_SCAN_ESCAPE,
    NGX_HTTP_SEADRAGON_SCAN_NUMBER,
    NGX_HTTP_SEADRAGON_SCAN_LITERAL,
    NGX_HTTP_SEADRAGON_SCAN_SKIP,         /* a container of no interest */
    NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING,  /* a string in it */
    NGX_HTTP_SEADRAGON_SCAN_SKIP_ESCAPE
} ngx_http_seadragon_scan_e;


/* the keys that matter, and the figures of the current top-level value */

typedef enum {
    NGX_HTTP_SEADRAGON_KEY_OTHER = 0,
    NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_COUNT,
    NGX_HTTP_SEADRAGON_KEY_EVAL_COUNT,
    NGX_HTTP_SEADRAGON_KEY_TOTAL_DURATION,
    NGX_HTTP_SEADRAGON_KEY_LOAD_DURATION,
    NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_DURATION,
    NGX_HTTP_SEADRAGON_KEY_EVAL_DURATION,
    NGX_HTTP_SEADRAGON_KEY_PROMPT_TOKENS,
    NGX_HTTP_SEADRAGON_KEY_COMPLETION_TOKENS,
    NGX_HTTP_SEADRAGON_KEY_NUMBERS,       /* the numbers above it */
    NGX_HTTP_SEADRAGON_KEY_DONE,
    NGX_HTTP_SEADRAGON_KEY_USAGE,
    NGX_HTTP_SEADRAGON_KEY_CHOICES,
    NGX_HTTP_SEADRAGON_KEY_DELTA,
    NGX_HTTP_SEADRAGON_KEY_CONTENT,
    NGX_HTTP_SEADRAGON_KEY_TEXT
} ngx_http_seadragon_usage_key_e;


#define NGX_HTTP_SEADRAGON_TARGET_CONTENT  NGX_HTTP_SEADRAGON_KEY_CONTENT
#define NGX_HTTP_SEADRAGON_TARGET_DONE     NGX_HTTP_SEADRAGON_KEY_DONE

#define ngx_http_seadragon_usage_bit(key)  ((ngx_uint_t) 1 << (key))

/* whether level d (1: the top-level value) is an array */
#define ngx_http_seadragon_usage_array(p, d)  ((p)->arrays >> ((d) - 1) & 1)

typedef struct {
    /* the scan */
    ngx_uint_t                       state;          /* SCAN_* */
    ngx_uint_t                       depth;          /* open containers */
    ngx_uint_t                       arrays;         /* bit d-1: level d */
    uint64_t                         skipped;        /* open in a SKIP */
    ngx_uint_t                       keys[NGX_HTTP_SEADRAGON_USAGE_DEPTH + 1];
    ngx_uint_t                       target;         /* of the value: KEY_* */
    u_char                           key[NGX_HTTP_SEADRAGON_USAGE_KEY_LEN];
    u_char                          *key_start;      /* in place, or NULL */
    size_t                           key_len;
    const char                      *literal;        /* "true", ... */
    ngx_uint_t                       literal_pos;
    uint64_t                         number;
    ngx_uint_t                       sse;            /* SSE_* */
    ngx_uint_t                       sse_pos;

    /* the figures of the current top-level value */
    uint64_t                         figures[NGX_HTTP_SEADRAGON_KEY_NUMBERS];
    ngx_uint_t                       seen;           /* their bits */

    /* the answer's */
    uint64_t                         chunks;         /* counted, one token */
    uint64_t                         eval_ns;        /* eval_duration */
    ngx_msec_t                       first;          /* the first chunk */
    ngx_msec_t                       last;           /* the last one */

    unsigned                         openai:1;
    unsigned                         streamed:1;     /* NDJSON or SSE */
    unsigned                         event_stream:1; /* SSE */
    unsigned                         in_key:1;       /* the string is a key */
    unsigned                         key_long:1;     /* or escaped */
    unsigned                         nonempty:1;     /* the string has bytes */
    unsigned                         negative:1;
    unsigned                         fraction:1;     /* . or e: not counted */
    unsigned                         value_true:1;
    unsigned                         line_content:1; /* chunk counted */
    unsigned                         done:1;         /* "done": true */
    unsigned                         not_done:1;     /* "done": false */
    unsigned                         load_seen:1;
    unsigned                         failed:1;       /* not JSON: stopped */
} ngx_http_seadragon_usage_parser_t;


/*
 * ngx_http_seadragon_usage_parse.c: what an answer used, read as it
 * passes (ctx->usage).  usage_start() from the header filter decides
 * whether the answer is read; usage_parse() reads each buffer from the
 * body filter; usage_finish() settles ctx->usage at the request's end (an
 * estimate's generation time) and may be called any number of times;
 * usage_rate() gives the completion tokens per second in hundredths
 * (NGX_DECLINED: unknown); usage_load_known() says whether Ollama
 * reported a load_duration.
 */
ngx_int_t ngx_http_seadragon_usage_start(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
void ngx_http_seadragon_usage_parse(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_chain_t *in);
void ngx_http_seadragon_usage_finish(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
ngx_int_t ngx_http_seadragon_usage_rate(ngx_http_seadragon_ctx_t *ctx,
    uint64_t *hundredths);
ngx_uint_t ngx_http_seadragon_usage_load_known(
    ngx_http_seadragon_ctx_t *ctx);
void ngx_http_seadragon_usage_string_end(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p);
void ngx_http_seadragon_usage_number_end(ngx_http_seadragon_usage_parser_t *p);
void ngx_http_seadragon_usage_line_end(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p);

/* ngx_http_seadragon_usage_scan.c: the JSON scan of one piece */
ngx_int_t ngx_http_seadragon_usage_scan(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last);

/* ngx_http_seadragon_usage.c: usage kept in the zone (its table) */
void ngx_http_seadragon_usage_end(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
void ngx_http_seadragon_usage_record_add(seadragon_usage_record_t *to,
    seadragon_usage_record_t *delta);
void ngx_http_seadragon_usage_sweep_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_usage_shm_t *usage, uint32_t keep_from);

/* ngx_http_seadragon_usage_write.c: the zone's usage written to the store */
ngx_int_t ngx_http_seadragon_usage_init_process(ngx_cycle_t *cycle);
void ngx_http_seadragon_usage_exit_process(ngx_cycle_t *cycle);

/* ngx_http_seadragon_usage_admin.c: GET usage and the usage metrics */
ngx_int_t ngx_http_seadragon_usage_admin(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);
ngx_int_t ngx_http_seadragon_usage_metrics(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *zn, ngx_str_t *out);
/* a Prometheus label's value, "\", '"' and a newline escaped, into p */
u_char *ngx_http_seadragon_usage_label(u_char *p, u_char *last, u_char *text,
    size_t len);

/* ngx_http_seadragon_admin_sched.c: GET history, GET tenants, their metrics */
ngx_int_t ngx_http_seadragon_admin_history(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);
ngx_int_t ngx_http_seadragon_admin_tenants(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);
ngx_int_t ngx_http_seadragon_tenant_metrics(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *zn, ngx_str_t *out);

/* a read of the store's usage of days from to to: NGX_OK, NGX_ERROR */
typedef void (*ngx_http_seadragon_store_usage_pt)(MDB_val *key,
    MDB_val *value, void *data);
ngx_int_t ngx_http_seadragon_store_usage_read(
    ngx_http_seadragon_store_t *store, ngx_log_t *log, uint32_t from,
    uint32_t to, ngx_http_seadragon_store_usage_pt each, void *data);

/* ngx_http_seadragon_release.c: the gate's body filter */
ngx_int_t ngx_http_seadragon_release_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


/* the logins' types and functions, after the types they use */
#include "ngx_http_seadragon_auth.h"


#endif /* _NGX_HTTP_SEADRAGON_MODULE_H_INCLUDED_ */
