/*
 * mom.c: error names, exit statuses, clocks.
 */
#include <time.h>

#include "mom.h"

static const struct {
	const char *text;
	const char *name;
	int         exit;
} errtab[MOM_E_MAX] = {
	[MOM_OK] = { "success", "ok", MOM_EXIT_OK },
	[MOM_EINVAL] = { "invalid argument", "invalid", MOM_EXIT_USAGE },
	[MOM_EBADDATA] = { "malformed data", "bad_data", MOM_EXIT_DATAERR },
	[MOM_ENOENT] = { "no such queue, topic or subscription", "not_found", MOM_EXIT_NOINPUT },
	[MOM_EEXIST] = { "exists already with other options", "exists", MOM_EXIT_FAIL },
	[MOM_EFULL] = { "full", "full", MOM_EXIT_TEMPFAIL },
	[MOM_ETOOBIG] = { "message too large", "too_large", MOM_EXIT_DATAERR },
	[MOM_EBUSY] = { "broker busy", "busy", MOM_EXIT_TEMPFAIL },
	[MOM_ETIMEDOUT] = { "timed out", "timeout", MOM_EXIT_TEMPFAIL },
	[MOM_EUNAVAIL] = { "broker unavailable", "unavailable", MOM_EXIT_UNAVAILABLE },
	[MOM_EAUTH] = { "authentication failed", "unauthorized", MOM_EXIT_NOPERM },
	[MOM_EPERM] = { "permission denied", "forbidden", MOM_EXIT_NOPERM },
	[MOM_ENOMEM] = { "out of memory", "no_memory", MOM_EXIT_FAIL },
	[MOM_EPROTO] = { "protocol error", "protocol", MOM_EXIT_DATAERR },
	[MOM_EINTERNAL] = { "internal error", "internal", MOM_EXIT_FAIL },
	[MOM_ECLOSED] = { "shutting down", "closed", MOM_EXIT_UNAVAILABLE },
	[MOM_ENOTLEADER] = { "not the leader", "not_leader", MOM_EXIT_UNAVAILABLE },
};

const char *
mom_strerror(int err)
{
	if (err < 0 || err >= MOM_E_MAX || errtab[err].text == NULL)
		return "unknown error";
	return errtab[err].text;
}

const char *
mom_err_name(int err)
{
	if (err < 0 || err >= MOM_E_MAX || errtab[err].name == NULL)
		return "unknown";
	return errtab[err].name;
}

int
mom_err_exit(int err)
{
	if (err < 0 || err >= MOM_E_MAX || errtab[err].text == NULL)
		return MOM_EXIT_FAIL;
	return errtab[err].exit;
}

int64_t
mom_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mom_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
