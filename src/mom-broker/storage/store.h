/*
 * store.h: the segment store, the broker's durable log, and the entry to
 * storage/.
 *
 * storage/ is the log layer: store.c (segment files and the metadata
 * file) and rio.c (libraft's struct raft_io on the store, see rio.h).
 * The layer rule: storage/ includes nothing from the other layers (only
 * storage/ and src/libmom, not even state/): it stores opaque entries and
 * snapshots, and knows nothing of what they mean.  tests/layers.sh checks it.
 *
 * It is shaped for the raft_io that will sit on top of it: entries (index,
 * term, type, opaque bytes) are appended in batches, read back by range
 * (all of them at start), truncated from an index (uncommitted entries a
 * new leader overrides) and dropped segment by segment up to an index once
 * a snapshot covers them.  Term and vote live in a separate metadata file.
 *
 * Files in the directory:
 *   seg-<first index, 16 hex>.log  records, one after the other:
 *       u32 body length, u32 CRC-32C over those 4 length bytes and the body,
 *       body = u64 index, u64 term, u8 type, payload   (all little-endian)
 *   meta      "MOMMETA1", u64 term, u64 vote, u32 CRC-32C of the 24 bytes
 *   meta.tmp  the next meta while it is written (ignored by load)
 *
 * Durability is the caller's choice (group commit): store_append only
 * writes, one write(2) per batch; store_sync makes everything appended so
 * far durable with one fdatasync per touched segment (one, unless the batch
 * rolled) and an fsync of the directory when a segment was created.
 * Truncation (which fsyncs the whole last segment), segment removal and
 * metadata saves are durable on return.
 *
 *   clean     written by store_mark_clean at a clean stop (store_open)
 *   reserve   space kept back for a full disk (store_open)
 *
 * Errors: 0, or MOM_EINVAL (bad argument), MOM_ENOMEM, MOM_EFULL (ENOSPC
 * or EDQUOT: nothing was kept of the failed batch), MOM_EBADDATA (a record
 * that fails its CRC or breaks the index sequence: corruption), or
 * MOM_EINTERNAL (other I/O errors).  store_errmsg says what and where.  A
 * failed write is cut back so the store stays consistent and later appends
 * work; a failed fsync or cut-back leaves the store broken (every call then
 * fails) because what reached the disk is unknown: close and reopen.
 *
 * Single-threaded: one caller at a time.
 *
 * The fault-injection build (make fault: -DMOM_FAULT_INJECTION; none of
 * this is in the normal build) reads two variables at store_open (a
 * variable counts as set unless it is empty or "0"):
 *   MOM_FAULT_POWERLOSS  makes a restart see what a power loss would have
 *       left, for tests that kill processes (the page cache survives a
 *       kill).  After each store_sync has fully succeeded (segments, then
 *       the directory), the synced length of every segment it covered is
 *       written to seg-<first>.log.synced (decimal, a new file renamed
 *       over the old, not fsynced: it only has to survive the process); so
 *       is a segment cut by store_truncate, and every segment at open.
 *       Removing a segment removes its sidecar.  When set at store_open,
 *       before recovery, every segment longer than its recorded length is
 *       cut to it (to 0 without a sidecar: never synced; recovery then
 *       removes such empty segments at the end) and one line is logged
 *       (log_warnx) with the segments cut and the bytes dropped.  Every
 *       byte made durable survives, none other: the worst case of a power
 *       loss at the moment of the kill.  Set it for every run on
 *       the directory: segments synced by a run without it have no sidecar
 *       and are lost at the next open with it.
 *   MOM_FAULT_ENOSPC_FILE=PATH  while PATH exists, every write of the
 *       store (segment records and the meta file) fails with ENOSPC, as on
 *       a full disk that a test fills and frees at will.  It is installed
 *       as the store's fault hook at open, so store_set_fault replaces it.
 */
#ifndef BROKER_STORE_H
#define BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_REC_HDR   8u        /* length + CRC */
#define STORE_BODY_MIN  17u       /* index + term + type */
#define STORE_BODY_MAX  (256u << 20) /* anything longer is corruption */

struct store_entry {
	uint64_t    index;
	uint64_t    term;
	uint8_t     type;
	const void *buf; /* borrowed */
	size_t      len;
};

/* Called for each entry in order; buf is valid only during the call. */
typedef int (*store_read_cb)(void *arg, const struct store_entry *e);

