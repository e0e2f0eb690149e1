
/*
 * Copyright (C) The Seadragon authors
 *
 * Unit tests of the scheduler (ngx_http_seadragon_queue_fair.c) on plain
 * memory and a real red-black tree (t/unit/rbtree.c): the virtual token
 * counters' order, FIFO within a tenant, the lift of an idle tenant,
 * weights, strict priority and aging with fair shares, affinity, per-model
 * slots, round robin, tenant trimming, dead workers, and a long random
 * sequence checked against a plain reading of the rules after every step.
 * Prints TAP for prove (t/042-fair-unit.t runs it).
 */


#include "ngx_http_seadragon_module.h"

#include <stdio.h>
#include <stdlib.h>


#define NENTRIES  4096
#define NTENANTS  64
#define NOWNERS   4


static int  tests, failures;

ngx_uint_t  ngx_pagesize;


#define ok(cond, ...)                                                        \
    do {                                                                     \
        tests++;                                                             \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("not ");                                                  \
        }                                                                    \
        printf("ok %d - ", tests);                                           \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
    } while (0)


static ngx_http_seadragon_shctx_t   sh;
static ngx_msec_t                   now;
static ngx_http_seadragon_entry_t   entries[NENTRIES];
static ngx_uint_t                   used[NENTRIES];
static ngx_http_seadragon_tenant_t  tenants[NTENANTS];
static ngx_uint_t                   tlive[NTENANTS];
static ngx_http_seadragon_owner_t   owners[NOWNERS];
static uint64_t                     seed = 42;
static ngx_uint_t                   random_models = 3;


static uint64_t
rnd(uint64_t n)
{
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;

    return (seed >> 33) % n;
}


static void
reset(ngx_uint_t fair, ngx_msec_t affinity)
{
    ngx_uint_t  i;

    ngx_http_seadragon_queue_init(&sh, 0);
    sh.fair = fair;
    sh.affinity = affinity;
    sh.prompt_weight = 1;
    sh.completion_weight = 1;
    sh.capacity = 1;
    now = 0;

    ngx_memzero(used, sizeof(used));
    ngx_memzero(tlive, sizeof(tlive));

    for (i = 0; i < NOWNERS; i++) {
        ngx_memzero(&owners[i], sizeof(ngx_http_seadragon_owner_t));
        owners[i].pid = 100 + i;
        owners[i].token = 1;
        ngx_http_seadragon_queue_owner_add(&sh, &owners[i]);
    }
}


static ngx_uint_t
source(char *name, ngx_uint_t priority, ngx_msec_t aging)
{
    ngx_str_t  s;

    s.data = (u_char *) name;
    s.len = strlen(name);

    return ngx_http_seadragon_queue_source_slot(&sh, &s, priority, 0, aging);
}


static ngx_http_seadragon_tenant_t *
tenant(ngx_uint_t src, char *name, ngx_uint_t weight)
{
    ngx_uint_t                    i;
    ngx_http_seadragon_tenant_t  *t;

    t = ngx_http_seadragon_queue_tenant_find(&sh, src, (u_char *) name,
                                             strlen(name));
    if (t) {
        return t;
    }

    for (i = 0; tlive[i]; i++) { /* void */ }

    tlive[i] = 1;
    ngx_http_seadragon_queue_tenant_insert(&sh, &tenants[i], src,
                                           (u_char *) name, strlen(name),
                                           weight);
    return &tenants[i];
}


static ngx_http_seadragon_entry_t *
push_owned(ngx_uint_t src, ngx_http_seadragon_tenant_t *t, char *model,
    uint64_t estimate, ngx_uint_t owner)
{
    ngx_uint_t                   i;
    ngx_http_seadragon_entry_t  *e;

    for (i = 0; used[i]; i++) { /* void */ }

    used[i] = 1;
    e = &entries[i];
    ngx_memzero(e, sizeof(*e));
    e->source = src;
    e->tenant = t;
    e->estimate = estimate;
    e->owner = &owners[owner];
    e->owner_pid = owners[owner].pid;
    e->owner_token = owners[owner].token;
    e->enqueued = now;
    e->model_len = ngx_min(strlen(model), NGX_HTTP_SEADRAGON_MODEL_LEN);
    ngx_memcpy(e->model, model, e->model_len);
    e->model_slot = ngx_http_seadragon_queue_model_slot(&sh, e->model,
                                                        e->model_len);

    ngx_http_seadragon_queue_push(&sh, e);

    return e;
}


static ngx_http_seadragon_entry_t *
push(ngx_uint_t src, ngx_http_seadragon_tenant_t *t, uint64_t estimate)
{
    return push_owned(src, t, "m:latest", estimate, 0);
}


static void
done(ngx_http_seadragon_entry_t *e)
{
    ngx_http_seadragon_queue_remove(&sh, e);
    used[e - entries] = 0;
}


/* grants the head, charges it (prompt, completion), ends it: its id */

static int
serve(uint64_t prompt, uint64_t completion)
{
    int                          id;
    ngx_http_seadragon_entry_t  *e;

    e = ngx_http_seadragon_queue_head(&sh, now);

    if (e == NULL) {
        return 0;
    }

    ngx_http_seadragon_queue_grant(&sh, e, now);
    ngx_http_seadragon_queue_charge(&sh, e, prompt, completion);
    id = (int) e->id;
    done(e);

    return id;
}


/* serves all with the tokens of each entry given by its id: "ids" */

static void
serve_all(char *out, size_t size, uint64_t *tokens)
{
    int    id;
    char  *p;

    p = out;
    *p = '\0';

    for ( ;; ) {
        ngx_http_seadragon_entry_t  *e;

        e = ngx_http_seadragon_queue_head(&sh, now);

        if (e == NULL) {
            break;
        }

        ngx_http_seadragon_queue_grant(&sh, e, now);
        ngx_http_seadragon_queue_charge(&sh, e, tokens ? tokens[e->id] : 1,
                                        0);
        id = (int) e->id;
        done(e);

        p += snprintf(p, size - (p - out), "%s%d", p == out ? "" : ",", id);
    }
}


static void
resident(char *model)
{
    ngx_http_seadragon_resident_model_t  *m;

    m = &sh.resident.models[sh.resident.nmodels++];
    m->len = strlen(model);
    ngx_memcpy(m->name, model, m->len);
}


/*
 * The rules of the order as the plan states them, read plainly over every
 * waiting entry: what queue_choose() must give.
 */

static ngx_uint_t
eligible(ngx_http_seadragon_entry_t *e)
{
    ngx_http_seadragon_model_slot_t  *m;

    if (e->model_slot < 0 || (ngx_uint_t) e->model_slot >= sh.nmodels) {
        return 1;
    }

    m = &sh.models[e->model_slot];

    return m->slots == 0 || m->running < m->slots;
}


