/*
 * store.c: the segment store (see store.h for the file format and the
 * durability contract).
 *
 * In memory, each segment keeps the offset of every record so that reads
 * and truncations go straight to the byte.  Only the last segment, and
 * older ones with writes not yet synced (unless the store is nosync), keep
 * a file descriptor open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "crc32c.h"
#include "le.h"
#include "mom.h"
#include "storage/store.h"
#ifdef MOM_FAULT_INJECTION
#include "log.h"
#endif

#define DEFAULT_SEGMENT_SIZE (64u << 20)
#define META_MAGIC "MOMMETA1"
#define META_SIZE  (8 + 8 + 8 + 4)
#define CLEAN_MAGIC "MOMCLEAN"
#define CLEAN_SIZE  (8 + 8 + 4)

struct seg {
	uint64_t  first;  /* index in the file name */
	uint64_t  n;      /* records */
	uint64_t *off;    /* their offsets */
	uint64_t  cap;
	uint64_t  size;   /* bytes of whole records: the file's size */
	uint64_t  synced; /* bytes known to be durable */
	int       fd;     /* -1 when closed */
	bool      fresh;  /* created since the directory was last synced */
	uint64_t  gen;    /* bumped when cut: an older sync token no longer applies */
};

struct store {
	char               *dir;
	int                 dirfd;
	uint64_t            segment_size;
	bool                nosync;
	struct seg         *segs;
	size_t              nsegs, segcap;
	struct store_fault  fault;
	bool                faulty;
	int                 broken; /* a MOM_E* code once the disk state is unknown */
	uint8_t            *wbuf;
	size_t              wcap;
	char                msg[512];
	char                warn[512]; /* what recovery did, for the owner to log */
	bool                clean;     /* the clean-stop record is on disk (store_mark_clean) */
	uint64_t            reserve;   /* bytes the reserve file should hold */
	bool                full;      /* the reserve was given up: the disk filled */
	struct store_config cfg;
	struct store_repair rep;
#ifdef MOM_FAULT_INJECTION
	bool                powerloss;   /* MOM_FAULT_POWERLOSS: keep sidecars */
	char               *enospc_file; /* MOM_FAULT_ENOSPC_FILE */
	uint64_t            fault_room;  /* what the given-up reserve freed on that full disk */
#endif
};

/*
 * The record at b[p..]: 1 and its body length when it is whole and its
 * CRC matches, 0 when not.
 */
static int
frame_at(const uint8_t *b, size_t len, size_t p, uint32_t *blen)
{
	uint32_t l;

	if (len - p < STORE_REC_HDR)
		return 0;
	l = mom_le_get32(b + p);
	if (l < STORE_BODY_MIN || l > STORE_BODY_MAX || len - p - STORE_REC_HDR < l)
		return 0;
	if (mom_crc32c(mom_crc32c(0, b + p, 4), b + p + STORE_REC_HDR, l) != mom_le_get32(b + p + 4))
		return 0;
	*blen = l;
	return 1;
}

/* The entry of the whole record at b[p..] whose body is blen bytes (frame_at). */
static void
entry_at(const uint8_t *b, size_t p, uint32_t blen, struct store_entry *e)
{
	e->index = mom_le_get64(b + p + 8);
	e->term = mom_le_get64(b + p + 16);
	e->type = b[p + 24];
	e->buf = b + p + 25;
	e->len = blen - STORE_BODY_MIN;
}

/*
 * Is there a whole, valid record anywhere after a bad one at p?  If so the
 * bad record is not a torn tail but damage in the middle.  Its index must
 * lie between the one expected at p and what the rest of the image could
 * hold; that cheap test skips the CRC at almost every offset.
 */
static bool
valid_after(const uint8_t *b, size_t len, size_t p, uint64_t expect)
{
	uint32_t blen;
	uint64_t ix;
	size_t   q;

	for (q = p + 1; q + STORE_REC_HDR + STORE_BODY_MIN <= len; q++) {
		ix = mom_le_get64(b + q + STORE_REC_HDR);
		if (ix < expect || ix - expect > len)
			continue;
		if (frame_at(b, len, q, &blen))
			return true;
	}
	return false;
}

/*
 * The first byte of the zero-filled end of b: len when b does not end in
 * a zero byte.
 */
static size_t
zero_from(const uint8_t *b, size_t len)
{
	while (len > 0 && b[len - 1] == 0)
		len--;
	return len;
}

/*
 * Can the bad record at p, with nothing valid after it, be a write that a
 * crash tore?  A batch is one pwrite(2) at the end of the file (no
 * preallocation), so after a power loss its bytes are a prefix of what was
 * written, or what was written with unwritten sectors in it: the file may
 * end early (the size was not extended as far), and a sector that never
 * reached the disk reads as zeros.  Sectors are 512 bytes at least, so the
 * unwritten part starts at the record (or the batch) or at a multiple of
 * 512 inside the record.  NULL when it is torn, else why not: a record
 * whose every byte was written and that still fails its CRC is damage.
 */
static const char *
not_torn(const uint8_t *b, size_t len, size_t p)
{
	uint32_t l;
	size_t   end, z, u;

	if (len - p < STORE_REC_HDR)
		return NULL; /* the header runs past the end of the file */
	l = mom_le_get32(b + p);
	if (l >= STORE_BODY_MIN && l <= STORE_BODY_MAX) {
		if (len - p - STORE_REC_HDR < l)
			return NULL; /* the record runs past the end of the file */
		end = p + STORE_REC_HDR + l;
	} else {
		/*
		 * Unwritten sectors only zero bytes of the length (never raise
		 * it): an impossible length is torn only inside its 4 bytes.
		 */
		end = p + 4;
	}
	z = zero_from(b, len);
	if (z <= p)
		return NULL; /* nothing of it reached the disk */
	u = (z + 511) / 512 * 512;
	if (u < end && u < len)
		return NULL; /* unwritten from a sector boundary inside it */
	return "bad record (length or CRC) with every byte written: damage, not a torn write";
}

int
store_scan(const uint8_t *b, size_t len, uint64_t first, bool last, bool want_off,
    struct store_scan *sc)
{
	uint64_t *off = NULL, cap = 0, *noff;
	uint32_t  blen;
	size_t    p = 0;

