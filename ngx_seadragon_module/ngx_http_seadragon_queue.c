
/*
 * Copyright (C) The Seadragon authors
 *
 * The queue held in a seadragon zone: one FIFO per source and the list of
 * entries that hold the gate.  Pure pointer work on memory the caller owns
 * and has locked; nothing here allocates, logs or touches a request, so it
 * is unit-tested on its own (t/unit/).
 *
 * Dispatch order is the lowest priority number first and, among equal
 * priorities, the earliest arrival (the entry id is an arrival ticket).
 * With aging, the priority compared is the effective one: one step more
 * urgent for every "aging" milliseconds waited, down to 0.  All entries
 * of a FIFO age at the same rate and its head is its oldest, so the head
 * is still its most urgent entry, and finding the next entry costs one
 * look at each source: O(number of sources).
 *
 * Fair shares, affinity and per-model slots refine that order within the
 * best effective priority (ngx_http_seadragon_queue_fair.c, which also
 * keeps the tenants' books on push, grant and remove); with none of them
 * on, it is the order above.
 */


#include "ngx_http_seadragon_module.h"


static void ngx_http_seadragon_queue_client_insert_value(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);
static void ngx_http_seadragon_queue_client_leave(
    ngx_http_seadragon_shctx_t *sh, ngx_http_seadragon_entry_t *entry);


void
ngx_http_seadragon_queue_init(ngx_http_seadragon_shctx_t *sh, time_t now)
{
    ngx_memzero(sh, sizeof(ngx_http_seadragon_shctx_t));

    ngx_queue_init(&sh->running);
    ngx_queue_init(&sh->owners);
    ngx_queue_init(&sh->clients_free);
    ngx_rbtree_init(&sh->clients, &sh->clients_sentinel,
                    ngx_http_seadragon_queue_client_insert_value);
    ngx_http_seadragon_queue_fair_init(sh);
    sh->next_id = 1;
    sh->started = now;
    sh->gate_changed = now;
}


/*
 * Finds the slot of a source by name, or takes a new one; a slot keeps its
 * FIFO and counters across reloads while its priority follows the newest
 * configuration.
 */

ngx_int_t
ngx_http_seadragon_queue_source_slot(ngx_http_seadragon_shctx_t *sh,
    ngx_str_t *name, ngx_uint_t priority, ngx_uint_t max_queued,
    ngx_msec_t aging)
{
    ngx_uint_t                        i;
    ngx_http_seadragon_shm_source_t  *src;

    for (i = 0; i < sh->nsources; i++) {
        src = &sh->sources[i];

        if (src->name_len == name->len
            && ngx_strncmp(src->name, name->data, name->len) == 0)
        {
            src->priority = priority;
            src->max_queued = max_queued;
            src->aging = aging;
            return i;
        }
    }

    if (sh->nsources == NGX_HTTP_SEADRAGON_MAX_SOURCES
        || name->len > NGX_HTTP_SEADRAGON_NAME_LEN)
    {
        return NGX_ERROR;
    }

    src = &sh->sources[sh->nsources];

    ngx_memcpy(src->name, name->data, name->len);
    src->name_len = name->len;
    src->priority = priority;
    src->max_queued = max_queued;
    src->aging = aging;
    ngx_queue_init(&src->waiting);
    ngx_http_seadragon_queue_fair_source(src);

    return sh->nsources++;
}


static void
ngx_http_seadragon_queue_unlink(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_http_seadragon_shm_source_t  *src;

    src = &sh->sources[entry->source];

    ngx_queue_remove(&entry->link);

    if (entry->state == NGX_HTTP_SEADRAGON_ENTRY_WAITING) {
        src->nwaiting--;
        sh->nwaiting--;

        ngx_http_seadragon_queue_wait_leave(sh, entry);
        ngx_http_seadragon_queue_client_leave(sh, entry);

    } else {
        src->nrunning--;
        sh->nrunning--;
    }
}