static ngx_http_seadragon_entry_t *
reference(void)
{
    uint64_t                     c, bc;
    ngx_uint_t                   i, best, p, any_res, pass;
    ngx_http_seadragon_entry_t  *e, *b;

    best = NGX_MAX_UINT32_VALUE;

    for (i = 0; i < NENTRIES; i++) {
        e = &entries[i];

        if (used[i] && e->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING
            && eligible(e))
        {
            p = ngx_http_seadragon_queue_effective(&sh, e, now);
            best = ngx_min(best, p);
        }
    }

    if (best == NGX_MAX_UINT32_VALUE) {
        return NULL;
    }

    /* C: used, waiting, eligible, at best */

#define in_c(e)                                                              \
    (used[(e) - entries] && (e)->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING    \
     && eligible(e) && ngx_http_seadragon_queue_effective(&sh, e, now) == best)

    b = NULL;

    if (sh.affinity) {
        for (i = 0; i < NENTRIES; i++) {
            e = &entries[i];

            if (in_c(e) && now - e->enqueued >= sh.affinity
                && (b == NULL || e->id < b->id))
            {
                b = e;
            }
        }

        if (b) {
            return b;
        }
    }

    any_res = 0;

    if (sh.affinity) {
        for (i = 0; i < NENTRIES; i++) {
            e = &entries[i];

            if (in_c(e) && ngx_http_seadragon_queue_resident(&sh, e)) {
                any_res = 1;
            }
        }
    }

    bc = 0;

    for (pass = 0, i = 0; i < NENTRIES; i++) {
        e = &entries[i];

        if (!in_c(e) || (any_res && !ngx_http_seadragon_queue_resident(&sh, e)))
        {
            continue;
        }

        c = (sh.fair && e->tenant) ? e->tenant->counter : 0;

        if (b == NULL || c < bc || (c == bc && e->id < b->id)) {
            b = e;
            bc = c;
        }
    }

    (void) pass;

    return b;
}


static ngx_uint_t
queue_len(ngx_queue_t *h)
{
    ngx_uint_t    n;
    ngx_queue_t  *q;

    n = 0;

    for (q = ngx_queue_head(h); q != ngx_queue_sentinel(h);
         q = ngx_queue_next(q))
    {
        n++;
    }

    return n;
}


/* every book of the zone agrees with the entries; 0 if not, and why */

static ngx_uint_t
consistent(char *why, size_t size)
{
    uint64_t                      lastc;
    ngx_uint_t                    i, j, nw, nr, n, backlogged, idle, lastid;
    ngx_uint_t                    mrun[NGX_HTTP_SEADRAGON_MODELS];
    ngx_rbtree_node_t            *node;
    ngx_http_seadragon_entry_t   *e, *h;
    ngx_http_seadragon_tenant_t  *t;

    ngx_memzero(mrun, sizeof(mrun));
    why[0] = '\0';
    nw = 0;
    nr = 0;

    for (i = 0; i < NENTRIES; i++) {
        e = &entries[i];

        if (!used[i]) {
            continue;
        }

        if (e->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING) {
            nw++;

        } else {
            nr++;

            if (e->model_slot >= 0) {
                mrun[e->model_slot]++;
            }
        }
    }

    if (nw != sh.nwaiting || nr != sh.nrunning) {
        snprintf(why, size, "zone counts %d/%d, entries %d/%d",
                 (int) sh.nwaiting, (int) sh.nrunning, (int) nw, (int) nr);
        return 0;
    }

    for (i = 0; i < sh.nmodels; i++) {
        if (mrun[i] != sh.models[i].running) {
            snprintf(why, size, "model %d runs %d, counted %d", (int) i,
                     (int) mrun[i], (int) sh.models[i].running);
            return 0;
        }
    }

    idle = 0;
    n = 0;

    for (j = 0; j < NTENANTS; j++) {
        t = &tenants[j];

        if (!tlive[j]) {
            continue;
        }

        n++;
        nw = 0;
        nr = 0;

        for (i = 0; i < NENTRIES; i++) {
            e = &entries[i];

            if (used[i] && e->tenant == t) {
                if (e->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING) {
                    nw++;

                } else {
                    nr++;
                }
            }
        }

        if (nw != t->nwaiting || nr != t->nrunning
            || queue_len(&t->waiting) != nw)
        {
            snprintf(why, size, "tenant %.*s counts %d/%d, entries %d/%d",
                     (int) t->len, t->name, (int) t->nwaiting,
                     (int) t->nrunning, (int) nw, (int) nr);
            return 0;
        }

        if (nw == 0 && nr == 0) {
            idle++;
        }

        if (ngx_http_seadragon_queue_tenant_find(&sh, t->source, t->name,
                                                 t->len)
            != t)
        {
            snprintf(why, size, "tenant %.*s not found", (int) t->len,
                     t->name);
            return 0;
        }
    }

    if (n != sh.ntenants || idle != sh.nidle
        || queue_len(&sh.tenants_idle) != idle)
    {
        snprintf(why, size, "tenants %d (%d), idle %d (%d, listed %d)",
                 (int) sh.ntenants, (int) n, (int) sh.nidle, (int) idle,
                 (int) queue_len(&sh.tenants_idle));
        return 0;
    }

    for (i = 0; i < sh.nsources; i++) {
        backlogged = 0;

        for (j = 0; j < NTENANTS; j++) {
            if (tlive[j] && tenants[j].source == i && tenants[j].nwaiting) {
                backlogged++;
            }
        }

        n = 0;
        lastc = 0;
        lastid = 0;

        if (sh.sources[i].backlog.root != sh.sources[i].backlog.sentinel) {
            for (node = ngx_rbtree_min(sh.sources[i].backlog.root,
                                       sh.sources[i].backlog.sentinel);
                 node;
                 node = ngx_rbtree_next(&sh.sources[i].backlog, node))
            {
                t = (ngx_http_seadragon_tenant_t *)
                        ((u_char *) node
                         - offsetof(ngx_http_seadragon_tenant_t, vnode));
                h = ngx_queue_data(ngx_queue_head(&t->waiting),
                                   ngx_http_seadragon_entry_t, tlink);

                if (t->nwaiting == 0 || t->source != i
                    || (n && (t->counter < lastc
                              || (t->counter == lastc && h->id < lastid))))
                {
                    snprintf(why, size, "source %d: backlog out of order",
                             (int) i);
                    return 0;
                }

                lastc = t->counter;
                lastid = h->id;
                n++;
            }
        }

        if (n != backlogged || n != sh.sources[i].ntenants) {
            snprintf(why, size, "source %d: %d in backlog, %d backlogged, "
                     "ntenants %d", (int) i, (int) n, (int) backlogged,
                     (int) sh.sources[i].ntenants);
            return 0;
        }
    }

    return 1;
}


/*
 * The rows of affinity's index agree with the waiting entries: each row's
 * count is its entries', each source's FIFO of a row holds exactly its
 * waiting entries of that row in arrival order, with the row's model and
 * model_slot; the overflow counts the waiting entries in no row.
 */

