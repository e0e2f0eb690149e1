
/*
 * Copyright (C) The Seadragon authors
 *
 * seadragon-store: the operators' tool for a seadragon store, the LMDB
 * environment that says which addresses are whitelisted and which API
 * keys grant which source.  nginx workers read the store while this tool
 * changes it, so every change is one short write transaction: committed
 * whole, or aborted on the first error and never half-written.  The bytes
 * are those of ngx_http_seadragon_store_codec.c, shared with the module.
 */


#include "ngx_http_seadragon_store_codec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <openssl/rand.h>


#define SEADRAGON_TOOL_DEFAULT_STORE    "/var/lib/seadragon/store"
#define SEADRAGON_TOOL_DEFAULT_MAP_SIZE ((size_t) 64 * 1024 * 1024)
#define SEADRAGON_TOOL_MIN_MAP_SIZE     ((size_t) 64 * 1024)

/* exit statuses */
#define SEADRAGON_TOOL_DONE             0
#define SEADRAGON_TOOL_NO               1
#define SEADRAGON_TOOL_USAGE            2
#define SEADRAGON_TOOL_STORE            3
#define SEADRAGON_TOOL_HELP             (-1)

#define SEADRAGON_TOOL_MAX_OPTIONS      6
#define SEADRAGON_TOOL_NOTE_LEN         63
#define SEADRAGON_TOOL_TIME_LEN         sizeof("2027-01-31T12:00:00Z")


typedef struct {
    const char                      *path;
    MDB_env                         *env;
    MDB_txn                         *txn;
    seadragon_store_dbs_t            dbs;
} seadragon_tool_store_t;


typedef struct seadragon_tool_command_s  seadragon_tool_command_t;

typedef struct {
    const seadragon_tool_command_t  *command;
    seadragon_tool_store_t           store;
    char                            *arg;       /* the positional one */
    char                            *options[SEADRAGON_TOOL_MAX_OPTIONS];
} seadragon_tool_ctx_t;


struct seadragon_tool_command_s {
    const char                      *group;
    const char                      *verb;      /* NULL: "init" */
    const char                      *arg;       /* NULL: none */
    const char                      *options[SEADRAGON_TOOL_MAX_OPTIONS];
    const char                      *synopsis;
    const char                      *help;
    int                            (*handler)(seadragon_tool_ctx_t *ctx);
};


typedef struct {
    seadragon_net_t                  net;
    seadragon_whitelist_entry_t      entry;
} seadragon_tool_listed_t;


