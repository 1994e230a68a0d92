// The self-test protocol every program here follows (see README.md), from st_common.c.
#ifndef FROST_TESTS_PROGRAMS_ST_COMMON_H
#define FROST_TESTS_PROGRAMS_ST_COMMON_H

#include <stddef.h>

void st_begin(const char *name);
int st_sabotage(void);
void st_ready(void);
int st_usr1_arrived(void);
void st_wait_usr1(void);
void st_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int st_has_failed(void);
int st_finish(void);
int st_maps_find(const void *addr, char perms[5], char *path, size_t path_len);

#endif