static ngx_uint_t
rows_consistent(char *why, size_t size)
{
    uint64_t                          lastid;
    ngx_uint_t                        i, k, n, nw, over;
    ngx_queue_t                      *q, *h;
    ngx_http_seadragon_entry_t       *e;
    ngx_http_seadragon_wait_model_t  *w;

    over = 0;

    for (i = 0; i < NENTRIES; i++) {
        e = &entries[i];

        if (used[i] && e->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING
            && e->wait_slot < 0)
        {
            over++;
        }
    }

    /* a tenant's rows hold at least those of its waiting entries */

    for (i = 0; i < NENTRIES; i++) {
        e = &entries[i];

        if (used[i] && e->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING
            && e->tenant && e->wait_slot >= 0
            && (e->tenant->rows & (1 << e->wait_slot)) == 0)
        {
            snprintf(why, size, "tenant %.*s: row %d not in its rows %x",
                     (int) e->tenant->len, e->tenant->name,
                     (int) e->wait_slot, (unsigned) e->tenant->rows);
            return 0;
        }
    }

    if (over != sh.wait_overflow) {
        snprintf(why, size, "overflow %d, entries in no row %d",
                 (int) sh.wait_overflow, (int) over);
        return 0;
    }

    for (k = 0; k < NGX_HTTP_SEADRAGON_WAIT_MODELS; k++) {
        w = &sh.wait_models[k];
        nw = 0;

        for (i = 0; i < NENTRIES; i++) {
            e = &entries[i];

            if (used[i] && e->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING
                && e->wait_slot == (ngx_int_t) k)
            {
                nw++;
            }
        }

        if (nw != w->nwaiting) {
            snprintf(why, size, "row %d (%.*s) counts %d, entries %d",
                     (int) k, (int) w->len, w->name, (int) w->nwaiting,
                     (int) nw);
            return 0;
        }

        n = 0;

        for (i = 0; i < sh.nsources; i++) {
            h = &sh.sources[i].mwaiting[k];
            lastid = 0;

            for (q = ngx_queue_head(h); q != ngx_queue_sentinel(h);
                 q = ngx_queue_next(q))
            {
                e = ngx_queue_data(q, ngx_http_seadragon_entry_t, mlink);

                if (!used[e - entries]
                    || e->state != NGX_HTTP_SEADRAGON_ENTRY_WAITING
                    || e->source != i || e->wait_slot != (ngx_int_t) k
                    || e->id <= lastid || e->model_len != w->len
                    || e->model_slot != w->model_slot
                    || ngx_memcmp(e->model, w->name, w->len) != 0)
                {
                    snprintf(why, size, "row %d, source %d: entry %d is "
                             "not its own", (int) k, (int) i, (int) e->id);
                    return 0;
                }

                lastid = e->id;
                n++;
            }
        }

        if (n != nw) {
            snprintf(why, size, "row %d: %d in its FIFOs of %d", (int) k,
                     (int) n, (int) nw);
            return 0;
        }
    }

    /* one row per (model, model_slot) with entries waiting */

    for (k = 0; k < NGX_HTTP_SEADRAGON_WAIT_MODELS; k++) {
        for (i = k + 1; i < NGX_HTTP_SEADRAGON_WAIT_MODELS; i++) {
            if (sh.wait_models[k].nwaiting && sh.wait_models[i].nwaiting
                && sh.wait_models[k].len == sh.wait_models[i].len
                && sh.wait_models[k].model_slot
                   == sh.wait_models[i].model_slot
                && ngx_memcmp(sh.wait_models[k].name, sh.wait_models[i].name,
                              sh.wait_models[k].len) == 0)
            {
                snprintf(why, size, "rows %d and %d hold one model",
                         (int) k, (int) i);
                return 0;
            }
        }
    }

    return 1;
}


/*
 * More models waiting at once than rows: the others count in the
 * overflow, and choices stay the rules' while they do; a row freed takes
 * a new model.
 */

static void
test_rows_overflow(void)
{
    char                         why[256], name[32];
    ngx_uint_t                   s, i, fair, same;
    ngx_http_seadragon_entry_t  *e[8], *r;

    for (fair = 0; fair < 2; fair++) {
        reset(fair ? NGX_HTTP_SEADRAGON_FAIR_TOKENS
                   : NGX_HTTP_SEADRAGON_FAIR_OFF, 1000);
        s = source("chat", 1, 0);
        now = 0;

        for (i = 0; i < NGX_HTTP_SEADRAGON_WAIT_MODELS + 2; i++) {
            snprintf(name, sizeof(name), "m%d:latest", (int) i);
            e[i] = push_owned(s, fair ? tenant(s, "key:t", 1) : NULL, name, 1,
                              0);
            now++;
        }

        ok(rows_consistent(why, sizeof(why))
           && sh.wait_overflow == 2
           && e[NGX_HTTP_SEADRAGON_WAIT_MODELS]->wait_slot == -1
           && e[NGX_HTTP_SEADRAGON_WAIT_MODELS - 1]->wait_slot
              == NGX_HTTP_SEADRAGON_WAIT_MODELS - 1,
           "fair=%d: %d models waiting, 2 in the overflow %s", (int) fair,
           NGX_HTTP_SEADRAGON_WAIT_MODELS + 2, why);

        /* a model of the overflow resident: found by the walk */

        snprintf(name, sizeof(name), "m%d:latest",
                 NGX_HTTP_SEADRAGON_WAIT_MODELS + 1);
        resident(name);
        r = ngx_http_seadragon_queue_head(&sh, now);
        ok(r == e[NGX_HTTP_SEADRAGON_WAIT_MODELS + 1] && r == reference(),
           "fair=%d: a resident model in the overflow goes first",
           (int) fair);

        /* its entries leave: a row is freed and taken by a new model */

        done(e[NGX_HTTP_SEADRAGON_WAIT_MODELS]);
        done(e[NGX_HTTP_SEADRAGON_WAIT_MODELS + 1]);
        done(e[1]);
        ok(sh.wait_overflow == 0 && sh.wait_models[1].nwaiting == 0
           && rows_consistent(why, sizeof(why)),
           "fair=%d: overflow empty, row 1 free %s", (int) fair, why);

        e[1] = push_owned(s, fair ? tenant(s, "key:u", 1) : NULL,
                          "new:latest", 1, 0);
        same = (e[1]->wait_slot == 1
                && sh.wait_models[1].len == 10
                && ngx_memcmp(sh.wait_models[1].name, "new:latest", 10) == 0);
        e[6] = push_owned(s, NULL, "m0:latest", 1, 0);
        ok(same && e[6]->wait_slot == 0 && sh.wait_models[0].nwaiting == 2
           && rows_consistent(why, sizeof(why)),
           "fair=%d: the free row takes a new model, a known one its row %s",
           (int) fair, why);

        /* the index, not a walk: the resident model's head */

        sh.resident.nmodels = 0;
        resident("m0:latest");
        r = ngx_http_seadragon_queue_head(&sh, now);
        ok(r == e[0] && r == reference(), "fair=%d: resident by its row",
           (int) fair);

        sh.resident.nmodels = 0;
        resident("gone:latest");
        r = ngx_http_seadragon_queue_head(&sh, now);
        ok(r == e[0] && r == reference(),
           "fair=%d: no resident model waits: arrival order", (int) fair);
    }
}