struct store_config {
	uint64_t segment_size; /* roll to a new segment past this; 0: 64 MiB */
	uint64_t reserve;      /* bytes of the reserve file (below); 0: none */
	/*
	 * store_open cuts at damage instead of refusing it (store_open):
	 * repair_cb, if set, sees every readable entry the cut drops.
	 */
	bool          repair;
	store_read_cb repair_cb;
	void         *repair_arg;
	/*
	 * The caller never store_syncs its appends (rio's never mode): a
	 * segment's fd is closed as soon as the next one is created instead of
	 * when a sync covers its writes, so fds do not pile up with the log.
	 * A store_sync still works (it reopens what it must sync).
	 */
	bool     nosync;
};

/*
 * Fault injection for tests: when set, every data write and sync of the
 * store goes through these instead of pwrite(2) and fdatasync(2)/fsync(2).
 * They behave like the system calls (-1 and errno on failure).
 */
struct store_fault {
	ssize_t (*pwrite)(void *arg, int fd, const void *buf, size_t n, off_t off);
	int     (*sync)(void *arg, int fd);
	void    *arg;
};

struct store_meta {
	uint64_t term;
	uint64_t vote;
};

struct store;

/*
 * Opens (creating it if missing) the store in dir and recovers it: every
 * segment is read and checked.  Empty segment files at the end (a roll
 * whose data never reached the disk) are removed first, so the segment
 * before them counts as the last.  What else may be cut depends on how the
 * last run ended:
 *   - after a clean stop (the file "clean", written by store_mark_clean):
 *     nothing.  Every record must be whole and the log must end where the
 *     stop recorded; a bad last record is damage, not a torn write.
 *   - after a crash (no "clean": a kill, a power loss, a data directory of
 *     a version before it): a torn tail of the last segment, and only
 *     what a crash in the middle of one append can leave (store_scan), is
 *     cut back to the last whole record and the cut made durable.
 * Anything else invalid is corruption: MOM_EBADDATA and err names the file
 * and byte offset.  "clean" is removed before open returns: a crash from
 * now on is seen as one.  Every segment and the directory are then synced:
 * what a killed process left in the page cache is durable before anyone
 * relies on it.
 *
 * With cfg->repair, damage is cut instead of refused: the segment with the
 * first bad record is cut there and every segment after it removed (what
 * cfg->repair_cb was shown first); store_repaired says what was dropped.
 *
 * The reserve (cfg->reserve bytes, the file "reserve", allocated with
 * posix_fallocate) is space kept back for a full disk: when a write fails
 * with ENOSPC or EDQUOT, the store empties the reserve (that write still
 * fails: nothing of it is kept) and store_full turns true; the owner then
 * refuses what would fill the disk and lets through what frees it.
 * store_reserve_restore takes the reserve back when there is room again.
 * A reserve that cannot be allocated at open leaves the store full.
 *
 * On success *out is owned by the caller (store_close).  err may be NULL.
 */
int store_open(const char *dir, const struct store_config *cfg, struct store **out,
    char *err, size_t errlen);
/* Closes without syncing (what was appended stays in the page cache).  NULL is a no-op. */
void store_close(struct store *s);
/* What recovery at open did that the owner should log (a torn tail cut), or NULL. */
const char *store_warning(const struct store *s);

/*
 * A clean stop: syncs everything, then records durably (the file "clean":
 * "MOMCLEAN", u64 last index, u32 CRC-32C) that the log ends whole at the
 * last index, so that the next open takes no bad record for a torn write.
 * A later append, truncation or removal deletes the record first.
 */
int store_mark_clean(struct store *s);

/* What store_open with cfg->repair cut (cut false: nothing to repair). */
struct store_repair {
	bool     cut;
	char     file[64];  /* the segment cut */
	uint64_t offset;    /* where */
	uint64_t index;     /* the first entry dropped */
	uint64_t last;      /* the last readable entry dropped (0: none) */
	uint64_t readable;  /* entries dropped that could still be read */
	uint64_t bytes;     /* bytes dropped */
	char     why[512];
};
const struct store_repair *store_repaired(const struct store *s);

/* The reserve was given up (the disk filled) and is not back yet. */
bool store_full(const struct store *s);
/*
 * Takes the reserve back when the file system has room for it twice over:
 * 0 (store_full turns false) or MOM_EFULL (still full; no error message).
 */
int  store_reserve_restore(struct store *s);

/* The fault hooks (copied) or NULL for the real calls. */
void store_set_fault(struct store *s, const struct store_fault *f);

/* First and last index held; both 0 when empty. */
uint64_t store_first(const struct store *s);
uint64_t store_last(const struct store *s);
size_t   store_nsegments(const struct store *s);

