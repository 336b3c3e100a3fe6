/*  aq_secret.h - secret files (admin token, key files) opened and read safely

    A secret file must be a regular file, not a symbolic link, owned by the
    effective user and closed to group and others (mode & 077 == 0), as ssh
    wants of a private key. The broker reads DATA/admin.token this way, and
    aqctl its --key-file, --admin-token-file and DIR/admin.token.
*/
#ifndef AQ_SECRET_H
#define AQ_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define AQ_SECRET_MAX 4096 //  bytes a secret file may hold

//  Opens the secret file at path, never following a symbolic link
//  (O_NOFOLLOW), and checks the open file (fstat on the same descriptor,
//  so nothing can be swapped in between): a regular file, owned by the
//  effective user, no permission bit for group or others. With create, a
//  missing file is made with O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600,
//  open for writing, and *created is set; an existing one is opened for
//  reading. `what` names the secret in messages ("admin token").
//  Returns the descriptor (the caller closes it), or -1 with errno set and
//  one operator line in err, e.g. "admin token 'data/admin.token' is
//  readable by group or others (mode 0644): chmod 600 it".
int aq_secret_open (const char *path, const char *what, bool create, bool *created, char *err,
                    size_t size);

//  Reads the secret from fd (from aq_secret_open) without its trailing
//  whitespace (the newline an editor or `echo` leaves). Returns a new
//  string the caller frees (empty when the file is), or NULL with errno
//  set and the reason in err: larger than AQ_SECRET_MAX, more than one
//  line, a NUL byte, or a read error. path and what only name the file.
char *aq_secret_read_fd (int fd, const char *path, const char *what, char *err, size_t size);

//  aq_secret_open (no create) and aq_secret_read_fd; an empty file is an
//  error too. Returns a new string the caller frees, or NULL with errno
//  set and the operator line in err.
char *aq_secret_read (const char *path, const char *what, char *err, size_t size);

void aq_secret_test (bool verbose);

#endif
