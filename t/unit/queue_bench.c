
/*
 * Copyright (C) The Seadragon authors
 *
 * The scheduler's cost per dispatch (make bench-dispatch): N entries
 * parked across N/10 tenants, then, many times over, what the gate does
 * under its lock for one request: choose, grant, charge the answer's
 * tokens, remove, and a new arrival pushed.  Microseconds per dispatch,
 * at 1k, 10k and 100k entries, for fair shares off (the order before
 * issue 15) and on, with 3 models and affinity, and with aging.  Prints
 * timings; asserts nothing but that every dispatch found an entry.
 */


#include "ngx_http_seadragon_module.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>


ngx_uint_t  ngx_pagesize;


typedef struct {
    const char  *name;
    ngx_uint_t   fair;
    ngx_msec_t   affinity;
    ngx_uint_t   models;        /* 1 or 3 */
    ngx_msec_t   aging;         /* of the second source, priority 3 */
} scenario_t;


static ngx_http_seadragon_shctx_t   sh;
static ngx_http_seadragon_entry_t  *entries;
static ngx_http_seadragon_tenant_t *tenants;
static ngx_http_seadragon_owner_t   owner;
static ngx_msec_t                   now;
static uint64_t                     seed = 7;

static char  *models[] = { "llama3:latest", "qwen2.5:latest",
                           "mistral:latest" };


static uint64_t
rnd(uint64_t n)
{
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;

    return (seed >> 33) % n;
}


static void
push(ngx_http_seadragon_entry_t *e, scenario_t *sc, ngx_uint_t ntenants,
    ngx_uint_t src[2])
{
    char        *model;
    ngx_uint_t   t;

    t = rnd(ntenants);
    model = models[sc->models > 1 ? rnd(sc->models) : 0];

    ngx_memzero(e, sizeof(*e));
    e->owner = &owner;
    e->source = tenants[t].source;
    e->tenant = sc->fair ? &tenants[t] : NULL;
    e->estimate = 50 + rnd(500);
    e->enqueued = now;
    e->model_len = strlen(model);
    ngx_memcpy(e->model, model, e->model_len);
    e->model_slot = -1;

    ngx_http_seadragon_queue_push(&sh, e);
    (void) src;
}


static double
run(scenario_t *sc, ngx_uint_t n, ngx_uint_t dispatches)
{
    char                         name[32];
    double                       us;
    ngx_str_t                    s;
    ngx_uint_t                   i, ntenants, src[2];
    struct timespec              t0, t1;
    ngx_http_seadragon_entry_t  *e;

    ntenants = n / 10;

    entries = calloc(n, sizeof(ngx_http_seadragon_entry_t));
    tenants = calloc(ntenants, sizeof(ngx_http_seadragon_tenant_t));

    if (entries == NULL || tenants == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }

    ngx_http_seadragon_queue_init(&sh, 0);
    sh.fair = sc->fair;
    sh.affinity = sc->affinity;
    sh.prompt_weight = 1;
    sh.completion_weight = 1;
    sh.capacity = 1;
    sh.loaded = 1;
    now = 1;

    ngx_memzero(&owner, sizeof(owner));
    ngx_http_seadragon_queue_owner_add(&sh, &owner);

    s.data = (u_char *) "chat";
    s.len = 4;
    src[0] = ngx_http_seadragon_queue_source_slot(&sh, &s, 1, 0, 0);
    s.data = (u_char *) "batch";
    s.len = 5;
    src[1] = ngx_http_seadragon_queue_source_slot(&sh, &s,
                                                  sc->aging ? 3 : 1, 0,
                                                  sc->aging);

    for (i = 0; i < ntenants; i++) {
        snprintf(name, sizeof(name), "key:tenant-%d", (int) i);
        ngx_http_seadragon_queue_tenant_insert(&sh, &tenants[i],
                                               src[i % 2], (u_char *) name,
                                               strlen(name), 1 + i % 3);
    }

    for (i = 0; i < n; i++) {
        push(&entries[i], sc, ntenants, src);

        if (i % 10 == 0) {
            now++;
        }
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (i = 0; i < dispatches; i++) {
        now++;

        e = ngx_http_seadragon_queue_head(&sh, now);

        if (e == NULL) {
            fprintf(stderr, "%s: no entry to dispatch at %d\n", sc->name,
                    (int) i);
            exit(1);
        }

        ngx_http_seadragon_queue_grant(&sh, e, now);

        /* the gate's view of residency: the last model dispatched */

        ngx_memcpy(sh.resident.models[0].name, e->model, e->model_len);
        sh.resident.models[0].len = e->model_len;
        sh.resident.nmodels = 1;

        ngx_http_seadragon_queue_charge(&sh, e, 20 + rnd(200), rnd(2000));
        ngx_http_seadragon_queue_remove(&sh, e);

        push(e, sc, ntenants, src);
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);

    us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3
         / dispatches;

    free(entries);
    free(tenants);

    return us;
}


int
main(void)
{
    double       us[3];
    ngx_uint_t   i, j, sizes[3] = { 1000, 10000, 100000 };
    scenario_t   scenarios[] = {
        { "fair off (FIFO by priority)", NGX_HTTP_SEADRAGON_FAIR_OFF, 0, 1,
          0 },
        { "fair=tokens", NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0, 1, 0 },
        { "fair=requests", NGX_HTTP_SEADRAGON_FAIR_REQUESTS, 0, 1, 0 },
        { "fair=tokens, 3 models, affinity", NGX_HTTP_SEADRAGON_FAIR_TOKENS,
          30000, 3, 0 },
        { "fair off, 3 models, affinity", NGX_HTTP_SEADRAGON_FAIR_OFF,
          30000, 3, 0 },
        { "fair=tokens, aging=100ms", NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0, 1,
          100 },
    };

    ngx_pagesize = 4096;

    printf("microseconds per dispatch (choose, grant, charge, remove, "
           "push), N entries across N/10 tenants, 2 sources\n\n");
    printf("%-34s %10s %10s %10s %12s\n", "scenario", "1k", "10k", "100k",
           "100k/1k");

    for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        for (j = 0; j < 3; j++) {
            us[j] = run(&scenarios[i], sizes[j], 20000);
        }

        printf("%-34s %10.3f %10.3f %10.3f %12.2f\n", scenarios[i].name,
               us[0], us[1], us[2], us[2] / us[0]);
    }

    printf("\nO(log n) would make 100k/1k about %.2f (log2 100000 / "
           "log2 1000); O(n), 100.\n", 16.61 / 9.97);

    return 0;
}