static void seadragon_tool_error(const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2)));
static int seadragon_tool_usage_error(const seadragon_tool_command_t *command,
    const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void seadragon_tool_usage(FILE *out);
static int seadragon_tool_parse_command(seadragon_tool_ctx_t *ctx, int argc,
    char **argv);

static int seadragon_tool_store_error(seadragon_tool_store_t *store,
    const char *action, const char *what, int rc);
static int seadragon_tool_store_not_ours(seadragon_tool_store_t *store);
static int seadragon_tool_env_open(seadragon_tool_store_t *store,
    unsigned flags, size_t map_size);
static int seadragon_tool_txn_begin(seadragon_tool_store_t *store,
    unsigned flags);
static int seadragon_tool_check_file(seadragon_tool_store_t *store,
    const char *file);
static int seadragon_tool_store_open(seadragon_tool_store_t *store,
    unsigned flags);
static int seadragon_tool_store_commit(seadragon_tool_store_t *store);
static void seadragon_tool_store_close(seadragon_tool_store_t *store);

static int seadragon_tool_parse_size(const char *text, size_t *size);
static void seadragon_tool_format_size(size_t size, char *buf, size_t len);
static void seadragon_tool_format_time(int64_t t, char *buf);
static int seadragon_tool_parse_expires(const char *text, time_t now,
    int64_t *expires);
static int seadragon_tool_parse_net(seadragon_tool_ctx_t *ctx,
    const char *text, seadragon_net_t *net);
static int seadragon_tool_check_name(const char *text, size_t max,
    const char *extra);
static int seadragon_tool_mkdir(const char *path);
static int seadragon_tool_directory_state(const char *path);
static int seadragon_tool_listed_cmp(const void *one, const void *two);
static int seadragon_tool_key_hash_of(seadragon_tool_store_t *store,
    const char *name, uint8_t hash[SEADRAGON_KEY_HASH_LEN]);
static int seadragon_tool_key_set_disabled(seadragon_tool_ctx_t *ctx,
    int disabled);
static int seadragon_tool_parse_limits(seadragon_tool_ctx_t *ctx,
    char **options, seadragon_key_limits_t *limits);
static void seadragon_tool_format_limit(uint64_t limit, const char *none,
    char *buf, size_t len);

static int seadragon_tool_init(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_whitelist_add(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_whitelist_remove(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_whitelist_list(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_whitelist_check(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_key_create(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_key_revoke(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_key_disable(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_key_enable(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_key_set(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_key_list(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_usage_list(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_user_add(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_user_passwd(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_user_disable(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_user_enable(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_user_remove(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_user_list(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_secret_rotate(seadragon_tool_ctx_t *ctx);
static int seadragon_tool_bytes_cmp(const char *a, size_t alen,
    const char *b, size_t blen);
static void seadragon_tool_usage_name(const char *name, size_t len);


/* "2027-01-31T12:00:00Z", or its first ten characters; d: a digit */
static const char  seadragon_tool_time_pattern[] = "dddd-dd-ddTdd:dd:ddZ";


static const seadragon_tool_command_t  seadragon_tool_commands[] = {

    { "init", NULL, NULL, { "--map-size", NULL },
      "init [--map-size SIZE]",
      "create the store, or grow its map (SIZE: 64m; k, m, g)",
      seadragon_tool_init },

    { "whitelist", "add", "ADDR|CIDR", { "--note", NULL },
      "whitelist add ADDR|CIDR [--note TEXT]",
      "let an address or a range in (a note of up to 63 bytes)",
      seadragon_tool_whitelist_add },

    { "whitelist", "remove", "ADDR|CIDR", { NULL, NULL },
      "whitelist remove ADDR|CIDR",
      "remove a whitelist entry",
      seadragon_tool_whitelist_remove },

    { "whitelist", "list", NULL, { NULL, NULL },
      "whitelist list",
      "CIDR, created and note of every entry",
      seadragon_tool_whitelist_list },

    { "whitelist", "check", "ADDR", { NULL, NULL },
      "whitelist check ADDR",
      "exit 0 if the gateway lets ADDR in, 1 if not",
      seadragon_tool_whitelist_check },

    { "key", "create", "NAME",
      { "--source", "--expires", "--rpm", "--tokens-per-day",
        "--max-concurrent", "--weight" },
      "key create NAME --source SOURCE [--expires WHEN] [--rpm N] "
      "[--tokens-per-day N] [--max-concurrent N] [--weight N]",
      "print a new key, which is shown only this once",
      seadragon_tool_key_create },

    { "key", "revoke", "NAME", { NULL, NULL },
      "key revoke NAME",
      "delete a key",
      seadragon_tool_key_revoke },

    { "key", "disable", "NAME", { NULL, NULL },
      "key disable NAME",
      "refuse a key until it is enabled again",
      seadragon_tool_key_disable },

    { "key", "enable", "NAME", { NULL, NULL },
      "key enable NAME",
      "accept a disabled key again",
      seadragon_tool_key_enable },

    { "key", "set", "NAME",
      { "--rpm", "--tokens-per-day", "--max-concurrent", "--weight",
        NULL },
      "key set NAME [--rpm N|none] [--tokens-per-day N|none] "
      "[--max-concurrent N|none] [--weight N]",
      "change a key's limits or weight, live (none: no limit)",
      seadragon_tool_key_set },

    { "key", "list", NULL, { NULL, NULL },
      "key list",
      "name, source, state, created, expiry, limits and weight of every "
      "key",
      seadragon_tool_key_list },

    { "usage", NULL, NULL, { "--day", "--from", "--to", "--key", "--source" },
      "usage [--day DAY | --from DAY --to DAY] [--key NAME | --source SOURCE]",
      "requests, tokens and seconds per principal and model (DAY: "
      "2026-12-01,\n      UTC; default today; a range of at most 366 days)",
      seadragon_tool_usage_list },

    { "user", "add", "NAME", { "--source", NULL },
      "user add NAME --source SOURCE",
      "add a user who logs in with a password for the source's queue",
      seadragon_tool_user_add },

    { "user", "passwd", "NAME", { NULL, NULL },
      "user passwd NAME",
      "set a user's password",
      seadragon_tool_user_passwd },

    { "user", "disable", "NAME", { NULL, NULL },
      "user disable NAME",
      "refuse a user's logins and tokens until enabled again",
      seadragon_tool_user_disable },

    { "user", "enable", "NAME", { NULL, NULL },
      "user enable NAME",
      "accept a disabled user again",
      seadragon_tool_user_enable },

    { "user", "remove", "NAME", { NULL, NULL },
      "user remove NAME",
      "delete a user",
      seadragon_tool_user_remove },

    { "user", "list", NULL, { NULL, NULL },
      "user list",
      "name, source, state, created and last login of every user",
      seadragon_tool_user_list },

    { "secret", "rotate", NULL, { NULL, NULL },
      "secret rotate",
      "sign login tokens with a new secret; those of the previous one "
      "are\n      accepted until they expire",
      seadragon_tool_secret_rotate },

    { NULL, NULL, NULL, { NULL, NULL }, NULL, NULL, NULL }
};


/* the terminal's settings while a password is read with echo off */

static struct termios  seadragon_tool_termios;
static volatile sig_atomic_t  seadragon_tool_echo_off;


int
main(int argc, char **argv)
{
    int                              i, rc;
    const char                      *path, *group, *verb;
    seadragon_tool_ctx_t             ctx;
    const seadragon_tool_command_t  *command;

    /*
     * The files this tool creates are read by nginx workers, which run as
     * another user: whatever the caller's umask, they are 0644 and 0755.
     */

    umask(022);

    memset(&ctx, 0, sizeof(seadragon_tool_ctx_t));

    path = getenv("SEADRAGON_STORE");
    if (path == NULL || path[0] == '\0') {
        path = SEADRAGON_TOOL_DEFAULT_STORE;
    }

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            seadragon_tool_usage(stdout);
            return SEADRAGON_TOOL_DONE;
        }

        if (strcmp(argv[i], "--store") == 0) {
            if (i + 1 == argc || argv[i + 1][0] == '\0') {
                return seadragon_tool_usage_error(NULL,
                                                  "--store needs a PATH");
            }

            path = argv[++i];
            continue;
        }

        if (strncmp(argv[i], "--store=", sizeof("--store=") - 1) == 0) {
            path = argv[i] + sizeof("--store=") - 1;

            if (path[0] == '\0') {
                return seadragon_tool_usage_error(NULL,
                                                  "--store needs a PATH");
            }

            continue;
        }

        return seadragon_tool_usage_error(NULL, "unknown option \"%s\"",
                                          argv[i]);
    }

    if (i == argc) {
        return seadragon_tool_usage_error(NULL, "no command given");
    }

    group = argv[i++];
    verb = NULL;

    for (command = seadragon_tool_commands; command->group; command++) {
        if (strcmp(command->group, group) == 0) {
            break;
        }
    }

    if (command->group == NULL) {
        return seadragon_tool_usage_error(NULL, "unknown command \"%s\"; "
                                          "expected init, whitelist, key, "
                                          "user, secret or usage",
                                          group);
    }

    if (command->verb) {

        if (i == argc) {
            return seadragon_tool_usage_error(NULL, "\"%s\" needs a "
                                              "command: %s", group,
                                              strcmp(group, "key") == 0
                                              ? "create, revoke, disable, "
                                                "enable, set or list"
                                              : strcmp(group, "user") == 0
                                              ? "add, passwd, disable, "
                                                "enable, remove or list"
                                              : strcmp(group, "secret") == 0
                                              ? "rotate"
                                              : "add, remove, list or check");
        }

        verb = argv[i++];

        for ( /* void */ ; command->group; command++) {
            if (strcmp(command->group, group) == 0
                && strcmp(command->verb, verb) == 0)
            {
                break;
            }
        }

        if (command->group == NULL) {
            return seadragon_tool_usage_error(NULL, "unknown command "
                                              "\"%s %s\"", group, verb);
        }
    }

    ctx.command = command;
    ctx.store.path = path;

    rc = seadragon_tool_parse_command(&ctx, argc - i, argv + i);

    if (rc == SEADRAGON_TOOL_HELP) {
        seadragon_tool_usage(stdout);
        return SEADRAGON_TOOL_DONE;
    }

    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = command->handler(&ctx);

    seadragon_tool_store_close(&ctx.store);

    return rc;
}


static void
seadragon_tool_error(const char *fmt, ...)
{
    va_list  args;

    fputs("seadragon-store: ", stderr);

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}


static int
seadragon_tool_usage_error(const seadragon_tool_command_t *command,
    const char *fmt, ...)
{
    va_list  args;

    fputs("seadragon-store: ", stderr);

    if (command) {
        if (command->verb) {
            fprintf(stderr, "%s %s: ", command->group, command->verb);

        } else {
            fprintf(stderr, "%s: ", command->group);
        }
    }

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    if (command) {
        fprintf(stderr, "\nusage: seadragon-store [--store PATH] %s\n",
                command->synopsis);

    } else {
        fputs("\ntry \"seadragon-store --help\"\n", stderr);
    }

    return SEADRAGON_TOOL_USAGE;
}


static void
seadragon_tool_usage(FILE *out)
{
    const seadragon_tool_command_t  *command;

    fputs("usage: seadragon-store [--store PATH] COMMAND ...\n"
          "\n"
          "Changes the seadragon store (an LMDB environment) while nginx "
          "reads it.\n"
          "PATH defaults to $SEADRAGON_STORE, else "
          SEADRAGON_TOOL_DEFAULT_STORE ".\n"
          "\n"
          "commands:\n", out);

    for (command = seadragon_tool_commands; command->group; command++) {
        fprintf(out, "  %s\n      %s\n", command->synopsis, command->help);
    }

    fputs("\n"
          "NAME: 1 to 63 letters, digits, \"_\", \"-\", \".\", \"@\"; "
          "SOURCE: 1 to 31\n"
          "letters, digits, \"_\", \"-\".  WHEN: a duration (30d, 12h, 90m, "
          "3600s)\n"
          "or a time in UTC (2027-01-31, 2027-01-31T12:00:00Z).  A NAME that "
          "starts\n"
          "with \"-\" goes after \"--\".  Limits (0 or none: no limit): "
          "--rpm requests a\n"
          "minute (at most 1000000), --tokens-per-day prompt and completion "
          "tokens a\n"
          "UTC day (at most 10^15), --max-concurrent requests parked or "
          "running at\n"
          "once (at most 100000).  --weight: the key's share in a zone's "
          "fair=\n"
          "queuing, 1 (the default) to 1000: weight 2 is served twice what "
          "1 is.\n"
          "A user's password, 1 to 1024 bytes, is never an argument: it is "
          "the first\n"
          "line of standard input when that is not a terminal, else asked "
          "for twice.\n"
          "\n"
          "exit status: 0 done; 1 \"whitelist check\" said no; 2 bad usage "
          "or input;\n"
          "3 the store could not be opened or written.\n", out);
}


/*
 * The command's one positional argument and its options, "--opt VALUE" or
 * "--opt=VALUE", in any order; "--" ends the options, for a NAME that
 * starts with "-".
 */

static int
seadragon_tool_parse_command(seadragon_tool_ctx_t *ctx, int argc,
    char **argv)
{
    int                              i, options_end;
    char                            *arg, *equals, *value;
    size_t                           len;
    unsigned                         n;
    const seadragon_tool_command_t  *command;

    command = ctx->command;
    options_end = 0;

    for (i = 0; i < argc; i++) {
        arg = argv[i];

        if (!options_end && strcmp(arg, "--") == 0) {
            options_end = 1;
            continue;
        }

        if (!options_end && arg[0] == '-' && arg[1] != '\0') {

            if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
                return SEADRAGON_TOOL_HELP;
            }

            equals = strchr(arg, '=');
            len = equals ? (size_t) (equals - arg) : strlen(arg);

            for (n = 0; n < SEADRAGON_TOOL_MAX_OPTIONS; n++) {
                if (command->options[n]
                    && strlen(command->options[n]) == len
                    && strncmp(command->options[n], arg, len) == 0)
                {
                    break;
                }
            }

            if (n == SEADRAGON_TOOL_MAX_OPTIONS) {
                return seadragon_tool_usage_error(command,
                                                  "unknown option \"%.*s\"",
                                                  (int) len, arg);
            }

            if (ctx->options[n]) {
                return seadragon_tool_usage_error(command,
                                                  "%s is given twice",
                                                  command->options[n]);
            }

            if (equals) {
                value = equals + 1;

            } else if (i + 1 < argc) {
                value = argv[++i];

            } else {
                return seadragon_tool_usage_error(command, "%s needs a value",
                                                  command->options[n]);
            }

            ctx->options[n] = value;
            continue;
        }

        if (command->arg == NULL || ctx->arg) {
            return seadragon_tool_usage_error(command, "unexpected argument "
                                              "\"%s\"", arg);
        }

        ctx->arg = arg;
    }

    if (command->arg && ctx->arg == NULL) {
        return seadragon_tool_usage_error(command, "%s is missing",
                                          command->arg);
    }

    return SEADRAGON_TOOL_DONE;
}


/* names the path and LMDB's words for the error: the status is 3 */

static int
seadragon_tool_store_error(seadragon_tool_store_t *store, const char *action,
    const char *what, int rc)
{
    char         size[32], larger[32];
    MDB_envinfo  info;

    if (rc != MDB_MAP_FULL || store->env == NULL
        || mdb_env_info(store->env, &info) != MDB_SUCCESS)
    {
        seadragon_tool_error("cannot %s the store \"%s\": %s: %s", action,
                             store->path, what, mdb_strerror(rc));
        return SEADRAGON_TOOL_STORE;
    }

    seadragon_tool_format_size(info.me_mapsize, size, sizeof(size));
    seadragon_tool_format_size(info.me_mapsize * 2, larger, sizeof(larger));

    seadragon_tool_error("cannot %s the store \"%s\": %s: %s; the store is "
                         "full at its map size of %s: grow it with "
                         "\"seadragon-store --store %s init --map-size %s\" "
                         "(nginx may keep running)", action, store->path,
                         what, mdb_strerror(rc), size, store->path, larger);

    return SEADRAGON_TOOL_STORE;
}


static int
seadragon_tool_store_not_ours(seadragon_tool_store_t *store)
{
    seadragon_tool_error("\"%s\" is not a seadragon store: it has no \"%s\" "
                         "format marker", store->path,
                         SEADRAGON_STORE_FORMAT);

    return SEADRAGON_TOOL_STORE;
}


/* map_size 0: the size the environment was last given */

static int
seadragon_tool_env_open(seadragon_tool_store_t *store, unsigned flags,
    size_t map_size)
{
    int  rc, dead;

    rc = mdb_env_create(&store->env);
    if (rc != MDB_SUCCESS) {
        store->env = NULL;
        return seadragon_tool_store_error(store, "open", "mdb_env_create()",
                                          rc);
    }

    rc = mdb_env_set_maxdbs(store->env, SEADRAGON_STORE_MAXDBS);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(store, "open",
                                          "mdb_env_set_maxdbs()", rc);
    }

    if (map_size) {
        rc = mdb_env_set_mapsize(store->env, map_size);
        if (rc != MDB_SUCCESS) {
            return seadragon_tool_store_error(store, "open",
                                              "mdb_env_set_mapsize()", rc);
        }
    }

    rc = mdb_env_open(store->env, store->path, flags, 0644);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(store, "open", "mdb_env_open()",
                                          rc);
    }

    /*
     * A crashed reader's slot would keep old pages from reuse, and enough
     * of them fill the table (MDB_READERS_FULL) for every reader: cleared
     * at every open, read-only ones too.
     */

    (void) mdb_reader_check(store->env, &dead);

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_txn_begin(seadragon_tool_store_t *store, unsigned flags)
{
    int  rc, dead;

    rc = mdb_txn_begin(store->env, NULL, flags, &store->txn);

    if (rc == MDB_READERS_FULL) {

        /* dead readers that came since the open */

        (void) mdb_reader_check(store->env, &dead);
        rc = mdb_txn_begin(store->env, NULL, flags, &store->txn);
    }

    if (rc == MDB_MAP_RESIZED) {

        /* another seadragon-store grew the map since we opened it */

        rc = mdb_env_set_mapsize(store->env, 0);

        if (rc == MDB_SUCCESS) {
            rc = mdb_txn_begin(store->env, NULL, flags, &store->txn);
        }
    }

    if (rc != MDB_SUCCESS) {
        store->txn = NULL;
        return seadragon_tool_store_error(store, "open", "mdb_txn_begin()",
                                          rc);
    }

    return SEADRAGON_TOOL_DONE;
}


/*
 * data.mdb checked before LMDB maps it: a truncated or overwritten file
 * would make LMDB fault (SIGBUS) or, opened for writing, turn an empty
 * file into a new, empty environment
 */

static int
seadragon_tool_check_file(seadragon_tool_store_t *store, const char *file)
{
    int                      fd, rc;
    const char              *error;
    seadragon_store_file_t   info;

    fd = open(file, O_RDONLY);
    if (fd == -1) {
        return seadragon_tool_store_error(store, "open", "open(data.mdb)",
                                          errno);
    }

    rc = seadragon_store_check_file(fd, &info, &error);

    close(fd);

    if (rc != 0) {
        seadragon_tool_error("cannot open the store \"%s\": %s; restore it "
                             "from a copy, or move it away and create a new "
                             "store with \"seadragon-store --store %s init\"",
                             store->path, error, store->path);
        return SEADRAGON_TOOL_STORE;
    }

    return SEADRAGON_TOOL_DONE;
}


/* flags: MDB_RDONLY to read, 0 to write */

static int
seadragon_tool_store_open(seadragon_tool_store_t *store, unsigned flags)
{
    int          rc;
    char        *file;
    size_t       len;
    struct stat  st;

    /* mdb_env_open() would make an environment where there is none */

    len = strlen(store->path) + sizeof("/data.mdb");

    file = malloc(len);
    if (file == NULL) {
        return seadragon_tool_store_error(store, "open", "malloc()", ENOMEM);
    }

    snprintf(file, len, "%s/data.mdb", store->path);

    rc = stat(file, &st) == -1 ? errno : 0;

    if (rc == 0) {
        rc = seadragon_tool_check_file(store, file);
        if (rc != SEADRAGON_TOOL_DONE) {
            free(file);
            return rc;
        }
    }

    free(file);

    if (rc == ENOENT || rc == ENOTDIR) {
        seadragon_tool_error("cannot open the store \"%s\": %s/data.mdb: %s; "
                             "create it with \"seadragon-store --store %s "
                             "init\"", store->path, store->path,
                             mdb_strerror(rc), store->path);
        return SEADRAGON_TOOL_STORE;
    }

    if (rc) {
        return seadragon_tool_store_error(store, "open", "stat()", rc);
    }

    rc = seadragon_tool_env_open(store, flags, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_txn_begin(store, flags);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_store_open_dbs(store->txn, &store->dbs, 0);

    if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
        return seadragon_tool_store_not_ours(store);
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(store, "open",
                                          "opening its databases", rc);
    }

    rc = seadragon_store_check_format(store->txn, &store->dbs);

    if (rc == MDB_NOTFOUND) {
        return seadragon_tool_store_not_ours(store);
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(store, "read",
                                          "reading its format", rc);
    }

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_store_commit(seadragon_tool_store_t *store)
{
    int  rc;

    rc = mdb_txn_commit(store->txn);
    store->txn = NULL;

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(store, "write", "mdb_txn_commit()",
                                          rc);
    }

    return SEADRAGON_TOOL_DONE;
}


/* aborts what was not committed */

static void
seadragon_tool_store_close(seadragon_tool_store_t *store)
{
    if (store->txn) {
        mdb_txn_abort(store->txn);
        store->txn = NULL;
    }

    if (store->env) {
        mdb_env_close(store->env);
        store->env = NULL;
    }
}


/* "65536", "64k", "64m", "1g" */

static int
seadragon_tool_parse_size(const char *text, size_t *size)
{
    char                *end;
    size_t               unit;
    unsigned long long   n;

    if (text[0] < '0' || text[0] > '9') {
        return -1;
    }

    errno = 0;
    n = strtoull(text, &end, 10);

    if (errno) {
        return -1;
    }

    switch (*end) {

    case '\0':
        unit = 1;
        break;

    case 'k':
    case 'K':
        unit = 1024;
        end++;
        break;

    case 'm':
    case 'M':
        unit = 1024 * 1024;
        end++;
        break;

    case 'g':
    case 'G':
        unit = 1024 * 1024 * 1024;
        end++;
        break;

    default:
        return -1;
    }

    if (*end != '\0' || n > (SIZE_MAX / 2) / unit) {
        return -1;
    }

    *size = (size_t) n * unit;

    return 0;
}


static void
seadragon_tool_format_size(size_t size, char *buf, size_t len)
{
    if (size % (1024 * 1024 * 1024) == 0) {
        snprintf(buf, len, "%zug", size / (1024 * 1024 * 1024));

    } else if (size % (1024 * 1024) == 0) {
        snprintf(buf, len, "%zum", size / (1024 * 1024));

    } else if (size % 1024 == 0) {
        snprintf(buf, len, "%zuk", size / 1024);

    } else {
        snprintf(buf, len, "%zu", size);
    }
}


/* ISO 8601 in UTC: "2027-01-31T12:00:00Z" */

static void
seadragon_tool_format_time(int64_t t, char *buf)
{
    time_t     when;
    struct tm  tm;

    when = (time_t) t;

    if (gmtime_r(&when, &tm) == NULL
        || strftime(buf, SEADRAGON_TOOL_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm)
           == 0)
    {
        snprintf(buf, SEADRAGON_TOOL_TIME_LEN, "%lld", (long long) t);
    }
}


/*
 * "30d", "12h", "90m", "3600s" from now; "2027-01-31" (its midnight,
 * UTC) or "2027-01-31T12:00:00Z".  Returns 0, or -1 for text of neither
 * form; the caller checks that the time is in the future.
 */

static int
seadragon_tool_parse_expires(const char *text, time_t now, int64_t *expires)
{
    int          i;
    size_t       len;
    time_t       when;
    int64_t      n, unit;
    struct tm    tm, check;
    const char  *p;

    len = strlen(text);

    for (p = text; *p >= '0' && *p <= '9'; p++) { /* void */ }

    if (p > text && p - text <= 9 && p[0] != '\0' && p[1] == '\0') {

        switch (p[0]) {
        case 'd':
            unit = 86400;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'm':
            unit = 60;
            break;
        case 's':
            unit = 1;
            break;
        default:
            return -1;
        }

        n = strtoll(text, NULL, 10);

        *expires = (int64_t) now + n * unit;

        return 0;
    }

    if (len != sizeof("2027-01-31") - 1
        && len != sizeof(seadragon_tool_time_pattern) - 1)
    {
        return -1;
    }

    for (i = 0; text[i]; i++) {
        if (seadragon_tool_time_pattern[i] == 'd'
            ? (text[i] < '0' || text[i] > '9')
            : text[i] != seadragon_tool_time_pattern[i])
        {
            return -1;
        }
    }

    memset(&tm, 0, sizeof(struct tm));

    tm.tm_year = atoi(text) - 1900;
    tm.tm_mon = atoi(text + 5) - 1;
    tm.tm_mday = atoi(text + 8);

    if (len == sizeof(seadragon_tool_time_pattern) - 1) {
        tm.tm_hour = atoi(text + 11);
        tm.tm_min = atoi(text + 14);
        tm.tm_sec = atoi(text + 17);
    }

    check = tm;

    when = timegm(&tm);

    /* timegm() takes February 30 for March 2: refuse what it moved */

    if (when == (time_t) -1 || gmtime_r(&when, &tm) == NULL
        || tm.tm_year != check.tm_year || tm.tm_mon != check.tm_mon
        || tm.tm_mday != check.tm_mday || tm.tm_hour != check.tm_hour
        || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
    {
        return -1;
    }

    *expires = (int64_t) when;

    return 0;
}


/* an address or a range, with a hint at the range meant if host bits are
 * set: 10.0.0.1/8 is most likely 10.0.0.0/8 */

static int
seadragon_tool_parse_net(seadragon_tool_ctx_t *ctx, const char *text,
    seadragon_net_t *net)
{
    char             buf[SEADRAGON_NET_TEXT_LEN], hint[SEADRAGON_NET_TEXT_LEN];
    char            *slash;
    const char      *error, *ignored;
    unsigned long    prefix;
    seadragon_net_t  address;

    if (seadragon_net_parse(text, strlen(text), net, &error) == 0) {
        return SEADRAGON_TOOL_DONE;
    }

    hint[0] = '\0';

    slash = strchr(text, '/');

    /* only for a number that is a prefix length of the address's family */

    if (slash && strlen(text) < sizeof(buf)
        && slash[1] != '\0' && strlen(slash + 1) <= 3
        && strspn(slash + 1, "0123456789") == strlen(slash + 1))
    {
        snprintf(buf, sizeof(buf), "%.*s", (int) (slash - text), text);
        prefix = strtoul(slash + 1, NULL, 10);

        if (seadragon_net_parse(buf, strlen(buf), &address, &ignored) == 0
            && !(address.family == 4 && strchr(buf, ':'))
            && prefix < address.prefix)
        {
            seadragon_net_mask(&address, (unsigned) prefix);
            seadragon_net_format(&address, hint, sizeof(hint));
        }
    }

    return seadragon_tool_usage_error(ctx->command, "invalid %s \"%s\": %s; "
                                      "expected %s%s%s%s", ctx->command->arg,
                                      text, error,
                                      strcmp(ctx->command->arg, "ADDR") == 0
                                      ? "a single address such as 10.0.0.1 "
                                        "or 2001:db8::1"
                                      : "an address such as 10.0.0.1 or a "
                                        "range such as 10.0.0.0/8 or "
                                        "2001:db8::/32",
                                      hint[0] ? "; did you mean " : "",
                                      hint, hint[0] ? "?" : "");
}


/* 1 to max characters: letters, digits and those of extra (the codec's
 * rule, which the module applies too) */

static int
seadragon_tool_check_name(const char *text, size_t max, const char *extra)
{
    return seadragon_name_valid(text, strlen(text), max, extra) ? 0 : -1;
}


/* mkdir -p; a directory made here is 0755 (the umask is 022) */

static int
seadragon_tool_mkdir(const char *path)
{
    int    rc;
    char  *copy, *p;

    copy = strdup(path);
    if (copy == NULL) {
        return ENOMEM;
    }

    rc = 0;

    for (p = copy + 1; *p; p++) {
        if (*p != '/') {
            continue;
        }

        *p = '\0';

        if (mkdir(copy, 0755) == -1 && errno != EEXIST) {
            rc = errno;
            break;
        }

        *p = '/';
    }

    if (rc == 0 && mkdir(copy, 0755) == -1 && errno != EEXIST) {
        rc = errno;
    }

    free(copy);

    return rc;
}


/* 0: empty (a lock file left by an early reader does not count), 1: an
 * environment, 2: other files, or -1 with errno */

static int
seadragon_tool_directory_state(const char *path)
{
    int             state;
    DIR            *dir;
    struct dirent  *entry;

    dir = opendir(path);
    if (dir == NULL) {
        return -1;
    }

    state = 0;

    while ((entry = readdir(dir)) != NULL) {

        if (strcmp(entry->d_name, ".") == 0
            || strcmp(entry->d_name, "..") == 0
            || strcmp(entry->d_name, "lock.mdb") == 0)
        {
            continue;
        }

        if (strcmp(entry->d_name, "data.mdb") == 0) {
            state = 1;
            break;
        }

        state = 2;
    }

    closedir(dir);

    return state;
}


/*
 * init [--map-size SIZE]: a new store in a new or empty directory; on a
 * store of this format, "already initialized", and a larger map if asked.
 */

static int
seadragon_tool_init(seadragon_tool_ctx_t *ctx)
{
    int                      rc, state, empty;
    char                     old_size[32], new_size[32], data[4096];
    size_t                   map_size, target;
    MDB_val                  k, v;
    MDB_dbi                  main_dbi;
    MDB_stat                 st;
    MDB_envinfo              info;
    struct stat              sb;
    seadragon_tool_store_t  *store;

    store = &ctx->store;
    map_size = 0;
    empty = 0;

    if (ctx->options[0]) {
        if (seadragon_tool_parse_size(ctx->options[0], &map_size) != 0
            || map_size < SEADRAGON_TOOL_MIN_MAP_SIZE)
        {
            return seadragon_tool_usage_error(ctx->command, "invalid "
                                              "--map-size \"%s\": expected a "
                                              "size of at least 64k, such as "
                                              "64m, 512m or 2g",
                                              ctx->options[0]);
        }
    }

    if (stat(store->path, &sb) == -1) {

        if (errno != ENOENT) {
            return seadragon_tool_store_error(store, "create", "stat()",
                                              errno);
        }

        rc = seadragon_tool_mkdir(store->path);
        if (rc) {
            return seadragon_tool_store_error(store, "create", "mkdir()", rc);
        }

        state = 0;

    } else if (!S_ISDIR(sb.st_mode)) {
        return seadragon_tool_store_error(store, "create",
                                          "the path is not a directory",
                                          ENOTDIR);

    } else {
        state = seadragon_tool_directory_state(store->path);

        if (state == -1) {
            return seadragon_tool_store_error(store, "create", "opendir()",
                                              errno);
        }

        if (state == 2) {
            seadragon_tool_error("cannot create the store \"%s\": the "
                                 "directory holds other files and no store; "
                                 "expected a new or empty directory",
                                 store->path);
            return SEADRAGON_TOOL_STORE;
        }
    }

    if (state == 0) {
        target = map_size ? map_size : SEADRAGON_TOOL_DEFAULT_MAP_SIZE;

        rc = seadragon_tool_env_open(store, 0, target);
        if (rc != SEADRAGON_TOOL_DONE) {
            return rc;
        }

        empty = 1;

    } else {

        /* an environment: ours, empty, or another one */

        snprintf(data, sizeof(data), "%s/data.mdb", store->path);

        rc = seadragon_tool_check_file(store, data);
        if (rc != SEADRAGON_TOOL_DONE) {
            return rc;
        }

        rc = seadragon_tool_env_open(store, 0, 0);
        if (rc != SEADRAGON_TOOL_DONE) {
            return rc;
        }

        rc = seadragon_tool_txn_begin(store, MDB_RDONLY);
        if (rc != SEADRAGON_TOOL_DONE) {
            return rc;
        }

        rc = seadragon_store_open_dbs(store->txn, &store->dbs, 0);

        if (rc == MDB_SUCCESS) {
            rc = seadragon_store_check_format(store->txn, &store->dbs);

            if (rc == MDB_NOTFOUND) {
                return seadragon_tool_store_not_ours(store);
            }

            empty = 0;

        } else if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            rc = mdb_dbi_open(store->txn, NULL, 0, &main_dbi);

            if (rc == MDB_SUCCESS) {
                rc = mdb_stat(store->txn, main_dbi, &st);
            }

            if (rc == MDB_SUCCESS && st.ms_entries != 0) {
                seadragon_tool_error("cannot create the store \"%s\": it "
                                     "holds an LMDB environment of another "
                                     "kind (no \"%s\" format marker)",
                                     store->path, SEADRAGON_STORE_FORMAT);
                return SEADRAGON_TOOL_STORE;
            }

            empty = 1;
        }

        if (rc != MDB_SUCCESS) {
            return seadragon_tool_store_error(store, "open",
                                              "reading its databases", rc);
        }

        mdb_txn_abort(store->txn);
        store->txn = NULL;

        rc = mdb_env_info(store->env, &info);
        if (rc != MDB_SUCCESS) {
            return seadragon_tool_store_error(store, "open",
                                              "mdb_env_info()", rc);
        }

        target = map_size;

        if (empty && target == 0) {
            target = SEADRAGON_TOOL_DEFAULT_MAP_SIZE;
        }

        seadragon_tool_format_size(info.me_mapsize, old_size,
                                   sizeof(old_size));

        if (!empty && target <= info.me_mapsize) {
            printf("%s is already initialized (map size %s)\n", store->path,
                   old_size);
            return SEADRAGON_TOOL_DONE;
        }

        if (target > info.me_mapsize) {

            /* readers adopt a larger map when they next begin */

            rc = mdb_env_set_mapsize(store->env, target);
            if (rc != MDB_SUCCESS) {
                return seadragon_tool_store_error(store, "write",
                                                  "mdb_env_set_mapsize()",
                                                  rc);
            }

        } else {
            target = info.me_mapsize;
        }
    }

    rc = seadragon_tool_txn_begin(store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    if (empty) {
        rc = seadragon_store_create(store->txn, &store->dbs);

        if (rc == MDB_SUCCESS) {
            rc = seadragon_secret_rotate(store->txn, &store->dbs,
                                         time(NULL));

            if (rc == -1) {
                seadragon_tool_error("cannot create the store \"%s\": "
                                     "OpenSSL's RAND_bytes() failed",
                                     store->path);
                return SEADRAGON_TOOL_STORE;
            }
        }

    } else {

        /*
         * The handles of the read transaction went with it.  LMDB records
         * a new map size only in a commit that writes: the marker again.
         */

        rc = seadragon_store_open_dbs(store->txn, &store->dbs, 0);

        if (rc == MDB_SUCCESS) {
            k.mv_data = "format";
            k.mv_size = sizeof("format") - 1;
            v.mv_data = SEADRAGON_STORE_FORMAT;
            v.mv_size = sizeof(SEADRAGON_STORE_FORMAT) - 1;

            rc = mdb_put(store->txn, store->dbs.meta, &k, &v, 0);
        }
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(store, "write",
                                          empty ? "creating its databases"
                                                : "mdb_put()", rc);
    }

    rc = seadragon_tool_store_commit(store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    seadragon_tool_format_size(target, new_size, sizeof(new_size));

    if (empty) {
        printf("initialized %s (map size %s)\n", store->path, new_size);

    } else {
        printf("%s is already initialized; its map size grew from %s to %s\n",
               store->path, old_size, new_size);
    }

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_whitelist_add(seadragon_tool_ctx_t *ctx)
{
    int                          rc;
    char                         text[SEADRAGON_NET_TEXT_LEN];
    size_t                       len;
    const char                  *note, *p;
    seadragon_net_t              net;
    seadragon_whitelist_entry_t  entry;

    rc = seadragon_tool_parse_net(ctx, ctx->arg, &net);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    note = ctx->options[0] ? ctx->options[0] : "";
    len = strlen(note);

    if (len > SEADRAGON_TOOL_NOTE_LEN) {
        return seadragon_tool_usage_error(ctx->command, "the note is %zu "
                                          "bytes long; expected at most %d",
                                          len, SEADRAGON_TOOL_NOTE_LEN);
    }

    for (p = note; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            return seadragon_tool_usage_error(ctx->command, "the note has a "
                                              "control character (a tab, a "
                                              "newline, ...); expected "
                                              "printable text");
        }
    }

    memset(&entry, 0, sizeof(seadragon_whitelist_entry_t));
    entry.created = (int64_t) time(NULL);
    memcpy(entry.note, note, len);

    seadragon_net_format(&net, text, sizeof(text));

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_whitelist_add(ctx->store.txn, &ctx->store.dbs, &net,
                                 &entry);

    if (rc == MDB_KEYEXIST) {
        seadragon_tool_error("%s is already whitelisted", text);
        return SEADRAGON_TOOL_USAGE;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "adding the entry", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    printf("whitelisted %s\n", text);

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_whitelist_remove(seadragon_tool_ctx_t *ctx)
{
    int              rc;
    char             text[SEADRAGON_NET_TEXT_LEN];
    seadragon_net_t  net;

    rc = seadragon_tool_parse_net(ctx, ctx->arg, &net);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    seadragon_net_format(&net, text, sizeof(text));

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_whitelist_remove(ctx->store.txn, &ctx->store.dbs, &net);

    if (rc == MDB_NOTFOUND) {
        seadragon_tool_error("%s is not a whitelist entry (see \"whitelist "
                             "list\")", text);
        return SEADRAGON_TOOL_USAGE;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "removing the entry", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    printf("removed %s from the whitelist\n", text);

    return SEADRAGON_TOOL_DONE;
}


/* IPv4 first; then by address, a wider range before a narrower one */

static int
seadragon_tool_listed_cmp(const void *one, const void *two)
{
    int                            rc;
    const seadragon_tool_listed_t  *a, *b;

    a = one;
    b = two;

    if (a->net.family != b->net.family) {
        return a->net.family - b->net.family;
    }

    rc = memcmp(a->net.addr, b->net.addr, sizeof(a->net.addr));
    if (rc) {
        return rc;
    }

    return a->net.prefix - b->net.prefix;
}


static int
seadragon_tool_whitelist_list(seadragon_tool_ctx_t *ctx)
{
    int                       rc;
    char                      text[SEADRAGON_NET_TEXT_LEN];
    char                      created[SEADRAGON_TOOL_TIME_LEN];
    size_t                    i, n, size;
    MDB_val                   k, v;
    MDB_cursor               *cursor;
    seadragon_tool_listed_t  *list, *more;

    rc = seadragon_tool_store_open(&ctx->store, MDB_RDONLY);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = mdb_cursor_open(ctx->store.txn, ctx->store.dbs.whitelist, &cursor);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "mdb_cursor_open()", rc);
    }

    list = NULL;
    n = 0;
    size = 0;

    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT))
    {
        if (n == size) {
            size = size ? size * 2 : 64;

            more = realloc(list, size * sizeof(seadragon_tool_listed_t));
            if (more == NULL) {
                rc = ENOMEM;
                break;
            }

            list = more;
        }

        if (seadragon_net_from_key(k.mv_data, k.mv_size, &list[n].net) != 0
            || v.mv_size != sizeof(seadragon_whitelist_entry_t))
        {
            rc = MDB_CORRUPTED;
            break;
        }

        memcpy(&list[n].entry, v.mv_data, sizeof(seadragon_whitelist_entry_t));
        list[n].entry.note[sizeof(list[n].entry.note) - 1] = '\0';
        n++;
    }

    mdb_cursor_close(cursor);

    if (rc != MDB_NOTFOUND) {
        free(list);
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "reading the whitelist", rc);
    }

    if (n) {
        qsort(list, n, sizeof(seadragon_tool_listed_t),
              seadragon_tool_listed_cmp);
    }

    for (i = 0; i < n; i++) {
        seadragon_net_format(&list[i].net, text, sizeof(text));
        seadragon_tool_format_time(list[i].entry.created, created);
        printf("%s\t%s\t%s\n", text, created, list[i].entry.note);
    }

    free(list);

    return SEADRAGON_TOOL_DONE;
}


/*
 * The verdict is seadragon_whitelist_find()'s, the module's own; the
 * entry named is the narrowest that covers the address.
 */

static int
seadragon_tool_whitelist_check(seadragon_tool_ctx_t *ctx)
{
    int              rc, found;
    char             text[SEADRAGON_NET_TEXT_LEN], by[SEADRAGON_NET_TEXT_LEN];
    MDB_val          k, v;
    MDB_cursor      *cursor;
    seadragon_net_t  addr, net, best;

    if (strchr(ctx->arg, '/')) {
        return seadragon_tool_usage_error(ctx->command, "\"%s\" is a range; "
                                          "expected a single address such "
                                          "as 10.0.0.1 or 2001:db8::1",
                                          ctx->arg);
    }

    rc = seadragon_tool_parse_net(ctx, ctx->arg, &addr);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    seadragon_net_format(&addr, text, sizeof(text));

    rc = seadragon_tool_store_open(&ctx->store, MDB_RDONLY);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_whitelist_find(ctx->store.txn, &ctx->store.dbs, &addr);

    if (rc == MDB_NOTFOUND) {
        printf("%s is not whitelisted\n", text);
        return SEADRAGON_TOOL_NO;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "looking the address up", rc);
    }

    rc = mdb_cursor_open(ctx->store.txn, ctx->store.dbs.whitelist, &cursor);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "mdb_cursor_open()", rc);
    }

    found = 0;
    memset(&best, 0, sizeof(seadragon_net_t));

    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT))
    {
        if (seadragon_net_from_key(k.mv_data, k.mv_size, &net) == 0
            && seadragon_net_contains(&net, &addr)
            && (!found || net.prefix > best.prefix))
        {
            best = net;
            found = 1;
        }
    }

    mdb_cursor_close(cursor);

    if (rc != MDB_NOTFOUND) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "reading the whitelist", rc);
    }

    if (!found) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "finding the covering entry",
                                          MDB_CORRUPTED);
    }

    seadragon_net_format(&best, by, sizeof(by));

    printf("%s is whitelisted (by %s)\n", text, by);

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_key_create(seadragon_tool_ctx_t *ctx)
{
    int                     rc;
    char                    when[SEADRAGON_TOOL_TIME_LEN];
    char                    key[SEADRAGON_KEY_TEXT_LEN + 1];
    time_t                  now;
    const char             *name, *source;
    seadragon_key_limits_t  limits;
    seadragon_key_record_t  record;

    name = ctx->arg;
    source = ctx->options[0];

    if (seadragon_tool_check_name(name, SEADRAGON_KEY_NAME_LEN - 1, "_-.@")
        != 0)
    {
        return seadragon_tool_usage_error(ctx->command, "invalid NAME "
                                          "\"%s\": expected 1 to %d letters, "
                                          "digits, \"_\", \"-\", \".\" and "
                                          "\"@\"", name,
                                          SEADRAGON_KEY_NAME_LEN - 1);
    }

    if (source == NULL) {
        return seadragon_tool_usage_error(ctx->command, "--source SOURCE is "
                                          "missing: the source whose queue "
                                          "the key's requests join");
    }

    if (seadragon_tool_check_name(source, SEADRAGON_KEY_SOURCE_LEN - 1, "_-")
        != 0)
    {
        return seadragon_tool_usage_error(ctx->command, "invalid SOURCE "
                                          "\"%s\": expected 1 to %d letters, "
                                          "digits, \"_\" and \"-\" (a "
                                          "seadragon_source name)", source,
                                          SEADRAGON_KEY_SOURCE_LEN - 1);
    }

    now = time(NULL);

    memset(&record, 0, sizeof(seadragon_key_record_t));

    record.version = SEADRAGON_KEY_VERSION;
    record.flags = 0;
    record.created = (int64_t) now;
    record.expires = 0;
    memcpy(record.name, name, strlen(name));
    memcpy(record.source, source, strlen(source));

    if (ctx->options[1]) {
        if (seadragon_tool_parse_expires(ctx->options[1], now,
                                         &record.expires)
            != 0)
        {
            return seadragon_tool_usage_error(ctx->command, "invalid "
                                              "--expires \"%s\": expected a "
                                              "duration such as 30d, 12h, "
                                              "90m or 3600s, or a date such "
                                              "as 2027-01-31 or "
                                              "2027-01-31T12:00:00Z (UTC)",
                                              ctx->options[1]);
        }

        if (record.expires <= (int64_t) now) {
            seadragon_tool_format_time(record.expires, when);
            return seadragon_tool_usage_error(ctx->command, "--expires "
                                              "\"%s\" is not in the future "
                                              "(%s); expected a later time",
                                              ctx->options[1], when);
        }
    }

    rc = seadragon_tool_parse_limits(ctx, &ctx->options[2], &limits);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    record.rpm = limits.rpm;
    record.tokens_per_day = limits.tokens_per_day;
    record.max_concurrent = limits.max_concurrent;
    record.weight = (limits.set & SEADRAGON_LIMIT_WEIGHT) ? limits.weight : 1;

    if (seadragon_key_generate(key) != 0) {
        seadragon_tool_error("cannot make a key: OpenSSL's RAND_bytes() "
                             "failed");
        return SEADRAGON_TOOL_STORE;
    }

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        OPENSSL_cleanse(key, sizeof(key));
        return rc;
    }

    rc = seadragon_key_add(ctx->store.txn, &ctx->store.dbs, key,
                           SEADRAGON_KEY_TEXT_LEN, &record);

    if (rc == MDB_KEYEXIST) {
        OPENSSL_cleanse(key, sizeof(key));
        seadragon_tool_error("a key named \"%s\" already exists; revoke it "
                             "first or choose another name", name);
        return SEADRAGON_TOOL_USAGE;
    }

    if (rc == MDB_SUCCESS) {
        rc = seadragon_tool_store_commit(&ctx->store);

    } else {
        rc = seadragon_tool_store_error(&ctx->store, "write",
                                        "adding the key", rc);
    }

    if (rc != SEADRAGON_TOOL_DONE) {
        OPENSSL_cleanse(key, sizeof(key));
        return rc;
    }

    if (printf("%s\n", key) < 0 || fflush(stdout) != 0) {
        OPENSSL_cleanse(key, sizeof(key));
        seadragon_tool_error("the key \"%s\" is stored but could not be "
                             "printed: %s; revoke it with \"seadragon-store "
                             "--store %s key revoke %s\"", name,
                             strerror(errno), ctx->store.path, name);
        return SEADRAGON_TOOL_STORE;
    }

    OPENSSL_cleanse(key, sizeof(key));

    if (record.expires) {
        seadragon_tool_format_time(record.expires, when);
    }

    seadragon_tool_error("created the key \"%s\" for the source \"%s\", %s%s;"
                         " it is printed above and will not be shown again",
                         name, source,
                         record.expires ? "expiring " : "never expiring",
                         record.expires ? when : "");

    return SEADRAGON_TOOL_DONE;
}


/* the hash that "key_names" holds for name, in store's transaction */

static int
seadragon_tool_key_hash_of(seadragon_tool_store_t *store, const char *name,
    uint8_t hash[SEADRAGON_KEY_HASH_LEN])
{
    int      rc;

    rc = seadragon_key_hash_of_name(store->txn, &store->dbs, name,
                                    strlen(name), hash);

    if (rc == MDB_NOTFOUND) {
        seadragon_tool_error("there is no key named \"%s\" (see \"key "
                             "list\")", name);
        return SEADRAGON_TOOL_USAGE;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(store, "read", "finding the key",
                                          rc);
    }

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_key_revoke(seadragon_tool_ctx_t *ctx)
{
    int      rc;
    uint8_t  hash[SEADRAGON_KEY_HASH_LEN];

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_key_hash_of(&ctx->store, ctx->arg, hash);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_key_remove(ctx->store.txn, &ctx->store.dbs, ctx->arg,
                              strlen(ctx->arg));

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "deleting the key", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    printf("revoked the key \"%s\"\n", ctx->arg);

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_key_disable(seadragon_tool_ctx_t *ctx)
{
    return seadragon_tool_key_set_disabled(ctx, 1);
}


static int
seadragon_tool_key_enable(seadragon_tool_ctx_t *ctx)
{
    return seadragon_tool_key_set_disabled(ctx, 0);
}


static int
seadragon_tool_key_set_disabled(seadragon_tool_ctx_t *ctx, int disabled)
{
    int                     rc, changed;
    char                    when[SEADRAGON_TOOL_TIME_LEN];
    uint8_t                 hash[SEADRAGON_KEY_HASH_LEN];
    const char             *state;
    seadragon_key_record_t  record;

    state = disabled ? "disabled" : "enabled";

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_key_hash_of(&ctx->store, ctx->arg, hash);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_key_set_disabled(ctx->store.txn, &ctx->store.dbs,
                                    ctx->arg, strlen(ctx->arg), disabled,
                                    &changed, &record);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "changing the key", rc);
    }

    if (!changed) {
        printf("the key \"%s\" is already %s\n", ctx->arg, state);
        return SEADRAGON_TOOL_DONE;
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    printf("%s the key \"%s\"\n", state, ctx->arg);

    if (!disabled && record.expires && record.expires <= time(NULL)) {
        seadragon_tool_format_time(record.expires, when);
        seadragon_tool_error("the key \"%s\" is still refused: it expired "
                             "at %s", ctx->arg, when);
    }

    return SEADRAGON_TOOL_DONE;
}


/* never a key nor its hash; LMDB keeps the names sorted */

static int
seadragon_tool_key_list(seadragon_tool_ctx_t *ctx)
{
    int                     rc;
    char                    created[SEADRAGON_TOOL_TIME_LEN];
    char                    expires[SEADRAGON_TOOL_TIME_LEN];
    char                    rpm[24], tokens[24], concurrent[24];
    time_t                  now;
    uint8_t                 hash[SEADRAGON_KEY_HASH_LEN];
    MDB_val                 k, v;
    MDB_cursor             *cursor;
    const char             *state;
    unsigned                listed;
    seadragon_key_record_t  record;

    rc = seadragon_tool_store_open(&ctx->store, MDB_RDONLY);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = mdb_cursor_open(ctx->store.txn, ctx->store.dbs.key_names, &cursor);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "mdb_cursor_open()", rc);
    }

    now = time(NULL);
    listed = 0;

    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT))
    {
        if (k.mv_size == 0 || k.mv_size >= SEADRAGON_KEY_NAME_LEN
            || v.mv_size != SEADRAGON_KEY_HASH_LEN)
        {
            rc = MDB_CORRUPTED;
            break;
        }

        memcpy(hash, v.mv_data, SEADRAGON_KEY_HASH_LEN);

        rc = seadragon_key_find_hash(ctx->store.txn, &ctx->store.dbs, hash,
                                     &record);

        if (rc == MDB_NOTFOUND) {
            rc = MDB_CORRUPTED;
        }

        if (rc != MDB_SUCCESS) {
            break;
        }

        /* the module's order: a disabled key is refused as disabled */

        if (record.flags & SEADRAGON_KEY_DISABLED) {
            state = "disabled";

        } else if (record.expires && record.expires <= (int64_t) now) {
            state = "expired";

        } else {
            state = "active";
        }

        seadragon_tool_format_time(record.created, created);

        if (record.expires) {
            seadragon_tool_format_time(record.expires, expires);

        } else {
            strcpy(expires, "never");
        }

        seadragon_tool_format_limit(record.rpm, "-", rpm, sizeof(rpm));
        seadragon_tool_format_limit(record.tokens_per_day, "-", tokens,
                                    sizeof(tokens));
        seadragon_tool_format_limit(record.max_concurrent, "-", concurrent,
                                    sizeof(concurrent));

        /* the header row, above the first key only: no keys, no output */

        if (listed++ == 0) {
            printf("name\tsource\tstate\tcreated\texpires\trpm\t"
                   "tokens_per_day\tmax_concurrent\tweight\n");
        }

        printf("%.*s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%u\n", (int) k.mv_size,
               (char *) k.mv_data, record.source, state, created, expires,
               rpm, tokens, concurrent, (unsigned) record.weight);
    }

    mdb_cursor_close(cursor);

    if (rc != MDB_NOTFOUND) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "reading the keys", rc);
    }

    return SEADRAGON_TOOL_DONE;
}


/*
 * --rpm, --tokens-per-day, --max-concurrent and --weight, the four
 * options from options[0]: those given are set in limits->set, the others
 * are 0.
 */

static int
seadragon_tool_parse_limits(seadragon_tool_ctx_t *ctx, char **options,
    seadragon_key_limits_t *limits)
{
    int          i;
    uint64_t     value;
    const char  *error;

    static const char      *names[] = {
        "--rpm", "--tokens-per-day", "--max-concurrent"
    };
    static const uint64_t   max[] = {
        SEADRAGON_LIMIT_RPM_MAX, SEADRAGON_LIMIT_TOKENS_MAX,
        SEADRAGON_LIMIT_CONCURRENT_MAX
    };
    static const char      *what[] = {
        "requests a minute", "tokens a UTC day",
        "requests parked or running at once"
    };

    memset(limits, 0, sizeof(seadragon_key_limits_t));

    for (i = 0; i < 3; i++) {

        if (options[i] == NULL) {
            continue;
        }

        if (seadragon_limit_parse(options[i], strlen(options[i]), max[i],
                                  &value, &error)
            != 0)
        {
            return seadragon_tool_usage_error(ctx->command, "invalid %s "
                                              "\"%s\": it %s; expected %s, "
                                              "0 to %llu, or none for no "
                                              "limit", names[i], options[i],
                                              error, what[i],
                                              (unsigned long long) max[i]);
        }

        switch (i) {
        case 0:
            limits->rpm = (uint32_t) value;
            limits->set |= SEADRAGON_LIMIT_RPM;
            break;
        case 1:
            limits->tokens_per_day = value;
            limits->set |= SEADRAGON_LIMIT_TOKENS;
            break;
        default:
            limits->max_concurrent = (uint32_t) value;
            limits->set |= SEADRAGON_LIMIT_CONCURRENT;
        }
    }

    if (options[3] == NULL) {
        return SEADRAGON_TOOL_DONE;
    }

    if (seadragon_weight_parse(options[3], strlen(options[3]),
                               &limits->weight)
        != 0)
    {
        return seadragon_tool_usage_error(ctx->command, "invalid --weight "
                                          "\"%s\": expected the key's "
                                          "share in fair queuing, a whole "
                                          "number from 1 (the default) to "
                                          "%d", options[3],
                                          SEADRAGON_WEIGHT_MAX);
    }

    limits->set |= SEADRAGON_LIMIT_WEIGHT;

    return SEADRAGON_TOOL_DONE;
}


/* a limit: the number, or what stands for none ("key list": "-") */

static void
seadragon_tool_format_limit(uint64_t limit, const char *none, char *buf,
    size_t len)
{
    if (limit == 0) {
        snprintf(buf, len, "%s", none);

    } else {
        snprintf(buf, len, "%llu", (unsigned long long) limit);
    }
}


static int
seadragon_tool_key_set(seadragon_tool_ctx_t *ctx)
{
    int                     rc;
    char                    rpm[24], tokens[24], concurrent[24];
    uint8_t                 hash[SEADRAGON_KEY_HASH_LEN];
    seadragon_key_limits_t  limits;
    seadragon_key_record_t  record;

    rc = seadragon_tool_parse_limits(ctx, &ctx->options[0], &limits);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    if (limits.set == 0) {
        return seadragon_tool_usage_error(ctx->command, "nothing to set: "
                                          "give --rpm, --tokens-per-day, "
                                          "--max-concurrent or --weight");
    }

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_key_hash_of(&ctx->store, ctx->arg, hash);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_key_set_limits(ctx->store.txn, &ctx->store.dbs, ctx->arg,
                                  strlen(ctx->arg), &limits, &record);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "changing the key", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    seadragon_tool_format_limit(record.rpm, "none", rpm, sizeof(rpm));
    seadragon_tool_format_limit(record.tokens_per_day, "none", tokens,
                                sizeof(tokens));
    seadragon_tool_format_limit(record.max_concurrent, "none", concurrent,
                                sizeof(concurrent));

    printf("the key \"%s\" now has rpm %s, tokens-per-day %s, "
           "max-concurrent %s, weight %u\n", ctx->arg, rpm, tokens,
           concurrent, (unsigned) record.weight);

    return SEADRAGON_TOOL_DONE;
}


/* a principal and model of "usage", summed over the days asked for */

typedef struct {
    char                      principal[SEADRAGON_USAGE_PRINCIPAL_LEN];
    size_t                    plen;
    char                      model[SEADRAGON_USAGE_MODEL_LEN];
    size_t                    mlen;
    seadragon_usage_record_t  sum;
} seadragon_tool_usage_row_t;


static int
seadragon_tool_usage_cmp(const void *one, const void *two)
{
    int                                rc;
    const seadragon_tool_usage_row_t  *a = one, *b = two;

    rc = seadragon_tool_bytes_cmp(a->principal, a->plen, b->principal,
                                  b->plen);

    return rc ? rc : seadragon_tool_bytes_cmp(a->model, a->mlen, b->model,
                                              b->mlen);
}


static int
seadragon_tool_bytes_cmp(const char *a, size_t alen, const char *b,
    size_t blen)
{
    int  rc;

    rc = memcmp(a, b, alen < blen ? alen : blen);

    return rc ? rc : (alen > blen) - (alen < blen);
}


/*
 * A name as a client wrote it, on one line and in one column: a control
 * byte (a tab, a newline, a NUL), DEL and "\" as \xNN, as nginx writes
 * them in its logs; an empty name as "-", and "-" itself as \x2d.
 */

static void
seadragon_tool_usage_name(const char *name, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0) {
        fputc('-', stdout);
        return;
    }

    if (len == 1 && name[0] == '-') {
        fputs("\\x2d", stdout);
        return;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) name[i];

        if (c < 0x20 || c == 0x7f || c == '\\') {
            printf("\\x%02X", c);

        } else {
            fputc(c, stdout);
        }
    }
}


