
/*
 * Copyright (C) The Seadragon authors
 *
 * The shared zone's layout (seadragon_zone): the counters and stats of
 * the sources, the queue's entries and their owners, the clients, keys
 * with limits and tenants of its trees, the models' rows and slots, the
 * resident models, the history, and shctx, the zone's root.  Included by
 * ngx_http_seadragon_module.h only, where its macros are defined.
 */


#ifndef _NGX_HTTP_SEADRAGON_ZONE_H_INCLUDED_
#define _NGX_HTTP_SEADRAGON_ZONE_H_INCLUDED_


/* counters kept per source in the zone, since the zone was created */

typedef struct {
    ngx_atomic_uint_t                received;
    ngx_atomic_uint_t                served;
    ngx_atomic_uint_t                rejected_queue_full;
    ngx_atomic_uint_t                rejected_wait_timeout;
    ngx_atomic_uint_t                rejected_invalid;
    ngx_atomic_uint_t                rejected_unavailable;
    ngx_atomic_uint_t                aborted_parked;
    ngx_atomic_uint_t                aborted_streaming;
    ngx_atomic_uint_t                upstream_errors;
    ngx_atomic_uint_t                rejected_key;
    ngx_atomic_uint_t                rejected_whitelist;
    ngx_atomic_uint_t                rejected_draining;
    ngx_atomic_uint_t                rejected_endpoint;
    ngx_atomic_uint_t                rejected_client_cap;
    ngx_atomic_uint_t                aborted_reaped;  /* its worker died */
    ngx_atomic_uint_t                rejected_quota;  /* a key's limit */
    uint64_t                         wait_total_ms;
    uint64_t                         wait_max_ms;
    uint64_t                         waited;          /* admissions */
    uint64_t                         wait_buckets[NGX_HTTP_SEADRAGON_BUCKETS];
} ngx_http_seadragon_counters_t;


/*
 * The counters in the order the admin stats and the metrics show them:
 * X(field, kind, name, help).  A count has a metric of its own
 * (seadragon_requests_NAME_total, with its HELP); the refusals and the
 * clients gone are one metric each, by reason and by when, and one map
 * each in the admin stats; the waits are milliseconds, shown as seconds.
 */

#define NGX_HTTP_SEADRAGON_STATS(X)                                          \
    X(received, COUNT, "received",                                           \
      "Requests that reached a queue location.")                             \
    X(served, COUNT, "served",                                               \
      "Requests answered in full after the gate let them in.")               \
    X(upstream_errors, COUNT, "upstream_errors",                             \
      "Requests that Ollama failed (5xx or no answer).")                     \
    X(rejected_key, REJECTED, "key", NULL)                                   \
    X(rejected_whitelist, REJECTED, "whitelist", NULL)                       \
    X(rejected_invalid, REJECTED, "invalid", NULL)                           \
    X(rejected_queue_full, REJECTED, "queue_full", NULL)                     \
    X(rejected_wait_timeout, REJECTED, "wait_timeout", NULL)                 \
    X(rejected_draining, REJECTED, "draining", NULL)                         \
    X(rejected_unavailable, REJECTED, "unavailable", NULL)                   \
    X(rejected_endpoint, REJECTED, "endpoint", NULL)                         \
    X(rejected_client_cap, REJECTED, "client_cap", NULL)                     \
    X(rejected_quota, REJECTED, "quota", NULL)                               \
    X(aborted_parked, ABORTED, "parked", NULL)                               \
    X(aborted_streaming, ABORTED, "streaming", NULL)                         \
    X(aborted_reaped, ABORTED, "reaped", NULL)                               \
    X(wait_total_ms, SECONDS, "wait_total", NULL)                            \
    X(wait_max_ms, SECONDS, "wait_max", NULL)


typedef enum {
    NGX_HTTP_SEADRAGON_STAT_COUNT = 0,
    NGX_HTTP_SEADRAGON_STAT_REJECTED,
    NGX_HTTP_SEADRAGON_STAT_ABORTED,
    NGX_HTTP_SEADRAGON_STAT_SECONDS
} ngx_http_seadragon_stat_kind_e;


typedef struct {
    char                            *name;
    size_t                           offset;  /* in the counters */
    ngx_uint_t                       kind;    /* NGX_HTTP_SEADRAGON_STAT_* */
    char                            *help;    /* a count's, in the metrics */
} ngx_http_seadragon_stat_t;


/* a source as the zone knows it: matched by name across reloads */

