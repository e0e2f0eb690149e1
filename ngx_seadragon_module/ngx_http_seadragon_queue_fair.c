
/*
 * Copyright (C) The Seadragon authors
 *
 * Fair shares, affinity and per-model slots: which waiting entry the gate
 * admits next, and the tenants' virtual token counters (Sheng et al.,
 * "Fairness in Serving Large Language Models", OSDI 2024).  Pure like the
 * queue: the caller holds the zone's lock and owns every record.
 *
 * The order (ngx_http_seadragon_queue_choose):
 *
 *   eligible     a waiting entry whose model is not at its own slots
 *                (the gate's capacity is the caller's to check);
 *   P*           the best effective priority among eligible entries;
 *   C            the eligible entries at P*;
 *   affinity     if an entry of C has waited "affinity" or more, the
 *                overdue entry of C with the smallest id, fair shares or
 *                not; else, if an entry of C asks for a resident model,
 *                C is only those;
 *   fair shares  the entry of C whose tenant has the smallest counter,
 *                ties by the smaller id: the oldest entry in C of the
 *                tenant that received the least service; fair off: the
 *                entry of C with the smallest id.
 *
 * With fair shares off, affinity off and no model at its slots, that is
 * the queue's order before this file: priority, then arrival.
 * An entry without a tenant (queued by a worker whose configuration had
 * fair shares off) counts as a tenant at counter 0; a source with such
 * entries is walked along its FIFO (src->nplain), else by its backlog.
 *
 * A tenant's counter moves by charge * VTC_UNIT / weight: the estimate at
 * grant, corrected by queue_charge() when the answer's tokens are known.
 * A tenant that becomes backlogged is lifted to the smallest counter of
 * the backlogged tenants of its priority, so that idling banks no credit.
 *
 * Affinity's resident pass does not walk the line: the waiting entries of
 * up to NGX_HTTP_SEADRAGON_WAIT_MODELS models (by name and model_slot,
 * rows of sh->wait_models) are also in FIFOs of their own per source, so
 * that the pass is skipped when no resident model has an entry waiting,
 * and otherwise looks at the head of each resident model's FIFO (fair
 * off) or at the first WAIT_BUDGET of them (fair shares: their tenants'
 * counters are in no order), walking the backlog as before beyond that,
 * but passing in O(1) a tenant whose rows (tenant->rows) hold none of
 * the resident models.  An entry that found no row (more models waiting
 * at once than rows) is counted in sh->wait_overflow: while there is
 * one, the pass walks as before.
 */


#include "ngx_http_seadragon_module.h"


typedef struct {
    ngx_msec_t                   now;
    ngx_uint_t                   full;        /* models at their slots */
    ngx_uint_t                   best;        /* P* */
    ngx_uint_t                   resident;    /* only resident models */
    ngx_uint_t                   rows;        /* resident wait_models */
    ngx_http_seadragon_entry_t  *chosen;
    uint64_t                     counter;     /* the chosen one's */
    ngx_http_seadragon_entry_t  *first[NGX_HTTP_SEADRAGON_MAX_SOURCES];
} ngx_http_seadragon_choice_t;


#define ngx_http_seadragon_vnode_tenant(node)                                \
    ((ngx_http_seadragon_tenant_t *)                                         \
         ((u_char *) (node) - offsetof(ngx_http_seadragon_tenant_t, vnode)))


static ngx_uint_t ngx_http_seadragon_queue_eligible(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_entry_t *e,
    ngx_uint_t full);
static void ngx_http_seadragon_queue_offer(ngx_http_seadragon_choice_t *ch,
    ngx_http_seadragon_entry_t *e);
static void ngx_http_seadragon_queue_choose_fifo(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_choice_t *ch,
    ngx_uint_t i);
static void ngx_http_seadragon_queue_choose_tenants(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_choice_t *ch,
    ngx_uint_t i);