/*
 * What the gateway wrote of the days asked for, as the admin API's GET
 * usage shows it (which adds the last second or so not yet written), read
 * in one read transaction while nginx runs.
 */

static int
seadragon_tool_usage_list(seadragon_tool_ctx_t *ctx)
{
    int                          rc, i;
    char                        *name;
    char                         filter[SEADRAGON_USAGE_PRINCIPAL_LEN + 1];
    size_t                       plen, mlen, n, room, j;
    uint8_t                      start[4];
    uint32_t                     day, from, to;
    MDB_val                      k, v;
    MDB_dbi                      dbi;
    MDB_cursor                  *cursor;
    const char                  *p, *m, *what;
    seadragon_usage_record_t     record;
    seadragon_tool_usage_row_t  *rows, *row, *more;

    static const char  *options[] = { "--day", "--from", "--to" };

    /* the days: --day, or --from and --to, or today (UTC) */

    from = (uint32_t) (time(NULL) / 86400);
    to = from;

    for (i = 0; i < 3; i++) {
        if (ctx->options[i]
            && seadragon_usage_day_parse(ctx->options[i],
                                         strlen(ctx->options[i]), &day)
               != 0)
        {
            return seadragon_tool_usage_error(ctx->command, "%s \"%s\" is not "
                                              "a date: use YYYY-MM-DD (UTC)",
                                              options[i], ctx->options[i]);
        }
    }

    if (ctx->options[0] && (ctx->options[1] || ctx->options[2])) {
        return seadragon_tool_usage_error(ctx->command, "--day and --from/--to "
                                          "do not go together");
    }

    if (ctx->options[0]) {
        (void) seadragon_usage_day_parse(ctx->options[0],
                                         strlen(ctx->options[0]), &from);
        to = from;

    } else if (ctx->options[1] || ctx->options[2]) {
        if (ctx->options[1] == NULL || ctx->options[2] == NULL) {
            return seadragon_tool_usage_error(ctx->command, "a range needs "
                                              "both --from and --to");
        }

        (void) seadragon_usage_day_parse(ctx->options[1],
                                         strlen(ctx->options[1]), &from);
        (void) seadragon_usage_day_parse(ctx->options[2],
                                         strlen(ctx->options[2]), &to);

        if (from > to) {
            return seadragon_tool_usage_error(ctx->command, "--from is after "
                                              "--to");
        }

        if (to - from >= 366) {
            return seadragon_tool_usage_error(ctx->command, "a range has at "
                                              "most 366 days");
        }
    }

    /* whose: --key NAME ("key:NAME") or --source SOURCE ("source:...") */

    filter[0] = '\0';

    if (ctx->options[3] && ctx->options[4]) {
        return seadragon_tool_usage_error(ctx->command, "--key and --source "
                                          "do not go together");
    }

    if (ctx->options[3] || ctx->options[4]) {
        name = ctx->options[3] ? ctx->options[3] : ctx->options[4];

        if (ctx->options[3]
            && seadragon_tool_check_name(name, SEADRAGON_KEY_NAME_LEN - 1,
                                         "_-.@")
               != 0)
        {
            return seadragon_tool_usage_error(ctx->command, "invalid NAME "
                                              "\"%s\": expected 1 to %d "
                                              "letters, digits, \"_\", \"-\", "
                                              "\".\" and \"@\"", name,
                                              SEADRAGON_KEY_NAME_LEN - 1);
        }

        if (ctx->options[4]
            && seadragon_tool_check_name(name, SEADRAGON_KEY_SOURCE_LEN - 1,
                                         "_-")
               != 0)
        {
            return seadragon_tool_usage_error(ctx->command, "invalid SOURCE "
                                              "\"%s\": expected 1 to %d "
                                              "letters, digits, \"_\" and "
                                              "\"-\"", name,
                                              SEADRAGON_KEY_SOURCE_LEN - 1);
        }

        snprintf(filter, sizeof(filter), "%s%s",
                 ctx->options[3] ? "key:" : "source:", name);
    }

    rc = seadragon_tool_store_open(&ctx->store, MDB_RDONLY);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    printf("principal\tmodel\trequests\tprompt_tokens\tcompletion_tokens\t"
           "generation_seconds\tload_seconds\testimated\n");

    /* a store the gateway has not written usage to yet has none */

    rc = mdb_dbi_open(ctx->store.txn, SEADRAGON_STORE_DB_USAGE, 0, &dbi);

    if (rc == MDB_NOTFOUND) {
        return SEADRAGON_TOOL_DONE;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "mdb_dbi_open()", rc);
    }

    rc = mdb_cursor_open(ctx->store.txn, dbi, &cursor);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "mdb_cursor_open()", rc);
    }

    rows = NULL;
    n = 0;
    room = 0;
    what = "reading the usage";

    start[0] = (uint8_t) (from >> 24);
    start[1] = (uint8_t) (from >> 16);
    start[2] = (uint8_t) (from >> 8);
    start[3] = (uint8_t) from;

    k.mv_data = start;
    k.mv_size = sizeof(start);

    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT))
    {
        if (seadragon_usage_key_parse(&k, &day, &p, &plen, &m, &mlen) != 0
            || seadragon_usage_record(&v, &record) != 0)
        {
            rc = MDB_CORRUPTED;
            break;
        }

        if (day > to) {
            rc = MDB_NOTFOUND;
            break;
        }

        if (filter[0] && (plen != strlen(filter)
                          || memcmp(p, filter, plen) != 0))
        {
            continue;
        }

        /* the same principal and model of another day: added to it */

        for (j = 0; j < n; j++) {
            row = &rows[j];

            if (row->plen == plen
                && memcmp(row->principal, p, plen) == 0
                && row->mlen == mlen
                && memcmp(row->model, m, mlen) == 0)
            {
                break;
            }
        }

        if (j == n) {
            if (n == room) {
                room = room ? 2 * room : 64;
                more = realloc(rows, room * sizeof(seadragon_tool_usage_row_t));
                if (more == NULL) {
                    rc = ENOMEM;
                    what = "realloc()";
                    break;
                }

                rows = more;
            }

            row = &rows[n++];
            memset(row, 0, sizeof(seadragon_tool_usage_row_t));
            if (plen > sizeof(row->principal) || mlen > sizeof(row->model)) {
                rc = MDB_CORRUPTED;
                n--;
                break;
            }

            memcpy(row->principal, p, plen);
            row->plen = plen;
            memcpy(row->model, m, mlen);
            row->mlen = mlen;
        }

        row = &rows[j];
        seadragon_usage_record_sum(&row->sum, &record);
    }

    mdb_cursor_close(cursor);

    if (rc != MDB_NOTFOUND) {
        free(rows);
        return seadragon_tool_store_error(&ctx->store, "read", what, rc);
    }

    if (n) {
        qsort(rows, n, sizeof(seadragon_tool_usage_row_t),
              seadragon_tool_usage_cmp);
    }

    for (j = 0; j < n; j++) {
        row = &rows[j];

        seadragon_tool_usage_name(row->principal, row->plen);
        fputc('\t', stdout);
        seadragon_tool_usage_name(row->model, row->mlen);

        printf("\t%llu\t%llu\t%llu\t%llu.%03llu\t%llu.%03llu\t%llu\n",
               (unsigned long long) row->sum.requests,
               (unsigned long long) row->sum.prompt_tokens,
               (unsigned long long) row->sum.completion_tokens,
               (unsigned long long) (row->sum.generation_ms / 1000),
               (unsigned long long) (row->sum.generation_ms % 1000),
               (unsigned long long) (row->sum.load_ms / 1000),
               (unsigned long long) (row->sum.load_ms % 1000),
               (unsigned long long) row->sum.estimated);
    }

    free(rows);

    return SEADRAGON_TOOL_DONE;
}