/*
 * Fair shares with more entries of resident models than the pass offers
 * (NGX_HTTP_SEADRAGON_WAIT_BUDGET): the source is walked as before, with
 * tenants and, in the second round, entries without a tenant.
 */

static void
test_rows_budget(void)
{
    char                         why[256], name[32];
    ngx_uint_t                   s, i, round, bad, served;
    ngx_http_seadragon_entry_t  *e, *r;

    for (round = 0; round < 2; round++) {
        reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 100000);
        s = source("chat", 1, 0);
        (void) source("other", 1, 0);
        why[0] = '\0';
        now = 0;

        /* the first tenants wait for b only: passed over while a is */

        for (i = 0; i < 9; i++) {
            snprintf(name, sizeof(name), "key:b%d", (int) (i % 3));
            (void) push_owned(s, tenant(s, name, 1), "b:latest", 10, 0);
        }

        for (i = 0; i < 3 * NGX_HTTP_SEADRAGON_WAIT_BUDGET; i++) {
            snprintf(name, sizeof(name), "key:%d", (int) rnd(12));
            (void) push_owned(s, (round && rnd(4) == 0) ? NULL
                                                        : tenant(s, name, 1),
                              rnd(3) ? "a:latest" : "b:latest",
                              1 + rnd(100), 0);
            now++;
        }

        resident("a:latest");
        bad = 0;
        served = 0;

        while (!bad) {
            e = ngx_http_seadragon_queue_head(&sh, now);
            r = reference();

            if (e != r) {
                snprintf(why, sizeof(why), "chose %d, the rules %d",
                         e ? (int) e->id : 0, r ? (int) r->id : 0);
                bad = 1;
                break;
            }

            if (e == NULL) {
                break;
            }

            ngx_http_seadragon_queue_grant(&sh, e, now);
            ngx_http_seadragon_queue_charge(&sh, e, rnd(300), rnd(900));
            done(e);

            if (++served == 60) {
                /* now b is resident: the b-only tenants are not passed */
                sh.resident.nmodels = 0;
                resident("b:latest");
            }

            if (!consistent(why, sizeof(why))
                || !rows_consistent(why, sizeof(why)))
            {
                bad = 1;
            }
        }

        ok(!bad && served == 3 * NGX_HTTP_SEADRAGON_WAIT_BUDGET + 9,
           "fair=tokens, %d entries%s: beyond the budget the walk chooses "
           "as the rules %s", (int) served,
           round ? ", some without a tenant" : "", why);
    }

    /*
     * A tenant whose resident entry was served, served nothing (charged
     * 0): first in the backlog, walked in full, its rows made exact; when
     * its other model is resident it is not passed over.
     */

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 100000);
    s = source("chat", 1, 0);
    now = 0;
    resident("a:latest");
    e = push_owned(s, tenant(s, "key:x", 1), "a:latest", 10, 0);
    r = push_owned(s, tenant(s, "key:x", 1), "b:latest", 10, 0);

    for (i = 0; i < NGX_HTTP_SEADRAGON_WAIT_BUDGET + 8; i++) {
        snprintf(name, sizeof(name), "key:y%d", (int) (i % 8));
        (void) push_owned(s, tenant(s, name, 1), "a:latest", 10, 0);
    }

    for (i = 0; i < NGX_HTTP_SEADRAGON_WAIT_BUDGET + 8; i++) {
        (void) push_owned(s, tenant(s, "key:z", 1), "b:latest", 10, 0);
    }

    bad = (ngx_http_seadragon_queue_head(&sh, now) != e);
    ngx_http_seadragon_queue_grant(&sh, e, now);
    ngx_http_seadragon_queue_charge(&sh, e, 0, 0);
    done(e);
    e = ngx_http_seadragon_queue_head(&sh, now);
    bad |= (e == NULL || e == r || e != reference()
            || e->tenant->rows != 1 << e->wait_slot
            || r->tenant->rows != 1 << r->wait_slot);
    why[0] = '\0';
    bad |= !rows_consistent(why, sizeof(why));
    sh.resident.nmodels = 0;
    resident("b:latest");
    bad |= (ngx_http_seadragon_queue_head(&sh, now) != r || r != reference());
    ok(!bad, "a tenant walked in full has its rows made exact, and is "
       "chosen when they are resident %s", why);
}


static void
test_vtc_order(void)
{
    char                          order[256];
    ngx_uint_t                    s;
    ngx_http_seadragon_entry_t   *e;
    ngx_http_seadragon_tenant_t  *a, *b, *c;

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0);
    s = source("chat", 1, 0);
    a = tenant(s, "key:a", 1);
    b = tenant(s, "key:b", 1);
    c = tenant(s, "key:c", 1);

    push(s, a, 10);     /* 1 */
    push(s, a, 10);     /* 2 */
    push(s, a, 10);     /* 3 */
    push(s, b, 10);     /* 4 */
    push(s, b, 10);     /* 5 */
    push(s, c, 10);     /* 6 */

    ok(a->counter == 0 && b->counter == 0 && c->counter == 0
       && sh.sources[s].ntenants == 3 && sh.nidle == 0,
       "three new tenants are backlogged at counter 0");

    e = ngx_http_seadragon_queue_head(&sh, now);
    ok(e && e->id == 1, "equal counters: the older head first");
    ngx_http_seadragon_queue_grant(&sh, e, now);
    ok(a->counter == 10 * NGX_HTTP_SEADRAGON_VTC_UNIT && e->charge == a->counter
       && sh.sources[s].vfloor == 0 && a->requests == 1,
       "a grant charges the estimate (10 tokens: %d units)", (int) a->counter);
    ngx_http_seadragon_queue_charge(&sh, e, 10, 90);
    ok(a->counter == 100 * NGX_HTTP_SEADRAGON_VTC_UNIT && a->tokens == 100
       && e->charge == 100 * NGX_HTTP_SEADRAGON_VTC_UNIT,
       "the answer's 10+90 tokens correct the counter to 100 tokens");
    done(e);

    ok(serve(10, 0) == 4 && b->counter == 10 * NGX_HTTP_SEADRAGON_VTC_UNIT,
       "then the tenant with the least service: b");
    ok(serve(10, 10) == 6 && c->counter == 20 * NGX_HTTP_SEADRAGON_VTC_UNIT,
       "then c, still at 0");
    ok(sh.nidle == 1 && c->nwaiting == 0, "c, with nothing left, is idle");
    ok(serve(10, 0) == 5, "b (10 tokens) before a (100)");
    ok(serve(1, 0) == 2 && serve(1, 0) == 3 && serve(1, 0) == 0,
       "a's last two in its order, then none");
    ok(sh.nidle == 3 && sh.sources[s].ntenants == 0
       && sh.sources[s].backlog.root == sh.sources[s].backlog.sentinel,
       "an empty line: every tenant idle, the backlog empty");

    /* an estimate too high is given back */

    push(s, a, 1000);
    e = ngx_http_seadragon_queue_head(&sh, now);
    ngx_http_seadragon_queue_grant(&sh, e, now);
    ok(a->counter == 1102 * NGX_HTTP_SEADRAGON_VTC_UNIT,
       "an estimate of 1000 tokens is charged at once (%d)",
       (int) a->counter);
    ngx_http_seadragon_queue_charge(&sh, e, 5, 5);
    ok(a->counter == 112 * NGX_HTTP_SEADRAGON_VTC_UNIT,
       "and corrected down to the 10 served (%d)", (int) a->counter);
    done(e);

    /* an engine's figure at the top of uint64 does not wrap the books */

    push(s, a, 1);
    e = ngx_http_seadragon_queue_head(&sh, now);
    ngx_http_seadragon_queue_grant(&sh, e, now);
    ngx_http_seadragon_queue_charge(&sh, e, (uint64_t) -1, (uint64_t) -1);
    ok(a->counter > 112 * NGX_HTTP_SEADRAGON_VTC_UNIT
       && a->counter >= 2 * (uint64_t) NGX_MAX_UINT32_VALUE
       && a->tokens >= 2 * (uint64_t) NGX_MAX_UINT32_VALUE,
       "absurd token counts saturate: the counter only grows");
    done(e);

    /* a constructed line of 3 tenants, 10x longer answers for one */

    {
        uint64_t  tokens[64];

        reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0);
        s = source("chat", 1, 0);
        a = tenant(s, "key:long", 1);
        b = tenant(s, "key:short", 1);
        c = tenant(s, "key:other", 1);

        for (int i = 1; i <= 4; i++) {
            push(s, a, 1);
            tokens[i] = 100;
        }

        for (int i = 5; i <= 8; i++) {
            push(s, b, 1);
            tokens[i] = 10;
        }

        push(s, c, 1);
        tokens[9] = 50;

        serve_all(order, sizeof(order), tokens);
        ok(strcmp(order, "1,5,9,6,7,8,2,3,4") == 0,
           "VTC order for a line of 100-, 10- and 50-token answers: %s",
           order);
    }
}