void
ngx_http_seadragon_queue_push(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_http_seadragon_shm_source_t  *src;

    src = &sh->sources[entry->source];

    entry->id = sh->next_id++;
    entry->priority = src->priority;
    entry->state = NGX_HTTP_SEADRAGON_ENTRY_WAITING;

    ngx_queue_insert_tail(&src->waiting, &entry->link);

    src->nwaiting++;
    sh->nwaiting++;

    ngx_http_seadragon_queue_wait_enter(sh, entry);
    ngx_http_seadragon_queue_fair_push(sh, entry);

    if (entry->owner) {
        entry->owner->entries++;
    }

    if (entry->client) {
        entry->client->parked++;
    }
}


/* the priority an entry competes with now */

ngx_uint_t
ngx_http_seadragon_queue_effective(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now)
{
    ngx_msec_t   aging;
    ngx_uint_t   steps;

    aging = sh->sources[entry->source].aging;

    if (aging == 0) {
        return entry->priority;
    }

    steps = (ngx_msec_int_t) (now - entry->enqueued) > 0
            ? (now - entry->enqueued) / aging : 0;

    return entry->priority > steps ? entry->priority - steps : 0;
}


/* whether a goes before b */

static ngx_uint_t
ngx_http_seadragon_queue_before(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *a, ngx_http_seadragon_entry_t *b,
    ngx_msec_t now)
{
    ngx_uint_t  pa, pb;

    if (sh->fair != NGX_HTTP_SEADRAGON_FAIR_OFF || sh->affinity) {
        return ngx_http_seadragon_queue_fair_before(sh, a, b, now);
    }

    pa = ngx_http_seadragon_queue_effective(sh, a, now);
    pb = ngx_http_seadragon_queue_effective(sh, b, now);

    return pa < pb || (pa == pb && a->id < b->id);
}


/*
 * The 1-based place of a waiting entry in dispatch order, as of now.
 * Along a FIFO, from head to tail, entries are ever later in dispatch
 * order, so the count in each stops at the first that is not ahead.
 */

ngx_uint_t
ngx_http_seadragon_queue_position(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now)
{
    ngx_uint_t                        i, ahead, p;
    ngx_queue_t                      *q;
    ngx_http_seadragon_entry_t       *e;
    ngx_http_seadragon_shm_source_t  *src;

    if (sh->fair != NGX_HTTP_SEADRAGON_FAIR_OFF || sh->affinity) {
        goto static_order;
    }

    ahead = 0;

    for (i = 0; i < sh->nsources; i++) {
        src = &sh->sources[i];

        for (q = ngx_queue_head(&src->waiting);
             q != ngx_queue_sentinel(&src->waiting);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            if (e == entry
                || !ngx_http_seadragon_queue_before(sh, e, entry, now))
            {
                break;
            }

            ahead++;
        }
    }

    return ahead + 1;

static_order:

    /*
     * Within a FIFO the effective priority never gets better, but the
     * tenants' counters and the affinity classes are in no order.
     */

    ahead = 0;
    p = ngx_http_seadragon_queue_effective(sh, entry, now);

    for (i = 0; i < sh->nsources; i++) {
        src = &sh->sources[i];

        for (q = ngx_queue_head(&src->waiting);
             q != ngx_queue_sentinel(&src->waiting);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            if (ngx_http_seadragon_queue_effective(sh, e, now) > p) {
                break;
            }

            if (e != entry
                && ngx_http_seadragon_queue_before(sh, e, entry, now))
            {
                ahead++;
            }
        }
    }

    return ahead + 1;
}


/* see ngx_http_seadragon_queue_fair.c for the order */

ngx_http_seadragon_entry_t *
ngx_http_seadragon_queue_head(ngx_http_seadragon_shctx_t *sh, ngx_msec_t now)
{
    return ngx_http_seadragon_queue_choose(sh, now);
}


/*
 * out[0..n) as a heap whose root sorts last: the entry at i sinks below
 * its children that sort after it.
 */

static void
ngx_http_seadragon_queue_order_sift(ngx_http_seadragon_shctx_t *sh,
    ngx_msec_t now, ngx_http_seadragon_entry_t **out, ngx_uint_t i,
    ngx_uint_t n)
{
    ngx_uint_t                   c;
    ngx_http_seadragon_entry_t  *e;

    for ( ;; ) {
        c = 2 * i + 1;

        if (c >= n) {
            return;
        }

        if (c + 1 < n
            && ngx_http_seadragon_queue_before(sh, out[c], out[c + 1], now))
        {
            c++;
        }

        if (!ngx_http_seadragon_queue_before(sh, out[i], out[c], now)) {
            return;
        }

        e = out[i];
        out[i] = out[c];
        out[c] = e;
        i = c;
    }
}


