
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
 */


#include "ngx_http_seadragon_module.h"


void
ngx_http_seadragon_queue_init(ngx_http_seadragon_shctx_t *sh, time_t now)
{
    ngx_memzero(sh, sizeof(ngx_http_seadragon_shctx_t));

    ngx_queue_init(&sh->running);
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

    return sh->nsources++;
}


/*
 * The zone keeps a count of entries per owner, so that the reaper looks at
 * each worker once, however long the line.  Should the table ever fill
 * (more than NGX_HTTP_SEADRAGON_OWNERS processes with entries at once),
 * the reaper walks the entries instead from then on.
 */

static void
ngx_http_seadragon_queue_owner_count(ngx_http_seadragon_shctx_t *sh,
    ngx_pid_t pid, ngx_int_t delta)
{
    ngx_uint_t                   i, free;
    ngx_http_seadragon_owner_t  *o;

    free = NGX_HTTP_SEADRAGON_OWNERS;

    for (i = 0; i < sh->nowners; i++) {
        o = &sh->owners[i];

        if (o->entries && o->pid == pid) {
            o->entries += delta;
            return;
        }

        if (o->entries == 0 && free == NGX_HTTP_SEADRAGON_OWNERS) {
            free = i;
        }
    }

    if (delta < 0) {
        return;         /* counted while the table was full */
    }

    if (free == NGX_HTTP_SEADRAGON_OWNERS) {
        if (sh->nowners == NGX_HTTP_SEADRAGON_OWNERS) {
            sh->owners_overflow = 1;
            return;
        }

        free = sh->nowners++;
    }

    sh->owners[free].pid = pid;
    sh->owners[free].entries = delta;
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

    ngx_http_seadragon_queue_owner_count(sh, entry->owner_pid, 1);
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
    ngx_uint_t                        i, ahead;
    ngx_queue_t                      *q;
    ngx_http_seadragon_entry_t       *e;
    ngx_http_seadragon_shm_source_t  *src;

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
}


ngx_http_seadragon_entry_t *
ngx_http_seadragon_queue_head(ngx_http_seadragon_shctx_t *sh, ngx_msec_t now)
{
    ngx_uint_t                        i;
    ngx_http_seadragon_entry_t       *e, *best;
    ngx_http_seadragon_shm_source_t  *src;

    best = NULL;

    for (i = 0; i < sh->nsources; i++) {
        src = &sh->sources[i];

        if (src->nwaiting == 0) {
            continue;
        }

        e = ngx_queue_data(ngx_queue_head(&src->waiting),
                           ngx_http_seadragon_entry_t, link);

        if (best == NULL
            || ngx_http_seadragon_queue_before(sh, e, best, now))
        {
            best = e;
        }
    }

    return best;
}


void
ngx_http_seadragon_queue_remove(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_http_seadragon_queue_unlink(sh, entry);
    ngx_http_seadragon_queue_owner_count(sh, entry->owner_pid, -1);
}


void
ngx_http_seadragon_queue_grant(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry, ngx_msec_t now)
{
    ngx_http_seadragon_queue_unlink(sh, entry);

    entry->state = NGX_HTTP_SEADRAGON_ENTRY_RUNNING;
    entry->granted = now;

    ngx_queue_insert_tail(&sh->running, &entry->link);

    sh->sources[entry->source].nrunning++;
    sh->nrunning++;
}


/*
 * Owners that may have died: those of every FIFO head (a dead one would
 * block its source) and of every running entry (a dead one would keep its
 * slot).  Stores the distinct pids other than "self" and returns how many.
 */

static void
ngx_http_seadragon_queue_note_owner(ngx_pid_t pid, ngx_pid_t self,
    ngx_pid_t *pids, ngx_uint_t *n, ngx_uint_t max)
{
    ngx_uint_t  j;

    if (pid == self) {
        return;
    }

    for (j = 0; j < *n; j++) {
        if (pids[j] == pid) {
            return;
        }
    }

    if (*n < max) {
        pids[(*n)++] = pid;
    }
}


ngx_uint_t
ngx_http_seadragon_queue_foreign_owners(ngx_http_seadragon_shctx_t *sh,
    ngx_pid_t self, ngx_pid_t *pids, ngx_uint_t max, ngx_uint_t all)
{
    ngx_uint_t                   i, n;
    ngx_queue_t                 *q;
    ngx_http_seadragon_entry_t  *e;

    n = 0;

    if (!sh->owners_overflow) {
        for (i = 0; i < sh->nowners; i++) {
            if (sh->owners[i].entries) {
                ngx_http_seadragon_queue_note_owner(sh->owners[i].pid, self,
                                                    pids, &n, max);
            }
        }

        return n;
    }

    for (i = 0; i < sh->nsources; i++) {

        for (q = ngx_queue_head(&sh->sources[i].waiting);
             q != ngx_queue_sentinel(&sh->sources[i].waiting);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            ngx_http_seadragon_queue_note_owner(e->owner_pid, self, pids, &n,
                                                max);
            if (!all) {
                break;
            }
        }
    }

    for (q = ngx_queue_head(&sh->running);
         q != ngx_queue_sentinel(&sh->running);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

        ngx_http_seadragon_queue_note_owner(e->owner_pid, self, pids, &n, max);
    }

    return n;
}


/*
 * Unlinks every entry of a worker that is gone (pid "pid", any token) or
 * of an earlier process that had our pid (pid "self" with a token other
 * than "token").  Unlinked entries are chained through "link" into "out"
 * for the caller to free.
 */

ngx_uint_t
ngx_http_seadragon_queue_purge(ngx_http_seadragon_shctx_t *sh, ngx_pid_t pid,
    ngx_pid_t self, uint64_t token, ngx_queue_t *out)
{
    ngx_uint_t                   i, n;
    ngx_queue_t                 *q, *next, *list;
    ngx_http_seadragon_entry_t  *e;

    n = 0;

    for (i = 0; i <= sh->nsources; i++) {

        list = (i < sh->nsources) ? &sh->sources[i].waiting : &sh->running;

        for (q = ngx_queue_head(list);
             q != ngx_queue_sentinel(list);
             q = next)
        {
            next = ngx_queue_next(q);
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            if (e->owner_pid == pid
                || (e->owner_pid == self && e->owner_token != token))
            {
                ngx_http_seadragon_queue_remove(sh, e);
                ngx_queue_insert_tail(out, &e->link);
                n++;
            }
        }
    }

    return n;
}
