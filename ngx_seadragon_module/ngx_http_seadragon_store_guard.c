
/*
 * Copyright (C) The Seadragon authors
 *
 * The store's fault guard and the checks of its files (see the top of
 * ngx_http_seadragon_store.c for why): the SIGBUS/SIGSEGV handler that a
 * read under sigsetjmp() jumps back from; at start-up, that the workers'
 * user owns and reaches the files; before each read, that data.mdb is
 * whole (its meta pages, read with pread()); once a second, that the
 * files at the store's path are the ones open.
 */


#include "ngx_http_seadragon_module.h"

#include <grp.h>
#include <pwd.h>


static ngx_uint_t ngx_http_seadragon_store_may(ngx_file_info_t *fi,
    ngx_uid_t uid, gid_t *groups, int ngroups, ngx_uint_t need);
static ngx_int_t ngx_http_seadragon_store_check_access(ngx_cycle_t *cycle,
    ngx_http_seadragon_store_t *store, ngx_core_conf_t *ccf);
static void ngx_http_seadragon_store_access_denied(ngx_cycle_t *cycle,
    ngx_http_seadragon_store_t *store, ngx_core_conf_t *ccf,
    ngx_file_info_t *info, char *what, char *which, size_t len);
static void ngx_http_seadragon_store_fault(int signo, siginfo_t *si,
    void *uc);


/*
 * The guard: while a read of the store runs, where a fault in it jumps
 * to; NULL otherwise, when a fault is what it would have been without
 * the handler.
 */

sigjmp_buf *volatile         ngx_http_seadragon_store_jmp;
volatile int                 ngx_http_seadragon_store_signo;
void *volatile               ngx_http_seadragon_store_addr;
u_char                      *ngx_http_seadragon_store_lo;
u_char                      *ngx_http_seadragon_store_hi;
static ngx_uint_t            ngx_http_seadragon_store_guarded;
static struct sigaction      ngx_http_seadragon_store_old_bus;
static struct sigaction      ngx_http_seadragon_store_old_segv;


/*
 * Runs in the master, as root when workers run as another user: readers of
 * an LMDB environment write its lock file, and the admin API writes its
 * data, so the workers' user must own both, as nginx gives its temporary
 * directories to that user; and the workers must reach them at all.  At
 * start-up and for nginx -t a failure stops nginx; at a reload, which an
 * init_module failure would turn into the master's exit, it is an alert
 * and the workers answer 503 until it is fixed.
 */

ngx_int_t
ngx_http_seadragon_store_init_module(ngx_cycle_t *cycle)
{
    u_char                          *path;
    ngx_uint_t                       i, level;
    ngx_core_conf_t                 *ccf;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    if (smcf == NULL || smcf->store == NULL || geteuid() != 0) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    /* without a master process the process never changes its user */

    if (ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT || ccf->user == 0
        || !ccf->master)
    {
        return NGX_OK;
    }

    level = ngx_is_init_cycle((ngx_cycle_t *) ngx_cycle) ? NGX_LOG_EMERG
                                                          : NGX_LOG_ALERT;

    for (i = 0; i < 2; i++) {
        path = i ? smcf->store->data_path : smcf->store->lock_path;

        if (chown((char *) path, ccf->user, (gid_t) -1) == -1
            && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(level, cycle->log, ngx_errno,
                          "seadragon_store: chown(\"%s\") failed; nginx "
                          "workers must be able to write the store", path);
            return level == NGX_LOG_EMERG ? NGX_ERROR : NGX_OK;
        }
    }

    if (ngx_http_seadragon_store_check_access(cycle, smcf->store, ccf)
        != NGX_OK)
    {
        return level == NGX_LOG_EMERG ? NGX_ERROR : NGX_OK;
    }

    return NGX_OK;
}


/* can uid with these groups do "need" (4 read, 2 write, 1 search) */

static ngx_uint_t
ngx_http_seadragon_store_may(ngx_file_info_t *fi, ngx_uid_t uid,
    gid_t *groups, int ngroups, ngx_uint_t need)
{
    int         i;
    ngx_uint_t  mode;

    mode = fi->st_mode;

    if (fi->st_uid == uid) {
        return ((mode >> 6) & need) == need;
    }

    for (i = 0; i < ngroups; i++) {
        if (fi->st_gid == groups[i]) {
            return ((mode >> 3) & need) == need;
        }
    }

    return (mode & need) == need;
}


/*
 * What the workers need, checked with their user and groups (as
 * initgroups() gives them) against each component of the store's path
 * and of its real path: search on every directory, read on data.mdb,
 * read and write on lock.mdb.  Mode bits only: an ACL may allow more.
 */