/*
 * With fair shares or affinity, the FIFOs are not each in the static
 * order: the first "max" of all waiting entries, by a heap, then sorted.
 */

static ngx_uint_t
ngx_http_seadragon_queue_order_sorted(ngx_http_seadragon_shctx_t *sh,
    ngx_msec_t now, ngx_http_seadragon_entry_t **out, ngx_uint_t max)
{
    ngx_uint_t                   i, n, c;
    ngx_queue_t                 *q;
    ngx_http_seadragon_entry_t  *e;

    n = 0;

    for (i = 0; i < sh->nsources && max; i++) {

        for (q = ngx_queue_head(&sh->sources[i].waiting);
             q != ngx_queue_sentinel(&sh->sources[i].waiting);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            if (n < max) {
                /* up, while it sorts after its parent */

                for (c = n++; c > 0; c = (c - 1) / 2) {
                    if (!ngx_http_seadragon_queue_before(sh, out[(c - 1) / 2],
                                                         e, now))
                    {
                        break;
                    }

                    out[c] = out[(c - 1) / 2];
                }

                out[c] = e;
                continue;
            }

            if (ngx_http_seadragon_queue_before(sh, e, out[0], now)) {
                out[0] = e;
                ngx_http_seadragon_queue_order_sift(sh, now, out, 0, n);
            }
        }
    }

    for (i = n; i > 1; i--) {
        e = out[0];
        out[0] = out[i - 1];
        out[i - 1] = e;
        ngx_http_seadragon_queue_order_sift(sh, now, out, 0, i - 1);
    }

    return n;
}


/*
 * The waiting entries in dispatch order, as of now, into out (room for
 * max): the order in which queue_head() would give them, had nothing
 * changed.  The FIFOs are merged, each already in that order.  Returns
 * how many were written.
 */

ngx_uint_t
ngx_http_seadragon_queue_order(ngx_http_seadragon_shctx_t *sh,
    ngx_msec_t now, ngx_http_seadragon_entry_t **out, ngx_uint_t max)
{
    ngx_uint_t                   i, n, best;
    ngx_queue_t                 *next[NGX_HTTP_SEADRAGON_MAX_SOURCES];
    ngx_http_seadragon_entry_t  *e, *b;

    if (sh->fair != NGX_HTTP_SEADRAGON_FAIR_OFF || sh->affinity) {
        return ngx_http_seadragon_queue_order_sorted(sh, now, out, max);
    }

    for (i = 0; i < sh->nsources; i++) {
        next[i] = ngx_queue_head(&sh->sources[i].waiting);
    }

    for (n = 0; n < max; n++) {
        best = sh->nsources;
        b = NULL;

        for (i = 0; i < sh->nsources; i++) {
            if (next[i] == ngx_queue_sentinel(&sh->sources[i].waiting)) {
                continue;
            }

            e = ngx_queue_data(next[i], ngx_http_seadragon_entry_t, link);

            if (b == NULL || ngx_http_seadragon_queue_before(sh, e, b, now)) {
                best = i;
                b = e;
            }
        }

        if (b == NULL) {
            break;
        }

        out[n] = b;
        next[best] = ngx_queue_next(next[best]);
    }

    return n;
}


void
ngx_http_seadragon_queue_remove(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_http_seadragon_queue_fair_leave(sh, entry);
    ngx_http_seadragon_queue_unlink(sh, entry);

    if (entry->owner) {
        entry->owner->entries--;
    }
}


void
ngx_http_seadragon_queue_grant(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now)
{
    ngx_http_seadragon_queue_fair_grant(sh, entry, now);
    ngx_http_seadragon_queue_unlink(sh, entry);

    entry->state = NGX_HTTP_SEADRAGON_ENTRY_RUNNING;
    entry->granted = now;

    ngx_queue_insert_tail(&sh->running, &entry->link);

    sh->sources[entry->source].nrunning++;
    sh->nrunning++;
    sh->history.admitted++;
}


