/*
 * crc32c.h: CRC-32C (Castagnoli, reflected, as iSCSI and ext4 use it).
 * Pure and thread-safe; the tables are built once on first use.
 */
#ifndef MOM_CRC32C_H
#define MOM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over buf[0..n): mom_crc32c(0, ...) starts a checksum. */
uint32_t mom_crc32c(uint32_t crc, const void *buf, size_t n);
/* The same without the CPU's instruction (slicing-by-8 tables), for the tests. */
uint32_t mom_crc32c_tables(uint32_t crc, const void *buf, size_t n);

#endif
