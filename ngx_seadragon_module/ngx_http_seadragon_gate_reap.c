
/*
 * Copyright (C) The Seadragon authors
 *
 * The workers' records in the zone (owners): a worker takes its own when
 * it starts; a worker that died without its cleanup leaves its record and
 * its entries behind, and the gate reaps them (before refusing a place,
 * and on its tick) so that a dead worker never holds the line or a slot.
 */


#include "ngx_http_seadragon_module.h"


#define NGX_HTTP_SEADRAGON_MAX_OWNERS   64


static ngx_uint_t ngx_http_seadragon_gate_owner_gone(
    ngx_http_seadragon_owner_t *owner);


/* this worker's record in the zone, taken when it starts */

ngx_http_seadragon_owner_t *
ngx_http_seadragon_gate_register_locked(ngx_http_seadragon_zone_t *zone)
{
    ngx_http_seadragon_owner_t  *o;

    o = ngx_slab_calloc_locked(zone->shpool,
                               sizeof(ngx_http_seadragon_owner_t));
    if (o == NULL) {
        return NULL;
    }

    o->pid = ngx_pid;
    o->token = ngx_http_seadragon_worker_token;
    o->started = ngx_http_seadragon_worker_started;
    ngx_queue_init(&o->limit_holds);

    ngx_http_seadragon_queue_owner_add(zone->sh, o);

    zone->owner = o;

    return o;
}


/*
 * A worker killed by a signal runs no cleanup: its entries would block
 * the head of their source, keep a slot or fill the line forever, and its
 * requests would never be counted as ended.  Every other worker known to
 * the zone is gathered under the lock and checked outside it; whoever is
 * gone is purged.  "foreign" is set to how many entries other workers
 * hold.  Returns how many workers were reaped.
 */

ngx_uint_t
ngx_http_seadragon_gate_reap(ngx_http_seadragon_zone_t *zone,
    ngx_uint_t *foreign)
{
    ngx_uint_t                  i, n, gone;
    ngx_http_seadragon_owner_t  owners[NGX_HTTP_SEADRAGON_MAX_OWNERS];

    ngx_shmtx_lock(&zone->shpool->mutex);
    n = ngx_http_seadragon_queue_foreign_owners(zone->sh,
                                                ngx_http_seadragon_worker_token,
                                                owners,
                                                NGX_HTTP_SEADRAGON_MAX_OWNERS,
                                                foreign);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    gone = 0;

    for (i = 0; i < n; i++) {
        if (ngx_http_seadragon_gate_owner_gone(&owners[i])) {
            gone += ngx_http_seadragon_gate_purge(zone, owners[i].pid,
                                                  owners[i].token);
            *foreign -= owners[i].entries;
        }
    }

    return gone;
}


/*
 * Whether a worker of the zone is gone.  A pid alone does not say: once
 * the master has reaped a dead worker, its pid may be given to another
 * process, so the time the kernel started the process must also match.
 * A zombie is gone too.  Where /proc cannot tell, kill(pid, 0) decides.
 */

static ngx_uint_t
ngx_http_seadragon_gate_owner_gone(ngx_http_seadragon_owner_t *owner)
{
    uint64_t    started;
    ngx_uint_t  dead;

    if (owner->pid == ngx_pid) {
        return 1;       /* an earlier process that had our pid */
    }

    if (kill(owner->pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        return 1;
    }

    if (ngx_http_seadragon_worker_started == 0) {
        return 0;
    }

    started = ngx_http_seadragon_gate_process_start(owner->pid, &dead);

    return dead || (started && owner->started && started != owner->started);
}


/*
 * The start time of a process (clock ticks since boot), 0: unknown; pid 0
 * is this process, through /proc/self.  The text must name the pid asked
 * for: a /proc of another pid namespace is not believed.
 */

uint64_t
ngx_http_seadragon_gate_process_start(ngx_pid_t pid, ngx_uint_t *dead)
{
#if (NGX_LINUX)
    int      fd;
    u_char   path[NGX_INT64_LEN + sizeof("/proc//stat")], buf[1024], *space;
    ssize_t  n;

    *dead = 0;

    if (pid == 0) {
        pid = ngx_pid;
        (void) ngx_cpystrn(path, (u_char *) "/proc/self/stat", sizeof(path));

    } else {
        (void) ngx_snprintf(path, sizeof(path), "/proc/%P/stat%Z", pid);
    }

    fd = open((char *) path, O_RDONLY);
    if (fd == -1) {
        return 0;
    }

    n = read(fd, buf, sizeof(buf));

    (void) close(fd);

    if (n <= 0) {
        return 0;
    }

    space = ngx_strlchr(buf, buf + n, ' ');

    if (space == NULL || ngx_atoi(buf, space - buf) != pid) {
        return 0;
    }

    return ngx_http_seadragon_queue_parse_start(buf, n, dead);
#else
    *dead = 0;
    return 0;
#endif
}


/* purges the worker of that pid and token; returns 1 if it was known */

ngx_uint_t
ngx_http_seadragon_gate_purge(ngx_http_seadragon_zone_t *zone, ngx_pid_t pid,
    uint64_t token)
{
    ngx_uint_t                   entries, requests;
    ngx_queue_t                  dead, *q;
    ngx_http_seadragon_owner_t  *o;
    ngx_http_seadragon_entry_t  *e;

    ngx_queue_init(&dead);

    ngx_shmtx_lock(&zone->shpool->mutex);

    o = ngx_http_seadragon_queue_purge(zone->sh, pid, token, &dead, &entries,
                                       &requests);

    while (!ngx_queue_empty(&dead)) {
        q = ngx_queue_head(&dead);
        ngx_queue_remove(q);

        e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);
        ngx_slab_free_locked(zone->shpool, e);
    }

    ngx_http_seadragon_gate_free_clients_locked(zone);

    if (o) {
        /* its requests no longer count against their keys' limits */

        ngx_http_seadragon_limit_purge_locked(zone, o);
        ngx_slab_free_locked(zone->shpool, o);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (o == NULL) {
        return 0;
    }

    if (o == zone->owner) {
        zone->owner = NULL;
    }

    if (entries == 0 && requests == 0) {
        return 1;
    }

    if (token == ngx_http_seadragon_worker_token) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "seadragon gave back %ui entries of zone \"%V\" as "
                      "the worker exits; %ui of its requests are counted "
                      "as aborted", entries, &zone->name, requests);
        return 1;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "seadragon reclaimed %ui entries of zone \"%V\" left "
                  "by the worker process %P, which is gone; %ui of its "
                  "requests are counted as aborted (reaped)",
                  entries, &zone->name, pid, requests);

    return 1;
}