typedef struct {
    u_char                           name[NGX_HTTP_SEADRAGON_NAME_LEN];
    size_t                           name_len;
    ngx_uint_t                       priority;
    ngx_uint_t                       max_queued;      /* 0: no own limit */
    ngx_msec_t                       aging;           /* 0: strict priority */
    ngx_queue_t                      waiting;         /* FIFO of entries */
    ngx_uint_t                       nwaiting;
    ngx_uint_t                       nrunning;
    ngx_http_seadragon_counters_t    counters;
    /* fair shares: its tenants with entries waiting, by counter */
    ngx_rbtree_t                     backlog;         /* of tenant->vnode */
    ngx_rbtree_node_t                backlog_sentinel;
    ngx_uint_t                       ntenants;        /* in the backlog */
    uint64_t                         vfloor;          /* last dispatched's */
    ngx_uint_t                       nplain;          /* waiting, no tenant */
    /* its waiting entries of each model of sh->wait_models, FIFO */
    ngx_queue_t                      mwaiting[NGX_HTTP_SEADRAGON_WAIT_MODELS];
} ngx_http_seadragon_shm_source_t;


typedef enum {
    NGX_HTTP_SEADRAGON_ENTRY_WAITING = 0,
    NGX_HTTP_SEADRAGON_ENTRY_RUNNING
} ngx_http_seadragon_entry_state_e;


/*
 * A worker process that uses the zone, from its start to its end.  It is
 * known by its pid and by when the kernel started it ("started", from
 * /proc; 0 where that is unknown), so that a pid reused by another process
 * does not keep a dead worker's entries alive.  "tracked" counts, per
 * source slot, the requests it has received and not yet counted as ended:
 * when it dies, they are counted as aborted.reaped.
 */

typedef struct {
    ngx_queue_t                      link;            /* in sh->owners */
    ngx_pid_t                        pid;
    uint64_t                         token;
    uint64_t                         started;
    ngx_uint_t                       entries;
    ngx_uint_t                       tracked[NGX_HTTP_SEADRAGON_MAX_SOURCES];
    ngx_queue_t                      limit_holds;     /* ..._limit_hold_t */
} ngx_http_seadragon_owner_t;


/*
 * A client with requests waiting in the zone, by key name ("key:NAME"),
 * user name ("user:NAME") or by address ("addr:ADDRESS"), while
 * max_queued_per_client applies; it leaves the tree when its last
 * request leaves the line.
 */

typedef struct {
    ngx_rbtree_node_t                node;            /* key: crc32 of name */
    ngx_queue_t                      link;            /* in clients_free */
    ngx_uint_t                       parked;
    size_t                           len;
    u_char                           name[NGX_HTTP_SEADRAGON_CLIENT_LEN];
} ngx_http_seadragon_client_t;


/*
 * What a key with limits has used, in the zone (ngx_http_seadragon_limit.c
 * and, for the arithmetic, ngx_http_seadragon_limit_window.c): requests in
 * the minute that began at minute_start, tokens of a UTC day (days since
 * 1970-01-01), requests parked or running now.
 */

typedef struct {
    time_t                           minute_start;    /* 0: none yet */
    uint64_t                         minute_requests;
    uint64_t                         day;
    uint64_t                         day_tokens;
    ngx_uint_t                       running;
} ngx_http_seadragon_limit_state_t;


/* a key's limits, from its record: 0 is no limit */

typedef struct {
    uint64_t                         rpm;
    uint64_t                         tokens_per_day;
    uint64_t                         max_concurrent;
    uint64_t                         weight;          /* fair share; 0: 1 */
} ngx_http_seadragon_limits_t;


/* which limit refused a request */

typedef enum {
    NGX_HTTP_SEADRAGON_LIMIT_NONE = 0,
    NGX_HTTP_SEADRAGON_LIMIT_RPM,
    NGX_HTTP_SEADRAGON_LIMIT_TOKENS,
    NGX_HTTP_SEADRAGON_LIMIT_CONCURRENT
} ngx_http_seadragon_limit_e;


/* a key with limits, by name in the zone's tree; it stays there */

typedef struct {
    ngx_rbtree_node_t                node;            /* key: hash of name */
    ngx_http_seadragon_limit_state_t state;
    size_t                           len;
    u_char                           name[SEADRAGON_KEY_NAME_LEN];
} ngx_http_seadragon_limit_t;


/*
 * A request of this worker counted as running by a key's limits, in its
 * worker's record: a worker that dies gives its requests' places back
 * when it is reaped.
 */

typedef struct {
    ngx_queue_t                      link;            /* in the owner's */
    ngx_http_seadragon_limit_t      *limit;
} ngx_http_seadragon_limit_hold_t;


