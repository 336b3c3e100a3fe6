/*  aq_config.h - a configuration file as command-line options

    Each line of the file is "option value" (or "option" for a switch),
    meaning "--option value"; '#' starts a comment. The file's options are
    placed before the command line's, so flags override the file.
*/
#ifndef AQ_CONFIG_H
#define AQ_CONFIG_H

#include <stdbool.h>

//  Looks for "--config FILE" in argv; if found, returns a new argv (caller
//  frees with aq_config_free) holding argv[0], the file's options, then the
//  rest of argv without --config. Otherwise returns a copy of argv. Sets
//  *argc_p. NULL (and a message on stderr) if the file cannot be read.
char **aq_config_expand (int argc, char **argv, int *argc_p);
void aq_config_free (char ***argv_p, int argc);

void aq_config_test (bool verbose);

#endif