/*
 * Appends n entries (borrowed: copied out before return) with consecutive
 * indexes from store_last() + 1 (any index >= 1 when the store is empty).
 * A batch is one write(2) and never spans segments: the store rolls to a
 * new segment before a batch that would take the current one past the
 * size limit.  Not durable until store_sync.
 */
int store_append(struct store *s, const struct store_entry *e, size_t n);
/* Makes everything appended so far durable. */
int store_sync(struct store *s);

/*
 * The same sync in three steps, so that the fsyncs can run on another
 * thread while the owner goes on appending: store_sync_begin (owner)
 * notes what store_sync would sync now, with duplicated descriptors;
 * store_sync_run (any thread, touches only the token) syncs them;
 * store_sync_end (owner) counts them as synced, unless the store cut or
 * removed that segment meanwhile, and frees the token.  Appends after
 * begin are not covered.  A failed run breaks the store at end, as a
 * failed store_sync does.  0 or a MOM_E* code (begin: nothing to end).
 */
struct store_syncpart {
	uint64_t first, gen, size;
	bool     fresh;
	int      fd;
};

struct store_synctok {
	struct store_syncpart *part;
	size_t                 n;
	int                    dirfd;   /* -1: no directory sync */
	struct store_fault     fault;   /* the store's hook, if any */
	bool                   faulty;
	int                    err;     /* errno of a failed sync, from run */
	uint64_t               failed;  /* the segment that failed (its first), or 0 */
	bool                   dirfail;
};

int  store_sync_begin(struct store *s, struct store_synctok *t);
void store_sync_run(struct store_synctok *t);
int  store_sync_end(struct store *s, struct store_synctok *t);

/*
 * Calls cb for each entry from..to (inclusive, within first..last), in
 * order; the entry's buf is valid only during the call.  Records are
 * checked again as they are read.  A non-zero return from cb stops the
 * walk and is returned.
 */
int store_read(struct store *s, uint64_t from, uint64_t to, store_read_cb cb, void *arg);

/* Deletes every entry >= index (durably).  The next append is at index. */
int store_truncate(struct store *s, uint64_t index);
/*
 * Deletes (durably, oldest first) whole segments whose entries are all
 * below index, as a snapshot up to index - 1 allows.  The last segment is
 * kept, so store_first() may stay below index.
 */
int store_remove_before(struct store *s, uint64_t index);

/* Metadata: a missing file loads as zeros.  Save is atomic and durable. */
int store_meta_load(struct store *s, struct store_meta *m);
int store_meta_save(struct store *s, const struct store_meta *m);

/* The last error in a sentence (never NULL). */
const char *store_errmsg(const struct store *s);

/*
 * Test hook for power loss: drops everything not yet made durable by a
 * store_sync or a truncation (unsynced bytes are cut off, segments created
 * since are removed), as a machine losing its page cache would, then
 * closes the store.  The real kernel might keep any part of it; this is
 * the worst case.
 */
void store_crash(struct store *s);

/*
 * The recovery reader on a segment image in memory (used by store_open,
 * exposed for the fuzzer and tests).  first is the index the segment's
 * name gives; last says whether it is the newest segment after a crash,
 * the only one that may have a torn tail.  A bad record there is torn
 * (cut) only if nothing valid follows it and a crash in the middle of the
 * append that wrote it can explain it: appends extend the file with one
 * pwrite(2) and nothing is preallocated, so a power loss leaves the
 * file's end short (the record's header or body runs past the end of the
 * file) or sectors of it unwritten, read back as zeros (every byte from
 * the record's start, or from a multiple of 512 inside the record, to the
 * end of the file is zero).  A record that fits, has a non-zero byte in
 * its last sector and fails its CRC had every byte written: that is
 * damage (a flipped bit), and corrupt.
 */
enum store_scan_status {
	STORE_SCAN_OK,      /* every byte is whole records */
	STORE_SCAN_TORN,    /* a torn tail from bad on: cut it */
	STORE_SCAN_CORRUPT, /* bad record at bad, why says how */
};
struct store_scan {
	enum store_scan_status status;
	uint64_t    n;    /* whole valid records before bad */
	size_t      end;  /* bytes they take */
	size_t      bad;  /* offset of the first invalid record */
	const char *why;
	uint64_t   *off;  /* when asked: n record offsets (malloc'd, caller frees) */
};
int store_scan(const uint8_t *b, size_t len, uint64_t first, bool last, bool want_off,
    struct store_scan *sc);

#endif