	memset(sc, 0, sizeof(*sc));
	while (p < len) {
		if (!frame_at(b, len, p, &blen)) {
			sc->bad = p;
			sc->status = STORE_SCAN_CORRUPT;
			sc->why = len - p < STORE_REC_HDR ? "truncated record header" :
			    "bad record (length or CRC)";
			if (last && valid_after(b, len, p, first + sc->n))
				sc->why = "bad record (length or CRC) with valid records after it";
			else if (last && (sc->why = not_torn(b, len, p)) == NULL) {
				sc->status = STORE_SCAN_TORN;
				sc->why = "torn tail";
			}
			break;
		}
		if (mom_le_get64(b + p + STORE_REC_HDR) != first + sc->n) {
			sc->bad = p;
			sc->status = STORE_SCAN_CORRUPT;
			sc->why = "record out of index sequence";
			break;
		}
		if (want_off) {
			if (sc->n == cap) {
				cap = cap ? cap * 2 : 64;
				if (!(noff = realloc(off, cap * sizeof(*off)))) {
					free(off);
					return MOM_ENOMEM;
				}
				off = noff;
			}
			off[sc->n] = p;
		}
		sc->n++;
		p += STORE_REC_HDR + blen;
	}
	sc->end = sc->status == STORE_SCAN_OK ? len : sc->bad;
	sc->off = off;
	return 0;
}

static int
fail(struct store *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	return code;
}

/* The MOM_E* code for a failed system call (errno). */
static int
io_code(int e)
{
	if (e == ENOSPC || e == EDQUOT)
		return MOM_EFULL;
	if (e == ENOMEM)
		return MOM_ENOMEM;
	return MOM_EINTERNAL;
}

static int
io_fail(struct store *s, const char *what, const char *file)
{
	int e = errno;

	return fail(s, io_code(e), "%s/%s: %s: %s", s->dir, file, what, strerror(e));
}

static void
seg_name(char *buf, size_t n, uint64_t first)
{
	snprintf(buf, n, "seg-%016" PRIx64 ".log", first);
}

static ssize_t
do_pwrite(struct store *s, int fd, const void *b, size_t n, off_t off)
{
	if (s->faulty && s->fault.pwrite)
		return s->fault.pwrite(s->fault.arg, fd, b, n, off);
	return pwrite(fd, b, n, off);
}

static int
do_sync(struct store *s, int fd, bool data)
{
	if (s->faulty && s->fault.sync)
		return s->fault.sync(s->fault.arg, fd);
	return data ? fdatasync(fd) : fsync(fd);
}