/*
 * A tenant of fair shares (ngx_http_seadragon_queue_fair.c): a key
 * ("key:NAME"), a login's user ("user:NAME") or, for a request without
 * either, the value of the zone's
 * tenant= ("addr:VALUE"), within one source.  Known by name in
 * sh->tenants; while it has entries waiting, in its source's backlog,
 * ordered by counter (ties: the older head first); with nothing waiting
 * or running, in sh->tenants_idle, oldest first, until trimmed.  "rows"
 * has a bit for each row of sh->wait_models it has an entry waiting in
 * (and may have others: set at push, made exact when a walk sees all).
 */

typedef struct {
    ngx_rbtree_node_t                node;            /* key: hash of name */
    ngx_rbtree_node_t                vnode;           /* in the backlog */
    ngx_queue_t                      waiting;         /* entry->tlink, FIFO */
    ngx_queue_t                      idle;            /* in tenants_idle */
    ngx_uint_t                       source;          /* zone slot */
    ngx_uint_t                       nwaiting;
    ngx_uint_t                       nrunning;
    ngx_uint_t                       weight;          /* 1..WEIGHT_MAX */
    uint64_t                         counter;         /* VTC_UNIT a token */
    uint64_t                         tokens;          /* served, in all */
    uint64_t                         requests;        /* dispatched */
    time_t                           last;            /* last dispatched */
    size_t                           len;
    u_char                           name[NGX_HTTP_SEADRAGON_TENANT_LEN];
    u_char                           rows;            /* wait_models bits */
} ngx_http_seadragon_tenant_t;


/*
 * A model that waiting entries ask for (with the same model_slot), so
 * that affinity finds the oldest waiting entry of a resident model of
 * each source without a walk: the entries are in src->mwaiting[index].
 * A row with nwaiting 0 is free for another model; an entry that finds
 * no row counts in sh->wait_overflow (then the resident pass walks).
 */

typedef struct {
    u_char                           name[NGX_HTTP_SEADRAGON_MODEL_LEN];
    size_t                           len;
    ngx_int_t                        model_slot;
    ngx_uint_t                       nwaiting;        /* all sources */
} ngx_http_seadragon_wait_model_t;


/* a model of seadragon_model with its own slots, in the zone */

typedef struct {
    u_char                           name[NGX_HTTP_SEADRAGON_MODEL_LEN];
    size_t                           len;
    ngx_uint_t                       slots;           /* 0: none of its own */
    ngx_uint_t                       running;
} ngx_http_seadragon_model_slot_t;


/*
 * Which models are resident (ngx_http_seadragon_resident.c).  The gate's
 * view, which affinity= reads: the "loaded" models most recently
 * dispatched or seen loaded, least recently used first out; per upstream
 * server, what its answers (load_duration) and Ollama's /api/ps said.
 */

typedef struct {
    u_char                           name[NGX_HTTP_SEADRAGON_MODEL_LEN];
    size_t                           len;
    ngx_msec_t                       used;            /* monotonic ms */
    time_t                           since;           /* wall clock */
} ngx_http_seadragon_resident_model_t;


typedef struct {
    u_char                           name[NGX_HTTP_SEADRAGON_ADDR_LEN];
    size_t                           len;             /* "host:port" */
    ngx_uint_t                       nmodels;
    ngx_http_seadragon_resident_model_t
                                     models[NGX_HTTP_SEADRAGON_RESIDENT];
    time_t                           checked;         /* /api/ps; 0: never */
} ngx_http_seadragon_server_t;


typedef struct {
    u_char                           name[NGX_HTTP_SEADRAGON_MODEL_LEN];
    size_t                           len;
    uint64_t                         dispatched;
    uint64_t                         predicted;       /* not resident then */
    uint64_t                         loads;           /* load_duration seen */
    uint64_t                         load_ms;         /* of those loads */
} ngx_http_seadragon_swap_t;


typedef struct {
    ngx_uint_t                       nmodels;         /* the gate's view */
    ngx_http_seadragon_resident_model_t
                                     models[NGX_HTTP_SEADRAGON_RESIDENT];
    ngx_uint_t                       nservers;
    ngx_http_seadragon_server_t      servers[NGX_HTTP_SEADRAGON_SERVERS];
    ngx_uint_t                       nswaps;          /* the last: "other" */
    ngx_http_seadragon_swap_t        swaps[NGX_HTTP_SEADRAGON_SWAP_MODELS + 1];
} ngx_http_seadragon_resident_shm_t;


/* the queue over the last minutes, a sample a second, for the admin page */

typedef struct {
    time_t                           time;            /* 0: empty */
    uint32_t                         waiting;
    uint32_t                         running;
    uint32_t                         oldest_ms;       /* longest wait now */
    uint32_t                         admitted;        /* in that second */
} ngx_http_seadragon_sample_t;


typedef struct {
    ngx_uint_t                       next;            /* slot to write */
    ngx_http_seadragon_sample_t      samples[NGX_HTTP_SEADRAGON_HISTORY];
    uint64_t                         admitted;        /* since the start */
    uint64_t                         admitted_mark;   /* at the last sample */
} ngx_http_seadragon_history_t;