static ngx_int_t
ngx_http_seadragon_store_check_access(ngx_cycle_t *cycle,
    ngx_http_seadragon_store_t *store, ngx_core_conf_t *ccf)
{
    int               ngroups;
    char             *real, *what, *which;
    u_char           *p, *path, *end;
    gid_t             groups[64];
    size_t            len;
    ngx_uint_t        pass, need, ok;
    ngx_file_info_t   fi;

    len = 0;
    what = NULL;
    which = NULL;
    ngroups = 64;

    if (getgrouplist(ccf->username, ccf->group, groups, &ngroups) == -1) {
        groups[0] = ccf->group;
        ngroups = 1;
    }

    real = realpath((char *) store->path.data, NULL);

    for (pass = 0; pass < 2; pass++) {

        path = (u_char *) (pass ? real : (char *) store->path.data);

        if (path == NULL) {
            continue;
        }

        end = path + ngx_strlen(path);

        for (p = path + 1; p <= end; p++) {

            if (p < end && *p != '/') {
                continue;
            }

            *p = '\0';
            ok = (ngx_file_info(path, &fi) != NGX_FILE_ERROR);

            if (ok && !ngx_http_seadragon_store_may(&fi, ccf->user, groups,
                                                    ngroups, 1))
            {
                what = "search the directory";
                which = (char *) path;
                len = p - path;
                if (p < end) {
                    *p = '/';
                }
                goto denied;
            }

            if (p < end) {
                *p = '/';
            }
        }
    }

    for (pass = 0; pass < 2; pass++) {
        path = pass ? store->lock_path : store->data_path;
        need = pass ? 6 : 4;

        if (ngx_file_info(path, &fi) == NGX_FILE_ERROR) {
            continue;
        }

        if (!ngx_http_seadragon_store_may(&fi, ccf->user, groups, ngroups,
                                          need))
        {
            what = pass ? "read and write" : "read";
            which = (char *) path;
            len = ngx_strlen(path);
            goto denied;
        }
    }

    if (real) {
        free(real);
    }

    return NGX_OK;

denied:

    ngx_http_seadragon_store_access_denied(cycle, store, ccf, &fi, what,
                                           which, len);

    if (real) {
        free(real);
    }

    return NGX_ERROR;
}


/* says what the workers cannot do, and how to let them */

static void
ngx_http_seadragon_store_access_denied(ngx_cycle_t *cycle,
    ngx_http_seadragon_store_t *store, ngx_core_conf_t *ccf,
    ngx_file_info_t *info, char *what, char *which, size_t len)
{
    ngx_uint_t       level;
    struct group    *grp;
    struct passwd   *pwd;
    u_char           owner[64], group[64], mode[5];

    pwd = getpwuid(info->st_uid);
    grp = getgrgid(info->st_gid);

    if (pwd) {
        ngx_cpystrn(owner, (u_char *) pwd->pw_name, sizeof(owner));
    } else {
        ngx_sprintf(owner, "%ui%Z", (ngx_uint_t) info->st_uid);
    }

    if (grp) {
        ngx_cpystrn(group, (u_char *) grp->gr_name, sizeof(group));
    } else {
        ngx_sprintf(group, "%ui%Z", (ngx_uint_t) info->st_gid);
    }

    grp = getgrgid(ccf->group);

    mode[0] = '0' + ((info->st_mode >> 9) & 7);
    mode[1] = '0' + ((info->st_mode >> 6) & 7);
    mode[2] = '0' + ((info->st_mode >> 3) & 7);
    mode[3] = '0' + (info->st_mode & 7);
    mode[4] = '\0';

    level = ngx_is_init_cycle((ngx_cycle_t *) ngx_cycle) ? NGX_LOG_EMERG
                                                          : NGX_LOG_ALERT;

    ngx_log_error(level, cycle->log, 0,
                  "seadragon_store \"%V\": nginx workers run as \"%s\" "
                  "(group \"%s\") and cannot %s \"%*s\" (mode %s, owner "
                  "%s:%s): let them (see the \"user\" directive), or put the "
                  "store where they can reach it, such as "
                  "/var/lib/seadragon/store, in %s:%ui",
                  &store->path, ccf->username,
                  grp ? grp->gr_name : "?", what, len, which, mode, owner,
                  group,
                  store->conf_file, store->conf_line);
}


/*
 * The data file LMDB has open: not removed, not shorter than its meta
 * pages, and, when it changed since the last check (size, times, inode),
 * meta pages that pass seadragon_store_check_file().
 */