/* Writes all of b at off, retrying short writes. */
static int
write_all(struct store *s, int fd, const uint8_t *b, size_t n, off_t off)
{
	ssize_t w;

	while (n > 0) {
		w = do_pwrite(s, fd, b, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		b += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int
sync_dir(struct store *s)
{
	if (do_sync(s, s->dirfd, false) < 0) {
		s->broken = io_fail(s, "fsync", ".");
		return s->broken;
	}
	return 0;
}

static struct seg *
seg_last(struct store *s)
{
	return s->nsegs ? &s->segs[s->nsegs - 1] : NULL;
}

static void
seg_close(struct seg *g)
{
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
}

static void
seg_fini(struct seg *g)
{
	seg_close(g);
	free(g->off);
	g->off = NULL;
}

static int
seg_push_off(struct seg *g, uint64_t off)
{
	uint64_t *n;

	if (g->n == g->cap) {
		if (!(n = realloc(g->off, (g->cap ? g->cap * 2 : 64) * sizeof(*n))))
			return MOM_ENOMEM;
		g->off = n;
		g->cap = g->cap ? g->cap * 2 : 64;
	}
	g->off[g->n++] = off;
	return 0;
}

static int
seg_open_fd(struct store *s, struct seg *g)
{
	char name[64];

	if (g->fd >= 0)
		return 0;
	seg_name(name, sizeof(name), g->first);
	if ((g->fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC)) < 0)
		return io_fail(s, "open", name);
	return 0;
}

static int
segs_grow(struct store *s)
{
	struct seg *n;
	size_t      cap;

	if (s->nsegs < s->segcap)
		return 0;
	cap = s->segcap ? s->segcap * 2 : 8;
	if (!(n = realloc(s->segs, cap * sizeof(*n))))
		return fail(s, MOM_ENOMEM, "out of memory");
	s->segs = n;
	s->segcap = cap;
	return 0;
}

uint64_t
store_first(const struct store *s)
{
	return store_last(s) ? s->segs[0].first : 0;
}

uint64_t
store_last(const struct store *s)
{
	const struct seg *g;

	if (!s->nsegs)
		return 0;
	g = &s->segs[s->nsegs - 1];
	if (g->n == 0 && s->nsegs == 1)
		return 0;
	return g->first + g->n - 1;
}

size_t
store_nsegments(const struct store *s)
{
	return s->nsegs;
}

const char *
store_warning(const struct store *s)
{
	return s->warn[0] ? s->warn : NULL;
}

const char *
store_errmsg(const struct store *s)
{
	return s->msg;
}

void
store_set_fault(struct store *s, const struct store_fault *f)
{
	s->faulty = f != NULL;
	if (f)
		s->fault = *f;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#ifdef MOM_FAULT_INJECTION
/*
 * The fault-injection build (make fault; see store.h).  Nothing here is
 * compiled into the normal build.
 *
 * MOM_FAULT_POWERLOSS: a test kills processes, not the machine, so the page
 * cache survives and a restart sees every byte written.  To see what a
 * power loss would have left instead, the store writes down how much of
 * each segment a sync made durable, in seg-<first>.log.synced next to it,
 * and the next open cuts each segment back to that.  The sidecar is only
 * written after a store_sync has fully succeeded (the directory too), so
 * a kill in the middle of one leaves the state before it: what the
 * caller has not been told is durable may be lost, the rest never is.
 */

/* Set, and neither empty nor "0". */
static bool
fault_env(const char *name, const char **val)
{
	const char *v = getenv(name);

	if (!v || !*v || strcmp(v, "0") == 0)
		return false;
	if (val)
		*val = v;
	return true;
}

static void
sidecar_name(char *buf, size_t n, uint64_t first, const char *ext)
{
	snprintf(buf, n, "seg-%016" PRIx64 ".log.synced%s", first, ext);
}

/*
 * Writes down g's synced length: a new file, then a rename, so the sidecar
 * is always whole.  No fsync: it only has to survive the process.
 */
static int
fault_record(struct store *s, const struct seg *g)
{
	char    tmp[64], fin[64], b[32];
	ssize_t w;
	int     fd, n, e;

	if (!s->powerloss)
		return 0;
	sidecar_name(tmp, sizeof(tmp), g->first, ".tmp");
	sidecar_name(fin, sizeof(fin), g->first, "");
	n = snprintf(b, sizeof(b), "%" PRIu64 "\n", g->synced);
	if ((fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return io_fail(s, "create", tmp);
	w = write(fd, b, (size_t)n);
	e = w < 0 ? errno : EIO;
	close(fd);
	if (w != n) {
		errno = e;
		return io_fail(s, "write", tmp);
	}
	if (renameat(s->dirfd, tmp, s->dirfd, fin) < 0)
		return io_fail(s, "rename", tmp);
	return 0;
}

/* The segment first is gone (or is about to be created): so is its sidecar. */
static void
fault_forget(struct store *s, uint64_t first)
{
	char name[64];

	if (!s->powerloss)
		return;
	sidecar_name(name, sizeof(name), first, "");
	(void)unlinkat(s->dirfd, name, 0);
}

/* The synced length the sidecar of segment first records; 0 without one. */
static int
fault_synced(struct store *s, uint64_t first, uint64_t *len)
{
	char    name[64], b[32], *end;
	ssize_t r;
	int     fd;

	*len = 0;
	sidecar_name(name, sizeof(name), first, "");
	if ((fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : io_fail(s, "open", name);
	r = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (r < 0)
		return io_fail(s, "read", name);
	b[r] = '\0';
	errno = 0;
	*len = strtoull(b, &end, 10);
	if (end == b || *end != '\n' || errno != 0)
		return fail(s, MOM_EBADDATA, "%s/%s: byte 0: bad sidecar", s->dir, name);
	return 0;
}

/*
 * The power loss, at open before recovery: every segment cut to its
 * recorded synced length, one without a sidecar (never synced) to 0
 * (recovery then removes it as a segment whose data never reached the
 * disk).
 */
static int
fault_powerloss(struct store *s, const uint64_t *firsts, size_t n)
{
	struct stat st;
	uint64_t    len, dropped = 0;
	size_t      i, cut = 0;
	char        name[64];
	int         fd, rc;

	for (i = 0; i < n; i++) {
		seg_name(name, sizeof(name), firsts[i]);
		if ((rc = fault_synced(s, firsts[i], &len)) != 0)
			return rc;
		if (fstatat(s->dirfd, name, &st, 0) < 0)
			return io_fail(s, "stat", name);
		if ((uint64_t)st.st_size <= len)
			continue;
		if ((fd = openat(s->dirfd, name, O_WRONLY | O_CLOEXEC)) < 0)
			return io_fail(s, "open", name);
		rc = ftruncate(fd, (off_t)len);
		close(fd);
		if (rc < 0)
			return io_fail(s, "ftruncate", name);
		dropped += (uint64_t)st.st_size - len;
		cut++;
	}
	log_warnx("fault injection: MOM_FAULT_POWERLOSS: %s: power loss simulated: %zu of %zu "
	    "segments cut to their synced length, %" PRIu64 " unsynced bytes dropped",
	    s->dir, cut, n, dropped);
	return 0;
}

/* MOM_FAULT_ENOSPC_FILE: a full disk while that file exists. */
static ssize_t
fault_enospc_pwrite(void *arg, int fd, const void *b, size_t n, off_t off)
{
	struct store *s = arg;

	if (access(s->enospc_file, F_OK) == 0) {
		/* Full, but for what giving up the reserve freed. */
		if (!s->full || s->fault_room < n) {
			errno = ENOSPC;
			return -1;
		}
		s->fault_room -= n;
	}
	return pwrite(fd, b, n, off);
}

/* Reads the MOM_FAULT_* variables of the store (see store.h). */
static int
fault_init(struct store *s)
{
	const char *v;

	s->powerloss = fault_env("MOM_FAULT_POWERLOSS", NULL);
	if (fault_env("MOM_FAULT_ENOSPC_FILE", &v)) {
		struct store_fault f = { fault_enospc_pwrite, NULL, s };

		if (!(s->enospc_file = strdup(v)))
			return fail(s, MOM_ENOMEM, "out of memory");
		store_set_fault(s, &f);
		log_warnx("fault injection: MOM_FAULT_ENOSPC_FILE: %s: writes fail with ENOSPC "
		    "while %s exists", s->dir, v);
	}
	return 0;
}
#endif /* MOM_FAULT_INJECTION */

/* Reads the whole of name into a malloc'd buffer. */
static int
slurp(struct store *s, const char *name, int *fdp, uint8_t **bp, size_t *lenp)
{
	struct stat st;
	uint8_t    *b = NULL;
	size_t      got = 0;
	ssize_t     r;
	int         fd, rc;

	if ((fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC)) < 0)
		return io_fail(s, "open", name);
	if (fstat(fd, &st) < 0) {
		rc = io_fail(s, "fstat", name);
		goto fail;
	}
	if (!(b = malloc(st.st_size ? (size_t)st.st_size : 1))) {
		rc = fail(s, MOM_ENOMEM, "out of memory");
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		r = pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			rc = io_fail(s, "read", name);
			goto fail;
		}
		got += (size_t)r;
	}
	*fdp = fd;
	*bp = b;
	*lenp = got;
	return 0;
fail:
	free(b);
	close(fd);
	return rc;
}

/* ---- the clean-stop record ---- */

/* The clean-stop record at open: *clean, and the last index it recorded. */
static void
clean_load(struct store *s, bool *clean, bool *there, uint64_t *last)
{
	uint8_t b[CLEAN_SIZE];
	ssize_t r;
	int     fd;

	*clean = *there = false;
	*last = 0;
	if ((fd = openat(s->dirfd, "clean", O_RDONLY | O_CLOEXEC)) < 0)
		return;
	*there = true;
	r = pread(fd, b, sizeof(b), 0);
	close(fd);
	/* A damaged record proves nothing: as after a crash. */
	if (r != (ssize_t)sizeof(b) || memcmp(b, CLEAN_MAGIC, 8) != 0 ||
	    mom_crc32c(0, b, CLEAN_SIZE - 4) != mom_le_get32(b + CLEAN_SIZE - 4))
		return;
	*clean = true;
	*last = mom_le_get64(b + 8);
}

/* Before the log changes: the clean-stop record no longer holds. */
static int
clean_drop(struct store *s)
{
	if (!s->clean)
		return 0;
	if (unlinkat(s->dirfd, "clean", 0) < 0 && errno != ENOENT) {
		s->broken = io_fail(s, "unlink", "clean");
		return s->broken;
	}
	s->clean = false;
	return sync_dir(s);
}

int
store_mark_clean(struct store *s)
{
	uint8_t b[CLEAN_SIZE];
	int     fd, rc;

	if ((rc = store_sync(s)) != 0)
		return rc;
	memcpy(b, CLEAN_MAGIC, 8);
	mom_le_put64(b + 8, store_last(s));
	mom_le_put32(b + CLEAN_SIZE - 4, mom_crc32c(0, b, CLEAN_SIZE - 4));
	/* As the meta file: whole and durable before its name is. */
	if ((fd = openat(s->dirfd, "clean.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return io_fail(s, "create", "clean.tmp");
	if (write_all(s, fd, b, sizeof(b), 0) < 0)
		rc = io_fail(s, "write", "clean.tmp");
	else if (do_sync(s, fd, false) < 0)
		rc = io_fail(s, "fsync", "clean.tmp");
	close(fd);
	if (rc == 0 && renameat(s->dirfd, "clean.tmp", s->dirfd, "clean") < 0)
		rc = io_fail(s, "rename", "clean.tmp");
	if (rc != 0) {
		(void)unlinkat(s->dirfd, "clean.tmp", 0);
		return rc;
	}
	s->clean = true;
	return sync_dir(s);
}

/* ---- the reserve ---- */

/* Allocates the reserve file (or removes it when none is wanted). */
static int
reserve_make(struct store *s)
{
	struct stat st;
	int         fd, e;

	if (s->cfg.repair)
		return 0; /* a repair leaves it to the next start */
	if (s->reserve == 0) {
		if (unlinkat(s->dirfd, "reserve", 0) < 0 && errno != ENOENT)
			return io_fail(s, "unlink", "reserve");
		return 0;
	}
	if ((fd = openat(s->dirfd, "reserve", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return io_fail(s, "create", "reserve");
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == s->reserve &&
	    (uint64_t)st.st_blocks * 512 >= s->reserve) {
		close(fd);
		return 0;
	}
	e = 0;
#ifdef MOM_FAULT_INJECTION
	if (s->enospc_file != NULL && access(s->enospc_file, F_OK) == 0)
		e = ENOSPC;
#endif
	if (e != 0 || (e = posix_fallocate(fd, 0, (off_t)s->reserve)) != 0 ||
	    ftruncate(fd, (off_t)s->reserve) < 0 || fsync(fd) < 0) {
		e = e ? e : errno;
		/* Half a reserve would only take space from the log. */
		(void)ftruncate(fd, 0);
		close(fd);
		errno = e;
		return io_fail(s, "fallocate", "reserve");
	}
	close(fd);
	return 0;
}

/* The disk is full: the reserve's space goes to the log from now on. */
static void
reserve_release(struct store *s)
{
	int fd;

	s->full = true;
	if (s->reserve == 0 || (fd = openat(s->dirfd, "reserve", O_WRONLY | O_CLOEXEC)) < 0)
		return;
	if (ftruncate(fd, 0) == 0) {
#ifdef MOM_FAULT_INJECTION
		s->fault_room = s->reserve;
#endif
		snprintf(s->msg + strlen(s->msg), sizeof(s->msg) - strlen(s->msg),
		    "; the reserve of %" PRIu64 " bytes (%s/reserve) is released for acks, "
		    "deletes and snapshots", s->reserve, s->dir);
	}
	close(fd);
}

bool
store_full(const struct store *s)
{
	return s->full;
}

int
store_reserve_restore(struct store *s)
{
	struct statvfs vs;
	char           keep[sizeof(s->msg)];

	if (!s->full)
		return 0;
	if (s->reserve > 0 && (fstatvfs(s->dirfd, &vs) != 0 ||
	    (uint64_t)vs.f_bavail * vs.f_frsize / 2 < s->reserve))
		return MOM_EFULL;
	memcpy(keep, s->msg, sizeof(keep));
	if (reserve_make(s) != 0) {
		memcpy(s->msg, keep, sizeof(keep));
		return MOM_EFULL;
	}
	s->full = false;
	return 0;
}

const struct store_repair *
store_repaired(const struct store *s)
{
	return &s->rep;
}

/* ---- repair ---- */

/*
 * Shows the repair callback every whole record in b[p..len) (the bytes a
 * cut drops), looking for one at every offset after damage.
 */
static void
repair_walk(struct store *s, const uint8_t *b, size_t len, size_t p, uint64_t expect)
{
	struct store_entry e;
	uint32_t           blen;
	uint64_t           ix;

	while (p + STORE_REC_HDR + STORE_BODY_MIN <= len) {
		ix = mom_le_get64(b + p + STORE_REC_HDR);
		if (ix < expect || ix - expect > len || !frame_at(b, len, p, &blen)) {
			p++;
			continue;
		}
		entry_at(b, p, blen, &e);
		s->rep.readable++;
		if (ix > s->rep.last)
			s->rep.last = ix;
		if (s->cfg.repair_cb != NULL)
			(void)s->cfg.repair_cb(s->cfg.repair_arg, &e);
		expect = ix + 1;
		p += STORE_REC_HDR + blen;
	}
}

/* Notes the first damage: what is cut where, and why. */
static void
repair_note(struct store *s, const char *name, uint64_t off, uint64_t index, const char *why)
{
	s->rep.cut = true;
	snprintf(s->rep.file, sizeof(s->rep.file), "%s", name);
	s->rep.offset = off;
	s->rep.index = index;
	snprintf(s->rep.why, sizeof(s->rep.why), "%s", why);
}

/* Removes the segments after the cut (firsts[0..n)), showing their records first. */
static int
repair_drop(struct store *s, const uint64_t *firsts, size_t n)
{
	uint8_t *b;
	size_t   i, len;
	char     name[64];
	int      fd, rc;

	for (i = 0; i < n; i++) {
		seg_name(name, sizeof(name), firsts[i]);
		if ((rc = slurp(s, name, &fd, &b, &len)) != 0)
			return rc;
		close(fd);
		repair_walk(s, b, len, 0, firsts[i]);
		free(b);
		s->rep.bytes += len;
		if (unlinkat(s->dirfd, name, 0) < 0)
			return io_fail(s, "unlink", name);
#ifdef MOM_FAULT_INJECTION
		fault_forget(s, firsts[i]);
#endif
	}
	return 0;
}

/*
 * Loads one segment found at open; the last one after a crash (torn_ok)
 * may have its tail cut, and with cfg->repair any may be cut at damage.
 */
static int
load_seg(struct store *s, uint64_t first, bool last, bool torn_ok)
{
	struct store_scan sc;
	struct seg       *g;
	char              name[64], why[256];
	uint8_t          *b = NULL;
	size_t            len = 0;
	uint64_t          expect;
	int               fd = -1, rc;

	seg_name(name, sizeof(name), first);
	if (s->nsegs) {
		g = seg_last(s);
		expect = g->first + g->n;
		if (g->n == 0)
			return fail(s, MOM_EBADDATA, "%s/%s: byte 0: empty segment before the last",
			    s->dir, name);
		if (first != expect)
			return fail(s, MOM_EBADDATA,
			    "%s/%s: byte 0: starts at index %" PRIu64 ", expected %" PRIu64 " (gap)",
			    s->dir, name, first, expect);
	}
	if ((rc = segs_grow(s)) != 0)
		return rc;
	if ((rc = slurp(s, name, &fd, &b, &len)) != 0)
		return rc;
	if ((rc = store_scan(b, len, first, torn_ok, true, &sc)) != 0) {
		free(b);
		close(fd);
		return fail(s, rc, "out of memory");
	}
	if (sc.status != STORE_SCAN_OK && s->cfg.repair) {
		snprintf(why, sizeof(why), "%s (index %" PRIu64 ")", sc.why, first + sc.n);
		repair_note(s, name, sc.end, first + sc.n, why);
		repair_walk(s, b, len, sc.bad + 1, first + sc.n);
		s->rep.bytes += len - sc.end;
		sc.status = STORE_SCAN_TORN; /* cut below */
	}
	free(b);
	g = &s->segs[s->nsegs++];
	memset(g, 0, sizeof(*g));
	g->first = first;
	g->n = g->cap = sc.n;
	g->off = sc.off;
	g->size = g->synced = sc.end;
	g->fd = fd;
	if (sc.status == STORE_SCAN_CORRUPT)
		return fail(s, MOM_EBADDATA, "%s/%s: byte %zu: %s (index %" PRIu64 ")%s",
		    s->dir, name, sc.bad, sc.why, first + sc.n, last && !torn_ok ?
		    ", after a clean stop" : "");
	if (sc.status == STORE_SCAN_TORN) {
		if (!s->cfg.repair)
			snprintf(s->warn, sizeof(s->warn), "%s/%s: a torn last record (a crash in "
			    "the middle of a write) was cut off at byte %" PRIu64 ", %zu bytes "
			    "dropped", s->dir, name, (uint64_t)sc.end, len - (size_t)sc.end);
		/* Cut, and make the cut durable before anything is appended after it. */
		if (ftruncate(fd, (off_t)sc.end) < 0)
			return io_fail(s, "ftruncate", name);
		if (do_sync(s, fd, false) < 0)
			return io_fail(s, "fsync", name);
	} else if (do_sync(s, fd, true) < 0) {
		/*
		 * What a killed process wrote may still be only in the page
		 * cache, yet from now on it counts as synced: raft will commit
		 * it.  Cheap when it is already on disk.
		 */
		return io_fail(s, "fdatasync", name);
	}
	if (!last && !s->rep.cut)
		seg_close(g);
	return 0;
}

/*
 * Loads the segments (firsts[0..n), sorted, empty ones at the end gone);
 * with cfg->repair, what follows the first damage is removed.
 */
static int
load_all(struct store *s, const uint64_t *firsts, size_t n, bool clean, bool *unlinked)
{
	char   name[64];
	size_t i;
	int    rc;

	for (i = 0; i < n; i++) {
		rc = load_seg(s, firsts[i], i == n - 1, i == n - 1 && !clean);
		if (rc == MOM_EBADDATA && s->cfg.repair && !s->rep.cut) {
			/* A gap or an empty segment before the last: cut before it. */
			seg_name(name, sizeof(name), firsts[i]);
			repair_note(s, name, 0, s->nsegs ? seg_last(s)->first + seg_last(s)->n :
			    firsts[i], s->msg);
			*unlinked = true;
			return repair_drop(s, firsts + i, n - i);
		}
		if (rc != 0)
			return rc;
		if (s->rep.cut) {
			*unlinked = true;
			return repair_drop(s, firsts + i + 1, n - i - 1);
		}
	}
	return 0;
}

/* After a clean stop, the log must end where the stop recorded. */
static int
clean_check(struct store *s, uint64_t last)
{
	struct seg *g = seg_last(s);
	char        name[64], why[256];

	if (store_last(s) == last || (s->cfg.repair && s->rep.cut))
		return 0;
	seg_name(name, sizeof(name), g ? g->first : 1);
	snprintf(why, sizeof(why), "the log ends at index %" PRIu64 ", the clean stop "
	    "recorded %" PRIu64 " (a file was cut or removed)", store_last(s), last);
	if (s->cfg.repair) {
		repair_note(s, name, g ? g->size : 0, store_last(s) + 1, why);
		return 0;
	}
	return fail(s, MOM_EBADDATA, "%s/%s: byte %" PRIu64 ": %s", s->dir, name,
	    g ? g->size : 0, why);
}

/*
 * Empty files at the end are segments created by a roll whose first
 * write never reached the disk (a crash, or ENOSPC).  Dropping them makes
 * the segment before them the last one, whose unsynced tail may then be
 * torn like any last segment's.
 */
static int
drop_empty_tail(struct store *s, const uint64_t *firsts, size_t *n, bool *unlinked)
{
	struct stat st;
	char        name[64];

	for (*unlinked = false; *n > 0; (*n)--) {
		seg_name(name, sizeof(name), firsts[*n - 1]);
		if (fstatat(s->dirfd, name, &st, 0) < 0 || st.st_size != 0)
			break;
		if (unlinkat(s->dirfd, name, 0) < 0)
			return io_fail(s, "unlink", name);
#ifdef MOM_FAULT_INJECTION
		fault_forget(s, firsts[*n - 1]);
#endif
		*unlinked = true;
	}
	return 0;
}

int
store_open(const char *dir, const struct store_config *cfg, struct store **out,
    char *err, size_t errlen)
{
	struct store  *s;
	struct dirent *de;
	DIR           *d = NULL;
	uint64_t      *firsts = NULL, *nf, v;
	size_t         n = 0, cap = 0;
	int            rc = MOM_ENOMEM;
	bool           unlinked, clean, clean_there;
	uint64_t       clean_last;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s)))) {
		if (err)
			snprintf(err, errlen, "out of memory");
		return MOM_ENOMEM;
	}
	s->dirfd = -1;
	s->segment_size = cfg && cfg->segment_size ? cfg->segment_size : DEFAULT_SEGMENT_SIZE;
	s->nosync = cfg && cfg->nosync;
	if (cfg)
		s->cfg = *cfg;
	s->reserve = s->cfg.reserve;
	if (!(s->dir = strdup(dir)))
		goto fail;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = io_code(errno);
		fail(s, rc, "%s: mkdir: %s", dir, strerror(errno));
		goto fail;
	}
	if ((s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    !(d = opendir(dir))) {
		rc = io_code(errno);
		fail(s, rc, "%s: open: %s", dir, strerror(errno));
		goto fail;
	}
#ifdef MOM_FAULT_INJECTION
	if ((rc = fault_init(s)) != 0)
		goto fail;
#endif
	clean_load(s, &clean, &clean_there, &clean_last);
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 24 || strncmp(de->d_name, "seg-", 4) != 0 ||
		    strspn(de->d_name + 4, "0123456789abcdef") != 16 ||
		    strcmp(de->d_name + 20, ".log") != 0)
			continue;
		v = strtoull(de->d_name + 4, NULL, 16);
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if (!(nf = realloc(firsts, cap * sizeof(*nf))))
				goto fail;
			firsts = nf;
		}
		firsts[n++] = v;
	}
	closedir(d);
	d = NULL;
	if (n > 1)
		qsort(firsts, n, sizeof(*firsts), cmp_u64);
#ifdef MOM_FAULT_INJECTION
	if (s->powerloss && (rc = fault_powerloss(s, firsts, n)) != 0)
		goto fail;
#endif
	if ((rc = drop_empty_tail(s, firsts, &n, &unlinked)) != 0)
		goto fail;
	if ((rc = load_all(s, firsts, n, clean, &unlinked)) != 0 ||
	    (clean && (rc = clean_check(s, clean_last)) != 0))
		goto fail;
	/* From now on a crash is a crash. */
	if (clean_there) {
		if (unlinkat(s->dirfd, "clean", 0) < 0) {
			rc = io_fail(s, "unlink", "clean");
			goto fail;
		}
		unlinked = true;
	}
	if ((rc = reserve_make(s)) == MOM_EFULL) {
		s->full = true;
		snprintf(s->warn + strlen(s->warn), sizeof(s->warn) - strlen(s->warn),
		    "%sno room for the reserve of %" PRIu64 " bytes: the disk is full",
		    s->warn[0] ? "; " : "", s->reserve);
	} else if (rc != 0)
		goto fail;
	/* The removals, and the names of the segments a killed process created. */
	if ((unlinked || n > 0) && (rc = sync_dir(s)) != 0)
		goto fail;
#ifdef MOM_FAULT_INJECTION
	/* What was loaded counts as synced (a torn tail's cut included). */
	for (size_t i = 0; i < s->nsegs; i++)
		if ((rc = fault_record(s, &s->segs[i])) != 0)
			goto fail;
#endif
	free(firsts);
	*out = s;
	return 0;
fail:
	if (d)
		closedir(d);
	free(firsts);
	if (err)
		snprintf(err, errlen, "%s", s->msg[0] ? s->msg : "out of memory");
	store_close(s);
	return rc;
}

void
store_close(struct store *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nsegs; i++)
		seg_fini(&s->segs[i]);
	free(s->segs);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->wbuf);
	free(s->dir);
#ifdef MOM_FAULT_INJECTION
	free(s->enospc_file);
#endif
	free(s);
}

static int unlink_seg(struct store *, struct seg *);

/* Starts a new, empty last segment at first. */
static int
roll(struct store *s, uint64_t first)
{
	struct seg *g;
	char        name[64];
	int         rc, fd;

	if ((rc = segs_grow(s)) != 0)
		return rc;
	seg_name(name, sizeof(name), first);
#ifdef MOM_FAULT_INJECTION
	fault_forget(s, first); /* left by a kill between unlinks */
#endif
	if ((fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return io_fail(s, "create", name);
	/*
	 * The previous segment keeps its fd until a sync covers its writes: an
	 * fd opened later might not be told of a write-back error (Linux
	 * reports it to the fds open when it happened).  Unless no sync will
	 * ever come.
	 */
	if (s->nsegs && (s->nosync ||
	    s->segs[s->nsegs - 1].synced == s->segs[s->nsegs - 1].size))
		seg_close(&s->segs[s->nsegs - 1]);
	g = &s->segs[s->nsegs++];
	memset(g, 0, sizeof(*g));
	g->first = first;
	g->fd = fd;
	g->fresh = true;
	return 0;
}

int
store_append(struct store *s, const struct store_entry *e, size_t n)
{
	struct seg *g;
	uint64_t    next, old_n, old_size;
	size_t      need = 0, i, p;
	uint8_t    *b;
	char        name[64];
	int         rc, e_no;

	if (s->broken)
		return s->broken;
	if (n == 0)
		return 0;
	if ((rc = clean_drop(s)) != 0)
		return rc;
	/* An empty lone segment (a torn first record) may be restarted anywhere. */
	if (s->nsegs == 1 && s->segs[0].n == 0 && e[0].index != s->segs[0].first) {
		if ((rc = unlink_seg(s, &s->segs[0])) != 0)
			return rc;
		s->nsegs = 0;
		if ((rc = sync_dir(s)) != 0)
			return rc;
	}
	next = store_last(s) ? store_last(s) + 1 : (s->nsegs ? seg_last(s)->first : e[0].index);
	if (e[0].index == 0 || e[0].index != next)
		return fail(s, MOM_EINVAL, "append at index %" PRIu64 ", expected %" PRIu64,
		    e[0].index, next);
	for (i = 0; i < n; i++) {
		if (e[i].index != next + i)
			return fail(s, MOM_EINVAL, "batch not consecutive at index %" PRIu64,
			    e[i].index);
		if (e[i].len > STORE_BODY_MAX - STORE_BODY_MIN)
			return fail(s, MOM_EINVAL, "entry %" PRIu64 " too big", e[i].index);
		need += STORE_REC_HDR + STORE_BODY_MIN + e[i].len;
	}
	if (need > s->wcap) {
		if (!(b = realloc(s->wbuf, need)))
			return fail(s, MOM_ENOMEM, "out of memory");
		s->wbuf = b;
		s->wcap = need;
	}
	g = seg_last(s);
	if (!g || (g->size > 0 && g->size + need > s->segment_size)) {
		if ((rc = roll(s, next)) != 0)
			return rc;
		g = seg_last(s);
	}
	if ((rc = seg_open_fd(s, g)) != 0)
		return rc;
	old_n = g->n;
	old_size = g->size;
	for (i = 0, p = 0; i < n; i++) {
		b = s->wbuf + p;
		mom_le_put32(b, (uint32_t)(STORE_BODY_MIN + e[i].len));
		mom_le_put64(b + 8, e[i].index);
		mom_le_put64(b + 16, e[i].term);
		b[24] = e[i].type;
		if (e[i].len)
			memcpy(b + 25, e[i].buf, e[i].len);
		mom_le_put32(b + 4, mom_crc32c(mom_crc32c(0, b, 4), b + 8, STORE_BODY_MIN + e[i].len));
		if ((rc = seg_push_off(g, g->size + p)) != 0) {
			g->n = old_n;
			return fail(s, rc, "out of memory");
		}
		p += STORE_REC_HDR + STORE_BODY_MIN + e[i].len;
	}
	if (write_all(s, g->fd, s->wbuf, need, (off_t)g->size) < 0) {
		e_no = errno;
		seg_name(name, sizeof(name), g->first);
		errno = e_no;
		rc = io_fail(s, "write", name);
		g->n = old_n;
		if (rc == MOM_EFULL && !s->full)
			reserve_release(s);
		/* Cut the partial batch so the next append does not land behind garbage. */
		if (ftruncate(g->fd, (off_t)old_size) < 0) {
			s->broken = MOM_EINTERNAL;
			snprintf(s->msg + strlen(s->msg), sizeof(s->msg) - strlen(s->msg),
			    "; cutting back failed: %s", strerror(errno));
		}
		return rc;
	}
	g->size += need;
	return 0;
}

/* The first of the segments at the end that have something to sync. */
static size_t
sync_from(const struct store *s)
{
	size_t from = s->nsegs;

	while (from > 0 && (s->segs[from - 1].synced < s->segs[from - 1].size ||
	    s->segs[from - 1].fresh))
		from--;
	return from;
}

int
store_sync(struct store *s)
{
	struct seg *g;
	size_t      i, from;
	bool        dir = false;
	char        name[64];

	if (s->broken)
		return s->broken;
	from = sync_from(s);
	for (i = from; i < s->nsegs; i++) {
		g = &s->segs[i];
		if (g->synced < g->size) {
			if (g->fd < 0 && (s->broken = seg_open_fd(s, g)) != 0) /* nosync */
				return s->broken;
			if (do_sync(s, g->fd, true) < 0) {
				seg_name(name, sizeof(name), g->first);
				/* After a failed fsync the page cache cannot be trusted. */
				s->broken = io_fail(s, "fdatasync", name);
				return s->broken;
			}
			g->synced = g->size;
		}
		dir |= g->fresh;
	}
	if (dir && sync_dir(s) != 0)
		return s->broken;
	for (i = from; i < s->nsegs; i++) {
		s->segs[i].fresh = false;
#ifdef MOM_FAULT_INJECTION
		if ((s->broken = fault_record(s, &s->segs[i])) != 0)
			return s->broken;
#endif
		if (i + 1 < s->nsegs)
			seg_close(&s->segs[i]);
	}
	return 0;
}

int
store_sync_begin(struct store *s, struct store_synctok *t)
{
	size_t i, from;
	int    rc;

	memset(t, 0, sizeof(*t));
	t->dirfd = -1;
	if (s->broken)
		return s->broken;
	from = sync_from(s);
	if (from == s->nsegs)
		return 0;
	if ((t->part = calloc(s->nsegs - from, sizeof(*t->part))) == NULL)
		return fail(s, MOM_ENOMEM, "out of memory");
	for (i = from; i < s->nsegs; i++) {
		struct seg            *g = &s->segs[i];
		struct store_syncpart *p = &t->part[t->n];

		p->first = g->first;
		p->gen = g->gen;
		p->size = g->size;
		p->fresh = g->fresh;
		p->fd = -1;
		if (g->synced < g->size) {
			if (g->fd < 0 && (rc = seg_open_fd(s, g)) != 0) /* nosync */
				goto fail;
			if ((p->fd = dup(g->fd)) < 0) {
				rc = io_fail(s, "dup", "segment");
				goto fail;
			}
		}
		if (g->fresh && t->dirfd < 0 && (t->dirfd = dup(s->dirfd)) < 0) {
			rc = io_fail(s, "dup", ".");
			t->n++;
			goto fail;
		}
		t->n++;
	}
	t->fault = s->fault;
	t->faulty = s->faulty;
	return 0;
fail:
	for (i = 0; i < t->n; i++)
		if (t->part[i].fd >= 0)
			close(t->part[i].fd);
	if (t->dirfd >= 0)
		close(t->dirfd);
	free(t->part);
	memset(t, 0, sizeof(*t));
	t->dirfd = -1;
	return rc;
}

static int
tok_sync(struct store_synctok *t, int fd, bool data)
{
	if (t->faulty && t->fault.sync)
		return t->fault.sync(t->fault.arg, fd);
	return data ? fdatasync(fd) : fsync(fd);
}

void
store_sync_run(struct store_synctok *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->part[i].fd >= 0 && tok_sync(t, t->part[i].fd, true) < 0) {
			t->err = errno ? errno : EIO;
			t->failed = t->part[i].first;
			return;
		}
	}
	if (t->dirfd >= 0 && tok_sync(t, t->dirfd, false) < 0) {
		t->err = errno ? errno : EIO;
		t->dirfail = true;
	}
}

int
store_sync_end(struct store *s, struct store_synctok *t)
{
	size_t i, k;
	int    rc = 0;
	char   name[64];

	for (i = 0; i < t->n; i++)
		if (t->part[i].fd >= 0)
			close(t->part[i].fd);
	if (t->dirfd >= 0)
		close(t->dirfd);
	if (t->err != 0 && !s->broken) {
		/* After a failed fsync the page cache cannot be trusted. */
		errno = t->err;
		if (t->dirfail)
			s->broken = io_fail(s, "fsync", ".");
		else {
			seg_name(name, sizeof(name), t->failed);
			s->broken = io_fail(s, "fdatasync", name);
		}
	}
	if (s->broken) {
		rc = s->broken;
		goto out;
	}
	for (i = 0; i < t->n; i++) {
		const struct store_syncpart *p = &t->part[i];
		struct seg                  *g = NULL;

		for (k = 0; k < s->nsegs; k++)
			if (s->segs[k].first == p->first) {
				g = &s->segs[k];
				break;
			}
		/* Cut or removed meanwhile: what it synced is not what is there. */
		if (g == NULL || g->gen != p->gen)
			continue;
		if (g->synced < p->size)
			g->synced = p->size;
		if (p->fresh)
			g->fresh = false;
#ifdef MOM_FAULT_INJECTION
		if ((rc = fault_record(s, g)) != 0) {
			s->broken = rc;
			goto out;
		}
#endif
		if (g != seg_last(s) && g->synced == g->size && !g->fresh)
			seg_close(g);
	}
out:
	free(t->part);
	memset(t, 0, sizeof(*t));
	t->dirfd = -1;
	return rc;
}

static int
unlink_seg(struct store *s, struct seg *g)
{
	char name[64];

	seg_name(name, sizeof(name), g->first);
	if (unlinkat(s->dirfd, name, 0) < 0)
		return io_fail(s, "unlink", name);
#ifdef MOM_FAULT_INJECTION
	fault_forget(s, g->first);
#endif
	seg_fini(g);
	return 0;
}

int
store_truncate(struct store *s, uint64_t index)
{
	struct seg *g;
	char        name[64];
	bool        unlinked = false;
	int         rc;

	if (s->broken)
		return s->broken;
	if (index == 0)
		return fail(s, MOM_EINVAL, "truncate at index 0");
	if ((rc = clean_drop(s)) != 0)
		return rc;
	while (s->nsegs && index <= seg_last(s)->first) {
		if ((rc = unlink_seg(s, seg_last(s))) != 0) {
			s->broken = rc;
			return rc;
		}
		s->nsegs--;
		unlinked = true;
	}
	if ((g = seg_last(s)) != NULL && index < g->first + g->n) {
		seg_name(name, sizeof(name), g->first);
		if ((rc = seg_open_fd(s, g)) != 0)
			return rc;
		g->n = index - g->first;
		g->size = g->off[g->n];
		g->gen++;
		if (ftruncate(g->fd, (off_t)g->size) < 0 || do_sync(s, g->fd, false) < 0) {
			s->broken = io_fail(s, "truncate", name);
			return s->broken;
		}
		/* That fsync made the whole file durable, not just the cut. */
		g->synced = g->size;
#ifdef MOM_FAULT_INJECTION
		/* A fresh segment's name is not durable yet: store_sync records it. */
		if (!g->fresh && (rc = fault_record(s, g)) != 0) {
			s->broken = rc;
			return rc;
		}
#endif
	}
	if (unlinked && (g = seg_last(s)) != NULL && (rc = seg_open_fd(s, g)) != 0)
		return rc;
	return unlinked ? sync_dir(s) : 0;
}

int
store_remove_before(struct store *s, uint64_t index)
{
	size_t k = 0, i;
	int    rc = 0;

	if (s->broken)
		return s->broken;
	/* Segment k can go when the next one starts at or below index. */
	while (k + 1 < s->nsegs && s->segs[k + 1].first <= index)
		k++;
	if (k == 0)
		return 0;
	if ((rc = clean_drop(s)) != 0)
		return rc;
	for (i = 0; i < k; i++) {
		if ((rc = unlink_seg(s, &s->segs[i])) != 0)
			break;
	}
	/* Keep what is left contiguous even if an unlink failed midway. */
	memmove(s->segs, s->segs + i, (s->nsegs - i) * sizeof(*s->segs));
	s->nsegs -= i;
	if (rc != 0)
		return rc;
	return sync_dir(s);
}

/* Reads [a, b) of segment g into buf. */
static int
seg_pread(struct store *s, struct seg *g, uint8_t *buf, uint64_t a, uint64_t b)
{
	char    name[64];
	ssize_t r;
	int     fd = g->fd, rc = 0;

	seg_name(name, sizeof(name), g->first);
	if (fd < 0 && (fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC)) < 0)
		return io_fail(s, "open", name);
	while (a < b) {
		r = pread(fd, buf, b - a, (off_t)a);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			rc = io_fail(s, "read", name);
			break;
		}
		buf += r;
		a += (uint64_t)r;
	}
	if (fd != g->fd)
		close(fd);
	return rc;
}

