/*  aq_secret.c - secret files (admin token, key files) opened and read safely */
#include "aq_secret.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Checks the open file behind fd. Returns 0, or -1 with errno and err set.
static int s_check (int fd, const char *path, const char *what, char *err, size_t size) {
    struct stat st;
    if (fstat (fd, &st) != 0) {
        snprintf (err, size, "cannot stat %s '%s': %s", what, path, strerror (errno));
        return -1;
    }
    unsigned mode = (unsigned) st.st_mode & 07777;
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, size, "%s '%s' is not a regular file", what, path);
        errno = EINVAL;
    } else if (st.st_uid != geteuid ()) {
        snprintf (err, size, "%s '%s' belongs to uid %u, not to uid %u running this: chown it",
                  what, path, (unsigned) st.st_uid, (unsigned) geteuid ());
        errno = EPERM;
    } else if (mode & 077) {
        const char *how = mode & 044 ? "readable" : mode & 022 ? "writable" : "executable";
        snprintf (err, size, "%s '%s' is %s by group or others (mode %04o): chmod 600 it", what,
                  path, how, mode);
        errno = EPERM;
    } else
        return 0;
    return -1;
}

int aq_secret_open (const char *path, const char *what, bool create, bool *created, char *err,
                    size_t size) {
    assert (path && what && err);
    const int flags = O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
    int fd = -1;
    if (created)
        *created = false;
    if (create) {
        fd = open (path, O_RDWR | O_CREAT | O_EXCL | flags, 0600);
        if (fd < 0 && errno != EEXIST) {
            int code = errno;
            snprintf (err, size, "cannot create %s '%s': %s", what, path, strerror (code));
            errno = code;
            return -1;
        }
        if (fd >= 0 && created)
            *created = true;
    }
    if (fd < 0) //  O_NONBLOCK: a FIFO planted there must not hang us
        fd = open (path, O_RDONLY | O_NONBLOCK | flags);
    if (fd < 0) {
        int code = errno;
        if (code == ELOOP)
            snprintf (err, size, "%s '%s' is a symbolic link: give the file itself", what, path);
        else
            snprintf (err, size, "cannot open %s '%s': %s", what, path, strerror (code));
        errno = code;
        return -1;
    }
    if (s_check (fd, path, what, err, size) != 0) {
        int code = errno;
        close (fd);
        errno = code;
        return -1;
    }
    return fd;
}

char *aq_secret_read_fd (int fd, const char *path, const char *what, char *err, size_t size) {
    char *text = calloc (1, AQ_SECRET_MAX + 2);
    if (!text) {
        snprintf (err, size, "cannot read %s '%s': %s", what, path, strerror (ENOMEM));
        errno = ENOMEM;
        return NULL;
    }
    size_t length = 0;
    int code = 0;
    while (length <= AQ_SECRET_MAX) {
        ssize_t got = read (fd, text + length, AQ_SECRET_MAX + 1 - length);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            code = errno;
            snprintf (err, size, "cannot read %s '%s': %s", what, path, strerror (code));
            break;
        }
        if (got == 0)
            break;
        length += (size_t) got;
    }
    if (!code && length > AQ_SECRET_MAX) {
        code = EFBIG;
        snprintf (err, size, "%s '%s' is larger than %d bytes", what, path, AQ_SECRET_MAX);
    }
    while (!code && length && strchr (" \t\r\n", text[length - 1]))
        length--;
    if (!code && memchr (text, 0, length)) {
        code = EINVAL;
        snprintf (err, size, "%s '%s' holds a NUL byte", what, path);
    }
    if (!code && (memchr (text, '\n', length) || memchr (text, '\r', length))) {
        code = EINVAL;
        snprintf (err, size, "%s '%s' holds more than one line", what, path);
    }
    text[length] = 0;
    if (code) {
        explicit_bzero (text, AQ_SECRET_MAX + 2);
        free (text);
        errno = code;
        return NULL;
    }
    return text;
}

char *aq_secret_read (const char *path, const char *what, char *err, size_t size) {
    int fd = aq_secret_open (path, what, false, NULL, err, size);
    if (fd < 0)
        return NULL;
    char *text = aq_secret_read_fd (fd, path, what, err, size);
    int code = errno;
    close (fd);
    if (text && !*text) {
        free (text);
        text = NULL;
        code = ENODATA;
        snprintf (err, size, "%s '%s' is empty", what, path);
    }
    errno = code;
    return text;
}

//  --------------------------------------------------------------------------
//  Selftest

static void s_write (const char *path, const char *text, mode_t mode) {
    unlink (path);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert (fd >= 0);
    assert (write (fd, text, strlen (text)) == (ssize_t) strlen (text));
    assert (fchmod (fd, mode) == 0);
    close (fd);
}

//  aq_secret_read of path fails with errno code and a message holding part.
static void s_refused (const char *path, int code, const char *part) {
    char err[512] = "";
    errno = 0;
    char *text = aq_secret_read (path, "key file", err, sizeof err);
    if (text || errno != code || !strstr (err, part) || !strstr (err, path)) {
        fprintf (stderr, "aq_secret: '%s': errno %d, want %d; '%s' lacks '%s'\n", path, errno, code,
                 err, part);
        assert (false);
    }
}