/*
 * The workers that use the zone.  Their records are the caller's memory;
 * a record leaves the list with its owner, through the purge below.
 */

void
ngx_http_seadragon_queue_owner_add(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_owner_t *owner)
{
    ngx_queue_insert_tail(&sh->owners, &owner->link);
    sh->nowners++;
}


/*
 * Copies (pid, token, start, entries: not the counts) of up to "max"
 * workers other than the one of "token" into "out", for the caller to
 * check outside the lock whether they live; "entries" is set to how many
 * entries they hold in all.
 */

ngx_uint_t
ngx_http_seadragon_queue_foreign_owners(ngx_http_seadragon_shctx_t *sh,
    uint64_t token, ngx_http_seadragon_owner_t *out, ngx_uint_t max,
    ngx_uint_t *entries)
{
    ngx_uint_t                   n;
    ngx_queue_t                 *q;
    ngx_http_seadragon_owner_t  *o;

    n = 0;
    *entries = 0;

    for (q = ngx_queue_head(&sh->owners);
         q != ngx_queue_sentinel(&sh->owners);
         q = ngx_queue_next(q))
    {
        o = ngx_queue_data(q, ngx_http_seadragon_owner_t, link);

        if (o->token == token) {
            continue;
        }

        *entries += o->entries;

        if (n < max) {
            out[n].pid = o->pid;
            out[n].token = o->token;
            out[n].started = o->started;
            out[n].entries = o->entries;
            n++;
        }
    }

    /* more than "max": the next call starts with those left out */

    if (n == max && sh->nowners > max + 1) {
        q = ngx_queue_head(&sh->owners);
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&sh->owners, q);
    }

    return n;
}


/*
 * A worker is gone: unlinks its entries, waiting or holding a slot, and
 * chains them through "link" into "out" for the caller to free; counts
 * the requests it had received and not yet ended as aborted.reaped.
 * Returns its record, out of the list, for the caller to free (NULL if
 * no worker of that pid and token is known: another one reaped it).
 */

ngx_http_seadragon_owner_t *
ngx_http_seadragon_queue_purge(ngx_http_seadragon_shctx_t *sh, ngx_pid_t pid,
    uint64_t token, ngx_queue_t *out, ngx_uint_t *entries,
    ngx_uint_t *requests)
{
    ngx_uint_t                   i;
    ngx_queue_t                 *q, *next, *list;
    ngx_http_seadragon_owner_t  *o;
    ngx_http_seadragon_entry_t  *e;

    *entries = 0;
    *requests = 0;

    for (q = ngx_queue_head(&sh->owners);
         q != ngx_queue_sentinel(&sh->owners);
         q = ngx_queue_next(q))
    {
        o = ngx_queue_data(q, ngx_http_seadragon_owner_t, link);

        if (o->pid == pid && o->token == token) {
            goto found;
        }
    }

    return NULL;

found:

    for (i = 0; i <= sh->nsources && o->entries; i++) {

        list = (i < sh->nsources) ? &sh->sources[i].waiting : &sh->running;

        for (q = ngx_queue_head(list);
             q != ngx_queue_sentinel(list);
             q = next)
        {
            next = ngx_queue_next(q);
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            if (e->owner == o) {
                ngx_http_seadragon_queue_remove(sh, e);
                ngx_queue_insert_tail(out, &e->link);
                (*entries)++;
            }
        }
    }

    for (i = 0; i < sh->nsources; i++) {
        sh->sources[i].counters.aborted_reaped += o->tracked[i];
        *requests += o->tracked[i];
        o->tracked[i] = 0;
    }

    ngx_queue_remove(&o->link);
    sh->nowners--;

    return o;
}


/*
 * When the kernel started a process, from the text of /proc/PID/stat:
 * its 22nd field, after the command name in parentheses (which may hold
 * spaces and parentheses itself).  "dead" is set for a zombie, which will
 * never run again.  Returns 0 when the text is not understood.
 */

