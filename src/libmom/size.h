/*
 * size.h: byte sizes as users write them: "1048576", "64k", "1MiB", "2G".
 */
#ifndef MOM_SIZE_H
#define MOM_SIZE_H

#include <stdint.h>

/* k/K/KB/KiB = 1024 (binary throughout).  0 or MOM_EINVAL. */
int mom_size_parse(const char *, uint64_t *);

#endif