static void
test_fifo_and_lift(void)
{
    char                          order[256];
    ngx_uint_t                    s, s2, i;
    ngx_http_seadragon_tenant_t  *a, *b, *c, *d;

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0);
    s = source("chat", 1, 0);
    a = tenant(s, "key:a", 1);

    for (i = 0; i < 5; i++) {
        push(s, a, 1 + i * 7);
    }

    serve_all(order, sizeof(order), NULL);
    ok(strcmp(order, "1,2,3,4,5") == 0, "FIFO within a tenant: %s", order);

    /* an idle tenant cannot bank credit */

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0);
    s = source("chat", 1, 0);
    s2 = source("chat-b", 1, 0);
    a = tenant(s, "key:a", 1);
    b = tenant(s, "key:b", 1);
    c = tenant(s, "key:idle", 1);
    d = tenant(s2, "key:d", 1);

    for (i = 0; i < 6; i++) {
        push(s, a, 10);
        push(s, b, 10);
    }

    for (i = 0; i < 6; i++) {
        serve(10, 0);
    }

    ok(a->counter == 30000 && b->counter == 30000 && c->counter == 0,
       "a and b were served 30 tokens each, the idle one none");

    push(s, c, 10);
    ok(c->counter == 30000,
       "an idle tenant comes back at the smallest backlogged counter "
       "(%d), not at its own 0", (int) c->counter);

    push(s2, d, 10);
    ok(d->counter == 30000,
       "lifted by the backlog of every source of its priority (%d)",
       (int) d->counter);

    serve_all(order, sizeof(order), NULL);
    ok(strcmp(order, "7,8,13,14,9,10,11,12") == 0,
       "and alternates with them: %s", order);

    /* with none backlogged, the lift is the largest floor */

    a->counter = 0;
    b->counter = 0;
    sh.sources[s].vfloor = 70000;
    sh.sources[s2].vfloor = 50000;
    push(s, a, 1);
    ok(a->counter == 70000,
       "nothing backlogged: lifted to the last dispatched's counter (%d)",
       (int) a->counter);
    serve(1, 0);
}


static void
test_weights_priority_aging(void)
{
    char                          order[256], want[256];
    ngx_uint_t                    s, hi, lo, i, na, nb;
    ngx_http_seadragon_entry_t   *e, *e1, *e2;
    ngx_http_seadragon_tenant_t  *a, *b;

    reset(NGX_HTTP_SEADRAGON_FAIR_REQUESTS, 0);
    s = source("chat", 1, 0);
    a = tenant(s, "key:one", 1);
    b = tenant(s, "key:three", 3);

    for (i = 0; i < 50; i++) {
        push(s, a, 1);
        push(s, b, 1);
    }

    na = 0;
    nb = 0;

    for (i = 0; i < 40; i++) {
        e = ngx_http_seadragon_queue_head(&sh, now);
        ngx_http_seadragon_queue_grant(&sh, e, now);

        if (e->tenant == a) {
            na++;

        } else {
            nb++;
        }

        done(e);
    }

    ok(na + nb == 40 && na >= 9 && na <= 11,
       "weight 3 against weight 1: three times the share (%d/%d)",
       (int) nb, (int) na);

    while (serve(1, 1)) { /* void */ }

    /* strict priority across sources, whatever the counters */

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0);
    hi = source("coding", 1, 0);
    lo = source("batch", 2, 0);
    a = tenant(hi, "key:heavy", 1);
    b = tenant(lo, "key:light", 1);
    a->counter = 1000000000;
    e1 = push(lo, b, 1);
    e2 = push(hi, a, 1);
    push(hi, a, 1);
    serve_all(order, sizeof(order), NULL);
    snprintf(want, sizeof(want), "%d,%d,%d", (int) e2->id, (int) e2->id + 1,
             (int) e1->id);
    ok(strcmp(order, want) == 0,
       "strict priority across sources with fair shares: %s", order);

    /* aging still lifts */

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0);
    hi = source("coding", 1, 0);
    lo = source("batch", 3, 100);
    a = tenant(hi, "key:a", 1);
    b = tenant(lo, "key:b", 1);
    e1 = push(lo, b, 1);
    now = 150;
    e2 = push(hi, a, 1);
    a->counter = 500;
    ok(ngx_http_seadragon_queue_head(&sh, now) == e2,
       "one step of aging does not pass a better priority");
    now = 250;
    ok(ngx_http_seadragon_queue_head(&sh, now) == e1,
       "two steps: equal priorities, the smaller counter first");
    b->counter = 600;
    ngx_rbtree_delete(&sh.sources[lo].backlog, &b->vnode);
    ngx_rbtree_insert(&sh.sources[lo].backlog, &b->vnode);
    ok(ngx_http_seadragon_queue_head(&sh, now) == e2,
       "and at equal priority the counters decide (%d)",
       (int) ngx_http_seadragon_queue_head(&sh, now)->id);
    now = 400;
    ok(ngx_http_seadragon_queue_head(&sh, now) == e1,
       "aged past it, the aged entry first");
    serve_all(order, sizeof(order), NULL);
}