/* a signal while echo is off: the terminal as it was, then the default */

static void
seadragon_tool_password_signal(int signo)
{
    if (seadragon_tool_echo_off) {
        (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &seadragon_tool_termios);
    }

    signal(signo, SIG_DFL);
    raise(signo);
}


/*
 * One line of standard input into buf (SEADRAGON_PASSWORD_MAX + 1 bytes),
 * its newline left out: the password's length, or -1 (a NUL byte, or too
 * long: *error says which), or -2 (a read error).
 */

static ssize_t
seadragon_tool_password_line(char *buf, const char **error)
{
    int     c;
    size_t  len;

    len = 0;

    while ((c = getc(stdin)) != EOF && c != '\n') {

        if (c == '\0') {
            *error = "has a NUL byte";
            return -1;
        }

        if (len == SEADRAGON_PASSWORD_MAX) {
            *error = "is longer than 1024 bytes";
            return -1;
        }

        buf[len++] = (char) c;
    }

    if (ferror(stdin)) {
        return -2;
    }

    buf[len] = '\0';

    return (ssize_t) len;
}


/* a prompt on the terminal, echo off, and the line typed */

static ssize_t
seadragon_tool_password_prompt(const char *prompt, char *buf,
    const char **error)
{
    ssize_t         n;
    struct termios  quiet;

    if (tcgetattr(STDIN_FILENO, &seadragon_tool_termios) == -1) {
        return -2;
    }

    quiet = seadragon_tool_termios;
    quiet.c_lflag &= ~(tcflag_t) ECHO;
    quiet.c_lflag |= ECHONL;

    /* echo off before the prompt: what is typed after it is never shown */

    seadragon_tool_echo_off = 1;

    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == -1) {
        seadragon_tool_echo_off = 0;
        return -2;
    }

    fputs(prompt, stderr);
    fflush(stderr);

    n = seadragon_tool_password_line(buf, error);

    (void) tcsetattr(STDIN_FILENO, TCSANOW, &seadragon_tool_termios);
    seadragon_tool_echo_off = 0;

    return n;
}