int
store_read(struct store *s, uint64_t from, uint64_t to, store_read_cb cb, void *arg)
{
	struct store_entry e;
	struct seg        *g;
	uint64_t           a, b, lo, hi, ix;
	uint8_t           *buf = NULL;
	uint32_t           blen;
	size_t             i, p;
	char               name[64];
	int                rc = 0;

	if (from > to)
		return 0;
	if (from < store_first(s) || to > store_last(s) || from == 0)
		return fail(s, MOM_EINVAL, "read %" PRIu64 "..%" PRIu64 " outside %" PRIu64 "..%" PRIu64,
		    from, to, store_first(s), store_last(s));
	for (i = 0; i < s->nsegs && rc == 0; i++) {
		g = &s->segs[i];
		if (g->n == 0 || g->first + g->n - 1 < from || g->first > to)
			continue;
		lo = from > g->first ? from : g->first;
		hi = to < g->first + g->n - 1 ? to : g->first + g->n - 1;
		a = g->off[lo - g->first];
		b = hi - g->first + 1 < g->n ? g->off[hi - g->first + 1] : g->size;
		if (!(buf = malloc(b - a))) {
			rc = fail(s, MOM_ENOMEM, "out of memory");
			break;
		}
		if ((rc = seg_pread(s, g, buf, a, b)) != 0)
			break;
		for (ix = lo, p = 0; ix <= hi; ix++) {
			if (!frame_at(buf, b - a, p, &blen) || mom_le_get64(buf + p + 8) != ix) {
				seg_name(name, sizeof(name), g->first);
				rc = fail(s, MOM_EBADDATA, "%s/%s: byte %" PRIu64 ": bad record on read",
				    s->dir, name, a + p);
				break;
			}
			entry_at(buf, p, blen, &e);
			if ((rc = cb(arg, &e)) != 0)
				break;
			p += STORE_REC_HDR + blen;
		}
		free(buf);
		buf = NULL;
	}
	free(buf);
	return rc;
}