ngx_int_t
ngx_http_seadragon_store_check(ngx_http_seadragon_store_t *store,
    ngx_uint_t force)
{
    const char       *error;
    ngx_file_info_t   fi;

    if (ngx_fd_info(store->fd, &fi) == NGX_FILE_ERROR) {
        ngx_http_seadragon_store_fail(store, "fstat() of data.mdb failed: %s",
                                      strerror(ngx_errno));
        return NGX_ERROR;
    }

    if (!force
        && fi.st_ino == store->data_info.st_ino
        && fi.st_size == store->data_info.st_size
        && fi.st_nlink == store->data_info.st_nlink
        && fi.st_mtim.tv_sec == store->data_info.st_mtim.tv_sec
        && fi.st_mtim.tv_nsec == store->data_info.st_mtim.tv_nsec
        && fi.st_ctim.tv_sec == store->data_info.st_ctim.tv_sec
        && fi.st_ctim.tv_nsec == store->data_info.st_ctim.tv_nsec)
    {
        return NGX_OK;
    }

    if (store->check_layout) {
        if (seadragon_store_check_file(store->fd, &store->file, &error) != 0)
        {
            ngx_http_seadragon_store_fail(store, "%s", error);
            return NGX_ERROR;
        }

    } else if (fi.st_nlink == 0
               || (uint64_t) fi.st_size < 2 * store->file.psize)
    {
        ngx_http_seadragon_store_fail(store, "data.mdb was removed or "
                                      "truncated");
        return NGX_ERROR;
    }

    store->data_info = fi;

    return NGX_OK;
}


/*
 * Once a second: the files at the store's path are the ones open, and
 * this worker could open them again (a chmod, a directory closed to it).
 */

ngx_int_t
ngx_http_seadragon_store_check_paths(ngx_http_seadragon_store_t *store)
{
    ngx_uint_t        i;
    ngx_file_info_t   fi, *open;

    for (i = 0; i < 2; i++) {
        open = i ? &store->lock_info : &store->data_info;

        if (open->st_ino == 0) {
            continue;
        }

        if (ngx_file_info((char *) (i ? store->lock_path : store->data_path),
                          &fi)
            == NGX_FILE_ERROR)
        {
            ngx_http_seadragon_store_fail(store, "stat(\"%s\") failed: %s",
                                          i ? store->lock_path
                                            : store->data_path,
                                          strerror(ngx_errno));
            return NGX_ERROR;
        }

        if (fi.st_ino != open->st_ino || fi.st_dev != open->st_dev) {
            ngx_http_seadragon_store_fail(store, "%s was replaced",
                                          i ? store->lock_path
                                            : store->data_path);
            return NGX_ERROR;
        }
    }

    if (access((char *) store->data_path, R_OK) == -1) {
        ngx_http_seadragon_store_fail(store, "this worker may no longer "
                                      "read %s: %s", store->data_path,
                                      strerror(ngx_errno));
        return NGX_ERROR;
    }

    if (store->lock_info.st_ino
        && access((char *) store->lock_path, R_OK|W_OK) == -1
        && ngx_errno != EROFS)
    {
        ngx_http_seadragon_store_fail(store, "this worker may no longer "
                                      "read and write %s: %s",
                                      store->lock_path, strerror(ngx_errno));
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The handler of SIGBUS and SIGSEGV: a fault inside the guard, a SIGBUS
 * or an address around the store's map, jumps out of the read; anything
 * else gets the action it had before, as if this handler did not exist
 * (the fault repeats when the handler returns).
 */

ngx_int_t
ngx_http_seadragon_store_guard_install(ngx_log_t *log)
{
    struct sigaction  sa;

    if (ngx_http_seadragon_store_guarded) {
        return NGX_DECLINED;
    }

    ngx_memzero(&sa, sizeof(struct sigaction));
    sa.sa_sigaction = ngx_http_seadragon_store_fault;
    sa.sa_flags = SA_SIGINFO|SA_NODEFER;
    sigemptyset(&sa.sa_mask);

    if (sigaction(SIGBUS, &sa, &ngx_http_seadragon_store_old_bus) == -1
        || sigaction(SIGSEGV, &sa, &ngx_http_seadragon_store_old_segv) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "seadragon_store: sigaction() failed");
        return NGX_ERROR;
    }

    ngx_http_seadragon_store_guarded = 1;

    return NGX_OK;
}


void
ngx_http_seadragon_store_guard_remove(void)
{
    (void) sigaction(SIGBUS, &ngx_http_seadragon_store_old_bus, NULL);
    (void) sigaction(SIGSEGV, &ngx_http_seadragon_store_old_segv, NULL);

    ngx_http_seadragon_store_guarded = 0;
}


static void
ngx_http_seadragon_store_fault(int signo, siginfo_t *si, void *uc)
{
    u_char      *addr;
    sigjmp_buf  *jmp;

    jmp = ngx_http_seadragon_store_jmp;
    addr = si->si_addr;

    if (jmp != NULL && si->si_code > 0
        && (signo == SIGBUS
            || (addr >= ngx_http_seadragon_store_lo
                && addr < ngx_http_seadragon_store_hi)))
    {
        ngx_http_seadragon_store_jmp = NULL;
        ngx_http_seadragon_store_signo = signo;
        ngx_http_seadragon_store_addr = addr;

        siglongjmp(*jmp, 1);
    }

    (void) sigaction(signo, signo == SIGBUS
                            ? &ngx_http_seadragon_store_old_bus
                            : &ngx_http_seadragon_store_old_segv, NULL);

    if (si->si_code <= 0) {
        (void) raise(signo);
    }
}