/*
 * The password of a user into password (SEADRAGON_PASSWORD_MAX + 1
 * bytes): the first line of standard input, or, from a terminal, typed
 * twice.  SEADRAGON_TOOL_DONE and *len, or an exit status.
 */

static int
seadragon_tool_password_read(seadragon_tool_ctx_t *ctx, char *password,
    size_t *len)
{
    int          tty;
    char         again[SEADRAGON_PASSWORD_MAX + 1];
    ssize_t      n, m;
    const char  *error;

    tty = isatty(STDIN_FILENO);
    error = "";

    if (tty) {
        signal(SIGINT, seadragon_tool_password_signal);
        signal(SIGTERM, seadragon_tool_password_signal);
        signal(SIGHUP, seadragon_tool_password_signal);
        signal(SIGQUIT, seadragon_tool_password_signal);

        n = seadragon_tool_password_prompt("password: ", password, &error);

        if (n > 0) {
            m = seadragon_tool_password_prompt("again: ", again, &error);

            if (m >= 0 && (m != n || memcmp(again, password, n) != 0)) {
                OPENSSL_cleanse(again, sizeof(again));
                OPENSSL_cleanse(password, SEADRAGON_PASSWORD_MAX + 1);
                return seadragon_tool_usage_error(ctx->command, "the two "
                                                  "passwords differ; nothing "
                                                  "was changed");
            }

            n = m < 0 ? m : n;
            OPENSSL_cleanse(again, sizeof(again));
        }

    } else {
        n = seadragon_tool_password_line(password, &error);
    }

    if (n == -2) {
        OPENSSL_cleanse(password, SEADRAGON_PASSWORD_MAX + 1);
        seadragon_tool_error("cannot read the password: %s",
                             strerror(errno));
        return SEADRAGON_TOOL_USAGE;
    }

    if (n == -1) {
        OPENSSL_cleanse(password, SEADRAGON_PASSWORD_MAX + 1);
        return seadragon_tool_usage_error(ctx->command, "the password %s; "
                                          "expected 1 to %d bytes on one "
                                          "line", error,
                                          SEADRAGON_PASSWORD_MAX);
    }

    if (n == 0) {
        return seadragon_tool_usage_error(ctx->command, "the password is "
                                          "empty; expected 1 to %d bytes %s",
                                          SEADRAGON_PASSWORD_MAX,
                                          tty ? "typed at the prompt"
                                              : "on the first line of "
                                                "standard input");
    }

    *len = (size_t) n;

    return SEADRAGON_TOOL_DONE;
}


