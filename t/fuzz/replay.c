
/*
 * Copyright (C) The Seadragon authors
 *
 * A driver that replays inputs through a harness without fuzzing, for
 * gcc's ASan and UBSan (no libFuzzer, no clang): each argument is a file
 * or a directory of files.  It prints one line per input it ran and a
 * last line "replayed N inputs"; a property that fails aborts, and a
 * sanitizer report ends it with an error status.
 *
 *     build/fuzz/replay-json t/fuzz/corpus/json t/fuzz/regressions/json
 */


#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>


int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));


static unsigned long  replayed;


static int
replay_file(const char *path)
{
    FILE     *f;
    long      len;
    uint8_t  *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "replay: %s: cannot tell its size\n", path);
        fclose(f);
        return -1;
    }

    /* an exact-size copy, so that a read past the input is a report */

    buf = malloc(len ? (size_t) len : 1);
    if (buf == NULL
        || (len && fread(buf, 1, (size_t) len, f) != (size_t) len))
    {
        fprintf(stderr, "replay: %s: cannot read it\n", path);
        free(buf);
        fclose(f);
        return -1;
    }

    fclose(f);

    printf("replay: %s (%ld bytes)\n", path, len);
    fflush(stdout);

    LLVMFuzzerTestOneInput(buf, (size_t) len);

    free(buf);
    replayed++;

    return 0;
}


static int
replay_path(const char *path)
{
    int             rc, i, n;
    char           *file;
    size_t          len;
    struct stat     st;
    struct dirent **names;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }

    if (!S_ISDIR(st.st_mode)) {
        return replay_file(path);
    }

    n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }

    rc = 0;

    for (i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.' && rc == 0) {
            len = strlen(path) + strlen(names[i]->d_name) + 2;
            file = malloc(len);

            if (file == NULL) {
                rc = -1;

            } else {
                snprintf(file, len, "%s/%s", path, names[i]->d_name);
                rc = replay_path(file);
                free(file);
            }
        }

        free(names[i]);
    }

    free(names);

    return rc;
}


int
main(int argc, char **argv)
{
    int  i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }

    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }

    for (i = 1; i < argc; i++) {
        if (replay_path(argv[i]) != 0) {
            return 1;
        }
    }

    printf("replayed %lu inputs\n", replayed);

    return 0;
}