uint64_t
ngx_http_seadragon_queue_parse_start(u_char *stat, size_t len,
    ngx_uint_t *dead)
{
    u_char      *p, *last;
    uint64_t     v;
    ngx_uint_t   field;

    *dead = 0;
    last = stat + len;

    for (p = last; p > stat && p[-1] != ')'; p--) { /* void */ }

    if (p == stat) {
        return 0;
    }

    /* p is past ')': the state (field 3) and the others follow */

    for (field = 3; /* void */; field++) {

        while (p < last && *p == ' ') {
            p++;
        }

        if (p == last) {
            return 0;
        }

        if (field == 3 && (*p == 'Z' || *p == 'X' || *p == 'x')) {
            *dead = 1;
        }

        if (field == 22) {
            break;
        }

        while (p < last && *p != ' ') {
            p++;
        }
    }

    v = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
    }

    return v;
}


/*
 * The clients of max_queued_per_client, by name in a red-black tree whose
 * key is a hash of the name (FNV-1a).  The tree's insert function is set
 * before each insertion rather than kept from when the zone was made: a
 * reload may load the module at another address.
 */

static void
ngx_http_seadragon_queue_client_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_seadragon_client_t   *c, *ct;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            c = (ngx_http_seadragon_client_t *) node;
            ct = (ngx_http_seadragon_client_t *) temp;

            p = (ngx_http_seadragon_name_cmp(c->name, c->len,
                                                     ct->name, ct->len) < 0)
                ? &temp->left : &temp->right;
        }

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


ngx_http_seadragon_client_t *
ngx_http_seadragon_queue_client_find(ngx_http_seadragon_shctx_t *sh,
    u_char *name, size_t len)
{
    ngx_int_t                     rc;
    ngx_rbtree_key_t              hash;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_seadragon_client_t  *c;

    len = ngx_min(len, NGX_HTTP_SEADRAGON_CLIENT_LEN);
    hash = ngx_http_seadragon_name_hash(NGX_HTTP_SEADRAGON_FNV, name, len);

    node = sh->clients.root;
    sentinel = sh->clients.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        c = (ngx_http_seadragon_client_t *) node;

        rc = ngx_http_seadragon_name_cmp(name, len, c->name, c->len);

        if (rc == 0) {
            return c;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* "client" is the caller's memory; it is handed back through clients_free */

void
ngx_http_seadragon_queue_client_insert(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_client_t *client, u_char *name, size_t len)
{
    len = ngx_min(len, NGX_HTTP_SEADRAGON_CLIENT_LEN);

    ngx_memzero(client, sizeof(ngx_http_seadragon_client_t));
    ngx_memcpy(client->name, name, len);
    client->len = len;
    client->node.key = ngx_http_seadragon_name_hash(NGX_HTTP_SEADRAGON_FNV,
                                                    name, len);

    sh->clients.insert = ngx_http_seadragon_queue_client_insert_value;
    ngx_rbtree_insert(&sh->clients, &client->node);
    sh->nclients++;
}


/* a waiting entry leaves the line: its client has one fewer parked */

static void
ngx_http_seadragon_queue_client_leave(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_http_seadragon_client_t  *c;

    c = entry->client;

    if (c == NULL) {
        return;
    }

    entry->client = NULL;

    if (--c->parked) {
        return;
    }

    ngx_rbtree_delete(&sh->clients, &c->node);
    ngx_queue_insert_tail(&sh->clients_free, &c->link);
    sh->nclients--;
}


/*
 * Whether a zone may give a page to what is not the queue (a key's
 * limits, a usage row), its lock held.  The pages that max_queued parked
 * and capacity running requests need, with their clients, stay free for
 * them (at most half the zone), so that keys with limits or usage rows
 * never fill the zone and refuse every request.
 */

ngx_uint_t
ngx_http_seadragon_queue_spare(ngx_slab_pool_t *shpool,
    ngx_uint_t max_queued, ngx_uint_t capacity)
{
    size_t  entry, client, need, pages;

    /* the slab's size classes are powers of two */

    for (entry = 8; entry < sizeof(ngx_http_seadragon_entry_t); entry <<= 1) {
        /* void */
    }

    for (client = 8; client < sizeof(ngx_http_seadragon_client_t);
         client <<= 1)
    {
        /* void */
    }

    need = (max_queued + capacity) * (entry + client) / ngx_pagesize + 4;

    pages = shpool->last - shpool->pages;

    return shpool->pfree > ngx_min(need, pages / 2);
}