/* the password read and hashed, before the store's write lock is taken:
 * argon2id takes a while */

static int
seadragon_tool_password_hash(seadragon_tool_ctx_t *ctx, char *hash)
{
    int     rc;
    char    password[SEADRAGON_PASSWORD_MAX + 1];
    size_t  len;

    len = 0;

    rc = seadragon_tool_password_read(ctx, password, &len);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_password_hash(password, len, hash,
                                 SEADRAGON_USER_HASH_LEN);

    OPENSSL_cleanse(password, sizeof(password));

    if (rc != 0) {
        seadragon_tool_error("cannot hash the password: argon2id or "
                             "OpenSSL's RAND_bytes() failed (64 MiB of "
                             "memory are needed)");
        return SEADRAGON_TOOL_STORE;
    }

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_user_name(seadragon_tool_ctx_t *ctx)
{
    if (seadragon_tool_check_name(ctx->arg, SEADRAGON_KEY_NAME_LEN - 1,
                                  "_-.@")
        != 0)
    {
        return seadragon_tool_usage_error(ctx->command, "invalid NAME "
                                          "\"%s\": expected 1 to %d letters, "
                                          "digits, \"_\", \"-\", \".\" and "
                                          "\"@\"", ctx->arg,
                                          SEADRAGON_KEY_NAME_LEN - 1);
    }

    return SEADRAGON_TOOL_DONE;
}


/* the record of the user named ctx->arg, in the store's transaction */

static int
seadragon_tool_user_find(seadragon_tool_ctx_t *ctx,
    seadragon_user_record_t *record)
{
    int  rc;

    rc = seadragon_user_find(ctx->store.txn, &ctx->store.dbs, ctx->arg,
                             strlen(ctx->arg), record);

    if (rc == MDB_NOTFOUND) {
        seadragon_tool_error("there is no user named \"%s\" (see \"user "
                             "list\")", ctx->arg);
        return SEADRAGON_TOOL_USAGE;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "finding the user", rc);
    }

    return SEADRAGON_TOOL_DONE;
}