static void
test_affinity(void)
{
    char                          order[256];
    ngx_uint_t                    s, hi, lo;
    ngx_http_seadragon_entry_t   *x, *y, *z, *w;
    ngx_http_seadragon_tenant_t  *a;

    reset(NGX_HTTP_SEADRAGON_FAIR_OFF, 1000);
    s = source("chat", 1, 0);

    now = 0;
    x = push_owned(s, NULL, "b:latest", 1, 0);
    now = 10;
    y = push_owned(s, NULL, "a:latest", 1, 0);
    now = 20;
    z = push_owned(s, NULL, "b:latest", 1, 0);
    now = 30;
    w = push_owned(s, NULL, "a:latest", 1, 0);

    now = 500;
    ok(ngx_http_seadragon_queue_head(&sh, now) == x,
       "nothing resident: arrival order");

    resident("a:latest");
    ok(ngx_http_seadragon_queue_resident(&sh, y)
       && !ngx_http_seadragon_queue_resident(&sh, x),
       "an entry's model is resident when the gate's view holds it");
    ok(ngx_http_seadragon_queue_head(&sh, now) == y,
       "a request for a resident model goes before an older one");
    ok(ngx_http_seadragon_queue_position(&sh, y, now) == 1
       && ngx_http_seadragon_queue_position(&sh, w, now) == 2
       && ngx_http_seadragon_queue_position(&sh, x, now) == 3,
       "positions follow the affinity classes");
    now = 999;
    ok(ngx_http_seadragon_queue_head(&sh, now) == y, "still, at 999 ms");
    now = 1000;
    ok(ngx_http_seadragon_queue_head(&sh, now) == x,
       "an entry that waited the affinity time goes before any resident one");
    now = 1500;
    serve_all(order, sizeof(order), NULL);
    ok(strcmp(order, "1,2,3,4") == 0,
       "all overdue: arrival order, fair shares or not: %s", order);
    (void) z;

    /* never before a better priority */

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 1000);
    hi = source("coding", 1, 0);
    lo = source("batch", 2, 0);
    resident("a:latest");
    now = 0;
    x = push_owned(lo, tenant(lo, "key:x", 1), "a:latest", 1, 0);
    y = push_owned(hi, tenant(hi, "key:y", 1), "b:latest", 1, 0);
    ok(ngx_http_seadragon_queue_head(&sh, now) == y,
       "a resident model never passes a better priority");
    now = 5000;
    ok(ngx_http_seadragon_queue_head(&sh, now) == y,
       "nor does an overdue one");
    serve_all(order, sizeof(order), NULL);

    /* with fair shares, among the resident ones the counters decide */

    s = source("chat", 1, 0);
    now = 6000;
    a = tenant(s, "key:heavy", 1);
    x = push_owned(s, a, "a:latest", 1, 0);
    y = push_owned(s, tenant(s, "key:light", 1), "a:latest", 1, 0);
    z = push_owned(s, tenant(s, "key:none", 1), "b:latest", 1, 0);
    a->counter += 50000;
    ngx_rbtree_delete(&sh.sources[s].backlog, &a->vnode);
    ngx_rbtree_insert(&sh.sources[s].backlog, &a->vnode);
    ok(ngx_http_seadragon_queue_head(&sh, now) == y,
       "the resident candidates by counter");
    serve_all(order, sizeof(order), NULL);
    ok(x->state == NGX_HTTP_SEADRAGON_ENTRY_RUNNING && !used[z - entries],
       "and all are served");
}


static void
test_slots(void)
{
    ngx_uint_t                       s, i, nchat, nembed;
    ngx_http_seadragon_entry_t      *e, *chat[5];
    ngx_http_seadragon_model_conf_t  conf[20];

    reset(NGX_HTTP_SEADRAGON_FAIR_OFF, 0);
    s = source("chat", 1, 0);

    conf[0].name.data = (u_char *) "embed:latest";
    conf[0].name.len = 12;
    conf[0].slots = 1;
    conf[1].name.data = (u_char *) "chat:latest";
    conf[1].name.len = 11;
    conf[1].slots = 2;

    ok(ngx_http_seadragon_queue_models_set(&sh, conf, 2) == NGX_OK
       && sh.nmodels == 2
       && ngx_http_seadragon_queue_model_slot(&sh, (u_char *) "chat:latest",
                                              11) == 1
       && ngx_http_seadragon_queue_model_slot(&sh, (u_char *) "x:latest", 8)
          == -1,
       "models take slots in order; an unknown one has none");

    for (i = 0; i < 5; i++) {
        push_owned(s, NULL, "embed:latest", 1, 0);
        chat[i] = push_owned(s, NULL, "chat:latest", 1, 0);
    }

    push_owned(s, NULL, "other:latest", 1, 0);

    nchat = 0;
    nembed = 0;
    sh.capacity = 1;

    while ((e = ngx_http_seadragon_queue_head(&sh, now)) != NULL) {
        ngx_http_seadragon_queue_grant(&sh, e, now);

        if (e->model_slot == 0) {
            nembed++;

        } else if (e->model_slot == 1) {
            nchat++;
        }
    }

    ok(nembed == 1 && nchat == 2 && sh.models[0].running == 1
       && sh.models[1].running == 2 && sh.nrunning == 4,
       "a model's slots are never exceeded; a model without slots is not "
       "limited, and the gate's capacity is the caller's (%d running)",
       (int) sh.nrunning);
    ok(sh.nwaiting == 7, "the rest wait");

    done(chat[0]);
    e = ngx_http_seadragon_queue_head(&sh, now);
    ok(e == chat[2] && sh.models[1].running == 1,
       "a chat slot freed: the next chat request, not the older embed one");
    ngx_http_seadragon_queue_grant(&sh, e, now);
    ok(ngx_http_seadragon_queue_head(&sh, now) == NULL,
       "and no more");

    /* a reload: a model dropped keeps its index with no slots */

    conf[0] = conf[1];
    conf[0].slots = 3;
    conf[1].name.data = (u_char *) "new:latest";
    conf[1].name.len = 10;
    conf[1].slots = 1;
    ok(ngx_http_seadragon_queue_models_set(&sh, conf, 2) == NGX_OK
       && sh.nmodels == 3 && sh.models[0].slots == 0
       && sh.models[0].running == 1 && sh.models[1].slots == 3
       && sh.models[1].running == 2 && sh.models[2].slots == 1,
       "a dropped model keeps its index with slots 0, running counts stay");
    e = ngx_http_seadragon_queue_head(&sh, now);
    ok(e && e->model_slot == 0, "an embed request may start now");

    for (i = 0; i < 14; i++) {
        conf[i].name.data = malloc(16);
        conf[i].name.len = snprintf((char *) conf[i].name.data, 16,
                                    "m%d:latest", (int) i);
        conf[i].slots = 1;
    }

    ok(ngx_http_seadragon_queue_models_set(&sh, conf, 14) == NGX_ERROR
       && sh.nmodels == 3 && sh.models[1].slots == 3,
       "more than %d models in all: NGX_ERROR, nothing changed",
       NGX_HTTP_SEADRAGON_MODELS);
    ok(ngx_http_seadragon_queue_models_set(&sh, conf, 13) == NGX_OK
       && sh.nmodels == 16 && sh.models[1].slots == 0,
       "up to %d", NGX_HTTP_SEADRAGON_MODELS);
}