static void ngx_http_seadragon_queue_choose_rows(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_choice_t *ch,
    ngx_uint_t i);
static ngx_uint_t ngx_http_seadragon_queue_wait_resident(
    ngx_http_seadragon_shctx_t *sh);
static ngx_http_seadragon_entry_t *ngx_http_seadragon_queue_choose_pass(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_choice_t *ch);
static void ngx_http_seadragon_queue_backlog_insert_value(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);
static void ngx_http_seadragon_queue_backlog_enter(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_tenant_t *t);
static void ngx_http_seadragon_queue_backlog_rekey(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_tenant_t *t);


void
ngx_http_seadragon_queue_fair_init(ngx_http_seadragon_shctx_t *sh)
{
    ngx_http_seadragon_queue_tenant_init(sh);
    sh->loaded = 1;
}


void
ngx_http_seadragon_queue_fair_source(ngx_http_seadragon_shm_source_t *src)
{
    ngx_uint_t  k;

    ngx_rbtree_init(&src->backlog, &src->backlog_sentinel,
                    ngx_http_seadragon_queue_backlog_insert_value);

    for (k = 0; k < NGX_HTTP_SEADRAGON_WAIT_MODELS; k++) {
        ngx_queue_init(&src->mwaiting[k]);
    }
}


/* the rows with entries waiting whose model is resident, as bits */

static ngx_uint_t
ngx_http_seadragon_queue_wait_resident(ngx_http_seadragon_shctx_t *sh)
{
    ngx_uint_t                            k, j, rows;
    ngx_http_seadragon_wait_model_t      *w;
    ngx_http_seadragon_resident_model_t  *m;

    rows = 0;

    for (k = 0; k < NGX_HTTP_SEADRAGON_WAIT_MODELS; k++) {
        w = &sh->wait_models[k];

        if (w->nwaiting == 0) {
            continue;
        }

        for (j = 0;
             j < sh->resident.nmodels && j < NGX_HTTP_SEADRAGON_RESIDENT;
             j++)
        {
            m = &sh->resident.models[j];

            if (m->len == w->len && ngx_memcmp(m->name, w->name, m->len) == 0)
            {
                rows |= (ngx_uint_t) 1 << k;
                break;
            }
        }
    }

    return rows;
}


/* whether an entry's model has room (full: a bit a model at its slots) */

static ngx_uint_t
ngx_http_seadragon_queue_eligible(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *e, ngx_uint_t full)
{
    if (full == 0
        || e->model_slot < 0
        || (ngx_uint_t) e->model_slot >= sh->nmodels)
    {
        return 1;
    }

    return (full & ((ngx_uint_t) 1 << e->model_slot)) == 0;
}