/* before a password is asked for: whether the user is there (exists 1)
 * or not (0), as the command needs it, in a read transaction */

static int
seadragon_tool_user_check(seadragon_tool_ctx_t *ctx, int exists)
{
    int                      rc;
    seadragon_user_record_t  record;

    rc = seadragon_tool_store_open(&ctx->store, MDB_RDONLY);

    if (rc == SEADRAGON_TOOL_DONE && exists) {
        rc = seadragon_tool_user_find(ctx, &record);

    } else if (rc == SEADRAGON_TOOL_DONE) {
        rc = seadragon_user_find(ctx->store.txn, &ctx->store.dbs, ctx->arg,
                                 strlen(ctx->arg), &record);

        if (rc == MDB_NOTFOUND) {
            rc = SEADRAGON_TOOL_DONE;

        } else if (rc == MDB_SUCCESS) {
            seadragon_tool_error("a user named \"%s\" already exists; "
                                 "remove it first or choose another name",
                                 ctx->arg);
            rc = SEADRAGON_TOOL_USAGE;

        } else {
            rc = seadragon_tool_store_error(&ctx->store, "read",
                                            "finding the user", rc);
        }
    }

    seadragon_tool_store_close(&ctx->store);
    memset(&ctx->store.dbs, 0, sizeof(seadragon_store_dbs_t));

    return rc;
}