static void
test_round_robin(void)
{
    char                          order[256];
    uint64_t                      tokens[64];
    ngx_uint_t                    s, i;
    ngx_http_seadragon_tenant_t  *a, *b, *c;

    reset(NGX_HTTP_SEADRAGON_FAIR_REQUESTS, 0);
    s = source("chat", 1, 0);
    a = tenant(s, "addr:a", 1);
    b = tenant(s, "addr:b", 1);
    c = tenant(s, "addr:c", 1);

    for (i = 1; i <= 5; i++) {
        push(s, a, 1000);
        tokens[i] = 1000 * i;
    }

    for (i = 6; i <= 10; i++) {
        push(s, b, 1);
        tokens[i] = 1;
    }

    push(s, c, 7);
    push(s, c, 7);
    tokens[11] = 5;
    tokens[12] = 5;

    serve_all(order, sizeof(order), tokens);
    ok(strcmp(order, "1,6,11,2,7,12,3,8,4,9,5,10") == 0,
       "fair=requests is a round robin, whatever the tokens: %s", order);
    ok(a->tokens == 15000 && b->tokens == 5 && a->counter == 5000
       && b->counter == 5000 && c->counter == 2000,
       "tokens are counted, the counters move by requests");
}


static void
test_trim(void)
{
    char                          name[32];
    ngx_uint_t                    s, i;
    ngx_http_seadragon_entry_t   *e;
    ngx_http_seadragon_tenant_t  *t[5], *r;

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0);
    s = source("chat", 1, 0);

    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "addr:10.0.0.%d", (int) i);
        t[i] = tenant(s, name, 1);
    }

    ok(sh.ntenants == 5 && sh.nidle == 5, "new tenants are idle");

    /* t0 is used again: the youngest idle; t1 waits, t2 runs */

    e = push(s, t[0], 1);
    done(e);
    push(s, t[1], 1);
    e = push(s, t[2], 1);
    ngx_http_seadragon_queue_grant(&sh, ngx_http_seadragon_queue_head(&sh,
                                                                      now),
                                   now);
    ok(sh.nidle == 3, "a tenant with an entry waiting or running is not "
       "idle (%d)", (int) sh.nidle);

    r = ngx_http_seadragon_queue_tenant_trim(&sh, 1);
    ok(r == t[3], "trim hands back the oldest idle tenant first");
    r = ngx_http_seadragon_queue_tenant_trim(&sh, 1);
    ok(r == t[4], "then the next");
    ok(ngx_http_seadragon_queue_tenant_trim(&sh, 1) == NULL
       && sh.nidle == 1 && sh.ntenants == 3,
       "and keeps \"keep\" idle ones");
    tlive[3] = 0;
    tlive[4] = 0;
    ok(ngx_http_seadragon_queue_tenant_find(&sh, s,
                                            (u_char *) "addr:10.0.0.3", 13)
       == NULL
       && ngx_http_seadragon_queue_tenant_find(&sh, s,
                                               (u_char *) "addr:10.0.0.0", 13)
          == t[0],
       "a trimmed tenant is no longer found, the others are");
    ok(ngx_http_seadragon_queue_tenant_trim(&sh, 0) == t[0]
       && ngx_http_seadragon_queue_tenant_trim(&sh, 0) == NULL,
       "with 0 kept, every idle one goes; busy ones never");
    tlive[0] = 0;
    ok(ngx_http_seadragon_queue_tenant_find(&sh, 1,
                                            (u_char *) "addr:10.0.0.1", 13)
       == NULL, "a tenant is known within its source only");
    (void) e;
}


static void
test_purge(void)
{
    char                          why[256];
    ngx_uint_t                    s, n, requests;
    ngx_queue_t                   dead, *q;
    ngx_http_seadragon_entry_t   *e;
    ngx_http_seadragon_tenant_t  *a, *b;

    reset(NGX_HTTP_SEADRAGON_FAIR_TOKENS, 0);
    s = source("chat", 1, 0);
    a = tenant(s, "key:a", 1);
    b = tenant(s, "key:b", 1);

    push_owned(s, a, "m", 1, 1);
    push_owned(s, b, "m", 1, 2);
    push_owned(s, a, "m", 1, 1);
    push_owned(s, b, "m", 1, 1);
    push_owned(s, a, "m", 1, 2);
    e = ngx_http_seadragon_queue_head(&sh, now);
    ngx_http_seadragon_queue_grant(&sh, e, now);

    ngx_queue_init(&dead);
    ok(ngx_http_seadragon_queue_purge(&sh, 101, 1, &dead, &n, &requests)
       && n == 3, "a dead worker's 3 entries, one running, are purged");

    for (q = ngx_queue_head(&dead); q != ngx_queue_sentinel(&dead);
         q = ngx_queue_next(q))
    {
        used[ngx_queue_data(q, ngx_http_seadragon_entry_t, link)
             - entries] = 0;
    }

    ok(a->nwaiting == 1 && a->nrunning == 0 && b->nwaiting == 1
       && b->nrunning == 0 && sh.sources[s].ntenants == 2 && sh.nidle == 0,
       "its tenants' counts follow");
    ok(consistent(why, sizeof(why)), "and the books agree: %s", why);

    ngx_queue_init(&dead);
    ok(ngx_http_seadragon_queue_purge(&sh, 102, 1, &dead, &n, &requests)
       && n == 2 && sh.nidle == 2 && sh.sources[s].ntenants == 0,
       "the other worker's too: both tenants idle, the backlog empty");

    for (q = ngx_queue_head(&dead); q != ngx_queue_sentinel(&dead);
         q = ngx_queue_next(q))
    {
        used[ngx_queue_data(q, ngx_http_seadragon_entry_t, link)
             - entries] = 0;
    }

    ok(consistent(why, sizeof(why)), "still consistent: %s", why);
}


/*
 * Thousands of random operations on three sources (two of one priority,
 * one aging), a dozen tenants each, three models (one with a slot): after
 * every step the books agree, and what the queue chooses is what the
 * rules, read plainly over every entry, choose.
 */