/*
 * One request known to the zone, waiting in its source's FIFO or holding
 * a slot of the gate.  The owner (pid and token) is the worker that parks
 * the request; only the owner dereferences "data", its request context.
 */

typedef struct {
    ngx_queue_t                      link;
    uint64_t                         id;
    ngx_http_seadragon_owner_t      *owner;
    ngx_http_seadragon_client_t     *client;          /* NULL: not counted */
    ngx_pid_t                        owner_pid;
    uint64_t                         owner_token;
    uint64_t                         owner_generation; /* its wake-up pipes */
    ngx_uint_t                       owner_worker;     /* ngx_worker */
    void                            *data;
    ngx_msec_t                       enqueued;        /* monotonic ms */
    ngx_msec_t                       granted;         /* monotonic ms */
    time_t                           enqueued_sec;    /* wall clock */
    ngx_uint_t                       source;          /* zone slot */
    ngx_uint_t                       priority;
    ngx_uint_t                       state;
    u_char                           model[NGX_HTTP_SEADRAGON_MODEL_LEN];
    size_t                           model_len;
    u_char                           addr[NGX_HTTP_SEADRAGON_ADDR_LEN];
    size_t                           addr_len;
    /* fair shares and models */
    ngx_http_seadragon_tenant_t     *tenant;          /* NULL: fair= off */
    ngx_queue_t                      tlink;           /* in tenant->waiting */
    uint64_t                         estimate;        /* tokens, expected */
    uint64_t                         charge;          /* counter units */
    ngx_int_t                        model_slot;      /* in sh->models; -1 */
    ngx_int_t                        wait_slot;       /* wait_models; -1 */
    ngx_queue_t                      mlink;           /* in src->mwaiting */
    /* whose it is: "user:NAME", "key:NAME"; none: 0 (GET .../queue) */
    u_char                           principal[
                                         NGX_HTTP_SEADRAGON_PRINCIPAL_LEN];
    size_t                           principal_len;
} ngx_http_seadragon_entry_t;


typedef struct {
    ngx_queue_t                      running;         /* entries in the gate */
    ngx_uint_t                       nrunning;
    ngx_uint_t                       nwaiting;
    ngx_uint_t                       capacity;
    ngx_uint_t                       max_queued;
    ngx_uint_t                       gate_state;      /* GATE_OPEN, ... */
    time_t                           gate_changed;
    ngx_uint_t                       health;          /* 0 ?, 1 up, 2 down */
    time_t                           health_checked;
    uint64_t                         next_id;
    time_t                           started;
    ngx_uint_t                       nsources;
    ngx_http_seadragon_shm_source_t  sources[NGX_HTTP_SEADRAGON_MAX_SOURCES];
    ngx_queue_t                      owners;          /* ..._owner_t */
    ngx_uint_t                       nowners;
    ngx_rbtree_t                     clients;         /* ..._client_t */
    ngx_rbtree_node_t                clients_sentinel;
    ngx_queue_t                      clients_free;    /* to be freed */
    ngx_uint_t                       nclients;
    ngx_rbtree_t                     limits;          /* ..._limit_t */
    ngx_rbtree_node_t                limits_sentinel;
    ngx_uint_t                       nlimits;
    struct ngx_http_seadragon_usage_shm_s  *usage;    /* NULL: none yet */
    struct ngx_http_seadragon_logins_s  *logins;      /* NULL: none yet */
    /* the scheduler's policy, from the newest configuration */
    ngx_uint_t                       fair;            /* FAIR_* */
    ngx_uint_t                       prompt_weight;
    ngx_uint_t                       completion_weight;
    ngx_msec_t                       affinity;        /* 0: off */
    ngx_uint_t                       loaded;          /* models at once */
    ngx_rbtree_t                     tenants;         /* ..._tenant_t */
    ngx_rbtree_node_t                tenants_sentinel;
    ngx_queue_t                      tenants_idle;
    ngx_uint_t                       ntenants;
    ngx_uint_t                       nidle;
    ngx_uint_t                       nmodels;
    ngx_http_seadragon_model_slot_t  models[NGX_HTTP_SEADRAGON_MODELS];
    ngx_http_seadragon_wait_model_t  wait_models[
                                         NGX_HTTP_SEADRAGON_WAIT_MODELS];
    ngx_uint_t                       wait_overflow;   /* entries in no row */
    ngx_http_seadragon_resident_shm_t  resident;
    ngx_http_seadragon_history_t     history;
} ngx_http_seadragon_shctx_t;


#endif /* _NGX_HTTP_SEADRAGON_ZONE_H_INCLUDED_ */