void aq_secret_test (bool verbose) {
    if (verbose)
        printf (" * aq_secret: ");
    char dir[] = "/tmp/aq_secret_test.XXXXXX";
    assert (mkdtemp (dir));
    char path[256], link[256], err[512];
    snprintf (path, sizeof path, "%s/key", dir);
    snprintf (link, sizeof link, "%s/link", dir);

    //  a 0600 file: read, the trailing newline gone
    s_write (path, "aq_1234_secret\n", 0600);
    char *text = aq_secret_read (path, "key file", err, sizeof err);
    assert (text && strcmp (text, "aq_1234_secret") == 0);
    free (text);
    s_write (path, "  inner space kept \r\n\n", 0400);
    text = aq_secret_read (path, "key file", err, sizeof err);
    assert (text && strcmp (text, "  inner space kept") == 0);
    free (text);

    //  group or other bits: refused, naming file, what and mode
    s_write (path, "secret\n", 0644);
    s_refused (path, EPERM, "key file '");
    s_refused (path, EPERM, "is readable by group or others (mode 0644): chmod 600 it");
    s_write (path, "secret\n", 0620);
    s_refused (path, EPERM, "is writable by group or others (mode 0620)");
    s_write (path, "secret\n", 0601);
    s_refused (path, EPERM, "is executable by group or others (mode 0601)");

    //  a symbolic link, even to a good file: refused
    s_write (path, "secret\n", 0600);
    assert (symlink (path, link) == 0);
    s_refused (link, ELOOP, "is a symbolic link");
    //  ... also when creating: O_EXCL does not follow it either
    bool created = true;
    assert (aq_secret_open (link, "admin token", true, &created, err, sizeof err) == -1);
    assert (errno == ELOOP && !created && strstr (err, "admin token '"));
    unlink (link);
    assert (symlink ("/nonexistent/aq_secret", link) == 0); //  dangling: never created through
    assert (aq_secret_open (link, "admin token", true, &created, err, sizeof err) == -1);
    assert (errno == ELOOP && access ("/nonexistent/aq_secret", F_OK) != 0);
    unlink (link);

    //  not a regular file: a directory, a FIFO (without hanging)
    s_refused (dir, EINVAL, "is not a regular file");
    char fifo[256];
    snprintf (fifo, sizeof fifo, "%s/fifo", dir);
    assert (mkfifo (fifo, 0600) == 0);
    s_refused (fifo, EINVAL, "is not a regular file");
    unlink (fifo);

    //  another owner (only root can make one)
    if (geteuid () == 0) {
        assert (chown (path, 1, 1) == 0);
        s_refused (path, EPERM, "belongs to uid 1, not to uid 0");
        assert (chown (path, 0, 0) == 0);
    }

    //  contents: empty, too large, more than one line, a NUL
    s_write (path, "\n", 0600);
    s_refused (path, ENODATA, "is empty");
    char big[AQ_SECRET_MAX + 2];
    memset (big, 'k', sizeof big - 1);
    big[sizeof big - 1] = 0;
    s_write (path, big, 0600);
    s_refused (path, EFBIG, "is larger than 4096 bytes");
    big[AQ_SECRET_MAX] = 0; //  exactly the limit is fine
    s_write (path, big, 0600);
    text = aq_secret_read (path, "key file", err, sizeof err);
    assert (text && strlen (text) == AQ_SECRET_MAX);
    free (text);
    s_write (path, "one\ntwo\n", 0600);
    s_refused (path, EINVAL, "holds more than one line");
    int fd = open (path, O_WRONLY | O_TRUNC);
    assert (fd >= 0 && write (fd, "a\0b", 3) == 3);
    close (fd);
    s_refused (path, EINVAL, "holds a NUL byte");
    unlink (path);
    s_refused (path, ENOENT, "cannot open key file '");

    //  create: made 0600 and writable; the second time opened for reading
    fd = aq_secret_open (path, "admin token", true, &created, err, sizeof err);
    assert (fd >= 0 && created);
    struct stat st;
    assert (fstat (fd, &st) == 0 && (st.st_mode & 07777) == 0600);
    assert (write (fd, "0123456789abcdef\n", 17) == 17);
    close (fd);
    fd = aq_secret_open (path, "admin token", true, &created, err, sizeof err);
    assert (fd >= 0 && !created);
    text = aq_secret_read_fd (fd, path, "admin token", err, sizeof err);
    assert (text && strcmp (text, "0123456789abcdef") == 0);
    free (text);
    close (fd);
    assert (chmod (path, 0640) == 0); //  an existing file is checked when creating too
    assert (aq_secret_open (path, "admin token", true, &created, err, sizeof err) == -1);
    assert (errno == EPERM && strstr (err, "(mode 0640)"));
    snprintf (link, sizeof link, "%s/none/admin.token", dir);
    assert (aq_secret_open (link, "admin token", true, &created, err, sizeof err) == -1);
    assert (errno == ENOENT && strstr (err, "cannot create admin token '"));

    unlink (path);
    assert (rmdir (dir) == 0);
    if (verbose)
        printf ("OK\n");
}