ngx_uint_t
ngx_http_seadragon_queue_resident(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_uint_t                            i;
    ngx_http_seadragon_resident_model_t  *m;

    for (i = 0; i < sh->resident.nmodels && i < NGX_HTTP_SEADRAGON_RESIDENT;
         i++)
    {
        m = &sh->resident.models[i];

        if (m->len == entry->model_len
            && ngx_memcmp(m->name, entry->model, m->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* a candidate: kept if (its tenant's counter, id) is the smallest yet */

static void
ngx_http_seadragon_queue_offer(ngx_http_seadragon_choice_t *ch,
    ngx_http_seadragon_entry_t *e)
{
    uint64_t  counter;

    counter = e->tenant ? e->tenant->counter : 0;

    if (ch->chosen == NULL
        || counter < ch->counter
        || (counter == ch->counter && e->id < ch->chosen->id))
    {
        ch->chosen = e;
        ch->counter = counter;
    }
}


ngx_http_seadragon_entry_t *
ngx_http_seadragon_queue_choose(ngx_http_seadragon_shctx_t *sh,
    ngx_msec_t now)
{
    ngx_uint_t                        i, p;
    ngx_queue_t                      *q;
    ngx_http_seadragon_entry_t       *e, *over;
    ngx_http_seadragon_choice_t       ch;
    ngx_http_seadragon_shm_source_t  *src;

    ch.now = now;
    ch.full = 0;
    ch.best = NGX_MAX_UINT32_VALUE;
    ch.resident = 0;
    ch.rows = 0;
    ch.chosen = NULL;
    ch.counter = 0;

    for (i = 0; i < sh->nmodels && i < NGX_HTTP_SEADRAGON_MODELS; i++) {
        if (sh->models[i].slots
            && sh->models[i].running >= sh->models[i].slots)
        {
            ch.full |= (ngx_uint_t) 1 << i;
        }
    }

    /* P*: each source's first eligible entry is its most urgent one */

    for (i = 0; i < sh->nsources; i++) {
        src = &sh->sources[i];
        ch.first[i] = NULL;

        for (q = ngx_queue_head(&src->waiting);
             q != ngx_queue_sentinel(&src->waiting);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            if (ngx_http_seadragon_queue_eligible(sh, e, ch.full)) {
                ch.first[i] = e;
                break;
            }
        }

        if (ch.first[i] == NULL) {
            continue;
        }

        p = ngx_http_seadragon_queue_effective(sh, ch.first[i], now);

        if (p < ch.best) {
            ch.best = p;
        }
    }

    if (ch.best == NGX_MAX_UINT32_VALUE) {
        return NULL;
    }

    if (sh->affinity == 0) {
        return ngx_http_seadragon_queue_choose_pass(sh, &ch);
    }

    /* nothing is passed over beyond "affinity": the oldest overdue first */

    over = NULL;

    for (i = 0; i < sh->nsources; i++) {
        e = ch.first[i];

        if (e == NULL
            || ngx_http_seadragon_queue_effective(sh, e, now) != ch.best
            || (ngx_msec_int_t) (now - e->enqueued)
               < (ngx_msec_int_t) sh->affinity)
        {
            continue;
        }

        if (over == NULL || e->id < over->id) {
            over = e;
        }
    }

    if (over) {
        return over;
    }

    /* no resident model has an entry waiting: no resident pass */

    ch.rows = sh->resident.nmodels ? ngx_http_seadragon_queue_wait_resident(sh)
                                   : 0;

    if (ch.rows || (sh->resident.nmodels && sh->wait_overflow)) {
        ch.resident = 1;
        e = ngx_http_seadragon_queue_choose_pass(sh, &ch);

        if (e) {
            return e;
        }

        ch.resident = 0;
    }

    return ngx_http_seadragon_queue_choose_pass(sh, &ch);
}


/* the best of C (restricted to resident models if ch->resident) */

static ngx_http_seadragon_entry_t *
ngx_http_seadragon_queue_choose_pass(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_choice_t *ch)
{
    ngx_uint_t                   i;
    ngx_http_seadragon_entry_t  *e;

    ch->chosen = NULL;
    ch->counter = 0;

    for (i = 0; i < sh->nsources; i++) {
        e = ch->first[i];

        if (e == NULL
            || ngx_http_seadragon_queue_effective(sh, e, ch->now) != ch->best)
        {
            continue;
        }

        if (sh->fair == NGX_HTTP_SEADRAGON_FAIR_OFF) {

            /* by id: the first candidate of each source */

            if (ch->resident == 0) {
                if (ch->chosen == NULL || e->id < ch->chosen->id) {
                    ch->chosen = e;
                }

                continue;
            }

            if (sh->wait_overflow == 0) {
                ngx_http_seadragon_queue_choose_rows(sh, ch, i);

            } else {
                ngx_http_seadragon_queue_choose_fifo(sh, ch, i);
            }

            continue;
        }

        if (ch->resident && sh->wait_overflow == 0) {
            ngx_http_seadragon_queue_choose_rows(sh, ch, i);

        } else if (sh->sources[i].nplain) {
            /* entries queued before fair shares were on: walk them all */
            ngx_http_seadragon_queue_choose_fifo(sh, ch, i);

        } else {
            ngx_http_seadragon_queue_choose_tenants(sh, ch, i);
        }
    }

    return ch->chosen;
}


/*
 * The resident pass of a source by the FIFOs of the resident models' rows
 * (no entry is in the overflow).  The entries of a row share their model
 * and model_slot, so they are all eligible or none; along a FIFO the
 * effective priority never gets better, and an eligible entry is not
 * before the source's first eligible one, so it is not better than P*.
 * Fair off: the head of each row at P*.  Fair shares: every entry at P*
 * is offered, up to WAIT_BUDGET, then the source is walked as before
 * (what was offered was in C: the choice is the same).
 */

static void
ngx_http_seadragon_queue_choose_rows(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_choice_t *ch, ngx_uint_t i)
{
    ngx_uint_t                        k, p, budget;
    ngx_queue_t                      *q, *h;
    ngx_http_seadragon_entry_t       *e;
    ngx_http_seadragon_shm_source_t  *src;

    src = &sh->sources[i];
    budget = NGX_HTTP_SEADRAGON_WAIT_BUDGET;

    for (k = 0; k < NGX_HTTP_SEADRAGON_WAIT_MODELS; k++) {

        if ((ch->rows & ((ngx_uint_t) 1 << k)) == 0) {
            continue;
        }

        h = &src->mwaiting[k];

        for (q = ngx_queue_head(h);
             q != ngx_queue_sentinel(h);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, mlink);

            if (!ngx_http_seadragon_queue_eligible(sh, e, ch->full)) {
                break;
            }

            p = ngx_http_seadragon_queue_effective(sh, e, ch->now);

            if (p > ch->best) {
                break;
            }

            if (p < ch->best) {
                continue;
            }

            if (sh->fair == NGX_HTTP_SEADRAGON_FAIR_OFF) {
                if (ch->chosen == NULL || e->id < ch->chosen->id) {
                    ch->chosen = e;
                }

                break;
            }

            if (budget-- == 0) {
                goto walk;
            }

            ngx_http_seadragon_queue_offer(ch, e);
        }
    }

    return;

walk:

    if (src->nplain) {
        ngx_http_seadragon_queue_choose_fifo(sh, ch, i);

    } else {
        ngx_http_seadragon_queue_choose_tenants(sh, ch, i);
    }
}


/*
 * The candidates of a source along its FIFO, from its first eligible
 * entry, until the effective priority is worse than P* (along a FIFO it
 * never gets better).  Fair off: the first candidate is the source's.
 */

static void
ngx_http_seadragon_queue_choose_fifo(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_choice_t *ch, ngx_uint_t i)
{
    ngx_uint_t                        p;
    ngx_queue_t                      *q;
    ngx_http_seadragon_entry_t       *e;
    ngx_http_seadragon_shm_source_t  *src;

    src = &sh->sources[i];

    for (q = &ch->first[i]->link;
         q != ngx_queue_sentinel(&src->waiting);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

        p = ngx_http_seadragon_queue_effective(sh, e, ch->now);

        if (p > ch->best) {
            break;
        }

        if (p < ch->best
            || !ngx_http_seadragon_queue_eligible(sh, e, ch->full)
            || (ch->resident && !ngx_http_seadragon_queue_resident(sh, e)))
        {
            continue;
        }

        if (sh->fair == NGX_HTTP_SEADRAGON_FAIR_OFF) {
            if (ch->chosen == NULL || e->id < ch->chosen->id) {
                ch->chosen = e;
            }

            return;
        }

        ngx_http_seadragon_queue_offer(ch, e);
    }
}


/*
 * The candidates of a source by its backlog, in (counter, head id) order:
 * each tenant's oldest candidate.  A tenant's candidate has an id no
 * smaller than its head's, so the walk ends at the first tenant that
 * sorts after the best candidate yet: without filters, at the second.
 */

static void
ngx_http_seadragon_queue_choose_tenants(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_choice_t *ch, ngx_uint_t i)
{
    ngx_uint_t                        p, rows, seen;
    ngx_queue_t                      *q;
    ngx_rbtree_node_t                *node;
    ngx_http_seadragon_entry_t       *e, *head;
    ngx_http_seadragon_tenant_t      *t;
    ngx_http_seadragon_shm_source_t  *src;

    src = &sh->sources[i];

    if (src->backlog.root == src->backlog.sentinel) {
        return;
    }

    /* the resident pass by rows: a tenant in none of them is passed */

    rows = (ch->resident && sh->wait_overflow == 0) ? ch->rows : 0;

    for (node = ngx_rbtree_min(src->backlog.root, src->backlog.sentinel);
         node;
         node = ngx_rbtree_next(&src->backlog, node))
    {
        t = ngx_http_seadragon_vnode_tenant(node);

        head = ngx_queue_data(ngx_queue_head(&t->waiting),
                              ngx_http_seadragon_entry_t, tlink);

        if (ch->chosen
            && (t->counter > ch->counter
                || (t->counter == ch->counter && head->id > ch->chosen->id)))
        {
            return;
        }

        if (rows && (t->rows & rows) == 0) {
            continue;
        }

        seen = 0;

        for (q = &head->tlink;
             q != ngx_queue_sentinel(&t->waiting);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, tlink);

            if (e->wait_slot >= 0) {
                seen |= (ngx_uint_t) 1 << e->wait_slot;
            }

            p = ngx_http_seadragon_queue_effective(sh, e, ch->now);

            if (p > ch->best) {
                break;
            }

            if (p < ch->best
                || !ngx_http_seadragon_queue_eligible(sh, e, ch->full)
                || (ch->resident
                    && !ngx_http_seadragon_queue_resident(sh, e)))
            {
                continue;
            }

            ngx_http_seadragon_queue_offer(ch, e);
            break;
        }

        if (rows && q == ngx_queue_sentinel(&t->waiting)) {
            /* all its waiting entries seen: its rows are exactly these */
            t->rows = (u_char) seen;
        }
    }
}


/*
 * The static order of queue_order() and queue_position() with fair shares
 * or affinity: (effective priority, affinity class: overdue 0, resident
 * 1, other 2, tenant counter, id): the order as of now, before counters
 * move.
 */

ngx_uint_t
ngx_http_seadragon_queue_fair_before(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *a, ngx_http_seadragon_entry_t *b,
    ngx_msec_t now)
{
    uint64_t    ca, cb;
    ngx_uint_t  pa, pb;

    pa = ngx_http_seadragon_queue_effective(sh, a, now);
    pb = ngx_http_seadragon_queue_effective(sh, b, now);

    if (pa != pb) {
        return pa < pb;
    }

    if (sh->affinity) {
        pa = (ngx_msec_int_t) (now - a->enqueued)
             >= (ngx_msec_int_t) sh->affinity
             ? 0 : (ngx_http_seadragon_queue_resident(sh, a) ? 1 : 2);
        pb = (ngx_msec_int_t) (now - b->enqueued)
             >= (ngx_msec_int_t) sh->affinity
             ? 0 : (ngx_http_seadragon_queue_resident(sh, b) ? 1 : 2);

        if (pa != pb) {
            return pa < pb;
        }

        if (pa == 0) {
            return a->id < b->id;
        }
    }

    if (sh->fair != NGX_HTTP_SEADRAGON_FAIR_OFF) {
        ca = a->tenant ? a->tenant->counter : 0;
        cb = b->tenant ? b->tenant->counter : 0;

        if (ca != cb) {
            return ca < cb;
        }
    }

    return a->id < b->id;
}


/*
 * The backlog of a source: its tenants with entries waiting, by counter,
 * then by the id of their oldest waiting entry.  The node's key is not
 * used: a counter is 64 bits where the key may be 32.
 */

static ngx_uint_t
ngx_http_seadragon_queue_backlog_less(ngx_http_seadragon_tenant_t *a,
    ngx_http_seadragon_tenant_t *b)
{
    ngx_http_seadragon_entry_t  *ha, *hb;

    if (a->counter != b->counter) {
        return a->counter < b->counter;
    }

    ha = ngx_queue_data(ngx_queue_head(&a->waiting),
                        ngx_http_seadragon_entry_t, tlink);
    hb = ngx_queue_data(ngx_queue_head(&b->waiting),
                        ngx_http_seadragon_entry_t, tlink);

    return ha->id < hb->id;
}


static void
ngx_http_seadragon_queue_backlog_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t  **p;

    for ( ;; ) {

        p = ngx_http_seadragon_queue_backlog_less(
                ngx_http_seadragon_vnode_tenant(node),
                ngx_http_seadragon_vnode_tenant(temp))
            ? &temp->left : &temp->right;

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* a tenant becomes backlogged: lifted, so that idling banks no credit */

static void
ngx_http_seadragon_queue_backlog_enter(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_tenant_t *t)
{
    uint64_t                          low, floor;
    ngx_uint_t                        i, found;
    ngx_rbtree_node_t                *node;
    ngx_http_seadragon_shm_source_t  *src, *s;

    src = &sh->sources[t->source];

    found = 0;
    low = 0;
    floor = 0;

    for (i = 0; i < sh->nsources; i++) {
        s = &sh->sources[i];

        if (s->priority != src->priority) {
            continue;
        }

        if (s->vfloor > floor) {
            floor = s->vfloor;
        }

        if (s->backlog.root == s->backlog.sentinel) {
            continue;
        }

        node = ngx_rbtree_min(s->backlog.root, s->backlog.sentinel);

        if (!found || ngx_http_seadragon_vnode_tenant(node)->counter < low) {
            low = ngx_http_seadragon_vnode_tenant(node)->counter;
            found = 1;
        }
    }

    if (!found) {
        low = floor;
    }

    if (t->counter < low) {
        t->counter = low;
    }

    t->vnode.key = (ngx_rbtree_key_t) t->counter;
    src->backlog.insert = ngx_http_seadragon_queue_backlog_insert_value;
    ngx_rbtree_insert(&src->backlog, &t->vnode);
    src->ntenants++;
}


/* its counter or its oldest waiting entry changed: its place too */

static void
ngx_http_seadragon_queue_backlog_rekey(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_tenant_t *t)
{
    ngx_http_seadragon_shm_source_t  *src;

    src = &sh->sources[t->source];

    ngx_rbtree_delete(&src->backlog, &t->vnode);

    if (t->nwaiting == 0) {
        src->ntenants--;
        return;
    }

    t->vnode.key = (ngx_rbtree_key_t) t->counter;
    src->backlog.insert = ngx_http_seadragon_queue_backlog_insert_value;
    ngx_rbtree_insert(&src->backlog, &t->vnode);
}


/* queue_push(): the entry has its id, and is at the tail of its FIFO */

void
ngx_http_seadragon_queue_fair_push(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_http_seadragon_tenant_t  *t;

    t = entry->tenant;

    if (t == NULL) {
        sh->sources[entry->source].nplain++;
        return;
    }

    if (t->nwaiting == 0 && t->nrunning == 0) {
        ngx_queue_remove(&t->idle);
        sh->nidle--;
    }

    ngx_queue_insert_tail(&t->waiting, &entry->tlink);

    if (entry->wait_slot >= 0) {
        t->rows |= (u_char) (1 << entry->wait_slot);
    }

    if (t->nwaiting++ == 0) {
        ngx_http_seadragon_queue_backlog_enter(sh, t);
    }
}


/* queue_grant(): the entry is still waiting */

void
ngx_http_seadragon_queue_fair_grant(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now)
{
    uint64_t                      charge;
    ngx_http_seadragon_tenant_t  *t;

    if (entry->model_slot >= 0
        && (ngx_uint_t) entry->model_slot < sh->nmodels)
    {
        sh->models[entry->model_slot].running++;
    }

    t = entry->tenant;

    if (t == NULL) {
        sh->sources[entry->source].nplain--;
        return;
    }

    switch (sh->fair) {

    case NGX_HTTP_SEADRAGON_FAIR_TOKENS:
        charge = entry->estimate * sh->prompt_weight;
        break;

    case NGX_HTTP_SEADRAGON_FAIR_REQUESTS:
        charge = 1;
        break;

    default:
        charge = 0;
    }

    charge = charge * NGX_HTTP_SEADRAGON_VTC_UNIT / (t->weight ? t->weight : 1);

    sh->sources[t->source].vfloor = t->counter;
    t->counter += charge;
    entry->charge = charge;

    t->requests++;
    t->last = entry->enqueued_sec
              + (time_t) ((ngx_msec_int_t) (now - entry->enqueued) > 0
                          ? (now - entry->enqueued) / 1000 : 0);

    ngx_queue_remove(&entry->tlink);
    t->nwaiting--;
    t->nrunning++;

    ngx_http_seadragon_queue_backlog_rekey(sh, t);
}


/* queue_remove(): the entry, waiting or running, leaves the zone */

void
ngx_http_seadragon_queue_fair_leave(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_uint_t                    head;
    ngx_http_seadragon_tenant_t  *t;

    t = entry->tenant;

    if (entry->state == NGX_HTTP_SEADRAGON_ENTRY_RUNNING) {

        if (entry->model_slot >= 0
            && (ngx_uint_t) entry->model_slot < sh->nmodels
            && sh->models[entry->model_slot].running)
        {
            sh->models[entry->model_slot].running--;
        }

        if (t == NULL) {
            return;
        }

        t->nrunning--;

    } else {

        if (t == NULL) {
            sh->sources[entry->source].nplain--;
            return;
        }

        head = (ngx_queue_head(&t->waiting) == &entry->tlink);

        ngx_queue_remove(&entry->tlink);
        t->nwaiting--;

        if (head) {
            ngx_http_seadragon_queue_backlog_rekey(sh, t);
        }
    }

    if (t->nwaiting == 0 && t->nrunning == 0) {
        ngx_queue_insert_tail(&sh->tenants_idle, &t->idle);
        sh->nidle++;
    }
}


/*
 * The answer's tokens are known: the estimate charged at grant becomes
 * what was served.  The entry is still in the zone (running).
 */

void
ngx_http_seadragon_queue_charge(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, uint64_t prompt, uint64_t completion)
{
    uint64_t                      actual;
    ngx_http_seadragon_tenant_t  *t;

    t = entry->tenant;

    if (t == NULL) {
        return;
    }

    /* an engine's figures may be anything: no product may wrap */

    prompt = ngx_min(prompt, NGX_MAX_UINT32_VALUE);
    completion = ngx_min(completion, NGX_MAX_UINT32_VALUE);

    t->tokens = (t->tokens + prompt + completion >= t->tokens)
                ? t->tokens + prompt + completion : (uint64_t) -1;

    if (sh->fair != NGX_HTTP_SEADRAGON_FAIR_TOKENS) {
        return;
    }

    actual = (prompt * sh->prompt_weight + completion * sh->completion_weight)
             * NGX_HTTP_SEADRAGON_VTC_UNIT / (t->weight ? t->weight : 1);

    if (actual >= entry->charge) {
        t->counter += actual - entry->charge;

    } else {
        t->counter = t->counter > entry->charge - actual
                     ? t->counter - (entry->charge - actual) : 0;
    }

    entry->charge = actual;

    if (t->nwaiting) {
        ngx_http_seadragon_queue_backlog_rekey(sh, t);
    }
}