static int
seadragon_tool_user_add(seadragon_tool_ctx_t *ctx)
{
    int                      rc, made;
    time_t                   now;
    const char              *source;
    seadragon_secret_t       secret;
    seadragon_user_record_t  record, existing;

    source = ctx->options[0];

    rc = seadragon_tool_user_name(ctx);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    if (source == NULL) {
        return seadragon_tool_usage_error(ctx->command, "--source SOURCE is "
                                          "missing: the source whose queue "
                                          "the user's requests join");
    }

    /* any valid name: the store does not know the sources, as for keys */

    if (seadragon_tool_check_name(source, SEADRAGON_KEY_SOURCE_LEN - 1, "_-")
        != 0)
    {
        return seadragon_tool_usage_error(ctx->command, "invalid SOURCE "
                                          "\"%s\": expected 1 to %d letters, "
                                          "digits, \"_\" and \"-\" (a "
                                          "seadragon_source name)", source,
                                          SEADRAGON_KEY_SOURCE_LEN - 1);
    }

    rc = seadragon_tool_user_check(ctx, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    now = time(NULL);

    memset(&record, 0, sizeof(seadragon_user_record_t));

    record.version = SEADRAGON_USER_VERSION;
    record.created = (int64_t) now;
    record.changed = (int64_t) now;
    memcpy(record.name, ctx->arg, strlen(ctx->arg));
    memcpy(record.source, source, strlen(source));

    rc = seadragon_tool_password_hash(ctx, record.hash);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    /* added meanwhile by another seadragon-store */

    rc = seadragon_user_find(ctx->store.txn, &ctx->store.dbs, ctx->arg,
                             strlen(ctx->arg), &existing);
    if (rc == MDB_SUCCESS || rc == MDB_CORRUPTED) {
        seadragon_tool_error("a user named \"%s\" already exists; remove it "
                             "first or choose another name", ctx->arg);
        return SEADRAGON_TOOL_USAGE;
    }

    if (rc != MDB_NOTFOUND) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "finding the user", rc);
    }

    /* a store made before logins: the secret their tokens need */

    made = 0;

    rc = seadragon_secret_get(ctx->store.txn, &ctx->store.dbs,
                              SEADRAGON_SECRET_CURRENT, &secret);
    OPENSSL_cleanse(&secret, sizeof(seadragon_secret_t));

    if (rc == MDB_NOTFOUND) {
        rc = seadragon_secret_rotate(ctx->store.txn, &ctx->store.dbs, now);
        made = 1;
    }

    if (rc == -1) {
        seadragon_tool_error("cannot make the store's JWT secret: OpenSSL's "
                             "RAND_bytes() failed");
        return SEADRAGON_TOOL_STORE;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "the JWT secret", rc);
    }

    rc = seadragon_user_put(ctx->store.txn, &ctx->store.dbs, &record);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "adding the user", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    if (made) {
        printf("made the store's JWT secret, which signs login tokens (the "
               "store was made before logins)\n");
    }

    printf("added the user \"%s\" for the source \"%s\"\n", ctx->arg,
           source);

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_user_passwd(seadragon_tool_ctx_t *ctx)
{
    int                      rc;
    char                     hash[SEADRAGON_USER_HASH_LEN];
    seadragon_user_record_t  record;

    rc = seadragon_tool_user_name(ctx);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_user_check(ctx, 1);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    memset(hash, 0, sizeof(hash));

    rc = seadragon_tool_password_hash(ctx, hash);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_user_find(ctx, &record);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    memcpy(record.hash, hash, sizeof(hash));
    record.changed = (int64_t) time(NULL);

    rc = seadragon_user_put(ctx->store.txn, &ctx->store.dbs, &record);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "changing the user", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    printf("changed the password of the user \"%s\"\n", ctx->arg);

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_user_set_disabled(seadragon_tool_ctx_t *ctx, int disabled)
{
    int                      rc;
    const char              *state;
    seadragon_user_record_t  record;

    state = disabled ? "disabled" : "enabled";

    rc = seadragon_tool_user_name(ctx);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_user_find(ctx, &record);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    if (!(record.flags & SEADRAGON_USER_DISABLED) == !disabled) {
        printf("the user \"%s\" is already %s\n", ctx->arg, state);
        return SEADRAGON_TOOL_DONE;
    }

    if (disabled) {
        /* ends the user's tokens: enabled again, the user logs in anew */
        record.flags |= SEADRAGON_USER_DISABLED;
        record.changed = (int64_t) time(NULL);

    } else {
        record.flags &= ~SEADRAGON_USER_DISABLED;
    }

    rc = seadragon_user_put(ctx->store.txn, &ctx->store.dbs, &record);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "changing the user", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    printf("%s the user \"%s\"\n", state, ctx->arg);

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_user_disable(seadragon_tool_ctx_t *ctx)
{
    return seadragon_tool_user_set_disabled(ctx, 1);
}


static int
seadragon_tool_user_enable(seadragon_tool_ctx_t *ctx)
{
    return seadragon_tool_user_set_disabled(ctx, 0);
}


/* a damaged record is removed all the same: it is never read */

static int
seadragon_tool_user_remove(seadragon_tool_ctx_t *ctx)
{
    int  rc;

    rc = seadragon_tool_user_name(ctx);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_user_remove(ctx->store.txn, &ctx->store.dbs, ctx->arg,
                               strlen(ctx->arg));

    if (rc == MDB_NOTFOUND) {
        seadragon_tool_error("there is no user named \"%s\" (see \"user "
                             "list\")", ctx->arg);
        return SEADRAGON_TOOL_USAGE;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "deleting the user", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    printf("removed the user \"%s\"\n", ctx->arg);

    return SEADRAGON_TOOL_DONE;
}


/* never a hash; LMDB keeps the names sorted */

static int
seadragon_tool_user_list(seadragon_tool_ctx_t *ctx)
{
    int                      rc;
    char                     created[SEADRAGON_TOOL_TIME_LEN];
    char                     login[SEADRAGON_TOOL_TIME_LEN];
    MDB_val                  k, v;
    MDB_dbi                  dbi;
    unsigned                 listed;
    MDB_cursor              *cursor;
    seadragon_user_record_t  record;

    rc = seadragon_tool_store_open(&ctx->store, MDB_RDONLY);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    /* a store made before logins has no users */

    dbi = ctx->store.dbs.users;

    if (dbi == 0) {
        return SEADRAGON_TOOL_DONE;
    }

    rc = mdb_cursor_open(ctx->store.txn, dbi, &cursor);
    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "mdb_cursor_open()", rc);
    }

    listed = 0;

    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT))
    {
        rc = seadragon_user_record_read(&v, &record);

        if (rc == MDB_SUCCESS
            && (k.mv_size != strlen(record.name)
                || memcmp(k.mv_data, record.name, k.mv_size) != 0))
        {
            rc = MDB_CORRUPTED;
        }

        if (rc != MDB_SUCCESS) {
            break;
        }

        seadragon_tool_format_time(record.created, created);

        if (record.last_login) {
            seadragon_tool_format_time(record.last_login, login);

        } else {
            strcpy(login, "never");
        }

        /* the header row, above the first user only: no users, no output */

        if (listed++ == 0) {
            printf("name\tsource\tstate\tcreated\tlast_login\n");
        }

        printf("%s\t%s\t%s\t%s\t%s\n", record.name, record.source,
               (record.flags & SEADRAGON_USER_DISABLED) ? "disabled"
                                                        : "active",
               created, login);
    }

    mdb_cursor_close(cursor);

    if (rc != MDB_NOTFOUND) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "reading the users", rc);
    }

    return SEADRAGON_TOOL_DONE;
}


static int
seadragon_tool_secret_rotate(seadragon_tool_ctx_t *ctx)
{
    int                 rc, had;
    seadragon_secret_t  secret;

    rc = seadragon_tool_store_open(&ctx->store, 0);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    rc = seadragon_secret_get(ctx->store.txn, &ctx->store.dbs,
                              SEADRAGON_SECRET_CURRENT, &secret);
    OPENSSL_cleanse(&secret, sizeof(seadragon_secret_t));

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return seadragon_tool_store_error(&ctx->store, "read",
                                          "reading the JWT secret", rc);
    }

    had = (rc == MDB_SUCCESS);

    rc = seadragon_secret_rotate(ctx->store.txn, &ctx->store.dbs,
                                 time(NULL));

    if (rc == -1) {
        seadragon_tool_error("cannot make a JWT secret: OpenSSL's "
                             "RAND_bytes() failed");
        return SEADRAGON_TOOL_STORE;
    }

    if (rc != MDB_SUCCESS) {
        return seadragon_tool_store_error(&ctx->store, "write",
                                          "rotating the JWT secret", rc);
    }

    rc = seadragon_tool_store_commit(&ctx->store);
    if (rc != SEADRAGON_TOOL_DONE) {
        return rc;
    }

    if (had) {
        printf("rotated the JWT secret: new login tokens are signed with a "
               "new one; those of the previous one are accepted until they "
               "expire\n");

    } else {
        printf("made the store's JWT secret, which signs login tokens (the "
               "store was made before logins)\n");
    }

    return SEADRAGON_TOOL_DONE;
}