int
store_meta_load(struct store *s, struct store_meta *m)
{
	uint8_t b[META_SIZE];
	ssize_t r;
	int     fd;

	memset(m, 0, sizeof(*m));
	if ((fd = openat(s->dirfd, "meta", O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : io_fail(s, "open", "meta");
	r = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (r < 0)
		return io_fail(s, "read", "meta");
	if (r != (ssize_t)sizeof(b) || memcmp(b, META_MAGIC, 8) != 0 ||
	    mom_crc32c(0, b, META_SIZE - 4) != mom_le_get32(b + META_SIZE - 4))
		return fail(s, MOM_EBADDATA, "%s/meta: byte 0: bad metadata file", s->dir);
	m->term = mom_le_get64(b + 8);
	m->vote = mom_le_get64(b + 16);
	return 0;
}

int
store_meta_save(struct store *s, const struct store_meta *m)
{
	uint8_t b[META_SIZE];
	int     fd, rc = 0, tries = 0;

	if (s->broken)
		return s->broken;
again:
	rc = 0;
	memcpy(b, META_MAGIC, 8);
	mom_le_put64(b + 8, m->term);
	mom_le_put64(b + 16, m->vote);
	mom_le_put32(b + META_SIZE - 4, mom_crc32c(0, b, META_SIZE - 4));
	/*
	 * Write a new file and fsync it before the rename: renaming first could
	 * leave a name pointing at data that never reached the disk.  The
	 * directory fsync makes the rename itself durable.
	 */
	if ((fd = openat(s->dirfd, "meta.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return io_fail(s, "create", "meta.tmp");
	if (write_all(s, fd, b, sizeof(b), 0) < 0)
		rc = io_fail(s, "write", "meta.tmp");
	else if (do_sync(s, fd, false) < 0)
		rc = io_fail(s, "fsync", "meta.tmp");
	close(fd);
	if (rc != 0) {
		unlinkat(s->dirfd, "meta.tmp", 0);
		/* A full disk: the term (a start's new one) goes into the reserve. */
		if (rc == MOM_EFULL && !s->full && tries++ == 0) {
			reserve_release(s);
			goto again;
		}
		return rc;
	}
	if (renameat(s->dirfd, "meta.tmp", s->dirfd, "meta") < 0)
		return io_fail(s, "rename", "meta.tmp");
	return sync_dir(s);
}

void
store_crash(struct store *s)
{
	struct seg *g;
	char        name[64];
	size_t      i;

	for (i = 0; i < s->nsegs; i++) {
		g = &s->segs[i];
		seg_name(name, sizeof(name), g->first);
		if (g->fresh) {
			seg_close(g);
			(void)unlinkat(s->dirfd, name, 0);
		} else if (g->synced < g->size) {
			if (seg_open_fd(s, g) == 0)
				(void)ftruncate(g->fd, (off_t)g->synced);
		}
	}
	store_close(s);
}