static ngx_uint_t
test_random(ngx_uint_t fair, ngx_msec_t affinity, ngx_msec_t aging,
    ngx_uint_t steps)
{
    char                              name[32], why[256];
    ngx_uint_t                        i, op, src[3], n, requests, k, o;
    ngx_uint_t                        bad, pushes, grants;
    ngx_queue_t                       dead, *q;
    ngx_http_seadragon_entry_t       *e, *r, *list[NENTRIES];
    ngx_http_seadragon_model_conf_t   conf[2];
    static char                      *models[] = {
        "a:latest", "b:latest", "embed:latest", "c:latest", "d:latest",
        "e:latest"
    };

    reset(fair, affinity);
    sh.capacity = 3;
    src[0] = source("chat", 1, 0);
    src[1] = source("chat-b", 1, 0);
    src[2] = source("batch", 3, aging);

    conf[0].name.data = (u_char *) "embed:latest";
    conf[0].name.len = 12;
    conf[0].slots = 1;
    conf[1].name.data = (u_char *) "a:latest";
    conf[1].name.len = 8;
    conf[1].slots = 2;
    (void) ngx_http_seadragon_queue_models_set(&sh, conf, 2);

    bad = 0;
    pushes = 0;
    grants = 0;
    why[0] = '\0';

    for (i = 0; i < steps && !bad; i++) {
        now += rnd(40);
        op = rnd(100);

        if (op < 40 && sh.nwaiting + sh.nrunning < NENTRIES - 8) {
            k = rnd(3);
            snprintf(name, sizeof(name), "key:%d", (int) rnd(10));
            e = push_owned(src[k], rnd(10) ? tenant(src[k], name, 1 + rnd(3))
                                           : NULL,
                           models[rnd(random_models)], 1 + rnd(200),
                           rnd(NOWNERS));
            pushes++;

        } else if (op < 70 && sh.nrunning < sh.capacity) {
            e = ngx_http_seadragon_queue_head(&sh, now);
            r = reference();

            if (e != r) {
                snprintf(why, sizeof(why), "step %d: chose %d, the rules %d",
                         (int) i, e ? (int) e->id : 0, r ? (int) r->id : 0);
                bad = 1;
                break;
            }

            if (e) {
                ngx_http_seadragon_queue_grant(&sh, e, now);
                grants++;

                /* the gate's view: the last two dispatched */

                if (sh.resident.nmodels == 0
                    || sh.resident.models[0].len != e->model_len
                    || ngx_memcmp(sh.resident.models[0].name, e->model,
                                  e->model_len) != 0)
                {
                    sh.resident.models[1] = sh.resident.models[0];
                    ngx_memcpy(sh.resident.models[0].name, e->model,
                               e->model_len);
                    sh.resident.models[0].len = e->model_len;
                    sh.resident.nmodels = ngx_min(sh.resident.nmodels + 1,
                                                  2);
                }
            }

        } else if (op < 85) {
            /* a running one ends, charged what it served */

            for (k = rnd(NENTRIES), n = 0; n < NENTRIES; n++, k++) {
                e = &entries[k % NENTRIES];

                if (used[k % NENTRIES]
                    && e->state == NGX_HTTP_SEADRAGON_ENTRY_RUNNING)
                {
                    ngx_http_seadragon_queue_charge(&sh, e, rnd(500),
                                                    rnd(2000));
                    done(e);
                    break;
                }
            }

        } else if (op < 95) {
            /* a waiting one leaves (its client closed, or timed out) */

            for (k = rnd(NENTRIES), n = 0; n < NENTRIES; n++, k++) {
                e = &entries[k % NENTRIES];

                if (used[k % NENTRIES]
                    && e->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING)
                {
                    done(e);
                    break;
                }
            }

        } else if (op < 97) {
            /* a worker dies, another one takes its place */

            o = rnd(NOWNERS);
            ngx_queue_init(&dead);
            (void) ngx_http_seadragon_queue_purge(&sh, owners[o].pid,
                                                  owners[o].token, &dead, &n,
                                                  &requests);

            for (q = ngx_queue_head(&dead); q != ngx_queue_sentinel(&dead);
                 q = ngx_queue_next(q))
            {
                used[ngx_queue_data(q, ngx_http_seadragon_entry_t, link)
                     - entries] = 0;
            }

            ngx_memzero(&owners[o], sizeof(ngx_http_seadragon_owner_t));
            owners[o].pid = 100 + o;
            owners[o].token = i + 2;
            ngx_http_seadragon_queue_owner_add(&sh, &owners[o]);

        } else {
            /* idle tenants are trimmed */

            while ((r = (void *) ngx_http_seadragon_queue_tenant_trim(&sh, 4))
                   != NULL)
            {
                tlive[(ngx_http_seadragon_tenant_t *) r - tenants] = 0;
            }
        }

        if (!consistent(why, sizeof(why))
            || !rows_consistent(why, sizeof(why)))
        {
            bad = 1;
            break;
        }

        for (k = 0; k < sh.nmodels; k++) {
            if (sh.models[k].slots
                && sh.models[k].running > sh.models[k].slots)
            {
                snprintf(why, sizeof(why), "model %d runs %d of %d",
                         (int) k, (int) sh.models[k].running,
                         (int) sh.models[k].slots);
                bad = 1;
            }
        }

        /* the static order is sorted, and positions agree with it */

        if (i % 64 == 0 && sh.nwaiting) {
            n = ngx_http_seadragon_queue_order(&sh, now, list, NENTRIES);

            if (n != sh.nwaiting) {
                snprintf(why, sizeof(why), "order lists %d of %d", (int) n,
                         (int) sh.nwaiting);
                bad = 1;
            }

            for (k = 0; k < n && !bad; k++) {
                if ((k && !ngx_http_seadragon_queue_fair_before(&sh,
                                                  list[k - 1], list[k], now))
                    || ngx_http_seadragon_queue_position(&sh, list[k], now)
                       != k + 1)
                {
                    snprintf(why, sizeof(why), "order/position at %d",
                             (int) k);
                    bad = 1;
                }
            }

            n = ngx_http_seadragon_queue_order(&sh, now, list, 5);

            for (k = 0; k < n && !bad; k++) {
                if (ngx_http_seadragon_queue_position(&sh, list[k], now)
                    != k + 1)
                {
                    snprintf(why, sizeof(why), "order of 5 at %d", (int) k);
                    bad = 1;
                }
            }
        }
    }

    ok(!bad && pushes > steps / 4 && grants > steps / 8,
       "random: fair=%d affinity=%d aging=%d, %d steps (%d pushes, %d "
       "grants): books and choices agree with the rules %s", (int) fair,
       (int) affinity, (int) aging, (int) i, (int) pushes, (int) grants,
       why);

    return bad;
}


int
main(void)
{
    ngx_uint_t  fair, aff, aging;

    ngx_pagesize = 4096;

    /* what was printed before a crash is still seen */
    setvbuf(stdout, NULL, _IOLBF, 0);

    test_vtc_order();
    test_fifo_and_lift();
    test_weights_priority_aging();
    test_affinity();
    test_slots();
    test_round_robin();
    test_trim();
    test_purge();
    test_rows_overflow();
    test_rows_budget();

    for (fair = 0; fair < 3; fair++) {
        for (aff = 0; aff < 2; aff++) {
            for (aging = 0; aging < 2; aging++) {
                seed = 42 + fair * 4 + aff * 2 + aging;
                test_random(fair, aff ? 500 : 0, aging ? 150 : 0, 4000);
            }
        }
    }

    /* six models: more than affinity's index has rows, some overflow */

    random_models = 6;

    for (fair = 0; fair < 3; fair++) {
        for (aging = 0; aging < 2; aging++) {
            seed = 142 + fair * 2 + aging;
            test_random(fair, 500, aging ? 150 : 0, 4000);
        }
    }

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
