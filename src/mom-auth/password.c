/*
 * password.c: reading passwords without putting them on argv or on the
 * screen, and argon2id hashes of them.
 *
 * Hash parameters are OWASP's argon2id minimum (19 MiB, 2 passes, 1
 * lane): about 50 ms here, which is what makes a stolen users file slow
 * to attack and also why mom-auth serve verifies on worker threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include <argon2.h>

#include "auth.h"
#include "mom.h"

#define PW_T_COST   2
#define PW_M_COST   19456 /* KiB */
#define PW_LANES    1
#define PW_SALT_LEN 16
#define PW_HASH_LEN 32

void
pw_wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

/*
 * Reads one line from fd into buf, byte by byte so that nothing past the
 * newline is consumed (or left in a stdio buffer).  Returns the length,
 * -1 on a read error, -2 when the line does not fit.
 */
static ssize_t
read_line(int fd, char *buf, size_t len)
{
	size_t  n = 0;
	ssize_t r;
	char    c;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0 || c == '\n')
			break;
		if (n + 1 >= len) {
			/* Drain the rest of the line so it does not echo later. */
			while ((r = read(fd, &c, 1)) == 1 && c != '\n')
				;
			pw_wipe(buf, len);
			return -2;
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (ssize_t)n;
}

/* The terminal to restore when a signal arrives with echo off. */
static int            tty_fd = -1;
static struct termios tty_saved;

static void
tty_restore_cb(int sig)
{
	if (tty_fd != -1)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static const int tty_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };

/* One prompt on the terminal with echo off; length, or <0 as read_line. */
static ssize_t
tty_prompt(int fd, const char *prompt, char *buf, size_t len)
{
	struct sigaction sa, old[sizeof(tty_sigs) / sizeof(tty_sigs[0])];
	struct termios   t;
	ssize_t          n;
	size_t           i;
	int              echo_off = 0;

	if (write(fd, prompt, strlen(prompt)) < 0)
		return -1;
	if (tcgetattr(fd, &tty_saved) == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = tty_restore_cb;
		sigemptyset(&sa.sa_mask);
		for (i = 0; i < sizeof(tty_sigs) / sizeof(tty_sigs[0]); i++)
			sigaction(tty_sigs[i], &sa, &old[i]);
		tty_fd = fd;
		t = tty_saved;
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		t.c_lflag |= ICANON;
		echo_off = tcsetattr(fd, TCSAFLUSH, &t) == 0;
	}
	n = read_line(fd, buf, len);
	if (echo_off) {
		tcsetattr(fd, TCSAFLUSH, &tty_saved);
		tty_fd = -1;
		for (i = 0; i < sizeof(tty_sigs) / sizeof(tty_sigs[0]); i++)
			sigaction(tty_sigs[i], &old[i], NULL);
	}
	/* The user's Enter was not echoed. */
	if (write(fd, "\n", 1) < 0)
		return -1;
	return n;
}

int
pw_read(const char *file, bool confirm, char *buf, size_t len)
{
	char    again[AUTH_PASS_MAX + 2];
	const char *from;
	ssize_t n, m;
	int     fd;

	if (file != NULL || !isatty(STDIN_FILENO)) {
		if (file == NULL || strcmp(file, "-") == 0) {
			fd = STDIN_FILENO;
			from = "stdin";
		} else if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
			/* Named, never printed: a "file name" may be the password itself. */
			auth_err("cannot read the file of --password-file: %s", strerror(errno));
			return MOM_EXIT_NOINPUT;
		} else {
			from = "the file of --password-file";
		}
		n = read_line(fd, buf, len);
		if (fd != STDIN_FILENO)
			close(fd);
	} else {
		from = "the terminal";
		if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) == -1) {
			auth_err("no terminal to ask for the password on "
			    "(give it on stdin or with --password-file)");
			return MOM_EXIT_USAGE;
		}
		n = tty_prompt(fd, "Password: ", buf, len);
		if (n > 0 && confirm) {
			m = tty_prompt(fd, "Password again: ", again, sizeof(again));
			if (m != n || strcmp(buf, again) != 0) {
				pw_wipe(again, sizeof(again));
				pw_wipe(buf, len);
				close(fd);
				auth_err("the passwords do not match");
				return MOM_EXIT_FAIL;
			}
			pw_wipe(again, sizeof(again));
		}
		close(fd);
	}
	if (n == -1) {
		auth_err("reading the password from %s: %s", from, strerror(errno));
		return MOM_EXIT_FAIL;
	}
	if (n == -2) {
		auth_err("password from %s longer than %d bytes", from, AUTH_PASS_MAX);
		return MOM_EXIT_DATAERR;
	}
	if (n == 0) {
		auth_err("empty password from %s", from);
		return MOM_EXIT_DATAERR;
	}
	return MOM_EXIT_OK;
}

char *
pw_hash(const char *pw, size_t len)
{
	uint8_t salt[PW_SALT_LEN];
	size_t  enclen;
	char   *enc;
	int     rv;

	if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt)) {
		auth_err("getrandom: %s", strerror(errno));
		return NULL;
	}
	enclen = argon2_encodedlen(PW_T_COST, PW_M_COST, PW_LANES, PW_SALT_LEN, PW_HASH_LEN,
	    Argon2_id) + 1;
	if ((enc = malloc(enclen)) == NULL) {
		auth_err("out of memory");
		return NULL;
	}
	rv = argon2id_hash_encoded(PW_T_COST, PW_M_COST, PW_LANES, pw, len, salt, sizeof(salt),
	    PW_HASH_LEN, enc, enclen);
	if (rv != ARGON2_OK) {
		auth_err("argon2id: %s", argon2_error_message(rv));
		free(enc);
		return NULL;
	}
	return enc;
}

bool
pw_verify(const char *hash, const char *pw, size_t len)
{
	return argon2id_verify(hash, pw, len) == ARGON2_OK;
}
